package swarm

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker"
)

// liveOrigin is a test origin: the demo clip live as stream "demo", the
// tracker, and (unless noSeed) the origin's seed node.
type liveOrigin struct {
	URL    string
	origin *origin.Server
	stream *origin.Stream
	seed   *Node
	// delay, when set, holds every manifest request this long (the origin
	// "far away": the nodes' RTT samples rise).
	delay atomic.Int64
}

// startLiveOrigin serves the demo clip live (real time) as stream "demo",
// with the tracker and the origin's seed node, until the test ends.
func startLiveOrigin(t *testing.T) string {
	return startOrigin(t, originOpts{seedKbps: 4000}).URL
}

type originOpts struct {
	seedKbps    int // the seed's egress budget; 0: no seed
	originSlots int // default 4
	substreams  int // default 4
}

func startOrigin(t *testing.T, opt originOpts) *liveOrigin {
	t.Helper()
	if opt.originSlots == 0 {
		opt.originSlots = 4
	}
	if opt.substreams == 0 {
		opt.substreams = 4
	}
	lo := &liveOrigin{}
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	o := origin.New(origin.Params{Registry: prometheus.NewRegistry()})
	pub, key, _ := ed25519.GenerateKey(nil)
	st, err := o.AddStream("demo", pub, chunker.DefaultChunkDuration)
	if err != nil {
		t.Fatal(err)
	}
	c, err := chunker.New(chunker.Params{Stream: "demo", Key: key, Publish: st.Publish})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.AddRendition("v0", *clip.Video)
	_ = c.AddRendition("a0", *clip.Audio)
	loop, err := media.NewLoop(media.LoopParams{Clip: clip})
	if err != nil {
		t.Fatal(err)
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
	trk, err := tracker.NewServer(tracker.ServerParams{
		Streams: tracker.StreamsFunc(func(name string) (tracker.StreamInfo, bool) {
			s, ok := o.Stream(name)
			if !ok {
				return tracker.StreamInfo{}, false
			}
			return tracker.StreamInfo{PublicKey: hex.EncodeToString(s.PublicKey()), Manifest: "/live/" + name + "/manifest", BitrateKbps: 700}, true
		}),
		Swarm: tracker.SwarmParams{Substreams: opt.substreams}, OriginSlots: opt.originSlots, Seed: 1,
		MaxConnsPerIP: 256, // every test node is 127.0.0.1
		OriginSecret:  testOriginSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /tracker", trk)
	mux.Handle("GET /live/demo/manifest", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(lo.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		o.Handler().ServeHTTP(w, r)
	}))
	mux.Handle("/", o.Handler())
	hs := httptest.NewServer(mux)
	lo.URL, lo.origin, lo.stream = hs.URL, o, st
	t.Cleanup(func() {
		if lo.seed != nil {
			lo.seed.Close()
		}
		cancel()
		wg.Wait()
		trk.Close()
		hs.Close()
	})
	if opt.seedKbps > 0 {
		// The seed needs the stream live: its first manifest names the renditions.
		for len(st.Manifest()) < 400 {
			select {
			case <-st.Changed():
			case <-time.After(5 * time.Second):
				t.Fatal("the stream never went live")
			}
		}
		seed, err := StartNode(context.Background(), NodeParams{
			Server: hs.URL, Stream: "demo", Seed: true, Token: testOriginSecret, BudgetKbps: opt.seedKbps,
			Source: o.Source(st), API: loopbackAPI(),
		})
		if err != nil {
			t.Fatal(err)
		}
		lo.seed = seed
	}
	return lo
}

const testOriginSecret = "test-origin-secret-0123456789"

// TestTwoNodeSwarm: a relay node fed by the origin pushes the stream to a
// second node, which gets most of its bytes from the relay, all verified.
func TestTwoNodeSwarm(t *testing.T) {
	url := startLiveOrigin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	relay, err := StartNode(ctx, NodeParams{Server: url, Stream: "demo", BudgetKbps: 10_000, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	viewer, err := StartNode(ctx, NodeParams{Server: url, Stream: "demo", BudgetKbps: 0, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for viewer.Stats().Chunks < 24 { // 3 s of video and audio
		select {
		case <-ctx.Done():
			t.Fatalf("viewer holds %d chunks; relay %+v, viewer %+v", viewer.Stats().Chunks, relay.Stats(), viewer.Stats())
		case <-tick.C:
		}
	}
	rs, vs := relay.Stats(), viewer.Stats()
	t.Logf("relay %+v", rs)
	t.Logf("viewer %+v", vs)
	if rs.Rejected+vs.Rejected != 0 {
		t.Errorf("%d chunks rejected", rs.Rejected+vs.Rejected)
	}
	if offload := float64(vs.BytesFromPeers) / float64(vs.BytesFromPeers+vs.BytesFromOrigin); offload < 0.5 {
		t.Errorf("viewer offload %.2f, want most bytes from the relay", offload)
	}
	if rs.BytesUploaded == 0 || vs.BytesUploaded != 0 {
		t.Errorf("uploads: relay %d, viewer (relay off) %d", rs.BytesUploaded, vs.BytesUploaded)
	}
}

// TestPoisoningUpstream: an upstream that pushes a tampered chunk is cut off
// at once; nothing it sent is stored, and the viewer goes on from the origin.
func TestPoisoningUpstream(t *testing.T) {
	url := startLiveOrigin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The attacker joins first with a large budget, so the viewer is fed by it.
	badTC, err := DialTracker(ctx, TrackerParams{URL: "ws" + url[len("http"):] + "/tracker", Join: tracker.Join{Stream: "demo", Kind: tracker.KindNative, BudgetKbps: 10_000}})
	if err != nil {
		t.Fatal(err)
	}
	defer badTC.Close()
	bad := NewLinker(LinkerParams{API: loopbackAPI(), Signaler: badTC})
	defer bad.Close()
	pumpCtx, stopPump := context.WithCancel(ctx)
	pumped := make(chan struct{})
	go pump(pumpCtx, t, badTC, bad, pumped)
	defer func() { stopPump(); <-pumped }()

	viewer, err := StartNode(ctx, NodeParams{Server: url, Stream: "demo", API: loopbackAPI(), PushGrace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()

	var link *Link
	select {
	case link = <-bad.Accepted():
	case <-ctx.Done():
		t.Fatal("the viewer never linked to its (bad) upstream")
	}
	// Wait for a subscription, then push a real chunk id with tampered bytes.
	for sub := false; !sub; {
		select {
		case frame := <-link.Recv():
			m, _ := wire.Decode(frame)
			_, sub = m.(*wire.Subscribe)
		case <-ctx.Done():
			t.Fatal("no subscription")
		}
	}
	var target chunker.Entry
	for target.Size == 0 {
		m, err := viewer.src.Manifest(ctx, -1)
		if err == nil && len(m.Entries) > 0 {
			je := m.Entries[len(m.Entries)-1]
			target, _ = viewer.verify.Entry(je.Hash)
		}
		if ctx.Err() != nil {
			t.Fatal("no manifest entry")
		}
	}
	poison := make([]byte, target.Size)
	for _, f := range wire.Fragments(nil, 0, target.Hash, poison) {
		if err := link.Send(&f); err != nil {
			break
		}
	}
	select {
	case <-link.Done():
	case <-ctx.Done():
		t.Fatal("the viewer kept the link to a poisoning upstream")
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for viewer.Stats().Chunks < 16 {
		select {
		case <-ctx.Done():
			t.Fatalf("viewer stalled after the attack: %+v", viewer.Stats())
		case <-tick.C:
		}
	}
	vs := viewer.Stats()
	if vs.Rejected == 0 {
		t.Errorf("the tampered chunk was not counted: %+v", vs)
	}
	if data, ok := viewer.store.Get(target.Hash); ok && chunker.Sum(data) != target.Hash {
		t.Error("tampered bytes in the store")
	}
}
