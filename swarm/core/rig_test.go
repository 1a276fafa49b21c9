package core

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// rig drives one core by hand on a virtual clock, with a genuine stream
// signed by streamKey: slot n holds one chunk of v0 and one of a0.
type rig struct {
	t       testing.TB
	n       *Node
	now     time.Time
	start   time.Time
	batches map[uint64]manifest.Batch
	data    map[manifest.ID][]byte
	outs    []Output // every output so far
	vsize   int      // bytes of each v0 chunk
}

const rigD = 250 * time.Millisecond

var rigStart = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// rigSlot returns slot seq's signed batch (number seq+1) and chunk bytes.
func rigSlot(seq uint64) (manifest.Batch, [][]byte) { return rigSlotSized(seq, 3000) }

// rigSlotSized is rigSlot with v0 chunks of vsize bytes (a0's are 1000).
func rigSlotSized(seq uint64, vsize int) (manifest.Batch, [][]byte) {
	b := manifest.Batch{Stream: "demo", N: seq + 1}
	var data [][]byte
	for i, r := range []string{"v0", "a0"} {
		size := vsize
		if i == 1 {
			size = 1000
		}
		d := make([]byte, size)
		for j := range d {
			d[j] = byte(seq*7 + uint64(i*31+j))
		}
		data = append(data, d)
		b.Entries = append(b.Entries, manifest.Entry{
			Kind: manifest.KindChunk, Rendition: r, Seq: seq, MediaTime: time.Duration(seq) * rigD, Duration: rigD,
			IngestTime: rigStart.Add(time.Duration(seq+1) * rigD), Size: uint32(len(d)), Independent: true, Hash: manifest.Sum(d),
		})
	}
	if err := b.Sign(streamKey); err != nil {
		panic(err)
	}
	return b, data
}

// newRig starts a viewer whose every substream comes from upstream "up"
// (empty: over HTTP), at slot 8 of the stream, with slots 0–7 listed.
func newRig(t testing.TB, budget int, up protocol.PeerID) *rig {
	t.Helper()
	return newRigSized(t, budget, up, 3000)
}

// newRigSized is newRig with v0 chunks of vsize bytes.
func newRigSized(t testing.TB, budget int, up protocol.PeerID, vsize int) *rig {
	t.Helper()
	r := &rig{t: t, start: rigStart, batches: map[uint64]manifest.Batch{}, data: map[manifest.ID][]byte{}, vsize: vsize}
	r.now = rigStart.Add(8 * rigD)
	m := &manifest.Manifest{Version: 1, Stream: "demo", PublicKey: hex.EncodeToString(streamKey.Public().(ed25519.PublicKey)), ChunkDurationMs: 250,
		Renditions: []manifest.RenditionInfo{{Name: "v0", Kind: "video"}, {Name: "a0", Kind: "audio"}}}
	for seq := range uint64(8) {
		b := r.slot(seq)
		for _, e := range b.Entries {
			m.Entries = append(m.Entries, manifest.ToJSON(e, b.N))
		}
		m.Batches = append(m.Batches, manifest.JSONBatch{N: b.N, Signature: hex.EncodeToString(b.Signature)})
	}
	v, err := NewVerifier(VerifierParams{Stream: "demo", PublicKey: streamKey.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	ups := make([]protocol.PeerID, 4)
	for i := range ups {
		ups[i] = up
	}
	n, err := New(Params{Stream: "demo", BudgetKbps: budget, Renditions: []string{"v0", "a0"}, Substreams: 4, Upstreams: ups,
		Manifest: m, Verifier: v, Store: NewStore(0), Now: r.now})
	if err != nil {
		t.Fatal(err)
	}
	r.n = n
	r.drain()
	return r
}

func (r *rig) slot(seq uint64) manifest.Batch {
	b, data := rigSlotSized(seq, r.vsize)
	r.batches[b.N] = b
	for i, e := range b.Entries {
		r.data[e.Hash] = data[i]
	}
	return b
}

// drain collects the core's outputs and returns those of this call.
func (r *rig) drain() []Output {
	var outs []Output
	for {
		o, ok := r.n.Poll()
		if !ok {
			break
		}
		outs = append(outs, o)
	}
	r.outs = append(r.outs, outs...)
	return outs
}

// advance moves the clock by d, ticking at every NextWake on the way.
func (r *rig) advance(d time.Duration) []Output {
	end := r.now.Add(d)
	var outs []Output
	for i := 0; ; i++ {
		if i > 10000 {
			r.t.Fatalf("more than 10000 wakes in %v: NextWake %v, now %v", d, r.n.NextWake(), r.now)
		}
		w := r.n.NextWake()
		if w.After(end) {
			break
		}
		r.now = maxTime(r.now, w)
		r.n.Tick(r.now)
		outs = append(outs, r.drain()...)
	}
	r.now = end
	return outs
}

// answerOrigin answers every fetch among outs from the genuine stream.
func (r *rig) answerOrigin(outs []Output) {
	for _, o := range outs {
		if o.Kind == OutFetchChunk {
			if err := r.n.ChunkFetched(r.now, o.Entry.Hash, r.data[o.Entry.Hash], nil); err != nil {
				r.t.Fatal(err)
			}
		}
	}
	r.drain()
}

// publish lists slot seq at the origin and feeds its manifest to the node.
func (r *rig) publish(seq uint64) manifest.Batch {
	b := r.slot(seq)
	r.feed(b)
	return b
}

// feed hands the node batch b as a manifest poll's answer: its init
// segments first, as a manifest lists them.
func (r *rig) feed(b manifest.Batch) {
	m := &manifest.Manifest{Version: 1, Stream: "demo", PublicKey: hex.EncodeToString(streamKey.Public().(ed25519.PublicKey)), ChunkDurationMs: 250}
	for _, e := range b.Entries {
		if e.Kind == manifest.KindInit {
			m.InitSegments = append(m.InitSegments, manifest.ToJSON(e, b.N))
		} else {
			m.Entries = append(m.Entries, manifest.ToJSON(e, b.N))
		}
	}
	m.Batches = append(m.Batches, manifest.JSONBatch{N: b.N, Signature: hex.EncodeToString(b.Signature)})
	if err := r.n.ManifestFetched(r.now, m, nil); err != nil {
		r.t.Fatal(err)
	}
}

// link opens link id to remote.
func (r *rig) link(id LinkID, remote protocol.PeerID, up bool) {
	r.n.LinkOpened(r.now, id, remote, up)
	r.drain()
}

// send delivers messages on link id.
func (r *rig) send(id LinkID, ms ...wire.Message) []Output {
	for _, m := range ms {
		r.n.Receive(r.now, id, m)
	}
	return r.drain()
}

// signed is a batch in its wire form.
func signed(t testing.TB, b manifest.Batch) manifest.SignedBatch {
	sb, err := manifest.NewSignedBatch(&b)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func find(outs []Output, k OutputKind) []Output {
	var got []Output
	for _, o := range outs {
		if o.Kind == k {
			got = append(got, o)
		}
	}
	return got
}
