package scheduler

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkPlanPulls measures one scheduler tick over a 10k-chunk window and
// six peers (five viewers holding random 30–90% of the window, and the origin).
func BenchmarkPlanPulls(b *testing.B) {
	const window = 10_000
	r := rand.New(rand.NewPCG(1, 2))
	now := t0
	wanted := make([]Chunk, window)
	for i := range wanted {
		wanted[i] = Chunk{Seq: uint64(1_000 + i), Deadline: now.Add(time.Duration(i+1) * 250 * time.Millisecond), Size: 20_000 + r.IntN(20_000)}
		if i%50 == 0 {
			wanted[i].Pending = []string{"p1"}
		}
	}
	peers := make([]PeerState, 0, 6)
	for k := range 5 {
		have := &SeqSet{}
		share := 0.3 + 0.15*float64(k)
		for i := range window {
			if r.Float64() < share {
				have.Add(uint64(1_000 + i))
			}
		}
		peers = append(peers, PeerState{
			ID: string(rune('p' + k)), Have: have,
			BytesPerSec: 200_000 + 100_000*float64(k), RTT: time.Duration(20+15*k) * time.Millisecond,
			InFlight: k % 3, QueuedBytes: (k % 3) * 30_000,
		})
	}
	peers = append(peers, PeerState{ID: "origin", IsOrigin: true, BytesPerSec: 5e6, RTT: 40 * time.Millisecond})
	p := DefaultPullParams()
	p.Rand = rand.New(rand.NewPCG(3, 4))
	pl := NewPlanner(p)
	dst := make([]Request, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		dst = pl.Plan(dst[:0], now, wanted, peers)
	}
	b.ReportMetric(float64(len(dst)), "requests/tick")
}
