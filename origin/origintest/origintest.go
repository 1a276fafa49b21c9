package origintest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/ingest"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/server"
)

// Params configures a test origin. Zero fields take the defaults shown.
type Params struct {
	Stream      string // "demo"
	Substreams  int    // 4
	OriginSlots int    // substream links the seed serves (4)
	// ChunkDuration of the chunker (manifest.DefaultChunkDuration).
	ChunkDuration time.Duration
	// MaxConnsPerIP of the tracker (every test node is 127.0.0.1): 1024.
	MaxConnsPerIP int
	// Delay is the tracker's playback delay (protocol.DefaultDelay).
	Delay time.Duration
}

// loopback is where every test node connects from.
var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Origin is a live test origin.
type Origin struct {
	URL     string // http://127.0.0.1:port
	Stream  string
	Secret  string // the tracker's origin secret, for the seed's join
	Server  *origin.Server
	Live    *origin.Stream
	Tracker *server.Server
	delay   atomic.Int64
}

// Start starts the origin; it stops when the test ends.
func Start(tb testing.TB, p Params) *Origin {
	tb.Helper()
	if p.Stream == "" {
		p.Stream = "demo"
	}
	if p.Substreams == 0 {
		p.Substreams = 4
	}
	if p.OriginSlots == 0 {
		p.OriginSlots = 4
	}
	if p.ChunkDuration == 0 {
		p.ChunkDuration = manifest.DefaultChunkDuration
	}
	if p.MaxConnsPerIP == 0 {
		p.MaxConnsPerIP = 1024
	}
	clip, err := media.DemoClip()
	if err != nil {
		tb.Fatal(err)
	}
	o := &Origin{Stream: p.Stream, Secret: rand.Text(), Server: origin.New(origin.Params{Registry: prometheus.NewRegistry()})}
	pub, key, _ := ed25519.GenerateKey(nil)
	st, err := o.Server.AddStream(p.Stream, pub, p.ChunkDuration)
	if err != nil {
		tb.Fatal(err)
	}
	o.Live = st
	// The ingest pipeline chunks and signs, as in seedcast serve.
	c, err := ingest.NewPipeline(ingest.PipelineParams{Stream: p.Stream, Key: key, Publish: st.Publish, ChunkDuration: p.ChunkDuration})
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.AddRendition("v0", *clip.Video); err != nil {
		tb.Fatal(err)
	}
	if err := c.AddRendition("a0", *clip.Audio); err != nil {
		tb.Fatal(err)
	}
	loop, err := media.NewLoop(media.LoopParams{Clip: clip})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = loop.Run(ctx, func(k media.Kind, au media.AccessUnit) error {
			name := "a0"
			if k == media.KindVideo {
				name = "v0"
			}
			_ = c.Push(name, au)
			return nil
		})
	}()
	o.Tracker, err = server.New(server.Params{
		Streams: server.StreamsFunc(func(name string) (server.StreamInfo, bool) {
			s, ok := o.Server.Stream(name)
			if !ok {
				return server.StreamInfo{}, false
			}
			return server.StreamInfo{PublicKey: hex.EncodeToString(s.PublicKey()), Manifest: "/live/" + name + "/manifest", BitrateKbps: s.AverageKbps()}, true
		}),
		// Every test node is on loopback, one address: the tracker believes
		// them (no probation, no shared allowance, no prefix rule).
		Swarm: tracker.SwarmParams{Substreams: p.Substreams, Delay: p.Delay, Trusted: loopback}, OriginSlots: p.OriginSlots, Seed: 1,
		MaxConnsPerIP: p.MaxConnsPerIP, OriginSecret: o.Secret,
	})
	if err != nil {
		cancel()
		wg.Wait()
		tb.Fatal(err)
	}
	// The origin's "distance": SetRTT holds the routes a node times.
	slow := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := time.Duration(o.delay.Load()); d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("GET /tracker", o.Tracker)
	mux.Handle("GET /healthz", slow(o.Server.Handler()))
	mux.Handle("GET /live/"+p.Stream+"/manifest", slow(o.Server.Handler()))
	mux.Handle("/", o.Server.Handler())
	hs := httptest.NewServer(mux)
	o.URL = hs.URL
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		o.Tracker.Close()
		hs.Close()
	})
	return o
}

// SetRTT adds d to every /healthz and manifest request from now on, as if
// the origin moved away (or the viewer's uplink filled up).
func (o *Origin) SetRTT(d time.Duration) { o.delay.Store(int64(d)) }

// WaitLive waits until the stream's manifest lists a media chunk.
func (o *Origin) WaitLive(ctx context.Context) error {
	for {
		ch := o.Live.Changed()
		if m, err := o.Server.Source(o.Live).Manifest(ctx, -1); err == nil && len(m.Entries) > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
