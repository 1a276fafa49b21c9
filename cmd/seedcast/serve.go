package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/ingest"
	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/origin"
)

type serveConfig struct {
	addr          string
	demo          bool
	chunkDuration time.Duration
	segment       time.Duration
	window        time.Duration
	storeMB       int64
	log           logFlags
}

func serveCommand(stdout, stderr io.Writer) *ffcli.Command {
	var cfg serveConfig
	fs := flag.NewFlagSet("seedcast serve", flag.ContinueOnError)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "HTTP listen address (port 0 picks a free port)")
	fs.BoolVar(&cfg.demo, "demo", false, "publish the built-in demo clip as the live stream \"demo\"")
	fs.DurationVar(&cfg.chunkDuration, "chunk-duration", chunker.DefaultChunkDuration, "target chunk duration, 100ms–500ms")
	fs.DurationVar(&cfg.segment, "hls-segment", time.Second, "target HLS segment duration (segments start on keyframes)")
	fs.DurationVar(&cfg.window, "window", time.Minute, "how much media the origin keeps and lists")
	fs.Int64Var(&cfg.storeMB, "store-mb", 256, "chunk store bound in MiB")
	cfg.log.register(fs)
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "seedcast serve [--addr 127.0.0.1:8080] [--demo] [flags]",
		ShortHelp:  "run the origin: chunk store, manifests, HLS, metrics",
		LongHelp: "Runs the Seedcast origin on one port:\n" +
			"  GET /live/{stream}/index.m3u8   LL-HLS over CMAF chunks\n" +
			"  GET /live/{stream}/manifest     signed manifest window\n" +
			"  GET /c/{hash}                   one chunk or init segment (immutable)\n" +
			"  GET /metrics, GET /healthz",
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, _ []string) error {
			log, err := cfg.log.logger(stderr)
			if err != nil {
				return err
			}
			return serve(ctx, cfg, log)
		},
	}
}

func serve(ctx context.Context, cfg serveConfig, log *slog.Logger) error {
	if cfg.chunkDuration < chunker.MinChunkDuration || cfg.chunkDuration > chunker.MaxChunkDuration {
		return fmt.Errorf("--chunk-duration %v: want %v–%v", cfg.chunkDuration, chunker.MinChunkDuration, chunker.MaxChunkDuration)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv := origin.New(origin.Params{
		Logger: log, Registry: reg, StoreBytes: cfg.storeMB << 20, Window: cfg.window, SegmentTarget: cfg.segment,
	})
	ingestMetrics, err := ingest.NewMetrics(reg)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	if cfg.demo {
		run, err := startDemo(srv, cfg, log, ingestMetrics)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				log.Error("demo stream stopped", "err", err)
			}
		}()
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	hs := origin.NewHTTPServer(srv.Handler(), log)
	log.Info("listening", "addr", ln.Addr().String(), "demo", cfg.demo)
	if cfg.demo {
		log.Info("demo stream", "hls", fmt.Sprintf("http://%s/live/demo/index.m3u8", ln.Addr()))
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startDemo registers the "demo" stream and returns the loop that feeds it.
func startDemo(srv *origin.Server, cfg serveConfig, log *slog.Logger, m *ingest.Metrics) (func(context.Context) error, error) {
	clip, err := media.DemoClip()
	if err != nil {
		return nil, err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	st, err := srv.AddStream("demo", pub, cfg.chunkDuration)
	if err != nil {
		return nil, err
	}
	pipe, err := ingest.NewPipeline(ingest.PipelineParams{
		Stream: "demo", Key: key, ChunkDuration: cfg.chunkDuration, Publish: st.Publish, Logger: log, Metrics: m,
	})
	if err != nil {
		return nil, err
	}
	if err := pipe.AddRendition("v0", *clip.Video); err != nil {
		return nil, err
	}
	if err := pipe.AddRendition("a0", *clip.Audio); err != nil {
		return nil, err
	}
	loop, err := media.NewLoop(media.LoopParams{Clip: clip})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return pipe.RunLoop(ctx, loop, "v0", "a0") }, nil
}
