package core

import (
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
)

// TestHeadOffTellsThePusher: a viewer relaying nothing (so it announces
// nothing) that pulls a chunk from the origin because its pusher was late
// tells that pusher at once that it holds the chunk; a chunk the pusher
// itself pushed is not announced back.
func TestHeadOffTellsThePusher(t *testing.T) {
	r := newRig(t, 0, "up")
	r.link(1, "up", true)
	b := r.publish(8)
	e := b.Entries[0] // v0 slot 8: substream 0
	var fetched bool
	for i := 0; i < 40 && !fetched; i++ {
		outs := r.advance(100 * time.Millisecond)
		for _, o := range find(outs, OutFetchChunk) {
			fetched = fetched || o.Entry.Hash == e.Hash
		}
		r.answerOrigin(outs)
	}
	if !fetched {
		t.Fatal("the late push's chunk was never fetched from the origin")
	}
	var told bool
	for _, o := range find(r.outs, OutSend) {
		if h, ok := o.Msg.(*wire.Have); ok && o.Link == 1 && h.Rendition == "v0" && h.Has(8) {
			told = true
		}
	}
	if !told {
		t.Fatal("the pusher was not told the chunk is held")
	}

	// A chunk pushed by the pusher itself: nothing goes back.
	r2 := newRig(t, 0, "up")
	r2.link(1, "up", true)
	b2 := r2.slot(8)
	r2.send(1, &wire.Manifest{Batches: []manifest.SignedBatch{signed(t, b2)}})
	e2 := b2.Entries[0]
	data := r2.data[e2.Hash]
	outs := r2.send(1, &wire.Chunk{ID: e2.Hash, Size: e2.Size, Data: data})
	if r2.n.Stats().Pushed != 1 {
		t.Fatalf("stats %+v: the push was not taken", r2.n.Stats())
	}
	for _, o := range find(outs, OutSend) {
		if _, ok := o.Msg.(*wire.Have); ok {
			t.Fatalf("a have sent for a chunk the pusher pushed: %+v", o.Msg)
		}
	}
}

// TestPushDroppedWhenHeld: a relay stops a push, begun or queued, when the
// downstream's have shows it holds the chunk: the rest is not sent.
func TestPushDroppedWhenHeld(t *testing.T) {
	r, e := cutRig(t, true)
	data := r.data[e.Hash]
	for off := 0; off < len(data); off += 10000 {
		end := min(off+10000, len(data))
		r.send(1, &wire.Chunk{ID: e.Hash, Size: e.Size, Offset: uint32(off), Data: data[off:end]})
	}
	var got []byte
	for i := 0; i < 20 && len(got) == 0; i++ { // until the push has begun
		r.advance(5 * time.Millisecond)
		got, _ = sent(t, r.outs, 2, e)
	}
	if len(got) == 0 || len(got) >= len(data) {
		t.Fatalf("%d of %d bytes pushed at once: the test wants a push begun, not finished", len(got), len(data))
	}
	h := &wire.Have{Rendition: "v0", Base: 8, Bits: 8, Bitmap: make([]byte, 1)}
	h.Set(8)
	r.send(2, h)
	r.advance(time.Second)
	after, _ := sent(t, r.outs, 2, e)
	if len(after) != len(got) {
		t.Errorf("%d more bytes pushed after the downstream said it held the chunk", len(after)-len(got))
	}
	if st := r.n.Stats(); st.PushesDropped != 1 {
		t.Errorf("PushesDropped %d, want 1", st.PushesDropped)
	}
}
