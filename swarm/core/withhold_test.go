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
