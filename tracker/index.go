package tracker

import (
	"net/netip"
	"slices"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// The peer registry (ids to dense indices, reused when peers leave) and the
// free-slot index: buckets of the viewers with a free relay slot, by 5°
// cell, by area and globally, which candidates are sampled from.

// bkey names a bucket.
type bkey struct {
	kind uint8 // 1 cell, 2 country, 3 region, 4 prefix
	v    uint64
}

// bucket lists the viewers with a free slot in one cell or area (bucket 0:
// all of them).
type bucket struct {
	key     bkey
	members []int32
}

func (s *Swarm) alloc(id protocol.PeerID) int32 {
	var i int32
	if n := len(s.freeIdx); n > 0 {
		i = s.freeIdx[n-1]
		s.freeIdx = s.freeIdx[:n-1]
	} else {
		i = int32(len(s.peers))
		s.peers = append(s.peers, peer{})
		for range s.k {
			s.subs = append(s.subs, sub{})
		}
	}
	s.peers[i] = peer{
		id:    id,
		down:  s.peers[i].down[:0], // reuse a departed peer's list
		flags: flagAlive,
		pos:   [3]int32{none, none, none},
		bkt:   [2]int32{none, none},
		rpos:  none,
		grp:   none,
	}
	for k := range s.k {
		s.subs[s.at(i, k)] = sub{up: none, pos: none}
	}
	s.ids[id] = i
	return i
}

// remove unregisters i, whose links must all be gone already.
func (s *Swarm) remove(now time.Time, i int32) {
	p := &s.peers[i]
	if p.isOrigin() {
		s.stats.OriginSlots -= int(p.slots)
		s.origins = slices.DeleteFunc(s.origins, func(o int32) bool { return o == i })
	} else {
		s.stats.Viewers--
		s.homeSlots[p.home] -= int64(p.slots)
		s.exit(now, i)
		if p.flags&flagUndiverse != 0 {
			s.stats.Undiverse--
		}
		for k := range s.k {
			if s.subs[s.at(i, k)].up == none {
				s.stats.Unassigned--
			}
		}
	}
	p.flags &^= flagAlive
	s.index(i)
	delete(s.ids, p.id)
	p.id = ""
	if cap(p.down) > maxSlots {
		p.down = nil
	}
	s.freeIdx = append(s.freeIdx, i)
}

func (s *Swarm) setLoc(p *peer, l Location) {
	if l.HasCoords {
		p.flags |= flagCoords
		p.lat, p.lon = float32(l.Lat), float32(l.Lon)
	}
	if len(l.Country) == 2 {
		p.cc = uint16(l.Country[0])<<8 | uint16(l.Country[1])
	}
	p.asn = l.ASN
	if l.Region != "" {
		r, ok := s.regions[l.Region]
		if !ok && len(s.regions) < maxRegions {
			r = uint16(len(s.regions) + 1)
			s.regions[l.Region] = r
		}
		p.region = r
	}
	pr := l.Prefix
	if a := l.Addr.Unmap(); !pr.IsValid() && a.IsValid() {
		bits := 24
		if a.Is6() {
			bits = 48
		}
		pr = netip.PrefixFrom(a.WithZone(""), bits)
	}
	p.prefix = prefixKey(pr)
}

// prefixKey packs a /24 (or any IPv4 prefix) exactly, and an IPv6 prefix by
// its first 48 bits; 0 means none.
func prefixKey(pr netip.Prefix) uint64 {
	if !pr.IsValid() {
		return 0
	}
	pr = pr.Masked()
	a := pr.Addr()
	if a.Is4() {
		b := a.As4()
		return 1<<62 | uint64(pr.Bits())<<32 | uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	}
	b := a.As16()
	var hi uint64
	for _, x := range b[:6] {
		hi = hi<<8 | uint64(x)
	}
	return 2<<62 | uint64(min(pr.Bits(), 48))<<48 | hi
}

const (
	cellDeg  = 5
	cellsLat = 180 / cellDeg
	cellsLon = 360 / cellDeg
)

func cellOf(lat, lon float32) (int, int) {
	la := min(max(int((lat+90)/cellDeg), 0), cellsLat-1)
	lo := min(max(int((lon+180)/cellDeg), 0), cellsLon-1)
	return la, lo
}

func areaKey(p *peer) bkey {
	switch {
	case p.cc != 0:
		return bkey{2, uint64(p.cc)}
	case p.region != 0:
		return bkey{3, uint64(p.region)}
	case p.prefix != 0:
		return bkey{4, p.prefix}
	}
	return bkey{}
}

// index puts viewer i into, or takes it out of, the free-slot buckets and the
// relay list, to match its state.
func (s *Swarm) index(i int32) {
	p := &s.peers[i]
	want := p.alive() && !p.isOrigin() && s.free(i) > 0
	if in := p.pos[2] != none; want != in {
		if want {
			p.pos[2] = s.bucketAdd(0, i)
			if p.hasCoords() {
				la, lo := cellOf(p.lat, p.lon)
				p.bkt[0] = s.bucketFor(bkey{1, uint64(la*cellsLon + lo)})
				p.pos[0] = s.bucketAdd(p.bkt[0], i)
			}
			if ak := areaKey(p); ak.kind != 0 {
				p.bkt[1] = s.bucketFor(ak)
				p.pos[1] = s.bucketAdd(p.bkt[1], i)
			}
		} else {
			s.bucketDel(0, p.pos[2], 2)
			p.pos[2] = none
			for j := range 2 {
				if p.pos[j] != none {
					s.bucketDel(p.bkt[j], p.pos[j], j)
					p.pos[j], p.bkt[j] = none, none
				}
			}
		}
	}
	relay := p.alive() && s.relay(i)
	if in := p.rpos != none; relay != in {
		if relay {
			p.rpos = int32(len(s.relays))
			s.relays = append(s.relays, i)
		} else {
			last := len(s.relays) - 1
			moved := s.relays[last]
			s.relays[p.rpos] = moved
			s.peers[moved].rpos = p.rpos
			s.relays = s.relays[:last]
			p.rpos = none
		}
	}
}

func (s *Swarm) bucketFor(k bkey) int32 {
	if b, ok := s.bkeys[k]; ok {
		return b
	}
	var b int32
	if n := len(s.freeBuckets); n > 0 {
		b = s.freeBuckets[n-1]
		s.freeBuckets = s.freeBuckets[:n-1]
	} else {
		b = int32(len(s.buckets))
		s.buckets = append(s.buckets, bucket{})
	}
	s.buckets[b].key = k
	s.bkeys[k] = b
	return b
}

// lookup returns the bucket named k, or none.
func (s *Swarm) lookup(k bkey) int32 {
	if b, ok := s.bkeys[k]; ok {
		return b
	}
	return none
}

func (s *Swarm) bucketAdd(b, i int32) int32 {
	s.buckets[b].members = append(s.buckets[b].members, i)
	return int32(len(s.buckets[b].members) - 1)
}

// bucketDel removes the member at pos; slot says which of the members' pos
// entries tracks bucket b. Empty buckets (but the global one) are recycled.
func (s *Swarm) bucketDel(b, pos int32, slot int) {
	bk := &s.buckets[b]
	last := len(bk.members) - 1
	moved := bk.members[last]
	bk.members[pos] = moved
	s.peers[moved].pos[slot] = pos
	bk.members = bk.members[:last]
	if last == 0 && b != 0 {
		delete(s.bkeys, bk.key)
		bk.members = nil
		s.freeBuckets = append(s.freeBuckets, b)
	}
}
