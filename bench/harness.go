package bench

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// HarnessResult is one real-process run: the simulator's fields (the same
// names in results.json) measured on real processes, and what the run
// was and cost (Harness).
type HarnessResult struct {
	SimResult
	Harness HarnessRun `json:"harness"`
	// Sim is the simulator's run of the same scenario, audience, rate
	// (the harness's measured one) and length, when one was made.
	Sim *SimResult `json:"sim,omitempty"`
}

// HarnessRun is what a real-process run was, and what it cost the machine.
type HarnessRun struct {
	// AskedBitrateMbps is the rate asked for; PublishedBitrateMbps the
	// clip's own average rate (its samples' bytes over its length);
	// BitrateMbps (in the result) the rate the origin's chunks came out
	// at over the window, from its /metrics. Budgets are the scenario's
	// multiples of the published rate.
	AskedBitrateMbps     float64 `json:"askedBitrateMbps"`
	PublishedBitrateMbps float64 `json:"publishedBitrateMbps"`
	Clip                 string  `json:"clip"`
	// AudioMbps is the part of the stream's rate that is audio (the
	// clip's Opus rendition, chunked apart from the video).
	AudioMbps float64 `json:"audioMbps"`
	// TrackerKbps is the stream rate the origin's tracker sized viewers'
	// slots with at the window's end (its dashboard's: the origin's
	// average when the stream's swarm began, updated when it drifts by a
	// quarter).
	TrackerKbps int `json:"trackerKbps"`
	// Processes is the viewer processes, NodesPerProcess the nodes each
	// runs at most; JoinFailed the nodes that never wrote a stats line.
	Processes       int `json:"processes"`
	NodesPerProcess int `json:"nodesPerProcess"`
	JoinFailed      int `json:"joinFailed"`
	// ViewerSeedMbps and ViewerHTTPMbps are the server's egress as the
	// viewers counted what they got (a check on the origin's /metrics,
	// which the result's seedMbps and httpMbps come from).
	ViewerSeedMbps float64 `json:"viewerSeedMbps"`
	ViewerHTTPMbps float64 `json:"viewerHttpMbps"`
	// ManifestMbps is the origin's manifest polling over HTTP (not
	// media: not in the egress).
	ManifestMbps float64 `json:"manifestMbps"`
	// CPU: every process, their CPU over the window in cores
	// (HarnessCores), the share of their threads' runnable time spent
	// waiting for a CPU (WaitShare, /proc/PID/task/*/schedstat), the
	// whole machine's busy share over the window (/proc/stat: every
	// process, the harness's and others'), the load average at the
	// window's start and end, and whether the run was CPU-bound.
	Procs        []ProcCost `json:"procs"`
	HarnessCores float64    `json:"harnessCores"`
	WaitShare    float64    `json:"waitShare"`
	MachineBusy  float64    `json:"machineBusy"`
	Cores        int        `json:"cores"`
	LoadStart    [3]float64 `json:"loadStart"`
	LoadEnd      [3]float64 `json:"loadEnd"`
	Saturated    bool       `json:"saturated"`
	SaturatedWhy string     `json:"saturatedWhy,omitempty"`
	// Shaping says how links were shaped (or why they were not).
	Shaping string `json:"shaping"`
	// Throttled is the viewers whose RTT guard had cut their relay at the
	// window's end (their round trip to the origin rose: a loaded machine
	// shows here first).
	Throttled int `json:"throttled"`
	// Notes are what the run could not do as the scenario says.
	Notes []string `json:"notes,omitempty"`
}

// ProcCost is one process of a run: its CPU over the whole run and over
// the window, and its peak resident set.
type ProcCost struct {
	Name        string  `json:"name"`
	Pid         int     `json:"pid"`
	Nodes       int     `json:"nodes,omitempty"`
	CPUSeconds  float64 `json:"cpuSeconds"`
	WindowCores float64 `json:"windowCores"`
	// WindowWaitSeconds is its threads' time runnable but waiting for a
	// CPU over the window.
	WindowWaitSeconds float64 `json:"windowWaitSeconds"`
	PeakRSSMB         float64 `json:"peakRssMB"`
	ExitedBefore      bool    `json:"exitedBefore,omitempty"` // ended before the run did
}

// A run counts as CPU-bound, its figures then describing the machine
// rather than the protocol, when its processes used SaturatedCores of the
// machine's cores, or when the machine's CPUs were SaturatedBusy busy (by
// anyone's work) and the run's threads spent SaturatedWait of their
// runnable time waiting for a CPU.
const (
	SaturatedCores = 0.75
	SaturatedBusy  = 0.95
	SaturatedWait  = 0.5
)

// saturated says whether a run with these CPU figures was CPU-bound, and
// why.
func saturated(waitShare, machineBusy, harnessCores float64, cores int) (bool, string) {
	switch {
	case cores > 0 && harnessCores >= SaturatedCores*float64(cores):
		return true, fmt.Sprintf("the harness's processes used %.2f of the %d cores over the window", harnessCores, cores)
	case machineBusy >= SaturatedBusy && waitShare >= SaturatedWait:
		return true, fmt.Sprintf("the machine's CPUs were %.0f%% busy (others' work too) and the harness's threads waited for a CPU %.0f%% of the time they were runnable",
			100*machineBusy, 100*waitShare)
	}
	return false, ""
}

// plannedNode is one viewer of a run's plan: when it joins and leaves
// (0: stays), its relay budget, and whether the scenario would have had it
// leave without a word.
type plannedNode struct {
	id          int
	join, leave time.Duration
	budget      int
	silent      bool
	class       int
}

// timeline is when a run's joins end and its window starts, as RunSim
// sets them: joins from lead over min(JoinOver, total/2), the window
// after Settle more, and at least the run's last quarter.
func timeline(sc Scenario, total time.Duration) (joinOver, joinEnd, winStart time.Duration) {
	const lead = time.Second
	joinOver = min(time.Duration(sc.JoinOver), total/2)
	joinEnd = lead + joinOver
	winStart = min(joinEnd+time.Duration(sc.Settle), total-total/4)
	return joinOver, joinEnd, winStart
}

// planViewers lays out a run's viewers as RunSim does: n joins at a steady
// rate from a second in over the scenario's join time, the audience's
// classes interleaved, and with churn, a viewer picked at random leaving
// and a new one joining every 1/(PerMinute·n) minutes once all have
// joined. Budgets are at stream rate kbps.
func planViewers(sc Scenario, n, kbps int, total time.Duration, seed uint64) []plannedNode {
	const lead = time.Second
	joinOver, joinEnd, _ := timeline(sc, total)
	shares := make([]float64, len(sc.Audience))
	for i, c := range sc.Audience {
		shares[i] = c.Share
	}
	classes := newInterleave(shares)
	var plan []plannedNode
	add := func(at time.Duration) int {
		c := classes.next()
		plan = append(plan, plannedNode{id: len(plan), join: at, budget: sc.Audience[c].BudgetKbps(kbps), class: c})
		return len(plan) - 1
	}
	alive := make([]int, 0, n)
	for i := range n {
		alive = append(alive, add(lead+time.Duration(int64(joinOver)*int64(i)/int64(max(n-1, 1)))))
	}
	if ch := sc.Churn; ch.PerMinute > 0 {
		rng := rand.New(rand.NewPCG(seed, 0x5eedca575e))
		every := max(time.Duration(float64(time.Minute)/(ch.PerMinute*float64(n))), time.Millisecond)
		for t := joinEnd + every; t < total; t += every {
			k := rng.IntN(len(alive))
			v := alive[k]
			alive[k] = alive[len(alive)-1]
			alive = alive[:len(alive)-1]
			plan[v].leave, plan[v].silent = t, rng.Float64() < ch.Silent
			alive = append(alive, add(t))
		}
	}
	return plan
}

// onlineMean is the viewers online and their relay budgets (kbps), on
// average over the window's whole seconds, as RunSim samples them.
func onlineMean(plan []plannedNode, winStart, total time.Duration) (n, budgetKbps float64) {
	samples := 0
	for t := winStart + time.Second; t <= total; t += time.Second {
		samples++
		for _, v := range plan {
			if v.join <= t && (v.leave == 0 || v.leave > t) {
				n++
				budgetKbps += float64(v.budget)
			}
		}
	}
	if samples == 0 {
		return 0, 0
	}
	return n / float64(samples), budgetKbps / float64(samples)
}

// groupNodes deals the plan's viewers to processes of at most per nodes
// each, in join order, round robin: every process gets viewers spread
// over the whole run rather than all the early ones.
func groupNodes(plan []plannedNode, per int) [][]plannedNode {
	order := slices.Clone(plan)
	slices.SortStableFunc(order, func(a, b plannedNode) int { return int(a.join - b.join) })
	procs := max((len(order)+per-1)/per, 1)
	out := make([][]plannedNode, procs)
	for i, v := range order {
		out[i%procs] = append(out[i%procs], v)
	}
	return out
}

// nodeSeries is one viewer's stats lines, with their times.
type nodeSeries struct {
	node  plannedNode
	lines []NodeLine
	at    []time.Duration // each line's time after the plan's start
}

// lineAt is the index of the node's last line at or before t (+ slack for
// the ticker's lateness); -1 if none.
func (s nodeSeries) lineAt(t, slack time.Duration) int {
	i := -1
	for k, at := range s.at {
		if at <= t+slack {
			i = k
		}
	}
	return i
}

// windowSnapshots turns the viewers' lines into measure's snapshots at the
// window's start and end: the last line at or before each (zero for a
// viewer that had not joined), with the latency samples of the lines in
// between. Viewers gone before the window are left out, as RunSim leaves
// them out.
func windowSnapshots(series []nodeSeries, winStart, end, slack time.Duration) (budgets []int, a, b []snapshot) {
	for _, s := range series {
		if s.node.leave > 0 && s.node.leave <= winStart {
			continue
		}
		j := s.lineAt(end, slack)
		if j < 0 {
			continue // never reported: a join that failed
		}
		i := s.lineAt(winStart, slack)
		var sa snapshot
		if i >= 0 {
			sa.s = s.lines[i].Stats()
		}
		sb := snapshot{s: s.lines[j].Stats()}
		for k := i + 1; k <= j; k++ {
			for _, ms := range s.lines[k].LatencyMs {
				sb.lat = append(sb.lat, time.Duration(ms*float64(time.Millisecond)))
			}
		}
		budgets, a, b = append(budgets, s.node.budget), append(a, sa), append(b, sb)
	}
	return budgets, a, b
}

// machineCPU is the machine's CPU counters (all CPUs, in clock ticks).
type machineCPU struct{ total, idle uint64 }

// busy is the machine's busy share between two readings (0 when unknown).
func busy(a, b machineCPU) float64 {
	if b.total <= a.total {
		return 0
	}
	return 1 - float64(b.idle-a.idle)/float64(b.total-a.total)
}

// harnessInput is what a real-process run gathered: its plan, the
// viewers' lines, the origin and the machine at the window's edges, and
// what every process cost.
type harnessInput struct {
	sc               Scenario
	viewers          int
	seed             uint64
	chunk            time.Duration
	plan             []plannedNode
	series           []nodeSeries
	winStart, total  time.Duration
	slack            time.Duration // how late a line for an instant may be
	a, b             scrape
	published, asked float64 // kbps
	costs            []ProcCost
	slots            int
}

// harnessMeasure makes a run's result from what it gathered: the
// simulator's measures over the same window (measure, setReport), with
// the origin's own egress counters, the rate its chunks came out at, and
// the CPU the run took.
func harnessMeasure(in harnessInput) HarnessResult {
	window := in.b.at.Sub(in.a.at)
	secs := window.Seconds()
	mbps := func(bytes float64) float64 { return bytes * 8 / 1e6 / secs }
	rate := 1000 * mbps(in.b.produced-in.a.produced) // kbps, as it came out of the chunker
	if rate <= 0 {
		rate = in.published
	}
	budgets, a, b := windowSnapshots(in.series, in.winStart, in.total, in.slack)
	rep := SwarmReport{Nodes: len(b), Window: window, StreamKbps: rate, PeakKbps: in.published, Cores: cores()}
	byDepth := measure(&rep, budgets, int64(in.b.seed-in.a.seed), a, b)
	viewerHTTP := rep.HTTPMbps
	var viewerSeed int64
	for i := range b {
		viewerSeed += b[i].s.BytesFromSeed - a[i].s.BytesFromSeed
	}
	meanN, meanU := onlineMean(in.plan, in.winStart, in.total)
	rep.setWindowBound(mbps(in.b.http-in.a.http), meanN, meanU/1000, rate/1000)

	var res HarnessResult
	r := &res.SimResult
	*r = SimResult{
		Scenario: in.sc.Name, Viewers: in.viewers, Seed: in.seed, BitrateMbps: rate / 1000,
		DurationSeconds: in.total.Seconds(), BufferSeconds: bufferOr(time.Duration(in.sc.Buffer)).Seconds(),
		ChunkMs: int(in.chunk.Milliseconds()), OriginSlots: in.slots, OriginEgressMbps: float64(in.sc.Origin.Egress) / 1000,
		WindowStartSeconds: in.winStart.Seconds(),
	}
	r.setReport(rep, byDepth, meanN, rate, in.viewers)

	// Startup over every viewer that started; depths over those online at
	// the end.
	var startup []time.Duration
	depths := map[int]int{}
	online := 0
	for _, s := range in.series {
		if len(s.lines) == 0 {
			if s.node.join < in.total {
				res.Harness.JoinFailed++
			}
			continue
		}
		last := s.lines[len(s.lines)-1]
		if last.StartupMs > 0 {
			startup = append(startup, time.Duration(last.StartupMs*float64(time.Millisecond)))
		}
		if s.node.leave > 0 && s.node.leave < in.total {
			continue
		}
		online++
		if last.StartupMs == 0 && in.total-s.node.join >= 10*time.Second {
			r.NotStarted++
		}
		depths[last.MaxDepth]++
		r.MaxDepth = max(r.MaxDepth, last.MaxDepth)
		r.MeanDepth += float64(last.MaxDepth)
	}
	r.MeanDepth /= float64(max(online, 1))
	for _, d := range sortedKeys(depths) {
		r.Depths = append(r.Depths, DepthCount{Depth: d, Viewers: depths[d]})
	}
	r.StartupP50Ms, r.StartupP95Ms = ms(Percentile(startup, 0.5)), ms(Percentile(startup, 0.95))
	for _, v := range in.plan {
		if v.join < in.total {
			r.Joins++
		}
		if v.leave > 0 && v.leave < in.total {
			r.Leaves++ // silent ones too: see the notes
		}
	}

	h := &res.Harness
	h.AskedBitrateMbps, h.PublishedBitrateMbps = in.asked/1000, in.published/1000
	h.ViewerSeedMbps, h.ViewerHTTPMbps = mbps(float64(viewerSeed)), viewerHTTP
	h.ManifestMbps = mbps(in.b.manifest - in.a.manifest)
	h.TrackerKbps = in.b.trackerKbps
	h.AudioMbps = mbps(in.b.audio - in.a.audio)
	h.Cores = cores()
	h.MachineBusy = busy(in.a.machine, in.b.machine)
	h.LoadStart, h.LoadEnd = in.a.load, in.b.load
	var cpu, wait float64
	for _, c := range in.costs {
		pid := c.Pid
		if ca, ok := in.a.cpu[pid]; ok && in.b.cpu[pid] >= ca {
			c.WindowCores = ratio((in.b.cpu[pid] - ca).Seconds(), secs)
		}
		if wa, ok := in.a.wait[pid]; ok && in.b.wait[pid] >= wa {
			c.WindowWaitSeconds = (in.b.wait[pid] - wa).Seconds()
		}
		cpu += c.WindowCores * secs
		wait += c.WindowWaitSeconds
		h.HarnessCores += c.WindowCores
		r.CPUSeconds += c.CPUSeconds
		r.PeakRSSMB += c.PeakRSSMB
		h.Procs = append(h.Procs, c)
	}
	h.WaitShare = ratio(wait, wait+cpu)
	h.Throttled = rep.Throttled
	h.Saturated, h.SaturatedWhy = saturated(h.WaitShare, h.MachineBusy, h.HarnessCores, h.Cores)
	h.Shaping = "none: every process on this machine's loopback, unshaped (this kernel has no netem qdisc for delay; " +
		"per-node rates are the nodes' own relay budgets, and no download line binds at these rates)"
	return res
}
