package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Agreement is how far apart the simulator's and the harness's server
// egress and offload may be for the model to count as checked: 20% of the
// harness's figure.
const Agreement = 0.20

// WriteHarnessResults writes a series of real-process runs to dir:
// results.json (the array of HarnessResult: the simulator's fields, the
// run's costs under "harness", and the simulator's run of the same
// scenario under "sim" when one was made), results.md and the simulator's
// plots of the harness's figures (WriteSimPlots).
func WriteHarnessResults(dir string, results []HarnessResult) error {
	if err := writeResults(dir, results, HarnessMarkdown(results)); err != nil {
		return err
	}
	sims := make([]SimResult, len(results))
	for i, r := range results {
		sims[i] = r.SimResult
	}
	return WriteSimPlots(dir, sims)
}

// HarnessMarkdown is the runs as a Markdown report: the simulator's
// report of the harness's figures (SimMarkdown), what each run cost the
// machine, and beside the simulator where it ran the same scenario.
func HarnessMarkdown(results []HarnessResult) string {
	if len(results) == 0 {
		return "No runs.\n"
	}
	var b strings.Builder
	r0 := results[0]
	fmt.Fprintf(&b, "# Real-process harness: %s, %.3f Mbit/s measured (asked %.3f; %s at %.3f), %.0f s\n\n",
		r0.Scenario, r0.BitrateMbps, r0.Harness.AskedBitrateMbps, r0.Harness.Clip, r0.Harness.PublishedBitrateMbps, r0.DurationSeconds)
	b.WriteString("Real processes on one machine's loopback: `seedcast serve` (the origin and its seed), `seedcast publish --demo`, and the viewers in `seedcast viewer --plan` processes, over real pion data channels. ")
	b.WriteString("Egress is the origin's own count (/metrics: its seed's frames and its HTTP chunk bytes); the rest is the viewers' stats lines over the window.\n\n")
	b.WriteString("## The machine\n\n")
	b.WriteString("Harness CPU is its processes' over the window, in cores; waited the share of their threads' runnable time spent waiting for a CPU; machine busy is every process's, others' too. ")
	b.WriteString("Throttled viewers had their relay cut by the RTT guard (their round trip to the origin rose) at the window's end.\n\n")
	b.WriteString("| viewers | processes | harness CPU, cores | waited | machine busy | cores | load avg at the window's start / end | throttled | saturated | wall s | CPU s | peak RSS MB (all) |\n|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---:|\n")
	for _, r := range results {
		h := r.Harness
		sat := "no"
		if h.Saturated {
			sat = "**yes**: " + h.SaturatedWhy
		}
		fmt.Fprintf(&b, "| %d | %d | %.2f | %.0f%% | %.0f%% | %d | %.2f %.2f %.2f / %.2f %.2f %.2f | %d | %s | %.0f | %.0f | %.0f |\n",
			r.Viewers, h.Processes+2, h.HarnessCores, 100*h.WaitShare, 100*h.MachineBusy, h.Cores, h.LoadStart[0], h.LoadStart[1], h.LoadStart[2],
			h.LoadEnd[0], h.LoadEnd[1], h.LoadEnd[2], h.Throttled, sat, r.WallSeconds, r.CPUSeconds, r.PeakRSSMB)
	}
	b.WriteString("\n| viewers | joins failed | egress as the viewers counted it: seed + HTTP Mbit/s | manifest polling Mbit/s (not in egress) | tracker's rate kbit/s | audio Mbit/s |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		h := r.Harness
		fmt.Fprintf(&b, "| %d | %d | %.2f + %.2f | %.2f | %d | %.3f |\n", r.Viewers, h.JoinFailed, h.ViewerSeedMbps, h.ViewerHTTPMbps, h.ManifestMbps, h.TrackerKbps, h.AudioMbps)
	}
	fmt.Fprintf(&b, "\nLinks: %s.", r0.Harness.Shaping)
	for _, n := range r0.Harness.Notes {
		b.WriteString(" " + strings.ToUpper(n[:1]) + n[1:] + ".")
	}
	b.WriteString("\n")
	if md := ModelCheckMarkdown(results); md != "" {
		b.WriteString("\n" + md)
	}
	sims := make([]SimResult, len(results))
	for i, r := range results {
		sims[i] = r.SimResult
	}
	// The simulator's tables, under this report's own title.
	body := SimMarkdown(sims)
	if _, rest, ok := strings.Cut(body, "\n\n"); ok {
		body = rest
	}
	b.WriteString("\n## The measures\n\n" + body)
	return b.String()
}

// ModelCheckMarkdown is the harness's runs beside the simulator's of the
// same scenario, audience, rate and length (those that have one), with
// whether server egress and offload agree within Agreement.
func ModelCheckMarkdown(results []HarnessResult) string {
	var b strings.Builder
	for _, r := range results {
		s := r.Sim
		if s == nil {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("## Model check: the simulator beside the harness\n\n")
			b.WriteString("Same scenario, audience, stream rate and length; egress and offload agree when within 20% of the harness's figure.\n\n")
			b.WriteString("| viewers | egress Mbit/s sim / real | Δ | offload sim / real | Δ | seed Mbit/s sim / real | HTTP Mbit/s sim / real | continuity sim / real | latency p50 ms sim / real | startup p50 ms sim / real | max depth sim / real | agree |\n")
			b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
		}
		de, do := relDiff(s.ServerEgressMbps, r.ServerEgressMbps), relDiff(s.Offload, r.Offload)
		agree := "yes"
		if !Agrees(*s, r.SimResult) {
			agree = "**no**"
		}
		fmt.Fprintf(&b, "| %d | %.2f / %.2f | %+.0f%% | %.1f%% / %.1f%% | %+.0f%% | %.2f / %.2f | %.2f / %.2f | %.2f%% / %.2f%% | %.0f / %.0f | %.0f / %.0f | %d / %d | %s |\n",
			r.Viewers, s.ServerEgressMbps, r.ServerEgressMbps, 100*de, 100*s.Offload, 100*r.Offload, 100*do,
			s.SeedMbps, r.SeedMbps, s.HTTPMbps, r.HTTPMbps, 100*s.Continuity, 100*r.Continuity,
			s.LatencyP50Ms, r.LatencyP50Ms, s.StartupP50Ms, r.StartupP50Ms, s.MaxDepth, r.MaxDepth, agree)
	}
	if sum := modelCheckSummary(results); sum != "" {
		b.WriteString("\n" + sum)
	}
	return b.String()
}

// ModelCheck is the runs of one audience size, the harness's and the
// simulator's, on average: a real run's figures vary from run to run
// (timing picks the tracker's links), and so do the simulator's from seed
// to seed.
type ModelCheck struct {
	Viewers, Runs, Saturated int
	// Egress and offload of the simulator's runs and of the harness's:
	// mean, least and most.
	SimEgress, RealEgress, SimOffload, RealOffload [3]float64
}

// Agrees says whether the means agree within Agreement of the harness's.
func (m ModelCheck) Agrees() bool {
	return math.Abs(relDiff(m.SimEgress[0], m.RealEgress[0])) <= Agreement &&
		math.Abs(relDiff(m.SimOffload[0], m.RealOffload[0])) <= Agreement
}

// ModelChecks groups the runs that have the simulator beside them by
// audience size, in the order sizes first appear.
func ModelChecks(results []HarnessResult) []ModelCheck {
	var out []ModelCheck
	idx := map[int]int{}
	spread := func(a *[3]float64, v float64, first bool) {
		if first {
			*a = [3]float64{v, v, v}
			return
		}
		a[0] += v
		a[1], a[2] = min(a[1], v), max(a[2], v)
	}
	for _, r := range results {
		if r.Sim == nil {
			continue
		}
		i, ok := idx[r.Viewers]
		if !ok {
			i = len(out)
			idx[r.Viewers] = i
			out = append(out, ModelCheck{Viewers: r.Viewers})
		}
		m := &out[i]
		first := m.Runs == 0
		m.Runs++
		if r.Harness.Saturated {
			m.Saturated++
		}
		spread(&m.SimEgress, r.Sim.ServerEgressMbps, first)
		spread(&m.RealEgress, r.ServerEgressMbps, first)
		spread(&m.SimOffload, r.Sim.Offload, first)
		spread(&m.RealOffload, r.Offload, first)
	}
	for i := range out {
		m := &out[i]
		for _, a := range []*[3]float64{&m.SimEgress, &m.RealEgress, &m.SimOffload, &m.RealOffload} {
			a[0] /= float64(m.Runs)
		}
	}
	return out
}

// modelCheckSummary is the model check on average over repeated runs
// (none when every size ran once).
func modelCheckSummary(results []HarnessResult) string {
	checks := ModelChecks(results)
	if !slices.ContainsFunc(checks, func(m ModelCheck) bool { return m.Runs > 1 }) {
		return ""
	}
	var b strings.Builder
	b.WriteString("On average over the runs of each size (mean, and least–most):\n\n")
	b.WriteString("| viewers | runs | egress Mbit/s sim | egress Mbit/s real | Δ | offload sim | offload real | Δ | CPU-bound runs | agree |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, m := range checks {
		agree := "yes"
		if !m.Agrees() {
			agree = "**no**"
		}
		fmt.Fprintf(&b, "| %d | %d | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %+.0f%% | %.1f%% (%.1f–%.1f) | %.1f%% (%.1f–%.1f) | %+.0f%% | %d | %s |\n",
			m.Viewers, m.Runs, m.SimEgress[0], m.SimEgress[1], m.SimEgress[2], m.RealEgress[0], m.RealEgress[1], m.RealEgress[2],
			100*relDiff(m.SimEgress[0], m.RealEgress[0]), 100*m.SimOffload[0], 100*m.SimOffload[1], 100*m.SimOffload[2],
			100*m.RealOffload[0], 100*m.RealOffload[1], 100*m.RealOffload[2], 100*relDiff(m.SimOffload[0], m.RealOffload[0]), m.Saturated, agree)
	}
	return b.String()
}

// Agrees says whether a simulator run and a harness run of the same
// scenario agree on server egress and offload, within Agreement of the
// harness's figures.
func Agrees(sim, real SimResult) bool {
	return math.Abs(relDiff(sim.ServerEgressMbps, real.ServerEgressMbps)) <= Agreement &&
		math.Abs(relDiff(sim.Offload, real.Offload)) <= Agreement
}

// relDiff is (a − b) ÷ b (0 when both are 0).
func relDiff(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return (a - b) / b
}

// HarnessRTTms is the round trip the simulator gives the harness's links
// (SimFor): loopback's is well under a millisecond, but the processes'
// scheduling on a busy machine is not.
const HarnessRTTms = 1

// SimFor is the simulator's run of what a harness run was: the same
// scenario, audience, length and seed, at the rate the harness's chunks
// came out at, with the same relay budgets in kbit/s (the harness sizes
// the scenario's multiples of the stream rate on the clip's own rate,
// before the container's overhead; the simulator on its stream rate), the
// origin's slots the harness gave its origin, the rate its tracker sized
// slots with, and the harness's network (SimParams.Loopback). The stream
// is the simulator's: one rendition at the whole rate (the harness's has
// its audio apart: HarnessRun.AudioMbps).
func SimFor(sc Scenario, res HarnessResult) SimParams {
	rate := res.BitrateMbps * 1000
	sc.Origin.Slots = res.OriginSlots // as the harness's origin had them
	if pub := res.Harness.PublishedBitrateMbps * 1000; pub > 0 && rate > 0 {
		sc.Audience = append([]Class(nil), sc.Audience...)
		for i, c := range sc.Audience {
			if c.RelayX != nil {
				x := *c.RelayX * pub / rate
				sc.Audience[i].RelayX = &x
			}
		}
	}
	return SimParams{Scenario: sc, Viewers: res.Viewers, BitrateKbps: int(math.Round(rate)), Duration: secondsDuration(res.DurationSeconds), Seed: res.Seed, Loopback: true,
		TrackerKbps: res.Harness.TrackerKbps, ChunkDuration: time.Duration(res.ChunkMs) * time.Millisecond}
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
