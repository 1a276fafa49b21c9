package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
)

// ErrHarness reports a real-process run that could not be made.
var ErrHarness = errors.New("bench: harness")

// HarnessParams configures RunHarness. Zero fields take the scenario's
// values or the defaults shown.
type HarnessParams struct {
	// Binary is the seedcast executable the processes run (required);
	// Dir where their plans, stats lines and logs go (required).
	Binary, Dir string
	Scenario    Scenario
	// Viewers is n (required, 1 to 2,000).
	Viewers int
	// BitrateKbps is the rate asked for: the stream is the built-in demo
	// clip, whatever its rate, and the result says both.
	BitrateKbps int
	Duration    time.Duration
	// NodesPerProcess is the viewer nodes one `seedcast viewer` process
	// runs (10).
	NodesPerProcess int
	// StatsEvery is the viewers' stats interval (500 ms); the window's
	// edges fall on it.
	StatsEvery time.Duration
	// Seed picks churn's departures (1).
	Seed uint64
	// ChunkDuration is the origin's chunk duration (seedcast serve
	// --chunk-duration; 0: its default).
	ChunkDuration time.Duration
	// Progress, if set, is called every second with the run's time done
	// and its length.
	Progress func(done, total time.Duration)
	Logger   *slog.Logger // (discard)
}

// harnessStream is the stream a run publishes.
const harnessStream = "bench"

// ClipKbps is a clip's own average rate: its samples' bytes over its
// length.
func ClipKbps(c *media.Clip) float64 {
	var bytes int
	for _, u := range c.VideoUnits {
		bytes += len(u.Data)
	}
	for _, u := range c.AudioUnits {
		bytes += len(u.Data)
	}
	if c.Duration <= 0 {
		return 0
	}
	return float64(bytes) * 8 / 1000 / c.Duration.Seconds()
}

// RunHarness runs a scenario on real processes on this machine, all on
// loopback: `seedcast serve` (the origin, with the scenario's seed egress
// and slots), `seedcast publish --demo`, and p.Viewers viewer nodes in
// `seedcast viewer --plan` processes of NodesPerProcess nodes, joining and
// leaving as RunSim has them join and leave, each with its class's relay
// budget. It measures over RunSim's window from the nodes' stats lines and
// the origin's /metrics, with the CPU of every process, and stops every
// process it started before it returns.
func RunHarness(ctx context.Context, p HarnessParams) (HarnessResult, error) {
	sc := p.Scenario
	if p.Duration <= 0 {
		p.Duration = time.Duration(sc.Duration)
	}
	if p.BitrateKbps <= 0 {
		p.BitrateKbps = int(sc.Bitrate)
	}
	orDefault(&p.NodesPerProcess, 10)
	orDefault(&p.StatsEvery, 500*time.Millisecond)
	orDefault(&p.Seed, 1)
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case p.Binary == "" || p.Dir == "":
		return HarnessResult{}, fmt.Errorf("%w: Binary and Dir are required", ErrBadParams)
	case p.Viewers < 1 || p.Viewers > 2000:
		return HarnessResult{}, fmt.Errorf("%w: %d viewers (1 to 2,000 on one machine)", ErrBadParams, p.Viewers)
	case p.Duration < 10*time.Second || p.Duration > time.Hour:
		return HarnessResult{}, fmt.Errorf("%w: duration %v (10 s to 1 h)", ErrBadParams, p.Duration)
	case len(sc.Audience) == 0:
		return HarnessResult{}, fmt.Errorf("%w: a scenario with no audience", ErrBadParams)
	case p.NodesPerProcess < 1 || p.StatsEvery < 100*time.Millisecond:
		return HarnessResult{}, fmt.Errorf("%w: %d nodes a process, stats every %v", ErrBadParams, p.NodesPerProcess, p.StatsEvery)
	}
	for _, d := range []string{"stats", "plans", "logs"} {
		if err := os.MkdirAll(filepath.Join(p.Dir, d), 0o755); err != nil {
			return HarnessResult{}, err
		}
	}
	h := &harness{p: p, clipName: "the built-in demo clip (media.DemoClip)"}
	clip, err := media.DemoClip()
	if err != nil {
		return HarnessResult{}, err
	}
	h.published = ClipKbps(clip)
	if d := h.published / float64(p.BitrateKbps); d < 0.9 || d > 1.1 {
		h.encode(ctx)
	}
	defer h.stopAll()
	return h.run(ctx)
}

// encode makes a clip at the asked rate with ffmpeg, as the demo clip was
// made (media/democlip/generate.sh: testsrc2 and a sine, H.264
// constrained baseline with a 1 s GOP, Opus in 20 ms packets), and
// publishes that instead of the demo clip. Without ffmpeg, or if it
// fails, the demo clip it is, and the report says so.
func (h *harness) encode(ctx context.Context) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		h.note("no ffmpeg to encode a clip at the asked rate")
		return
	}
	audio := min(64, max(h.p.BitrateKbps/8, 16))
	video := h.p.BitrateKbps - audio
	if video < 50 {
		h.note(fmt.Sprintf("%d kbit/s is too low a rate for a clip", h.p.BitrateKbps))
		return
	}
	out := filepath.Join(h.p.Dir, fmt.Sprintf("clip-%dkbps.mp4", h.p.BitrateKbps))
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=10",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10,aformat=channel_layouts=stereo",
		"-c:v", "libx264", "-profile:v", "baseline", "-level", "3.0", "-pix_fmt", "yuv420p", "-preset", "veryfast",
		"-b:v", fmt.Sprintf("%dk", video), "-maxrate", fmt.Sprintf("%dk", video*11/10), "-bufsize", fmt.Sprintf("%dk", video*11/10),
		"-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-x264-params", "repeat-headers=1",
		"-c:a", "libopus", "-b:a", fmt.Sprintf("%dk", audio), "-frame_duration", "20", "-application", "audio",
		"-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		h.note(fmt.Sprintf("ffmpeg failed (%v: %s)", err, strings.TrimSpace(string(b))))
		return
	}
	data, err := os.ReadFile(out)
	if err != nil {
		h.note(err.Error())
		return
	}
	clip, err := media.ReadMP4(data)
	if err != nil {
		h.note(fmt.Sprintf("the encoded clip: %v", err))
		return
	}
	h.clipFile, h.published = out, ClipKbps(clip)
	h.clipName = fmt.Sprintf("a 10 s clip encoded by ffmpeg at %d kbit/s (testsrc2 and a sine, as the demo clip)", h.p.BitrateKbps)
}

func (h *harness) note(s string) { h.notes = append(h.notes, s) }

// harness is one run in progress.
type harness struct {
	p         HarnessParams
	published float64 // kbps
	clipFile  string  // the clip published ("": the demo clip)
	clipName  string
	notes     []string
	base      string
	mu        sync.Mutex
	procs     []*proc
}

func (h *harness) run(ctx context.Context) (HarnessResult, error) {
	p, sc := h.p, h.p.Scenario
	log := p.Logger
	wall := time.Now()
	rate := int(h.published + 0.5)
	key := rand.Text()
	slots := sc.Origin.Slots
	if slots == 0 { // as RunSim sizes them
		slots = max(int(int64(sc.Origin.Egress)*80/100*substreams/int64(rate)), 1)
	}
	notes := h.notes
	if len(sc.Regions) > 0 || sc.Loss > 0 {
		notes = append(notes, "regions, RTTs and loss are not modelled: every process is on this machine's loopback")
	}
	notes = append(notes, fmt.Sprintf("the viewers' RTT guard runs with a slack of %v, what its 50 ms slack is over the scenario's %.0f ms round trip to the origin: loopback's is near zero, and the processes' scheduling on a busy machine would trip the production guard",
		guardSlack(sc), sc.Origin.RTTms))
	if sc.Churn.Silent > 0 {
		notes = append(notes, "silent departures leave gracefully: a real node cannot vanish from its process without ending the others")
	}
	if d := h.published / float64(p.BitrateKbps); d < 0.8 || d > 1.25 {
		notes = append(notes, fmt.Sprintf("asked %d kbit/s; published %s at %.0f kbit/s", p.BitrateKbps, h.clipName, h.published))
	}

	addr := make(chan string, 1)
	origin, err := h.start(ctx, "origin", 0, func(line string) {
		var rec struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
			select {
			case addr <- rec.Addr:
			default:
			}
		}
	}, "serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--webrtc-loopback-only",
		"--stream-key", harnessStream+"="+key, "--seed-egress", fmt.Sprintf("%dkbps", sc.Origin.Egress),
		"--origin-slots", strconv.Itoa(slots), "--tracker-conns-per-ip", strconv.Itoa(p.Viewers+16),
		"--max-peer-conns-per-ip", strconv.Itoa(p.Viewers+16), "--chunk-duration", chunkOr(p.ChunkDuration).String())
	if err != nil {
		return HarnessResult{}, err
	}
	select {
	case a := <-addr:
		h.base = "http://" + a
	case <-origin.done:
		return HarnessResult{}, fmt.Errorf("%w: the origin exited before listening (%s)", ErrHarness, origin.logPath)
	case <-time.After(30 * time.Second):
		return HarnessResult{}, fmt.Errorf("%w: the origin did not listen within 30 s", ErrHarness)
	case <-ctx.Done():
		return HarnessResult{}, ctx.Err()
	}
	src := []string{"--demo"}
	if h.clipFile != "" {
		src = []string{"--file", h.clipFile}
	}
	if _, err := h.start(ctx, "publisher", 0, nil, append([]string{"publish", "--whip", h.base + "/whip/" + harnessStream, "--token", key,
		"--webrtc-loopback-only", "--log-level", "warn"}, src...)...); err != nil {
		return HarnessResult{}, err
	}
	if err := h.waitLive(ctx); err != nil {
		return HarnessResult{}, err
	}

	// The plan: RunSim's joins and leaves, from the next whole interval.
	total := p.Duration
	_, _, winStart := timeline(sc, total)
	winStart = winStart.Truncate(p.StatsEvery)
	start := time.Now().Truncate(p.StatsEvery).Add(p.StatsEvery)
	plan := planViewers(sc, p.Viewers, rate, total, p.Seed)
	groups := groupNodes(plan, p.NodesPerProcess)
	for g, nodes := range groups {
		vp := ViewerPlan{Start: start}
		for _, n := range nodes {
			vp.Nodes = append(vp.Nodes, PlanNode{
				ID: n.id, BudgetKbps: n.budget, Join: Duration(n.join), Leave: Duration(n.leave),
				Stats: filepath.Join(p.Dir, "stats", fmt.Sprintf("node-%d.jsonl", n.id)),
			})
		}
		file := filepath.Join(p.Dir, "plans", fmt.Sprintf("viewers-%d.json", g))
		b, _ := json.Marshal(vp)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			return HarnessResult{}, err
		}
		if _, err := h.start(ctx, fmt.Sprintf("viewers-%d", g), len(nodes), nil, "viewer", "--server", h.base, "--stream", harnessStream,
			"--plan", file, "--stats-interval", p.StatsEvery.String(), "--rtt-guard-slack", guardSlack(sc).String(), "--duration", (time.Until(start) + total + 10*time.Second).String(),
			"--webrtc-loopback-only", "--log-level", "warn"); err != nil {
			return HarnessResult{}, err
		}
	}
	log.Info("harness: viewers started", "viewers", p.Viewers, "processes", len(groups), "origin", h.base)

	// The window: a scrape at each edge, a little after the viewers'
	// lines for that instant.
	scrapeLag := min(p.StatsEvery/4, 100*time.Millisecond)
	sa, err := h.scrapeAt(ctx, start, 0, winStart, scrapeLag)
	if err != nil {
		return HarnessResult{}, err
	}
	sb, err := h.scrapeAt(ctx, start, winStart, total, scrapeLag)
	if err != nil {
		return HarnessResult{}, err
	}
	if p.Progress != nil {
		p.Progress(total, total)
	}
	costs := h.stopAll()

	series := make([]nodeSeries, 0, len(plan))
	for _, n := range plan {
		s, err := readSeries(filepath.Join(p.Dir, "stats", fmt.Sprintf("node-%d.jsonl", n.id)), start)
		if err != nil {
			return HarnessResult{}, err
		}
		s.node = n
		series = append(series, s)
	}
	res := harnessMeasure(harnessInput{
		sc: sc, viewers: p.Viewers, seed: p.Seed, chunk: chunkOr(p.ChunkDuration), plan: plan, series: series, winStart: winStart, total: total,
		slack: scrapeLag, a: sa, b: sb, published: h.published, asked: float64(p.BitrateKbps), costs: costs, slots: slots,
	})
	res.Harness.Clip = h.clipName
	res.WallSeconds = time.Since(wall).Seconds()
	res.Harness.Processes, res.Harness.NodesPerProcess = len(groups), p.NodesPerProcess
	res.Harness.Notes = append(res.Harness.Notes, notes...)
	log.Info("harness", "scenario", sc.Name, "viewers", p.Viewers, "egressMbps", round(res.ServerEgressMbps, 2),
		"offload", round(res.Offload, 3), "continuity", round(res.Continuity, 4), "saturated", res.Harness.Saturated)
	return res, nil
}

// scrapeAt waits from start+from to start+at (+lag), reporting progress
// every whole second, and scrapes then.
func (h *harness) scrapeAt(ctx context.Context, start time.Time, from, at, lag time.Duration) (scrape, error) {
	for t := from.Truncate(time.Second) + time.Second; t < at; t += time.Second {
		if err := h.wait(ctx, start.Add(t)); err != nil {
			return scrape{}, err
		}
		if h.p.Progress != nil {
			h.p.Progress(t, h.p.Duration)
		}
	}
	if err := h.wait(ctx, start.Add(at+lag)); err != nil {
		return scrape{}, err
	}
	return h.scrape(ctx)
}

// guardSlack is the viewers' RTT guard slack in a harness: the guard cuts
// relay past Factor·baseline + Slack (2 and 50 ms), and on loopback the
// baseline is near zero where the scenario's is its origin round trip,
// so the slack takes that round trip's share.
func guardSlack(sc Scenario) time.Duration {
	return 50*time.Millisecond + time.Duration(2*sc.Origin.RTTms*float64(time.Millisecond))
}

// wait sleeps until t, or returns the context's error, or an error if a
// process the run needs has ended.
func (h *harness) wait(ctx context.Context, t time.Time) error {
	if err := sleepUntil(ctx, t); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, pr := range h.procs {
		select {
		case <-pr.done:
			return fmt.Errorf("%w: %s exited early: %v (see %s)", ErrHarness, pr.name, pr.err, pr.logPath)
		default:
		}
	}
	return nil
}

// waitLive waits until the origin has made chunks of the stream for a
// while, and a seed restart more: the seed starts with the first
// rendition live and starts again once it sees the others (every
// SeedsParams.Restart, 2 s), as `seedcast serve` runs it.
func (h *harness) waitLive(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		m, err := h.metrics(ctx)
		if err == nil && m.sum("seedcast_chunks_total", "stream", harnessStream) >= 8 {
			return h.wait(ctx, time.Now().Add(2500*time.Millisecond))
		}
		if err := h.wait(ctx, time.Now().Add(250*time.Millisecond)); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: the stream did not go live within 30 s", ErrHarness)
}

// scrape is the state of a run at one instant: the origin's counters, the
// CPU time of every process, the machine's CPU counters and load.
type scrape struct {
	at                             time.Time
	seed, http, manifest, produced float64               // bytes
	audio                          float64               // of produced, the audio's
	cpu, wait                      map[int]time.Duration // by pid
	machine                        machineCPU
	load                           [3]float64
	trackerKbps                    int
}

func (h *harness) scrape(ctx context.Context) (scrape, error) {
	s := scrape{at: time.Now(), cpu: map[int]time.Duration{}, wait: map[int]time.Duration{}, machine: readMachineCPU(), load: readLoad()}
	h.mu.Lock()
	for _, pr := range h.procs {
		pid := pr.cmd.Process.Pid
		s.cpu[pid], s.wait[pid] = procCPU(pid), procWait(pid)
	}
	h.mu.Unlock()
	m, err := h.metrics(ctx)
	if err != nil {
		return s, err
	}
	s.seed = m.sum("seedcast_seed_egress_bytes_total", "stream", harnessStream)
	s.http = m.sum("seedcast_http_response_bytes_total", "route", "chunk")
	s.manifest = m.sum("seedcast_http_response_bytes_total", "route", "manifest")
	s.produced = m.sum("seedcast_chunk_bytes_total", "stream", harnessStream)
	for _, x := range m {
		if x.name == "seedcast_chunk_bytes_total" && x.labels["stream"] == harnessStream && strings.HasPrefix(x.labels["rendition"], "a") {
			s.audio += x.value // ingest names its audio renditions a0, a1...
		}
	}
	s.trackerKbps = h.trackerKbps(ctx)
	return s, nil
}

// trackerKbps is the stream rate the tracker sizes slots with (its
// dashboard's); 0 if it cannot be read.
func (h *harness) trackerKbps(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/live/"+harnessStream+"/dashboard.json", nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var d struct {
		BitrateKbps int `json:"bitrateKbps"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d) != nil {
		return 0
	}
	return d.BitrateKbps
}

func (h *harness) metrics(ctx context.Context) (promText, error) {
	return fetchMetrics(ctx, h.base)
}

// promText is the samples of a Prometheus text exposition: name, labels,
// value.
type promText []promSample

type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// sum adds the samples of name whose label k is v.
func (m promText) sum(name, k, v string) float64 {
	t := 0.0
	for _, s := range m {
		if s.name == name && s.labels[k] == v {
			t += s.value
		}
	}
	return t
}

// parseProm reads the text exposition format's samples (no escapes in
// label values beyond \", which the origin's labels do not use).
func parseProm(r io.Reader) (promText, error) {
	var out promText
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := promSample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("%w: /metrics line %q", ErrHarness, line)
			}
			s.name, rest = line[:i], strings.TrimSpace(line[j+1:])
			for kv := range strings.SplitSeq(line[i+1:j], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if ok {
					s.labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
				}
			}
		} else {
			var ok bool
			if s.name, rest, ok = strings.Cut(line, " "); !ok {
				return nil, fmt.Errorf("%w: /metrics line %q", ErrHarness, line)
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("%w: /metrics line %q", ErrHarness, line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%w: /metrics line %q: %v", ErrHarness, line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// readSeries reads a node's stats lines (none if it never wrote one).
func readSeries(path string, start time.Time) (nodeSeries, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nodeSeries{}, nil
	}
	if err != nil {
		return nodeSeries{}, err
	}
	defer f.Close()
	lines, err := ReadNodeLines(f)
	if err != nil {
		return nodeSeries{}, fmt.Errorf("%s: %w", path, err)
	}
	s := nodeSeries{lines: lines}
	for _, l := range lines {
		t, _ := l.Time() // checked by ReadNodeLines
		s.at = append(s.at, t.Sub(start))
	}
	return s, nil
}

// proc is a process the harness started.
type proc struct {
	name    string
	nodes   int
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when it has exited
	err     error         // its exit, once done
	stopped bool
}

// start runs the binary with args as a process named name, its stderr
// (and stdout) to a log file, each line also to onLine if set.
func (h *harness) start(ctx context.Context, name string, nodes int, onLine func(string), args ...string) (*proc, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logPath := filepath.Join(h.p.Dir, "logs", name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(h.p.Binary, args...)
	cmd.SysProcAttr = childAttr()
	if nodes > 0 {
		cmd.Env = viewerEnv(os.Environ())
	}
	cmd.Stdout = io.Discard // the viewers' status lines: their stats files say it all
	stderr, err := cmd.StderrPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: start %s: %v", ErrHarness, name, err)
	}
	pr := &proc{name: name, nodes: nodes, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	h.mu.Lock()
	h.procs = append(h.procs, pr)
	h.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			_, _ = lf.Write(append(sc.Bytes(), '\n'))
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		_, _ = io.Copy(lf, stderr) // a line too long for the scanner
		pr.err = cmd.Wait()
		lf.Close()
		close(pr.done)
	}()
	return pr, nil
}

// stopAll ends every process, viewers first, then the publisher and the
// origin (SIGTERM, SIGKILL 15 s later), and returns what each cost.
func (h *harness) stopAll() []ProcCost {
	h.mu.Lock()
	procs := h.procs
	h.mu.Unlock()
	stop := func(pr *proc) {
		select {
		case <-pr.done:
			return
		default:
		}
		pr.stopped = true
		_ = pr.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pr.done:
		case <-time.After(15 * time.Second):
			_ = pr.cmd.Process.Kill()
			<-pr.done
		}
	}
	var wg sync.WaitGroup
	for _, pr := range procs {
		if pr.nodes > 0 {
			wg.Go(func() { stop(pr) })
		}
	}
	wg.Wait()
	for i := len(procs) - 1; i >= 0; i-- {
		if procs[i].nodes == 0 {
			stop(procs[i])
		}
	}
	var out []ProcCost
	for _, pr := range procs {
		c := ProcCost{Name: pr.name, Pid: pr.cmd.Process.Pid, Nodes: pr.nodes, ExitedBefore: !pr.stopped}
		if st := pr.cmd.ProcessState; st != nil {
			c.CPUSeconds = (st.UserTime() + st.SystemTime()).Seconds()
			c.PeakRSSMB = maxRSSMB(st)
		}
		out = append(out, c)
	}
	return out
}

// cores is the machine's CPUs.
func cores() int { return runtime.NumCPU() }

// viewerEnv is the environment of a viewer process: a collector that runs
// a quarter as often (GOGC=400: memory is plentiful, CPU is not), unless
// the environment sets it.
func viewerEnv(env []string) []string {
	for _, kv := range []string{"GOGC=400"} {
		k, _, _ := strings.Cut(kv, "=")
		if os.Getenv(k) == "" {
			env = append(env, kv)
		}
	}
	return env
}

// chunkOr is d, or the chunker's default for 0.
func chunkOr(d time.Duration) time.Duration {
	if d <= 0 {
		return manifest.DefaultChunkDuration
	}
	return d
}
