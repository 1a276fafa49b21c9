package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/seedcast/seedcast/bench"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
)

func simCommand(stdout, stderr io.Writer) *ffcli.Command {
	var (
		scenario, file, viewers, bitrate, out string
		duration, buffer, chunk               time.Duration
		seed                                  uint64
		substreams                            int
		list, cut                             bool
		lf                                    logFlags
	)
	fs := flag.NewFlagSet("seedcast sim", flag.ContinueOnError)
	fs.StringVar(&scenario, "scenario", "generous", "built-in scenario: "+strings.Join(bench.Scenarios(), ", "))
	fs.StringVar(&file, "scenario-file", "", "a scenario JSON file instead of a built-in one")
	fs.StringVar(&viewers, "viewers", "10,100,1000", "audience sizes to run, comma-separated")
	fs.StringVar(&bitrate, "bitrate", "", "stream rate r, e.g. 4Mbps (default: the scenario's)")
	fs.DurationVar(&duration, "duration", 0, "virtual time of each run (default: the scenario's)")
	fs.DurationVar(&buffer, "buffer", 0, "viewers' playback delay behind live, which the tracker gives them (default: the scenario's, else the tracker's 3.5s; as seedcast tracker --delay)")
	fs.DurationVar(&chunk, "chunk-duration", manifest.DefaultChunkDuration, "the chunker's target chunk duration, 100ms–500ms (as seedcast serve --chunk-duration)")
	fs.IntVar(&substreams, "substreams", 0, "K, the substreams the stream is split into for push delivery (default: the scenario's, else the tracker's, 4; as seedcast tracker --substreams)")
	fs.Uint64Var(&seed, "seed", 1, "the run's seed: the same seed gives the same run")
	fs.StringVar(&out, "out", "", "write results.json, results.md and plots (SVG, PNG) to this directory")
	fs.BoolVar(&list, "list", false, "list the built-in scenarios and exit")
	fs.BoolVar(&cut, "cut-through", false, "relay each verified piece of a chunk as it arrives (docs/protocol.md §5.8), to compare")
	lf.register(fs)
	return &ffcli.Command{
		Name:       "sim",
		ShortUsage: "seedcast sim [--scenario generous] [--viewers 10,100,1000] [--bitrate 4Mbps] [--duration 120s] [--buffer 3.5s] [--chunk-duration 125ms] [--seed 1] [--out DIR]",
		ShortHelp:  "simulate a swarm: the production node core and tracker policy on a virtual clock, at any audience size",
		LongHelp: "Runs a scenario on the simulator (package bench): one origin (its seed node and HTTP),\n" +
			"the production tracker policy and n production node cores on one virtual clock, over\n" +
			"modelled links. For each audience size it reports server egress against a plain CDN,\n" +
			"the founding design's claim and the fluid bound, offload, continuity, delivery latency\n" +
			"(overall and by hop depth), startup, the depth distribution, wall time and peak memory,\n" +
			"and the run second by second (HTTP egress, pulls, stalls, depth, the tracker's slots).",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			if list {
				for _, name := range bench.Scenarios() {
					sc, err := bench.LoadScenario(name)
					if err != nil {
						return err
					}
					fmt.Fprintf(stdout, "%-12s %s\n", name, sc.About)
				}
				return nil
			}
			log, err := lf.logger(stderr)
			if err != nil {
				return err
			}
			tuneGC()
			sc, err := loadScenario(scenario, file)
			if err != nil {
				return err
			}
			ns, err := parseViewers(viewers)
			if err != nil {
				return fmt.Errorf("--viewers: %w", err)
			}
			var kbps int64
			if bitrate != "" {
				if kbps, err = scheduler.ParseKbps(bitrate); err != nil {
					return fmt.Errorf("--bitrate: %w", err)
				}
			}
			bar := newProgress(stderr)
			var results []bench.SimResult
			for _, n := range ns {
				label := fmt.Sprintf("%s n=%d", sc.Name, n)
				res, err := bench.RunSim(ctx, bench.SimParams{
					Scenario: sc, Viewers: n, BitrateKbps: int(kbps), Duration: duration, Buffer: buffer, ChunkDuration: chunk, Substreams: substreams, Seed: seed, CutThrough: cut, Logger: log,
					Progress: func(done, total time.Duration) { bar.show(label, done, total) },
				})
				bar.done()
				if err != nil {
					return err
				}
				results = append(results, res)
				claim := "-"
				if res.ClaimMbps != nil {
					claim = fmt.Sprintf("%.0f", *res.ClaimMbps)
				}
				fmt.Fprintf(stdout, "n=%d egress %.1f Mbps (%.1f copies; seed %.1f + http %.1f) cdn %.0f claim %s bound %.1f (÷ %.2f) offload %.1f%% continuity %.3f%% latency p50/p95/p99 %.0f/%.0f/%.0f ms startup p50 %.0f ms max depth %d wall %.1fs cpu %.1fs peak RSS %.0f MB\n",
					res.Viewers, res.ServerEgressMbps, res.Copies, res.SeedMbps, res.HTTPMbps, res.CDNMbps, claim, res.FluidBoundMbps, res.Efficiency,
					100*res.Offload, 100*res.Continuity, res.LatencyP50Ms, res.LatencyP95Ms, res.LatencyP99Ms, res.StartupP50Ms, res.MaxDepth, res.WallSeconds, res.CPUSeconds, res.PeakRSSMB)
				if res.Adversaries > 0 {
					fmt.Fprintf(stdout, "n=%d adversaries %d: bad chunks stored %d, peers cut off %d, longest an adversary fed a substream (s) %v, share of substream-time fed by adversaries %.2f%%\n",
						res.Viewers, res.Adversaries, res.BadChunksStored, res.Complaints, res.AdversaryFedMaxSeconds, 100*res.AdversaryFedShare)
				}
				if out != "" { // written after every run, so that a long series keeps what it has
					if err := bench.WriteSimResults(out, results); err != nil {
						return err
					}
				}
			}
			return nil
		},
	}
}

// tuneGC trades memory for time, unless GOGC or GOMEMLIMIT say otherwise:
// a run allocates a buffer for every chunk every node reassembles (the
// production reassembler's), most of its garbage. GOGC=400 takes a quarter
// off its CPU time; a soft limit of half the machine's memory (8 GiB when
// unknown) keeps a large run's heap from growing five-fold.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(max(memTotal()/2, 4<<30))
	}
}

// memTotal is the machine's memory in bytes (Linux's /proc/meminfo; 16 GiB
// when unknown).
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 16 << 30
}

func loadScenario(name, file string) (bench.Scenario, error) {
	if file == "" {
		return bench.LoadScenario(name)
	}
	f, err := os.Open(file)
	if err != nil {
		return bench.Scenario{}, err
	}
	defer f.Close()
	sc, err := bench.ReadScenario(f)
	if err != nil {
		return sc, fmt.Errorf("%s: %w", file, err)
	}
	return sc, nil
}

var errViewers = errors.New("want positive counts such as 10,100,1000")

func parseViewers(s string) ([]int, error) {
	var ns []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%w: %q", errViewers, f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// progress draws a bar on a terminal; elsewhere (a log, CI) it writes a
// line at every tenth of the run, with the wall time so far.
type progress struct {
	w     io.Writer
	tty   bool
	last  string
	label string
	tenth int
	start time.Time
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	tty := false
	if ok {
		if st, err := f.Stat(); err == nil {
			tty = st.Mode()&os.ModeCharDevice != 0
		}
	}
	return &progress{w: w, tty: tty}
}

func (p *progress) show(label string, done, total time.Duration) {
	if total <= 0 {
		return
	}
	if !p.tty {
		if label != p.label {
			p.label, p.tenth, p.start = label, 0, time.Now()
		}
		if k := int(10 * done / total); k > p.tenth {
			p.tenth = k
			fmt.Fprintf(p.w, "%s: %d%% (%v of %v simulated, %v wall)\n", label, 10*k, done.Round(time.Second), total, time.Since(p.start).Round(time.Second))
		}
		return
	}
	const width = 30
	k := int(float64(width) * float64(done) / float64(total))
	line := fmt.Sprintf("\r%s [%s%s] %v/%v", label, strings.Repeat("#", k), strings.Repeat(".", width-k), done.Round(time.Second), total)
	if line != p.last {
		fmt.Fprint(p.w, line)
		p.last = line
	}
}

func (p *progress) done() {
	if p.tty && p.last != "" {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", len(p.last))+"\r")
		p.last = ""
	}
}
