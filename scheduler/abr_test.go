package scheduler

import (
	"testing"
	"time"
)

func TestABR(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := NewABR(ABRParams{}, []int{720, 360, 1080, 720})
	if a.Height() != 1080 {
		t.Fatalf("starts at %d, want the highest", a.Height())
	}
	good := ABRInput{OnTime: 8, Buffer: 2 * time.Second}
	step := func(at time.Duration, in ABRInput) (int, bool) { return a.Decide(t0.Add(at), in) }
	if h, ch := step(0, good); h != 1080 || ch {
		t.Fatalf("healthy: %d %v", h, ch)
	}
	if h, ch := step(2*time.Second, ABRInput{OnTime: 7, Late: 1, Buffer: time.Second}); h != 720 || !ch {
		t.Fatalf("late chunks: %d %v, want a step down to 720", h, ch)
	}
	if h, ch := step(4*time.Second, ABRInput{OnTime: 8, Buffer: 300 * time.Millisecond}); h != 360 || !ch {
		t.Fatalf("low buffer: %d %v, want 360", h, ch)
	}
	if h, ch := step(6*time.Second, ABRInput{Late: 8}); h != 360 || ch {
		t.Fatalf("at the bottom: %d %v", h, ch)
	}
	// Two steps down: the wait before a step up is 80 s.
	for at := 8 * time.Second; at < 87*time.Second; at += 2 * time.Second {
		if h, ch := step(at, good); ch {
			t.Fatalf("stepped up to %d after %v of good delivery, want 80 s", h, at-8*time.Second)
		}
	}
	if h, ch := step(88*time.Second, good); h != 720 || !ch {
		t.Fatalf("after 80 s on time: %d %v, want 720", h, ch)
	}
	// A late chunk restarts the wait, without a step down when few are late.
	step(90*time.Second, ABRInput{OnTime: 99, Late: 1, Buffer: 2 * time.Second})
	if h, ch := step(100*time.Second, good); ch || h != 720 {
		t.Fatalf("%d %v", h, ch)
	}
	if one := NewABR(ABRParams{}, []int{360}); func() bool { _, ch := one.Decide(t0, ABRInput{Late: 9}); return ch }() {
		t.Error("one rendition: nothing to switch")
	}
}
