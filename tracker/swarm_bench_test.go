package tracker

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// Benchmarks use a 3000 kbps stream in 4 substreams (a slot is 750 kbps) and
// the peer mix of peerGen: 60% browsers with 0–2 slots, 30% natives with
// 4–16, 10% relay off, in 20 cities on 6 continents.
const benchBitrate = 3000

func benchSwarm(b *testing.B, n int) (*Swarm, *peerGen, []protocol.PeerID) {
	b.Helper()
	s, err := NewSwarm(SwarmParams{BitrateKbps: benchBitrate, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		b.Fatal(err)
	}
	// Enough for the gap between what viewers need and what they relay.
	if err := s.AddOrigin("origin", n*s.k); err != nil {
		b.Fatal(err)
	}
	g := newPeerGen(s, 3)
	ids := make([]protocol.PeerID, 0, n)
	for range n {
		pi := g.next()
		if _, err := s.Join(t0, pi); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, pi.ID)
	}
	return s, g, ids
}

// BenchmarkJoin measures joins into a swarm of n viewers kept at that size:
// each op is one join plus one leave of a random viewer. ns/op covers both;
// join-ns, joins/s and the percentiles cover the join alone, leave-p50-ns and
// leave-p99-ns the leave.
func BenchmarkJoin(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("peers=%dk", n/1000), func(b *testing.B) {
			s, g, ids := benchSwarm(b, n)
			r := rand.New(rand.NewPCG(4, 5))
			infos := make([]PeerInfo, b.N)
			for i := range infos {
				infos[i] = g.next()
			}
			joins := make([]time.Duration, 0, b.N)
			leaves := make([]time.Duration, 0, b.N)
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				now = now.Add(time.Millisecond)
				start := time.Now()
				if _, err := s.Join(now, infos[i]); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				j := r.IntN(len(ids))
				s.Leave(now, ids[j])
				end := time.Now()
				ids[j] = infos[i].ID
				joins = append(joins, mid.Sub(start))
				leaves = append(leaves, end.Sub(mid))
			}
			b.StopTimer()
			reportLatency(b, "join", joins)
			reportLatency(b, "leave", leaves)
			var sum time.Duration
			for _, d := range joins {
				sum += d
			}
			b.ReportMetric(float64(len(joins))/sum.Seconds(), "joins/s")
			st := s.Stats()
			b.ReportMetric(float64(st.OriginLinks)/float64(st.Viewers*s.k), "origin-share")
			b.ReportMetric(meanDepth(s), "mean-depth")
		})
	}
}

// BenchmarkRebalance measures one Rebalance call (the server makes one
// every 2 s) in a swarm of n viewers from peerGen's 20 cities, so that
// localize has far links to bring nearer; links/op is what it moved.
func BenchmarkRebalance(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("peers=%dk", n/1000), func(b *testing.B) {
			s, _, _ := benchSwarm(b, n)
			now := t0
			links := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				now = now.Add(2 * time.Second)
				links += len(s.Rebalance(now))
			}
			b.ReportMetric(float64(links)/float64(b.N), "links/op")
		})
	}
}

// reportLatency reports the mean, p50 and p99 of ds as name-ns, name-p50-ns
// and name-p99-ns.
func reportLatency(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	slices.Sort(ds)
	b.ReportMetric(float64(sum.Nanoseconds())/float64(len(ds)), name+"-ns")
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), name+"-p50-ns")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), name+"-p99-ns")
}

func meanDepth(s *Swarm) float64 {
	var sum, n int
	for i := range s.peers {
		p := &s.peers[i]
		if !p.alive() || p.isOrigin() {
			continue
		}
		for k := range s.k {
			if sb := s.subs[s.at(int32(i), k)]; sb.up != none {
				sum += int(sb.depth)
				n++
			}
		}
	}
	return float64(sum) / float64(max(n, 1))
}

// BenchmarkMemory reports the heap a swarm of 100k viewers holds, per viewer,
// including the ids (26-character strings, as the server makes them). It
// measures once, whatever b.N (so any -benchtime works).
func BenchmarkMemory(b *testing.B) {
	const n = 100_000
	for i := range b.N {
		if i > 0 {
			continue
		}
		infos := make([]PeerInfo, n)
		g := newPeerGen(&Swarm{k: 4, p: SwarmParams{BitrateKbps: benchBitrate}}, 3)
		for i := range infos {
			infos[i] = g.next()
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := NewSwarm(SwarmParams{BitrateKbps: benchBitrate, Rand: rand.New(rand.NewPCG(1, 2))})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.AddOrigin("origin", n*s.k); err != nil {
			b.Fatal(err)
		}
		for i := range infos {
			infos[i].ID = protocol.PeerID(fmt.Sprintf("%026d", i)) // allocated here, held by the swarm
			if _, err := s.Join(t0, infos[i]); err != nil {
				b.Fatal(err)
			}
		}
		clear(infos) // the swarm alone keeps the ids alive
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/peer")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/100k")
		runtime.KeepAlive(s)
		runtime.KeepAlive(infos) // allocated before the first reading
	}
}
