package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seedcast/seedcast/origin/origintest"
	"github.com/seedcast/seedcast/scheduler"
)

// benchOrigin starts a live origin as the benchmarks use it: 8 seed slots,
// 4 substreams, live before it returns.
func benchOrigin(tb testing.TB) *origintest.Origin {
	tb.Helper()
	o := origintest.Start(tb, origintest.Params{OriginSlots: 8, Substreams: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := o.WaitLive(ctx); err != nil {
		tb.Fatal(err)
	}
	return o
}

// swarmParams are the harness settings against o for n viewers.
func swarmParams(o *origintest.Origin, n int) SwarmParams {
	return SwarmParams{
		Server: o.URL, Stream: o.Stream, SeedToken: o.Secret, SeedSource: o.Server.Source(o.Live),
		SeedKbps: 8000, Nodes: n, PeakKbps: o.Live.BitrateKbps,
		// Many pion nodes in one process load the CPU enough to multiply
		// the origin's RTT; that is not the uplink congestion the guard
		// is for.
		Guard: scheduler.RTTGuardParams{Slack: 5 * time.Second},
	}
}

// TestSwarmSmall runs the harness with six viewers for a short window:
// peers carry some of the stream, nearly every chunk is on time, and the
// server sends something.
func TestSwarmSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("7 pion nodes for ~10 s")
	}
	o := benchOrigin(t)
	p := swarmParams(o, 6)
	p.Settle, p.Window = 3*time.Second, 5*time.Second
	if testing.Verbose() {
		p.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := RunSwarm(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", r.Table())
	if r.Nodes != 6 {
		t.Errorf("%d viewers joined, want 6", r.Nodes)
	}
	if r.Offload <= 0 {
		t.Errorf("offload %.3f, want some bytes from peers", r.Offload)
	}
	if r.OnTime == 0 || r.Continuity <= 0.9 && !raceEnabled {
		t.Errorf("continuity %.3f (%d on time, %d late)", r.Continuity, r.OnTime, r.Late)
	}
	if r.EgressMbps <= 0 || r.StreamKbps <= 0 {
		t.Errorf("egress %.3f Mbps, stream %.0f kbps", r.EgressMbps, r.StreamKbps)
	}
	if r.Samples == 0 || r.P50 <= 0 || r.P95 < r.P50 || len(r.ByDepth) == 0 {
		t.Errorf("latency: %d samples, p50 %v, p95 %v, %d depths", r.Samples, r.P50, r.P95, len(r.ByDepth))
	}
	if r.Rejected != 0 {
		t.Errorf("%d rejected", r.Rejected)
	}
}

func TestAudienceBudgets(t *testing.T) {
	got := AudienceBudgets(10)
	want := []int{0, 500, 1250, 2500, 500, 1250, 0, 500, 1250, 2500}
	if !slices.Equal(got, want) {
		t.Fatalf("AudienceBudgets(10) = %v, want %v", got, want)
	}
}

func TestNewSamples(t *testing.T) {
	for _, c := range []struct {
		name          string
		before, after []time.Duration
		want          []time.Duration
	}{
		{"empty", nil, nil, nil},
		{"appended", []time.Duration{1, 2}, []time.Duration{1, 2, 3, 4}, []time.Duration{3, 4}},
		{"wrapped", []time.Duration{1, 2, 3}, []time.Duration{7, 2, 3}, []time.Duration{7}},
		{"filled then wrapped", []time.Duration{1, 2}, []time.Duration{8, 2, 5}, []time.Duration{8, 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := newSamples(c.before, c.after); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestMeasures(t *testing.T) {
	if got := FluidBound(100, 0.5, 60); got != 0.5 {
		t.Errorf("FluidBound(100, 0.5, 60) = %v, want r", got)
	}
	if got := FluidBound(100, 0.5, 30); got != 20 {
		t.Errorf("FluidBound(100, 0.5, 30) = %v, want 20", got)
	}
	d := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if p50, p95 := Percentile(d, 0.5), Percentile(d, 0.95); p50 != 6 || p95 != 10 {
		t.Errorf("p50 %v p95 %v", p50, p95)
	}
	if Percentile(nil, 0.5) != 0 || d[0] != 5 {
		t.Error("Percentile: empty input or modified its argument")
	}
	if _, err := RunSwarm(context.Background(), SwarmParams{Server: "http://x", Stream: "s"}); err == nil {
		t.Error("RunSwarm with no nodes: no error")
	}
}

// benchNodes is the viewer counts BenchmarkSwarm runs: 20, 50 and 100,
// or SEEDCAST_BENCH_NODES (comma-separated).
func benchNodes(b *testing.B) []int {
	env := os.Getenv("SEEDCAST_BENCH_NODES")
	if env == "" {
		return []int{20, 50, 100}
	}
	var ns []int
	for _, f := range strings.Split(env, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("SEEDCAST_BENCH_NODES: %q is not a node count", f)
		}
		ns = append(ns, n)
	}
	return ns
}

// BenchmarkSwarm runs the swarm at 20, 50 and 100 viewers (see benchNodes):
//
//	go test -run '^$' -bench 'Swarm$' -benchtime 1x -timeout 20m ./bench
func BenchmarkSwarm(b *testing.B) {
	for _, n := range benchNodes(b) {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) { benchSwarm(b, n) })
	}
}

// BenchmarkSwarm100 is the benchmark: a 100-node in-process swarm
// of the ~550 kbit/s demo stream on loopback.
//
//	go test -run '^$' -bench Swarm100 -benchtime 1x -timeout 10m ./bench
func BenchmarkSwarm100(b *testing.B) { benchSwarm(b, 100) }

// benchSwarm runs the harness with n viewers and reports its measures.
// SEEDCAST_BENCH_WINDOW (a Go duration) overrides the 20 s window.
func benchSwarm(b *testing.B, n int) {
	o := benchOrigin(b)
	p := swarmParams(o, n)
	if w := os.Getenv("SEEDCAST_BENCH_WINDOW"); w != "" {
		d, err := time.ParseDuration(w)
		if err != nil {
			b.Fatalf("SEEDCAST_BENCH_WINDOW: %v", err)
		}
		p.Window = d
	}
	p.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var r SwarmReport
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var err error
		r, err = RunSwarm(ctx, p)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.Copies, "copies")
	b.ReportMetric(r.BoundCopies, "bound-copies")
	b.ReportMetric(r.Efficiency, "efficiency")
	b.ReportMetric(r.EgressMbps, "egress-Mbps")
	b.ReportMetric(100*r.Offload, "offload-%")
	b.ReportMetric(100*r.Continuity, "continuity-%")
	b.ReportMetric(float64(r.P50)/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(r.P95)/float64(time.Millisecond), "p95-ms")
	b.ReportMetric(100*r.CPU, "cpu-%")
	b.ReportMetric(0, "ns/op") // wall time is the window, not a cost
	// The testing package keeps ten lines of a benchmark's log: the
	// headline and the depth table there, the whole report on stdout.
	b.Logf("%s\n%s", r.Summary(), r.DepthTable())
	fmt.Printf("--- REPORT: %s\n%s", b.Name(), r.Table())
}
