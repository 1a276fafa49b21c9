package tracker

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// Trust: what a viewer may serve is earned by measurement, not claimed.
// Viewers of one address (an IPv6 /64) form a group that shares one
// allowance of relay slots; a group starts on probation with a few slots,
// and then its allowance follows what its downstreams say they received
// from its members (protocol.Report.Received).

// group is the viewers of one address, or one viewer whose address is not
// known: they share one allowance of relay slots.
type group struct {
	addr    netip.Addr // key in Swarm.addrs; invalid for a viewer alone
	members []int32    // in the order they joined
	used    int32      // links the members serve
	decl    int32      // the members' declared slots, summed
	top     int32      // the most slots one member declares
	allow   int32      // slots the group has earned
	counted int32      // min(decl, allow): its share of Stats.PeerSlots
	born    int64      // unix ns: its probation began
	evalAt  int64      // unix ns: the measurement window began
	retryAt int64      // unix ns: a failed group gets probation again (0: not failed)
	leftAt  int64      // unix ns: its last member left (lingering)
	got     float64    // bytes its downstreams received from it in the window, as credited
	need    float64    // ... and what its links needed
	ratio   float32    // got/need at the last measurement; -1 before any
	strikes uint8      // failed measurements in a row
	// accusers are the groups whose viewers caught this one in a verified
	// lie (convict), with when: the newest convictBy.
	accusers [convictBy]accusal
	proven   bool // measured keeping up since its last failure
	trusted  bool // in SwarmParams.Trusted: believed, never measured
}

// Measurement and allowance constants.
const (
	// evalEvery is the shortest measurement window: over a report
	// period (2 s), so that most downstreams have reported in it, and
	// short, so that a flash crowd's early viewers are trusted with
	// more than their probation slots within seconds.
	evalEvery = 2500 * time.Millisecond
	// linkGrace: a new link is not expected to deliver in its first
	// moments (the downstream dials, subscribes and catches up).
	linkGrace = 1500 * time.Millisecond
	// keepUp is the share of what its links need that a group must
	// deliver to keep its allowance and grow it; below badRatio, after
	// probation, it loses what it does not deliver and its floor.
	keepUp   = 0.75
	badRatio = 0.4
	// underRatio: a candidate whose last measurement is below it is
	// ranked as under-delivering (health 2).
	underRatio = 0.7
	// creditCap: a receipt is credited up to this many times what the
	// links it covers needed, so that one downstream's surplus (a
	// colluder's claim, or a burst) cannot hide another's shortfall;
	// minNeedShare: a link needs at least this share of the slot rate,
	// even when its downstream consumed less (a downstream starved by its
	// upstreams still judges them).
	creditCap    = 1
	minNeedShare = 0.25
	// maxRetryShift bounds the back-off of a failed group's retries:
	// Probation·2^strikes, at most 32 Probations.
	maxRetryShift = 5
	// groupLinger is how long an address's group (allowance, failures)
	// outlives its last viewer, so that leaving and joining again buys
	// no fresh probation; at most maxLingering groups linger.
	groupLinger  = 10 * time.Minute
	maxLingering = 1 << 16
)

// Convictions: a group fails at once when viewers of convictBy other
// groups, each fed by one of its members, caught it in a verified lie (a
// chunk that did not match its signed entry, a batch whose signature
// failed) within convictWindow. One accuser is not enough: a viewer could
// lie about its upstream; it can only accuse a peer the tracker linked it
// to, and two must agree.
const (
	convictBy     = 2
	convictWindow = time.Minute
)

type accusal struct {
	grp int32
	at  int64 // unix ns; 0: none
}

// convict records that from caught its upstream about in a verified lie;
// when convictBy groups have within convictWindow, about's group fails as
// a failed measurement fails it, at once: no allowance, and its probation
// slots back only after Probation·2^(failures−1).
func (s *Swarm) convict(now time.Time, from, about protocol.PeerID) []Link {
	fi, ai := s.ids[from], s.ids[about]
	if s.peers[ai].isOrigin() {
		return nil
	}
	fg, gi := s.peers[fi].grp, s.peers[ai].grp
	g := &s.groups[gi]
	if fg == gi || g.trusted {
		return nil
	}
	nowNs := now.UnixNano()
	free, agree := -1, 1 // from agrees with itself
	for j, a := range g.accusers {
		switch {
		case a.at == 0 || nowNs-a.at > int64(convictWindow):
			g.accusers[j], free = accusal{}, j
		case a.grp == fg:
			g.accusers[j].at = nowNs // the same accuser again
			return nil
		default:
			agree++
		}
	}
	if agree < convictBy {
		g.accusers[free] = accusal{grp: fg, at: nowNs} // agree < convictBy: a slot is free
		return nil
	}
	g.accusers = [convictBy]accusal{}
	g.proven = false
	g.strikes = min(g.strikes+1, maxRetryShift+1)
	g.retryAt = nowNs + int64(s.p.Probation)<<(g.strikes-1)
	g.got, g.need, g.evalAt = 0, 0, nowNs
	return s.setAllow(now, gi, 0)
}

// addrKey is the address peers are grouped by: the address itself for
// IPv4, its /64 for IPv6; invalid when unknown.
func addrKey(a netip.Addr) netip.Addr {
	if !a.IsValid() {
		return a
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}

// probationSlots is what a group gets before it is measured.
func (s *Swarm) probationSlots() int32 { return int32(s.p.ProbationSlots) }

// capOf is how many links viewer (or origin) i may serve: its own slots,
// within its group's allowance.
func (s *Swarm) capOf(i int32) int32 {
	p := &s.peers[i]
	if p.isOrigin() {
		return p.slots
	}
	return min(p.slots, s.groups[p.grp].allow)
}

// free is how many more links i may take now.
func (s *Swarm) free(i int32) int32 {
	p := &s.peers[i]
	f := p.slots - p.used
	if !p.isOrigin() {
		g := &s.groups[p.grp]
		f = min(f, g.allow-g.used)
	}
	return max(f, 0)
}

// proven reports whether i's group has been measured keeping up.
func (s *Swarm) proven(i int32) bool {
	p := &s.peers[i]
	return p.isOrigin() || s.groups[p.grp].proven
}

// enter puts viewer i (slots set) into the group of its address, a
// lingering one or a new one on probation.
func (s *Swarm) enter(now time.Time, i int32, addr netip.Addr) {
	s.sweepGroups(now)
	key := addrKey(addr)
	gi := none
	if key.IsValid() {
		if g, ok := s.addrs[key]; ok {
			gi = g
		}
	}
	if gi == none {
		gi = s.newGroup(now, key)
	}
	g := &s.groups[gi]
	p := &s.peers[i]
	p.grp = gi
	g.members = append(g.members, i)
	g.leftAt = 0
	g.decl += p.slots
	g.top = max(g.top, p.slots)
	s.restat(gi)
}

func (s *Swarm) newGroup(now time.Time, key netip.Addr) int32 {
	var gi int32
	if n := len(s.freeGroups); n > 0 {
		gi = s.freeGroups[n-1]
		s.freeGroups = s.freeGroups[:n-1]
	} else {
		gi = int32(len(s.groups))
		s.groups = append(s.groups, group{})
	}
	s.groups[gi] = group{
		addr: key, members: s.groups[gi].members[:0], allow: s.probationSlots(),
		born: now.UnixNano(), evalAt: now.UnixNano(), ratio: -1,
	}
	if key.IsValid() {
		s.addrs[key] = gi
		for _, pr := range s.p.Trusted {
			if pr.Contains(key) {
				g := &s.groups[gi]
				g.trusted, g.proven, g.allow = true, true, maxSlots
				break
			}
		}
	}
	return gi
}

// exit takes viewer i, whose links are all gone, out of its group. A
// group with an address lingers when empty; one without is freed.
func (s *Swarm) exit(now time.Time, i int32) {
	p := &s.peers[i]
	gi := p.grp
	g := &s.groups[gi]
	if j := slices.Index(g.members, i); j >= 0 {
		g.members = slices.Delete(g.members, j, j+1)
	}
	g.decl -= p.slots
	s.retop(gi)
	s.restat(gi)
	p.grp = none
	if len(g.members) > 0 {
		return
	}
	if !g.addr.IsValid() {
		s.freeGroup(gi)
		return
	}
	g.leftAt = now.UnixNano()
	s.lingering = append(s.lingering, linger{gi, g.leftAt})
	if len(s.lingering)-s.lingerHd > maxLingering {
		s.sweepGroups(time.Unix(0, math.MaxInt64))
	}
}

type linger struct {
	g  int32
	at int64
}

// sweepGroups forgets the empty groups that lingered long enough (all of
// them but maxLingering when the list is over-full).
func (s *Swarm) sweepGroups(now time.Time) {
	for s.lingerHd < len(s.lingering) {
		l := s.lingering[s.lingerHd]
		over := len(s.lingering)-s.lingerHd > maxLingering
		if !over && now.UnixNano()-l.at < int64(groupLinger) {
			break
		}
		s.lingerHd++
		if g := &s.groups[l.g]; len(g.members) == 0 && g.leftAt == l.at && g.addr.IsValid() {
			delete(s.addrs, g.addr)
			s.freeGroup(l.g)
		}
	}
	if s.lingerHd > 64 && s.lingerHd*2 > len(s.lingering) {
		n := copy(s.lingering, s.lingering[s.lingerHd:])
		s.lingering = s.lingering[:n]
		s.lingerHd = 0
	}
}

func (s *Swarm) freeGroup(gi int32) {
	g := &s.groups[gi]
	g.addr, g.leftAt = netip.Addr{}, 0
	g.members = g.members[:0]
	s.freeGroups = append(s.freeGroups, gi)
}

// retop recomputes the most slots one member of gi declares.
func (s *Swarm) retop(gi int32) {
	g := &s.groups[gi]
	g.top = 0
	for _, m := range g.members {
		g.top = max(g.top, s.peers[m].slots)
	}
}

// restat brings gi's share of Stats.PeerSlots up to date.
func (s *Swarm) restat(gi int32) {
	g := &s.groups[gi]
	c := max(min(g.decl, g.allow), 0)
	s.stats.PeerSlots += int(c - g.counted)
	g.counted = c
}

// indexGroup re-indexes every member of gi (its fullness or allowance
// changed).
func (s *Swarm) indexGroup(gi int32) {
	for _, m := range s.groups[gi].members {
		s.index(m)
	}
}

// credit takes the receipts of viewer d's report: each upstream viewer of
// d is credited with what d says it received from it, up to creditCap
// times what d's links from it needed since d's previous report, and that
// need is recorded. Receipts from peers that are not d's upstreams count
// for nothing. The groups credited are left in s.touched.
func (s *Swarm) credit(now time.Time, d int32, r *protocol.Report) {
	pd := &s.peers[d]
	since := pd.joined
	if pd.flags&flagReported != 0 {
		since = pd.repAt
	}
	// What d consumed per substream, from its cumulative counters: a
	// viewer of a lighter rendition needs less of each link.
	total := r.BytesFromPeers + r.BytesFromOrigin
	known := pd.flags&flagRx != 0 && total >= pd.rx
	consumed := float64(total - pd.rx)
	pd.rx = total
	pd.flags |= flagRx
	nowNs := now.UnixNano()
	span := min(nowNs-since, int64(reportTTL))
	if span <= 0 {
		return
	}
	slotBps := s.slotKbps * 1000 / 8
	needBps := slotBps
	if known {
		perSub := consumed / float64(s.k) / (float64(span) / 1e9)
		needBps = min(max(perSub, minNeedShare*slotBps), slotBps)
	}
	start := nowNs - span
	for k := range s.k {
		u := s.subs[s.at(d, k)].up
		if u == none || s.peers[u].isOrigin() {
			continue
		}
		seen := false
		for j := range k {
			if s.subs[s.at(d, j)].up == u {
				seen = true
				break
			}
		}
		if seen {
			continue // counted with u's first substream
		}
		var need float64
		for j := k; j < s.k; j++ {
			sb := s.subs[s.at(d, j)]
			if sb.up != u {
				continue
			}
			from := max(sb.since+int64(linkGrace), start)
			if from < nowNs {
				need += needBps * float64(nowNs-from) / 1e9
			}
		}
		var bytes uint64
		for _, rc := range r.Received {
			if rc.Peer == s.peers[u].id {
				bytes = rc.Bytes
				break
			}
		}
		gi := s.peers[u].grp
		g := &s.groups[gi]
		if g.trusted {
			continue // believed, not measured
		}
		g.got += min(float64(bytes), creditCap*need)
		g.need += need
		if !slices.Contains(s.touched, gi) {
			s.touched = append(s.touched, gi)
		}
	}
}

// measure evaluates the groups credited by the last report whose window is
// long enough, and returns the links that changed.
func (s *Swarm) measure(now time.Time) []Link {
	var links []Link
	minNeed := s.slotKbps * 1000 / 8 // a second of one link
	for _, gi := range s.touched {
		g := &s.groups[gi]
		if len(g.members) == 0 || g.trusted || now.UnixNano()-g.evalAt < int64(evalEvery) || g.need < minNeed {
			continue
		}
		links = append(links, s.evaluate(now, gi)...)
	}
	s.touched = s.touched[:0]
	return links
}

// evaluate sets gi's allowance from its measurement window and opens the
// next one:
//   - delivering ≥ keepUp of what its links need, it is proven, and when
//     its links (nearly) fill its allowance, the allowance grows by
//     max(K, allowance) — it doubles — up to its members' largest
//     declared slots;
//   - below that, it shrinks to the links its delivery keeps up with, but
//     not below the probation slots while it delivers ≥ badRatio, or
//     while its probation lasts;
//   - below badRatio after probation it fails: its allowance drops to what
//     it delivered (nothing, for a peer that forwards nothing), and it
//     gets the probation slots back only after Probation·2^(failures−1),
//     with no new probation (retry).
func (s *Swarm) evaluate(now time.Time, gi int32) []Link {
	g := &s.groups[gi]
	ratio := g.got / g.need
	g.got, g.need, g.evalAt, g.ratio = 0, 0, now.UnixNano(), float32(ratio)
	floor := min(s.probationSlots(), g.top)
	onProbation := now.UnixNano()-g.born < int64(s.p.Probation)
	used := float64(g.used)
	target := g.allow
	switch {
	case ratio >= keepUp:
		g.proven, g.strikes = true, 0
		if g.used+int32(s.k)/2 >= min(g.allow, g.decl) && g.allow < g.top {
			target = min(g.top, g.allow+max(int32(s.k), g.allow))
		}
	case ratio >= badRatio || onProbation:
		target = max(floor, min(g.allow, int32(math.Ceil(ratio*used/keepUp))))
	default:
		target = min(g.allow, int32(math.Ceil(ratio*used)))
		g.proven = false
		g.strikes = min(g.strikes+1, maxRetryShift+1)
		g.retryAt = now.UnixNano() + int64(s.p.Probation)<<(g.strikes-1)
	}
	return s.setAllow(now, gi, target)
}

// retry gives a failed group whose back-off ended its probation slots
// back: a second chance, with no floor (its first probation is over), so
// that it fails again at its next measurement if it still delivers
// nothing, for twice as long.
func (s *Swarm) retry(now time.Time, gi int32) []Link {
	g := &s.groups[gi]
	if g.retryAt == 0 || now.UnixNano() < g.retryAt {
		return nil
	}
	g.retryAt = 0
	g.got, g.need, g.evalAt = 0, 0, now.UnixNano()
	return s.setAllow(now, gi, max(g.allow, s.probationSlots()))
}

// setAllow changes gi's allowance: links beyond it are reassigned (the
// newest of the busiest members first, reason budget), and waiting
// substreams may get a member when it grew.
func (s *Swarm) setAllow(now time.Time, gi int32, allow int32) []Link {
	g := &s.groups[gi]
	if allow == g.allow {
		return nil
	}
	grew := allow > g.allow
	g.allow = max(allow, 0)
	s.restat(gi)
	var links []Link
	if g.used > g.allow {
		links = s.shed(now, gi)
	}
	s.indexGroup(gi)
	if grew {
		links = append(links, s.drain(now, len(s.pending))...)
	}
	return links
}

// shed reassigns links of gi's members until the group is within its
// allowance: the busiest member's first, a leaf's before a relay's
// (shedIdx).
func (s *Swarm) shed(now time.Time, gi int32) []Link {
	type orphan struct {
		by int32
		d  downLink
	}
	var orphans []orphan
	g := &s.groups[gi]
	for g.used > g.allow {
		busiest := none
		for _, m := range g.members {
			if busiest == none || s.peers[m].used > s.peers[busiest].used {
				busiest = m
			}
		}
		d := s.peers[busiest].down[s.shedIdx(busiest)]
		s.unlink(d.peer, int(d.sub))
		orphans = append(orphans, orphan{busiest, d})
	}
	s.indexGroup(gi)
	slices.SortStableFunc(orphans, func(a, b orphan) int { return cmp.Compare(a.by, b.by) })
	var links []Link
	for j := 0; j < len(orphans); {
		by := orphans[j].by
		var ds []downLink
		for ; j < len(orphans) && orphans[j].by == by; j++ {
			ds = append(ds, orphans[j].d)
		}
		links = append(links, s.reassign(now, ds, ReasonBudget, s.peers[by].id, by, nil)...)
	}
	return links
}
