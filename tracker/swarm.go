package tracker

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// Sentinel errors. Returned errors wrap them with %w.
var (
	ErrBadParams     = errors.New("tracker: bad swarm params")
	ErrBadPeer       = errors.New("tracker: bad peer")
	ErrUnknownPeer   = errors.New("tracker: unknown peer")
	ErrDuplicatePeer = errors.New("tracker: duplicate peer")
)

// Reason says why a link was made; metrics use it as a label.
type Reason string

// Link reasons.
const (
	ReasonJoin            Reason = "join"
	ReasonUpstreamLeft    Reason = "upstream-left"
	ReasonUpstreamStalled Reason = "upstream-stalled"
	ReasonComplaint       Reason = "complaint"
	ReasonBudget          Reason = "budget"    // the upstream cut its relay budget
	ReasonRebalance       Reason = "rebalance" // a long-lived relay moved near the root, or made room for one
	ReasonPending         Reason = "pending"   // a substream that had no upstream got one
)

// Link is one assignment: Upstream pushes substream Substream to Peer.
// An empty Upstream means no peer or origin slot was free: Peer fetches that
// substream over HTTP until a later Link (ReasonPending) gives it one.
type Link struct {
	Peer      PeerID
	Substream int
	Upstream  PeerID
	Prev      PeerID // the upstream this link replaces; "" when there was none
	Reason    Reason
}

// PeerInfo is what a viewer declares (or the server learns) when it joins.
type PeerInfo struct {
	ID         PeerID
	Kind       Kind // KindBrowser or KindNative; origins use AddOrigin
	Loc        Location
	BudgetKbps int // relay upload budget; 0 means relay off
}

// Health is a viewer's latest report.
type Health struct {
	BufferSec  float64 // media buffered ahead of the playhead
	UploadKbps int     // relay upload actually achieved (0: unknown)
	RTTms      int     // round-trip time to the server
}

// SwarmParams configures a Swarm. Zero values select the defaults.
type SwarmParams struct {
	Substreams   int // K, default 4 (at most 64)
	BitrateKbps  int // the rendition's bitrate r; one slot carries r/K (required)
	MinUpstreams int // distinct upstream peers per viewer, default 3 (capped by K)
	MaxUpstreams int // default 6 (capped by K)
	MaxDepth     int // 0: no cap; else no viewer is deeper than this on any substream
	// Reserve is the share of each origin's slots that only last-resort
	// assignments may use (default 0.1; negative: none). See Swarm.
	Reserve float64
	Rand    *rand.Rand // required; all randomness comes from here
}

// Stats are the swarm's counters, kept up to date in O(1).
type Stats struct {
	Viewers     int
	PeerSlots   int // relay slots viewers offer
	PeerLinks   int // links viewers serve
	OriginSlots int
	OriginLinks int // links origins serve: origin egress is OriginLinks·r/K
	Unassigned  int // viewer substreams without an upstream (fetched over HTTP)
	// Undiverse counts viewers whose distinct upstreams are outside
	// MinUpstreams..MaxUpstreams because no sampled candidate allowed better.
	Undiverse int
}

// Swarm is one stream's peer registry and upstream assignment policy.
//
// The stream is split into K substreams (chunk sequence mod K). Every viewer
// receives each substream from exactly one upstream, which pushes it; a peer
// serves at most slots = ⌊budget·K/r⌋ downstream links. Origins (AddOrigin) are
// the roots (depth 0) and the upstream of last resort; a viewer's depth on
// substream k is its upstream's depth on k plus one.
//
// Choosing an upstream: the Swarm keeps an index of viewers with a free slot,
// bucketed by 5° lat/lon cell, by area (country, else declared region, else IP
// prefix) and globally. It samples at most 64 of them near the viewer (its cell
// and the 8 around it, its area, then the whole swarm) and, per substream,
// takes the best by, in order: tier (unreliable peers, starving or
// under-delivering ones, and peers more than 2 levels deeper than the
// shallowest candidate come last), proximity class, network (same ASN, same
// country), depth, buffer health, reliability, free slots. A candidate is
// never the viewer itself, never inside the viewer's own subtree on that
// substream, never full, and never past MaxDepth. A viewer's first
// MinUpstreams upstreams must be distinct peers, and once it has MaxUpstreams
// it reuses them; when no candidate (after widening the sample once) allows
// that, the rule is relaxed and the viewer counted in Stats.Undiverse.
//
// An origin is used when no peer candidate fits, when the best one is
// degraded, or when the viewer is a relay (≥ 2K slots) and the best peer
// would put it at depth 3 or more — so relays sit near the root. Rebalance
// later promotes long-lived relays that ended up deeper.
//
// Reserve: ⌈Reserve·slots⌉ of each origin's slots are only for last resort
// (no peer candidate at all). Degraded-candidate avoidance, relay placement
// and Rebalance never use them, so a late joiner in a busy swarm still finds
// an origin slot.
//
// Reliability: complaints and stalls add a penalty that halves every 10
// minutes. Reports older than 30 s count as no report.
//
// A Swarm does no I/O, starts no goroutines and never reads the clock: times
// are passed in, randomness comes from SwarmParams.Rand, so the same calls
// give the same links. It is not safe for concurrent use: the server
// serialises calls per stream.
type Swarm struct {
	p            SwarmParams
	k            int
	minUp, maxUp int
	slotKbps     float64
	rng          *rand.Rand

	ids     map[PeerID]int32
	peers   []peer
	subs    []sub   // len(peers)·K: peer i's substream k at i·K+k
	freeIdx []int32 // recycled peer indices
	origins []int32
	relays  []int32 // viewers with ≥ 2K slots, for Rebalance

	bkeys       map[bkey]int32
	buckets     []bucket // buckets[0]: every viewer with a free slot
	freeBuckets []int32
	regions     map[string]uint16

	pending []pend
	stats   Stats
	epoch   uint32
	now     time.Time // the latest time passed in

	// scratch, reused across calls
	cands   []cand
	wide    bool // s.cands holds the whole free index, or was widened
	relaxed bool // a pick since the last settle relaxed the distinct-upstreams rule
	stack   []int32
	orph    []downLink
	extras  []int32
	distS   []int32
}

const (
	none = int32(-1)

	maxSubstreams = 64
	maxSlots      = 1024 // per viewer; keeps downstream lists bounded
	maxRegions    = 4096 // distinct declared regions remembered per swarm

	maxCands      = 64
	cellCands     = 16 // from the viewer's own 5° cell
	neighborCands = 2  // from each of the 8 cells around it
	areaCands     = 12 // from its country/region/prefix
	globalCands   = 8  // at least this many from the whole swarm
	depthSlack    = 2  // candidates deeper than the shallowest + this are demoted
	relayDepth    = 2  // a relay prefers an origin over a peer this deep or deeper
	drainBatch    = 64 // pending substreams retried per call

	complaintPenalty = 0.25
	stallPenalty     = 0.5
	maxPenalty       = 4
	badPenalty       = 0.5
	penaltyHalfLife  = 10 * time.Minute
	reportTTL        = 30 * time.Second

	promoteAge     = 10 * time.Second // Rebalance promotes relays at least this old
	promoteDepth   = 2                // ... sitting at least this deep
	rebalanceTries = 32
	rebalanceMoves = 8
)

const (
	kindBrowser uint8 = iota
	kindNative
	kindOrigin
)

const (
	flagAlive uint8 = 1 << iota
	flagCoords
	flagReported
	flagUndiverse // distinct upstreams out of bounds; see Stats.Undiverse
)

// peer is one registered peer; its substream links live in Swarm.subs.
type peer struct {
	id     PeerID
	down   []downLink // links this peer serves; len == used
	joined int64      // unix ns
	penAt  int64      // unix ns of the last penalty update
	repAt  int64      // unix ns of the last report
	prefix uint64
	slots  int32
	budget int32 // relay budget, kbit/s: slots follow it and the bitrate
	used   int32
	upKbps int32
	rtt    int32
	lat    float32
	lon    float32
	buf    float32
	pen    float32 // reliability penalty at penAt
	asn    uint32
	mark   uint32   // gather epoch
	pos    [3]int32 // positions in the cell, area and global buckets (none: absent)
	bkt    [2]int32 // cell and area bucket ids while indexed
	rpos   int32    // position in relays
	cc     uint16   // country, two ASCII letters
	region uint16   // interned declared region, 0 when none
	kind   uint8
	flags  uint8
}

func (p *peer) alive() bool     { return p.flags&flagAlive != 0 }
func (p *peer) hasCoords() bool { return p.flags&flagCoords != 0 }
func (p *peer) isOrigin() bool  { return p.kind == kindOrigin }

// sub is one peer's link on one substream.
type sub struct {
	up    int32 // upstream peer, none when unassigned (and for origins)
	pos   int32 // index in the upstream's down list
	depth int32 // origins 0; else up's depth + 1 (last known while unassigned)
}

type downLink struct {
	peer int32
	sub  int32
}

type pend struct {
	peer int32
	sub  int32
}

type bkey struct {
	kind uint8 // 1 cell, 2 country, 3 region, 4 prefix
	v    uint64
}

type bucket struct {
	key     bkey
	members []int32
}

// cand is a sampled candidate with the parts of its score that do not depend
// on the substream.
type cand struct {
	i      int32
	prox   int8
	net    int8
	health int8
	rel    int8
	bad    bool
}

// NewSwarm returns an empty swarm; add at least one origin before joins.
func NewSwarm(p SwarmParams) (*Swarm, error) {
	if p.Substreams == 0 {
		p.Substreams = 4
	}
	if p.MinUpstreams == 0 {
		p.MinUpstreams = 3
	}
	if p.MaxUpstreams == 0 {
		p.MaxUpstreams = 6
	}
	switch {
	case p.Reserve == 0:
		p.Reserve = 0.1
	case p.Reserve < 0:
		p.Reserve = 0
	}
	switch {
	case p.Substreams < 1 || p.Substreams > maxSubstreams:
		return nil, fmt.Errorf("%w: Substreams %d not in 1..%d", ErrBadParams, p.Substreams, maxSubstreams)
	case p.BitrateKbps <= 0:
		return nil, fmt.Errorf("%w: BitrateKbps %d", ErrBadParams, p.BitrateKbps)
	case p.MinUpstreams < 1 || p.MaxUpstreams < p.MinUpstreams:
		return nil, fmt.Errorf("%w: upstreams %d..%d", ErrBadParams, p.MinUpstreams, p.MaxUpstreams)
	case p.MaxDepth < 0:
		return nil, fmt.Errorf("%w: MaxDepth %d", ErrBadParams, p.MaxDepth)
	case !(p.Reserve < 1): // also rejects NaN
		return nil, fmt.Errorf("%w: Reserve %v", ErrBadParams, p.Reserve)
	case p.Rand == nil:
		return nil, fmt.Errorf("%w: Rand is nil", ErrBadParams)
	}
	s := &Swarm{
		p:        p,
		k:        p.Substreams,
		minUp:    min(p.MinUpstreams, p.Substreams),
		maxUp:    min(p.MaxUpstreams, p.Substreams),
		slotKbps: float64(p.BitrateKbps) / float64(p.Substreams),
		rng:      p.Rand,
		ids:      make(map[PeerID]int32),
		bkeys:    make(map[bkey]int32),
		buckets:  []bucket{{}},
		regions:  make(map[string]uint16),
	}
	return s, nil
}

// BitrateKbps is the stream bitrate the slots are sized for.
func (s *Swarm) BitrateKbps() int { return s.p.BitrateKbps }

// SetBitrate resizes every viewer's slots for a new stream bitrate (a
// stream's bitrate is only known once it has run a while): relays gain
// slots when the stream is lighter than assumed, and those left with more
// downstreams than slots have the newest reassigned.
func (s *Swarm) SetBitrate(now time.Time, kbps int) []Link {
	if kbps <= 0 || kbps == s.p.BitrateKbps {
		return nil
	}
	s.p.BitrateKbps = kbps
	s.slotKbps = float64(kbps) / float64(s.k)
	var links []Link
	for i := range s.peers {
		p := &s.peers[i]
		if p.alive() && !p.isOrigin() {
			links = append(links, s.SetBudget(now, p.id, int(p.budget))...)
		}
	}
	return links
}

// Slots returns how many downstream links a relay budget pays for.
func (s *Swarm) Slots(budgetKbps int) int {
	if budgetKbps <= 0 {
		return 0
	}
	return int(min(int64(budgetKbps)*int64(s.k)/int64(s.p.BitrateKbps), maxSlots))
}

// AddOrigin registers an origin seed node with its slot count. Several origins
// may be added; each is a root. Substreams waiting for an upstream get one at
// the next Leave, SetBudget or Rebalance.
func (s *Swarm) AddOrigin(id PeerID, slots int) error {
	if id == "" || slots <= 0 {
		return fmt.Errorf("%w: origin %q with %d slots", ErrBadPeer, id, slots)
	}
	if _, ok := s.ids[id]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicatePeer, id)
	}
	i := s.alloc(id)
	p := &s.peers[i]
	p.kind = kindOrigin
	p.slots = int32(min(slots, math.MaxInt32))
	s.origins = append(s.origins, i)
	s.stats.OriginSlots += int(p.slots)
	return nil
}

// Join registers a viewer and returns its K links, one per substream in
// order. A link with no Upstream means nothing was free, not even an origin:
// the viewer fetches that substream over HTTP until a later link
// (ReasonPending) names an upstream.
func (s *Swarm) Join(now time.Time, pi PeerInfo) ([]Link, error) {
	s.tick(now)
	if err := s.checkInfo(pi); err != nil {
		return nil, err
	}
	i := s.alloc(pi.ID)
	p := &s.peers[i]
	if pi.Kind == KindNative {
		p.kind = kindNative
	}
	p.joined = now.UnixNano()
	p.budget = int32(min(pi.BudgetKbps, math.MaxInt32))
	p.slots = int32(s.Slots(pi.BudgetKbps))
	s.setLoc(p, pi.Loc)
	s.stats.Viewers++
	s.stats.PeerSlots += int(p.slots)
	s.stats.Unassigned += s.k

	s.gather(now, i, nil)
	s.relaxed = false
	links := make([]Link, 0, s.k)
	for k := range s.k {
		l := Link{Peer: pi.ID, Substream: k, Reason: ReasonJoin}
		if u := s.pick(now, i, k, none, true); u != none {
			s.link(i, k, u)
			l.Upstream = s.peers[u].id
		} else {
			// Not even an origin slot is free: the viewer takes this substream
			// over HTTP until a leave or Rebalance frees one (ReasonPending).
			s.pending = append(s.pending, pend{peer: i, sub: int32(k)})
		}
		links = append(links, l)
	}
	s.settle(i)
	s.index(i)
	return links, nil
}

func (s *Swarm) checkInfo(pi PeerInfo) error {
	switch {
	case pi.ID == "":
		return fmt.Errorf("%w: empty id", ErrBadPeer)
	case pi.Kind != KindBrowser && pi.Kind != KindNative:
		return fmt.Errorf("%w: %s: kind %q (origins use AddOrigin)", ErrBadPeer, pi.ID, pi.Kind)
	case pi.BudgetKbps < 0:
		return fmt.Errorf("%w: %s: budget %d", ErrBadPeer, pi.ID, pi.BudgetKbps)
	case pi.Loc.HasCoords && !(pi.Loc.Lat >= -90 && pi.Loc.Lat <= 90 && pi.Loc.Lon >= -180 && pi.Loc.Lon <= 180):
		return fmt.Errorf("%w: %s: coordinates %v,%v", ErrBadPeer, pi.ID, pi.Loc.Lat, pi.Loc.Lon)
	}
	if _, ok := s.ids[pi.ID]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicatePeer, pi.ID)
	}
	return nil
}

// Leave removes a peer (viewer or origin) and reassigns every orphan: each
// downstream of id on each substream gets a new upstream and keeps its own
// subtree. Unknown ids are ignored.
func (s *Swarm) Leave(now time.Time, id PeerID) []Link {
	s.tick(now)
	i, ok := s.ids[id]
	if !ok {
		return nil
	}
	s.extras = s.extras[:0]
	for k := range s.k {
		// The upstreams id leaves behind just got a free slot near the orphans.
		if u := s.unlink(i, k); u != none && !s.peers[u].isOrigin() && !slices.Contains(s.extras, u) {
			s.extras = append(s.extras, u)
		}
	}
	orphans := s.detachAll(i)
	s.remove(i)
	waiting := len(s.pending)
	links := s.reassign(now, orphans, ReasonUpstreamLeft, id, none, s.extras)
	return append(links, s.drain(now, waiting)...)
}

// Report records a viewer's health.
func (s *Swarm) Report(now time.Time, id PeerID, h Health) {
	s.tick(now)
	i, ok := s.ids[id]
	if !ok {
		return
	}
	p := &s.peers[i]
	p.flags |= flagReported
	p.repAt = now.UnixNano()
	p.buf = float32(h.BufferSec)
	p.upKbps = int32(min(max(h.UploadKbps, 0), math.MaxInt32))
	p.rtt = int32(min(max(h.RTTms, 0), math.MaxInt32))
}

// Complain records that from no longer uses about: every substream from
// receives from about is reassigned, and about's reliability is penalised.
// A complaint about a peer that is not from's upstream is ignored.
func (s *Swarm) Complain(now time.Time, from, about PeerID) []Link {
	s.tick(now)
	fi, ok1 := s.ids[from]
	ai, ok2 := s.ids[about]
	if !ok1 || !ok2 {
		return nil
	}
	s.orph = s.orph[:0]
	for k := range s.k {
		if s.subs[s.at(fi, k)].up == ai {
			s.unlink(fi, k)
			s.orph = append(s.orph, downLink{fi, int32(k)})
		}
	}
	if len(s.orph) == 0 {
		return nil
	}
	s.penalise(now, ai, complaintPenalty)
	return s.reassign(now, s.orph, ReasonComplaint, about, ai, nil)
}

// Stalled records that id stopped delivering: its downstreams are reassigned
// elsewhere and its reliability is penalised. id keeps its own upstreams.
func (s *Swarm) Stalled(now time.Time, id PeerID) []Link {
	s.tick(now)
	i, ok := s.ids[id]
	if !ok {
		return nil
	}
	s.penalise(now, i, stallPenalty)
	orphans := s.detachAll(i)
	return s.reassign(now, orphans, ReasonUpstreamStalled, id, i, nil)
}

// SetBudget changes a viewer's relay budget (the node cut or restored its
// relay). Downstreams beyond the new slot count are reassigned.
func (s *Swarm) SetBudget(now time.Time, id PeerID, budgetKbps int) []Link {
	s.tick(now)
	i, ok := s.ids[id]
	if !ok || s.peers[i].isOrigin() {
		return nil
	}
	p := &s.peers[i]
	p.budget = int32(min(max(budgetKbps, 0), math.MaxInt32))
	slots := int32(s.Slots(budgetKbps))
	s.stats.PeerSlots += int(slots - p.slots)
	grew := slots > p.slots
	p.slots = slots
	s.orph = s.orph[:0]
	for p.used > p.slots {
		d := p.down[len(p.down)-1] // the newest link
		s.unlink(d.peer, int(d.sub))
		s.orph = append(s.orph, d)
	}
	s.index(i)
	waiting := len(s.pending)
	links := s.reassign(now, s.orph, ReasonBudget, id, i, nil)
	if grew {
		links = append(links, s.drain(now, waiting)...)
	}
	return links
}

// Rebalance retries substreams waiting for an upstream, then moves
// long-lived relays (≥ 2K slots, here for a minute) that sit at depth 3 or
// more up to an origin, making room if needed by moving a leaf viewer with
// few slots from the origin to a peer. Its work is bounded (a few dozen
// samples, at most 8 moves), so the server may call it every few seconds.
func (s *Swarm) Rebalance(now time.Time) []Link {
	s.tick(now)
	links := s.drain(now, len(s.pending))
	moves := 0
	for try := 0; try < rebalanceTries && moves < rebalanceMoves && len(s.relays) > 0; try++ {
		h := s.relays[s.rng.IntN(len(s.relays))]
		if now.UnixNano()-s.peers[h].joined < int64(promoteAge) || s.degraded(now, h) {
			continue
		}
		for k := range s.k {
			sh := s.subs[s.at(h, k)]
			if sh.up == none || sh.depth < promoteDepth {
				continue
			}
			o := s.origin(false, h, k)
			if o == none || !s.diverseAfter(h, k, o) {
				var l Link
				if o, l = s.demote(now, h, k); o == none {
					// No peer can take a leaf off the origin: h swaps
					// places with one instead.
					if ls := s.swapIn(h, k); ls != nil {
						links = append(links, ls...)
						moves++
					}
					continue
				}
				links = append(links, l)
			}
			prev := s.unlink(h, k)
			s.link(h, k, o)
			s.settle(h)
			links = append(links, Link{Peer: s.peers[h].id, Substream: k, Upstream: s.peers[o].id, Prev: s.peers[prev].id, Reason: ReasonRebalance})
			moves++
		}
	}
	return links
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

// swapIn gives v — waiting for an upstream on k while the origins are full,
// or a relay sitting deep — the origin slot of a leaf viewer c with fewer
// slots than v that relays nothing on k, and puts c under v. The origin still sends one copy of k,
// and now v can relay it: otherwise early viewers with little or no relay
// budget hold the origin's slots and the relays behind them sit deep, or
// never receive anything to relay. Streams with a depth cap are left
// alone. It returns the links made, or nil.
func (s *Swarm) swapIn(v int32, k int) []Link {
	pv := &s.peers[v]
	if pv.used >= pv.slots || s.p.MaxDepth > 0 {
		return nil
	}
	for _, o := range s.origins {
		po := &s.peers[o]
		for j := 0; j < len(po.down) && j < 64; j++ {
			d := po.down[j]
			c := d.peer
			if int(d.sub) != k || c == v || s.peers[c].slots >= pv.slots || s.hasDown(c, k) {
				continue
			}
			// Too few peers may leave either with fewer distinct upstreams
			// than the rule wants: the move is worth it, and flagged.
			okV, okC := s.diverseAfter(v, k, o), s.diverseAfter(c, k, v)
			s.unlink(c, k)
			prev, why := s.unlink(v, k), ReasonRebalance
			if prev == none {
				why = ReasonPending
			}
			s.link(v, k, o)
			s.link(c, k, v)
			s.relaxed = !okV
			s.settle(v)
			s.relaxed = !okC
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

// Upstreams returns id's upstream per substream ("" where it has none), or
// nil for an unknown id or an origin.
func (s *Swarm) Upstreams(id PeerID) []PeerID {
	i, ok := s.ids[id]
	if !ok || s.peers[i].isOrigin() {
		return nil
	}
	ups := make([]PeerID, s.k)
	for k := range s.k {
		if u := s.subs[s.at(i, k)].up; u != none {
			ups[k] = s.peers[u].id
		}
	}
	return ups
}

// Downstreams returns the links id serves (Reason is empty).
func (s *Swarm) Downstreams(id PeerID) []Link {
	i, ok := s.ids[id]
	if !ok {
		return nil
	}
	p := &s.peers[i]
	links := make([]Link, len(p.down))
	for j, d := range p.down {
		links[j] = Link{Peer: s.peers[d.peer].id, Substream: int(d.sub), Upstream: id}
	}
	return links
}

// Linked reports whether a is b's upstream or downstream on some substream;
// the server relays signaling only between linked peers.
func (s *Swarm) Linked(a, b PeerID) bool {
	ai, ok1 := s.ids[a]
	bi, ok2 := s.ids[b]
	if !ok1 || !ok2 || ai == bi {
		return false
	}
	for k := range s.k {
		if s.subs[s.at(ai, k)].up == bi || s.subs[s.at(bi, k)].up == ai {
			return true
		}
	}
	return false
}

// Depth returns id's hop count from an origin on a substream: 0 for an
// origin, -1 for an unknown id, a bad substream or an unassigned one.
func (s *Swarm) Depth(id PeerID, substream int) int {
	i, ok := s.ids[id]
	if !ok || substream < 0 || substream >= s.k {
		return -1
	}
	if s.peers[i].isOrigin() {
		return 0
	}
	sb := s.subs[s.at(i, substream)]
	if sb.up == none {
		return -1
	}
	return int(sb.depth)
}

// Len returns the number of viewers (origins excluded).
func (s *Swarm) Len() int { return s.stats.Viewers }

// Stats returns the swarm's counters.
func (s *Swarm) Stats() Stats { return s.stats }

// ---- assignment ----

// reassign finds new upstreams for orphaned (peer, substream) pairs, whose
// upstream links were already removed. Orphans with more slots go first, so
// that relays take the shallow slots just freed.
func (s *Swarm) reassign(now time.Time, orphans []downLink, why Reason, prev PeerID, exclude int32, extras []int32) []Link {
	if len(orphans) == 0 {
		return nil
	}
	slices.SortFunc(orphans, func(a, b downLink) int {
		return cmp.Or(
			cmp.Compare(s.peers[b.peer].slots, s.peers[a.peer].slots),
			cmp.Compare(a.peer, b.peer),
			cmp.Compare(a.sub, b.sub))
	})
	links := make([]Link, 0, len(orphans))
	for j, o := range orphans {
		if j == 0 || orphans[j-1].peer != o.peer {
			s.gather(now, o.peer, extras)
			s.relaxed = false
		}
		l := Link{Peer: s.peers[o.peer].id, Substream: int(o.sub), Prev: prev, Reason: why}
		if u := s.pick(now, o.peer, int(o.sub), exclude, true); u != none {
			s.link(o.peer, int(o.sub), u)
			l.Upstream = s.peers[u].id
		} else {
			s.pending = append(s.pending, pend(o))
		}
		links = append(links, l)
		if j == len(orphans)-1 || orphans[j+1].peer != o.peer {
			s.settle(o.peer)
		}
	}
	return links
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

// pickPeer returns the best peer candidate for v on k and its tier (0 good,
// 1 degraded or much deeper than the best), or none.
func (s *Swarm) pickPeer(v int32, k int, exclude int32, strict bool) (int32, int8) {
	mustNew, mustOld := false, false
	if strict {
		mustNew, mustOld = s.diversity(v, k)
	}
	dv := s.subs[s.at(v, k)].depth
	hasSub := s.hasDown(v, k)
	var h int32
	if hasSub && s.p.MaxDepth > 0 {
		h = s.height(v, k)
	}
	minD := int32(math.MaxInt32)
	for _, c := range s.cands {
		if d, ok := s.eligible(v, c.i, k, dv, h, hasSub, exclude); ok && s.allowed(c.i, mustNew, mustOld) {
			minD = min(minD, d)
		}
	}
	if minD == math.MaxInt32 {
		return none, 0
	}
	var best *cand
	var bestD, bestFree int32
	var bestTier int8
	for j := range s.cands {
		c := &s.cands[j]
		d, ok := s.eligible(v, c.i, k, dv, h, hasSub, exclude)
		if !ok || !s.allowed(c.i, mustNew, mustOld) {
			continue
		}
		var tier int8
		if c.bad || d > minD+depthSlack {
			tier = 1
		}
		free := s.peers[c.i].slots - s.peers[c.i].used
		if best == nil || cmp.Or(
			cmp.Compare(tier, bestTier),
			cmp.Compare(c.prox, best.prox),
			cmp.Compare(c.net, best.net),
			cmp.Compare(d, bestD),
			cmp.Compare(c.health, best.health),
			cmp.Compare(c.rel, best.rel),
			cmp.Compare(bestFree, free),
		) < 0 {
			best, bestD, bestFree, bestTier = c, d, free, tier
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
	if !pu.alive() || pu.used >= pu.slots {
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

// relay reports whether v has enough slots to belong near the root.
func (s *Swarm) relay(v int32) bool {
	p := &s.peers[v]
	return !p.isOrigin() && int(p.slots) >= 2*s.k
}

// ---- candidates ----

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

func (s *Swarm) lookup(k bkey) int32 {
	if b, ok := s.bkeys[k]; ok {
		return b
	}
	return none
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

// ---- scoring helpers ----

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
		x := math.Sin(km / (2 * earthKm))
		t[j] = x * x
	}
	return t
}()

const earthKm = 6371.0

func proximity(a, b *peer) int8 {
	if a.prefix != 0 && a.prefix == b.prefix {
		return proxSamePrefix
	}
	if a.hasCoords() && b.hasCoords() {
		h := haversine(a.lat, a.lon, b.lat, b.lon)
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

// haversine returns sin²(d/2R) for the great-circle distance d.
func haversine(lat1, lon1, lat2, lon2 float32) float64 {
	const rad = math.Pi / 180
	p1, p2 := float64(lat1)*rad, float64(lat2)*rad
	sp := math.Sin((p2 - p1) / 2)
	sl := math.Sin(float64(lon2-lon1) * rad / 2)
	return sp*sp + math.Cos(p1)*math.Cos(p2)*sl*sl
}

// health classes: 0 good, 1 unknown or fair, 2 bad (starving, congested or
// under-delivering what it serves).
func (s *Swarm) health(now time.Time, i int32) int8 {
	p := &s.peers[i]
	if p.flags&flagReported == 0 || now.UnixNano()-p.repAt > int64(reportTTL) {
		return 1
	}
	if p.buf < 0.5 || p.rtt >= 1000 ||
		(p.upKbps > 0 && p.used > 0 && float64(p.upKbps) < 0.7*float64(p.used)*s.slotKbps) {
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

func (s *Swarm) tick(now time.Time) {
	if now.After(s.now) {
		s.now = now
	}
}

// ---- tree ----

func (s *Swarm) at(i int32, k int) int { return int(i)*s.k + k }

// link makes u v's upstream on k; v must have none there.
func (s *Swarm) link(v int32, k int, u int32) {
	pu := &s.peers[u]
	sv := &s.subs[s.at(v, k)]
	sv.up, sv.pos = u, int32(len(pu.down))
	pu.down = append(pu.down, downLink{v, int32(k)})
	pu.used++
	if pu.isOrigin() {
		s.stats.OriginLinks++
	} else {
		s.stats.PeerLinks++
		s.index(u)
	}
	s.stats.Unassigned--
	if delta := s.subs[s.at(u, k)].depth + 1 - sv.depth; delta != 0 {
		s.shift(v, k, delta)
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
		s.index(u)
	}
	s.stats.Unassigned++
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

// shift adds delta to the depth of v and its whole subtree on k.
func (s *Swarm) shift(v int32, k int, delta int32) {
	st := append(s.stack[:0], v)
	for len(st) > 0 {
		x := st[len(st)-1]
		st = st[:len(st)-1]
		s.subs[s.at(x, k)].depth += delta
		for _, d := range s.peers[x].down {
			if int(d.sub) == k {
				st = append(st, d.peer)
			}
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

// ---- registry ----

func (s *Swarm) alloc(id PeerID) int32 {
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
	}
	for k := range s.k {
		s.subs[s.at(i, k)] = sub{up: none, pos: none}
	}
	s.ids[id] = i
	return i
}

// remove unregisters i, whose links must all be gone already.
func (s *Swarm) remove(i int32) {
	p := &s.peers[i]
	if p.isOrigin() {
		s.stats.OriginSlots -= int(p.slots)
		s.origins = slices.DeleteFunc(s.origins, func(o int32) bool { return o == i })
	} else {
		s.stats.Viewers--
		s.stats.PeerSlots -= int(p.slots)
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
	p.prefix = prefixKey(l.Prefix)
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
	want := p.alive() && !p.isOrigin() && p.used < p.slots
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
