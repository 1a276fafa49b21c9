package tracker

import (
	"math"
	"time"
)

// Choosing candidates: sampling the free-slot index near a viewer, and the
// parts of a candidate's score (proximity, network, health, reliability).

// cand is a sampled candidate with the parts of its score that do not depend
// on the substream.
type cand struct {
	i      int32
	depth  int32 // on the substream being picked for (pickPeer)
	prox   int8
	net    int8
	health int8
	rel    int8
	bad    bool
	ok     bool // eligible on the substream being picked for (pickPeer)
}

// gather samples candidates for v into s.cands: extras first, then viewers
// with free slots from v's cell and the cells around it, v's area and the
// whole swarm.
func (s *Swarm) gather(now time.Time, v int32, extras []int32) {
	s.epoch++
	if s.epoch == 0 {
		for j := range s.peers {
			s.peers[j].mark = 0
		}
		s.epoch = 1
	}
	s.cands = s.cands[:0]
	s.wide = false
	pv := &s.peers[v]
	pv.mark = s.epoch
	for _, e := range extras {
		s.consider(e)
	}
	if pv.hasCoords() {
		la, lo := cellOf(pv.lat, pv.lon)
		s.sample(s.lookup(bkey{1, uint64(la*cellsLon + lo)}), cellCands, maxCands)
		for dla := -1; dla <= 1; dla++ {
			for dlo := -1; dlo <= 1; dlo++ {
				nla, nlo := la+dla, (lo+dlo+cellsLon)%cellsLon
				if (dla == 0 && dlo == 0) || nla < 0 || nla >= cellsLat {
					continue
				}
				s.sample(s.lookup(bkey{1, uint64(nla*cellsLon + nlo)}), neighborCands, maxCands)
			}
		}
	}
	if ak := areaKey(pv); ak.kind != 0 {
		n := areaCands
		if !pv.hasCoords() {
			n += cellCands
		}
		s.sample(s.lookup(ak), n, maxCands)
	}
	n := max(globalCands, maxCands-len(s.cands))
	s.wide = len(s.buckets[0].members) <= n
	s.sample(0, n, maxCands)
	s.scoreCands(now, v, 0)
}

// widen adds up to maxCands more candidates from the whole swarm.
func (s *Swarm) widen(now time.Time, v int32) {
	s.wide = true
	n := len(s.cands)
	s.sample(0, maxCands, n+maxCands)
	s.scoreCands(now, v, n)
}

// sample adds up to n members of bucket b (all when it has no more),
// keeping s.cands within limit.
func (s *Swarm) sample(b int32, n, limit int) {
	if b == none {
		return
	}
	n = min(n, limit-len(s.cands))
	m := s.buckets[b].members
	if len(m) <= n {
		for _, i := range m {
			s.consider(i)
		}
		return
	}
	for range n {
		s.consider(m[s.rng.IntN(len(m))])
	}
}

// consider scores candidate u for the peer being gathered for (marked with
// the current epoch, so it is skipped like duplicates).
func (s *Swarm) consider(u int32) {
	pu := &s.peers[u]
	if pu.mark == s.epoch || pu.isOrigin() || !pu.alive() {
		return
	}
	pu.mark = s.epoch
	s.cands = append(s.cands, cand{i: u})
}

// scoreCands fills the substream-independent score parts of s.cands[from:]
// for viewer v.
func (s *Swarm) scoreCands(now time.Time, v int32, from int) {
	pv := &s.peers[v]
	for j := from; j < len(s.cands); j++ {
		c := &s.cands[j]
		pu := &s.peers[c.i]
		c.prox = proximity(pv, pu)
		c.net = 2
		if pv.asn != 0 && pv.asn == pu.asn {
			c.net = 0
		} else if pv.cc != 0 && pv.cc == pu.cc {
			c.net = 1
		}
		c.health = s.health(now, c.i)
		pen := s.penalty(now, c.i)
		switch {
		case pen < 0.05:
			c.rel = 0
		case pen < 0.2:
			c.rel = 1
		case pen < badPenalty:
			c.rel = 2
		default:
			c.rel = 3
		}
		c.bad = c.health >= 2 || c.rel >= 3
	}
}

// Proximity classes, best first.
const (
	proxSamePrefix = iota // same /24 or /48
	proxMetro             // < 100 km, or same country and declared region
	proxRegion            // < 500 km, or same country
	proxNear              // < 1500 km, or same declared region
	proxContinent         // < 4000 km
	proxUnknown           // not comparable
	proxFar
)

// hav(d) = sin²(d/2R): comparing these avoids asin and sqrt per candidate.
var havKm = func() [4]float64 {
	var t [4]float64
	for j, km := range [4]float64{100, 500, 1500, 4000} {
		x := math.Sin(km / (2 * earthRadiusKm))
		t[j] = x * x
	}
	return t
}()

func proximity(a, b *peer) int8 {
	if a.prefix != 0 && a.prefix == b.prefix {
		return proxSamePrefix
	}
	if a.hasCoords() && b.hasCoords() {
		h := haversine(float64(a.lat), float64(b.lat), float64(b.lon-a.lon))
		for j, t := range havKm {
			if h < t {
				return int8(proxMetro + j)
			}
		}
		return proxFar
	}
	switch {
	case a.cc != 0 && a.cc == b.cc && a.region != 0 && a.region == b.region:
		return proxMetro
	case a.cc != 0 && a.cc == b.cc:
		return proxRegion
	case a.region != 0 && a.region == b.region:
		return proxNear
	case a.cc == 0 || b.cc == 0:
		return proxUnknown
	}
	return proxFar
}

// health classes: 0 good, 1 unknown or fair, 2 bad (starving, congested,
// or measured under-delivering what it serves). A viewer's claims can only
// lower its class: its own upload figure is not used, and any buffer of 2 s
// or more is the same.
func (s *Swarm) health(now time.Time, i int32) int8 {
	p := &s.peers[i]
	if g := &s.groups[p.grp]; p.used > 0 && g.ratio >= 0 && g.ratio < underRatio {
		return 2
	}
	if p.flags&flagReported == 0 || now.UnixNano()-p.repAt > int64(reportTTL) {
		return 1
	}
	if p.buf < 0.5 || p.rtt >= 1000 {
		return 2
	}
	if p.buf >= 2 {
		return 0
	}
	return 1
}

// penalty is i's reliability penalty now: it halves every penaltyHalfLife.
func (s *Swarm) penalty(now time.Time, i int32) float64 {
	p := &s.peers[i]
	if p.pen == 0 {
		return 0
	}
	dt := float64(now.UnixNano()-p.penAt) / float64(penaltyHalfLife)
	return float64(p.pen) * math.Exp2(-max(dt, 0))
}

func (s *Swarm) penalise(now time.Time, i int32, add float64) {
	p := &s.peers[i]
	if p.isOrigin() {
		return
	}
	p.pen = float32(min(s.penalty(now, i)+add, maxPenalty))
	p.penAt = now.UnixNano()
}

func (s *Swarm) degraded(now time.Time, i int32) bool {
	return s.health(now, i) >= 2 || s.penalty(now, i) >= badPenalty
}
