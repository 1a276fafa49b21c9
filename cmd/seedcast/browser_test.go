package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedcast/seedcast/manifest"
)

// chromium starts Debian's headless Chromium with fake camera and microphone
// and returns a browser context for it; extra options come last (they win).
func chromium(t testing.TB, ctx context.Context, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: run the README's test command (scripts/test), which installs Debian's chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("mute-audio", true),
	)
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser now, in bctx's tab, so that tabs opened from bctx
	// (chromedp.NewContext(bctx)) share it instead of each starting one.
	if err := chromedp.Do(bctx); err != nil { // no steps: it only allocates
		t.Fatalf("chromium: %v", err)
	}
	return bctx
}

// TestBrowserWHIP publishes Chromium's fake camera and microphone over WHIP
// from a page of another origin (CORS) into `seedcast serve`; the stream's
// chunks appear, and Debian's ffprobe reads its HLS playlist.
func TestBrowserWHIP(t *testing.T) {
	t.Run("single", func(t *testing.T) { browserWHIP(t, false) })
	t.Run("simulcast", func(t *testing.T) { browserWHIP(t, true) })
}

func browserWHIP(t *testing.T, simulcast bool) {
	ffprobe := tool(t, "ffprobe")
	const key = "browser-test-key-0123"
	base := startServer(t, "--stream-key", "cam="+key, "--webrtc-loopback-only", "--log-level", "debug")
	primary := "v0"
	if simulcast {
		primary = "v-q" // the first layer the browser sends
	}

	page := httptest.NewServer(http.FileServer(http.Dir("testdata")))
	defer page.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bctx := chromium(t, ctx)
	target := fmt.Sprintf("%s/whip.html?whip=%s&token=%s", page.URL, url.QueryEscape(base+"/whip/cam"), key)
	if simulcast {
		target += "&simulcast=1"
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(target)); err != nil {
		t.Fatal(err)
	}
	state, err := chromedp.Run(bctx, chromedp.Poll[string](`window.whipState === "connected" || window.whipState.startsWith("error") || window.whipState === "failed" ? window.whipState : false`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("browser never connected: %v", err)
	}
	if state != "connected" {
		t.Fatalf("browser publisher: %s", state)
	}
	// Chunks appear: wait (blocking playlist reloads, repeated on 503 as an
	// LL-HLS client does) for three segments. A browser sends keyframes only
	// when asked (every --gop), so a segment may take longer than the reload's
	// three target durations.
	for msn := 0; msn <= 2; {
		resp, body := get(t, fmt.Sprintf("%s/live/cam/%s/index.m3u8?_HLS_msn=%d", base, primary, msn))
		switch {
		case resp.StatusCode == 200:
			msn++
		case resp.StatusCode == http.StatusServiceUnavailable && ctx.Err() == nil:
		default:
			t.Fatalf("segment %d: %d %s", msn, resp.StatusCode, body)
		}
	}
	_, body := get(t, base+"/live/cam/manifest")
	m, err := manifest.DecodeManifest(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	key2, _ := m.Key()
	if _, err := m.Verify(key2); err != nil {
		t.Fatal(err)
	}
	independent := map[string]int{}
	for _, e := range m.Entries {
		if e.Independent {
			independent[e.Rendition]++
		}
	}
	want := []string{"v0", "a0"}
	if simulcast {
		// One rendition per layer. Chromium on a loaded 2-core machine may
		// starve its top layer, so two of the three must show keyframes.
		want = []string{"v-q", "a0"}
		layers := 0
		for _, r := range []string{"v-q", "v-h", "v-f"} {
			if independent[r] > 0 {
				layers++
			}
		}
		if layers < 2 {
			t.Errorf("%d simulcast layers with independent chunks (independent chunks: %v)", layers, independent)
		}
	}
	for _, r := range want {
		if independent[r] == 0 {
			t.Errorf("no independent chunk of %s (independent chunks: %v)", r, independent)
		}
	}
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if testing.Verbose() {
		_, mv := get(t, base+"/live/cam/index.m3u8")
		t.Logf("multivariant:\n%s", mv)
		for _, r := range []string{primary, "a0"} {
			_, pl := get(t, base+"/live/cam/"+r+"/index.m3u8")
			t.Logf("%s:\n%s", r, pl)
		}
	}
	out, err := exec.CommandContext(pctx, ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", base+"/live/cam/index.m3u8").CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	for _, codec := range []string{"h264", "opus"} {
		if !strings.Contains(string(out), codec) {
			t.Errorf("ffprobe found no %s:\n%s", codec, out)
		}
	}
	if !simulcast {
		watchWHEP(t, bctx, page.URL, base+"/whep/cam")
	}
	if os.Getenv("SEEDCAST_KEEP_SCREENSHOT") != "" {
		if png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot()); err == nil {
			_ = os.WriteFile("/tmp/whip-page.png", png, 0o644)
		}
	}
}

// watchWHEP plays the stream over WHEP in a second tab of the browser and
// waits until it has decoded and shown 30 frames of a real picture.
func watchWHEP(t *testing.T, bctx context.Context, pageURL, whep string) {
	t.Helper()
	tab, closeTab := chromedp.NewContext(bctx)
	defer closeTab()
	if err := chromedp.Do(tab, chromedp.Navigate(pageURL+"/whep.html?whep="+url.QueryEscape(whep))); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(tab, chromedp.Poll[string](`(window.whepState.startsWith("error") || window.whepState === "failed") ? window.whepState :
		(window.videoFrames >= 30 && document.getElementById("v").videoWidth > 0) ?
		"playing " + document.getElementById("v").videoWidth + "x" + document.getElementById("v").videoHeight : false`,
		chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("WHEP player never played 30 frames: %v", err)
	}
	if !strings.HasPrefix(got, "playing ") {
		t.Fatalf("WHEP player: %s", got)
	}
	t.Logf("WHEP player in Chromium: %s", got)
}
