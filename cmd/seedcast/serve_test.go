package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/tracker/protocol"
)

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "seedcast-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "seedcast")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every test ends what it started: servers, browsers, clients.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startServer runs `seedcast serve` with args on a free loopback port and
// returns its base URL once it listens. The process is stopped (SIGTERM, and
// checked to exit cleanly) when the test ends.
func startServer(t testing.TB, args ...string) string {
	t.Helper()
	return startServerProc(t, nil, args...).base
}

// serverProc is a running `seedcast serve`.
type serverProc struct {
	base string
	pid  int

	mu   sync.Mutex
	logs []string // its log lines so far
	more chan struct{}

	// stop stops the server now (SIGTERM, checked to exit cleanly), before
	// the test ends; the test's cleanup then does nothing more.
	stop func()
}

// readLogs keeps every line of r in the process's log, calling onLine
// (nil: nothing) on each, until r ends.
func (p *serverProc) readLogs(r io.Reader, onLine func([]byte)) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.logs = append(p.logs, sc.Text())
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
		if onLine != nil {
			onLine(sc.Bytes())
		}
	}
}

// waitLog waits until the server logged a line containing every one of
// subs.
func (p *serverProc) waitLog(t testing.TB, ctx context.Context, subs ...string) {
	t.Helper()
	seen := 0
	for {
		p.mu.Lock()
		lines, more := p.logs[seen:], p.more
		seen = len(p.logs)
		p.mu.Unlock()
		for _, l := range lines {
			all := true
			for _, s := range subs {
				all = all && strings.Contains(l, s)
			}
			if all {
				return
			}
		}
		select {
		case <-more:
		case <-ctx.Done():
			t.Fatalf("server never logged %q", subs)
		}
	}
}

// startServerProc is startServer run under the command wrap (prlimit, say;
// nil: none), returning the server's pid and log as well.
func startServerProc(t testing.TB, wrap []string, args ...string) *serverProc {
	t.Helper()
	argv := append(slices.Clone(wrap), binary, "serve", "--addr", "127.0.0.1:0", "--log-format", "json")
	if !slices.Contains(args, "--chat-dir") { // never the user's own history
		argv = append(argv, "--chat-dir", t.TempDir())
	}
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	proc := &serverProc{pid: cmd.Process.Pid, more: make(chan struct{})}
	go func() {
		proc.readLogs(stderr, func(line []byte) {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
			if testing.Verbose() {
				t.Log(string(line))
			}
		})
		exited <- cmd.Wait()
	}()
	proc.stop = sync.OnceFunc(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("server exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("server did not stop within 10 s of SIGTERM")
		}
	})
	t.Cleanup(proc.stop)
	select {
	case a := <-addr:
		proc.base = "http://" + a
		return proc
	case err := <-exited:
		t.Fatalf("server exited before listening: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("server did not listen within 20 s")
	}
	return nil
}

func get(t testing.TB, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: run the README's test command (scripts/test), which installs Debian's ffmpeg", name)
	}
	return p
}

// TestServeDemo runs the demo as a user would and reads it with Debian's
// ffprobe and ffmpeg, then checks every chunk against the signed manifest.
func TestServeDemo(t *testing.T) {
	ffprobe, ffmpeg := tool(t, "ffprobe"), tool(t, "ffmpeg")
	base := startServer(t, "--demo")
	playlist := base + "/live/demo/index.m3u8"

	// Blocking playlist reload, one segment at a time (each wait is bounded by
	// three target durations): returns once segment msn of the video exists.
	for msn := 0; msn <= 2; msn++ {
		resp, body := get(t, fmt.Sprintf("%s/live/demo/v0/index.m3u8?_HLS_msn=%d", base, msn))
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(fmt.Sprintf("seg/%d.m4s", msn))) {
			t.Fatalf("blocking reload for segment %d: %d\n%s", msn, resp.StatusCode, body)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", playlist).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	for _, codec := range []string{"h264", "opus"} {
		if !strings.Contains(string(out), codec) {
			t.Errorf("ffprobe found no %s stream:\n%s", codec, out)
		}
	}
	out, err = exec.CommandContext(ctx, ffmpeg, "-nostdin", "-v", "error", "-i", playlist, "-t", "5", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg decoding 5 s: %v\n%s", err, out)
	}

	// Every chunk and init segment of the manifest hashes to its name, and
	// every batch verifies with the stream's key.
	_, body := get(t, base+"/live/demo/manifest")
	m, err := manifest.DecodeManifest(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := m.Key()
	entries, err := m.Verify(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.InitSegments) != 2 || len(m.Entries) < 8 {
		t.Fatalf("manifest holds %d init segments and %d chunks", len(m.InitSegments), len(m.Entries))
	}
	for _, e := range entries {
		resp, data := get(t, base+"/c/"+e.Hash.String())
		if resp.StatusCode != 200 || manifest.Sum(data) != e.Hash || len(data) != int(e.Size) {
			t.Fatalf("/c/%s: status %d, %d bytes, hash mismatch=%v", e.Hash, resp.StatusCode, len(data), manifest.Sum(data) != e.Hash)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("Cache-Control %q", cc)
		}
	}
	etagURL := base + "/c/" + entries[0].Hash.String()
	if resp, _ := get(t, etagURL, "If-None-Match", `"`+entries[0].Hash.String()+`"`); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	// A segment is its chunks, concatenated: segment 1 is the demo's second
	// 1 s GOP.
	per := uint64(time.Second / manifest.DefaultChunkDuration)
	_, seg := get(t, base+"/live/demo/a0/seg/1.m4s")
	var want []byte
	for _, e := range m.Entries {
		if e.Rendition == "a0" && e.Seq >= per && e.Seq < 2*per {
			_, data := get(t, base+"/c/"+e.Hash.String())
			want = append(want, data...)
		}
	}
	if len(seg) == 0 || !bytes.Equal(seg, want) {
		t.Errorf("a0 segment 1: %d bytes, chunks %d–%d make %d", len(seg), per, 2*per-1, len(want))
	}
}

func TestServeBadRequests(t *testing.T) {
	base := startServer(t, "--demo")
	// Wait for media so that the 404s below are about names, not timing.
	get(t, base+"/live/demo/v0/index.m3u8?_HLS_msn=0&_HLS_part=0")
	cases := []struct {
		path string
		hdr  []string
		want int
	}{
		{"/c/zz", nil, 400},
		{"/c/" + strings.Repeat("g", 64), nil, 400},
		{"/c/" + strings.Repeat("a", 64), nil, 404},
		{"/live/nope/manifest", nil, 404},
		{"/live/nope/index.m3u8", nil, 404},
		{"/live/demo/v9/index.m3u8", nil, 404},
		{"/live/demo/v0/index.m3u8?_HLS_msn=99999", nil, 400},
		{"/live/demo/v0/index.m3u8?_HLS_msn=x", nil, 400},
		{"/live/demo/v0/index.m3u8?_HLS_msn=0&_HLS_part=-1", nil, 400},
		{"/live/demo/v0/seg/abc", nil, 400},
		{"/live/demo/v0/seg/99999.m4s", nil, 404},
		{"/healthz", nil, 200},
		{"/live/demo/manifest", []string{"X-Big", strings.Repeat("x", 32<<10)}, 431},
	}
	for _, c := range cases {
		if resp, body := get(t, base+c.path, c.hdr...); resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d (%s)", c.path, resp.StatusCode, c.want, bytes.TrimSpace(body))
		}
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`seedcast_chunks_total{rendition="v0",stream="demo"}`,
		`seedcast_chunk_duration_seconds_bucket{kind="audio"`,
		`seedcast_http_requests_total{code="400",route="chunk"} 2`,
		`seedcast_http_requests_total{code="404",route="manifest"} 1`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Flags can be set through SEEDCAST_ environment variables, and bad values
// are refused before anything starts.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Setenv("SEEDCAST_CHUNK_DURATION", "50ms")
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--chunk-duration 50ms") {
		t.Errorf("SEEDCAST_CHUNK_DURATION=50ms: %v", err)
	}
	t.Setenv("SEEDCAST_CHUNK_DURATION", "")
	t.Setenv("SEEDCAST_LOG_FORMAT", "xml")
	if err := run(context.Background(), []string{"serve"}, io.Discard, &stderr); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("SEEDCAST_LOG_FORMAT=xml: %v", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &stderr); err != nil || !strings.HasPrefix(out.String(), "seedcast ") {
		t.Errorf("version: %v %q", err, out.String())
	}
}

// TestPublishCommand publishes an MP4 file with `seedcast publish`, as a user
// would, into a server that knows the stream's key; a wrong key is refused.
func TestPublishCommand(t *testing.T) {
	const key = "publish-test-key-0123"
	base := startServer(t, "--stream-key", "film="+key, "--webrtc-loopback-only")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	file := filepath.Join("..", "..", "media", "testdata", "short.mp4") // 0.1 s: 3 frames, 5 packets

	out, err := exec.CommandContext(ctx, binary, "publish", "--whip", base+"/whip/film", "--token", "wrong-key-0123456789",
		"--file", file, "--webrtc-loopback-only").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("wrong key: %v\n%s", err, out)
	}

	pub := exec.CommandContext(ctx, binary, "publish", "--whip", base+"/whip/film", "--token", key,
		"--file", file, "--loops", "30", "--webrtc-loopback-only")
	if out, err := pub.CombinedOutput(); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	// 3 s of media went in; the stream's playlist has its segments.
	resp, body := get(t, base+"/live/film/v0/index.m3u8")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("seg/0.m4s")) {
		t.Errorf("playlist after publishing: %d\n%s", resp.StatusCode, body)
	}
}

// TestTrackerJoin joins the demo stream's swarm over the tracker WebSocket:
// the welcome carries the same stream key the HTTP manifest does, and a
// private stream refuses a viewer without a token.
func TestTrackerJoin(t *testing.T) {
	const tokenKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	base := startServer(t, "--demo", "--stream-key", "secret=private-stream-key-01",
		"--private-stream", "secret", "--viewer-token-key", tokenKey)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/tracker"

	join := func(stream, token string) (*websocket.Conn, []byte, error) {
		ws, _, err := websocket.Dial(ctx, wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := json.Marshal(protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: stream, Token: token, Kind: protocol.KindNative, BudgetKbps: 1000})
		if err := ws.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		_, data, err := ws.Read(ctx)
		return ws, data, err
	}
	ws, data, _ := join("demo", "")
	defer ws.CloseNow()
	m, err := protocol.DecodeServer(data)
	w, ok := m.(*protocol.Welcome)
	if err != nil || !ok {
		t.Fatalf("welcome: %v %s", err, data)
	}
	_, body := get(t, base+"/live/demo/manifest")
	var served struct{ PublicKey string }
	_ = json.Unmarshal(body, &served)
	if w.PublicKey == "" || w.PublicKey != served.PublicKey || w.Manifest != "/live/demo/manifest" || len(w.Upstreams) != 4 {
		t.Errorf("welcome %+v, manifest key %s", w, served.PublicKey)
	}

	refused, data, err := join("secret", "")
	defer refused.CloseNow()
	if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Errorf("private stream without token: %s %v", data, err)
	}

	out, err := exec.CommandContext(ctx, binary, "token", "--viewer-token-key", tokenKey, "--stream", "secret").Output()
	if err != nil {
		t.Fatal(err)
	}
	ok2, data, _ := join("secret", strings.TrimSpace(string(out)))
	defer ok2.CloseNow()
	if m, _ := protocol.DecodeServer(data); m == nil {
		t.Errorf("private stream with a token from `seedcast token`: %s", data)
	}
}

// TestViewerCommand runs `seedcast viewer` against `serve --demo` as a user
// would: it writes one JSON stats object per interval, with cumulative
// counters that only grow and chunks that arrived on time.
func TestViewerCommand(t *testing.T) {
	base := startServer(t, "--demo")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stats := filepath.Join(t.TempDir(), "stats.jsonl")
	out, err := exec.CommandContext(ctx, binary, "viewer", "--server", base, "--stream", "demo", "--relay", "off",
		"--stats-interval", "500ms", "--stats-json", stats, "--duration", "5s", "--webrtc-loopback-only").CombinedOutput()
	if err != nil {
		t.Fatalf("viewer: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "continuity=") {
		t.Errorf("no status line:\n%s", out)
	}
	data, err := os.ReadFile(stats)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 6 {
		t.Fatalf("%d stats lines", len(lines))
	}
	type line struct {
		T                                              string
		Peers                                          *int
		BytesFromPeers, BytesFromOrigin, BytesUploaded *int64
		ChunksOnTime, ChunksLate                       *int
		LatencyP50Ms, LatencyP95Ms                     *float64
		RelayBudgetKbps                                *int64
		MaxDepth                                       *int
		Throttled                                      *bool
	}
	var prev line
	for i, l := range lines {
		var cur line
		if err := json.Unmarshal([]byte(l), &cur); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, cur.T); err != nil || cur.Peers == nil || cur.BytesFromPeers == nil || cur.BytesFromOrigin == nil ||
			cur.BytesUploaded == nil || cur.ChunksOnTime == nil || cur.ChunksLate == nil || cur.LatencyP50Ms == nil || cur.LatencyP95Ms == nil || cur.RelayBudgetKbps == nil ||
			cur.MaxDepth == nil || cur.Throttled == nil {
			t.Fatalf("line %d lacks fields: %s", i, l)
		}
		if i > 0 && (*cur.BytesFromOrigin < *prev.BytesFromOrigin || *cur.ChunksOnTime < *prev.ChunksOnTime) {
			t.Errorf("line %d: counters went back", i)
		}
		prev = cur
	}
	if *prev.BytesFromOrigin == 0 || *prev.ChunksOnTime == 0 || *prev.BytesUploaded != 0 || *prev.RelayBudgetKbps != 0 {
		t.Errorf("last line %s: want media from the origin, chunks on time, and nothing uploaded with relay off", lines[len(lines)-1])
	}
}

// TestViewerSwarm is the product working as a user runs it: `serve --demo`
// sending one copy of the stream (--origin-slots 4 of 4 substreams) and
// three `seedcast viewer` relays at --relay medium. Over the last seconds
// the viewers get most of their bytes from each other, on time, and no
// relay uploads more than its budget. Every viewer keeps the playback
// delay the server's --delay sets.
func TestViewerSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("three viewer processes for 12 s")
	}
	base := startServer(t, "--demo", "--origin-slots", "4", "--webrtc-loopback-only", "--delay", "3s")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	type result struct {
		out []byte
		err error
	}
	results := make([]chan result, 3)
	for i := range results {
		results[i] = make(chan result, 1)
		stats := filepath.Join(dir, fmt.Sprintf("v%d.jsonl", i))
		go func() {
			out, err := exec.CommandContext(ctx, binary, "viewer", "--server", base, "--stream", "demo",
				"--upload", "10Mbps", "--reserve", "5Mbps", "--relay", "medium",
				"--stats-interval", "500ms", "--stats-json", stats, "--duration", "12s", "--webrtc-loopback-only").CombinedOutput()
			results[i] <- result{out, err}
		}()
		time.Sleep(300 * time.Millisecond) // joins in turn, as an audience arrives
	}
	type line struct {
		BytesFromPeers, BytesFromOrigin, BytesUploaded int64
		ChunksOnTime, ChunksLate                       int
		RelayBudgetKbps, DelayMs                       int64
		MaxDepth                                       int
	}
	var peers, origin int64
	var onTime, late int
	for i, ch := range results {
		r := <-ch
		if r.err != nil {
			t.Fatalf("viewer %d: %v\n%s", i, r.err, r.out)
		}
		data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("v%d.jsonl", i)))
		if err != nil {
			t.Fatal(err)
		}
		var ls []line
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var x line
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatal(err)
			}
			ls = append(ls, x)
		}
		if len(ls) < 20 {
			t.Fatalf("viewer %d: %d stats lines", i, len(ls))
		}
		// The last 6 s: after joining, linking and the start-up backlog.
		a, b := ls[len(ls)-13], ls[len(ls)-1]
		peers += b.BytesFromPeers - a.BytesFromPeers
		origin += b.BytesFromOrigin - a.BytesFromOrigin
		onTime += b.ChunksOnTime - a.ChunksOnTime
		late += b.ChunksLate - a.ChunksLate
		up := float64(b.BytesUploaded-a.BytesUploaded) * 8 / 1000 / 6
		t.Logf("viewer %d: depth %d, uploaded %.0f kbit/s of %d", i, b.MaxDepth, up, b.RelayBudgetKbps)
		if b.DelayMs != 3000 {
			t.Errorf("viewer %d keeps a delay of %d ms, want the server's 3000", i, b.DelayMs)
		}
		// Medium of 10 − 5 Mbit/s is 1250 kbit/s; the RTT guard may have cut
		// it on a busy machine, never raised it.
		if b.RelayBudgetKbps > 1250 || up > 1.05*1250 {
			t.Errorf("viewer %d uploaded %.0f kbit/s with a budget of 1250 (in force: %d)", i, up, b.RelayBudgetKbps)
		}
	}
	offload := float64(peers) / float64(peers+origin)
	continuity := float64(onTime) / float64(max(onTime+late, 1))
	t.Logf("last 6 s: %d bytes from peers, %d from the origin (offload %.1f%%), continuity %.2f%%", peers, origin, 100*offload, 100*continuity)
	if raceEnabled {
		return // ./scripts/test runs this again without -race for the figures
	}
	if offload <= 0.5 {
		t.Errorf("offload %.2f: the viewers should carry most of the traffic", offload)
	}
	if onTime == 0 || continuity < 0.99 {
		t.Errorf("continuity %.4f (%d on time, %d late)", continuity, onTime, late)
	}
}

// TestServeHTTPEgressCap: with --http-egress, the server sends no more
// media over HTTP than the cap allows (its 2 MiB burst, then the rate):
// past it a chunk request gets 503 with Retry-After, the refusal is
// counted in /metrics, and the native node's origin client reports it as
// swarm/core.ErrOriginBusy, on which the core leaves the origin alone and
// asks its peers. Manifests and playlists are not capped.
func TestServeHTTPEgressCap(t *testing.T) {
	base := startServer(t, "--demo", "--http-egress", "8kbps") // 1 KB/s after the 2 MiB burst
	for msn := 0; msn <= 1; msn++ {
		if resp, _ := get(t, fmt.Sprintf("%s/live/demo/v0/index.m3u8?_HLS_msn=%d", base, msn)); resp.StatusCode != 200 {
			t.Fatalf("playlist: %d", resp.StatusCode)
		}
	}
	_, body := get(t, base+"/live/demo/manifest")
	m, err := manifest.DecodeManifest(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var sent int
	var refused *http.Response
	for i := 0; refused == nil && i < 10_000; i++ {
		e := m.Entries[i%len(m.Entries)]
		resp, data := get(t, base+"/c/"+e.Hash.String())
		switch resp.StatusCode {
		case http.StatusOK:
			sent += len(data)
		case http.StatusServiceUnavailable:
			refused = resp
		default:
			t.Fatalf("/c/%s: status %d", e.Hash, resp.StatusCode)
		}
	}
	if refused == nil {
		t.Fatalf("%d bytes sent and nothing refused", sent)
	}
	if sent > 2<<20+64<<10 { // the burst, and the rate over the test's seconds
		t.Errorf("%d bytes sent before the first refusal; the cap allows 2 MiB and 1 KB/s", sent)
	}
	if refused.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if resp, _ := get(t, base+"/live/demo/manifest"); resp.StatusCode != 200 {
		t.Errorf("manifest under the cap: %d", resp.StatusCode)
	}
	_, metrics := get(t, base+"/metrics")
	if !regexp.MustCompile(`seedcast_http_egress_refused_total\{route="chunk"\} [1-9]`).Match(metrics) {
		t.Error("the refusal is not counted in seedcast_http_egress_refused_total")
	}
	// The node's origin client: the bucket refills at 1 KB/s, so a chunk
	// may go now and then; asked until refused, it says ErrOriginBusy.
	src := &swarm.HTTPSource{Server: base, Stream: "demo"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		_, err := src.Chunk(ctx, m.Entries[i%len(m.Entries)].Hash)
		if err == nil && i < 1000 {
			continue
		}
		if !errors.Is(err, core.ErrOriginBusy) {
			t.Errorf("the node's origin client: %v, want core.ErrOriginBusy", err)
		}
		break
	}
}
