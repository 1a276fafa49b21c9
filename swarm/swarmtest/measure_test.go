package swarmtest

import (
	"testing"
	"time"
)

// TestReceiptsEarnSlots: the production cores' reports carry receipts, and
// the tracker measures a relay by them. A relay joins with a large budget
// and serves its probation's K links (one substream) at first; once its
// downstreams' receipts show it delivering, it serves far more, and every
// viewer plays on time.
func TestReceiptsEarnSlots(t *testing.T) {
	n := newNet(t, Params{})
	relay := join(t, n, NodeParams{BudgetKbps: 4000})
	n.Run(500 * time.Millisecond)
	var viewers []*Node
	for range 10 {
		viewers = append(viewers, join(t, n, NodeParams{BudgetKbps: 0}))
		n.Run(100 * time.Millisecond)
	}
	k := n.Swarm().Substreams()
	if got := len(n.Swarm().Downstreams(relay.ID)); got > k {
		t.Fatalf("on probation, the relay serves %d links, more than K=%d", got, k)
	}
	n.Run(20 * time.Second)
	before := sum(viewers)
	n.Run(10 * time.Second)
	d := sum(viewers).minus(before)
	served := len(n.Swarm().Downstreams(relay.ID))
	t.Logf("the relay serves %d links; viewers: offload %.3f, %d on time, %d late", served, d.offload(), d.onTime, d.late)
	if served < 4*k {
		t.Errorf("the relay serves %d links after 20 s of receipts, want ≥ %d", served, 4*k)
	}
	if d.late > 0 || d.onTime < 10*2*39 { // 40 slots each, less one at the edges
		t.Errorf("viewers: %d on time, %d late", d.onTime, d.late)
	}
}

// TestSilentClaimerLosesSlots: a node that claims a large relay budget,
// joins before everyone and forwards nothing (frozen: its links stay up,
// it chokes nobody) is measured by its downstreams' receipts and stall
// reports: it never serves more than its probation's K links, ends up
// serving nothing (but for the tracker giving a failed address its K
// slots back after Probation·2^(failures−1), which it fails again), and
// the viewers around it play on time.
func TestSilentClaimerLosesSlots(t *testing.T) {
	n := newNet(t, Params{OriginSlots: 8})
	claimer := join(t, n, NodeParams{BudgetKbps: 100_000})
	claimer.Freeze()
	n.Run(500 * time.Millisecond)
	var viewers []*Node
	for j := range 12 {
		viewers = append(viewers, join(t, n, NodeParams{BudgetKbps: []int{0, 0, 0, 2000}[j%4]}))
		n.Run(200 * time.Millisecond)
	}
	most, serving := 0, 0
	for i := range 60 { // 30 s
		n.Run(500 * time.Millisecond)
		served := len(n.Swarm().Downstreams(claimer.ID))
		most = max(most, served)
		if i >= 30 && served > 0 { // past its probation
			serving++
		}
	}
	if k := n.Swarm().Substreams(); most > k {
		t.Errorf("the claimer served %d links at once, more than its probation's K=%d", most, k)
	}
	before := sum(viewers)
	n.Run(10 * time.Second)
	d := sum(viewers).minus(before)
	t.Logf("the claimer served links at %d of 30 instants past its probation; viewers: offload %.3f, %d on time, %d late", serving, d.offload(), d.onTime, d.late)
	if serving > 30/4 {
		t.Errorf("the silent claimer served links at %d of 30 instants past its probation", serving)
	}
	if d.late > 0 || d.onTime < 12*2*39 {
		t.Errorf("viewers: %d on time, %d late", d.onTime, d.late)
	}
}
