package scheduler

import (
	"testing"
	"time"
)

func TestWaitForPush(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	p := PushParams{Grace: 400 * time.Millisecond, StallAfter: 2 * time.Second, OriginMargin: time.Second}
	due := t0.Add(3 * time.Second)
	tests := []struct {
		name string
		at   time.Duration // after the entry was learnt
		lag  time.Duration
		want bool
	}{
		{"within the grace", 300 * time.Millisecond, 0, true},
		{"past the grace", 500 * time.Millisecond, 0, false},
		{"a slow pusher gets 1.5× its lag", 500 * time.Millisecond, 600 * time.Millisecond, true},
		{"... and no more", 950 * time.Millisecond, 600 * time.Millisecond, false},
		{"never into the origin's margin", 1800 * time.Millisecond, 2 * time.Second, false},
		{"just before it", 1700 * time.Millisecond, 2 * time.Second, true},
	}
	for _, tc := range tests {
		if got := WaitForPush(t0.Add(tc.at), t0, due, Pusher{Lag: tc.lag}, p); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}

func TestStalled(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	p := PushParams{Grace: 400 * time.Millisecond, StallAfter: 2 * time.Second}
	s := func(d float64) time.Time { return t0.Add(time.Duration(d * float64(time.Second))) }
	tests := []struct {
		name string
		now  time.Time
		u    Pusher
		want bool
	}{
		{"pushing", s(10), Pusher{LastPush: s(9.9), LastHave: s(9.9), LastListed: s(10), LastHeldWanted: s(9.5)}, false},
		{"holds what we want, pushes nothing", s(10), Pusher{LastPush: s(7), LastHave: s(9.9), LastListed: s(10), LastHeldWanted: s(9.8)}, true},
		{"held only briefly", s(10), Pusher{LastPush: s(8.5), LastHave: s(9.9), LastListed: s(10), LastHeldWanted: s(9.8)}, false},
		{"silent while the stream moves", s(10), Pusher{LastPush: s(7), LastHave: s(7), LastListed: s(9.9)}, true},
		{"silent, but so is the stream", s(10), Pusher{LastPush: s(7), LastHave: s(7), LastListed: s(8)}, false},
		{"starved: announces, holds nothing new", s(10), Pusher{LastPush: s(7), LastHave: s(9.9), LastListed: s(9.9)}, false},
		{"announces new chunks, pushes none", s(10), Pusher{LastPush: s(7), LastHave: s(9.9), LastListed: s(9.9), LastUnpushed: s(9.8)}, true},
		{"announces new chunks, pushes late", s(10), Pusher{LastPush: s(8.5), LastHave: s(9.9), LastListed: s(9.9), LastUnpushed: s(9.8)}, false},
	}
	for _, tc := range tests {
		if got := Stalled(tc.now, tc.u, p); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}

func TestSmoothLag(t *testing.T) {
	if got := SmoothLag(0, time.Second); got != time.Second {
		t.Errorf("first sample: %v", got)
	}
	if got := SmoothLag(time.Second, 1800*time.Millisecond); got != 1100*time.Millisecond {
		t.Errorf("EWMA: %v", got)
	}
}
