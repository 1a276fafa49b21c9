package scheduler

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Chunk is one chunk of the window that is wanted and not yet held.
type Chunk struct {
	Seq      uint64
	Deadline time.Time // playback deadline
	Size     int       // bytes, from the signed manifest
	// Pending lists the peers (PeerState.ID) already asked for this chunk and
	// not yet answered. Drop peers that have gone away.
	Pending []string
}

// PeerState is what the node knows about one connected peer, or the origin.
type PeerState struct {
	ID          string
	Have        *SeqSet       // chunks the peer announced; ignored for the origin
	BytesPerSec float64       // measured download throughput from this peer; 0 if unknown
	RTT         time.Duration // measured round-trip time
	InFlight    int           // requests outstanding to this peer
	QueuedBytes int           // bytes of those requests not yet received
	Choked      bool          // the peer will not serve us now
	IsOrigin    bool          // the origin server: has everything, used only near deadlines
}

// Request asks Peer for chunk Seq. Duplicate marks a second request for a
// chunk already pending elsewhere, made only in its last moments.
type Request struct {
	Seq       uint64
	Peer      string
	Duplicate bool
}

// PullParams configures pull repair. Zero durations are taken literally.
type PullParams struct {
	// Chunks whose deadline is closer than SequentialWindow are pulled in
	// deadline (then seq) order; the rest rarest-first.
	SequentialWindow time.Duration
	// The origin is asked only for chunks whose deadline is closer than
	// OriginMargin and that no peer can deliver in time.
	OriginMargin time.Duration
	// A pending chunk is requested again, from another source, only when its
	// deadline is closer than DuplicateWindow. At most two requests per chunk.
	DuplicateWindow time.Duration
	// A peer is asked only if its estimated completion is at least PeerMargin
	// before the deadline.
	PeerMargin time.Duration
	// Cap on a peer's pipeline depth; 0 means 16.
	MaxInFlightPerPeer int
	// OriginInFlight is the least pipeline depth granted to the origin (an
	// HTTP server takes parallel requests whatever its measured pace); 0
	// leaves the origin to PipelineDepth like a peer.
	OriginInFlight int
	// Throughput assumed for peers with no measurement yet; 0 leaves such
	// peers out (the origin is still used near deadlines).
	DefaultBytesPerSec float64
	// Breaks ties between equally good peers; nil picks the first in peers order.
	Rand *rand.Rand
}

// DefaultPullParams are reasonable settings for 250 ms chunks and a few
// seconds of buffer.
func DefaultPullParams() PullParams {
	return PullParams{
		SequentialWindow:   2 * time.Second,
		OriginMargin:       time.Second,
		DuplicateWindow:    500 * time.Millisecond,
		PeerMargin:         100 * time.Millisecond,
		MaxInFlightPerPeer: 16,
		OriginInFlight:     4,
		DefaultBytesPerSec: 64 << 10,
	}
}

const defaultMaxInFlight = 16

// PipelineDepth is how many requests to keep outstanding to a peer: enough to
// cover its bandwidth-delay product in chunks of chunkSize bytes, plus one,
// capped at maxDepth (if positive). Without a measurement it is 1.
func PipelineDepth(bytesPerSec float64, rtt time.Duration, chunkSize, maxDepth int) int {
	d := 1
	if bytesPerSec > 0 && rtt > 0 && chunkSize > 0 {
		bdp := math.Ceil(bytesPerSec * rtt.Seconds() / float64(chunkSize))
		d = int(min(bdp, 1<<20)) + 1
	}
	if maxDepth > 0 && d > maxDepth {
		d = maxDepth
	}
	return d
}

// peerPlan is a source's state during one Plan call.
type peerPlan struct {
	id     string
	have   *SeqSet
	bps    float64
	rtt    float64 // seconds
	queued float64 // bytes outstanding, including this tick's requests
	slots  int     // requests this tick may still add
}

// Planner decides pull requests tick by tick, reusing its scratch memory. It
// is deterministic given its inputs and Rand, and not safe for concurrent use.
type Planner struct {
	p      PullParams
	order  []int32 // indexes into wanted, by (deadline, seq)
	far    []int32 // far-out indexes, rarest first
	rarity []int32
	counts []int
	cands  []peerPlan
	haves  []*SeqSet
	// This tick's sources' room: peerFree counts the viewers' slots; the
	// origin's are in origin.slots.
	origin    peerPlan
	hasOrigin bool
	peerFree  int
}

// NewPlanner returns a Planner with the given parameters.
func NewPlanner(p PullParams) *Planner {
	if p.MaxInFlightPerPeer <= 0 {
		p.MaxInFlightPerPeer = defaultMaxInFlight
	}
	return &Planner{p: p}
}

// PlanPulls is Planner.Plan on a fresh Planner.
func PlanPulls(now time.Time, wanted []Chunk, peers []PeerState, p PullParams) []Request {
	return NewPlanner(p).Plan(nil, now, wanted, peers)
}

// Plan appends to dst this tick's requests for the wanted chunks and returns
// it. Chunks are considered most urgent first: those due within
// SequentialWindow by deadline, then the rest rarest-first (fewest peers
// holding them, then by deadline and seq). Each goes to the eligible peer with
// the earliest estimated completion (RTT + queued bytes / throughput + size /
// throughput) that still beats the deadline by PeerMargin; a peer is eligible if
// it has the chunk, is not choked, and has pipeline room (PipelineDepth minus
// InFlight). If none qualifies and the deadline is within OriginMargin, the
// origin is asked. Chunks past their deadline are skipped.
func (pl *Planner) Plan(dst []Request, now time.Time, wanted []Chunk, peers []PeerState) []Request {
	p := &pl.p
	// Mean chunk size sizes the pipelines.
	total := 0
	for i := range wanted {
		total += wanted[i].Size
	}
	mean := 1
	if len(wanted) > 0 {
		mean = max(total/len(wanted), 1)
	}

	pl.cands, pl.haves = pl.cands[:0], pl.haves[:0]
	pl.origin, pl.hasOrigin, pl.peerFree = peerPlan{}, false, 0
	for i := range peers {
		ps := &peers[i]
		bps := ps.BytesPerSec
		if bps <= 0 {
			bps = p.DefaultBytesPerSec
		}
		if ps.IsOrigin {
			if pl.hasOrigin || ps.Choked {
				continue
			}
			depth := p.MaxInFlightPerPeer
			if bps > 0 {
				depth = max(PipelineDepth(bps, ps.RTT, mean, p.MaxInFlightPerPeer), p.OriginInFlight)
			}
			pl.origin = peerPlan{id: ps.ID, bps: bps, rtt: ps.RTT.Seconds(), queued: float64(ps.QueuedBytes), slots: depth - ps.InFlight}
			pl.hasOrigin = pl.origin.slots > 0
			continue
		}
		pl.haves = append(pl.haves, ps.Have)
		if ps.Choked || bps <= 0 {
			continue
		}
		slots := PipelineDepth(bps, ps.RTT, mean, p.MaxInFlightPerPeer) - ps.InFlight
		if slots <= 0 {
			continue
		}
		pl.cands = append(pl.cands, peerPlan{id: ps.ID, have: ps.Have, bps: bps, rtt: ps.RTT.Seconds(), queued: float64(ps.QueuedBytes), slots: slots})
		pl.peerFree += slots
	}
	if pl.peerFree == 0 && !pl.hasOrigin {
		return dst
	}

	// Order live chunks by (deadline, seq); a window usually arrives sorted.
	pl.order = pl.order[:0]
	for i := range wanted {
		if wanted[i].Deadline.After(now) {
			pl.order = append(pl.order, int32(i))
		}
	}
	byDeadline := func(a, b int32) int {
		ca, cb := &wanted[a], &wanted[b]
		if c := ca.Deadline.Compare(cb.Deadline); c != 0 {
			return c
		}
		switch {
		case ca.Seq < cb.Seq:
			return -1
		case ca.Seq > cb.Seq:
			return 1
		}
		return 0
	}
	if !slices.IsSortedFunc(pl.order, byDeadline) {
		slices.SortFunc(pl.order, byDeadline)
	}

	// Sequential phase.
	seqEnd := now.Add(p.SequentialWindow)
	u := 0
	for ; u < len(pl.order) && wanted[pl.order[u]].Deadline.Before(seqEnd); u++ {
		dst = pl.assign(dst, now, &wanted[pl.order[u]])
		if pl.peerFree == 0 && !pl.hasOrigin {
			return dst
		}
	}
	// Far out, only viewers serve unless the origin margin reaches past the
	// sequential window.
	originFar := pl.hasOrigin && p.OriginMargin > p.SequentialWindow
	if pl.peerFree == 0 && !originFar {
		return dst
	}

	// Rarest-first phase: a stable counting sort by availability keeps
	// (deadline, seq) order among equally rare chunks.
	rest := pl.order[u:]
	n := len(pl.haves)
	pl.counts = slices.Grow(pl.counts[:0], n+2)[:n+2]
	clear(pl.counts)
	pl.rarity = slices.Grow(pl.rarity[:0], len(rest))[:len(rest)]
	for j, idx := range rest {
		seq := wanted[idx].Seq
		r := int32(0)
		for _, h := range pl.haves {
			if h.Has(seq) {
				r++
			}
		}
		pl.rarity[j] = r
		pl.counts[r+1]++
	}
	for r := 1; r < len(pl.counts); r++ {
		pl.counts[r] += pl.counts[r-1]
	}
	unheld := pl.counts[1] // chunks no viewer holds sort first
	pl.far = slices.Grow(pl.far[:0], len(rest))[:len(rest)]
	for j, idx := range rest {
		r := pl.rarity[j]
		pl.far[pl.counts[r]] = idx
		pl.counts[r]++
	}
	far := pl.far
	if !originFar {
		far = far[unheld:]
	}
	for _, idx := range far {
		dst = pl.assign(dst, now, &wanted[idx])
		if pl.peerFree == 0 && !(originFar && pl.hasOrigin) {
			break
		}
	}
	return dst
}

// assign requests c from the best source, if any, and books the request.
func (pl *Planner) assign(dst []Request, now time.Time, c *Chunk) []Request {
	p := &pl.p
	left := c.Deadline.Sub(now)
	dup := len(c.Pending) > 0
	if dup && (left >= p.DuplicateWindow || len(c.Pending) >= 2) {
		return dst
	}
	budget := (left - p.PeerMargin).Seconds()
	size := float64(c.Size)
	best, ties := -1, 0
	var bestT float64
	for k := range pl.cands {
		pp := &pl.cands[k]
		if pp.slots <= 0 || !pp.have.Has(c.Seq) {
			continue
		}
		t := pp.rtt + (pp.queued+size)/pp.bps
		if t > budget || (dup && slices.Contains(c.Pending, pp.id)) {
			continue
		}
		switch {
		case best < 0 || t < bestT:
			best, bestT, ties = k, t, 1
		case t == bestT && p.Rand != nil:
			ties++
			if p.Rand.IntN(ties) == 0 {
				best = k
			}
		}
	}
	var src *peerPlan
	switch {
	case best >= 0:
		src = &pl.cands[best]
		pl.peerFree--
	case pl.hasOrigin && left < p.OriginMargin && !(dup && slices.Contains(c.Pending, pl.origin.id)):
		src = &pl.origin
		pl.hasOrigin = pl.origin.slots > 1
	default:
		return dst
	}
	src.slots--
	src.queued += size
	return append(dst, Request{Seq: c.Seq, Peer: src.id, Duplicate: dup})
}
