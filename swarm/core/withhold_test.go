package core

import (
	"slices"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// TestWithholdingPusher: an upstream whose have announces a chunk of its
// substreams that the node wants, and that begins no push within
// Params.WithholdAfter (1 s), is reported stalled at once (not after the
// stall rule's 2 s) and no longer waited for; a late pusher that begins
// its push within the bound, one that begins another push meanwhile (an
// honest relay pushes to its downstreams in turn), a chunk that came
// another way, and a chunk listed before the subscription (which the
// pusher need not backfill) are not held against it.
func TestWithholdingPusher(t *testing.T) {
	const seq = 9 // substream 1 of K = 4
	tests := []struct {
		name         string
		listedBefore bool // the chunk was listed before the link opened
		// act runs after the pusher's have showed seq; the node is
		// watched for 1.2 s from the have.
		act      func(r *rig, e manifest.Entry)
		withheld bool
	}{
		{"announced, no push", false, func(r *rig, e manifest.Entry) {}, true},
		{"push begins within the bound, ends later", false, func(r *rig, e manifest.Entry) {
			r.advance(800 * time.Millisecond)
			d := r.data[e.Hash]
			r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Data: d[:1000]})
			r.advance(500 * time.Millisecond)
			r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Offset: 1000, Data: d[1000:]})
		}, false},
		{"another push begins within the bound", false, func(r *rig, e manifest.Entry) {
			r.advance(800 * time.Millisecond)
			a := r.slot(seq).Entries[1] // the audio chunk of the same slot
			r.send(1, &wire.Chunk{ID: a.Hash, Size: a.Size, Data: r.data[a.Hash][:100]})
		}, false},
		{"the chunk came another way", false, func(r *rig, e manifest.Entry) {
			r.advance(100 * time.Millisecond)
			r.link(2, "other", false)
			r.send(2, &wire.Chunk{ID: e.Hash, Size: e.Size, Data: r.data[e.Hash]})
		}, false},
		{"listed before the subscription", true, func(r *rig, e manifest.Entry) {}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 0, "up")
			b := r.slot(seq)
			batch := &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}}
			if tc.listedBefore {
				r.publish(seq)
			}
			r.link(1, "up", true)
			r.advance(time.Second) // past the subscription's grace
			r.send(1, batch)
			e := b.Entries[0]
			if r.n.wants[e.Hash] == nil {
				t.Fatal("slot 9 not wanted")
			}
			mark, t0 := len(r.outs), r.now
			h := &wire.Have{Rendition: "v0", Base: seq, Bits: 8, Bitmap: make([]byte, 1)}
			h.Set(seq)
			r.send(1, h)
			tc.act(r, e)
			r.advance(t0.Add(1200 * time.Millisecond).Sub(r.now))
			var stalled []protocol.PeerID
			for _, o := range find(r.outs[mark:], OutReport) {
				stalled = append(stalled, o.Report.Stalled...)
			}
			if got := slices.Contains(stalled, "up"); got != tc.withheld {
				t.Errorf("reported stalled %v (%v), want %v", got, stalled, tc.withheld)
			}
			if got := r.n.Stats().Withheld; got != map[bool]int{true: 1}[tc.withheld] {
				t.Errorf("Stats.Withheld %d", got)
			}
			if tc.withheld && r.n.pusher(seq%4) != nil {
				t.Error("the chunk is still left to the withholding pusher")
			}
		})
	}
}

// TestStalledUpstreamGivenBack: an upstream reported stalled that the
// tracker gives a substream again (it did not move off it, or came back to
// it) is judged afresh and reported again when it still pushes nothing;
// before, its link stayed marked stalled, fed nothing, and was never
// reported again.
func TestStalledUpstreamGivenBack(t *testing.T) {
	r := newRig(t, 0, "up")
	r.link(1, "up", true)
	r.advance(time.Second)
	reports := func() int {
		n := 0
		for _, o := range find(r.outs, OutReport) {
			n += len(o.Report.Stalled)
		}
		return n
	}
	lie := func(d time.Duration) { // announce the live edge's chunk, push nothing
		seq := uint64(r.now.Sub(rigStart) / rigD)
		b := r.slot(seq)
		r.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}})
		h := &wire.Have{Rendition: "v0", Base: seq, Bits: 8, Bitmap: make([]byte, 1)}
		h.Set(seq)
		for end := r.now.Add(d); r.now.Before(end); {
			r.send(1, h)
			r.advance(250 * time.Millisecond)
		}
	}
	lie(3 * time.Second)
	if got := reports(); got != 1 {
		t.Fatalf("%d stall reports, want 1", got)
	}
	r.n.Reassign(r.now, 0, "up", 1)
	r.drain()
	if r.n.pusher(0) == nil {
		t.Fatal("the upstream given back is not waited for")
	}
	lie(3 * time.Second)
	if got := reports(); got != 2 {
		t.Errorf("%d stall reports, want 2: the upstream given back was not judged again", got)
	}
}
