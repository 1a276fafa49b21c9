package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm"
)

// statsLine is one line of --stats-json: cumulative counters at time t. The
// browser player reports the same object.
type statsLine struct {
	T               string  `json:"t"`
	Peers           int     `json:"peers"`
	BytesFromPeers  int64   `json:"bytesFromPeers"`
	BytesFromOrigin int64   `json:"bytesFromOrigin"`
	BytesFromSeed   int64   `json:"bytesFromSeed"` // the part of bytesFromOrigin the origin's seed sent over WebRTC
	BytesUploaded   int64   `json:"bytesUploaded"`
	ChunksOnTime    int     `json:"chunksOnTime"`
	ChunksLate      int     `json:"chunksLate"`
	LatencyP50Ms    float64 `json:"latencyP50Ms"`
	LatencyP95Ms    float64 `json:"latencyP95Ms"`
	MaxDepth        int     `json:"maxDepth"`
	RelayBudgetKbps int64   `json:"relayBudgetKbps"` // in force: the budget less what the RTT guard cut
	Throttled       bool    `json:"throttled"`
	Rejected        int     `json:"rejected"`
}

func viewerCommand(stdout, stderr io.Writer) *ffcli.Command {
	var (
		server, stream, upload, reserve, relay, quality, token, statsJSON string
		interval, duration                                                time.Duration
		wf                                                                webrtcFlags
		lf                                                                logFlags
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
	wf.register(fs)
	lf.register(fs)
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
			var out *os.File
			if statsJSON != "" {
				if out, err = os.OpenFile(statsJSON, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
					return err
				}
				defer out.Close()
			}
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			node, err := swarm.StartNode(ctx, swarm.NodeParams{
				Server: server, Stream: stream, Token: token, Quality: quality, BudgetKbps: int(budget.RelayKbps()), Logger: log,
				API: webrtc.NewAPI(webrtc.WithSettingEngine(ice.SettingEngine())),
			})
			if err != nil {
				return err
			}
			defer node.Close()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			var prev swarm.Stats
			for {
				select {
				case <-ctx.Done():
					if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.Canceled) {
						return nil
					}
					return ctx.Err()
				case now := <-tick.C:
					s := node.Stats()
					line := statsLine{
						T: now.UTC().Format(time.RFC3339Nano), Peers: s.Peers,
						BytesFromPeers: s.BytesFromPeers, BytesFromOrigin: s.BytesFromOrigin, BytesFromSeed: s.BytesFromSeed, BytesUploaded: s.BytesUploaded,
						ChunksOnTime: s.ChunksOnTime, ChunksLate: s.ChunksLate,
						LatencyP50Ms: float64(s.LatencyP50.Microseconds()) / 1000, LatencyP95Ms: float64(s.LatencyP95.Microseconds()) / 1000,
						MaxDepth: s.Depth, RelayBudgetKbps: s.RelayKbps, Throttled: s.Throttled, Rejected: s.Rejected,
					}
					offload := 0.0
					if got := s.BytesFromPeers + s.BytesFromOrigin; got > 0 {
						offload = 100 * float64(s.BytesFromPeers) / float64(got)
					}
					continuity := 100.0
					if all := s.ChunksOnTime + s.ChunksLate; all > 0 {
						continuity = 100 * float64(s.ChunksOnTime) / float64(all)
					}
					secs := interval.Seconds()
					down := float64(s.BytesFromPeers+s.BytesFromOrigin-prev.BytesFromPeers-prev.BytesFromOrigin) * 8 / 1000 / secs
					up := float64(s.BytesUploaded-prev.BytesUploaded) * 8 / 1000 / secs
					prev = s
					throttled := ""
					if s.Throttled {
						throttled = fmt.Sprintf(" THROTTLED (rtt %v)", s.RTT.Round(time.Millisecond))
					}
					fmt.Fprintf(stdout, "%s peers=%d depth=%d offload=%.0f%% continuity=%.1f%% latency p50=%.0fms p95=%.0fms down=%.0fkbps up=%.0fkbps relay=%dkbps%s\n",
						now.Format("15:04:05"), s.Peers, s.Depth, offload, continuity, line.LatencyP50Ms, line.LatencyP95Ms, down, up, s.RelayKbps, throttled)
					if out != nil {
						b, _ := json.Marshal(line)
						if _, err := out.Write(append(b, '\n')); err != nil {
							return err
						}
					}
				}
			}
		},
	}
}
