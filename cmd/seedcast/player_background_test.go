package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// hideJS, run before a page's own scripts, lets a test hide the page
// (window.__hide(true)) as a background tab is hidden, and makes its main
// thread's timers behave as Chrome makes a hidden page's: none fires
// sooner than a second after it was set. (Headless Chromium neither hides
// a tab nor throttles it.)
const hideJS = `(() => {
  window.__hide = (hidden) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => hidden ? 'hidden' : 'visible' });
    document.dispatchEvent(new Event('visibilitychange'));
  };
  const setTimeout0 = window.setTimeout, setInterval0 = window.setInterval;
  window.setTimeout = (f, ms, ...args) => setTimeout0(f, document.hidden ? Math.max(ms || 0, 1000) : ms, ...args);
  window.setInterval = (f, ms, ...args) => setInterval0(f, document.hidden ? Math.max(ms || 0, 1000) : ms, ...args);
})();`

// TestBackgroundRelay: a browser that carries the origin's only copy keeps
// feeding two native viewers at their pace while its page is hidden (its
// node's timers move to a worker, which the browser does not throttle),
// and back in view it plays at the live latency again.
func TestBackgroundRelay(t *testing.T) {
	if raceEnabled {
		// Its figures are real time, and the race pass runs every package
		// at once: ./scripts/test runs it in its second pass, alone.
		t.Skip("run without -race by ./scripts/test")
	}
	if testing.Short() {
		t.Skip("a browser and two native nodes for half a minute")
	}
	base := startServer(t, "--demo", "--webrtc-loopback-only", "--origin-slots", "4") // one copy
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bctx := chromium(t, ctx)
	tab := openPage(t, bctx, base+"/watch/demo", settingsJS("high")+";"+hideJS)
	waitPlaying(t, tab)
	evalJS[any](t, tab, `window.__hide(true)`)

	dir := t.TempDir()
	const watch = 25 * time.Second
	natives := []*nativeViewer{
		startNative(t, ctx, base, dir, 0, watch, "--relay", "off"),
		startNative(t, ctx, base, dir, 1, watch, "--relay", "off"),
	}
	up0 := readStats(t, tab).BytesUploaded
	for i, v := range natives {
		select {
		case err := <-v.done:
			if err != nil {
				t.Fatalf("native %d: %v\n%s", i, err, v.out)
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	up := readStats(t, tab).BytesUploaded - up0
	var fromPeers, fromOrigin float64
	for i, v := range natives {
		ls := v.lines(t)
		if len(ls) == 0 {
			t.Fatalf("native %d wrote no stats", i)
		}
		last := ls[len(ls)-1]
		fromPeers += float64(last.BytesFromPeers)
		fromOrigin += float64(last.BytesFromOrigin)
		cont := float64(last.ChunksOnTime) / float64(max(last.ChunksOnTime+last.ChunksLate, 1))
		t.Logf("native %d: %.0f kB from peers, %.0f kB from the origin, continuity %.2f%%, depth %d", i, float64(last.BytesFromPeers)/1000, float64(last.BytesFromOrigin)/1000, 100*cont, last.MaxDepth)
		if cont < 0.99 {
			t.Errorf("native %d: continuity %.2f%%", i, 100*cont)
		}
	}
	share := fromPeers / max(fromPeers+fromOrigin, 1)
	t.Logf("hidden page uploaded %.0f kB in %v; the natives took %.0f%% of their bytes from peers", up/1000, watch, 100*share)
	if share < 0.7 {
		t.Errorf("with the one copy in a hidden page, the natives took only %.0f%% of their bytes from peers", 100*share)
	}

	evalJS[any](t, tab, `window.__hide(false)`)
	// Back in view: playing within a second of the target latency (about
	// the swarm's delay, protocol.DefaultDelay, and the 0.8 s a chunk takes
	// to reach the page).
	target := protocol.DefaultDelay + 800*time.Millisecond
	back := fmt.Sprintf(`(() => { const s = window.seedcast.stats(); return window.seedcastPlayer.state === 'playing' && s && s.latencyToLiveMs > 0 && s.latencyToLiveMs < %d; })()`, (target + time.Second).Milliseconds())
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](back, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("back in view, latency to live did not return within 1 s of the target: %v; %s", err, evalJS[string](t, tab, playerDump))
	}
}
