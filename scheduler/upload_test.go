package scheduler

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func short(us []Upload) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = fmt.Sprintf("%s%d", u.Peer, u.Seq)
	}
	return out
}

func TestOrderUploads(t *testing.T) {
	req := func(peer string, seq uint64, bufMs int) Upload {
		return Upload{Peer: peer, Seq: seq, Size: 100, Kind: UploadRequest, Buffer: time.Duration(bufMs) * time.Millisecond}
	}
	push := func(peer string, seq uint64) Upload { return Upload{Peer: peer, Seq: seq, Size: 100, Kind: UploadPush} }
	tests := []struct {
		name    string
		pending []Upload
		p       UploadParams
		want    []string
	}{
		{
			name:    "low buffers first, then pushes",
			pending: []Upload{push("s", 9), req("a", 1, 3000), req("b", 2, 200), req("c", 3, 1200)},
			want:    []string{"b2", "c3", "a1", "s9"},
		},
		{
			name:    "same buffer tier: round-robin, each peer's chunks by seq",
			pending: []Upload{req("a", 3, 100), req("a", 1, 100), req("a", 2, 100), req("b", 7, 300), req("b", 8, 300)},
			want:    []string{"a1", "b7", "a2", "b8", "a3"},
		},
		{
			name:    "lower tier drains before the next tier",
			pending: []Upload{req("a", 1, 100), req("a", 2, 100), req("b", 5, 900)},
			want:    []string{"a1", "a2", "b5"},
		},
		{
			name:    "pushes round-robin among subscribers",
			pending: []Upload{push("x", 1), push("x", 2), push("x", 3), push("y", 2), push("z", 3)},
			want:    []string{"x1", "y2", "z3", "x2", "x3"},
		},
		{
			name:    "round-robin resumes after last served peer",
			pending: []Upload{push("x", 1), push("y", 2), push("z", 3)},
			p:       UploadParams{After: "x"},
			want:    []string{"y2", "z3", "x1"},
		},
		{
			name:    "urgent buffer: well-buffered requesters wait behind pushes",
			pending: []Upload{req("a", 1, 3000), push("s", 9), req("b", 2, 200), req("c", 3, 1200)},
			p:       UploadParams{UrgentBuffer: time.Second},
			want:    []string{"b2", "s9", "c3", "a1"},
		},
		{
			name:    "pushes to relays before pushes to leaves",
			pending: []Upload{push("leaf", 1), {Peer: "relay", Seq: 1, Size: 100, Kind: UploadPush, Relay: true}, push("aleaf", 1)},
			want:    []string{"relay1", "aleaf1", "leaf1"},
		},
		{
			name:    "tier width configurable",
			pending: []Upload{req("a", 1, 100), req("b", 2, 900)},
			p:       UploadParams{BufferTier: 2 * time.Second, After: "a"},
			want:    []string{"b2", "a1"},
		},
		{
			name: "empty",
			want: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.pending)
			got := short(OrderUploads(tt.pending, tt.p))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !slices.Equal(in, tt.pending) {
				t.Error("input modified")
			}
		})
	}
}

func TestUploadFairnessAcrossTicks(t *testing.T) {
	// Three equal subscribers, one chunk fits per tick: each is served once
	// every three ticks when the caller passes the last served peer on.
	b := NewTokenBucket(TokenBucketParams{Rate: 100, Burst: 100, Now: t0})
	served := map[string]int{}
	last := ""
	for tick := range 30 {
		now := t0.Add(time.Duration(tick) * time.Second)
		pending := []Upload{
			{Peer: "x", Seq: uint64(tick), Size: 100, Kind: UploadPush},
			{Peer: "y", Seq: uint64(tick), Size: 100, Kind: UploadPush},
			{Peer: "z", Seq: uint64(tick), Size: 100, Kind: UploadPush},
		}
		order := OrderUploads(pending, UploadParams{After: last})
		n := TakeUploads(now, order, b)
		if n != 1 {
			t.Fatalf("tick %d: sent %d, want 1", tick, n)
		}
		served[order[0].Peer]++
		last = order[0].Peer
	}
	for _, p := range []string{"x", "y", "z"} {
		if served[p] != 10 {
			t.Errorf("served %v; want 10 each", served)
		}
	}
}

func TestTakeUploads(t *testing.T) {
	b := NewTokenBucket(TokenBucketParams{Rate: 1000, Burst: 1000, Now: t0})
	order := []Upload{{Peer: "a", Size: 600}, {Peer: "b", Size: 500}, {Peer: "c", Size: 100}}
	if n := TakeUploads(t0, order, b); n != 1 {
		t.Fatalf("sent %d, want 1 (stop at first that does not fit, no overtaking)", n)
	}
	if n := TakeUploads(t0.Add(200*time.Millisecond), order[1:], b); n != 2 {
		t.Fatalf("sent %d after refill, want 2", n)
	}
}
