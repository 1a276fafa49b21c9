package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
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

func readPlayback(t *testing.T, ctx context.Context) playback {
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
	if d := end.CurrentTime - start.CurrentTime; d < 18 || d > 22 {
		t.Errorf("currentTime advanced %.1f s in 20 s", d)
	}
	if end.Frames-start.Frames < 20*25 {
		t.Errorf("%d frames decoded in 20 s, want ≥ 500 of a 30 fps stream", end.Frames-start.Frames)
	}
	if end.Stalls > 0 {
		t.Errorf("%d stalls after start-up", end.Stalls)
	}
	// The player holds the playhead about 2 s behind the newest chunk
	// (bufferMs: what is buffered ahead of it); latency to live adds the
	// time a chunk takes to reach the page.
	for _, s := range samples[5:] {
		if s.BufferMs < 1000 || s.BufferMs > 3000 || s.LatencyMs < s.BufferMs || s.LatencyMs > s.BufferMs+1000 {
			t.Errorf("%.0f ms behind the newest chunk, latency to live %.0f ms; want 2 s ± 1 s behind, and under a second more to live", s.BufferMs, s.LatencyMs)
			break
		}
	}
	screenshot(t, bctx, "watch-desktop", 1280, 800)
}
