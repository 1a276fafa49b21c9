package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/seedcast/seedcast/bench"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
)

func benchCommand(stdout, stderr io.Writer) *ffcli.Command {
	var (
		rf       runFlags
		bitrate  string
		duration time.Duration
		perProc  int
		repeat   int
		resim    string
		withSim  bool
		chunk    time.Duration
	)
	fs := flag.NewFlagSet("seedcast bench", flag.ContinueOnError)
	rf.register(fs, "50", "write results.json, results.md and plots to this directory (default: a new temporary one); processes' logs, plans and stats go under it too")
	fs.StringVar(&bitrate, "bitrate", "500kbps", "stream rate asked for (the demo clip is ~0.55 Mbit/s of chunks; another rate is encoded with ffmpeg; the report gives the measured rate)")
	fs.DurationVar(&duration, "duration", 60*time.Second, "length of each run (joins, settling and the window scale as in the simulator)")
	fs.DurationVar(&chunk, "chunk-duration", manifest.DefaultChunkDuration, "the origin's chunk duration, 100ms–500ms (seedcast serve --chunk-duration)")
	fs.IntVar(&perProc, "nodes-per-process", 10, "viewer nodes each seedcast viewer process runs")
	fs.IntVar(&repeat, "repeat", 1, "runs of each audience size (the simulator's with seeds --seed, --seed+1, ...): a real run's figures vary from run to run")
	fs.StringVar(&resim, "resim", "", "run no processes: run the simulator again beside the harness's runs in this directory's results.json (after a change to the model), and rewrite its results")
	fs.BoolVar(&withSim, "sim", true, "also run the simulator on the same scenario, audience, measured rate and length, and report both side by side")
	return &ffcli.Command{
		Subcommands: []*ffcli.Command{benchCallCommand(stdout, stderr), benchWHEPCommand(stdout, stderr)},
		Name:        "bench",
		ShortUsage:  "seedcast bench [--viewers 50,100,200] [--bitrate 500kbps] [--duration 60s] [--scenario generous] [--out DIR]",
		ShortHelp:   "run a scenario on real processes on this machine: an origin, a publisher and n viewer nodes over real data channels",
		LongHelp: "Starts `seedcast serve` on loopback, `seedcast publish --demo`, and n viewer nodes in\n" +
			"`seedcast viewer` processes (--nodes-per-process each), with the scenario's relay budgets and\n" +
			"the simulator's join and leave pattern. Measures over the simulator's window from the nodes'\n" +
			"stats lines and the origin's /metrics, with the CPU of every process and of the machine, and\n" +
			"writes the simulator's report format; a run whose CPU was saturated says so. With --sim it\n" +
			"runs the simulator on the same scenario and reports both side by side (the model check).",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			log, err := rf.log.logger(stderr)
			if err != nil {
				return err
			}
			sc, ns, err := rf.load()
			if err != nil {
				return err
			}
			if resim != "" {
				return resimulate(ctx, resim, sc, log, stdout)
			}
			kbps, err := scheduler.ParseKbps(bitrate)
			if err != nil {
				return fmt.Errorf("--bitrate: %w", err)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			out := rf.out
			if out == "" {
				if out, err = os.MkdirTemp("", "seedcast-bench-"); err != nil {
					return err
				}
			}
			bar := newProgress(stderr)
			var results []bench.HarnessResult
			if repeat < 1 {
				return fmt.Errorf("--repeat %d: want 1 or more", repeat)
			}
			for _, n := range ns {
				for i := range repeat {
					label := fmt.Sprintf("%s n=%d", sc.Name, n)
					dir := filepath.Join(out, fmt.Sprintf("run-%d", n))
					if repeat > 1 {
						dir += fmt.Sprintf("-%d", i+1)
					}
					res, err := bench.RunHarness(ctx, bench.HarnessParams{
						Binary: self, Dir: dir, Scenario: sc, Viewers: n,
						BitrateKbps: int(kbps), Duration: duration, NodesPerProcess: perProc, Seed: rf.seed + uint64(i), ChunkDuration: chunk, Logger: log,
						Progress: func(done, total time.Duration) { bar.show(label, done, total) },
					})
					bar.done()
					if err != nil {
						return err
					}
					if withSim {
						sp := bench.SimFor(sc, res)
						sp.Logger = log
						sim, err := bench.RunSim(ctx, sp)
						if err != nil {
							return err
						}
						res.Sim = &sim
					}
					results = append(results, res)
					h := res.Harness
					fmt.Fprintf(stdout, "n=%d r=%.3f Mbps egress %.2f Mbps (%.1f copies; seed %.2f + http %.2f) bound %.2f offload %.1f%% continuity %.2f%% latency p50/p95 %.0f/%.0f ms startup p50 %.0f ms max depth %d; cpu %.2f cores, waited %.0f%% (machine %.0f%% busy, load %.2f), throttled %d, saturated=%v\n",
						res.Viewers, res.BitrateMbps, res.ServerEgressMbps, res.Copies, res.SeedMbps, res.HTTPMbps, res.FluidBoundMbps,
						100*res.Offload, 100*res.Continuity, res.LatencyP50Ms, res.LatencyP95Ms, res.StartupP50Ms, res.MaxDepth,
						h.HarnessCores, 100*h.WaitShare, 100*h.MachineBusy, h.LoadEnd[0], h.Throttled, h.Saturated)
					if s := res.Sim; s != nil {
						fmt.Fprintf(stdout, "n=%d sim: egress %.2f Mbps (seed %.2f + http %.2f) offload %.1f%% continuity %.2f%%; agrees within 20%%: %v\n",
							res.Viewers, s.ServerEgressMbps, s.SeedMbps, s.HTTPMbps, 100*s.Offload, 100*s.Continuity, bench.Agrees(*s, res.SimResult))
					}
					if err := bench.WriteHarnessResults(out, results); err != nil {
						return err
					}
				}
			}
			fmt.Fprintln(stdout, "results in", out)
			return nil
		},
	}
}

// resimulate runs the simulator again beside the harness runs in dir and
// rewrites their results.
func resimulate(ctx context.Context, dir string, sc bench.Scenario, log *slog.Logger, stdout io.Writer) error {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var results []bench.HarnessResult
	if err := json.Unmarshal(b, &results); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for i, r := range results {
		if r.Scenario != sc.Name {
			return fmt.Errorf("%s: run %d is of scenario %q, not %q (--scenario)", dir, i, r.Scenario, sc.Name)
		}
		sp := bench.SimFor(sc, r)
		sp.Logger = log
		sim, err := bench.RunSim(ctx, sp)
		if err != nil {
			return err
		}
		results[i].Sim = &sim
		fmt.Fprintf(stdout, "n=%d real egress %.2f Mbps offload %.1f%%; sim egress %.2f Mbps (seed %.2f + http %.2f) offload %.1f%%; agrees within 20%%: %v\n",
			r.Viewers, r.ServerEgressMbps, 100*r.Offload, sim.ServerEgressMbps, sim.SeedMbps, sim.HTTPMbps, 100*sim.Offload, bench.Agrees(sim, r.SimResult))
	}
	return bench.WriteHarnessResults(dir, results)
}
