package core

import (
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
)

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

// TestLateLiarReported: an upstream that announces every chunk it gets and
// pushes none, its haves arriving only once this node holds the chunk from
// elsewhere (so its have never shows a chunk still wanted, and it is never
// silent), is reported stalled once it has announced chunks it did not push
// for StallAfter; one that pushes is not.
func TestLateLiarReported(t *testing.T) {
	for _, pushes := range []bool{false, true} {
		r := newRig(t, 0, "up")
		r.link(1, "up", true)
		r.link(2, "other", false)
		r.advance(time.Second)
		for range 16 {
			seq := uint64(r.now.Sub(rigStart) / rigD)
			b := r.slot(seq)
			from := LinkID(2)
			if pushes {
				from = 1
			}
			r.send(from, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b)}})
			for _, e := range b.Entries {
				r.send(from, &wire.Chunk{ID: e.Hash, Size: e.Size, Data: r.data[e.Hash]})
			}
			for _, rend := range []string{"v0", "a0"} {
				h := &wire.Have{Rendition: rend, Base: seq, Bits: 8, Bitmap: make([]byte, 1)}
				h.Set(seq)
				r.send(1, h)
			}
			r.advance(rigD)
		}
		reports := 0
		for _, o := range find(r.outs, OutReport) {
			reports += len(o.Report.Stalled)
		}
		if st := r.n.Stats(); st.Chunks < 30 {
			t.Fatalf("pushes=%v: %d chunks held, want the 32 sent", pushes, st.Chunks)
		}
		if want := map[bool]int{false: 1, true: 0}[pushes]; reports != want {
			t.Errorf("pushes=%v: %d stall reports, want %d", pushes, reports, want)
		}
	}
}
