package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seedcast/seedcast/bench"
)

// TestBenchCommand runs `seedcast bench` as a user would, small: 10
// viewers (two viewer processes) for 20 s on loopback, with the
// simulator beside it. Every field of the simulator's results.json is in
// the harness's too, with sane values; every process the harness started
// has ended.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s run of real processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, binary, "bench", "--viewers", "10", "--duration", "20s", "--nodes-per-process", "5",
		"--out", dir, "--log-level", "warn")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) } // it stops its own processes
	cmd.WaitDelay = 20 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "n=10 r=") || !strings.Contains(string(out), "n=10 sim:") {
		t.Errorf("stdout:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != 1 {
		t.Fatalf("results.json: %v, %d runs", err, len(raw))
	}
	// Every field the simulator writes, the harness writes.
	st := reflect.TypeFor[bench.SimResult]()
	for i := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		opt := strings.Contains(st.Field(i).Tag.Get("json"), "omitempty")
		if name == "-" || opt {
			continue
		}
		if _, ok := raw[0][name]; !ok {
			t.Errorf("results.json lacks %q", name)
		}
	}
	var res []bench.HarnessResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	r, h := res[0], res[0].Harness
	t.Logf("r %.3f Mbit/s, egress %.2f (seed %.2f + http %.2f), offload %.3f, continuity %.4f, p50 %.0f ms, startup %.0f ms, cpu %.2f cores, machine %.0f%% busy, saturated %v",
		r.BitrateMbps, r.ServerEgressMbps, r.SeedMbps, r.HTTPMbps, r.Offload, r.Continuity, r.LatencyP50Ms, r.StartupP50Ms, h.HarnessCores, 100*h.MachineBusy, h.Saturated)
	checks := []struct {
		what string
		ok   bool
	}{
		{"viewers, joins", r.Viewers == 10 && r.Joins == 10 && h.JoinFailed == 0 && r.Leaves == 0},
		{"rate: the demo clip's, measured", r.BitrateMbps > 0.3 && r.BitrateMbps < 1 && h.PublishedBitrateMbps > 0.3 && h.AskedBitrateMbps == 0.5},
		{"window", r.WindowSeconds > 3 && r.WindowSeconds < 8 && r.WindowStartSeconds == 15 && r.DurationSeconds == 20},
		{"mean viewers", r.MeanViewers == 10},
		{"egress = seed + HTTP > 0", r.ServerEgressMbps > 0 && r.SeedMbps >= 0 && r.HTTPMbps >= 0 && abs(r.ServerEgressMbps-r.SeedMbps-r.HTTPMbps) < 1e-9},
		{"copies", abs(r.Copies-r.ServerEgressMbps/r.BitrateMbps) < 1e-9},
		{"bound", r.FluidBoundMbps >= r.BitrateMbps && r.Efficiency > 0 && r.RelayBudgetMbps > 0 && r.CDNMbps > 0},
		{"offload, continuity", r.Offload >= 0 && r.Offload <= 1 && r.Continuity > 0 && r.Continuity <= 1 && r.OnTime > 0},
		{"latency", r.LatencyP50Ms > 0 && r.LatencyP50Ms <= r.LatencyP95Ms && r.LatencyP95Ms <= r.LatencyP99Ms && len(r.LatencyByDepth) > 0 && len(r.LatencyCDF) > 0},
		{"startup", r.StartupP50Ms > 0 && r.StartupP50Ms <= r.StartupP95Ms && r.NotStarted == 0},
		{"depths", r.MaxDepth >= 1 && len(r.Depths) > 0 && r.MeanDepth >= 1},
		{"costs", r.WallSeconds > 20 && r.CPUSeconds > 0 && r.PeakRSSMB > 0 && h.Cores > 0 && h.HarnessCores > 0 && h.MachineBusy > 0 && h.LoadEnd[0] > 0},
		{"processes: origin, publisher, two viewer processes", len(h.Procs) == 4 && h.Processes == 2},
		{"the simulator beside it", r.Sim != nil && r.Sim.Viewers == 10 && r.Sim.ServerEgressMbps > 0},
		{"saturation said", h.Saturated == (h.SaturatedWhy != "")},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: %+v", c.what, r)
		}
	}
	for _, p := range h.Procs {
		if p.CPUSeconds <= 0 || p.ExitedBefore {
			t.Errorf("process %+v", p)
		}
		if err := syscall.Kill(p.Pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %s (%d) still there: %v", p.Name, p.Pid, err)
		}
	}
	for _, f := range []string{"results.md", "egress.svg", "run-10/logs/origin.log", "run-10/stats/node-9.jsonl", "run-10/plans/viewers-1.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	if !strings.Contains(string(md), "Model check") || !strings.Contains(string(md), "saturated") {
		t.Errorf("results.md:\n%s", md)
	}
}

func abs(f float64) float64 { return max(f, -f) }

// TestBenchCall runs the call load tool end to end on a small meeting: the
// server it starts forwards every publisher's tracks to the others, and the
// report says so.
func TestBenchCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "call.json")
	b, err := exec.CommandContext(ctx, binary, "bench", "call", "--rooms", "1", "--publishers", "3", "--subscribers", "1",
		"--duration", "4s", "--out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("seedcast bench call: %v\n%s", err, b)
	}
	t.Logf("%s", b)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res bench.CallLoadResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	// 3 publishers see 2 others' 2 tracks; the subscriber sees 3 × 2.
	if res.Participants != 4 || res.ForwardedTracks != 18 {
		t.Fatalf("%d participants, %d forwarded tracks: want 4 and 18", res.Participants, res.ForwardedTracks)
	}
	if res.Join.N != 4 || res.Media.N != 1 || res.PacketsOut <= res.PacketsIn || res.ServerCPU <= 0 {
		t.Fatalf("implausible result: %s", raw)
	}
}
