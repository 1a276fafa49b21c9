package tracker

// The K trees of a Swarm: each viewer's upstream link per substream, each
// peer's downstream links, and depths kept exact as subtrees move.

// sub is one peer's link on one substream.
type sub struct {
	up     int32 // upstream peer, none when unassigned (and for origins)
	pos    int32 // index in the upstream's down list
	depth  int32 // origins 0; else up's depth + 1 (last known while unassigned)
	leafAt int32 // the depth at which the leaf index last entered it (0: none)
	since  int64 // unix ns: when the link to up was made
}

// downLink is one link a peer serves: downstream peer and substream.
type downLink struct {
	peer int32
	sub  int32
}

// at is the index in s.subs of peer i's substream k.
func (s *Swarm) at(i int32, k int) int { return int(i)*s.k + k }

// link makes u v's upstream on k; v must have none there.
func (s *Swarm) link(v int32, k int, u int32) {
	pu := &s.peers[u]
	sv := &s.subs[s.at(v, k)]
	sv.up, sv.pos, sv.since = u, int32(len(pu.down)), s.now.UnixNano()
	pu.down = append(pu.down, downLink{v, int32(k)})
	pu.used++
	if pu.isOrigin() {
		s.stats.OriginLinks++
	} else {
		s.stats.PeerLinks++
		g := &s.groups[pu.grp]
		if g.used++; g.used == g.allow {
			s.indexGroup(pu.grp) // the group just filled
		} else {
			s.index(u)
		}
	}
	s.stats.Unassigned--
	if delta := s.subs[s.at(u, k)].depth + 1 - sv.depth; delta != 0 {
		s.shift(v, k, delta) // enters the subtree's leaves, v's among them
	} else {
		s.enterLeaf(v, k)
	}
}

// unlink removes v's upstream link on k and returns the old upstream.
func (s *Swarm) unlink(v int32, k int) int32 {
	sv := &s.subs[s.at(v, k)]
	u := sv.up
	if u == none {
		return none
	}
	pu := &s.peers[u]
	last := len(pu.down) - 1
	moved := pu.down[last]
	pu.down[sv.pos] = moved
	s.subs[s.at(moved.peer, int(moved.sub))].pos = sv.pos
	pu.down = pu.down[:last]
	pu.used--
	sv.up, sv.pos = none, none
	if pu.isOrigin() {
		s.stats.OriginLinks--
	} else {
		s.stats.PeerLinks--
		g := &s.groups[pu.grp]
		if g.used--; g.used+1 == g.allow {
			s.indexGroup(pu.grp) // the group has room again
		} else {
			s.index(u)
		}
	}
	s.stats.Unassigned++
	if !pu.isOrigin() {
		s.enterLeaf(u, k) // it may serve nothing on k now
	}
	return u
}

// detachAll unlinks every downstream of i and returns them (in s.orph).
func (s *Swarm) detachAll(i int32) []downLink {
	s.orph = append(s.orph[:0], s.peers[i].down...)
	for _, d := range s.orph {
		s.unlink(d.peer, int(d.sub))
	}
	return s.orph
}

// shift adds delta to the depth of v and its whole subtree on k, and
// enters the subtree's leaves in the leaf index at their new depth.
func (s *Swarm) shift(v int32, k int, delta int32) {
	st := append(s.stack[:0], v)
	for len(st) > 0 {
		x := st[len(st)-1]
		st = st[:len(st)-1]
		s.subs[s.at(x, k)].depth += delta
		leaf := true
		for _, d := range s.peers[x].down {
			if int(d.sub) == k {
				st = append(st, d.peer)
				leaf = false
			}
		}
		if leaf {
			s.enterLeaf(x, k)
		}
	}
	s.stack = st
}

// height returns how many levels v's subtree on k has below v.
func (s *Swarm) height(v int32, k int) int32 {
	dv := s.subs[s.at(v, k)].depth
	var h int32
	st := append(s.stack[:0], v)
	for len(st) > 0 {
		x := st[len(st)-1]
		st = st[:len(st)-1]
		h = max(h, s.subs[s.at(x, k)].depth-dv)
		for _, d := range s.peers[x].down {
			if int(d.sub) == k {
				st = append(st, d.peer)
			}
		}
	}
	s.stack = st
	return h
}

func (s *Swarm) hasDown(v int32, k int) bool {
	for _, d := range s.peers[v].down {
		if int(d.sub) == k {
			return true
		}
	}
	return false
}
