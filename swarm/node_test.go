package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/origin/origintest"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker"
)

// startLiveOrigin serves the demo clip live (real time) as stream "demo",
// with the tracker and the origin's seed node, until the test ends.
func startLiveOrigin(t *testing.T) string {
	o, _ := startSeeded(t, origintest.Params{}, 4000)
	return o.URL
}

// startSeeded starts a live origin and its seed node with an egress budget
// of seedKbps, as seedcast serve does.
func startSeeded(t testing.TB, p origintest.Params, seedKbps int) (*origintest.Origin, *Node) {
	t.Helper()
	o := origintest.Start(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.WaitLive(ctx); err != nil {
		t.Fatal(err)
	}
	seed, err := StartNode(ctx, NodeParams{
		Server: o.URL, Stream: o.Stream, Seed: true, Token: o.Secret, BudgetKbps: seedKbps,
		Source: o.Server.Source(o.Live), API: loopbackAPI(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seed.Close)
	return o, seed
}

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

// TestPoisoningUpstream: an upstream that pushes a tampered chunk, relays a
// forged manifest batch, or sends garbage is cut off at once; nothing it
// sent is stored or relayed, and the viewer goes on from elsewhere.
func TestPoisoningUpstream(t *testing.T) {
	otherKey := func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(nil); return k }()
	attacks := []struct {
		name     string
		rejected bool // counted as a verification failure (not just bad framing)
		send     func(t *testing.T, link *Link, target chunker.Entry, batch chunker.Batch)
	}{
		{"tampered chunk", true, func(t *testing.T, link *Link, target chunker.Entry, _ chunker.Batch) {
			for _, f := range wire.Fragments(nil, 0, target.Hash, make([]byte, target.Size)) {
				if link.Send(&f) != nil {
					break
				}
			}
		}},
		{"batch with an altered entry under its real signature", true, func(t *testing.T, link *Link, _ chunker.Entry, b chunker.Batch) {
			b.Entries = slices.Clone(b.Entries)
			b.Entries[0].Hash = chunker.Sum([]byte("not the chunk"))
			sendBatch(t, link, b)
		}},
		{"batch signed by another key", true, func(t *testing.T, link *Link, _ chunker.Entry, b chunker.Batch) {
			b.N += 1 << 40 // a number the viewer does not know
			if err := b.Sign(otherKey); err != nil {
				t.Fatal(err)
			}
			sendBatch(t, link, b)
		}},
		{"garbage frame", false, func(t *testing.T, link *Link, _ chunker.Entry, _ chunker.Batch) {
			_ = link.sendFrame([]byte{0, 0, 0, 3, byte(wire.TypeChunk), 1, 2})
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			url := startLiveOrigin(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			viewer, link := behindAttacker(ctx, t, url, NodeParams{PushGrace: 300 * time.Millisecond})
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
			var batch chunker.Batch
			for target.Size == 0 {
				m, err := viewer.src.Manifest(ctx, -1)
				if err == nil && len(m.Entries) > 0 {
					je := m.Entries[len(m.Entries)-1]
					target, _ = viewer.verify.Entry(je.Hash)
					bs, _ := m.SignedBatches()
					for _, b := range bs {
						if b.N == je.Batch {
							batch = b
						}
					}
				}
				if ctx.Err() != nil {
					t.Fatal("no manifest entry")
				}
			}
			before := viewer.Stats()
			a.send(t, link, target, batch)
			select {
			case <-link.Done():
			case <-ctx.Done():
				t.Fatal("the viewer kept the link to a poisoning upstream")
			}
			waitFor(ctx, t, "the stream after the attack", func() bool { return viewer.Stats().Chunks >= before.Chunks+16 })
			vs := viewer.Stats()
			if a.rejected && vs.Rejected == before.Rejected {
				t.Errorf("the attack was not counted: %+v", vs)
			}
			if data, ok := viewer.store.Get(target.Hash); ok && chunker.Sum(data) != target.Hash {
				t.Error("tampered bytes in the store")
			}
			if _, ok := viewer.verify.Entry(chunker.Sum([]byte("not the chunk"))); ok {
				t.Error("the forged entry was learnt")
			}
		})
	}
}

// behindAttacker starts a viewer (with p's tuning) fed by an attacker: a
// bare linker the test drives, which joins first with a large budget so
// that the tracker makes it the viewer's upstream. It returns the viewer and
// the attacker's end of their link; both end with the test.
func behindAttacker(ctx context.Context, t *testing.T, url string, p NodeParams) (*Node, *Link) {
	t.Helper()
	badTC, err := DialTracker(ctx, TrackerParams{URL: "ws" + url[len("http"):] + "/tracker", Join: tracker.Join{Stream: "demo", Kind: tracker.KindNative, BudgetKbps: 10_000}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { badTC.Close() })
	bad := NewLinker(LinkerParams{API: loopbackAPI(), Signaler: badTC})
	t.Cleanup(bad.Close)
	pumpCtx, stopPump := context.WithCancel(ctx)
	pumped := make(chan struct{})
	go pump(pumpCtx, t, badTC, bad, pumped)
	t.Cleanup(func() { stopPump(); <-pumped })
	p.Server, p.Stream, p.API = url, "demo", loopbackAPI()
	viewer, err := StartNode(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(viewer.Close)
	select {
	case link := <-bad.Accepted():
		return viewer, link
	case <-ctx.Done():
		t.Fatal("the viewer never linked to its (bad) upstream")
		return nil, nil
	}
}

func sendBatch(t *testing.T, link *Link, b chunker.Batch) {
	t.Helper()
	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := link.Send(&wire.Manifest{Batches: []wire.SignedBatch{{Encoded: enc, Signature: b.Signature}}}); err != nil {
		t.Fatal(err)
	}
}

// TestHostileHints: an upstream that announces absurd have windows (far
// beyond the stream, at the top of the seq space) cannot make the node's
// memory grow (a have set spans its lowest to its highest member: one such
// window used to ask for exabytes), and the node plays on. The upstream,
// which pushes nothing, is then dropped as stalled.
func TestHostileHints(t *testing.T) {
	url := startLiveOrigin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	viewer, link := behindAttacker(ctx, t, url, NodeParams{})
	ones := bytes.Repeat([]byte{0xff}, wire.MaxHaveBits/8)
	for _, base := range []uint64{1 << 58, math.MaxUint64 - wire.MaxHaveBits + 1, 0, 1 << 40} {
		if err := link.Send(&wire.Have{Rendition: "v0", Base: base, Bits: wire.MaxHaveBits, Bitmap: ones}); err != nil {
			t.Fatal(err)
		}
	}
	before := viewer.Stats()
	waitFor(ctx, t, "the stream after the hints", func() bool { return viewer.Stats().Chunks >= before.Chunks+16 })
	viewer.mu.Lock()
	defer viewer.mu.Unlock()
	for _, p := range viewer.peers {
		if n := p.have.Len(); n > 2*haveSpan {
			t.Errorf("peer %s: %d seqs recorded from haves", p.id, n)
		}
	}
}
