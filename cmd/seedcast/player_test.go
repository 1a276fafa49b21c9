package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// shots is where the page tests save their screenshots (look at them):
// $SEEDCAST_SCREENSHOTS, else testdata/screenshots under the package.
func shots(t *testing.T) string {
	dir := os.Getenv("SEEDCAST_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string, w, h int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shots(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// playback is what the page says of its video.
type playback struct {
	State        string  `json:"state"`
	CurrentTime  float64 `json:"currentTime"`
	Frames       int     `json:"frames"`
	Dropped      int     `json:"dropped"`
	Paused       bool    `json:"paused"`
	Rate         float64 `json:"rate"`
	LatencyMs    float64 `json:"latencyMs"`
	BufferMs     float64 `json:"bufferMs"`
	Stalls       int     `json:"stalls"`
	HasStats     bool    `json:"hasStats"`
	ReadyToFirst float64 `json:"readyToFirst"`
}

const playbackJS = `(() => {
  const v = document.getElementById('video'); const p = window.seedcastPlayer;
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {totalVideoFrames: 0, droppedVideoFrames: 0};
  const s = window.seedcast && window.seedcast.stats ? window.seedcast.stats() : null;
  return {state: p ? p.state : 'none', currentTime: v.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames,
    paused: v.paused, rate: v.playbackRate, latencyMs: s ? s.latencyToLiveMs : -1, bufferMs: s ? s.bufferMs : -1,
    stalls: window.__stalls || 0, hasStats: !!s};
})()`

func readPlayback(t testing.TB, ctx context.Context) playback {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](playbackJS))
	if err != nil {
		t.Fatal(err)
	}
	var p playback
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWatchPage plays /watch/demo in Chromium for 20 s: the playhead and
// the decoded frames advance, nothing stalls after start-up, and the
// latency to live stays within 1 s of the target.
func TestWatchPage(t *testing.T) {
	base := startServer(t, "--demo", "--webrtc-loopback-only")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bctx := chromium(t, ctx)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(base+"/watch/demo")); err != nil {
		t.Fatal(err)
	}
	state, err := chromedp.Run(bctx, chromedp.Poll[string](`window.seedcastPlayer && (window.seedcastPlayer.state === 'playing' || window.seedcastPlayer.state === 'error') ? window.seedcastPlayer.state : false`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil || state != "playing" {
		p := readPlayback(t, bctx)
		t.Fatalf("the player never played: %v %s %+v", err, state, p)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.getElementById("video").addEventListener("waiting", () => { window.__stalls = (window.__stalls || 0) + 1; }); 0`)); err != nil {
		t.Fatal(err)
	}
	start := readPlayback(t, bctx)
	var samples []playback
	for range 20 {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Second): // sampling the page once a second of real playback
		}
		samples = append(samples, readPlayback(t, bctx))
		if testing.Verbose() {
			t.Logf("%+v", samples[len(samples)-1])
		}
	}
	end := samples[len(samples)-1]
	t.Logf("start %+v\nend %+v", start, end)
	// The first seconds may catch up on the clock (playbackRate up to 1.5):
	// judge the pace over the last 15.
	if d := end.CurrentTime - samples[4].CurrentTime; d < 14 || d > 16.5 {
		t.Errorf("currentTime advanced %.1f s in 15 s", d)
	}
	if end.CurrentTime-start.CurrentTime < 19 {
		t.Errorf("currentTime advanced %.1f s in 20 s", end.CurrentTime-start.CurrentTime)
	}
	if f := end.Frames - samples[4].Frames; f < 15*25 {
		t.Errorf("%d frames decoded in 15 s, want ≥ 375 of a 30 fps stream", f)
	}
	if end.Stalls > 0 {
		t.Errorf("%d stalls after start-up", end.Stalls)
	}
	// The player holds the playhead at the swarm's delay behind live, which
	// the tracker sent in its welcome (protocol.DefaultDelay): bufferMs,
	// what is buffered ahead of the playhead, is that delay less the time
	// the newest chunk took to arrive, give or take a chunk and the clock's
	// dead band; latency to live adds that time back.
	lo, hi := float64(protocol.DefaultDelay.Milliseconds())-1000, float64(protocol.DefaultDelay.Milliseconds())+1000
	for _, s := range samples[5:] {
		if s.BufferMs < lo || s.BufferMs > hi || s.LatencyMs < s.BufferMs || s.LatencyMs > s.BufferMs+1000 {
			t.Errorf("%.0f ms behind the newest chunk, latency to live %.0f ms; want %.0f–%.0f ms behind, and under a second more to live", s.BufferMs, s.LatencyMs, lo, hi)
			break
		}
	}
	screenshot(t, bctx, "watch-desktop", 1280, 800)
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.getElementById('stats-btn').click(); document.getElementById('settings-btn').click(); 0`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second): // the overlay's chart fills from the once-a-second stats
	}
	screenshot(t, bctx, "watch-panels-desktop", 1280, 800)
	screenshot(t, bctx, "watch-settings-phone", 390, 844)
	// On a phone the panels are sheets, one at a time: close the settings
	// and show the stats.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.getElementById('settings-close').click(); if (document.getElementById('overlay').hidden) document.getElementById('stats-btn').click(); 0`)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, bctx, "watch-stats-phone", 390, 844)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelectorAll('.stream-card').length > 0`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the home page lists no live stream: %v", err)
	}
	screenshot(t, bctx, "home-desktop", 1280, 800)
	screenshot(t, bctx, "home-phone", 390, 844)
}

// openPage opens url in a new tab of the browser bctx, at a desktop size,
// running script (if any) before the page's own.
func openPage(t testing.TB, bctx context.Context, url, script string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	steps := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(1280, 800)}
	if script != "" {
		steps = append(steps, func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
			return chromedp.Void{}, err
		})
	}
	steps = append(steps, chromedp.Navigate(url))
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatal(err)
	}
	return tab
}

// waitPlaying waits for the page's player to play, and fails with what
// the page says if it does not.
func waitPlaying(t testing.TB, tab context.Context) {
	t.Helper()
	state, err := chromedp.Run(tab, chromedp.Poll[string](`window.seedcastPlayer && ['playing', 'error'].includes(window.seedcastPlayer.state) ? window.seedcastPlayer.state : false`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil || state != "playing" {
		t.Fatalf("the player never played: %v %s %+v", err, state, readPlayback(t, tab))
	}
}

func evalJS[T any](t testing.TB, tab context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// TestPlayerModes: audio-only plays audio and takes no video; a page with
// ManagedMediaSource and no MediaSource plays with it; a page with
// RTCPeerConnection removed plays over HTTP alone and says so.
func TestPlayerModes(t *testing.T) {
	base := startServer(t, "--demo", "--webrtc-loopback-only")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bctx := chromium(t, ctx)

	t.Run("audio-only", func(t *testing.T) {
		tab := openPage(t, bctx, base+"/watch/demo",
			`localStorage.setItem('seedcast.settings.v1', JSON.stringify({quality: 'audio-only'}))`)
		waitPlaying(t, tab)
		selected := evalJS[[]string](t, tab, `window.seedcastPlayer.info.selected`)
		kinds := evalJS[[]string](t, tab, `Object.keys(window.seedcastPlayer.tracks)`)
		before := evalJS[float64](t, tab, `window.seedcast.stats() ? window.seedcast.stats().bytesFromOrigin + window.seedcast.stats().bytesFromPeers : 0`)
		t0 := evalJS[float64](t, tab, `document.getElementById('video').currentTime`)
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(6 * time.Second): // six seconds of real playback
		}
		after := evalJS[float64](t, tab, `window.seedcast.stats().bytesFromOrigin + window.seedcast.stats().bytesFromPeers`)
		t1 := evalJS[float64](t, tab, `document.getElementById('video').currentTime`)
		kbps := (after - before) * 8 / 1000 / 6
		t.Logf("audio-only: renditions %v, tracks %v, %.0f kbit/s received, playhead +%.1f s", selected, kinds, kbps, t1-t0)
		if len(selected) != 1 || selected[0] != "a0" || len(kinds) != 1 || kinds[0] != "audio" {
			t.Errorf("audio-only carries %v in tracks %v", selected, kinds)
		}
		if kbps > 200 { // the demo's audio is ~64 kbit/s, its video ~600
			t.Errorf("audio-only received %.0f kbit/s: video was fetched", kbps)
		}
		if t1-t0 < 5 {
			t.Errorf("audio-only playhead advanced %.1f s in 6 s", t1-t0)
		}
	})

	t.Run("managed-media-source", func(t *testing.T) {
		// As on iOS Safari 17.1+: ManagedMediaSource, and no MediaSource.
		// (Chromium has no ManagedMediaSource: the page gets one made of
		// its MediaSource, which is what the player may rely on.)
		tab := openPage(t, bctx, base+"/watch/demo",
			`localStorage.clear(); window.ManagedMediaSource = class ManagedMediaSource extends window.MediaSource { get streaming() { return true; } }; delete window.MediaSource;`)
		waitPlaying(t, tab)
		managed := evalJS[bool](t, tab, `typeof window.MediaSource === 'undefined' && window.seedcastPlayer.ms instanceof window.ManagedMediaSource && document.getElementById('video').disableRemotePlayback`)
		f0 := readPlayback(t, tab).Frames
		t0 := evalJS[float64](t, tab, `document.getElementById('video').currentTime`)
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(3 * time.Second):
		}
		f := readPlayback(t, tab).Frames - f0
		if d := evalJS[float64](t, tab, `document.getElementById('video').currentTime`) - t0; !managed || d < 2 || f < 45 {
			t.Errorf("with ManagedMediaSource only: used it %v, playhead +%.1f s and %d frames in 3 s", managed, d, f)
		}
	})

	// Browsers' autoplay policies: play() with sound refused without a
	// user gesture, or any play() refused (window.__gesture lets it through,
	// as a click would).
	const autoplayPolicy = `localStorage.clear();
const play0 = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (window.__gesture || (this.muted && !window.__noMuted)) return play0.call(this);
  return Promise.reject(new DOMException('play() needs a user gesture', 'NotAllowedError'));
};`
	t.Run("autoplay-muted", func(t *testing.T) {
		tab := openPage(t, bctx, base+"/watch/demo", autoplayPolicy)
		waitPlaying(t, tab)
		// The 'playing' event comes before play()'s promise settles, and the
		// unmute button shows when it does: wait for it, briefly.
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](`document.getElementById('video').muted && !document.getElementById('unmute').hidden`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
			t.Errorf("autoplay with sound refused: the player did not play muted with its unmute button showing: %v", err)
		}
		if evalJS[bool](t, tab, `document.getElementById('unmute').click(); document.getElementById('video').muted`) {
			t.Error("the unmute button left the video muted")
		}
	})
	t.Run("autoplay-blocked", func(t *testing.T) {
		tab := openPage(t, bctx, base+"/watch/demo", autoplayPolicy+`window.__noMuted = true;`)
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.seedcastPlayer && window.seedcastPlayer.state === 'paused' && !document.getElementById('big-play').hidden`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("autoplay refused: no click-to-play: %v %+v", err, readPlayback(t, tab))
		}
		screenshot(t, tab, "watch-click-to-play", 1280, 800)
		evalJS[any](t, tab, `window.__gesture = true; document.getElementById('big-play').click()`)
		waitPlaying(t, tab)
	})

	t.Run("no-webrtc", func(t *testing.T) {
		tab := openPage(t, bctx, base+"/watch/demo",
			`localStorage.clear(); delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;`)
		waitPlaying(t, tab)
		t0 := evalJS[float64](t, tab, `document.getElementById('video').currentTime`)
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(4 * time.Second): // four seconds of real playback
		}
		p := readPlayback(t, tab)
		webrtc := evalJS[bool](t, tab, `window.seedcast.stats().webrtc`)
		notice := evalJS[string](t, tab, `document.getElementById('notice').textContent`)
		t.Logf("without WebRTC: %+v, notice %q, tracks %s", p, notice, evalJS[string](t, tab, `JSON.stringify({tracks: Object.keys(window.seedcastPlayer.tracks), selected: window.seedcastPlayer.info.selected})`))
		if p.CurrentTime-t0 < 3 || p.Frames < 60 || webrtc || !strings.Contains(notice, "HTTP only") {
			t.Errorf("without RTCPeerConnection: playhead +%.1f s, %d frames decoded, webrtc %v, notice %q", p.CurrentTime-t0, p.Frames, webrtc, notice)
		}
	})
}

// TestEmbedPage: the embed page, framed by a page of another origin on the
// --embed-origins list, tells its host of its events and obeys its
// methods; a host not on the list cannot frame it.
func TestEmbedPage(t *testing.T) {
	host := httptest.NewServer(http.FileServer(http.Dir("testdata")))
	defer host.Close()
	stranger := httptest.NewServer(http.FileServer(http.Dir("testdata")))
	defer stranger.Close()
	base := startServer(t, "--demo", "--webrtc-loopback-only", "--embed-origins", host.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	bctx := chromium(t, ctx)

	tab := openPage(t, bctx, host.URL+"/embed-host.html?src="+url.QueryEscape(base+"/embed/demo"), "")
	waitEvent := func(ev string) {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.events.includes(`+strconv.Quote(ev)+`)`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			t.Fatalf("no %q event from the embed (got %v): %v", ev, evalJS[[]string](t, tab, `window.events`), err)
		}
	}
	for _, ev := range []string{"ready", "qualitychange", "play", "playing", "stats"} {
		waitEvent(ev)
	}
	evalJS[int](t, tab, `window.events = []; window.send('pause'); 0`)
	waitEvent("pause")
	evalJS[int](t, tab, `window.send('setVolume', 0.25); window.send('setMuted', true); window.send('play'); 0`)
	waitEvent("playing")
	evalJS[int](t, tab, `window.send('getStats'); 0`)
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`window.replies.some(r => r.method === 'getStats' && r.value && r.value.bytesFromOrigin > 0)`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("getStats was not answered with stats: %v", evalJS[any](t, tab, `window.replies`))
	}
	evalJS[int](t, tab, `window.send('setRelay', 'high'); window.send('nonsense'); 0`)
	waitEvent("relaychange")
	waitEvent("error")
	screenshot(t, tab, "embed-host-desktop", 1280, 900)
	screenshot(t, tab, "embed-host-phone", 390, 844)

	// A host that is not on the list: the browser refuses to frame the
	// player, so it never says ready.
	other := openPage(t, bctx, stranger.URL+"/embed-host.html?src="+url.QueryEscape(base+"/embed/demo"), "")
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(5 * time.Second): // time for a framed player to load and say ready
	}
	if evs := evalJS[[]string](t, other, `window.events`); len(evs) > 0 {
		t.Errorf("a host off the --embed-origins list got events %v", evs)
	}
}
