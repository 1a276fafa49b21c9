package swarmtest

import (
	"testing"
	"time"
)

// swarmFigures sums the viewers' counters.
type figures struct {
	peers, origin         int64
	onTime, late, rejects int
}

func sum(nodes []*Node) (f figures) {
	for _, v := range nodes {
		s := v.Stats()
		f.peers += s.BytesFromPeers
		f.origin += s.BytesFromOrigin
		f.onTime += s.ChunksOnTime
		f.late += s.ChunksLate
		f.rejects += s.Rejected
	}
	return f
}

func (f figures) offload() float64    { return float64(f.peers) / float64(max(f.peers+f.origin, 1)) }
func (f figures) continuity() float64 { return float64(f.onTime) / float64(max(f.onTime+f.late, 1)) }

func TestTwentyNodeSwarm(t *testing.T) {
	n, err := New(Params{})
	if err != nil {
		t.Fatal(err)
	}
	n.Run(time.Second)
	budgets := []int{0, 500, 1250, 2500}
	for i := range 20 {
		if _, err := n.Join(NodeParams{BudgetKbps: budgets[i%4]}); err != nil {
			t.Fatal(err)
		}
		n.Run(100 * time.Millisecond)
	}
	n.Run(10 * time.Second)
	before := sum(n.Nodes())
	n.Run(20 * time.Second)
	after := sum(n.Nodes())
	d := figures{peers: after.peers - before.peers, origin: after.origin - before.origin, onTime: after.onTime - before.onTime, late: after.late - before.late}
	t.Logf("offload %.3f continuity %.4f (%d on time, %d late), events %d", d.offload(), d.continuity(), d.onTime, d.late, n.Events)
	for _, v := range n.Nodes() {
		t.Logf("%v %+v", v, v.Stats())
	}
}
