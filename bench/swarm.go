package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm"
)

// ErrBadParams reports SwarmParams that cannot run.
var ErrBadParams = errors.New("bench: bad swarm params")

// SwarmParams configures RunSwarm. Zero fields take the defaults shown.
type SwarmParams struct {
	// Server is the live origin (its HTTP routes and tracker), e.g.
	// http://127.0.0.1:port; Stream the stream's name.
	Server, Stream string
	// SeedToken is the tracker's origin secret, for the seed's join.
	SeedToken string
	// SeedSource is where the seed takes chunks from (the origin's
	// in-process source; nil: HTTP on Server).
	SeedSource swarm.Source
	// SeedKbps is the seed's egress budget to peers (8000).
	SeedKbps int
	// Nodes is the number of viewers (required, > 0).
	Nodes int
	// Budgets are the viewers' relay budgets in kbit/s, one per node in
	// join order (nil: AudienceBudgets(Nodes)).
	Budgets []int
	// JoinEvery spaces the viewers' joins (100 ms: 10 per second).
	JoinEvery time.Duration
	// JoinTimeout bounds one viewer's StartNode (15 s).
	JoinTimeout time.Duration
	// Settle is the wait after the last join before measuring (10 s).
	Settle time.Duration
	// Window is the measurement window (20 s).
	Window time.Duration
	// API is the pion API every node uses (nil: swarm.LoopbackAPI()).
	API *webrtc.API
	// Guard tunes the viewers' RTT guard (zero: production defaults).
	Guard scheduler.RTTGuardParams
	// PeakKbps, if set, returns the origin's advertised stream rate (for
	// example origin.Stream.BitrateKbps); it is reported next to the
	// measured rate and stands in for it if no viewer got any bytes.
	PeakKbps func() int
	Logger   *slog.Logger // (discard)
}

func (p *SwarmParams) defaults() error {
	if p.Nodes <= 0 {
		return fmt.Errorf("%w: Nodes %d", ErrBadParams, p.Nodes)
	}
	if p.Server == "" || p.Stream == "" {
		return fmt.Errorf("%w: Server and Stream are required", ErrBadParams)
	}
	if p.Budgets == nil {
		p.Budgets = AudienceBudgets(p.Nodes)
	}
	if len(p.Budgets) != p.Nodes {
		return fmt.Errorf("%w: %d budgets for %d nodes", ErrBadParams, len(p.Budgets), p.Nodes)
	}
	if p.SeedKbps <= 0 {
		p.SeedKbps = 8000
	}
	if p.JoinEvery <= 0 {
		p.JoinEvery = 100 * time.Millisecond
	}
	if p.JoinTimeout <= 0 {
		p.JoinTimeout = 15 * time.Second
	}
	if p.Settle <= 0 {
		p.Settle = 10 * time.Second
	}
	if p.Window <= 0 {
		p.Window = 20 * time.Second
	}
	if p.API == nil {
		p.API = swarm.LoopbackAPI()
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// AudienceUploadKbps and AudienceReserveKbps are the upload line the audience mix
// assumes for every viewer (--upload 10Mbps --reserve 5Mbps).
const (
	AudienceUploadKbps  = 10_000
	AudienceReserveKbps = 5_000
)

// audiencePattern is the relay levels of ten consecutive joins: 20% off,
// 30% low, 30% medium, 20% high, interleaved so that any prefix of the
// join order is close to the mix.
var audiencePattern = [10]scheduler.RelayLevel{
	scheduler.RelayOff, scheduler.RelayLow, scheduler.RelayMedium, scheduler.RelayHigh, scheduler.RelayLow,
	scheduler.RelayMedium, scheduler.RelayOff, scheduler.RelayLow, scheduler.RelayMedium, scheduler.RelayHigh,
}

// AudienceBudgets returns n relay budgets (kbit/s) like a real audience
// on a 10 Mbit/s uplink with 5 Mbit/s reserved: off, low (500), medium
// (1250) and high (2500) in the ratio 2:3:3:2, computed by the production
// budget math (scheduler.Budget).
func AudienceBudgets(n int) []int {
	out := make([]int, n)
	for i := range out {
		b := scheduler.Budget{TotalKbps: AudienceUploadKbps, ReservedKbps: AudienceReserveKbps,
			Relay: scheduler.Relay{Level: audiencePattern[i%len(audiencePattern)]}}
		out[i] = int(b.RelayKbps())
	}
	return out
}

// SwarmReport is what RunSwarm measured over its window. Rates are over
// the window's measured wall time; counts are deltas over it.
type SwarmReport struct {
	Nodes      int           // viewers that joined
	JoinFailed int           // viewers whose StartNode failed
	JoinTime   time.Duration // first join to last join
	Window     time.Duration // measured wall time of the window

	// StreamKbps is the stream rate r: the median over viewers of the
	// media bytes each got over the window. PeakKbps is the origin's
	// advertised peak rate (0 if not given).
	StreamKbps, PeakKbps float64

	// Server egress: what the seed pushed or answered to peers, plus what
	// viewers fetched from the origin over HTTP.
	SeedMbps, HTTPMbps, EgressMbps float64
	Copies                         float64 // EgressMbps ÷ r

	// Offload is bytes viewers got from peers ÷ all media bytes they got.
	Offload float64
	// RelayMbps is what the viewers uploaded to peers; BudgetMbps (U) the
	// sum of their relay budgets.
	RelayMbps, BudgetMbps float64
	// BoundMbps is the fluid bound max(r, n·r − U); BoundCopies the same
	// ÷ r; Efficiency = EgressMbps ÷ BoundMbps (1 is ideal).
	BoundMbps, BoundCopies, Efficiency float64

	// Continuity = OnTime ÷ (OnTime + Late).
	OnTime, Late int
	Continuity   float64

	// Delivery latency (ingest finished → held verified) of the chunks
	// viewers held during the window, over all viewers and by depth.
	Samples       int
	P50, P95, P99 time.Duration
	ByDepth       []DepthRow
	ByBudget      []BudgetRow

	// Counters over the window, and state at its end.
	Rejected, Reassigned, StallReports int
	// Unknown are chunks peers sent before the receiver knew their signed
	// entry (dropped); Pushed and Pulled the chunks got from peers each way.
	Unknown, Pushed, Pulled int
	// OriginPulls are chunks the viewers' planners asked the origin for
	// near a deadline; HTTPFed those fetched over HTTP because a substream
	// had no upstream at all (the tracker found no capacity).
	OriginPulls, HTTPFed int
	Throttled            int // viewers whose RTT guard cut relay at the end
	Peers                int // open links, summed over viewers, at the end

	// CPU is the process's CPU time over the window ÷ its wall time, in
	// cores (1 = one core busy); Cores is runtime.NumCPU.
	CPU   float64
	Cores int
}

// DepthRow is the viewers at one hop depth (Stats.Depth at the window's
// end: the deepest of their substreams).
type DepthRow struct {
	Depth, Nodes, Samples int
	P50, P95, P99         time.Duration
	Continuity, Offload   float64
	UploadKbps            float64 // mean relay upload of these viewers
}

// BudgetRow is the viewers with one relay budget.
type BudgetRow struct {
	BudgetKbps, Nodes int
	UploadKbps        float64 // mean relay upload over the window
	MeanDepth         float64
	Continuity        float64
}

// snapshot is one node's counters and latency ring at an instant.
type snapshot struct {
	s   swarm.Stats
	lat []time.Duration
}

// latencySource is a node's counters and latency ring: a *swarm.Node, or
// a simulated node's core.
type latencySource interface {
	Stats() swarm.Stats
	LatencySamples() []time.Duration
}

func take(n latencySource) snapshot { return snapshot{n.Stats(), n.LatencySamples()} }

// RunSwarm starts a seed and p.Nodes viewers against a live origin,
// joining them at a steady rate, lets the swarm settle, measures over
// p.Window, closes every node and returns the report. The origin must be
// live (its manifest lists media) before RunSwarm is called.
func RunSwarm(ctx context.Context, p SwarmParams) (SwarmReport, error) {
	if err := p.defaults(); err != nil {
		return SwarmReport{}, err
	}
	log := p.Logger
	sctx, cancel := context.WithTimeout(ctx, p.JoinTimeout)
	seed, err := swarm.StartNode(sctx, swarm.NodeParams{
		Server: p.Server, Stream: p.Stream, Seed: true, Token: p.SeedToken, BudgetKbps: p.SeedKbps,
		Source: p.SeedSource, API: p.API, Logger: log.With("node", "seed"),
	})
	cancel()
	if err != nil {
		return SwarmReport{}, fmt.Errorf("bench: seed: %w", err)
	}
	var (
		nodes   []*swarm.Node
		budgets []int
	)
	defer func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(n.Close)
		}
		wg.Wait()
		seed.Close()
	}()

	rep := SwarmReport{Cores: runtime.NumCPU()}
	start := time.Now()
	for i := range p.Nodes {
		if err := sleepUntil(ctx, start.Add(time.Duration(i)*p.JoinEvery)); err != nil {
			return rep, err
		}
		jctx, cancel := context.WithTimeout(ctx, p.JoinTimeout)
		n, err := swarm.StartNode(jctx, swarm.NodeParams{
			Server: p.Server, Stream: p.Stream, BudgetKbps: p.Budgets[i], API: p.API, Guard: p.Guard,
			Logger: log.With("node", i),
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.JoinFailed++
			log.Warn("join failed", "node", i, "err", err)
			continue
		}
		nodes, budgets = append(nodes, n), append(budgets, p.Budgets[i])
	}
	rep.JoinTime, rep.Nodes = time.Since(start), len(nodes)
	if rep.JoinFailed*2 > p.Nodes {
		return rep, fmt.Errorf("bench: %d of %d viewers failed to join", rep.JoinFailed, p.Nodes)
	}
	log.Info("joined", "nodes", len(nodes), "failed", rep.JoinFailed, "took", rep.JoinTime)
	if err := sleepUntil(ctx, time.Now().Add(p.Settle)); err != nil {
		return rep, err
	}

	snap := func() (seedS swarm.Stats, vs []snapshot, cpu time.Duration, at time.Time) {
		at, cpu = time.Now(), cpuTime()
		seedS = seed.Stats()
		vs = make([]snapshot, len(nodes))
		for i, n := range nodes {
			vs[i] = take(n)
		}
		return seedS, vs, cpu, at
	}
	seedA, a, cpuA, atA := snap()
	if err := sleepUntil(ctx, atA.Add(p.Window)); err != nil {
		return rep, err
	}
	seedB, b, cpuB, atB := snap()
	rep.Window = atB.Sub(atA)
	rep.CPU = float64(cpuB-cpuA) / float64(rep.Window)
	if p.PeakKbps != nil {
		rep.PeakKbps = float64(p.PeakKbps())
	}
	measure(&rep, budgets, seedB.BytesUploaded-seedA.BytesUploaded, a, b)
	log.Info("measured", "report", rep.Summary())
	return rep, nil
}

// measure fills rep from the viewers' snapshots at the window's start (a)
// and end (b); seedUp is what the seed uploaded over the window. A preset
// rep.StreamKbps is kept (else it is the viewers' median rate). It returns
// the window's latency samples by depth.
func measure(rep *SwarmReport, budgets []int, seedUp int64, a, b []snapshot) map[int][]time.Duration {
	secs := rep.Window.Seconds()
	mbps := func(bytes int64) float64 { return float64(bytes) * 8 / 1e6 / secs }
	var (
		peers, origin, http, relay int64
		rates                      []float64
		all                        []time.Duration
		budgetSum                  int64
	)
	type acc struct {
		nodes, onTime, late int
		peers, total, up    int64
		depth               int
		lat                 []time.Duration
	}
	depths, classes := map[int]*acc{}, map[int]*acc{}
	for i := range b {
		x, y := a[i].s, b[i].s
		dp, do := y.BytesFromPeers-x.BytesFromPeers, y.BytesFromOrigin-x.BytesFromOrigin
		dh := do - (y.BytesFromSeed - x.BytesFromSeed)
		du := y.BytesUploaded - x.BytesUploaded
		on, late := y.ChunksOnTime-x.ChunksOnTime, y.ChunksLate-x.ChunksLate
		peers, origin, http, relay = peers+dp, origin+do, http+dh, relay+du
		rates = append(rates, float64(dp+do)*8/1000/secs)
		budgetSum += int64(budgets[i])
		rep.OnTime += on
		rep.Late += late
		rep.Rejected += y.Rejected - x.Rejected
		rep.Reassigned += y.Reassigned - x.Reassigned
		rep.StallReports += y.StallReports - x.StallReports
		rep.Unknown += y.Unknown - x.Unknown
		rep.Pushed += y.Pushed - x.Pushed
		rep.Pulled += y.Pulled - x.Pulled
		rep.OriginPulls += y.OriginPulls - x.OriginPulls
		rep.HTTPFed += y.HTTPFed - x.HTTPFed
		rep.Peers += y.Peers
		if y.Throttled {
			rep.Throttled++
		}
		lat := newSamples(a[i].lat, b[i].lat)
		all = append(all, lat...)
		for _, g := range []*acc{group(depths, y.Depth, func() *acc { return &acc{} }), group(classes, budgets[i], func() *acc { return &acc{} })} {
			g.nodes++
			g.onTime += on
			g.late += late
			g.peers += dp
			g.total += dp + do
			g.up += du
			g.depth += y.Depth
			g.lat = append(g.lat, lat...)
		}
	}
	if rep.StreamKbps == 0 {
		rep.StreamKbps = median(rates)
	}
	if rep.StreamKbps == 0 {
		rep.StreamKbps = rep.PeakKbps
	}
	rep.SeedMbps, rep.HTTPMbps = mbps(seedUp), mbps(http)
	rep.EgressMbps = rep.SeedMbps + rep.HTTPMbps
	rep.RelayMbps, rep.BudgetMbps = mbps(relay), float64(budgetSum)/1000
	rep.Offload = ratio(float64(peers), float64(peers+origin))
	rep.Continuity = ratio(float64(rep.OnTime), float64(rep.OnTime+rep.Late))
	r := rep.StreamKbps / 1000
	rep.BoundMbps = FluidBound(len(b), r, rep.BudgetMbps)
	rep.Copies, rep.BoundCopies = ratio(rep.EgressMbps, r), ratio(rep.BoundMbps, r)
	rep.Efficiency = ratio(rep.EgressMbps, rep.BoundMbps)
	rep.Samples = len(all)
	rep.P50, rep.P95, rep.P99 = Percentile(all, 0.50), Percentile(all, 0.95), Percentile(all, 0.99)
	byDepth := map[int][]time.Duration{}
	for _, d := range sortedKeys(depths) {
		g := depths[d]
		byDepth[d] = g.lat
		rep.ByDepth = append(rep.ByDepth, DepthRow{
			Depth: d, Nodes: g.nodes, Samples: len(g.lat),
			P50: Percentile(g.lat, 0.50), P95: Percentile(g.lat, 0.95), P99: Percentile(g.lat, 0.99),
			Continuity: ratio(float64(g.onTime), float64(g.onTime+g.late)),
			Offload:    ratio(float64(g.peers), float64(g.total)),
			UploadKbps: float64(g.up) * 8 / 1000 / secs / float64(g.nodes),
		})
	}
	for _, k := range sortedKeys(classes) {
		g := classes[k]
		rep.ByBudget = append(rep.ByBudget, BudgetRow{
			BudgetKbps: k, Nodes: g.nodes,
			UploadKbps: float64(g.up) * 8 / 1000 / secs / float64(g.nodes),
			MeanDepth:  float64(g.depth) / float64(g.nodes),
			Continuity: ratio(float64(g.onTime), float64(g.onTime+g.late)),
		})
	}
	return byDepth
}

func group[K comparable, V any](m map[K]V, k K, mk func() V) V {
	v, ok := m[k]
	if !ok {
		v = mk()
		m[k] = v
	}
	return v
}

func sortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// FluidBound is the least server egress (Kumar, Liu, Ross 2007) for n
// viewers at rate r whose relay upload sums to u: max(r, n·r − u), in the
// unit of r and u.
func FluidBound(n int, r, u float64) float64 {
	return max(r, float64(n)*r-u)
}

// Percentile returns the q-quantile (0 ≤ q ≤ 1, nearest rank) of d; 0 if d
// is empty. d is not modified.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q * float64(len(s)))
	return s[min(max(i, 0), len(s)-1)]
}

// newSamples returns the samples of a node's latency ring taken at the end
// of a window (after) that were not there at its start (before). The ring
// appends until it is full, then overwrites in place; a sample is a
// duration in nanoseconds, so an overwritten slot all but never holds the
// value it held. (A window that overwrites the whole ring more than once
// is undercounted; at 8 chunks/s a 512-slot ring lasts a minute.)
func newSamples(before, after []time.Duration) []time.Duration {
	var out []time.Duration
	for i, d := range after {
		if i >= len(before) || before[i] != d {
			out = append(out, d)
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Summary is the report's headline figures on one line.
func (r SwarmReport) Summary() string {
	return fmt.Sprintf("n=%d r=%.0fkbps egress=%.2fMbps (%.2f copies; seed %.2f + http %.2f) bound=%.2f copies eff=%.2f offload=%.1f%% continuity=%.2f%% p50=%v p95=%v cpu=%.0f%% of one core (%d cores)",
		r.Nodes, r.StreamKbps, r.EgressMbps, r.Copies, r.SeedMbps, r.HTTPMbps, r.BoundCopies, r.Efficiency,
		100*r.Offload, 100*r.Continuity, r.P50.Round(time.Millisecond), r.P95.Round(time.Millisecond), 100*r.CPU, r.Cores)
}

// Table is the report as text: the headline figures, then a table by
// depth and one by relay budget.
func (r SwarmReport) Table() string {
	var b strings.Builder
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(&b, "viewers %d (join failed %d, joins took %v), window %v\n", r.Nodes, r.JoinFailed, r.JoinTime.Round(time.Millisecond), r.Window.Round(time.Millisecond))
	fmt.Fprintf(&b, "stream r = %.0f kbps measured (origin peak %.0f kbps)\n", r.StreamKbps, r.PeakKbps)
	fmt.Fprintf(&b, "server egress %.2f Mbps = %.2f copies (seed %.2f Mbps + HTTP %.2f Mbps)\n", r.EgressMbps, r.Copies, r.SeedMbps, r.HTTPMbps)
	fmt.Fprintf(&b, "fluid bound %.2f Mbps = %.2f copies (U = %.1f Mbps of budgets, %.2f Mbps relayed); efficiency %.2f\n", r.BoundMbps, r.BoundCopies, r.BudgetMbps, r.RelayMbps, r.Efficiency)
	fmt.Fprintf(&b, "offload %.1f%%, continuity %.2f%% (%d on time, %d late)\n", 100*r.Offload, 100*r.Continuity, r.OnTime, r.Late)
	fmt.Fprintf(&b, "latency p50 %.0f ms, p95 %.0f ms, p99 %.0f ms over %d samples\n", ms(r.P50), ms(r.P95), ms(r.P99), r.Samples)
	fmt.Fprintf(&b, "from peers: %d chunks pushed, %d pulled; %d dropped as unknown, %d rejected\n", r.Pushed, r.Pulled, r.Unknown, r.Rejected)
	fmt.Fprintf(&b, "from the origin: %d chunks pulled near a deadline, %d fetched for substreams with no upstream\n", r.OriginPulls, r.HTTPFed)
	fmt.Fprintf(&b, "reassigned %d, stall reports %d, throttled at end %d, open links %d\n", r.Reassigned, r.StallReports, r.Throttled, r.Peers)
	fmt.Fprintf(&b, "cpu %.0f%% of one core (%d cores)\n", 100*r.CPU, r.Cores)
	b.WriteString(r.DepthTable())
	fmt.Fprintf(&b, "%7s %5s %9s %6s %8s\n", "budget", "nodes", "up-kbps", "depth", "contin%")
	for _, c := range r.ByBudget {
		fmt.Fprintf(&b, "%7d %5d %9.0f %6.2f %8.2f\n", c.BudgetKbps, c.Nodes, c.UploadKbps, c.MeanDepth, 100*c.Continuity)
	}
	return b.String()
}

// DepthTable is the report's table by hop depth.
func (r SwarmReport) DepthTable() string {
	var b strings.Builder
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(&b, "%5s %6s %8s %7s %7s %7s %8s %8s %9s\n", "depth", "nodes", "samples", "p50ms", "p95ms", "p99ms", "contin%", "offload%", "up-kbps")
	for _, d := range r.ByDepth {
		fmt.Fprintf(&b, "%5d %6d %8d %7.0f %7.0f %7.0f %8.2f %8.1f %9.0f\n", d.Depth, d.Nodes, d.Samples, ms(d.P50), ms(d.P95), ms(d.P99), 100*d.Continuity, 100*d.Offload, d.UploadKbps)
	}
	return b.String()
}
