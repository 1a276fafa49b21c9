package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/bench"
	"github.com/seedcast/seedcast/sfu"
	"github.com/seedcast/seedcast/swarm"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// lowFDLimit runs the server as a host with the common 1,024-fd limit
// would: soft and hard.
var lowFDLimit = []string{"prlimit", "--nofile=1024:1024", "--"}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1 // exited; the caller's checks say so
	}
	return len(ents)
}

// recvOffer is a WHEP offer (video and audio, receive only) taken before
// ICE gathering, so it names no candidate: a server answering it never
// connects.
func recvOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// fromAddr is an HTTP client whose connections come from local (another
// loopback address: an attacker apart from the real viewers).
func fromAddr(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

// watchServer polls what must keep working during an attack: /healthz,
// the demo's playlist, and the server's open fds, until stop.
type watchServer struct {
	mu       sync.Mutex
	maxFDs   int
	polls    int
	failures []string
}

func (w *watchServer) run(t *testing.T, ctx context.Context, base string, pid int, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		fds := openFDs(t, pid)
		var fails []string
		for _, path := range []string{"/healthz", "/live/demo/v0/index.m3u8"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			resp, err := client.Do(req)
			if err != nil {
				fails = append(fails, path+": "+err.Error())
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				fails = append(fails, fmt.Sprintf("%s: %d", path, resp.StatusCode))
			}
		}
		w.mu.Lock()
		w.maxFDs = max(w.maxFDs, fds)
		w.polls++
		w.failures = append(w.failures, fails...)
		w.mu.Unlock()
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// metric returns the sum of a metric's samples whose labels contain every
// one of match, from /metrics.
func metric(t *testing.T, base, name string, match ...string) float64 {
	t.Helper()
	_, body := get(t, base+"/metrics")
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? (\S+)$`)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		ok := true
		for _, l := range match {
			ok = ok && strings.Contains(m[1], l)
		}
		if v, err := strconv.ParseFloat(m[2], 64); ok && err == nil {
			sum += v
		}
	}
	return sum
}

// waitLive waits for the demo to list media in its playlist.
func waitLive(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/live/demo/v0/index.m3u8", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), "#EXTINF") {
				return
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond): // polling the server's state
		}
	}
	t.Fatal("demo not live")
}

// whepViewer plays the stream over WHEP with pion, as a real viewer, and
// returns once a video RTP packet arrived.
func whepViewer(ctx context.Context, url string) error {
	api := webrtc.NewAPI(webrtc.WithSettingEngine(sfu.LoopbackICE(0).SettingEngine()))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	got := make(chan struct{})
	var once sync.Once
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		if _, _, err := tr.ReadRTP(); err == nil {
			once.Do(func() { close(got) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	<-gathered
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("WHEP: %d %s", resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return err
	}
	select {
	case <-got:
		if loc := resp.Header.Get("Location"); loc != "" {
			req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, strings.TrimSuffix(url, "/whep/demo")+loc, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no video RTP: %w", ctx.Err())
	}
}

// TestWHEPFlood: 300 WHEP offers that never complete ICE, from one
// address, at a server limited to 1,024 open files. The excess get 429 (or
// 503), the server's fds stay far from its limit, and /healthz, the
// playlist and a real WHEP viewer from another address keep working
// throughout. Before the caps, 127 such sessions exhausted the fds and
// everything failed with "too many open files" (issue 10).
func TestWHEPFlood(t *testing.T) {
	// Default ICE (every interface), as a public server runs: ~8 fds per
	// peer connection.
	proc := startServerProc(t, lowFDLimit, "--demo")
	base, pid := proc.base, proc.pid
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitLive(t, ctx, base)
	baseFDs := openFDs(t, pid)

	stop, watched := make(chan struct{}), make(chan struct{})
	var w watchServer
	go w.run(t, ctx, base, pid, stop, watched)

	offer := recvOffer(t)
	attacker := fromAddr("127.0.0.2")
	var mu sync.Mutex
	codes := map[int]int{}
	var errs []string
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/whep/demo", strings.NewReader(offer))
				req.Header.Set("Content-Type", "application/sdp")
				resp, err := attacker.Do(req)
				mu.Lock()
				if err != nil {
					errs = append(errs, err.Error())
				} else {
					codes[resp.StatusCode]++
				}
				mu.Unlock()
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	viewer := make(chan error, 1)
	for i := range 300 {
		if i == 100 { // the flood is under way: a real viewer arrives
			go func() {
				vctx, done := context.WithTimeout(ctx, 20*time.Second)
				defer done()
				viewer <- whepViewer(vctx, base+"/whep/demo")
			}()
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := <-viewer; err != nil {
		t.Errorf("real WHEP viewer during the flood: %v", err)
	}
	close(stop)
	<-watched

	t.Logf("300 offers: %v (transport errors %d); fds %d before, at most %d during; %d polls of /healthz and the playlist",
		codes, len(errs), baseFDs, w.maxFDs, w.polls)
	if len(errs) > 0 {
		t.Errorf("transport errors: %d, first %s", len(errs), errs[0])
	}
	refused := codes[http.StatusTooManyRequests] + codes[http.StatusServiceUnavailable]
	if refused < 250 || codes[http.StatusCreated]+refused != 300 {
		t.Errorf("codes %v: want only 201, 429 and 503, and most refused", codes)
	}
	if w.maxFDs > 600 {
		t.Errorf("server fds reached %d of 1024", w.maxFDs)
	}
	if len(w.failures) > 0 {
		t.Errorf("%d failed polls during the flood, first: %s", len(w.failures), w.failures[0])
	}
	if n := metric(t, base, "seedcast_peer_connections_refused_total", `kind="whep"`); int(n) != refused {
		t.Errorf("refusals counted %v, want %d", n, refused)
	}
}

// TestSeedOfferFlood: three tracker connections, linked to the origin's
// seed as viewers, send it 60 offers each that never complete ICE, at a
// server limited to 1,024 open files. The seed keeps one link per peer and
// paces each peer's offers, the refusals are counted, fds stay far from
// the limit, and /healthz, the playlist and a real swarm viewer (fed by the
// seed) keep working. Before, 180 such offers exhausted the fds (issue 10).
func TestSeedOfferFlood(t *testing.T) {
	proc := startServerProc(t, lowFDLimit, "--demo")
	base, pid := proc.base, proc.pid
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitLive(t, ctx, base)
	// The seed restarts once the demo's audio shows up; viewers that join
	// while it is down fetch over HTTP until their dial times out.
	proc.waitLog(t, ctx, "seed node up", `["a0","v0"]`)
	baseFDs := openFDs(t, pid)
	stop, watched := make(chan struct{}), make(chan struct{})
	var w watchServer
	go w.run(t, ctx, base, pid, stop, watched)

	offer := recvOffer(t) // any offer the seed's pion parses will do
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/tracker"
	var sent int
	for range 3 {
		tc, err := swarm.DialTracker(ctx, swarm.TrackerParams{URL: wsURL, Join: protocol.Join{Stream: "demo", Kind: protocol.KindNative}})
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		linked := false
		for _, u := range tc.Welcome().Upstreams {
			linked = linked || u.Peer == protocol.OriginPeer
		}
		if !linked {
			t.Fatalf("a relay-off joiner of a quiet swarm should be linked to the origin: %+v", tc.Welcome().Upstreams)
		}
		for range 60 {
			if err := tc.Signal(ctx, protocol.OriginPeer, &protocol.SDP{Type: "offer", SDP: offer}, nil); err != nil {
				t.Fatalf("signal: %v", err)
			}
			sent++
		}
	}
	// A real swarm viewer, fed by the seed, while the offers land.
	stats := filepath.Join(t.TempDir(), "v.jsonl")
	out, err := exec.CommandContext(ctx, binary, "viewer", "--server", base, "--stream", "demo", "--relay", "off",
		"--stats-interval", "500ms", "--stats-json", stats, "--duration", "8s", "--webrtc-loopback-only").CombinedOutput()
	if err != nil {
		t.Fatalf("viewer: %v\n%s", err, out)
	}
	close(stop)
	<-watched
	data, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var last bench.NodeLine
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatal(err)
	}
	refused := metric(t, base, "seedcast_peer_connections_refused_total", `kind="seed"`)
	t.Logf("%d offers to the seed: %v refused; fds %d before, at most %d during; viewer got %d bytes from the seed, %d late of %d",
		sent, refused, baseFDs, w.maxFDs, last.BytesFromSeed, last.ChunksLate, last.ChunksOnTime+last.ChunksLate)
	if last.BytesFromSeed == 0 {
		t.Errorf("the real viewer got nothing from the seed: %+v", last)
	}
	if w.maxFDs > 400 {
		t.Errorf("server fds reached %d of 1024", w.maxFDs)
	}
	if len(w.failures) > 0 {
		t.Errorf("%d failed polls during the flood, first: %s", len(w.failures), w.failures[0])
	}
	if refused < float64(sent)/2 {
		t.Errorf("%v of %d flood offers refused, want most", refused, sent)
	}
}
