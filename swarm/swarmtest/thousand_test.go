package swarmtest

import (
	"testing"
	"time"
)

// TestThousandNodes: a thousand viewers with relay to spare (20% relay
// off) join over 10 s and watch 40 s of stream in virtual time: every
// viewer plays on time, the swarm carries the stream, and no relay sends
// over its budget in any second. (A few minutes of stream would take a few
// minutes here: about 13 µs per core input, 75 inputs per node-second.)
func TestThousandNodes(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1,000 cores: run without -race (scripts/test does)")
	}
	start := time.Now()
	// One 500 kbit/s rendition (no audio): half the default stream's
	// messages per second.
	n := newNet(t, Params{Seed: 3, OriginSlots: 16, OriginKbps: 8000, Renditions: []Rendition{{Name: "v0", Kind: "video", Kbps: 500}}})
	for i := range 1000 {
		join(t, n, NodeParams{BudgetKbps: generous[i%len(generous)]})
		n.Run(10 * time.Millisecond)
	}
	n.Run(10 * time.Second)
	before := sum(n.Nodes())
	for _, v := range n.Nodes() {
		v.PeakWindow = 0
	}
	n.Run(20 * time.Second)
	d := sum(n.Nodes()).minus(before)
	over, maxDepth := 0, 0
	for _, v := range n.Nodes() {
		maxDepth = max(maxDepth, v.Stats().Depth)
		if limit := int64(v.Budget()*1000/8) * 105 / 100; v.PeakWindow > limit {
			over++
			if over < 5 {
				t.Errorf("%v sent %d B in one second, over %d", v, v.PeakWindow, limit)
			}
		}
	}
	t.Logf("1,000 nodes, the last 20 s: offload %.4f, continuity %.5f (%d on time, %d late), max depth %d; %d core events in %v",
		d.offload(), d.continuity(), d.onTime, d.late, maxDepth, n.Events, time.Since(start).Round(time.Millisecond))
	if d.continuity() < 0.99 {
		t.Errorf("continuity %.4f, want ≥ 99%%", d.continuity())
	}
	if d.offload() < 0.9 {
		t.Errorf("offload %.4f, want ≥ 90%%", d.offload())
	}
	if over > 0 {
		t.Errorf("%d relays over budget", over)
	}
}
