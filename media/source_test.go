package media

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

type emitted struct {
	kind Kind
	au   AccessUnit
	at   time.Time // clock reading when emitted
}

// recorder is an emit function that remembers what it was given.
type recorder struct {
	clock Clock
	mu    sync.Mutex
	got   []emitted
}

func (r *recorder) emit(kind Kind, au AccessUnit) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, emitted{kind, au, r.clock.Now()})
	return nil
}

func (r *recorder) units() []emitted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func TestLoopContinuity(t *testing.T) {
	clip := demoClip(t)
	clock := NewManualClock(t0)
	const loops = 3
	// Starting 31 s ago makes every unit due: Run never waits.
	loop, err := NewLoop(LoopParams{Clip: clip, Clock: clock, Loops: loops, Start: t0.Add(-31 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{clock: clock}
	if err := loop.Run(context.Background(), rec.emit); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := rec.units()

	byKind := map[Kind][]AccessUnit{}
	for i, e := range got {
		if i > 0 && e.au.DTS < got[i-1].au.DTS {
			t.Fatalf("unit %d: DTS %v after %v: not in global DTS order", i, e.au.DTS, got[i-1].au.DTS)
		}
		byKind[e.kind] = append(byKind[e.kind], e.au)
	}
	for kind, clipUnits := range map[Kind][]AccessUnit{KindVideo: clip.VideoUnits, KindAudio: clip.AudioUnits} {
		units := byKind[kind]
		if len(units) != loops*len(clipUnits) {
			t.Fatalf("%s: %d units, want %d", kind, len(units), loops*len(clipUnits))
		}
		for i, u := range units {
			k, src := i/len(clipUnits), clipUnits[i%len(clipUnits)]
			off := time.Duration(k) * 10 * time.Second
			if u.DTS != src.DTS+off || u.PTS != src.PTS+off || u.Keyframe != src.Keyframe || &u.Data[0] != &src.Data[0] {
				t.Fatalf("%s %d (loop %d): DTS %v PTS %v, want %v %v", kind, i, k, u.DTS, u.PTS, src.DTS+off, src.PTS+off)
			}
			if i > 0 && u.DTS <= units[i-1].DTS {
				t.Fatalf("%s %d: DTS %v not after %v", kind, i, u.DTS, units[i-1].DTS)
			}
		}
	}
	last := byKind[KindAudio][len(byKind[KindAudio])-1]
	if want := 30*time.Second - 20*time.Millisecond; last.DTS != want {
		t.Errorf("last audio DTS %v, want %v", last.DTS, want)
	}
}

func TestLoopPacing(t *testing.T) {
	clip := demoClip(t)
	clock := NewManualClock(t0)
	loop, err := NewLoop(LoopParams{Clip: clip, Clock: clock}) // forever
	if err != nil {
		t.Fatal(err)
	}
	// Every unit's due time over the first two loops, sorted.
	var due []time.Duration
	for k := range 2 {
		for _, u := range slices.Concat(clip.VideoUnits, clip.AudioUnits) {
			due = append(due, u.DTS+time.Duration(k)*clip.Duration)
		}
	}
	slices.Sort(due)
	dueBy := func(elapsed time.Duration) int {
		return sort.Search(len(due), func(i int) bool { return due[i] > elapsed })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	rec := &recorder{clock: clock}
	done := make(chan error, 1)
	go func() { done <- loop.Run(runCtx, rec.emit) }()

	// Step the clock 5 ms at a time through 12.5 s. Whenever Run waits on
	// its timer, exactly the units due so far must have been emitted.
	const step = 5 * time.Millisecond
	for elapsed := time.Duration(0); elapsed <= 12500*time.Millisecond; elapsed += step {
		if err := clock.WaitForTimers(ctx, 1); err != nil {
			t.Fatalf("at %v: Run is not waiting on the clock: %v", elapsed, err)
		}
		if n, want := len(rec.units()), dueBy(elapsed); n != want {
			t.Fatalf("at %v: %d units emitted, want %d", elapsed, n, want)
		}
		clock.Advance(step)
	}

	// Run is waiting on the clock; cancelling must end it without any
	// further clock movement.
	if err := clock.WaitForTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel = %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after cancel")
	}

	for i, e := range rec.units() {
		wantAt := t0.Add(e.au.DTS)
		if e.at.Before(wantAt) || !e.at.Before(wantAt.Add(step)) {
			t.Errorf("unit %d (%s at %v) emitted at %v, want within [%v, %v)",
				i, e.kind, e.au.DTS, e.at.Sub(t0), e.au.DTS, e.au.DTS+step)
		}
	}
}

func TestLoopEmitError(t *testing.T) {
	clip := demoClip(t)
	loop, err := NewLoop(LoopParams{Clip: clip, Clock: NewManualClock(t0), Start: t0.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	errFull := errors.New("full")
	n := 0
	err = loop.Run(context.Background(), func(Kind, AccessUnit) error {
		if n++; n == 3 {
			return errFull
		}
		return nil
	})
	if !errors.Is(err, errFull) || n != 3 {
		t.Errorf("Run = %v after %d units, want errFull after 3", err, n)
	}
}

func TestLoopCancelledBeforeStart(t *testing.T) {
	loop, err := NewLoop(LoopParams{Clip: demoClip(t), Clock: NewManualClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = loop.Run(ctx, func(Kind, AccessUnit) error {
		t.Error("emit called after cancel")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

// TestLoopSystemClock plays a 3 ms audio-only clip twice on the real clock.
func TestLoopSystemClock(t *testing.T) {
	clip := &Clip{
		Audio:    &Track{Codec: CodecOpus, SampleRate: 48000, Channels: 1},
		Duration: 3 * time.Millisecond,
	}
	for i := range 3 {
		at := time.Duration(i) * time.Millisecond
		clip.AudioUnits = append(clip.AudioUnits, AccessUnit{DTS: at, PTS: at, Data: []byte{0xf8}, Keyframe: true})
	}
	loop, err := NewLoop(LoopParams{Clip: clip, Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{clock: SystemClock{}}
	start := time.Now()
	if err := loop.Run(context.Background(), rec.emit); err != nil {
		t.Fatal(err)
	}
	got := rec.units()
	if len(got) != 6 {
		t.Fatalf("%d units, want 6", len(got))
	}
	for i, e := range got {
		if e.au.DTS != time.Duration(i)*time.Millisecond {
			t.Errorf("unit %d at %v", i, e.au.DTS)
		}
		if early := start.Add(e.au.DTS).Sub(e.at); early > 0 {
			t.Errorf("unit %d emitted %v early", i, early)
		}
	}
}

func TestNewLoopInvalid(t *testing.T) {
	good := demoClip(t)
	unit := AccessUnit{DTS: 0, Data: []byte{1}}
	late := AccessUnit{DTS: time.Second, Data: []byte{1}}
	cases := map[string]LoopParams{
		"nil clip":          {},
		"zero duration":     {Clip: &Clip{AudioUnits: []AccessUnit{unit}}},
		"no units":          {Clip: &Clip{Duration: time.Second}},
		"negative loops":    {Clip: good, Loops: -1},
		"unit past the end": {Clip: &Clip{Duration: time.Second, AudioUnits: []AccessUnit{unit, late}}},
		"out of order":      {Clip: &Clip{Duration: 2 * time.Second, VideoUnits: []AccessUnit{late, unit}}},
	}
	for name, p := range cases {
		if _, err := NewLoop(p); err == nil {
			t.Errorf("%s: NewLoop succeeded", name)
		}
	}
}
