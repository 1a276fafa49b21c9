package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedcast/seedcast/bench"
)

// BenchmarkBrowserRelay measures the web player in headless Chromium (Debian's
// package) against real `seedcast serve --demo` and `seedcast viewer`
// processes, in three phases, each on a fresh server whose demo stream has
// run 5 s before the first viewer joins:
//
//   - idle: one page with relay off, alone on a server with plenty of origin
//     slots (depth 1). Its latency to live (the player's latencyToLiveMs)
//     is sampled once a second for 20 s from the start of playback
//     (depth1-latency-p50-ms, depth1-latency-p95-ms), then the CPU time of
//     Chromium's renderer and GPU processes over 30 s
//     (renderer-cpu-idle-relay-%, gpu-cpu-idle-relay-%).
//   - relay: `--origin-slots 4` (the origin's seed sends one copy); one page
//     with relay high (2.5 Mbit/s of a 10 Mbit/s line, half kept) joins
//     first and takes that copy, then three `seedcast viewer --relay off`,
//     which only the page can feed. Over 30 s: the page's upload
//     (relay-kbps, from bytesUploaded: three copies of the demo, whose
//     chunks come to about 0.55 Mbit/s) and the CPU time of the renderer
//     processes (renderer-cpu-%) and of the GPU process (gpu-cpu-%).
//   - depth 3: `--origin-slots 4`; `seedcast viewer` A (relay 640 kbit/s:
//     one copy, no more) takes the origin's copy, viewer B (relay 2000
//     kbit/s) is fed by A, then the page joins with relay off, to be fed by
//     B. Its latency to live is sampled as in the idle phase
//     (depth3-latency-p50-ms, depth3-latency-p95-ms).
//
// CPU is in percent of one core, from /proc/PID/stat (utime+stime) of the
// processes under the Chromium browser process, by their --type. The log
// gives every figure's context: the depth the page reported at each sample
// (the p50 and p95 are of the samples at the phase's depth), the other
// Chromium processes' CPU, how the viewers and the page were fed, and the
// machine's load average and busy share over each window (the figures mean
// little when both cores were saturated by something else).
//
//	go test -run '^$' -bench BrowserRelay -benchtime 1x -timeout 15m ./cmd/seedcast
func BenchmarkBrowserRelay(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	bctx := chromium(b, ctx)
	browserPid := chromedp.FromContext(bctx).Browser.Process().Pid
	dir := b.TempDir()
	wait := func(d time.Duration) {
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-time.After(d): // a measurement window: the swarm runs in real time
		}
	}

	for i := 0; i < b.N; i++ {
		// Phase 1: idle page, depth 1.
		srv := startServerProc(b, nil, "--demo", "--webrtc-loopback-only")
		waitMedia(b, srv.base)
		tab := openPage(b, bctx, srv.base+"/watch/demo", settingsJS("off"))
		waitPlaying(b, tab)
		depth1 := sampleLatency(b, tab, 20, wait)
		idle := measureCPU(b, browserPid, 30*time.Second, wait)
		s := readStats(b, tab)
		b.Logf("idle: %s; page depth %d, %d peers, uploaded %.0f B, relay %.0f kbit/s; chunks ingest to held p50 %.0f ms, p95 %.0f ms; since it started %d on time, %d late",
			idle, s.MaxDepth, s.Peers, s.BytesUploaded, s.RelayBudgetKbps, s.LatencyP50Ms, s.LatencyP95Ms, s.ChunksOnTime, s.ChunksLate)
		if s.BytesUploaded != 0 {
			b.Errorf("the relay-off page uploaded %.0f bytes", s.BytesUploaded)
		}
		closeTab(b, tab)
		srv.stop()

		// Phase 2: the page relays to three native viewers.
		srv = startServerProc(b, nil, "--demo", "--webrtc-loopback-only", "--origin-slots", "4")
		waitMedia(b, srv.base)
		tab = openPage(b, bctx, srv.base+"/watch/demo", settingsJS("high"))
		waitPlaying(b, tab)
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](`(s => !!s && s.bytesFromSeed > 0)(window.seedcast.stats())`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			b.Fatalf("the page got nothing from the origin's seed: %v; %+v", err, readStats(b, tab))
		}
		nctx, stopNatives := context.WithCancel(ctx)
		var natives []*nativeViewer
		for n := range 3 {
			natives = append(natives, startNative(b, nctx, srv.base, dir, 10*i+n, 10*time.Minute, "--relay", "off"))
		}
		// Ready when every viewer got its last second from peers only.
		fed := waitNatives(b, ctx, natives, 60*time.Second, func(prev, last bench.NodeLine) bool {
			return last.BytesFromPeers > prev.BytesFromPeers && last.BytesFromOrigin == prev.BytesFromOrigin
		})
		if !fed {
			b.Logf("relay: not every viewer was fed by peers alone within 60 s; measuring anyway")
		}
		s0 := readStats(b, tab)
		n0 := nativeLast(b, natives)
		relay := measureCPU(b, browserPid, 30*time.Second, wait)
		s1 := readStats(b, tab)
		n1 := nativeLast(b, natives)
		secs := relay.wall.Seconds()
		upKbps := (s1.BytesUploaded - s0.BytesUploaded) * 8 / 1000 / secs
		downKbps := (s1.BytesFromPeers + s1.BytesFromOrigin - s0.BytesFromPeers - s0.BytesFromOrigin) * 8 / 1000 / secs
		b.Logf("relay: %s", relay)
		b.Logf("relay: page uploaded %.0f kbit/s (%.1f× the %.0f kbit/s it received), %d peers, depth %d, budget %.0f kbit/s, throttled %v, rejected %d; chunks ingest to held p50 %.0f ms, p95 %.0f ms",
			upKbps, upKbps/max(downKbps, 1), downKbps, s1.Peers, s1.MaxDepth, s1.RelayBudgetKbps, s1.Throttled, s1.Rejected, s1.LatencyP50Ms, s1.LatencyP95Ms)
		var viewers []string
		for n := range natives {
			peers := n1[n].BytesFromPeers - n0[n].BytesFromPeers
			origin := n1[n].BytesFromOrigin - n0[n].BytesFromOrigin
			onTime, late := n1[n].ChunksOnTime-n0[n].ChunksOnTime, n1[n].ChunksLate-n0[n].ChunksLate
			viewers = append(viewers, fmt.Sprintf("%d: %.0f kbit/s from peers, %.0f from the origin, %d peers, depth %d, %d chunks on time, %d late, ingest to held p50 %.0f ms, p95 %.0f ms",
				n, float64(peers)*8/1000/secs, float64(origin)*8/1000/secs, n1[n].Peers, n1[n].MaxDepth, onTime, late, n1[n].LatencyP50Ms, n1[n].LatencyP95Ms))
		}
		b.Logf("relay: viewers %s", strings.Join(viewers, "; "))
		stopNatives()
		for _, v := range natives {
			<-v.done // killed: its error says so
		}
		closeTab(b, tab)
		srv.stop()

		// Phase 3: the page at depth 3, behind two native relays. A's budget
		// buys one copy: ⌊640·K/r⌋ = K substream links for a stream of r in
		// (512, 640] kbit/s (the demo's mean is about 560, and the tracker
		// sizes slots by it), so once B takes them A has no slot left for
		// the page, and every substream of the page comes through B.
		srv = startServerProc(b, nil, "--demo", "--webrtc-loopback-only", "--origin-slots", "4")
		waitMedia(b, srv.base)
		nctx, stopNatives = context.WithCancel(ctx)
		a := startNative(b, nctx, srv.base, dir, 10*i+5, 10*time.Minute, "--relay", depth3RelayA)
		if !waitNatives(b, ctx, []*nativeViewer{a}, 60*time.Second, func(prev, last bench.NodeLine) bool {
			return last.MaxDepth == 1 && last.BytesFromSeed > prev.BytesFromSeed
		}) {
			b.Fatalf("viewer A was not fed by the origin's seed within 60 s: %+v\n%s", nativeLast(b, []*nativeViewer{a}), a.out)
		}
		bv := startNative(b, nctx, srv.base, dir, 10*i+6, 10*time.Minute, "--relay", "2000kbps")
		if !waitNatives(b, ctx, []*nativeViewer{bv}, 60*time.Second, func(prev, last bench.NodeLine) bool {
			return last.MaxDepth >= 2 && last.BytesFromPeers > prev.BytesFromPeers && last.BytesFromOrigin == prev.BytesFromOrigin
		}) {
			b.Logf("viewer B was not fed by peers alone within 60 s: %+v", nativeLast(b, []*nativeViewer{bv}))
		}
		tab = openPage(b, bctx, srv.base+"/watch/demo", settingsJS("off"))
		waitPlaying(b, tab)
		ab0, p0 := nativeLast(b, []*nativeViewer{a, bv}), readStats(b, tab)
		depth3 := sampleLatency(b, tab, 20, wait)
		ab1, p1 := nativeLast(b, []*nativeViewer{a, bv}), readStats(b, tab)
		// Over the samples: what the page got from peers, and what B sent
		// (B's only downstream is the page).
		fromPeers := p1.BytesFromPeers - p0.BytesFromPeers
		viewers = viewers[:0]
		for j, v := range ab1 {
			viewers = append(viewers, fmt.Sprintf("%c: depth %d, %d peers, sent %.0f kB, got %.0f kB from peers and %.0f kB from the origin, ingest to held p50 %.0f ms, p95 %.0f ms, %d on time, %d late",
				'A'+j, v.MaxDepth, v.Peers, float64(v.BytesUploaded-ab0[j].BytesUploaded)/1000,
				float64(v.BytesFromPeers-ab0[j].BytesFromPeers)/1000, float64(v.BytesFromOrigin-ab0[j].BytesFromOrigin)/1000,
				v.LatencyP50Ms, v.LatencyP95Ms, v.ChunksOnTime-ab0[j].ChunksOnTime, v.ChunksLate-ab0[j].ChunksLate))
		}
		b.Logf("depth 3, over the samples: viewer %s", strings.Join(viewers, "; viewer "))
		b.Logf("depth 3, over the samples: page depth %d, %d peers, got %.0f kB from peers (B sent %.0f kB) and %.0f kB from the origin; chunks ingest to held p50 %.0f ms, p95 %.0f ms; %d on time, %d late",
			p1.MaxDepth, p1.Peers, fromPeers/1000, float64(ab1[1].BytesUploaded-ab0[1].BytesUploaded)/1000,
			(p1.BytesFromOrigin-p0.BytesFromOrigin)/1000, p1.LatencyP50Ms, p1.LatencyP95Ms, p1.ChunksOnTime-p0.ChunksOnTime, p1.ChunksLate-p0.ChunksLate)
		stopNatives()
		<-a.done
		<-bv.done
		closeTab(b, tab)
		srv.stop()

		b.ReportMetric(relay.pct("renderer"), "renderer-cpu-%")
		b.ReportMetric(relay.pct("gpu-process"), "gpu-cpu-%")
		b.ReportMetric(upKbps, "relay-kbps")
		b.ReportMetric(idle.pct("renderer"), "renderer-cpu-idle-relay-%")
		b.ReportMetric(idle.pct("gpu-process"), "gpu-cpu-idle-relay-%")
		reportLatency(b, "depth1", 1, depth1)
		reportLatency(b, "depth3", 3, depth3)
	}
}

// depth3RelayA is viewer A's relay budget in the depth-3 phase: one copy of
// the demo stream (see there).
const depth3RelayA = "640kbps"

// waitMedia waits until the demo stream has 5 s of media (blocking playlist
// reloads, a 1 s segment at a time): every phase's first viewer joins a
// stream of the same age, and the tracker's bitrate, which sizes relay
// slots and is taken when the first viewer's join makes the swarm, has
// settled.
func waitMedia(b *testing.B, base string) {
	b.Helper()
	for msn := range 5 {
		if resp, body := get(b, fmt.Sprintf("%s/live/demo/v0/index.m3u8?_HLS_msn=%d", base, msn)); resp.StatusCode != 200 {
			b.Fatalf("segment %d: %d %s", msn, resp.StatusCode, body)
		}
	}
}

// latencySample is the page's latency to live and depth at one moment.
type latencySample struct {
	ms    float64
	depth int
}

// sampleLatency reads the page's stats once a second, n times.
func sampleLatency(b *testing.B, tab context.Context, n int, wait func(time.Duration)) []latencySample {
	b.Helper()
	var out []latencySample
	for range n {
		wait(time.Second)
		s := readStats(b, tab)
		out = append(out, latencySample{s.LatencyToLiveMs, s.MaxDepth})
	}
	return out
}

// reportLatency reports the p50 and p95 of the samples taken at depth want,
// and logs every depth seen.
func reportLatency(b *testing.B, name string, want int, samples []latencySample) {
	b.Helper()
	byDepth := map[int][]float64{}
	for _, s := range samples {
		byDepth[s.depth] = append(byDepth[s.depth], s.ms)
	}
	for _, d := range slices.Sorted(maps.Keys(byDepth)) {
		ms := byDepth[d]
		b.Logf("%s: %d samples at depth %d: p50 %.0f ms, p95 %.0f ms; %.0f", name, len(ms), d, pctile(ms, 50), pctile(ms, 95), ms)
	}
	ms := byDepth[want]
	if len(ms) == 0 {
		b.Errorf("%s: no sample at depth %d", name, want)
		return
	}
	b.ReportMetric(pctile(ms, 50), name+"-latency-p50-ms")
	b.ReportMetric(pctile(ms, 95), name+"-latency-p95-ms")
}

// pctile is the p-th percentile of xs, nearest rank.
func pctile(xs []float64, p int) float64 {
	s := slices.Sorted(slices.Values(xs))
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// waitNatives polls the viewers' stats files until ready holds for each one's
// last two lines, or for up to limit; false if it never did.
func waitNatives(b *testing.B, ctx context.Context, natives []*nativeViewer, limit time.Duration, ready func(prev, last bench.NodeLine) bool) bool {
	b.Helper()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for {
		all := true
		for _, v := range natives {
			ls := v.lines(b)
			all = all && len(ls) >= 2 && ready(ls[len(ls)-2], ls[len(ls)-1])
		}
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			b.Fatal(ctx.Err())
		case <-deadline:
			return false
		case <-tick.C: // the viewers write a line a second
		}
	}
}

// nativeLast is each viewer's last stats line.
func nativeLast(b *testing.B, natives []*nativeViewer) []bench.NodeLine {
	b.Helper()
	out := make([]bench.NodeLine, len(natives))
	for i, v := range natives {
		if ls := v.lines(b); len(ls) > 0 {
			out[i] = ls[len(ls)-1]
		}
	}
	return out
}

// closeTab closes a page's tab now (its renderer goes), rather than at the
// end of the benchmark.
func closeTab(b *testing.B, tab context.Context) {
	b.Helper()
	if err := chromedp.Cancel(tab); err != nil {
		b.Logf("closing the tab: %v", err)
	}
}

// cpuWindow is the CPU time Chromium's processes used over a window, and the
// machine's load over it.
type cpuWindow struct {
	wall         time.Duration
	ticks        map[string]int64   // by process kind: browser, renderer, gpu-process, utility:…, zygote
	each         map[string][]int64 // each process's ticks, by kind
	hz           float64
	load0, load1 string  // /proc/loadavg at the start and the end
	busy         float64 // share of all cores busy over the window, 0–1
	cores        int
}

func (w cpuWindow) pct(kind string) float64 {
	return 100 * float64(w.ticks[kind]) / w.hz / w.wall.Seconds()
}

func (w cpuWindow) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w.ticks)) {
		part := fmt.Sprintf("%s %.1f%%", k, w.pct(k))
		if each := w.each[k]; len(each) > 1 {
			slices.SortFunc(each, func(a, b int64) int { return cmp.Compare(b, a) })
			var ps []string
			for _, t := range each {
				ps = append(ps, fmt.Sprintf("%.1f", 100*float64(t)/w.hz/w.wall.Seconds()))
			}
			part += " (" + strings.Join(ps, " + ") + ")"
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("%.0f s: Chromium CPU (%% of one core) %s; load average %s → %s; machine %.0f%% busy (%d cores)",
		w.wall.Seconds(), strings.Join(parts, ", "), w.load0, w.load1, 100*w.busy, w.cores)
}

// measureCPU waits for d and returns the CPU time used meanwhile by the
// processes under Chromium's browser process (pid root, included).
func measureCPU(b *testing.B, root int, d time.Duration, wait func(time.Duration)) cpuWindow {
	b.Helper()
	hz := 100.0
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			hz = v
		}
	}
	w := cpuWindow{ticks: map[string]int64{}, each: map[string][]int64{}, hz: hz, load0: loadavg()}
	busy0, total0, cores := machineCPU(b)
	before := processTree(b, root)
	t0 := time.Now()
	wait(d)
	after := processTree(b, root)
	w.wall = time.Since(t0)
	busy1, total1, _ := machineCPU(b)
	w.load1, w.cores = loadavg(), cores
	w.busy = float64(busy1-busy0) / float64(max(total1-total0, 1))
	for pid, p := range after {
		// A process that started in the window counts from 0; one that
		// ended in it is lost (logged).
		w.ticks[p.kind] += p.ticks - before[pid].ticks
		w.each[p.kind] = append(w.each[p.kind], p.ticks-before[pid].ticks)
	}
	for pid, p := range before {
		if _, ok := after[pid]; !ok {
			b.Logf("chromium process %d (%s) ended in the window", pid, p.kind)
		}
	}
	return w
}

type procCPU struct {
	kind  string
	ticks int64 // utime+stime
}

// processTree returns root and every process under it, by pid.
func processTree(b *testing.B, root int) map[int]procCPU {
	b.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	children := map[int][]int{}
	ticks := map[int]int64{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		// Fields after the command's closing parenthesis: state (3), ppid
		// (4), …, utime (14), stime (15).
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		children[ppid] = append(children[ppid], pid)
		ticks[pid] = ut + st
	}
	out := map[int]procCPU{}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if _, ok := ticks[pid]; !ok {
			continue
		}
		out[pid] = procCPU{kind: chromiumKind(pid), ticks: ticks[pid]}
		queue = append(queue, children[pid]...)
	}
	if len(out) == 0 {
		b.Fatalf("no chromium process under pid %d", root)
	}
	return out
}

// chromiumKind is a Chromium process's --type (utility processes with their
// sub-type), "browser" without one.
func chromiumKind(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	kind, sub := "browser", ""
	// Chromium rewrites its command line (its process title): the
	// arguments are separated by spaces there, not NULs.
	for _, a := range strings.FieldsFunc(string(data), func(r rune) bool { return r == 0 || r == ' ' }) {
		if v, ok := strings.CutPrefix(a, "--type="); ok {
			kind = v
		}
		if v, ok := strings.CutPrefix(a, "--utility-sub-type="); ok {
			sub = v
		}
	}
	if sub != "" {
		kind += ":" + sub
	}
	return kind
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// machineCPU returns the busy and total jiffies of all cores (/proc/stat),
// and the number of cores.
func machineCPU(b *testing.B) (busy, total int64, cores int) {
	b.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 5 && f[0] == "cpu":
			for i, v := range f[1:] {
				n, _ := strconv.ParseInt(v, 10, 64)
				if i >= 8 { // guest time is in user time already
					break
				}
				total += n
				if i != 3 && i != 4 { // idle, iowait
					busy += n
				}
			}
		case len(f) > 0 && strings.HasPrefix(f[0], "cpu"):
			cores++
		}
	}
	return busy, total, cores
}
