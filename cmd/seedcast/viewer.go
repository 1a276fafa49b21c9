package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/bench"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm"
)

func viewerCommand(stdout, stderr io.Writer) *ffcli.Command {
	var (
		server, stream, upload, reserve, relay, quality, token, statsJSON, planFile string
		interval, duration, joinEvery, guardSlack, storeWindow                      time.Duration
		nodes                                                                       int
		wf                                                                          webrtcFlags
		lf                                                                          logFlags
		df                                                                          debugFlags
	)
	fs := flag.NewFlagSet("seedcast viewer", flag.ContinueOnError)
	fs.StringVar(&server, "server", "http://127.0.0.1:8080", "the Seedcast server")
	fs.StringVar(&stream, "stream", "demo", "the stream to watch")
	fs.StringVar(&upload, "upload", "10Mbps", "total upload of this machine")
	fs.StringVar(&reserve, "reserve", "5Mbps", "upload kept free for other apps")
	fs.StringVar(&relay, "relay", "medium", "relay level: off, low (10%), medium (25%), high (50%), or an exact rate like 800kbps")
	fs.StringVar(&quality, "quality", "auto", "renditions to fetch and relay: auto (best video and audio), all, audio-only, or a height like 720p")
	fs.StringVar(&token, "token", "", "viewer token of a private stream (seedcast token)")
	fs.DurationVar(&interval, "stats-interval", time.Second, "status line and stats record interval")
	fs.StringVar(&statsJSON, "stats-json", "", "append one JSON stats object per interval to this file")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (0: until interrupted)")
	fs.IntVar(&nodes, "nodes", 1, "run this many nodes in this process, each its own peer with its own stats (--stats-json then needs {node} in its name)")
	fs.DurationVar(&joinEvery, "join-every", 200*time.Millisecond, "with --nodes: the time between two nodes' joins")
	fs.DurationVar(&guardSlack, "rtt-guard-slack", 0, "the RTT guard's slack: relay is cut when the round trip to the server exceeds twice its baseline plus this (0: the default, 50ms; a harness on loopback, whose baseline is near zero, gives what the slack would be at a real round trip)")
	fs.DurationVar(&storeWindow, "store-window", time.Minute, "keep the verified chunks peers may ask for this long at most (and 64 MiB at most)")
	fs.StringVar(&planFile, "plan", "", "a harness's plan (seedcast bench): nodes with their budgets, join and leave times and stats files")
	wf.register(fs)
	lf.register(fs)
	df.register(fs)
	return &ffcli.Command{
		Name:       "viewer",
		ShortUsage: "seedcast viewer --server URL --stream NAME [--upload 10Mbps --reserve 5Mbps --relay medium --quality auto] [flags]",
		ShortHelp:  "a headless viewer and relay node: joins the swarm, verifies and relays chunks, prints stats",
		FlagSet:    fs,
		Options:    envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			log, err := lf.logger(stderr)
			if err != nil {
				return err
			}
			total, err := scheduler.ParseKbps(upload)
			if err != nil {
				return fmt.Errorf("--upload: %w", err)
			}
			kept, err := scheduler.ParseKbps(reserve)
			if err != nil {
				return fmt.Errorf("--reserve: %w", err)
			}
			level, err := scheduler.ParseRelay(relay)
			if err != nil {
				return fmt.Errorf("--relay: %w", err)
			}
			budget := scheduler.Budget{TotalKbps: total, ReservedKbps: kept, Relay: level}
			ice, _, err := wf.config()
			if err != nil {
				return err
			}
			stopDebug, err := df.start(log)
			if err != nil {
				return err
			}
			defer stopDebug()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			vp := viewerParams{
				server: server, stream: stream, token: token, quality: quality, interval: interval, log: log, guard: scheduler.RTTGuardParams{Slack: guardSlack}, storeWindow: storeWindow,
				api: webrtc.NewAPI(webrtc.WithSettingEngine(ice.SettingEngine())), out: &syncWriter{w: stdout},
			}
			if planFile == "" && nodes == 1 {
				return runViewerNode(ctx, vp, bench.PlanNode{BudgetKbps: int(budget.RelayKbps()), Stats: statsJSON}, time.Now())
			}
			plan, err := viewerPlan(planFile, nodes, joinEvery, int(budget.RelayKbps()), statsJSON)
			if err != nil {
				return err
			}
			vp.many = true
			var wg sync.WaitGroup
			for _, n := range plan.Nodes {
				wg.Go(func() {
					if err := runViewerNode(ctx, vp, n, plan.Start); err != nil {
						log.Warn("node stopped", "node", n.ID, "err", err)
					}
				})
			}
			wg.Wait()
			return nil
		},
	}
}

// viewerParams is what every node of a viewer process shares.
type viewerParams struct {
	server, stream, token, quality string
	interval, storeWindow          time.Duration
	api                            *webrtc.API
	guard                          scheduler.RTTGuardParams
	log                            *slog.Logger
	out                            io.Writer
	many                           bool // several nodes: status lines say which
}

// syncWriter serialises the status lines of a process's nodes.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

var errStatsName = errors.New("--stats-json: with --nodes above 1, the file name needs {node}, which each node replaces with its number")

// viewerPlan is the nodes a process runs: a harness's plan file, or
// --nodes of the same budget joining --join-every apart from now.
func viewerPlan(file string, nodes int, every time.Duration, budgetKbps int, stats string) (bench.ViewerPlan, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return bench.ViewerPlan{}, err
		}
		defer f.Close()
		return bench.ReadViewerPlan(f)
	}
	if nodes < 1 || nodes > 1000 {
		return bench.ViewerPlan{}, fmt.Errorf("--nodes %d: want 1 to 1000", nodes)
	}
	if stats != "" && !strings.Contains(stats, "{node}") {
		return bench.ViewerPlan{}, errStatsName
	}
	p := bench.ViewerPlan{Start: time.Now()}
	for i := range nodes {
		path := ""
		if stats != "" {
			path = strings.ReplaceAll(stats, "{node}", strconv.Itoa(i))
		}
		p.Nodes = append(p.Nodes, bench.PlanNode{ID: i, BudgetKbps: budgetKbps, Join: bench.Duration(time.Duration(i) * every), Stats: path})
	}
	return p, nil
}

// runViewerNode runs one node from start+n.Join to start+n.Leave (or the
// end of ctx): a status line on vp.out and a stats line in n.Stats every
// interval.
func runViewerNode(ctx context.Context, vp viewerParams, n bench.PlanNode, start time.Time) error {
	if n.Leave > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, start.Add(time.Duration(n.Leave)))
		defer cancel()
	}
	if err := sleepCtx(ctx, time.Until(start.Add(time.Duration(n.Join)))); err != nil {
		return nil // the run ended before this node's turn
	}
	var out *os.File
	if n.Stats != "" {
		var err error
		if out, err = os.OpenFile(n.Stats, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return err
		}
		defer out.Close()
	}
	log := vp.log
	prefix := ""
	if vp.many {
		log = log.With("node", n.ID)
		prefix = fmt.Sprintf("node %d ", n.ID)
	}
	began := time.Now()
	var firstReady atomic.Int64 // ns after began; 0: none yet
	// A viewer outlives its origin: a node that loses the tracker is
	// replaced by a new one once the stream is live again (swarm.Viewer).
	node, err := swarm.StartViewer(ctx, swarm.ViewerParams{Node: swarm.NodeParams{
		Server: vp.server, Stream: vp.stream, Token: vp.token, Quality: vp.quality, BudgetKbps: n.BudgetKbps, Logger: log, API: vp.api, Guard: vp.guard, StoreWindow: vp.storeWindow,
		OnReady: func(e manifest.Entry, _ time.Time, _ []byte) {
			if e.Kind == manifest.KindChunk && firstReady.Load() == 0 {
				firstReady.CompareAndSwap(0, max(int64(time.Since(began)), 1))
			}
		},
	}})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer node.Close()
	rec := bench.NodeRecorder{BudgetKbps: n.BudgetKbps}
	// Lines fall on whole multiples of the interval on the wall clock, so
	// that the lines of a harness's nodes are of the same instants.
	if err := sleepCtx(ctx, time.Until(time.Now().Truncate(vp.interval).Add(vp.interval))); err != nil {
		return nil
	}
	tick := time.NewTicker(vp.interval)
	defer tick.Stop()
	var prev swarm.Stats
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			s := node.Stats()
			line := rec.Line(now, s, node.LatencySamples(), time.Duration(firstReady.Load()))
			offload := 0.0
			if got := s.BytesFromPeers + s.BytesFromOrigin; got > 0 {
				offload = 100 * float64(s.BytesFromPeers) / float64(got)
			}
			continuity := 100.0
			if all := s.ChunksOnTime + s.ChunksLate; all > 0 {
				continuity = 100 * float64(s.ChunksOnTime) / float64(all)
			}
			secs := vp.interval.Seconds()
			down := float64(s.BytesFromPeers+s.BytesFromOrigin-prev.BytesFromPeers-prev.BytesFromOrigin) * 8 / 1000 / secs
			up := float64(s.BytesUploaded-prev.BytesUploaded) * 8 / 1000 / secs
			prev = s
			throttled := ""
			if s.Throttled {
				throttled = fmt.Sprintf(" THROTTLED (rtt %v)", s.RTT.Round(time.Millisecond))
			}
			fmt.Fprintf(vp.out, "%s%s peers=%d depth=%d offload=%.0f%% continuity=%.1f%% latency p50=%.0fms p95=%.0fms down=%.0fkbps up=%.0fkbps relay=%dkbps%s\n",
				prefix, now.Format("15:04:05"), s.Peers, s.Depth, offload, continuity, line.LatencyP50Ms, line.LatencyP95Ms, down, up, s.RelayKbps, throttled)
			if out != nil {
				b, _ := json.Marshal(line)
				if _, err := out.Write(append(b, '\n')); err != nil {
					return err
				}
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
