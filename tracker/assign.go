package tracker

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// Assignment: finding upstreams for orphans and waiting substreams (pick,
// with the distinct-upstreams rule, the prefix and probation rules and the
// origins' reserve), and the moves Rebalance and drain make (demote,
// swapIn).

// reassign finds new upstreams for orphaned (peer, substream) pairs, whose
// upstream links were already removed. Orphans that may serve more go
// first, so that relays take the shallow slots just freed. An orphan that
// relays to a subtree there takes a shallow leaf's place when no free slot
// is as shallow (displace), so that its subtree does not sink with it; the
// leaves it displaces are placed last, each alone.
func (s *Swarm) reassign(now time.Time, orphans []downLink, why Reason, prev protocol.PeerID, exclude int32, extras []int32) []Link {
	if len(orphans) == 0 {
		return nil
	}
	slices.SortFunc(orphans, func(a, b downLink) int {
		return cmp.Or(
			cmp.Compare(s.capOf(b.peer), s.capOf(a.peer)),
			cmp.Compare(a.peer, b.peer),
			cmp.Compare(a.sub, b.sub))
	})
	links := make([]Link, 0, len(orphans))
	var moved []Link
	var bumped []bump
	for j, o := range orphans {
		if j == 0 || orphans[j-1].peer != o.peer {
			s.gather(now, o.peer, extras)
			s.relaxed = false
		}
		k := int(o.sub)
		l := Link{Peer: s.peers[o.peer].id, Substream: k, Prev: prev, Reason: why}
		if u, m := s.insert(o.peer, k, exclude); u != none {
			l.Upstream = s.peers[u].id
			moved = append(moved, m)
		} else {
			u := s.pick(now, o.peer, k, exclude, true)
			if w, c := s.displace(o.peer, k, exclude, s.depthUnder(u, k), none); c != none {
				s.unlink(c, k)
				s.link(o.peer, k, w)
				l.Upstream = s.peers[w].id
				bumped = append(bumped, bump{c: c, k: int32(k), from: w})
			} else if u != none {
				s.link(o.peer, k, u)
				l.Upstream = s.peers[u].id
			} else {
				s.pending = append(s.pending, pend(o))
			}
		}
		links = append(links, l)
		if j == len(orphans)-1 || orphans[j+1].peer != o.peer {
			s.settle(o.peer)
		}
	}
	links = append(links, moved...)
	for _, b := range bumped {
		if l := s.rehome(now, b); l.Upstream != l.Prev {
			links = append(links, l)
		}
	}
	return links
}

// bump is a leaf c displaced on substream k from upstream from.
type bump struct {
	c, k, from int32
}

// rehome gives a displaced leaf a new upstream on its substream (or has it
// wait for one, over HTTP) and returns its link. That may be the upstream
// it was displaced from (an origin with slots the displacing relay could
// not take): the link then says so, Upstream = Prev, and is not sent.
func (s *Swarm) rehome(now time.Time, b bump) Link {
	k := int(b.k)
	l := Link{Peer: s.peers[b.c].id, Substream: k, Prev: s.peers[b.from].id, Reason: ReasonRebalance}
	s.gather(now, b.c, nil)
	s.relaxed = false
	if u := s.pick(now, b.c, k, none, true); u != none {
		s.link(b.c, k, u)
		l.Upstream = s.peers[u].id
	} else {
		s.pending = append(s.pending, pend{peer: b.c, sub: b.k})
	}
	// Losing an upstream may leave c out of the distinct-upstreams bounds
	// whatever it picks: flagged, as insert flags the leaf it moves.
	s.relaxed = true
	s.settle(b.c)
	return l
}

// depthUnder is the depth a viewer would have on k under u: u's depth + 1,
// or MaxInt32 when u is none.
func (s *Swarm) depthUnder(u int32, k int) int32 {
	if u == none {
		return math.MaxInt32
	}
	if s.peers[u].isOrigin() {
		return 1
	}
	return s.subs[s.at(u, k)].depth + 1
}

// shedIdx is the index in i's down list of the link i drops first when it
// must serve fewer: its newest link to a leaf there (one relaying nothing
// on that substream), else its newest. A relay dropped takes its subtree
// with it to wherever it is placed next; a leaf moves alone.
func (s *Swarm) shedIdx(i int32) int {
	down := s.peers[i].down
	for j := len(down) - 1; j >= 0; j-- {
		if !s.hasDown(down[j].peer, int(down[j].sub)) {
			return j
		}
	}
	return len(down) - 1
}

// drain retries a bounded number of substreams among the first upTo that
// wait for an upstream (so that one call gives an orphan one link).
func (s *Swarm) drain(now time.Time, upTo int) []Link {
	if upTo == 0 {
		return nil
	}
	var links []Link
	keep := s.pending[:0]
	for j, e := range s.pending {
		if j >= min(drainBatch, upTo) {
			keep = append(keep, s.pending[j:]...)
			break
		}
		p := &s.peers[e.peer]
		if !p.alive() || p.isOrigin() || s.subs[s.at(e.peer, int(e.sub))].up != none {
			continue // stale: left, or already assigned
		}
		s.gather(now, e.peer, nil)
		s.relaxed = false
		if u, m := s.insert(e.peer, int(e.sub), none); u != none {
			links = append(links, Link{Peer: p.id, Substream: int(e.sub), Upstream: s.peers[u].id, Reason: ReasonPending}, m)
			s.settle(e.peer)
			continue
		}
		u := s.pick(now, e.peer, int(e.sub), none, true)
		if u == none {
			if ls := s.swapIn(e.peer, int(e.sub)); ls != nil {
				links = append(links, ls...)
				continue
			}
			keep = append(keep, e)
			continue
		}
		s.link(e.peer, int(e.sub), u)
		s.settle(e.peer)
		links = append(links, Link{Peer: p.id, Substream: int(e.sub), Upstream: s.peers[u].id, Reason: ReasonPending})
	}
	clear(s.pending[len(keep):])
	s.pending = keep
	return links
}

// pick chooses v's upstream on substream k from s.cands and the origins;
// none when even the origins are full. exclude is never chosen. When no
// sampled peer fits, the sample is widened once before an origin is used as
// last resort or the distinct-upstreams rule is relaxed.
func (s *Swarm) pick(now time.Time, v int32, k int, exclude int32, lastResort bool) int32 {
	for pass := range 2 {
		strict := pass == 0
		b, tier := s.pickPeer(v, k, exclude, strict)
		if b == none && !s.wide {
			s.widen(now, v)
			b, tier = s.pickPeer(v, k, exclude, strict)
		}
		s.relaxed = s.relaxed || !strict
		if b != none {
			useOrigin := tier > 0 || (s.relay(v) && s.subs[s.at(b, k)].depth >= relayDepth)
			if useOrigin {
				if o := s.originStrict(false, v, k, exclude, strict); o != none {
					return o
				}
			}
			return b
		}
		if lastResort {
			if o := s.originStrict(true, v, k, exclude, strict); o != none {
				return o
			}
		}
	}
	return none
}

// settle updates v's undiverse flag after its picks: set when a pick had to
// relax the rule and the count is out of bounds, cleared once it is back in.
func (s *Swarm) settle(v int32) {
	p := &s.peers[v]
	was := p.flags&flagUndiverse != 0
	if !was && !s.relaxed {
		return
	}
	n, open := s.distinct(v, -1, none), 0
	for k := range s.k {
		if s.subs[s.at(v, k)].up == none {
			open++
		}
	}
	out := n > s.maxUp || n+open < s.minUp
	switch {
	case out && !was && s.relaxed:
		p.flags |= flagUndiverse
		s.stats.Undiverse++
	case !out && was:
		p.flags &^= flagUndiverse
		s.stats.Undiverse--
	}
	s.relaxed = false
}

// diversity returns the rule for v's upstream on k: while v has fewer than
// MinUpstreams distinct upstreams on its other substreams it must be a new
// one (mustNew); once it has MaxUpstreams, one of those (mustOld). v's
// current upstreams are left in s.distS.
func (s *Swarm) diversity(v int32, k int) (mustNew, mustOld bool) {
	set := s.distS[:0]
	for j := range s.k {
		if u := s.subs[s.at(v, j)].up; j != k && u != none && !slices.Contains(set, u) {
			set = append(set, u)
		}
	}
	s.distS = set
	return len(set) < s.minUp, len(set) >= s.maxUp
}

func (s *Swarm) allowed(u int32, mustNew, mustOld bool) bool {
	if !mustNew && !mustOld {
		return true
	}
	in := slices.Contains(s.distS, u)
	return !(mustNew && in) && !(mustOld && !in)
}

// others leaves in s.upS v's upstreams on its substreams but k (peers and
// origins, each once).
func (s *Swarm) others(v int32, k int) {
	set := s.upS[:0]
	for j := range s.k {
		if u := s.subs[s.at(v, j)].up; j != k && u != none && !slices.Contains(set, u) {
			set = append(set, u)
		}
	}
	s.upS = set
}

// fits reports whether u may be v's upstream beside v's other upstreams
// (s.upS, from others): never a second upstream in one IP prefix. This
// holds in every pass: the origin, or HTTP, is always the alternative.
// Peers of trusted networks (SwarmParams.Trusted) are exempt.
func (s *Swarm) fits(u int32) bool {
	pu := &s.peers[u]
	if pu.isOrigin() || pu.prefix == 0 || s.groups[pu.grp].trusted {
		return true
	}
	for _, w := range s.upS {
		if pw := &s.peers[w]; w != u && pw.prefix == pu.prefix && !pw.isOrigin() && !s.groups[pw.grp].trusted {
			return false
		}
	}
	return true
}

// serves reports whether u may serve substream k: a peer whose address is
// not proven yet serves one substream only, its home (setHome). So it serves
// any viewer one substream at most, and while a flash crowd is all on
// probation each of its few slots branches one substream's tree, rather
// than every tree growing as a chain (SplitStream's interior-disjoint
// trees). It holds in every pass, like fits. Proven peers prefer their home
// too (pickPeer ranks it), and serve other trees when the home's relays
// cannot, or when a viewer's upstreams must be diverse.
func (s *Swarm) serves(u int32, k int) bool {
	return s.proven(u) || int(s.peers[u].home) == k
}

// setHome gives viewer p the substream it will relay: the one whose homed
// viewers declare the fewest slots, so that the trees' capacity stays even.
func (s *Swarm) setHome(p *peer) {
	if s.homeSlots == nil {
		s.homeSlots = make([]int64, s.k)
	}
	h := 0
	for k := 1; k < s.k; k++ {
		if s.homeSlots[k] < s.homeSlots[h] {
			h = k
		}
	}
	p.home = int32(h)
	s.homeSlots[h] += int64(p.slots)
}

// asnTaken reports whether another of v's upstreams (s.upS) is in u's ASN.
func (s *Swarm) asnTaken(u int32) bool {
	a := s.peers[u].asn
	if a == 0 {
		return false
	}
	for _, w := range s.upS {
		if w != u && s.peers[w].asn == a {
			return true
		}
	}
	return false
}

// pickPeer returns the best peer candidate for v on k and its tier (0 good,
// 1 degraded or much deeper than the best), or none.
func (s *Swarm) pickPeer(v int32, k int, exclude int32, strict bool) (int32, int8) {
	mustNew, mustOld := false, false
	if strict {
		mustNew, mustOld = s.diversity(v, k)
	}
	s.others(v, k)
	dv := s.subs[s.at(v, k)].depth
	hasSub := s.hasDown(v, k)
	var h int32
	if hasSub && s.p.MaxDepth > 0 {
		h = s.height(v, k)
	}
	minD := int32(math.MaxInt32)
	for j := range s.cands {
		c := &s.cands[j]
		c.ok = false
		if d, ok := s.eligible(v, c.i, k, dv, h, hasSub, exclude); ok && s.allowed(c.i, mustNew, mustOld) && s.fits(c.i) && s.serves(c.i, k) {
			minD = min(minD, d)
			c.ok, c.depth = true, d
		}
	}
	if minD == math.MaxInt32 {
		return none, 0
	}
	var best *cand
	var bestD, bestFree int32
	var bestTier, bestASN, bestAway int8
	for j := range s.cands {
		c := &s.cands[j]
		if !c.ok {
			continue
		}
		d := c.depth
		var tier, asn int8
		if c.bad || d > minD+depthSlack {
			tier = 1
		}
		if s.asnTaken(c.i) {
			asn = 1
		}
		free := s.free(c.i)
		away := int8(0) // k is not c's home tree
		if int(s.peers[c.i].home) != k {
			away = 1
		}
		if best == nil || cmp.Or(
			cmp.Compare(tier, bestTier),
			cmp.Compare(c.prox, best.prox),
			cmp.Compare(away, bestAway),
			cmp.Compare(asn, bestASN),
			cmp.Compare(c.net, best.net),
			cmp.Compare(d, bestD),
			cmp.Compare(c.health, best.health),
			cmp.Compare(c.rel, best.rel),
			cmp.Compare(bestFree, free),
		) < 0 {
			best, bestD, bestFree, bestTier, bestASN, bestAway = c, d, free, tier, asn, away
		}
	}
	return best.i, bestTier
}

// eligible reports whether u may serve v on k, and u's depth there.
func (s *Swarm) eligible(v, u int32, k int, dv, h int32, hasSub bool, exclude int32) (int32, bool) {
	if u == v || u == exclude {
		return 0, false
	}
	pu := &s.peers[u]
	if !pu.alive() || s.free(u) == 0 {
		return 0, false
	}
	su := s.subs[s.at(u, k)]
	if su.up == none { // u does not receive k itself
		return 0, false
	}
	d := su.depth
	if s.p.MaxDepth > 0 && int(d+1+h) > s.p.MaxDepth {
		return 0, false
	}
	if hasSub && d > dv && s.under(u, v, k, dv) {
		return 0, false // u is in v's subtree: a cycle
	}
	return d, true
}

// under reports whether u is in v's subtree on k (v's depth is dv). Depths
// strictly grow down the tree, so the walk stops at v's level.
func (s *Swarm) under(u, v int32, k int, dv int32) bool {
	x := u
	for s.subs[s.at(x, k)].depth > dv {
		x = s.subs[s.at(x, k)].up
		if x == none {
			return false
		}
	}
	return x == v
}

// origin returns the origin with the most free slots usable for v on k, or
// none. Only last-resort use may take an origin's reserved slots.
func (s *Swarm) origin(lastResort bool, v int32, k int) int32 {
	return s.originStrict(lastResort, v, k, none, false)
}

func (s *Swarm) originStrict(lastResort bool, v int32, k int, exclude int32, strict bool) int32 {
	mustNew, mustOld := false, false
	if strict {
		mustNew, mustOld = s.diversity(v, k)
	}
	best, bestFree := none, int32(0)
	for _, o := range s.origins {
		po := &s.peers[o]
		free := po.slots - po.used
		if !lastResort {
			free -= s.reserved(po)
		}
		// exclude does not bind the last resort: a viewer that complained
		// about its origin gets it again if nothing else is left.
		if (o != exclude || lastResort) && free > bestFree && s.allowed(o, mustNew, mustOld) {
			best, bestFree = o, free
		}
	}
	return best
}

func (s *Swarm) reserved(po *peer) int32 {
	return int32(math.Ceil(s.p.Reserve * float64(po.slots)))
}

// relay reports whether v may serve enough links to belong near the root
// (by its address's allowance, so never while on probation).
func (s *Swarm) relay(v int32) bool {
	return !s.peers[v].isOrigin() && int(s.capOf(v)) >= 2*s.k
}

// demote frees an origin slot for h's substream k by moving one of the
// origins' leaf viewers with few slots to a healthy peer upstream.
func (s *Swarm) demote(now time.Time, h int32, k int) (int32, Link) {
	for _, o := range s.origins {
		po := &s.peers[o]
		for range 8 {
			if len(po.down) == 0 {
				break
			}
			d := po.down[s.rng.IntN(len(po.down))]
			c := d.peer
			if c == h || s.relay(c) || s.hasDown(c, int(d.sub)) || !s.diverseAfter(h, k, o) {
				continue
			}
			s.gather(now, c, nil)
			u, tier := s.pickPeer(c, int(d.sub), o, true)
			if u == none || tier > 0 {
				continue
			}
			s.unlink(c, int(d.sub))
			s.link(c, int(d.sub), u)
			s.relaxed = false
			s.settle(c)
			return o, Link{Peer: s.peers[c].id, Substream: int(d.sub), Upstream: s.peers[u].id, Prev: po.id, Reason: ReasonRebalance}
		}
	}
	return none, Link{}
}

// lift moves relay h's substream k under the best peer candidate, when
// that is a good one (tier 0) at least two levels shallower than h's
// upstream there; h keeps its subtree.
func (s *Swarm) lift(now time.Time, h int32, k int) (Link, bool) {
	sh := s.subs[s.at(h, k)]
	s.gather(now, h, nil)
	u, tier := s.pickPeer(h, k, sh.up, true)
	if u == none || tier > 0 || s.subs[s.at(u, k)].depth+2 > sh.depth-1 {
		return Link{}, false
	}
	prev := s.unlink(h, k)
	s.link(h, k, u)
	s.relaxed = false
	s.settle(h)
	return Link{Peer: s.peers[h].id, Substream: k, Upstream: s.peers[u].id, Prev: s.peers[prev].id, Reason: ReasonRebalance}, true
}

// swapIn gives v — waiting for an upstream on k while the origins are full,
// or a relay sitting deep — the origin slot of a leaf viewer c that may
// serve fewer links than v and relays nothing on k, and puts c under v
// (when the prefix and probation rules let v serve c on k). The origin
// still sends one copy of k, and now v can relay it: otherwise early
// viewers with little or no relay budget hold the origin's slots and the
// relays behind them sit deep, or never receive anything to relay. Streams
// with a depth cap are left alone. It returns the links made, or nil.
func (s *Swarm) swapIn(v int32, k int) []Link {
	pv := &s.peers[v]
	if s.free(v) == 0 || s.p.MaxDepth > 0 {
		return nil
	}
	capV := s.capOf(v)
	for _, o := range s.origins {
		po := &s.peers[o]
		for j := 0; j < len(po.down) && j < 64; j++ {
			d := po.down[j]
			c := d.peer
			if int(d.sub) != k || c == v || s.capOf(c) >= capV || s.hasDown(c, k) {
				continue
			}
			if s.others(c, k); !s.fits(v) || !s.serves(v, k) {
				continue
			}
			// Too few peers may leave either with fewer distinct upstreams
			// than the rule wants: the move is worth it, and flagged
			// (settle flags whichever ends out of bounds).
			s.unlink(c, k)
			prev, why := s.unlink(v, k), ReasonRebalance
			if prev == none {
				why = ReasonPending
			}
			s.link(v, k, o)
			s.link(c, k, v)
			s.relaxed = true
			s.settle(v)
			s.relaxed = true
			s.settle(c)
			lv := Link{Peer: pv.id, Substream: k, Upstream: po.id, Reason: why}
			if prev != none {
				lv.Prev = s.peers[prev].id
			}
			return []Link{lv, {Peer: s.peers[c].id, Substream: k, Upstream: pv.id, Prev: po.id, Reason: ReasonRebalance}}
		}
	}
	return nil
}

// diverseAfter reports whether moving v's substream k to u keeps v's count
// of distinct upstreams within bounds (or no worse than now).
func (s *Swarm) diverseAfter(v int32, k int, u int32) bool {
	before, after := s.distinct(v, -1, none), s.distinct(v, k, u)
	lo, hi := min(s.minUp, before), max(s.maxUp, before)
	return after >= lo && after <= hi
}

// distinct counts v's distinct upstreams, with substream k (if ≥ 0) set to u.
func (s *Swarm) distinct(v int32, k int, u int32) int {
	set := s.distS[:0]
	for j := range s.k {
		w := s.subs[s.at(v, j)].up
		if j == k {
			w = u
		}
		if w != none && !slices.Contains(set, w) {
			set = append(set, w)
		}
	}
	s.distS = set
	return len(set)
}

// insertVisits bounds the leaves insert and displace consider in one call.
const insertVisits = 512

// placeRules are where relay v may go on a tree, for insert and displace:
// its upstreams must stay diverse (mustNew, mustOld, and vset, its
// upstreams on its other substreams, kept apart from s.distS, which
// diverseAfter reuses for the leaf), and near peers come first: v goes
// only under an origin or a peer as near as its best sampled candidate
// (s.cands, gathered for v).
type placeRules struct {
	mustNew, mustOld bool
	vset             []int32
	near             int8
}

func (s *Swarm) rulesFor(v int32, k int) placeRules {
	r := placeRules{near: proxFar}
	r.mustNew, r.mustOld = s.diversity(v, k)
	s.vset = append(s.vset[:0], s.distS...)
	r.vset = s.vset
	for j := range s.cands {
		r.near = min(r.near, s.cands[j].prox)
	}
	return r
}

// takes reports whether w, the upstream of a leaf on k, may take v in the
// leaf's place under r: it is not exclude, is near enough, keeps v's
// upstreams diverse, and the prefix rule lets it serve v.
func (s *Swarm) takes(v, w int32, k int, exclude int32, r *placeRules) bool {
	pw := &s.peers[w]
	in := slices.Contains(r.vset, w)
	if w == exclude || !pw.isOrigin() && proximity(&s.peers[v], pw) > r.near || r.mustNew && in || r.mustOld && !in {
		return false
	}
	s.others(v, k)
	return s.fits(w)
}

// insert places relay v (unlinked on k, its home substream, with a free
// slot) as high in k's tree as a viewer that can never relay k sits: it
// takes that leaf c's place under c's upstream u, and c moves under v. A
// relay then branches the tree near its root, and leaves hang at its edge
// (capacity-ordered placement, as in mTreebone), instead of every newcomer
// hanging under the newest relays and the trees growing a level per
// generation of joins. The leaves come from the leaf index, shallowest
// first, at most insertVisits; a leaf is taken only where the prefix and
// diversity rules let u serve v and v serve c, where u is an origin or as
// near v as v's best sampled candidate, and where v is no farther from c
// than u was. v's candidates must be gathered. u is never exclude (the
// peer v just complained about, or the one that shed it). It returns v's
// new upstream and the link c was given, or none (v is then left to pick).
func (s *Swarm) insert(v int32, k int, exclude int32) (int32, Link) {
	pv := &s.peers[v]
	if pv.isOrigin() || int(pv.home) != k || s.free(v) == 0 || s.p.MaxDepth > 0 {
		return none, Link{}
	}
	r := s.rulesFor(v, k)
	var u, c int32 = none, none
	s.scanLeaves(k, v, 0, func(x int32) bool {
		w := s.subs[s.at(x, k)].up
		pw, px := &s.peers[w], &s.peers[x]
		if !s.takes(v, w, k, exclude, &r) {
			return false
		}
		// c goes only to an upstream no farther than the one it had.
		if !pw.isOrigin() && proximity(px, pv) > proximity(px, pw) {
			return false
		}
		if s.others(x, k); !s.fits(v) || !s.diverseAfter(x, k, v) {
			return false
		}
		u, c = w, x
		return true
	})
	if c == none {
		return none, Link{}
	}
	pc := &s.peers[c]
	s.unlink(c, k)
	s.link(v, k, u)
	s.link(c, k, v)
	relaxed := s.relaxed // v's own picks', for its settle
	s.relaxed = true
	s.settle(c)
	s.relaxed = relaxed
	return u, Link{Peer: pc.id, Substream: k, Upstream: pv.id, Prev: s.peers[u].id, Reason: ReasonRebalance}
}

// displace finds a place on k for v, which relays to a subtree there,
// shallower than than: the place of the shallowest leaf c (a viewer
// relaying nothing on k that can never relay k) under an upstream u that
// may serve v, by insert's index and rules, u not being exclude. With to
// set, c must be able to take v's place under to (a swap, for Rebalance).
// The caller moves c, and links v under u. Without it an orphaned relay
// takes the free slot of its best sampled candidate, and in a swarm whose
// slots are nearly all in use the free ones sit deep, under the newest
// viewers: its whole subtree sinks with it, the next reassignment sinks it
// further, and the trees grow into chains. v's candidates must be
// gathered. It returns u and c, or none, none.
func (s *Swarm) displace(v int32, k int, exclude, than, to int32) (int32, int32) {
	pv := &s.peers[v]
	if pv.isOrigin() || s.p.MaxDepth > 0 || than <= 1 || !s.hasDown(v, k) {
		return none, none
	}
	r := s.rulesFor(v, k)
	var u, c int32 = none, none
	s.scanLeaves(k, v, than, func(x int32) bool {
		w := s.subs[s.at(x, k)].up
		pw, px := &s.peers[w], &s.peers[x]
		if !s.serves(w, k) || !s.takes(v, w, k, exclude, &r) {
			return false
		}
		if to != none {
			if s.others(x, k); !s.fits(to) || !s.diverseAfter(x, k, to) ||
				!s.peers[to].isOrigin() && !pw.isOrigin() && proximity(px, &s.peers[to]) > proximity(px, pw) {
				return false
			}
		}
		u, c = w, x
		return true
	})
	return u, c
}

// raise lifts a viewer that relays its home substream to a subtree, has
// been in the swarm promoteAge and sits at least raiseDepth deep (sunk by
// reassignments), by swapping places with the
// shallowest leaf above it that displace finds: the viewer and its
// subtree rise, the leaf alone sinks. It returns the two links, or nil.
func (s *Swarm) raise(now time.Time, h int32) []Link {
	ph := &s.peers[h]
	k := int(ph.home)
	sh := s.subs[s.at(h, k)]
	if sh.up == none || sh.depth < raiseDepth || now.UnixNano()-ph.joined < int64(promoteAge) || !s.hasDown(h, k) || s.degraded(now, h) {
		return nil
	}
	s.gather(now, h, nil)
	u, c := s.displace(h, k, none, sh.depth, sh.up)
	if c == none {
		return nil
	}
	g := s.unlink(h, k)
	s.unlink(c, k)
	s.link(h, k, u)
	s.link(c, k, g)
	s.relaxed = true
	s.settle(h)
	s.relaxed = true
	s.settle(c)
	return []Link{
		{Peer: ph.id, Substream: k, Upstream: s.peers[u].id, Prev: s.peers[g].id, Reason: ReasonRebalance},
		{Peer: s.peers[c].id, Substream: k, Upstream: s.peers[g].id, Prev: s.peers[u].id, Reason: ReasonRebalance},
	}
}

// localize moves v's links whose upstream is farther than a candidate that
// could serve it instead (a better proximity class, in the good tier) to
// that candidate, when that does not sink v (a leaf may go one level
// deeper). Viewers join in the order they come, and while a region's relays
// have no free slot its viewers take another region's; nothing brought
// them back. It returns the links moved.
func (s *Swarm) localize(now time.Time, v int32) []Link {
	pv := &s.peers[v]
	var links []Link
	gathered := false
	for k := range s.k {
		sv := s.subs[s.at(v, k)]
		u := sv.up
		if u == none || s.peers[u].isOrigin() {
			continue
		}
		cur := proximity(pv, &s.peers[u])
		if cur <= proxRegion || cur == proxUnknown {
			continue // near already, or nothing to compare by
		}
		if !gathered {
			s.gather(now, v, nil)
			gathered = true
		}
		s.relaxed = false
		b, tier := s.pickPeer(v, k, u, true)
		if b == none || tier != 0 || proximity(pv, &s.peers[b]) >= cur {
			continue
		}
		slack := int32(0)
		if !s.hasDown(v, k) {
			slack = 1
		}
		if s.subs[s.at(b, k)].depth > s.subs[s.at(u, k)].depth+slack {
			continue
		}
		s.unlink(v, k)
		s.link(v, k, b)
		s.settle(v)
		links = append(links, Link{Peer: pv.id, Substream: k, Upstream: s.peers[b].id, Prev: s.peers[u].id, Reason: ReasonRebalance})
	}
	return links
}
