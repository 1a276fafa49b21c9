package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// LinkID names one open data-channel link. The driver chooses it; the core
// only compares it. A peer may be behind two links (one each way).
type LinkID uint64

// ChunkVerifier decides what is genuine: the entries of signed manifest
// batches, and chunk bytes that match one. Production uses *Verifier (the
// stream's Ed25519 key and BLAKE3); a simulator may trust its own batches and
// check sizes only.
type ChunkVerifier interface {
	// Learn verifies a batch from the origin; it returns the batch's entries
	// when the batch is new, nil when it was known.
	Learn(b *manifest.Batch) ([]manifest.Entry, error)
	// LearnSigned is Learn for a batch a peer relayed in its wire form.
	// It also returns the batch's number.
	LearnSigned(sb manifest.SignedBatch) (uint64, []manifest.Entry, error)
	// Check accepts data as chunk id only if it matches a signed entry.
	Check(id manifest.ID, data []byte) (manifest.Entry, error)
	Entry(id manifest.ID) (manifest.Entry, bool)
	// CheckPieces accepts data as bytes [off, off+len(data)) of chunk id,
	// whole pieces from a piece boundary, only if outboard proves them
	// against the chunk's signed entry (manifest.VerifyPieces).
	CheckPieces(id manifest.ID, outboard []byte, off int, data []byte) (manifest.Entry, error)
	// Outboard returns the outboard of chunk id, whose bytes are data
	// (manifest.Outboard).
	Outboard(id manifest.ID, data []byte) []byte
	BatchOf(id manifest.ID) (uint64, bool)
	Signed(n uint64) (manifest.SignedBatch, bool)
}

// ChunkStore holds verified chunks (*Store: a byte-bounded LRU, with an
// optional age window). A simulator's store may keep sizes only.
type ChunkStore interface {
	Put(id manifest.ID, data []byte)
	Get(id manifest.ID) ([]byte, bool)
	Has(id manifest.ID) bool
}

// DefaultBuffer is Params.Buffer's default, the tracker's default delay
// (protocol.DefaultDelay, 3.5 s): a node keeps the delay its welcome gives
// and this one only when the welcome names none. At 2 s a 1,000-viewer
// swarm's pushes miss the window that the origin's margin leaves, at 2.5 s
// a 30,000-viewer flash crowd's do (docs/benchmarks.md).
const DefaultBuffer = protocol.DefaultDelay

// Params configures a Node. Zero durations take the defaults shown.
type Params struct {
	Stream string
	// Seed makes this node the origin's root seed: it fetches every chunk as
	// soon as it is listed, pulls from no peer and runs no RTT guard.
	Seed bool
	// BudgetKbps is the relay budget; 0 relays nothing: no media byte goes
	// to a peer, and downstreams are choked.
	BudgetKbps int
	// Renditions the node plays and carries (SelectRenditions), at most
	// wire.MaxRenditions.
	Renditions []string
	// Substreams is K from the tracker's welcome; Upstreams its upstream per
	// substream ("" = over HTTP), and Depth this node's depth.
	Substreams int
	Upstreams  []protocol.PeerID
	Depth      int
	// Manifest is the first manifest window, from the origin. The playback
	// clock starts at its live edge, as of ManifestAt: when it was fetched
	// (zero, or after Now: Now). A manifest fetched while the node was still
	// loading keeps the clock true that way: the live edge is taken to
	// have moved on since by the manifest's age.
	Manifest   *manifest.Manifest
	ManifestAt time.Time
	Verifier   ChunkVerifier
	Store      ChunkStore
	Now        time.Time

	// PollEvery is the manifest poll while some substream comes over HTTP
	// (200 ms); SlowPoll otherwise (1 s), when signed batches come from
	// peers with the chunks. Notified: the driver calls ManifestChanged and
	// polls run at SlowPoll. PingEvery is the RTT probe period (1 s).
	PollEvery, SlowPoll, PingEvery time.Duration
	Notified                       bool
	// OwnedFrames says the messages handed to Receive are the core's to
	// keep (a simulator's in-memory messages): whole chunks are stored
	// without a copy. Drivers that decode from a reused buffer leave it off.
	OwnedFrames bool
	// TickEvery is the scheduler's tick (50 ms).
	TickEvery time.Duration
	// PushGrace is how long a chunk is left to its substream's pusher
	// before the scheduler may pull it elsewhere (400 ms).
	PushGrace time.Duration
	// StallAfter is how long an upstream may push nothing, while chunks of
	// its substreams are due, before it is reported stalled (2 s).
	StallAfter time.Duration
	// ReportEvery is the health report period (2 s).
	ReportEvery time.Duration
	// Buffer is the playback delay behind the live edge: the welcome's
	// delayMs, else DefaultBuffer (3.5 s); Startup the
	// extra wait at start to fetch the first chunks (500 ms).
	Buffer, Startup time.Duration
	// DialBackoff is how long a failed upstream is not dialed again (5 s).
	DialBackoff time.Duration
	// Pull tunes pull repair (nil: scheduler.DefaultPullParams()).
	Pull *scheduler.PullParams
	// Guard tunes the RTT guard (zero values: its defaults).
	Guard scheduler.RTTGuardParams
	// Rand jitters the waits after the origin refuses a fetch for load
	// (nil: a source seeded from Now, which differs from node to node).
	Rand *rand.Rand
	// CutThrough turns cut-through relay on (docs/protocol.md §5.8): the
	// node sends outboards with its pushes to relays, and pushes a chunk
	// arriving with one on piece by piece, as each verifies. Off, it pushes
	// a chunk on only once it is whole. Off by default: in the simulator it
	// cut delivery p95 by 18% at best, 6% with the default chunks
	// (docs/benchmarks.md), short of the 30% that would pay for it.
	CutThrough bool
}

func (p *Params) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.PollEvery, 200*time.Millisecond)
	def(&p.SlowPoll, time.Second)
	def(&p.PingEvery, time.Second)
	def(&p.TickEvery, 50*time.Millisecond)
	def(&p.PushGrace, 400*time.Millisecond)
	def(&p.StallAfter, 2*time.Second)
	def(&p.ReportEvery, 2*time.Second)
	def(&p.Buffer, DefaultBuffer)
	def(&p.Startup, 500*time.Millisecond)
	def(&p.DialBackoff, 5*time.Second)
	p.Substreams = max(p.Substreams, 1)
}

// Errors of New.
var (
	ErrParams = errors.New("swarm/core: bad params")
	// ErrOriginBusy is what a driver wraps into ChunkFetched's error when
	// the origin refused the fetch for load (HTTP 503 or 429: its egress
	// cap was reached). The node then leaves the origin alone for a
	// while, growing and jittered, and pulls from its peers meanwhile
	// (Stats.OriginBusy).
	ErrOriginBusy = errors.New("swarm/core: origin busy")
)

// Stats counts what a node received and sent (cumulative, except the
// gauges Peers, Depth, RelayKbps, Throttled and RTT).
type Stats struct {
	BytesFromPeers  int64 // verified media bytes received from peers
	BytesFromOrigin int64 // ... from the origin: over HTTP, or from its seed node
	BytesFromSeed   int64 // the part of BytesFromOrigin the seed pushed or answered
	BytesUploaded   int64 // media bytes sent to peers (with their framing)
	BytesControl    int64 // haves, relayed manifest batches and other control frames sent to peers
	Chunks          int   // verified and stored
	Rejected        int   // chunks or batches that failed verification
	Unknown         int   // chunks a peer sent before their signed entry (dropped)
	Pulled          int   // chunks pulled from peers (requests answered)
	Pushed          int   // chunks pushed by upstream peers
	CutThrough      int   // pushes to peers begun before the chunk was whole
	PushesDropped   int   // pushes given up because the peer's have showed it held the chunk
	PullsNoPusher   int   // pull requests for chunks of substreams with no live pusher
	PullsLatePush   int   // ... for chunks their pusher had not pushed within PushGrace
	OriginPulls     int   // chunks the planner asked the origin for (near their deadline)
	HTTPFed         int   // chunks fetched over HTTP because their substream had no upstream
	OriginBusy      int   // origin fetches refused for load (ErrOriginBusy)
	Peers           int   // open links
	Reassigned      int   // substreams the tracker gave a new upstream
	StallReports    int   // upstreams reported stalled
	Complaints      int   // peers cut off for lying or malformed messages
	ChunksOnTime    int   // media chunks held before their playback deadline
	ChunksLate      int   // media chunks held after it, or never
	// LatencyP50 and LatencyP95 are over the last 512 chunks, from when
	// ingest finished a chunk to when this node held it verified.
	LatencyP50, LatencyP95 time.Duration
	// Depth is this node's deepest hop count from the origin over its
	// substreams, as the tracker last assigned them (0 for the seed).
	Depth int
	// Delay is the playback delay behind live this node keeps (Buffer:
	// the tracker's, from the welcome, unless set).
	Delay time.Duration
	// RelayKbps is the relay rate in force: the budget, less what the RTT
	// guard cut; Throttled is set while the guard cuts it.
	RelayKbps int64
	Throttled bool
	RTT       time.Duration // smoothed RTT to the origin
}

// Node is the I/O-free core of a swarm node. Every input carries the time;
// outputs are polled with Poll, and NextWake says when Tick is due. It reads
// no clock, starts no goroutine and is not safe for concurrent use: a driver
// serializes the calls.
type Node struct {
	p      Params
	verify ChunkVerifier
	store  ChunkStore
	k      int
	out    []Output
	outHd  int

	// Renditions this node plays and carries, and their index in keys (ri);
	// slot remembers the index of every rendition ever carried, so that
	// keys stay stable when the quality changes.
	rends []string
	ri    map[string]int
	slot  map[string]int
	inits map[string]manifest.Entry // the newest init segment of every rendition listed
	// The playback clock: chunk media time playFrom plays at t0, and the
	// node wants chunks from startSeq on.
	t0       time.Time
	playFrom time.Duration
	startSeq uint64
	anchored bool
	chunkD   time.Duration
	// Batches learnt: every batch up to contig is known (-1: none yet), so
	// polls ask only for what comes after it.
	contig  int64
	batches scheduler.SeqSet

	upstreams []protocol.PeerID         // per substream; "" = over HTTP
	ups       map[protocol.PeerID]*peer // links this node dialed
	dialing   map[protocol.PeerID]bool
	backoff   map[protocol.PeerID]time.Time // dial failed: not again before
	peers     map[LinkID]*peer              // every open link
	plist     []*peer                       // the same, in the order they opened
	stalled   []protocol.PeerID             // to report
	received  map[protocol.PeerID]uint64    // media bytes each peer delivered since the last report
	listed    []time.Time                   // per substream: when a wanted chunk was last listed

	wants    map[manifest.ID]*want
	wantList []*want // the same, in key order
	byKey    map[uint64]*want
	held     []scheduler.SeqSet     // per rendition index: seqs held
	heldID   map[uint64]manifest.ID // key → id of the chunks held, for backfills
	fetching map[manifest.ID]manifest.Entry
	originIn int // origin fetches in flight
	// The origin refused a fetch for load: it is not asked over HTTP
	// before busyUntil; busyStrikes refusals in a row set the wait.
	busyUntil   time.Time
	busyStrikes int
	rng         *rand.Rand
	initRetry   []manifest.Entry // init segments to fetch again (refused for load, or failed), in order
	// An init segment whose fetch failed otherwise (a network error, an
	// HTTP error, bytes that do not verify) is asked again from
	// initUntil; initStrikes failures in a row set the wait.
	initUntil   time.Time
	initStrikes int

	planner *scheduler.Planner
	pull    scheduler.PullParams
	chunks  []scheduler.Chunk
	states  []scheduler.PeerState
	reqs    []scheduler.Request
	byID    map[string]*peer
	nextReq uint32

	bucket    *scheduler.TokenBucket
	guard     *scheduler.RTTGuard
	budget    int     // kbps, as set
	rate      float64 // bytes/s in force
	fragSize  int
	burst     int // the bucket's depth in bytes
	jobs      []*upJob
	active    []*upJob // jobs begun, in the order they began
	inbound   map[manifest.ID]*inbound
	obs       *simplelru.LRU[manifest.ID, []byte] // outboards of chunks held, for pushes to relays
	upWake    time.Time                           // when the bucket holds the next frame (zero: not waiting)
	lastUp    string                              // round-robin cursor of OrderUploads
	toldRelay int                                 // relay kbps the tracker was last told (at join: the push share of the budget)

	// Timers.
	nextTick, nextHave, nextReport, nextPoll, nextPing time.Time
	polling, pinging                                   bool

	stats     Stats
	latencies []time.Duration
	latNext   int
	judged    map[manifest.ID]bool
	newest    uint64 // newest seq held
	announced int    // stats.Chunks at the last Have
	lastRep   struct {
		at       time.Time
		uploaded int64
	}
}

// want is a chunk of the window this node needs and does not hold.
type want struct {
	e        manifest.Entry
	key      uint64
	sub      int
	since    time.Time // when its entry was learnt
	deadline time.Time
	pending  []string // planner ids asked and not answered
}

// keyOf packs a rendition index and seq into one scheduler sequence number.
func keyOf(seq uint64, ri int) uint64 { return seq<<5 | uint64(ri) }

// New returns a node that starts at p.Now with p.Manifest's window.
func New(p Params) (*Node, error) {
	p.defaults()
	switch {
	case p.Verifier == nil || p.Store == nil || p.Manifest == nil:
		return nil, fmt.Errorf("%w: Verifier, Store and Manifest are required", ErrParams)
	case len(p.Renditions) == 0 || len(p.Renditions) > wire.MaxRenditions:
		return nil, fmt.Errorf("%w: %d renditions (1 to %d)", ErrParams, len(p.Renditions), wire.MaxRenditions)
	case p.Substreams > wire.MaxSubstreams:
		return nil, fmt.Errorf("%w: %d substreams", ErrParams, p.Substreams)
	}
	now := p.Now
	pull := scheduler.DefaultPullParams()
	if p.Pull != nil {
		pull = *p.Pull
	}
	g := p.Guard
	g.Now = now
	n := &Node{
		p: p, verify: p.Verifier, store: p.Store, k: p.Substreams,
		rends: slices.Clone(p.Renditions), ri: map[string]int{}, slot: map[string]int{}, contig: -1,
		upstreams: make([]protocol.PeerID, p.Substreams), listed: make([]time.Time, p.Substreams),
		ups: map[protocol.PeerID]*peer{}, dialing: map[protocol.PeerID]bool{}, backoff: map[protocol.PeerID]time.Time{}, inits: map[string]manifest.Entry{},
		peers: map[LinkID]*peer{}, byID: map[string]*peer{}, received: map[protocol.PeerID]uint64{},
		wants: map[manifest.ID]*want{}, byKey: map[uint64]*want{}, held: make([]scheduler.SeqSet, wire.MaxRenditions),
		fetching: map[manifest.ID]manifest.Entry{}, judged: map[manifest.ID]bool{}, heldID: map[uint64]manifest.ID{},
		inbound: map[manifest.ID]*inbound{},
		planner: scheduler.NewPlanner(pull), pull: pull,
		bucket: scheduler.NewTokenBucket(scheduler.TokenBucketParams{Now: now}),
		guard:  scheduler.NewRTTGuard(g), budget: p.BudgetKbps,
		nextTick: now.Add(p.TickEvery), nextHave: now, nextReport: now.Add(p.ReportEvery),
		nextPoll: now.Add(p.PollEvery), nextPing: now,
		rng: p.Rand,
	}
	if n.rng == nil {
		n.rng = rand.New(rand.NewPCG(uint64(now.UnixNano()), 0x5eedca57))
	}
	n.obs, _ = simplelru.NewLRU[manifest.ID, []byte](obCacheLen, nil) // errs only for a size < 1
	n.stats.Depth = p.Depth
	for i, r := range n.rends {
		n.ri[r], n.slot[r] = i, i
	}
	copy(n.upstreams, p.Upstreams)
	n.setRate(now)
	n.toldRelay = n.budget * PushShare / 100
	m := p.Manifest
	var age time.Duration
	if !p.ManifestAt.IsZero() && p.ManifestAt.Before(now) {
		age = now.Sub(p.ManifestAt)
	}
	n.anchor(now, m, age)
	for _, b := range m.Batches {
		n.contig = max(n.contig, int64(b.N)) // the first window is whole
	}
	if err := n.learnManifest(now, m); err != nil {
		return nil, err
	}
	n.linkUpstreams(now)
	n.pump(now)
	return n, nil
}

// anchor starts the playback clock at the live edge of the first manifest,
// Buffer behind it; the manifest was fetched age ago, and the edge has moved
// on by as much. An empty manifest leaves it to the first entry learnt.
func (n *Node) anchor(now time.Time, m *manifest.Manifest, age time.Duration) {
	if d := time.Duration(m.ChunkDurationMs * float64(time.Millisecond)); d > 0 {
		n.chunkD = d
	}
	if len(m.Entries) == 0 {
		return
	}
	last := m.Entries[len(m.Entries)-1]
	n.anchorAt(now, time.Duration(last.MediaTimeUs+last.DurationUs)*time.Microsecond+age)
	n.startSeq = ^uint64(0)
	for _, e := range m.Entries {
		if time.Duration(e.MediaTimeUs)*time.Microsecond >= n.playFrom && e.Seq < n.startSeq {
			n.startSeq = e.Seq
		}
	}
	if n.startSeq == ^uint64(0) {
		n.startSeq = last.Seq + 1
	}
	// A player can only start decoding at an independent (key) chunk:
	// start at the newest one at or before playFrom, so that the picture
	// shows as soon as playback starts, not a GOP later. Seqs are time
	// slots shared by every rendition, so audio starts there too.
	video := map[string]bool{}
	for _, r := range m.Renditions {
		video[r.Name] = r.Kind == "video"
	}
	for i := len(m.Entries) - 1; i >= 0; i-- {
		if e := m.Entries[i]; video[e.Rendition] && e.Independent && e.Seq <= n.startSeq {
			n.startSeq = e.Seq
			break
		}
	}
}

// anchorAt says media time edge is live at now.
func (n *Node) anchorAt(now time.Time, edge time.Duration) {
	n.t0, n.playFrom, n.anchored = now.Add(n.p.Startup), edge-n.p.Buffer, true
}

// deadline is when a chunk plays: on the playback clock, and no earlier
// than the clock's start for the chunks before playFrom that a decoder
// needs first (from the independent chunk playback starts at).
func (n *Node) deadline(e manifest.Entry) time.Time {
	d := n.t0.Add(e.MediaTime - n.playFrom)
	if d.Before(n.t0) {
		return n.t0
	}
	return d
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	s := n.stats
	s.Peers, s.Delay = len(n.peers), n.p.Buffer
	if len(n.latencies) > 0 {
		l := slices.Clone(n.latencies)
		slices.Sort(l)
		s.LatencyP50, s.LatencyP95 = l[len(l)/2], l[(len(l)*95)/100]
	}
	s.RelayKbps = int64(n.rate * 8 / 1000)
	gs := n.guard.Status()
	s.Throttled, s.RTT = gs.Throttled && n.budget > 0, gs.Smoothed
	return s
}

// LatencySamples returns the delivery latencies of the last 512 chunks held
// (ingest finished → held verified), in no particular order.
func (n *Node) LatencySamples() []time.Duration { return slices.Clone(n.latencies) }

// Renditions are the renditions the node carries.
func (n *Node) Renditions() []string { return slices.Clone(n.rends) }

// Substreams is K, the number of substreams of each rendition.
func (n *Node) Substreams() int { return n.k }

// Upstreams returns the upstream of each substream ("" = over HTTP).
func (n *Node) Upstreams() []protocol.PeerID { return slices.Clone(n.upstreams) }

// Links returns the open links and whether each is an upstream (dialed).
func (n *Node) Links() map[LinkID]bool {
	out := make(map[LinkID]bool, len(n.peers))
	for id, p := range n.peers {
		out[id] = p.up
	}
	return out
}

// NextWake is when Tick must be called next at the latest: the earliest of
// the scheduler tick, the next report, poll or ping, and the moment the
// token bucket holds the next upload frame.
func (n *Node) NextWake() time.Time {
	w := n.nextReport
	if !n.p.Seed {
		w = minTime(w, n.nextTick)
	}
	if !n.polling {
		w = minTime(w, n.nextPoll)
	}
	if !n.pinging && !n.p.Seed {
		w = minTime(w, n.nextPing)
	}
	if !n.upWake.IsZero() {
		w = minTime(w, n.upWake)
	}
	return w
}

// Tick runs whatever is due at now: the scheduling round, announcements,
// reports, polls, pings and uploads.
func (n *Node) Tick(now time.Time) {
	if !n.p.Seed && !now.Before(n.nextTick) {
		n.tick(now)
		n.nextTick = now.Add(n.p.TickEvery)
		if !now.Before(n.nextHave) {
			n.announce(now)
			n.nextHave = now.Add(haveEvery)
		}
	}
	if !now.Before(n.nextReport) {
		n.report(now)
	}
	if !n.polling && !now.Before(n.nextPoll) {
		n.polling = true
		n.emit(Output{Kind: OutFetchManifest, After: n.contig})
	}
	if !n.p.Seed && !n.pinging && !now.Before(n.nextPing) {
		n.pinging = true
		n.emit(Output{Kind: OutPing})
	}
	n.pump(now)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// ManifestFetched takes the answer to an OutFetchManifest: the signed
// batches are verified and learnt. A refused manifest is returned as an
// error (and counted); nothing of it is learnt past the first bad batch.
func (n *Node) ManifestFetched(now time.Time, m *manifest.Manifest, err error) error {
	n.polling = false
	every := n.p.SlowPoll
	if !n.p.Notified && (n.p.Seed || n.httpFed(now)) {
		every = n.p.PollEvery
	}
	n.nextPoll = now.Add(every)
	if err == nil {
		err = n.learnManifest(now, m)
	}
	n.pump(now)
	return err
}

// ManifestChanged says the origin's manifest has news (a Notifier source):
// the next poll is due now.
func (n *Node) ManifestChanged(now time.Time) {
	n.nextPoll = now
}

// RTT takes the answer to an OutPing: a round-trip time to the origin, or a
// failure (err ≠ nil, ignored but for scheduling the next ping). The RTT
// guard cuts relay when the RTT rises well above its baseline; downstreams
// are choked when relay is cut to nothing, and unchoked when it returns.
func (n *Node) RTT(now time.Time, rtt time.Duration, err error) {
	n.pinging = false
	n.nextPing = now.Add(n.p.PingEvery)
	if err != nil || n.p.Seed {
		return
	}
	before := n.guard.Factor()
	n.guard.Observe(now, rtt)
	if n.guard.Factor() != before {
		n.applyRate(now)
	}
	n.pump(now)
}

// SetBudget changes the relay budget while running (the user moved the
// slider).
func (n *Node) SetBudget(now time.Time, kbps int) {
	n.budget = max(kbps, 0)
	n.applyRate(now)
	n.pump(now)
}

// ErrRenditions is returned by SetRenditions for a list the node cannot
// carry.
var ErrRenditions = errors.New("swarm/core: renditions")

// SetRenditions changes the renditions the node plays and carries while it
// runs (the user picked another quality): upstreams are subscribed to the
// new ones and unsubscribed from the dropped ones, whose wants are
// forgotten (not counted late). At most wire.MaxRenditions distinct names
// over the node's life.
func (n *Node) SetRenditions(now time.Time, rends []string) error {
	if len(rends) == 0 {
		return fmt.Errorf("%w: none", ErrRenditions)
	}
	next := map[string]bool{}
	for _, r := range rends {
		if next[r] || !manifest.ValidName(r) {
			return fmt.Errorf("%w: %q twice or not a name", ErrRenditions, r)
		}
		next[r] = true
		if _, ok := n.slot[r]; !ok && len(n.slot) >= wire.MaxRenditions {
			return fmt.Errorf("%w: more than %d over the node's life", ErrRenditions, wire.MaxRenditions)
		}
	}
	var added, dropped []string
	for _, r := range rends {
		if _, ok := n.ri[r]; !ok {
			added = append(added, r)
		}
	}
	for _, r := range n.rends {
		if !next[r] {
			dropped = append(dropped, r)
		}
	}
	for _, r := range added {
		if _, ok := n.slot[r]; !ok {
			n.slot[r] = len(n.slot)
		}
		n.ri[r] = n.slot[r]
	}
	for _, r := range dropped {
		delete(n.ri, r)
		for _, w := range slices.Clone(n.wantList) {
			if w.e.Rendition == r {
				n.cancel(w, nil)
				n.dropWant(w)
			}
		}
	}
	n.rends = slices.Clone(rends)
	// A rendition taken up starts with its init segment: fetched, or said
	// ready again when held (a player switching back appends it anew).
	for _, r := range added {
		e, ok := n.inits[r]
		switch {
		case !ok:
		case n.store.Has(e.Hash):
			n.emit(Output{Kind: OutReady, Entry: e})
		default:
			if _, busy := n.fetching[e.Hash]; !busy {
				n.fetch(e)
			}
		}
	}
	for _, p := range n.plist {
		if !p.up || n.ups[p.remote] != p {
			continue
		}
		for _, k := range sortedInts(p.subsTo) {
			for _, r := range dropped {
				n.send(p, &wire.Unsubscribe{Rendition: r, K: uint16(n.k), Index: uint16(k)})
			}
			for _, r := range added {
				n.send(p, &wire.Subscribe{Rendition: r, K: uint16(n.k), Index: uint16(k)})
			}
		}
	}
	n.pump(now)
	return nil
}

// Reassign takes the tracker's new upstream for a substream.
func (n *Node) Reassign(now time.Time, substream int, peer protocol.PeerID, depth int) {
	if substream >= 0 && substream < n.k {
		n.upstreams[substream] = peer
		delete(n.backoff, peer)
		if p := n.ups[peer]; p != nil && p.stalled {
			// The tracker gives a substream to an upstream found stalled
			// (it did not move off it, or came back to it): judged afresh,
			// else it would feed nothing and never be reported again.
			p.stalled = false
			p.push.LastPush, p.push.LastHave, p.push.LastHeldWanted, p.push.LastUnpushed = now, now, time.Time{}, time.Time{}
		}
	}
	n.stats.Depth = depth
	n.stats.Reassigned++
	n.linkUpstreams(now)
	n.pump(now)
}

// SelectRenditions picks the renditions a quality setting asks for, in the
// manifest's order: "auto" (the best video and the audio), "all",
// "audio-only", or a height such as "720p" (the best video no taller, and
// the audio).
func SelectRenditions(infos []manifest.RenditionInfo, quality string) ([]string, error) {
	return selectRenditions(infos, quality)
}
