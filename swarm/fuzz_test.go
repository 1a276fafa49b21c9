package swarm

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/swarm/wire"
)

// noSource is an origin that answers nothing (the fuzzed node must not
// need one).
type noSource struct{}

func (noSource) Manifest(context.Context, int64) (*chunker.Manifest, error) { return nil, ErrSource }
func (noSource) Chunk(context.Context, chunker.ID) ([]byte, error)          { return nil, ErrSource }

// fuzzKey signs the genuine batch the seeds carry.
var fuzzKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// fuzzBatch is a genuine signed batch of two chunks, and their bytes.
func fuzzBatch() (chunker.Batch, [][]byte) {
	data := [][]byte{[]byte("a video chunk's bytes"), []byte("an audio chunk")}
	b := chunker.Batch{Stream: "demo", N: 100}
	for i, r := range []string{"v0", "a0"} {
		b.Entries = append(b.Entries, chunker.Entry{
			Kind: chunker.KindChunk, Rendition: r, Seq: 400, MediaTime: 100 * time.Second,
			Duration: 250 * time.Millisecond, IngestTime: time.Unix(1_800_000_000, 0),
			Size: uint32(len(data[i])), Independent: true, Hash: chunker.Sum(data[i]),
		})
	}
	if err := b.Sign(fuzzKey); err != nil {
		panic(err)
	}
	return b, data
}

// FuzzNodeHandle feeds arbitrary bytes, as the data-channel messages of one
// peer, through a node's reader: splitting, decoding and handling every
// message (haves, subscriptions, requests, chunk fragments, relayed batches,
// chokes, rejects, stats). Whatever arrives, the node must not panic, must
// keep its bookkeeping bounded, and must never store a chunk that does not
// match a signed entry.
func FuzzNodeHandle(f *testing.F) {
	b, data := fuzzBatch()
	enc, err := b.Encode()
	if err != nil {
		f.Fatal(err)
	}
	frames := func(ms ...wire.Message) []byte {
		var out []byte
		for _, m := range ms {
			out, _ = wire.AppendFrame(out, m)
		}
		return out
	}
	manifest := &wire.Manifest{Batches: []wire.SignedBatch{{Encoded: enc, Signature: b.Signature}}}
	f.Add(frames(&wire.Hello{Version: 1, Renditions: []string{"v0"}, BudgetKbps: 500}))
	f.Add(frames(manifest, &wire.Chunk{ID: b.Entries[0].Hash, Size: uint32(len(data[0])), Data: data[0]}))
	f.Add(frames(manifest, &wire.Chunk{ID: b.Entries[1].Hash, Size: uint32(len(data[1])), Data: []byte("forged bytes!!")}))
	f.Add(frames(&wire.Have{Rendition: "v0", Base: 1 << 58, Bits: 16, Bitmap: []byte{0xff, 0xff}}))
	f.Add(frames(&wire.Subscribe{Rendition: "v0", K: 4, Index: 0}, &wire.Request{ReqID: 7, ID: b.Entries[0].Hash}))
	f.Add(frames(&wire.Choke{Reason: wire.ChokeBudget}, &wire.Unchoke{}, &wire.Reject{ReqID: 3, Reason: wire.RejectBusy}, &wire.Stats{BufferMs: 900}))
	f.Add([]byte{0, 0, 0, 9, 0x07, 1, 2, 3})
	pc, err := webrtc.NewAPI().NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = pc.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		p := NodeParams{Stream: "demo", BudgetKbps: 2000, Source: noSource{}, Logger: slog.New(slog.DiscardHandler)}
		p.defaults()
		verify, err := NewVerifier(VerifierParams{Stream: "demo", PublicKey: fuzzKey.Public().(ed25519.PublicKey)})
		if err != nil {
			t.Fatal(err)
		}
		n := newNode(p, verify, []string{"v0", "a0"}, 4, time.Now())
		n.anchored, n.startSeq, n.t0 = true, 390, time.Now().Add(time.Hour)
		// A link with no channel: what the node sends back goes nowhere.
		lk := &Link{Peer: "fuzzpeer", pc: pc, recv: make(chan []byte, 1), done: make(chan struct{})}
		peer := n.newPeer(lk, true)
		peer.subsTo[0] = true
		n.peers[lk], n.ups[lk.Peer] = peer, peer
		n.upstreams[0] = lk.Peer
		var split wire.Splitter
		// Feed the input in pieces, as data-channel messages.
		for len(in) > 0 && !closed(lk) {
			piece := in[:min(len(in), 1+int(in[0])*7)]
			in = in[len(piece):]
			if _, err := split.Write(piece); err != nil {
				break
			}
			for {
				fr, err := split.Next()
				if err != nil || fr == nil {
					break
				}
				m, err := wire.Decode(fr)
				if err != nil {
					continue
				}
				if !n.handle(peer, m) {
					break
				}
			}
		}
		n.cancel()
		n.wg.Wait()
		n.mu.Lock()
		defer n.mu.Unlock()
		if l := peer.have.Len(); l > 2*haveSpan*32 {
			t.Fatalf("%d haves recorded", l)
		}
		if len(peer.subs) > 2*n.k {
			t.Fatalf("%d subscriptions", len(peer.subs))
		}
		for _, e := range b.Entries {
			if got, ok := n.store.Get(e.Hash); ok && chunker.Sum(got) != e.Hash {
				t.Fatal("a chunk in the store does not match its id")
			}
		}
	})
}

func closed(lk *Link) bool {
	select {
	case <-lk.done:
		return true
	default:
		return false
	}
}
