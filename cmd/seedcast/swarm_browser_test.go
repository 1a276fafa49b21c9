package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedcast/seedcast/bench"
)

// pageStats is what window.seedcast.stats() returns (the fields read here).
type pageStats struct {
	Peers           int     `json:"peers"`
	BytesFromPeers  float64 `json:"bytesFromPeers"`
	BytesFromOrigin float64 `json:"bytesFromOrigin"`
	BytesFromSeed   float64 `json:"bytesFromSeed"`
	BytesUploaded   float64 `json:"bytesUploaded"`
	ChunksOnTime    int     `json:"chunksOnTime"`
	ChunksLate      int     `json:"chunksLate"`
	Rejected        int     `json:"rejected"`
	MaxDepth        int     `json:"maxDepth"`
	RelayBudgetKbps float64 `json:"relayBudgetKbps"`
	Throttled       bool    `json:"throttled"`
	LatencyToLiveMs float64 `json:"latencyToLiveMs"`
	LatencyP50Ms    float64 `json:"latencyP50Ms"` // ingest to held, of the last 512 chunks
	LatencyP95Ms    float64 `json:"latencyP95Ms"`
}

func readStats(t testing.TB, tab context.Context) pageStats {
	t.Helper()
	raw := evalJS[json.RawMessage](t, tab, `window.seedcast && window.seedcast.stats ? window.seedcast.stats() : null`)
	var s pageStats
	_ = json.Unmarshal(raw, &s)
	return s
}

// settingsJS makes a page's bandwidth settings: a 10 Mbit/s line with half
// reserved, and the given relay level.
func settingsJS(relay string) string {
	return fmt.Sprintf(`localStorage.setItem('seedcast.settings.v1', JSON.stringify({upMode: 'manual', upManualKbps: 10000, reservePct: 50, relay: %q}))`, relay)
}

// nativeViewer runs `seedcast viewer` until ctx ends or dur passes, its
// stats in a JSON-lines file; wait returns its last line.
type nativeViewer struct {
	stats string
	done  chan error
	out   *strings.Builder
}

// startNative starts viewer i; flags in extra come last, so they override
// the defaults (e.g. "--relay", "off").
func startNative(t testing.TB, ctx context.Context, base, dir string, i int, dur time.Duration, extra ...string) *nativeViewer {
	t.Helper()
	v := &nativeViewer{stats: filepath.Join(dir, fmt.Sprintf("native%d.jsonl", i)), done: make(chan error, 1), out: &strings.Builder{}}
	args := append([]string{"viewer", "--server", base, "--stream", "demo",
		"--upload", "10Mbps", "--reserve", "5Mbps", "--relay", "medium",
		"--stats-interval", "1s", "--stats-json", v.stats, "--duration", dur.String(), "--webrtc-loopback-only"}, extra...)
	cmd := exec.CommandContext(ctx, binary, args...)
	// Ending ctx stops it as an operator would: SIGTERM, and a clean exit.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Stdout, cmd.Stderr = v.out, v.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.done <- cmd.Wait() }()
	return v
}

func (v *nativeViewer) lines(t testing.TB) []bench.NodeLine {
	t.Helper()
	data, _ := os.ReadFile(v.stats)
	var ls []bench.NodeLine
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var x bench.NodeLine
		if json.Unmarshal([]byte(l), &x) == nil {
			ls = append(ls, x)
		}
	}
	return ls
}

// TestBrowserSwarm: three browser players and five `seedcast viewer` nodes
// behind an origin that seeds at most two copies. Each browser gets at
// least half its media from peers, browsers upload to native nodes and to
// each other, nothing is rejected, and continuity is at least 99%. A
// browser that joined with relay off uploads nothing, and once its slider
// moves to high it uploads within seconds, on the same node (no reconnect).
func TestBrowserSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("a swarm of 3 browsers and 5 native nodes for a minute")
	}
	base := startServer(t, "--demo", "--webrtc-loopback-only", "--origin-slots", "8")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bctx := chromium(t, ctx)
	dir := t.TempDir()

	// The native viewers run until the test ends them (however long a busy
	// machine makes the steps before the dashboard's count).
	nctx, stopNatives := context.WithCancel(ctx)
	var natives []*nativeViewer
	defer func() {
		stopNatives()
		for _, v := range natives {
			if err := <-v.done; err != nil && ctx.Err() == nil {
				t.Errorf("native viewer: %v\n%s", err, v.out)
			}
		}
	}()
	// Three native relays first, fed by the origin; then the browsers (one
	// with relay off), then two more native nodes.
	for i := range 3 {
		natives = append(natives, startNative(t, nctx, base, dir, i, 10*time.Minute))
	}
	pause0 := time.NewTimer(3 * time.Second) // the relays link up before the browsers join
	select {
	case <-ctx.Done():
	case <-pause0.C:
	}
	var tabs []context.Context
	for i, relay := range []string{"medium", "medium", "off"} {
		tabs = append(tabs, openPage(t, bctx, base+"/watch/demo", settingsJS(relay)))
		waitPlaying(t, tabs[i])
	}
	for i := 3; i < 5; i++ {
		natives = append(natives, startNative(t, nctx, base, dir, i, 10*time.Minute))
	}
	pause := func(d time.Duration) {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(d): // the swarm runs in real time
		}
	}
	pause(15 * time.Second) // settle
	before := make([]pageStats, len(tabs))
	for i, tab := range tabs {
		before[i] = readStats(t, tab)
	}
	nativeBefore := make([]bench.NodeLine, len(natives))
	for i, v := range natives {
		if ls := v.lines(t); len(ls) > 0 {
			nativeBefore[i] = ls[len(ls)-1]
		}
	}
	pause(20 * time.Second)
	var onTime, late, rejected int
	var browserUp float64
	for i, tab := range tabs {
		s := readStats(t, tab)
		peers, origin := s.BytesFromPeers-before[i].BytesFromPeers, s.BytesFromOrigin-before[i].BytesFromOrigin
		up := s.BytesUploaded - before[i].BytesUploaded
		onTime += s.ChunksOnTime - before[i].ChunksOnTime
		late += s.ChunksLate - before[i].ChunksLate
		rejected += s.Rejected
		seed := s.BytesFromSeed - before[i].BytesFromSeed
		t.Logf("browser %d: %.0f%% of %.0f kB from peers (from the origin: %.0f kB by its seed, %.0f kB over HTTP), uploaded %.0f kB, %d peers, depth %d, relay %.0f kbit/s",
			i, 100*peers/max(peers+origin, 1), (peers+origin)/1000, seed/1000, (origin-seed)/1000, up/1000, s.Peers, s.MaxDepth, s.RelayBudgetKbps)
		if peers < origin {
			t.Errorf("browser %d got %.0f kB from peers and %.0f kB from the origin: want at least half from peers", i, peers/1000, origin/1000)
		}
		if i < 2 {
			browserUp += up
		} else if up != 0 || s.BytesUploaded != 0 {
			t.Errorf("browser %d, relay off, uploaded %.0f bytes", i, s.BytesUploaded)
		}
	}
	var nativePeers float64
	for i, v := range natives {
		ls := v.lines(t)
		if len(ls) == 0 {
			t.Fatalf("native viewer %d wrote no stats\n%s", i, v.out)
		}
		l := ls[len(ls)-1]
		onTime += l.ChunksOnTime - nativeBefore[i].ChunksOnTime
		late += l.ChunksLate - nativeBefore[i].ChunksLate
		rejected += l.Rejected
		nativePeers += float64(l.BytesFromPeers - nativeBefore[i].BytesFromPeers)
	}
	// The dashboard sums what the viewers report: it agrees with the sum of
	// their own figures (read from the same moment, give or take a report).
	var d struct {
		Viewers, Browsers, Natives      int
		BytesFromPeers, BytesFromOrigin float64
	}
	_, body := get(t, base+"/live/demo/dashboard.json")
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	var sumPeers, sumOrigin float64
	for _, tab := range tabs {
		s := readStats(t, tab)
		sumPeers += s.BytesFromPeers
		sumOrigin += s.BytesFromOrigin
	}
	for _, v := range natives {
		if ls := v.lines(t); len(ls) > 0 {
			sumPeers += float64(ls[len(ls)-1].BytesFromPeers)
			sumOrigin += float64(ls[len(ls)-1].BytesFromOrigin)
		}
	}
	t.Logf("dashboard: %d viewers (%d browsers, %d native), %.0f kB from peers, %.0f kB from the server; the viewers' own: %.0f kB and %.0f kB",
		d.Viewers, d.Browsers, d.Natives, d.BytesFromPeers/1000, d.BytesFromOrigin/1000, sumPeers/1000, sumOrigin/1000)
	if d.Viewers != 8 || d.Browsers != 3 || d.Natives != 5 {
		t.Errorf("dashboard counts %d viewers, %d browsers, %d natives; want 8, 3, 5", d.Viewers, d.Browsers, d.Natives)
	}
	all, sum := d.BytesFromPeers+d.BytesFromOrigin, sumPeers+sumOrigin
	if all < 0.95*sum || all > 1.05*sum || d.BytesFromPeers < 0.95*sumPeers || d.BytesFromPeers > 1.05*sumPeers {
		t.Errorf("the dashboard's bytes (%.0f kB, %.0f from peers) are not within 5%% of the viewers' own (%.0f kB, %.0f from peers)", all/1000, d.BytesFromPeers/1000, sum/1000, sumPeers/1000)
	}
	dash := openPage(t, bctx, base+"/live/demo/dashboard", "")
	if _, err := chromedp.Run(dash, chromedp.Poll[bool](`document.getElementById('d-viewers').textContent === '8'`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the dashboard page does not show 8 viewers: %v", err)
	}
	pause(3 * time.Second)
	screenshot(t, dash, "dashboard-desktop", 1280, 900)
	screenshot(t, dash, "dashboard-phone", 390, 844)

	continuity := float64(onTime) / float64(max(onTime+late, 1))
	t.Logf("20 s: continuity %.4f (%d on time, %d late), %d rejected; browsers uploaded %.0f kB, natives got %.0f kB from peers",
		continuity, onTime, late, rejected, browserUp/1000, nativePeers/1000)
	if browserUp == 0 {
		t.Error("the relaying browsers uploaded nothing")
	}
	if rejected > 0 {
		t.Errorf("%d chunks or batches rejected", rejected)
	}
	if continuity < 0.99 {
		t.Errorf("continuity %.4f, want ≥ 0.99", continuity)
	}

	// The relay-off browser moves its slider to high: it uploads within
	// seconds, on the node it runs (its player generation is unchanged).
	gen := evalJS[int](t, tabs[2], `window.seedcastPlayer.gen`)
	evalJS[int](t, tabs[2], `document.getElementById('settings-btn').click(); document.querySelector('input[name=relay][value=high]').click(); 0`)
	var late2 []*nativeViewer
	var once sync.Once
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := readStats(t, tabs[2])
		if s.BytesUploaded > 0 {
			t.Logf("relay off → high: uploading (%.0f bytes, budget %.0f kbit/s)", s.BytesUploaded, s.RelayBudgetKbps)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the browser moved to high relay uploaded nothing in 30 s: %+v", s)
		}
		// Newcomers need upstreams: the browser's new slots are there for them.
		once.Do(func() {
			for i := 5; i < 7; i++ {
				late2 = append(late2, startNative(t, nctx, base, dir, i, 10*time.Minute))
			}
		})
		pause(time.Second)
	}
	natives = append(natives, late2...)
	if g := evalJS[int](t, tabs[2], `window.seedcastPlayer.gen`); g != gen {
		t.Errorf("the player restarted (generation %d → %d) to change its relay", gen, g)
	}
	screenshot(t, tabs[0], "watch-swarm-desktop", 1280, 800)
}
