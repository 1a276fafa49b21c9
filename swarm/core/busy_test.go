package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/wire"
)

// TestOriginBusy: when the origin refuses fetches for load (its egress cap),
// a node whose substreams come over HTTP leaves the origin alone for a
// jittered, growing wait, pulls the chunks from a peer that holds them
// meanwhile, fetches its init segments again once the wait is over, and
// goes back to the origin after it.
func TestOriginBusy(t *testing.T) {
	r := newRig(t, 0, "")
	busy := fmt.Errorf("GET /c/…: 503 Service Unavailable: %w", ErrOriginBusy)
	refuse := func(outs []Output) (chunks, inits int) {
		for _, o := range find(outs, OutFetchChunk) {
			if o.Entry.Kind == manifest.KindInit {
				inits++
			} else {
				chunks++
			}
			if err := r.n.ChunkFetched(r.now, o.Entry.Hash, nil, busy); err == nil {
				t.Fatal("a refused fetch returned no error")
			}
		}
		r.drain()
		return chunks, inits
	}
	// A peer that relays and holds everything from slot 8 on.
	r.link(1, "peer", false)
	r.send(1, &wire.Hello{Version: 1, BudgetKbps: 4000, Slots: 4})
	have := func(seq uint64) {
		for _, rend := range []string{"v0", "a0"} {
			h := &wire.Have{Rendition: rend, Base: 8, Bits: 64, Bitmap: make([]byte, 8)}
			for s := uint64(8); s <= seq; s++ {
				h.Set(s)
			}
			r.send(1, h)
		}
	}

	// The first refusal: the listed chunks are not fetched again over HTTP
	// while the wait lasts, and the new ones are not fetched at once.
	c, _ := refuse(r.outs)
	r.publish(8)
	c2, _ := refuse(r.drain())
	if c+c2 == 0 {
		t.Fatal("the node fetched nothing over HTTP at start")
	}
	if got := r.n.Stats().OriginBusy; got == 0 {
		t.Fatal("Stats.OriginBusy not counted")
	}
	wait := r.n.busyUntil.Sub(r.now)
	if wait < busyBase/2 || wait > busyBase*3/2 {
		t.Fatalf("first wait %v, want %v ± 50%%", wait, busyBase)
	}
	mark := len(r.outs)
	r.publish(9)
	have(9)
	if !r.n.originBusy(r.now) {
		t.Fatal("the origin is not left alone after the refusal")
	}
	r.advance(r.n.busyUntil.Sub(r.now) - time.Millisecond)
	for _, o := range find(r.outs[mark:], OutFetchChunk) {
		t.Errorf("fetched %s/%d over HTTP during the wait", o.Entry.Rendition, o.Entry.Seq)
	}
	var asked int
	for _, o := range find(r.outs, OutSend) {
		if q, ok := o.Msg.(*wire.Request); ok && q.Seq >= 8 {
			asked++
		}
	}
	if asked == 0 {
		t.Fatal("nothing listed during the wait was asked of the peer")
	}

	// Refused again after the wait: the next wait is longer (strikes).
	for i := 0; i < 6 && r.n.busyStrikes < 2; i++ {
		r.advance(max(r.n.busyUntil.Sub(r.now), 0) + time.Millisecond)
		r.publish(10 + uint64(i))
		refuse(r.advance(r.n.p.TickEvery))
	}
	if r.n.busyStrikes < 2 {
		t.Fatalf("%d strikes after refusals past the waits, want ≥ 2", r.n.busyStrikes)
	}

	// A fetch answered resets the strikes.
	r.advance(max(r.n.busyUntil.Sub(r.now), 0) + time.Millisecond)
	r.publish(20)
	r.answerOrigin(r.advance(r.n.p.TickEvery))
	if r.n.busyStrikes != 0 {
		t.Errorf("%d strikes after a fetch was answered, want 0", r.n.busyStrikes)
	}
}

// initRig is a rig whose slot 8 lists a new init segment of v0, and
// fetched reports whether outs fetch that segment.
func initRig(t *testing.T) (r *rig, init manifest.Entry, initData []byte, fetched func([]Output) bool) {
	r = newRig(t, 0, "")
	b, data := rigSlot(8)
	initData = []byte("an init segment of v0")
	init = manifest.Entry{Kind: manifest.KindInit, Rendition: "v0", Seq: 8, IngestTime: rigStart.Add(9 * rigD), Size: uint32(len(initData)), Independent: true, Hash: manifest.Sum(initData)}
	b.Entries = append([]manifest.Entry{init}, b.Entries...)
	if err := b.Sign(streamKey); err != nil {
		t.Fatal(err)
	}
	r.batches[b.N] = b
	for i, e := range b.Entries[1:] {
		r.data[e.Hash] = data[i]
	}
	r.data[init.Hash] = initData
	r.feed(b)
	fetched = func(outs []Output) bool {
		for _, o := range find(outs, OutFetchChunk) {
			if o.Entry.Hash == init.Hash {
				return true
			}
		}
		return false
	}
	if !fetched(r.drain()) {
		t.Fatal("the new init segment was not fetched")
	}
	return r, init, initData, fetched
}

// TestOriginBusyInitRetried: an init segment whose fetch the busy origin
// refused is fetched again once the wait is over; a rendition cannot play
// without it.
func TestOriginBusyInitRetried(t *testing.T) {
	r, init, initData, fetched := initRig(t)
	r.n.ChunkFetched(r.now, init.Hash, nil, ErrOriginBusy)
	r.drain()
	if fetched(r.advance(r.n.busyUntil.Sub(r.now) - time.Millisecond)) {
		t.Fatal("the init segment was fetched again during the wait")
	}
	outs := r.advance(r.n.p.TickEvery + 2*time.Millisecond)
	if !fetched(outs) {
		t.Fatal("the init segment was not fetched again after the wait")
	}
	if err := r.n.ChunkFetched(r.now, init.Hash, initData, nil); err != nil {
		t.Fatal(err)
	}
	if !r.n.store.Has(init.Hash) {
		t.Error("the init segment fetched again is not held")
	}
}

// TestInitFailedRetried: an init segment whose fetch failed other than for
// load (a network error, bytes that do not verify) is fetched again after a
// wait that grows with each failure in a row, without leaving the origin
// alone for the media chunks; once held, the strikes start over.
func TestInitFailedRetried(t *testing.T) {
	r, init, initData, fetched := initRig(t)
	var waits []time.Duration
	for i, fail := range []func() error{
		func() error {
			return r.n.ChunkFetched(r.now, init.Hash, nil, errors.New("GET /c/…: connection reset"))
		},
		func() error { return r.n.ChunkFetched(r.now, init.Hash, []byte("not the init segment"), nil) },
	} {
		if err := fail(); err == nil {
			t.Fatalf("failure %d returned no error", i)
		}
		r.drain()
		if r.n.originBusy(r.now) {
			t.Fatalf("failure %d left the origin alone, as a refusal for load does", i)
		}
		wait := r.n.initUntil.Sub(r.now)
		if wait <= 0 {
			t.Fatalf("failure %d: the init segment is not to be fetched again", i)
		}
		waits = append(waits, wait)
		if fetched(r.advance(wait - time.Millisecond)) {
			t.Fatalf("the init segment was fetched again during wait %d", i)
		}
		if !fetched(r.advance(r.n.p.TickEvery + 2*time.Millisecond)) {
			t.Fatalf("the init segment was not fetched again after wait %d", i)
		}
	}
	if lo, hi := busyBase/2, busyBase*3/2; waits[0] < lo || waits[0] > hi || waits[1] < 2*lo || waits[1] > 2*hi {
		t.Errorf("waits %v, want %v then %v, each ± 50%%", waits, busyBase, 2*busyBase)
	}
	if got := r.n.Stats().Rejected; got != 1 {
		t.Errorf("%d rejected, want 1 (the bytes that did not verify)", got)
	}
	if err := r.n.ChunkFetched(r.now, init.Hash, initData, nil); err != nil {
		t.Fatal(err)
	}
	if !r.n.store.Has(init.Hash) || r.n.initStrikes != 0 {
		t.Errorf("held %v, %d strikes; want the init segment held and no strikes", r.n.store.Has(init.Hash), r.n.initStrikes)
	}
}

// TestOriginBusyJitter: nodes refused at the same moment come back at
// different times.
func TestOriginBusyJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := range 8 {
		n := &Node{rng: rand.New(rand.NewPCG(uint64(i), 1))}
		n.refused(rigStart)
		seen[n.busyUntil.Sub(rigStart)] = true
	}
	if len(seen) < 6 {
		t.Errorf("8 nodes refused together wait %d distinct times; want them spread", len(seen))
	}
}
