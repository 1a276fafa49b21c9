package swarmtest

import (
	"runtime"
	"testing"
	"time"

	"github.com/seedcast/seedcast/swarm/core"
)

// generous is a budget mix with relay to spare: 20% off, the rest at 1250
// or 2500 kbit/s (a mean of 1.5 Mbit/s for a 564 kbit/s stream).
var generous = []int{0, 1250, 1250, 2500, 2500}

// BenchmarkCoreEvents: the cost of one core input (a message, a tick, a
// fetch answered) in a 200-node generous swarm at steady state, on one
// core: ns per event and events per second.
func BenchmarkCoreEvents(b *testing.B) {
	n := newNet(b, Params{Seed: 5, OriginSlots: 16, OriginKbps: 8000})
	for i := range 200 {
		join(b, n, NodeParams{BudgetKbps: generous[i%len(generous)]})
		n.Run(20 * time.Millisecond)
	}
	n.Run(10 * time.Second)
	b.ResetTimer()
	ev := n.Events
	start := time.Now()
	for range b.N {
		n.Run(time.Second)
	}
	el := time.Since(start)
	events := n.Events - ev
	b.ReportMetric(float64(el.Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(events)/el.Seconds(), "events/s")
	b.ReportMetric(float64(events)/float64(b.N)/200, "events/node-s")
}

// BenchmarkCoreMemory: heap per core, idle (just started, no link) and
// holding a window (10 s into a 1,000-node swarm, sizes-only store, links
// and peer state included), measured with runtime.MemStats.
func BenchmarkCoreMemory(b *testing.B) {
	for range b.N {
		heap := func() uint64 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		n := newNet(b, Params{Seed: 5, OriginSlots: 16, OriginKbps: 8000})
		m := n.stream.manifest(-1)
		base := heap()
		cores := make([]*core.Node, 1000)
		for i := range cores {
			c, err := core.New(core.Params{Stream: "demo", Renditions: []string{"v0", "a0"}, Substreams: 4, Manifest: m,
				Verifier: newTrustVerifier(n.stream), Store: newSizeStore(1024), Now: n.now})
			if err != nil {
				b.Fatal(err)
			}
			cores[i] = c
		}
		idle := heap() - base
		runtime.KeepAlive(cores)
		cores = nil
		base = heap()
		for i := range 1000 {
			join(b, n, NodeParams{BudgetKbps: generous[i%len(generous)]})
			n.Run(10 * time.Millisecond)
		}
		n.Run(10 * time.Second)
		held := heap() - base
		b.ReportMetric(float64(idle)/1000, "B/idle-core")
		b.ReportMetric(float64(held)/1000, "B/core-holding-10s")
		runtime.KeepAlive(n)
	}
}
