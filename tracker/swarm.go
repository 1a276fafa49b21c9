package tracker

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
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
	ReasonJoin         Reason = "join"
	ReasonUpstreamLeft Reason = "upstream-left"
	ReasonComplaint    Reason = "complaint" // the viewer complained about its upstream, or reported it stalled
	ReasonBudget       Reason = "budget"    // the upstream cut its relay budget
	ReasonRebalance    Reason = "rebalance" // a long-lived relay moved near the root, or made room for one
	ReasonPending      Reason = "pending"   // a substream that had no upstream got one
)

// Link is one assignment: Upstream pushes substream Substream to Peer.
// An empty Upstream means no peer or origin slot was free: Peer fetches that
// substream over HTTP until a later Link (ReasonPending) gives it one.
type Link struct {
	Peer      protocol.PeerID
	Substream int
	Upstream  protocol.PeerID
	Prev      protocol.PeerID // the upstream this link replaces; "" when there was none
	Reason    Reason
}

// PeerInfo is what a viewer declares (or the server learns) when it joins.
type PeerInfo struct {
	ID         protocol.PeerID
	Kind       protocol.Kind // protocol.KindBrowser or protocol.KindNative; origins use AddOrigin
	Loc        Location      // Loc.Addr groups the viewers of one address (see Swarm)
	BudgetKbps int           // declared relay upload budget; 0 means relay off
}

// Health is a viewer's latest report, as it claims it. Only BufferSec and
// RTTms weigh in its ranking, and only to its harm (starving or congested);
// UploadKbps is ignored: a claim earns nothing, what a viewer delivers is
// measured from its downstreams' receipts (TakeReport).
type Health struct {
	BufferSec  float64 // media buffered ahead of the playhead
	UploadKbps int     // relay upload the viewer says it achieved: ignored
	RTTms      int     // round-trip time to the server
}

// SwarmParams configures a Swarm. Zero values select the defaults.
type SwarmParams struct {
	Substreams   int // K, default 4 (at most 64)
	BitrateKbps  int // the rendition's bitrate r; one slot carries r/K (required)
	MinUpstreams int // distinct upstream peers per viewer, default 3 (capped by K)
	MaxUpstreams int // default 6 (capped by K)
	MaxDepth     int // 0: no cap; else no viewer is deeper than this on any substream
	// Delay is the playback delay behind live that the swarm's viewers
	// keep, sent in their welcome (default protocol.DefaultDelay; from
	// 500 ms to protocol.MaxDelayMs). The deeper the trees an audience
	// builds, the more of it the hops spend.
	Delay time.Duration
	// Reserve is the share of each origin's slots that only last-resort
	// assignments may use (default 0.1; negative: none). See Swarm.
	Reserve float64
	// MaxBudgetKbps is the most relay budget a viewer's declaration is
	// believed for (default 100,000 kbit/s, 100 Mbit/s: a fast home line
	// with room to spare; the wire allows up to protocol.MaxBudgetKbps).
	// Declared budgets above it count as it.
	MaxBudgetKbps int
	// ProbationSlots is the allowance of an address that has not been
	// measured yet (default K: one copy of the stream), and the floor its
	// allowance keeps while it delivers; Probation is how long a new
	// address keeps that floor however it measures (default 15 s).
	ProbationSlots int
	Probation      time.Duration
	// Overbook is the percentage of its budget's slots a relay serves
	// while the swarm is starved: its viewers declare under 90% of the
	// links they need (default 120: 96% of the whole budget of a node that
	// announces 80%; negative: never). See Swarm.
	Overbook int
	// Trusted lists the networks whose viewers are believed (relays the
	// operator runs; every node of a test on loopback): their addresses are
	// proven from the start, their declared budgets (up to MaxBudgetKbps)
	// buy slots at once, with no probation and no measurement, and the
	// prefix rule does not count them.
	Trusted []netip.Prefix
	Rand    *rand.Rand // required; all randomness comes from here
}

// Stats are the swarm's counters, kept up to date in O(1).
type Stats struct {
	Viewers int
	// PeerSlots is the relay slots viewers may serve: their declared
	// slots, within what their addresses earned.
	PeerSlots   int
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
// receives each substream from exactly one upstream, which pushes it. Origins
// (AddOrigin) are the roots (depth 0) and the upstream of last resort; a
// viewer's depth on substream k is its upstream's depth on k plus one.
//
// Slots: a viewer declares a relay budget, believed up to MaxBudgetKbps;
// it pays for at most ⌊budget·K/r⌋ downstream links (its slots), or
// ⌊budget·K/r · Overbook/100⌋ (120%) while the swarm is starved: its
// viewers declare under 90% of the links they need, until they declare
// all of it again (checked at each Rebalance). A node announces 80% of its
// budget (the rest answers repairs); in a swarm that cannot feed itself,
// part of that reserve is worth more as links, since each link no relay
// serves comes from the origin. What it
// may serve is that, within the allowance of its address: the viewers of
// one address (Location.Addr; an IPv6 /64 counts as one) share a single
// allowance, so ten identities on one address get what one would. An
// address starts on probation with ProbationSlots (default K, one copy of
// the stream: a peer that turns out to forward nothing costs at most one
// viewer's worth of substreams, and those are spread over K viewers by the
// rules below). From then on the allowance follows measurement, never the
// peers' own claims: each report's receipts (protocol.Report.Received) say
// what the reporter received from each upstream since its previous report;
// an upstream is credited with it, up to what the reporter's links from it
// needed (the slot rate r/K per link, less when the reporter consumes a
// lighter rendition, from 1.5 s after the link was made: one downstream's
// surplus cannot hide another's shortfall), and receipts about peers that
// are not the reporter's upstreams count for nothing. Every 2.5 s or more, an address delivering ≥ 75% of what its
// links needed is proven, and when its links nearly fill its allowance it
// doubles (by K at least) up to the most slots one of its viewers
// declares; one delivering less shrinks to the links its delivery keeps up
// with, not below ProbationSlots while it delivers ≥ 40% or its Probation
// (15 s) lasts; below 40% after probation it fails: it keeps only what it
// delivered (nothing, for an address that forwards nothing) and gets
// ProbationSlots back after Probation·2^(failures−1) (at most
// 32·Probation), with no second probation. Links beyond a shrunk allowance
// are reassigned (ReasonBudget). An address's allowance outlives its last
// viewer by 10 minutes, so leaving and joining again buys no fresh
// probation. Networks in SwarmParams.Trusted are believed instead.
//
// Choosing an upstream: the Swarm keeps an index of viewers with a free slot,
// bucketed by 5° lat/lon cell, by area (country, else declared region, else IP
// prefix) and globally. It samples at most 64 of them near the viewer (its cell
// and the 8 around it, its area, then the whole swarm) and, per substream,
// takes the best by, in order: tier (unreliable peers, starving or
// under-delivering ones — by measurement — and peers more than 2 levels
// deeper than the shallowest candidate come last), proximity class, ASN
// diversity (a peer in the ASN of another of the viewer's upstreams comes
// after any other of the same tier and proximity class), network (same
// ASN, same country), depth, buffer health, reliability, free slots.
//
// A candidate is never the viewer itself, never inside the viewer's own
// subtree on that substream, never full, and never past MaxDepth. Two rules
// keep any one party from capturing a viewer, and hold even when nothing
// else fits (the origin, or HTTP when the origins are full, is always the
// alternative): no two upstreams of a viewer share an IP prefix
// (Location.Prefix: a /24, or an IPv6 /48), and a peer whose address is not
// proven serves one substream only (the first it was given), so never two
// of one viewer's — which also makes a flash crowd on probation branch one
// tree per peer instead of growing every tree as a chain. ASNs are only
// weighed (as above), not ruled: big ISPs hold most of a region's viewers,
// and locality within them is worth more than spreading a viewer across
// ISPs, while a prefix, an address and a delivery record are what one party
// cannot multiply cheaply. A viewer's first MinUpstreams upstreams must be
// distinct peers, and once it has MaxUpstreams it reuses them; when no
// candidate (after widening the sample once) allows that, that rule (only)
// is relaxed and the viewer counted in Stats.Undiverse.
//
// An origin is used when no peer candidate fits, when the best one is
// degraded, or when the viewer is a relay (it may serve ≥ 2K links, so an
// address on probation never is) and the best peer would put it at depth 3
// or more — so relays sit near the root. Rebalance later promotes
// long-lived relays that ended up deeper, or lifts them under a much
// shallower peer.
//
// Subtrees: a viewer moved together with the subtree it relays to (its
// upstream left, complained of, or shed it) takes the place of the
// shallowest leaf — a viewer that can never relay that substream — when no
// sampled free slot is as shallow, and the leaf is placed anew, alone
// (displace). A peer that must serve fewer drops its newest link to a leaf
// first, a relay (with its subtree) only when it serves no leaf. Rebalance
// swaps relays sunk 3 or more deep with the shallowest leaf above them
// (raise). When nearly every slot is in use (94% at 3,000 viewers of the
// simulator's generous mix) the free slots sit deep, under the newest
// viewers; without these rules every reassignment of a relay sank its
// whole subtree, and the trees grew into chains.
//
// Reserve: ⌈Reserve·slots⌉ of each origin's slots are only for last resort
// (no peer candidate at all). Degraded-candidate avoidance, relay placement
// and Rebalance never use them, so a late joiner in a busy swarm still finds
// an origin slot.
//
// Reliability: complaints (Complain: a viewer reported its upstream for a
// bad chunk or message, or as stalled) add a penalty that halves every 10
// minutes. Reports older than 30 s count as no report; a buffer claimed
// above 10 s counts as 10 s, and any buffer of 2 s or more ranks the same.
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

	ids     map[protocol.PeerID]int32
	peers   []peer
	subs    []sub   // len(peers)·K: peer i's substream k at i·K+k
	freeIdx []int32 // recycled peer indices
	origins []int32
	// homeSlots[k]: the declared slots of the viewers whose home is k.
	homeSlots []int64
	relays    []int32 // viewers that may serve ≥ 2K links, for Rebalance

	groups     []group // viewers sharing an address, and their allowance
	freeGroups []int32
	addrs      map[netip.Addr]int32 // address (IPv6: /64) → group
	lingering  []linger             // groups whose last viewer left, oldest first
	lingerHd   int

	bkeys       map[bkey]int32
	buckets     []bucket // buckets[0]: every viewer with a free slot
	freeBuckets []int32
	regions     map[string]uint16

	// leaves[k][d]: the leaf index (leaves.go); leafN its entries.
	leaves [][][]int32
	leafN  int

	pending  []pend
	stats    Stats
	overbook bool // the swarm is starved: a budget buys Overbook % of its slots (starved)
	epoch    uint32
	now      time.Time // the latest time passed in

	// scratch, reused across calls
	cands   []cand
	wide    bool // s.cands holds the whole free index, or was widened
	relaxed bool // a pick since the last settle relaxed the distinct-upstreams rule
	stack   []int32
	vset    []int32 // insert's copy of the inserted viewer's upstreams
	orph    []downLink
	extras  []int32
	distS   []int32
	upS     []int32 // the viewer's upstreams on its other substreams (pickPeer)
	touched []int32 // groups credited by the report being taken
}

const (
	none = int32(-1)

	maxSubstreams = 64
	// minDelay is the shortest playback delay a swarm may be given: less
	// leaves no time for a single hop of a 125 ms chunk and its repair.
	minDelay   = 500 * time.Millisecond
	maxSlots   = 1024 // per viewer; keeps downstream lists bounded
	maxRegions = 4096 // distinct declared regions remembered per swarm

	maxCands      = 64
	cellCands     = 16 // from the viewer's own 5° cell
	neighborCands = 2  // from each of the 8 cells around it
	areaCands     = 12 // from its country/region/prefix
	globalCands   = 8  // at least this many from the whole swarm
	depthSlack    = 2  // candidates deeper than the shallowest + this are demoted
	relayDepth    = 2  // a relay prefers an origin over a peer this deep or deeper
	drainBatch    = 64 // pending substreams retried per call

	complaintPenalty = 0.25
	maxPenalty       = 4
	badPenalty       = 0.5
	penaltyHalfLife  = 10 * time.Minute
	reportTTL        = 30 * time.Second

	maxRankBuffer = 10 // seconds: a larger buffer claim ranks as this

	promoteAge     = 10 * time.Second // Rebalance promotes relays at least this old
	promoteDepth   = 2                // ... sitting at least this deep
	rebalanceTries = 32
	rebalanceMoves = 8
	raiseDepth     = 3    // Rebalance raises relays at least this deep ...
	raiseTries     = 64   // ... trying this many viewers
	raiseMoves     = 16   // ... and swapping at most this many
	localTries     = 256  // Rebalance brings links nearer, trying this many viewers (or a quarter of them)
	localMoves     = 64   // ... and moving at most this many links (or one per 16 viewers)
	maxLocalTries  = 2048 // ... up to this many tries and a quarter as many moves

	overbookPct   = 120 // a starved swarm's relays serve this % of their budget's slots (default)
	overbookBelow = 90  // ... when the declared slots are below this % of the links needed
	overbookMin   = 64  // ... by at least this many viewers
	resizeDrains  = 64  // batches of waiting substreams placed when every viewer's slots are resized
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
	flagRx        // rx holds the cumulative bytes of a report
)

// peer is one registered peer; its substream links live in Swarm.subs.
type peer struct {
	id     protocol.PeerID
	down   []downLink // links this peer serves; len == used
	joined int64      // unix ns
	penAt  int64      // unix ns of the last penalty update
	repAt  int64      // unix ns of the last report
	prefix uint64
	rx     uint64 // bytes received in all, as its last report said (flagRx)
	slots  int32  // declared slots: what its budget pays for
	budget int32  // relay budget, kbit/s, capped at MaxBudgetKbps: slots follow it and the bitrate
	grp    int32  // its address's group (viewers only)
	used   int32
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
	home   int32    // the substream this viewer relays (interior-disjoint trees)
	cc     uint16   // country, two ASCII letters
	region uint16   // interned declared region, 0 when none
	kind   uint8
	flags  uint8
}

func (p *peer) alive() bool     { return p.flags&flagAlive != 0 }
func (p *peer) hasCoords() bool { return p.flags&flagCoords != 0 }
func (p *peer) isOrigin() bool  { return p.kind == kindOrigin }

type pend struct {
	peer int32
	sub  int32
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
	if p.MaxBudgetKbps == 0 {
		p.MaxBudgetKbps = 100_000
	}
	if p.ProbationSlots == 0 {
		p.ProbationSlots = p.Substreams
	}
	if p.Probation == 0 {
		p.Probation = 15 * time.Second
	}
	if p.Delay == 0 {
		p.Delay = protocol.DefaultDelay
	}
	switch {
	case p.Overbook == 0:
		p.Overbook = overbookPct
	case p.Overbook < 100:
		p.Overbook = 100
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
	case p.MaxBudgetKbps < 0:
		return nil, fmt.Errorf("%w: MaxBudgetKbps %d", ErrBadParams, p.MaxBudgetKbps)
	case p.ProbationSlots < 0 || p.ProbationSlots > maxSlots:
		return nil, fmt.Errorf("%w: ProbationSlots %d not in 0..%d", ErrBadParams, p.ProbationSlots, maxSlots)
	case p.Probation < 0:
		return nil, fmt.Errorf("%w: Probation %v", ErrBadParams, p.Probation)
	case p.Delay < minDelay || p.Delay > protocol.MaxDelayMs*time.Millisecond:
		return nil, fmt.Errorf("%w: Delay %v not in %v..%v", ErrBadParams, p.Delay, minDelay, protocol.MaxDelayMs*time.Millisecond)
	case slices.ContainsFunc(p.Trusted, func(pr netip.Prefix) bool { return !pr.IsValid() }):
		return nil, fmt.Errorf("%w: an invalid Trusted prefix", ErrBadParams)
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
		ids:      make(map[protocol.PeerID]int32),
		bkeys:    make(map[bkey]int32),
		buckets:  []bucket{{}},
		regions:  make(map[string]uint16),
		addrs:    make(map[netip.Addr]int32),
		leaves:   make([][][]int32, p.Substreams),
	}
	return s, nil
}

// Substreams is K, the number of substreams every viewer receives.
func (s *Swarm) Substreams() int { return s.k }

// Delay is the playback delay behind live the swarm's viewers keep.
func (s *Swarm) Delay() time.Duration { return s.p.Delay }

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
	old := s.slotKbps
	s.p.BitrateKbps = kbps
	s.slotKbps = float64(kbps) / float64(s.k)
	// Allowances are measured upload: the same upload is more slots of a
	// lighter stream. (Links over an allowance go below, once the slots
	// are all resized.)
	for gi := range s.groups {
		g := &s.groups[gi]
		if len(g.members) == 0 && !g.addr.IsValid() || g.trusted {
			continue // free, or not measured
		}
		allow := int32(min(float64(g.allow)*old/s.slotKbps, maxSlots))
		if g.retryAt == 0 {
			allow = max(allow, min(s.probationSlots(), g.top))
		}
		g.allow = allow
		s.restat(int32(gi))
		s.indexGroup(int32(gi))
	}
	links := s.resizeAll(now)
	for gi := range s.groups {
		if g := &s.groups[gi]; len(g.members) > 0 && g.used > g.allow {
			links = append(links, s.shed(now, int32(gi))...)
		}
	}
	return links
}

// Slots returns how many downstream links a relay budget pays for (before
// MaxBudgetKbps and the measured allowance of Swarm's doc apply).
func (s *Swarm) Slots(budgetKbps int) int {
	if budgetKbps <= 0 {
		return 0
	}
	pct := int64(100)
	if s.overbook {
		pct = int64(s.p.Overbook)
	}
	return int(min(int64(budgetKbps)*pct*int64(s.k)/(100*int64(s.p.BitrateKbps)), maxSlots))
}

// starved turns overbooking on when the viewers' declared slots fall below
// overbookBelow % of the links they need (K each), and off once they are
// back to all of it, and resizes every viewer's slots when it turns.
// Overbooked, a relay's budget (the push share the node announces, 80%)
// buys SwarmParams.Overbook % of its slots: in a swarm that cannot feed
// itself the rest of the budget's reserve is worth more as links than as
// headroom, since every link a relay does not serve comes from the
// origin. It returns the links the resizing changed.
func (s *Swarm) starved(now time.Time) []Link {
	if s.p.Overbook <= 100 {
		return nil
	}
	var declared int64
	for _, n := range s.homeSlots {
		declared += n
	}
	if s.overbook {
		declared = declared * 100 / int64(s.p.Overbook) // about what it would be, not overbooked
	}
	need := int64(s.stats.Viewers) * int64(s.k)
	below := int64(overbookBelow) // on below 90% of the need; off again at 100%
	if s.overbook {
		below = 100
	}
	on := need >= overbookMin*int64(s.k) && declared*100 < need*below
	if on == s.overbook {
		return nil
	}
	s.overbook = on
	return s.resizeAll(now)
}

// AddOrigin registers an origin seed node with its slot count. Several origins
// may be added; each is a root. Substreams waiting for an upstream get one at
// the next Leave, SetBudget or Rebalance.
func (s *Swarm) AddOrigin(id protocol.PeerID, slots int) error {
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
// order, then the links of the viewers moved to make room for it (a relay
// takes a leaf's place high in its home tree, and the leaf moves under it:
// insert). A link of the joiner with no Upstream means nothing was free,
// not even an origin: the viewer fetches that substream over HTTP until a
// later link (ReasonPending) names an upstream.
func (s *Swarm) Join(now time.Time, pi PeerInfo) ([]Link, error) {
	s.tick(now)
	if err := s.checkInfo(pi); err != nil {
		return nil, err
	}
	i := s.admit(now, pi)
	links := make([]Link, 0, s.k)
	s.gather(now, i, nil)
	s.relaxed = false
	var moved []Link
	for k := range s.k {
		l := Link{Peer: pi.ID, Substream: k, Reason: ReasonJoin}
		if u, m := s.insert(i, k, none); u != none {
			l.Upstream = s.peers[u].id
			moved = append(moved, m)
		} else if u := s.pick(now, i, k, none, true); u != none {
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
	return append(links, moved...), nil
}

// admit registers viewer pi, unlinked: its slots, location and group.
func (s *Swarm) admit(now time.Time, pi PeerInfo) int32 {
	i := s.alloc(pi.ID)
	p := &s.peers[i]
	if pi.Kind == protocol.KindNative {
		p.kind = kindNative
	}
	p.joined = now.UnixNano()
	p.budget = int32(min(pi.BudgetKbps, s.p.MaxBudgetKbps, math.MaxInt32))
	p.slots = int32(s.Slots(int(p.budget)))
	s.setHome(p)
	s.setLoc(p, pi.Loc)
	s.stats.Viewers++
	s.stats.Unassigned += s.k
	s.enter(now, i, pi.Loc.Addr)
	return i
}

func (s *Swarm) checkInfo(pi PeerInfo) error {
	switch {
	case pi.ID == "":
		return fmt.Errorf("%w: empty id", ErrBadPeer)
	case pi.Kind != protocol.KindBrowser && pi.Kind != protocol.KindNative:
		return fmt.Errorf("%w: %s: kind %q (origins use AddOrigin)", ErrBadPeer, pi.ID, pi.Kind)
	case pi.BudgetKbps < 0:
		return fmt.Errorf("%w: %s: budget %d", ErrBadPeer, pi.ID, pi.BudgetKbps)
	case pi.Loc.HasCoords && !ValidCoords(pi.Loc.Lat, pi.Loc.Lon):
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
func (s *Swarm) Leave(now time.Time, id protocol.PeerID) []Link {
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
	s.remove(now, i)
	waiting := len(s.pending)
	links := s.reassign(now, orphans, ReasonUpstreamLeft, id, none, s.extras)
	return append(links, s.drain(now, waiting)...)
}

// Report records a viewer's health.
func (s *Swarm) Report(now time.Time, id protocol.PeerID, h Health) {
	s.tick(now)
	i, ok := s.ids[id]
	if !ok {
		return
	}
	p := &s.peers[i]
	p.flags |= flagReported
	p.repAt = now.UnixNano()
	p.buf = float32(min(max(h.BufferSec, 0), maxRankBuffer))
	p.rtt = int32(min(max(h.RTTms, 0), math.MaxInt32))
}

// ViewerDepth is a viewer's deepest hop count from the origin over all its
// substreams, as the welcome and reassignments carry it; a substream with
// no upstream comes over HTTP and counts as depth 1.
func (s *Swarm) ViewerDepth(id protocol.PeerID) int {
	depth := 0
	for k := range s.k {
		depth = max(depth, s.Depth(id, k), 1)
	}
	return depth
}

// TakeReport applies a viewer's whole report (docs/protocol.md §4): its
// receipts, which credit its upstreams (see Swarm); its health; the relay
// budget in force, when it says one, up to maxKbps and the swarm's
// MaxBudgetKbps (the tracker server lets a viewer raise the budget it
// joined with: slots follow measured delivery, not the claim); its
// complaint and the upstreams it found stalled; then the measurement of
// the upstreams it credited, when due, and the end of its own address's
// back-off, when due. It returns the links that changed. The tracker
// server and the simulator both take reports through here.
func (s *Swarm) TakeReport(now time.Time, id protocol.PeerID, r *protocol.Report, maxKbps int) []Link {
	s.tick(now)
	i, ok := s.ids[id]
	if !ok || s.peers[i].isOrigin() {
		return nil
	}
	// Receipts first: a stalled upstream is measured (as delivering
	// nothing) before the complaint moves the reporter off it.
	s.credit(now, i, r)
	s.Report(now, id, Health{BufferSec: r.BufferSec, UploadKbps: r.UploadKbps, RTTms: r.RTTms})
	var links []Link
	if r.RelayKbps != nil {
		if kbps := min(*r.RelayKbps, maxKbps, s.p.MaxBudgetKbps); int32(kbps) != s.peers[i].budget {
			links = append(links, s.SetBudget(now, id, kbps)...)
		}
	}
	if c := r.Complaint; c != nil {
		ls, applied := s.complain(now, id, c.Peer)
		links = append(links, ls...)
		if applied && (c.Reason == protocol.ComplaintBadChunk || c.Reason == protocol.ComplaintForgedManifest) {
			links = append(links, s.convict(now, id, c.Peer)...)
		}
	}
	for _, p := range r.Stalled {
		links = append(links, s.Complain(now, id, p)...)
	}
	links = append(links, s.measure(now)...)
	if p := &s.peers[i]; p.alive() && p.id == id {
		links = append(links, s.retry(now, p.grp)...)
	}
	return links
}

// Complain records that from no longer uses about: every substream from
// receives from about is reassigned, and about's reliability is penalised.
// A complaint about a peer that is not from's upstream is ignored.
func (s *Swarm) Complain(now time.Time, from, about protocol.PeerID) []Link {
	links, _ := s.complain(now, from, about)
	return links
}

// complain is Complain; applied says whether about was from's upstream.
func (s *Swarm) complain(now time.Time, from, about protocol.PeerID) ([]Link, bool) {
	s.tick(now)
	fi, ok1 := s.ids[from]
	ai, ok2 := s.ids[about]
	if !ok1 || !ok2 {
		return nil, false
	}
	s.orph = s.orph[:0]
	for k := range s.k {
		if s.subs[s.at(fi, k)].up == ai {
			s.unlink(fi, k)
			s.orph = append(s.orph, downLink{fi, int32(k)})
		}
	}
	if len(s.orph) == 0 {
		return nil, false
	}
	s.penalise(now, ai, complaintPenalty)
	return s.reassign(now, s.orph, ReasonComplaint, about, ai, nil), true
}

// SetBudget changes a viewer's relay budget (the node cut or restored its
// relay), believed up to MaxBudgetKbps and served within its address's
// allowance. Downstreams beyond the new slot count are reassigned, leaves
// first. A viewer whose slots grew while it relays nothing on its home
// substream takes a leaf's place high in that tree (offer).
func (s *Swarm) SetBudget(now time.Time, id protocol.PeerID, budgetKbps int) []Link {
	s.tick(now)
	i, ok := s.ids[id]
	if !ok || s.peers[i].isOrigin() {
		return nil
	}
	return s.setBudget(now, i, budgetKbps, true)
}

// setBudget is SetBudget for viewer i. A resize of every viewer (resizeAll)
// passes one = false: the slots grown are then left to the one drain that
// follows, and to newcomers, rather than each taking a leaf (offer).
func (s *Swarm) setBudget(now time.Time, i int32, budgetKbps int, one bool) []Link {
	p := &s.peers[i]
	id := p.id
	p.budget = int32(min(max(budgetKbps, 0), s.p.MaxBudgetKbps, math.MaxInt32))
	slots := int32(s.Slots(int(p.budget)))
	grew := slots > p.slots
	g := &s.groups[p.grp]
	g.decl += slots - p.slots
	s.homeSlots[p.home] += int64(slots - p.slots)
	p.slots = slots
	if slots == 0 { // its home leaf may be taken now
		s.enterLeaf(i, int(p.home))
	}
	s.retop(p.grp)
	s.restat(p.grp)
	s.orph = s.orph[:0]
	for p.used > p.slots {
		d := p.down[s.shedIdx(i)]
		s.unlink(d.peer, int(d.sub))
		s.orph = append(s.orph, d)
	}
	s.index(i)
	waiting := len(s.pending)
	links := s.reassign(now, s.orph, ReasonBudget, id, i, nil)
	if grew && one {
		links = append(links, s.drain(now, waiting)...)
		links = append(links, s.offer(now, i)...)
	}
	return links
}

// resizeAll recomputes every viewer's slots (the bitrate changed, or
// overbooking turned) and returns the links that changed. Substreams
// waiting for an upstream then take the slots grown, resizeDrains batches
// of them at most (the rest at the next Rebalances).
func (s *Swarm) resizeAll(now time.Time) []Link {
	var links []Link
	for i := range s.peers {
		if p := &s.peers[i]; p.alive() && !p.isOrigin() {
			links = append(links, s.setBudget(now, int32(i), int(p.budget), false)...)
		}
	}
	for range resizeDrains {
		ls := s.drain(now, len(s.pending))
		if len(ls) == 0 {
			break
		}
		links = append(links, ls...)
	}
	return links
}

// offer puts viewer i, whose relay budget just grew and which relays
// nothing on its home substream, where it relays at once: insert gives it
// the place of a leaf high in that tree, and the leaf moves under it.
// Otherwise its new slots wait for an orphan or a newcomer to pick them,
// which in a small swarm with free slots elsewhere may never happen. When
// no leaf can be taken, i keeps its upstream. It returns the links made.
func (s *Swarm) offer(now time.Time, i int32) []Link {
	p := &s.peers[i]
	k := int(p.home)
	sv := s.subs[s.at(i, k)]
	if sv.up == none || s.free(i) == 0 || s.hasDown(i, k) {
		return nil
	}
	s.gather(now, i, nil)
	s.relaxed = false
	prev := s.unlink(i, k)
	u, moved := s.insert(i, k, none)
	if u == none {
		s.link(i, k, prev)
		s.subs[s.at(i, k)].since = sv.since
		return nil
	}
	s.settle(i)
	if u == prev { // i keeps its place, and gains the leaf
		s.subs[s.at(i, k)].since = sv.since
		return []Link{moved}
	}
	l := Link{Peer: p.id, Substream: k, Upstream: s.peers[u].id, Prev: s.peers[prev].id, Reason: ReasonBudget}
	return []Link{l, moved}
}

// Rebalance retries substreams waiting for an upstream, then moves
// long-lived relays (that may serve ≥ 2K links, here for 10 s) that sit at
// depth 3 or more up to an origin, making room if needed by moving a leaf
// viewer with few slots from the origin to a peer; when no origin slot can
// be had, under a peer two or more levels shallower than its upstream (the
// trees a flash crowd builds while every address is on probation are deep).
// Then it raises viewers (here for 10 s) that relay their home substream
// to a subtree from depth 3 or more, each by swapping places with the
// shallowest leaf above it. Last it brings links nearer (localize): a
// viewer fed from farther than its region (500 km, or another country)
// moves, with its subtree, to a nearer candidate that can serve it and is
// no deeper (one level deeper for a leaf). Its work is bounded (a few
// hundred samples, at most 8 moves and 16 swaps; for localize a quarter of
// the viewers, 256 to 2,048, and a link per 16 viewers, 64 to 512), so the
// server may call it every few seconds.
func (s *Swarm) Rebalance(now time.Time) []Link {
	s.tick(now)
	links := s.starved(now)
	links = append(links, s.drain(now, len(s.pending))...)
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
					// No peer can take a leaf off the origin: h moves
					// under a much shallower peer, or else swaps places
					// with a leaf of the origin.
					if l, ok := s.lift(now, h, k); ok {
						links = append(links, l)
						moves++
					} else if ls := s.swapIn(h, k); ls != nil {
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
	raised := 0
	for try := 0; try < raiseTries && raised < raiseMoves && s.stats.Viewers > 0; try++ {
		h := int32(s.rng.IntN(len(s.peers)))
		if p := &s.peers[h]; !p.alive() || p.isOrigin() {
			continue
		}
		if ls := s.raise(now, h); ls != nil {
			links = append(links, ls...)
			raised++
		}
	}
	local := 0
	nTries := min(max(localTries, s.stats.Viewers/4), maxLocalTries)
	nMoves := min(max(localMoves, s.stats.Viewers/16), maxLocalTries/4)
	for try := 0; try < nTries && local < nMoves && s.stats.Viewers > 0; try++ {
		h := int32(s.rng.IntN(len(s.peers)))
		if p := &s.peers[h]; !p.alive() || p.isOrigin() {
			continue
		}
		ls := s.localize(now, h)
		links = append(links, ls...)
		local += len(ls)
	}
	return links
}

// Upstreams returns id's upstream per substream ("" where it has none), or
// nil for an unknown id or an origin.
func (s *Swarm) Upstreams(id protocol.PeerID) []protocol.PeerID {
	i, ok := s.ids[id]
	if !ok || s.peers[i].isOrigin() {
		return nil
	}
	ups := make([]protocol.PeerID, s.k)
	for k := range s.k {
		if u := s.subs[s.at(i, k)].up; u != none {
			ups[k] = s.peers[u].id
		}
	}
	return ups
}

// Downstreams returns the links id serves (Reason is empty).
func (s *Swarm) Downstreams(id protocol.PeerID) []Link {
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
func (s *Swarm) Linked(a, b protocol.PeerID) bool {
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
func (s *Swarm) Depth(id protocol.PeerID, substream int) int {
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

func (s *Swarm) tick(now time.Time) {
	if now.After(s.now) {
		s.now = now
	}
}
