package scheduler

import (
	"slices"
	"testing"
	"time"
)

func seqs(items []PlayoutItem) []uint64 {
	var s []uint64
	for _, it := range items {
		if !it.Init {
			s = append(s, it.Seq)
		}
	}
	return s
}

// TestPlayout: chunks go out in sequence order, after their init segment,
// from an independent chunk; a missing chunk is given up only when the next
// one's deadline is within Lead; late duplicates are dropped.
func TestPlayout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pl := NewPlayout(PlayoutParams{Lead: 300 * time.Millisecond})
	chunk := func(seq uint64) PlayoutItem {
		return PlayoutItem{Rendition: "v0", Seq: seq, Independent: seq%4 == 0, Deadline: t0.Add(time.Duration(seq) * 250 * time.Millisecond)}
	}
	var got []uint64
	push := func(now time.Duration, it PlayoutItem) {
		got = append(got, seqs(pl.Push(t0.Add(now), it))...)
	}
	// Chunks before the init segment wait for it; 9 (dependent) before its
	// keyframe 8 waits while 8 may still come.
	push(0, chunk(9))
	push(0, chunk(10))
	if len(got) != 0 {
		t.Fatalf("out before the init segment: %v", got)
	}
	if out := pl.Push(t0, PlayoutItem{Rendition: "v0", Init: true}); len(out) != 1 || !out[0].Init {
		t.Fatalf("init segment: %+v", out)
	}
	push(0, chunk(8))
	if !slices.Equal(got, []uint64{8, 9, 10}) {
		t.Fatalf("after the keyframe: %v, want 8 9 10", got)
	}
	// 11 missing, 12 and 13 come: held until 12's deadline is near.
	push(100*time.Millisecond, chunk(13))
	push(100*time.Millisecond, chunk(12))
	if !slices.Equal(got, []uint64{8, 9, 10}) {
		t.Fatalf("went out past a gap too soon: %v", got)
	}
	got = append(got, seqs(pl.Release(t0.Add(12*250*time.Millisecond-400*time.Millisecond)))...)
	if len(got) != 3 {
		t.Fatalf("gave up 11 with 12 still 400 ms from its deadline: %v", got)
	}
	push(2700*time.Millisecond, chunk(11)) // it came after all
	if !slices.Equal(got, []uint64{8, 9, 10, 11, 12, 13}) {
		t.Fatalf("in order: %v", got)
	}
	// 14 never comes: 15 goes out Lead before its deadline, 14 is skipped;
	// 14 arriving afterwards is dropped.
	push(3000*time.Millisecond, chunk(15))
	got = append(got, seqs(pl.Release(t0.Add(15*250*time.Millisecond-300*time.Millisecond)))...)
	push(3500*time.Millisecond, chunk(14))
	if !slices.Equal(got, []uint64{8, 9, 10, 11, 12, 13, 15}) || pl.Skipped != 1 || pl.Dropped != 1 {
		t.Fatalf("after a lost chunk: %v, skipped %d, dropped %d", got, pl.Skipped, pl.Dropped)
	}
}

// TestPlayoutStartGivesUp: a rendition whose first keyframe never comes
// starts at the next one once the dependent chunks before it are due.
func TestPlayoutStartGivesUp(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pl := NewPlayout(PlayoutParams{})
	pl.Push(t0, PlayoutItem{Rendition: "a0", Init: true})
	var got []uint64
	for _, seq := range []uint64{5, 6, 7, 8, 9} {
		got = append(got, seqs(pl.Push(t0, PlayoutItem{Rendition: "a0", Seq: seq, Independent: seq == 8,
			Deadline: t0.Add(time.Duration(seq) * time.Second)}))...)
	}
	if len(got) != 0 {
		t.Fatalf("started before 4 (the keyframe of 5–7) could come: %v", got)
	}
	got = seqs(pl.Release(t0.Add(5 * time.Second)))
	if !slices.Equal(got, []uint64{8, 9}) || pl.Dropped != 3 {
		t.Fatalf("gave up on 5–7: out %v, dropped %d", got, pl.Dropped)
	}
}
