package scheduler

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func set(seqs ...uint64) *SeqSet {
	s := &SeqSet{}
	for _, q := range seqs {
		s.Add(q)
	}
	return s
}

func ck(seq uint64, dueMs int, pending ...string) Chunk {
	return Chunk{Seq: seq, Deadline: t0.Add(time.Duration(dueMs) * time.Millisecond), Size: 10_000, Pending: pending}
}

// fast is a peer that can deliver a 10 kB chunk in ~30 ms.
func fast(id string, have *SeqSet) PeerState {
	return PeerState{ID: id, Have: have, BytesPerSec: 1e6, RTT: 20 * time.Millisecond}
}

func origin() PeerState {
	return PeerState{ID: "origin", IsOrigin: true, BytesPerSec: 1e7, RTT: 30 * time.Millisecond}
}

func testParams() PullParams {
	return PullParams{
		SequentialWindow:   2 * time.Second,
		OriginMargin:       time.Second,
		DuplicateWindow:    500 * time.Millisecond,
		MaxInFlightPerPeer: 2,
	}
}

func TestPlanPulls(t *testing.T) {
	all := set(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 22, 23)
	slow := PeerState{ID: "slow", Have: all, BytesPerSec: 10_000, RTT: 20 * time.Millisecond} // 1 s per chunk
	tests := []struct {
		name   string
		wanted []Chunk
		peers  []PeerState
		edit   func(*PullParams)
		want   []Request
	}{
		{
			name:   "near deadline: earliest deadline first, input order ignored",
			wanted: []Chunk{ck(12, 1500), ck(10, 900), ck(11, 1200), ck(9, 1900)},
			peers:  []PeerState{fast("a", set(9, 10, 11, 12))},
			want:   []Request{{Seq: 10, Peer: "a"}, {Seq: 11, Peer: "a"}},
		},
		{
			name:   "far out: rarest first, choked peers still count for rarity",
			wanted: []Chunk{ck(20, 5000), ck(21, 5250), ck(22, 5500)},
			peers: []PeerState{
				fast("a", set(20, 21, 22)),
				choked(fast("b", set(20, 21))),
				choked(fast("c", set(20))),
			},
			want: []Request{{Seq: 22, Peer: "a"}, {Seq: 21, Peer: "a"}},
		},
		{
			name:   "far out: equally rare in deadline order",
			wanted: []Chunk{ck(23, 6000), ck(21, 5250), ck(22, 5500)},
			peers:  []PeerState{fast("a", all)},
			want:   []Request{{Seq: 21, Peer: "a"}, {Seq: 22, Peer: "a"}},
		},
		{
			name:   "sequential chunks before rarer far ones",
			wanted: []Chunk{ck(20, 5000), ck(5, 1000)},
			peers:  []PeerState{fast("a", set(5, 20)), choked(fast("b", set(5)))},
			edit:   func(p *PullParams) { p.MaxInFlightPerPeer = 1 },
			want:   []Request{{Seq: 5, Peer: "a"}},
		},
		{
			name:   "too close for the only peer: origin",
			wanted: []Chunk{ck(3, 500)},
			peers:  []PeerState{slow, origin()},
			want:   []Request{{Seq: 3, Peer: "origin"}},
		},
		{
			name:   "no peer has it and deadline within origin margin: origin",
			wanted: []Chunk{ck(30, 800)},
			peers:  []PeerState{fast("a", all), origin()},
			want:   []Request{{Seq: 30, Peer: "origin"}},
		},
		{
			name:   "no peer in time but deadline beyond origin margin: wait",
			wanted: []Chunk{ck(3, 1010), ck(31, 4000)},
			peers:  []PeerState{slow, origin()},
			want:   nil,
		},
		{
			name:   "origin margin past the sequential window reaches far chunks",
			wanted: []Chunk{ck(40, 2500), ck(3, 2600)},
			peers:  []PeerState{slow, origin()},
			edit:   func(p *PullParams) { p.OriginMargin = 3 * time.Second; p.MaxInFlightPerPeer = 1 },
			want:   []Request{{Seq: 40, Peer: "origin"}, {Seq: 3, Peer: "slow"}},
		},
		{
			name:   "close but a peer makes it: peer, not origin",
			wanted: []Chunk{ck(3, 300)},
			peers:  []PeerState{origin(), fast("a", all)},
			want:   []Request{{Seq: 3, Peer: "a"}},
		},
		{
			name:   "peer margin: estimate must beat deadline by margin",
			wanted: []Chunk{ck(3, 150)},
			peers:  []PeerState{fast("a", all), origin()},
			edit:   func(p *PullParams) { p.PeerMargin = 130 * time.Millisecond },
			want:   []Request{{Seq: 3, Peer: "origin"}},
		},
		{
			name:   "prefers earliest estimated completion",
			wanted: []Chunk{ck(3, 1500)},
			peers:  []PeerState{{ID: "mid", Have: all, BytesPerSec: 100_000, RTT: 20 * time.Millisecond}, fast("a", all)},
			want:   []Request{{Seq: 3, Peer: "a"}},
		},
		{
			name:   "queued bytes count against a peer",
			wanted: []Chunk{ck(3, 1500)},
			peers: []PeerState{
				{ID: "busy", Have: all, BytesPerSec: 1e6, RTT: 10 * time.Millisecond, QueuedBytes: 500_000},
				{ID: "idle", Have: all, BytesPerSec: 500_000, RTT: 10 * time.Millisecond},
			},
			want: []Request{{Seq: 3, Peer: "idle"}},
		},
		{
			name:   "load spreads over equal peers",
			wanted: []Chunk{ck(1, 1000), ck(2, 1250), ck(3, 1500), ck(4, 1750)},
			peers:  []PeerState{fast("a", all), fast("b", all)},
			edit:   func(p *PullParams) { p.MaxInFlightPerPeer = 8 },
			want:   []Request{{Seq: 1, Peer: "a"}, {Seq: 2, Peer: "b"}, {Seq: 3, Peer: "a"}, {Seq: 4, Peer: "b"}},
		},
		{
			name:   "choked peer skipped",
			wanted: []Chunk{ck(3, 1500)},
			peers:  []PeerState{choked(fast("a", all)), fast("b", all)},
			want:   []Request{{Seq: 3, Peer: "b"}},
		},
		{
			name:   "only a choked peer has it: nothing far out",
			wanted: []Chunk{ck(22, 5000)},
			peers:  []PeerState{choked(fast("a", all)), origin()},
			want:   nil,
		},
		{
			name:   "pending outside duplicate window: not requested again",
			wanted: []Chunk{ck(3, 800, "a")},
			peers:  []PeerState{fast("a", all), fast("b", all)},
			want:   nil,
		},
		{
			name:   "pending inside duplicate window: duplicate to another peer",
			wanted: []Chunk{ck(3, 400, "a")},
			peers:  []PeerState{fast("a", all), fast("b", all)},
			want:   []Request{{Seq: 3, Peer: "b", Duplicate: true}},
		},
		{
			name:   "duplicate never to the same peer",
			wanted: []Chunk{ck(3, 400, "a")},
			peers:  []PeerState{fast("a", all)},
			edit:   func(p *PullParams) { p.OriginMargin = 100 * time.Millisecond },
			want:   nil,
		},
		{
			name:   "duplicate to origin when no other peer has it",
			wanted: []Chunk{ck(3, 400, "a")},
			peers:  []PeerState{fast("a", all), origin()},
			want:   []Request{{Seq: 3, Peer: "origin", Duplicate: true}},
		},
		{
			name:   "at most two requests per chunk",
			wanted: []Chunk{ck(3, 400, "a", "origin")},
			peers:  []PeerState{fast("a", all), fast("b", all), origin()},
			want:   nil,
		},
		{
			name:   "past deadline: skipped",
			wanted: []Chunk{ck(1, 0), ck(2, -100), ck(3, 300)},
			peers:  []PeerState{fast("a", all)},
			want:   []Request{{Seq: 3, Peer: "a"}},
		},
		{
			name:   "in-flight requests use up the pipeline",
			wanted: []Chunk{ck(3, 1500), ck(4, 1750)},
			peers:  []PeerState{{ID: "a", Have: all, BytesPerSec: 1e6, RTT: 20 * time.Millisecond, InFlight: 1}},
			want:   []Request{{Seq: 3, Peer: "a"}},
		},
		{
			name:   "unmeasured peer left out without a default rate",
			wanted: []Chunk{ck(3, 1500)},
			peers:  []PeerState{{ID: "new", Have: all, RTT: 20 * time.Millisecond}},
			want:   nil,
		},
		{
			name:   "unmeasured peer used with a default rate",
			wanted: []Chunk{ck(3, 1500)},
			peers:  []PeerState{{ID: "new", Have: all, RTT: 20 * time.Millisecond}},
			edit:   func(p *PullParams) { p.DefaultBytesPerSec = 100_000 },
			want:   []Request{{Seq: 3, Peer: "new"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testParams()
			if tt.edit != nil {
				tt.edit(&p)
			}
			got := PlanPulls(t0, tt.wanted, tt.peers, p)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestPipelineDepth(t *testing.T) {
	tests := []struct {
		name      string
		bps       float64
		rtt       time.Duration
		size, max int
		want      int
	}{
		{"unmeasured", 0, 50 * time.Millisecond, 25_000, 16, 1},
		{"no rtt", 1e6, 0, 25_000, 16, 1},
		{"bdp 4 chunks", 1e6, 100 * time.Millisecond, 25_000, 16, 5},
		{"bdp rounds up", 1e6, 110 * time.Millisecond, 25_000, 16, 6},
		{"tiny bdp", 10_000, 10 * time.Millisecond, 25_000, 16, 2},
		{"capped", 1e8, time.Second, 25_000, 16, 16},
		{"no cap", 1e6, time.Second, 25_000, 0, 41},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PipelineDepth(tt.bps, tt.rtt, tt.size, tt.max); got != tt.want {
				t.Errorf("PipelineDepth = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestPlanPullsPipelineFromBDP(t *testing.T) {
	// 1 MB/s × 100 ms = 100 kB = 4 chunks of 25 kB, plus one: depth 5.
	var wanted []Chunk
	have := &SeqSet{}
	for i := range 20 {
		wanted = append(wanted, Chunk{Seq: uint64(i), Deadline: t0.Add(3*time.Second + time.Duration(i)*250*time.Millisecond), Size: 25_000})
		have.Add(uint64(i))
	}
	for _, tt := range []struct{ inFlight, want int }{{0, 5}, {2, 3}, {5, 0}, {9, 0}} {
		peers := []PeerState{{ID: "a", Have: have, BytesPerSec: 1e6, RTT: 100 * time.Millisecond, InFlight: tt.inFlight}}
		p := testParams()
		p.MaxInFlightPerPeer = 16
		if got := len(PlanPulls(t0, wanted, peers, p)); got != tt.want {
			t.Errorf("in flight %d: %d requests, want %d", tt.inFlight, got, tt.want)
		}
	}
}

func TestPlanPullsDeterministicTies(t *testing.T) {
	all := set(1, 2, 3, 4, 5, 6, 7, 8)
	wanted := []Chunk{ck(1, 3000)}
	peers := []PeerState{fast("a", all), fast("b", all), fast("c", all)}
	seen := map[string]bool{}
	for seed := range uint64(30) {
		p := testParams()
		p.Rand = rand.New(rand.NewPCG(seed, 1))
		first := PlanPulls(t0, wanted, peers, p)
		p.Rand = rand.New(rand.NewPCG(seed, 1))
		second := PlanPulls(t0, wanted, peers, p)
		if !slices.Equal(first, second) {
			t.Fatalf("seed %d: %v then %v", seed, first, second)
		}
		seen[first[0].Peer] = true
	}
	if len(seen) != 3 {
		t.Errorf("ties went only to %v; want all three peers over 30 seeds", seen)
	}
}

func TestPlannerReuse(t *testing.T) {
	all := set(1, 2, 3, 20, 21, 22)
	pl := NewPlanner(testParams())
	peers := []PeerState{fast("a", all), choked(fast("b", set(20)))}
	wanted := []Chunk{ck(20, 5000), ck(21, 5250), ck(2, 1000)}
	first := pl.Plan(nil, t0, wanted, peers)
	second := pl.Plan(nil, t0, wanted, peers)
	if !slices.Equal(first, second) {
		t.Errorf("reused planner: %v then %v", first, second)
	}
	want := []Request{{Seq: 2, Peer: "a"}, {Seq: 21, Peer: "a"}}
	if !slices.Equal(first, want) {
		t.Errorf("got %v, want %v", first, want)
	}
}

func choked(p PeerState) PeerState { p.Choked = true; return p }

func TestSeqSet(t *testing.T) {
	var s SeqSet
	for _, q := range []uint64{130, 64, 200, 5} {
		s.Add(q)
	}
	for _, q := range []uint64{5, 64, 130, 200} {
		if !s.Has(q) {
			t.Errorf("missing %d", q)
		}
	}
	if s.Has(6) || s.Has(1000) || s.Len() != 4 {
		t.Errorf("Has(6)=%v Has(1000)=%v Len=%d", s.Has(6), s.Has(1000), s.Len())
	}
	s.Remove(64)
	s.Advance(131)
	if s.Has(130) || s.Has(5) || !s.Has(200) || s.Len() != 1 {
		t.Errorf("after Advance(131): Has(130)=%v Has(200)=%v Len=%d", s.Has(130), s.Has(200), s.Len())
	}
	s.Advance(10_000)
	if s.Len() != 0 {
		t.Errorf("after Advance past all: Len=%d", s.Len())
	}
	s.Add(10_001)
	if !s.Has(10_001) || s.Len() != 1 {
		t.Error("re-add after emptying failed")
	}
	var nilSet *SeqSet
	if nilSet.Has(1) {
		t.Error("nil set has 1")
	}
}
