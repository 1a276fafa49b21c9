package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/seedcast/seedcast/bench"
)

func benchCallCommand(stdout, stderr io.Writer) *ffcli.Command {
	var (
		p          bench.CallLoadParams
		video, aud bool
		out        string
		log        logFlags
	)
	fs := flag.NewFlagSet("seedcast bench call", flag.ContinueOnError)
	fs.IntVar(&p.Rooms, "rooms", 1, "meetings")
	fs.IntVar(&p.Publishers, "publishers", 4, "participants per meeting that publish (and subscribe to each other)")
	fs.IntVar(&p.Subscribers, "subscribers", 0, "participants per meeting that only subscribe")
	fs.BoolVar(&video, "video", true, "publishers send camera video (three simulcast layers unless --simulcast=false)")
	fs.BoolVar(&aud, "audio", true, "publishers send a microphone")
	fs.BoolVar(&p.Simulcast, "simulcast", true, "send video in three layers (q, h, f)")
	fs.IntVar(&p.VideoKbps, "video-kbps", 600, "the full video layer's rate")
	fs.DurationVar(&p.Window, "duration", 20*time.Second, "measuring window, after everyone joined")
	fs.StringVar(&p.Server, "server", "", "load a running server (http://host:port) instead of starting one (its CPU is then not measured)")
	fs.StringVar(&out, "out", "", "also write the result as JSON to this file")
	log.register(fs)
	return &ffcli.Command{
		Name:       "call",
		ShortUsage: "seedcast bench call [--rooms 1] [--publishers 4] [--subscribers 0] [--video] [--audio] [--duration 20s]",
		ShortHelp:  "load meetings with Go participants and measure the SFU: CPU per forwarded track, packets/s, loss, join latency",
		LongHelp: "Starts `seedcast serve` on loopback (or uses --server) and joins R meetings of P publishers\n" +
			"and S subscribers: Go clients that speak the call signalling and send synthetic Opus and\n" +
			"H.264 (simulcast) RTP, every participant subscribed to every other's tracks. Reports join\n" +
			"latency (dial to welcome) and time to media (p50/p95/p99), then over a window the server\n" +
			"process's CPU per forwarded track, packets/s in and out, receivers' loss, and whether the\n" +
			"machine was CPU-saturated (the clients run on it too).",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			lg, err := log.logger(stderr)
			if err != nil {
				return err
			}
			p.Video, p.Audio, p.Logger = video, aud, lg
			if p.Binary, err = os.Executable(); err != nil {
				return err
			}
			res, err := bench.RunCallLoad(ctx, p)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "rooms %d × (%d publishers + %d subscribers): %d participants, %d forwarded tracks\n",
				res.Rooms, res.Publishers, res.Subscribers, res.Participants, res.ForwardedTracks)
			fmt.Fprintf(stdout, "join (dial → welcome) ms   p50 %.0f  p95 %.0f  p99 %.0f  (n=%d)\n", res.Join.P50, res.Join.P95, res.Join.P99, res.Join.N)
			if res.Media.N > 0 {
				fmt.Fprintf(stdout, "first media (dial → packet) p50 %.0f  p95 %.0f  p99 %.0f  (n=%d)\n", res.Media.P50, res.Media.P95, res.Media.P99, res.Media.N)
			}
			if res.ServerCPU >= 0 {
				fmt.Fprintf(stdout, "server CPU %.1f%% of a core; %.3f%% per forwarded track\n", res.ServerCPU, res.PerTrackCPU)
			}
			fmt.Fprintf(stdout, "RTP packets/s: %.0f in, %.0f forwarded; receivers' loss %.2f%%\n", res.PacketsIn, res.PacketsOut, res.LossPct)
			sat := ""
			if res.Saturated {
				sat = " (CPU-saturated: figures are inflated)"
			}
			fmt.Fprintf(stdout, "machine busy %.0f%% over %.0f s%s\n", res.MachineCPU, res.WindowS, sat)
			if out != "" {
				b, err := json.MarshalIndent(res, "", "  ")
				if err != nil {
					return err
				}
				return os.WriteFile(out, append(b, '\n'), 0o644)
			}
			return nil
		},
	}
}

func benchWHEPCommand(stdout, stderr io.Writer) *ffcli.Command {
	var (
		viewers listFlag
		serve   listFlag
		window  time.Duration
		log     logFlags
	)
	fs := flag.NewFlagSet("seedcast bench whep", flag.ContinueOnError)
	fs.Var(&viewers, "viewers", "audiences to measure (repeatable; default 10, 50, 100)")
	fs.DurationVar(&window, "duration", 15*time.Second, "measuring window per audience")
	fs.Var(&serve, "serve-arg", "a flag for the server (repeatable), e.g. --serve-arg=--debug-addr=127.0.0.1:6060 to profile it")
	log.register(fs)
	return &ffcli.Command{
		Name:       "whep",
		ShortUsage: "seedcast bench whep [--viewers 10 --viewers 50] [--duration 15s]",
		ShortHelp:  "measure the server's marginal CPU per WHEP viewer of the demo stream (viewers in this process, server in its own)",
		FlagSet:    fs,
		Options:    envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			lg, err := log.logger(stderr)
			if err != nil {
				return err
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			ns := []int{10, 50, 100}
			if len(viewers) > 0 {
				ns = ns[:0]
				for _, v := range viewers {
					var n int
					if _, err := fmt.Sscan(v, &n); err != nil || n < 1 {
						return fmt.Errorf("--viewers %q: want a positive number", v)
					}
					ns = append(ns, n)
				}
			}
			pts, err := bench.RunWHEPLoad(ctx, bench.WHEPLoadParams{Binary: bin, Viewers: ns, Window: window, ServeArgs: serve, Logger: lg})
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, "| viewers | server CPU (% of a core) | marginal per viewer | Mbit/s per viewer | machine busy |")
			fmt.Fprintln(stdout, "|---|---|---|---|---|")
			for _, pt := range pts {
				sat := ""
				if pt.Saturated {
					sat = " (saturated)"
				}
				fmt.Fprintf(stdout, "| %d | %.1f | %.3f%% | %.2f | %.0f%%%s |\n", pt.Viewers, pt.ServerCPU, pt.Marginal, pt.Mbps, pt.MachineCPU, sat)
			}
			return nil
		},
	}
}
