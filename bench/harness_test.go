package bench

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/seedcast/seedcast/swarm"
)

// TestPlanViewers: the harness's viewers join and leave as RunSim has
// them: n joins from a second in, spread over the join time, classes
// interleaved; with churn a leave and a join together, the online count
// steady.
func TestPlanViewers(t *testing.T) {
	sc, err := LoadScenario("generous")
	if err != nil {
		t.Fatal(err)
	}
	plan := planViewers(sc, 50, 500, 60*time.Second, 1)
	if len(plan) != 50 || plan[0].join != time.Second || plan[49].join != 31*time.Second {
		t.Fatalf("%d joins, first %v, last %v", len(plan), plan[0].join, plan[49].join)
	}
	budgets := map[int]int{}
	for _, v := range plan[:10] {
		budgets[v.budget]++
		if v.leave != 0 {
			t.Errorf("a leave without churn: %+v", v)
		}
	}
	if budgets[0] != 2 || budgets[625] != 4 || budgets[1125] != 4 {
		t.Errorf("the first ten's budgets: %v", budgets)
	}
	joinOver, joinEnd, win := timeline(sc, 60*time.Second)
	if joinOver != 30*time.Second || joinEnd != 31*time.Second || win != 45*time.Second {
		t.Errorf("timeline %v %v %v", joinOver, joinEnd, win)
	}
	if n, u := onlineMean(plan, win, 60*time.Second); n != 50 || math.Abs(u-50*sc.MeanBudgetKbps(500)) > 1 {
		t.Errorf("online %v, budgets %v", n, u)
	}

	churn, err := LoadScenario("churn")
	if err != nil {
		t.Fatal(err)
	}
	plan = planViewers(churn, 50, 500, 120*time.Second, 1)
	var leaves, silent int
	for _, v := range plan {
		if v.leave > 0 {
			leaves++
			if v.leave <= v.join {
				t.Errorf("leaves before it joins: %+v", v)
			}
		}
		if v.silent {
			silent++
		}
	}
	// 20% of 50 a minute, from 41 s to 120 s: one every 6 s.
	if leaves != 13 || len(plan) != 63 || silent == 0 || silent == leaves {
		t.Errorf("%d leaves (%d silent) of %d", leaves, silent, len(plan))
	}
	if n, _ := onlineMean(plan, 90*time.Second, 120*time.Second); n != 50 {
		t.Errorf("online with churn %v", n)
	}
	groups := groupNodes(plan, 10)
	seen := map[int]bool{}
	for _, g := range groups {
		if len(g) > 10 {
			t.Errorf("a process of %d nodes", len(g))
		}
		for i, v := range g {
			seen[v.id] = true
			if i > 0 && v.join < g[i-1].join {
				t.Error("a process's nodes out of join order")
			}
		}
	}
	if len(groups) != 7 || len(seen) != len(plan) || groups[0][0].join != time.Second || groups[1][0].join == time.Second {
		t.Errorf("%d processes for %d nodes", len(groups), len(seen))
	}
}

// TestWindowSnapshots: the window's snapshots are the last line at or
// before each edge, with the latencies of the lines after the first, and
// viewers gone before the window or never heard from are left out.
func TestWindowSnapshots(t *testing.T) {
	line := func(peers int64, lat ...float64) NodeLine {
		return NodeLine{BytesFromPeers: peers, LatencyMs: lat}
	}
	series := []nodeSeries{
		{node: plannedNode{id: 0, budget: 100}, lines: []NodeLine{line(1, 5), line(2, 6), line(3, 7), line(4, 8)},
			at: []time.Duration{9 * time.Second, 10 * time.Second, 11 * time.Second, 12 * time.Second}},
		{node: plannedNode{id: 1, budget: 200}, lines: []NodeLine{line(10, 1)}, at: []time.Duration{11 * time.Second}},
		{node: plannedNode{id: 2, leave: 10 * time.Second}, lines: []NodeLine{line(9)}, at: []time.Duration{9 * time.Second}},
		{node: plannedNode{id: 3}},
	}
	budgets, a, b := windowSnapshots(series, 10*time.Second, 12*time.Second, 50*time.Millisecond)
	if len(b) != 2 || budgets[0] != 100 || budgets[1] != 200 {
		t.Fatalf("%d viewers, budgets %v", len(b), budgets)
	}
	if a[0].s.BytesFromPeers != 2 || b[0].s.BytesFromPeers != 4 || len(b[0].lat) != 2 || b[0].lat[0] != 7*time.Millisecond {
		t.Errorf("viewer 0: %+v → %+v", a[0], b[0])
	}
	if a[1].s.BytesFromPeers != 0 || b[1].s.BytesFromPeers != 10 || len(b[1].lat) != 1 {
		t.Errorf("a viewer that joined in the window: %+v → %+v", a[1], b[1])
	}
}

// TestNodeRecorder: each line carries the latencies new since the last,
// and reads back to the same counters.
func TestNodeRecorder(t *testing.T) {
	rec := NodeRecorder{BudgetKbps: 625}
	now := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	s := swarm.Stats{BytesFromPeers: 7, BytesFromOrigin: 3, BytesFromSeed: 1, BytesUploaded: 5, ChunksOnTime: 4, Depth: 2, Pushed: 3, HTTPFed: 1}
	l1 := rec.Line(now, s, []time.Duration{time.Millisecond, 2 * time.Millisecond}, 0)
	l2 := rec.Line(now.Add(time.Second), s, []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, 40*time.Millisecond)
	if len(l1.LatencyMs) != 2 || len(l2.LatencyMs) != 1 || l2.LatencyMs[0] != 3 || l2.StartupMs != 40 || l1.BudgetKbps != 625 {
		t.Errorf("lines %+v %+v", l1, l2)
	}
	if got := l2.Stats(); got.BytesFromPeers != 7 || got.BytesFromSeed != 1 || got.Depth != 2 || got.Pushed != 3 || got.HTTPFed != 1 {
		t.Errorf("read back %+v", got)
	}
	// A last line cut short is dropped; a bad line before it is an error.
	good := `{"t":"2026-11-30T01:00:00Z","bytesFromPeers":1}`
	ls, err := ReadNodeLines(strings.NewReader(good + "\n" + good + "\n" + `{"t":"2026-11-30T01:0`))
	if err != nil || len(ls) != 2 {
		t.Errorf("cut last line: %v, %d lines", err, len(ls))
	}
	if _, err := ReadNodeLines(strings.NewReader("nope\n" + good + "\n")); !errors.Is(err, ErrNodeLine) {
		t.Errorf("a bad line: %v", err)
	}
	if _, err := ReadViewerPlan(strings.NewReader(`{"start":"2026-11-30T01:00:00Z","nodes":[{"id":1,"join":"5s","leave":"2s","stats":"x"}]}`)); !errors.Is(err, ErrNodeLine) {
		t.Errorf("a leave before the join: %v", err)
	}
}

// TestParseProm reads the origin's /metrics as it writes them.
func TestParseProm(t *testing.T) {
	m, err := parseProm(strings.NewReader(`# HELP x y
# TYPE seedcast_chunk_bytes_total counter
seedcast_chunk_bytes_total{rendition="a0",stream="bench"} 118165
seedcast_chunk_bytes_total{rendition="v0",stream="bench"} 6.03158e+05
seedcast_chunk_bytes_total{rendition="v0",stream="other"} 5
go_goroutines 12
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.sum("seedcast_chunk_bytes_total", "stream", "bench"); got != 118165+603158 {
		t.Errorf("sum %v", got)
	}
	if _, err := parseProm(strings.NewReader("broken{a=\"b\" 1\n")); err == nil {
		t.Error("a broken line parsed")
	}
}

// TestSaturatedAndAgrees: the report's verdicts.
func TestSaturatedAndAgrees(t *testing.T) {
	for _, c := range []struct {
		wait, busy, cores float64
		want              bool
	}{
		{0.1, 0.5, 0.5, false},
		{0.6, 0.5, 0.5, false}, // waited, but on an idle machine: its own threads
		{0.6, 1, 0.5, true},
		{0.1, 1, 1.6, true},
	} {
		if got, why := saturated(c.wait, c.busy, c.cores, 2); got != c.want || got == (why == "") {
			t.Errorf("saturated(%v) = %v %q", c, got, why)
		}
	}
	sim, real := SimResult{ServerEgressMbps: 5.4, Offload: 0.83}, SimResult{ServerEgressMbps: 5, Offload: 0.8}
	if !Agrees(sim, real) {
		t.Error("8% apart should agree")
	}
	sim.ServerEgressMbps = 6.5
	if Agrees(sim, real) {
		t.Error("30% apart should not")
	}
}

// TestModelChecks: repeated runs of a size average into one check.
func TestModelChecks(t *testing.T) {
	run := func(n int, sim, real, simOff, realOff float64, sat bool) HarnessResult {
		return HarnessResult{SimResult: SimResult{Viewers: n, ServerEgressMbps: real, Offload: realOff},
			Harness: HarnessRun{Saturated: sat}, Sim: &SimResult{ServerEgressMbps: sim, Offload: simOff}}
	}
	checks := ModelChecks([]HarnessResult{
		run(50, 5, 4, 0.8, 0.8, false), run(50, 6, 8, 0.8, 0.7, true), run(100, 10, 30, 0.8, 0.2, true), {SimResult: SimResult{Viewers: 7}},
	})
	if len(checks) != 2 || checks[0].Runs != 2 || checks[0].Saturated != 1 || checks[0].RealEgress != [3]float64{6, 4, 8} || checks[0].SimEgress[0] != 5.5 {
		t.Fatalf("%+v", checks)
	}
	if !checks[0].Agrees() || checks[1].Agrees() {
		t.Errorf("agree: %v %v", checks[0].Agrees(), checks[1].Agrees())
	}
	if md := ModelCheckMarkdown([]HarnessResult{run(50, 5, 4, 0.8, 0.8, false), run(50, 6, 8, 0.8, 0.7, true)}); !strings.Contains(md, "On average") {
		t.Errorf("no summary:\n%s", md)
	}
}
