package scheduler

import (
	"cmp"
	"slices"
	"time"
)

// PlayoutItem is one verified init segment or media chunk of a rendition,
// on its way to a player. Data is carried along untouched.
type PlayoutItem struct {
	Rendition   string
	Init        bool // an init segment: it goes out before its rendition's chunks
	Seq         uint64
	Independent bool      // a chunk a decoder can start at
	Deadline    time.Time // when the chunk plays
	Data        any
}

// PlayoutParams tune a Playout.
type PlayoutParams struct {
	// Lead is how long before a held chunk's deadline the chunks missing
	// before it are given up, so that it still reaches the player in time
	// (300 ms).
	Lead time.Duration
	// MaxHeld bounds the chunks held per rendition; past it the oldest gap
	// is given up (256).
	MaxHeld int
}

// Playout puts a rendition's chunks in sequence order for a player.
//
// Chunks arrive in the order they are verified: from several peers and the
// origin at once, so out of order. A Media Source Extensions buffer drops
// what follows a gap in decode order until the next independent chunk, so
// a player must append in order. Playout holds each rendition's chunks
// until the ones before them have gone out, starts every rendition at an
// independent chunk after its init segment, and gives up a missing chunk
// (one no peer nor the origin delivered) once the next held chunk is within
// Lead of its deadline. Init segments go out at once, before any chunk of
// their rendition.
//
// It does no I/O and never reads the clock. It is not safe for concurrent
// use.
type Playout struct {
	p     PlayoutParams
	rends map[string]*playoutRend
	out   []PlayoutItem

	// Skipped counts chunks given up (never delivered in time), Dropped
	// chunks that came after their place had gone out.
	Skipped, Dropped int
}

type playoutRend struct {
	inited  bool
	started bool
	next    uint64 // the seq that goes out next, once started
	held    map[uint64]PlayoutItem
}

// NewPlayout returns an empty Playout.
func NewPlayout(p PlayoutParams) *Playout {
	if p.Lead <= 0 {
		p.Lead = 300 * time.Millisecond
	}
	if p.MaxHeld <= 0 {
		p.MaxHeld = 256
	}
	return &Playout{p: p, rends: map[string]*playoutRend{}}
}

func (pl *Playout) rend(name string) *playoutRend {
	r := pl.rends[name]
	if r == nil {
		r = &playoutRend{held: map[uint64]PlayoutItem{}}
		pl.rends[name] = r
	}
	return r
}

// Push takes an item and returns the items that go out now, in order
// (valid until the next call).
func (pl *Playout) Push(now time.Time, it PlayoutItem) []PlayoutItem {
	pl.out = pl.out[:0]
	r := pl.rend(it.Rendition)
	if it.Init {
		// A new init segment (a rendition taken up again, or a new
		// publisher's) is followed by an independent chunk.
		r.inited, r.started = true, false
		pl.out = append(pl.out, it)
		pl.release(now, r)
		return pl.out
	}
	if r.started && it.Seq < r.next {
		pl.Dropped++
		return pl.out
	}
	r.held[it.Seq] = it
	pl.release(now, r)
	return pl.out
}

// Release returns the chunks that go out at now because the ones missing
// before them are given up (call it a few times a second).
func (pl *Playout) Release(now time.Time) []PlayoutItem {
	pl.out = pl.out[:0]
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range pl.rends {
			if !yield(n) {
				return
			}
		}
	}) {
		pl.release(now, pl.rends[name])
	}
	return pl.out
}

// Reset forgets every rendition (a player starting over).
func (pl *Playout) Reset() {
	clear(pl.rends)
}

func (pl *Playout) release(now time.Time, r *playoutRend) {
	if !r.inited || len(r.held) == 0 {
		return
	}
	if !r.started && !pl.start(now, r) {
		return
	}
	for len(r.held) > 0 {
		if it, ok := r.held[r.next]; ok {
			delete(r.held, r.next)
			pl.out = append(pl.out, it)
			r.next++
			continue
		}
		low := pl.lowest(r)
		if now.Before(low.Deadline.Add(-pl.p.Lead)) && len(r.held) < pl.p.MaxHeld {
			return // the missing one may still come
		}
		pl.Skipped += int(low.Seq - r.next)
		r.next = low.Seq
	}
}

// start picks a rendition's first chunk: the lowest held independent one,
// unless a dependent chunk before it is held (its independent chunk may
// still come) and that one's deadline is not near.
func (pl *Playout) start(now time.Time, r *playoutRend) bool {
	low := pl.lowest(r)
	var first *PlayoutItem
	for _, it := range r.held {
		if it.Independent && (first == nil || it.Seq < first.Seq) {
			it := it
			first = &it
		}
	}
	if first == nil {
		if len(r.held) >= pl.p.MaxHeld {
			clear(r.held) // nothing here can start a decoder
		}
		return false
	}
	if low.Seq < first.Seq && now.Before(low.Deadline.Add(-pl.p.Lead)) {
		return false
	}
	for seq := range r.held {
		if seq < first.Seq {
			delete(r.held, seq)
			pl.Dropped++
		}
	}
	r.started, r.next = true, first.Seq
	return true
}

func (pl *Playout) lowest(r *playoutRend) PlayoutItem {
	var low PlayoutItem
	first := true
	for _, it := range r.held {
		if first || cmp.Less(it.Seq, low.Seq) {
			low, first = it, false
		}
	}
	return low
}
