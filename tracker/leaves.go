package tracker

// The leaf index: per substream and depth, the viewers that sit in that
// tree as a leaf that insert and displace may take the place of (a viewer
// relaying nothing on the substream, that can never relay it). insert used
// to find one by a breadth-first walk from the origins, bounded to 512
// peers: once the top levels of a tree hold only relays, past about 12,000
// relay joins, the walk finds no leaf, every later relay takes a sampled
// free slot, and in a flash crowd of 100,000 the trees grow 60 deep from
// joins alone (TestFlashCrowdDepth). The index hands out the shallowest
// leaves first, at any size.
//
// It is lazy: an entry is checked when it is read, and dropped there if
// it no longer holds (the viewer gained a downstream, moved, or left), so
// that keeping it costs the tree's operations O(1) each; shift, which
// walks a moved subtree anyway, enters its leaves at their new depth. A
// sub's leafAt is the depth at which it was last entered (0: none; no
// leaf sits at depth 0), so that one position is entered once. The index
// is rebuilt when stale entries outnumber the links.

// leafSlack: the index is rebuilt when it holds more entries than this
// many per (viewer, substream), plus leafSlackMin.
const (
	leafSlack    = 2
	leafSlackMin = 4096
)

// displaceable reports whether x may be taken as a leaf on k: it has an
// upstream there, serves nothing there, and can never relay k (k is not
// its home, or it has no slots).
func (s *Swarm) displaceable(x int32, k int) bool {
	p := &s.peers[x]
	if !p.alive() || p.isOrigin() || s.subs[s.at(x, k)].up == none || s.hasDown(x, k) {
		return false
	}
	return int(p.home) != k || p.slots == 0
}

// enterLeaf enters x on k at its depth if it is displaceable there and not
// entered at that depth already.
func (s *Swarm) enterLeaf(x int32, k int) {
	sx := &s.subs[s.at(x, k)]
	d := sx.depth
	if d <= 0 || sx.leafAt == d || !s.displaceable(x, k) {
		return
	}
	for len(s.leaves[k]) <= int(d) {
		s.leaves[k] = append(s.leaves[k], nil)
	}
	s.leaves[k][d] = append(s.leaves[k][d], x)
	sx.leafAt = d
	if s.leafN++; s.leafN > leafSlack*len(s.subs)+leafSlackMin {
		s.rebuildLeaves()
	}
}

// rebuildLeaves drops every entry and enters the leaves there are.
func (s *Swarm) rebuildLeaves() {
	for k := range s.leaves {
		for d := range s.leaves[k] {
			s.leaves[k][d] = s.leaves[k][d][:0]
		}
	}
	s.leafN = 0
	for i := range s.subs {
		s.subs[i].leafAt = 0
	}
	for i := range s.peers {
		for k := range s.k {
			s.enterLeaf(int32(i), k)
		}
	}
}

// rooted reports whether x's chain of upstreams on k reaches an origin
// without passing v (none: any): a viewer in a subtree cut off while its
// root waits for an upstream, or in v's own subtree, is no place for v.
func (s *Swarm) rooted(x int32, k int, v int32) bool {
	for {
		if x == v {
			return false
		}
		u := s.subs[s.at(x, k)].up
		if u == none {
			return s.peers[x].isOrigin()
		}
		x = u
	}
}

// scanLeaves calls fn with the displaceable leaves on k that hang from an
// origin (not through v), shallowest first, below depth than (0: any), at
// most insertVisits of them, until fn returns true. It drops the stale
// entries it meets. fn must not change the trees unless it returns true.
func (s *Swarm) scanLeaves(k int, v int32, than int32, fn func(c int32) bool) {
	seen := 0
	for d := 1; d < len(s.leaves[k]) && seen < insertVisits; d++ {
		if than > 0 && int32(d) >= than {
			return
		}
		b := s.leaves[k][d]
		for j := len(b) - 1; j >= 0 && seen < insertVisits; j-- {
			c := b[j]
			sc := &s.subs[s.at(c, k)]
			if sc.leafAt != int32(d) || sc.depth != int32(d) || !s.displaceable(c, k) {
				if sc.leafAt == int32(d) {
					sc.leafAt = 0
				}
				b[j] = b[len(b)-1]
				b = b[:len(b)-1]
				s.leaves[k][d] = b
				s.leafN--
				continue
			}
			seen++
			if !s.rooted(c, k, v) {
				continue
			}
			if fn(c) {
				return
			}
		}
	}
}
