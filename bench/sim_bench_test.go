package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSim: what a simulator run costs as the audience grows: the
// generous scenario at 4 Mbit/s for 30 s of stream (joins over 15 s), at
// 1,000, 3,000 and 10,000 viewers (pick one with -bench 'Sim/n=10000').
// It reports CPU per viewer-second of stream, core inputs per
// viewer-second and their cost, and the heap per viewer at the end.
//
//	go test -run '^$' -bench 'Sim/n=1000$' -benchtime 1x -cpuprofile cpu.out ./bench
func BenchmarkSim(b *testing.B) {
	for _, n := range []int{1000, 3000, 10000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			sc := scenario(b, "generous")
			const d = 30 * time.Second
			for range b.N {
				res, err := RunSim(context.Background(), SimParams{Scenario: sc, Viewers: n, Duration: d, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				vs := float64(n) * d.Seconds()
				b.ReportMetric(res.CPUSeconds/vs*1e3, "cpu-ms/viewer-s")
				b.ReportMetric(float64(res.Events)/vs, "inputs/viewer-s")
				b.ReportMetric(res.CPUSeconds*1e9/float64(res.Events), "cpu-ns/input")
				b.ReportMetric(res.LiveHeapMB*(1<<20)/float64(n), "heap-B/viewer")
				b.ReportMetric(res.PeakRSSMB, "peak-RSS-MB")
			}
		})
	}
}
