package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// recordStates, run before the page's own scripts, keeps the states the
// player goes through in window.__states.
const recordStates = `window.__states = [];
setInterval(() => {
  const p = window.seedcastPlayer;
  const last = window.__states[window.__states.length - 1];
  if (p && p.state !== last) window.__states.push(p.state);
}, 50);`

// playerDump describes the player's buffer and clock, for failures.
const playerDump = `(() => {
  const p = window.seedcastPlayer, v = p.video, b = [];
  for (let i = 0; i < v.buffered.length; i++) b.push(v.buffered.start(i).toFixed(2) + '–' + v.buffered.end(i).toFixed(2));
  return 'buffered ' + b.join(' ') + ', clock ' + p.clock().toFixed(2) + ', currentTime ' + v.currentTime.toFixed(2) +
    ', readyState ' + v.readyState + ', ref ' + JSON.stringify(p.ref) + ', stats ' + JSON.stringify(p.stats());
})()`

// waitState waits until the page's player is in state want.
func waitState(t *testing.T, tab context.Context, want string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.seedcastPlayer && window.seedcastPlayer.state === '`+want+`'`, chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("the player never reached state %q: %v; states %v; %+v", want, err, evalJS[[]string](t, tab, `window.__states || []`), readPlayback(t, tab))
	}
}

// waitMoving waits until the playhead has moved on from where it stood when
// called, and returns where it is then. After a stream comes back the page
// may say playing while the playhead still waits, at the end of what it
// had, for the swarm's clock to reach the new stream's first chunk: up to
// the playback delay (protocol.DefaultDelay, 3.5 s), more on a loaded
// machine.
func waitMoving(t *testing.T, tab context.Context, timeout time.Duration) float64 {
	t.Helper()
	from := evalJS[float64](t, tab, `document.getElementById('video').currentTime`)
	expr := fmt.Sprintf(`document.getElementById('video').currentTime > %f + 0.2`, from)
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		t.Fatalf("the playhead stayed at %.2f s for %v: %v; %+v", from, timeout, err, readPlayback(t, tab))
	}
	return evalJS[float64](t, tab, `document.getElementById('video').currentTime`)
}

// startPublisher runs `seedcast publish` of the demo clip, forever, until the
// returned stop is called.
func startPublisher(t *testing.T, ctx context.Context, whip, key string) (stop func()) {
	t.Helper()
	pctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(pctx, binary, "publish", "--whip", whip, "--token", key, "--demo", "--webrtc-loopback-only")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestPlayerOfflineAndBack: a page opened before its stream is live says
// so, and plays by itself once the stream goes live; when the publisher
// goes, the page says the stream is offline, and plays again by itself when
// it comes back; when the server goes, the page says it cannot reach it,
// and plays again by itself when a server is back.
func TestPlayerOfflineAndBack(t *testing.T) {
	const key = "offline-test-key-0123"
	proc := startServerProc(t, nil, "--stream-key", "live="+key, "--webrtc-loopback-only")
	base := proc.base
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	bctx := chromium(t, ctx)
	tab := openPage(t, bctx, base+"/watch/live", recordStates)
	waitState(t, tab, "offline", 20*time.Second)
	screenshot(t, tab, "watch-offline", 1280, 800)

	stop := startPublisher(t, ctx, base+"/whip/live", key)
	waitState(t, tab, "playing", 30*time.Second)
	p0 := readPlayback(t, tab)
	stop()
	waitState(t, tab, "offline", 30*time.Second)
	t.Logf("states so far: %v", evalJS[[]string](t, tab, `window.__states || []`))

	startPublisher(t, ctx, base+"/whip/live", key)
	waitState(t, tab, "playing", 30*time.Second)
	t0 := waitMoving(t, tab, 3*protocol.DefaultDelay)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(3 * time.Second):
	}
	p1 := readPlayback(t, tab)
	t.Logf("first run %+v; after the return %+v", p0, p1)
	if p1.CurrentTime-t0 < 2 {
		t.Errorf("after the publisher came back the playhead moved %.1f s in 3 s", p1.CurrentTime-t0)
	}

	// The server goes away: the page says so and keeps trying. A new server
	// at the same address, whose stream is signed with another key, is
	// played once it is live.
	if err := syscall.Kill(proc.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitState(t, tab, "unreachable", 30*time.Second)
	screenshot(t, tab, "watch-unreachable", 1280, 800)
	again := startServer(t, "--addr", strings.TrimPrefix(base, "http://"), "--stream-key", "live="+key, "--webrtc-loopback-only")
	startPublisher(t, ctx, again+"/whip/live", key)
	waitState(t, tab, "playing", 45*time.Second)
	t0 = waitMoving(t, tab, 3*protocol.DefaultDelay)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(3 * time.Second):
	}
	p2 := readPlayback(t, tab)
	t.Logf("after the server came back %+v; states %v", p2, evalJS[[]string](t, tab, `window.__states`))
	if p2.CurrentTime-t0 < 2 {
		t.Errorf("after the server came back the playhead moved %.1f s in 3 s; %s", p2.CurrentTime-t0, evalJS[string](t, tab, playerDump))
	}
}
