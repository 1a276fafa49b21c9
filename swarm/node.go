package swarm

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker"
)

// NodeParams configures a Node. Zero fields take the defaults shown.
type NodeParams struct {
	Server string // the origin, e.g. http://127.0.0.1:8080 (the tracker is at /tracker)
	Stream string
	// Token is the viewer token of a private stream; for the seed, the
	// tracker's origin secret.
	Token string
	Kind  tracker.Kind // native (default) or browser
	// Seed makes this node the origin's root seed: it joins as peer
	// "origin", takes every chunk from Source as soon as it is listed, and
	// pulls from no peer.
	Seed bool
	// BudgetKbps is the relay budget (scheduler.Budget.RelayKbps); 0 relays
	// nothing: no media byte goes to a peer.
	BudgetKbps int
	// Quality picks the renditions: "auto" (the best video and the audio),
	// "all", "audio-only", or a height such as "720p" (the best video no
	// taller, and the audio). The seed takes all.
	Quality string
	API     *webrtc.API // pion, with the SettingEngine ICE should use
	// Source is the origin (default: HTTPSource on Server with HTTPClient).
	Source     Source
	HTTPClient *http.Client
	// PollEvery is the manifest poll while some substream comes over HTTP
	// (200 ms); SlowPoll otherwise (1 s), when signed batches come from
	// peers with the chunks. Each poll is also an RTT sample for the guard.
	PollEvery, SlowPoll time.Duration
	// TickEvery is the scheduler's tick (50 ms).
	TickEvery time.Duration
	// PushGrace is how long a chunk is left to its substream's pusher
	// before the scheduler may pull it elsewhere (400 ms).
	PushGrace time.Duration
	// StallAfter is how long an upstream may push nothing, while chunks of
	// its substreams are due, before it is reported stalled to the tracker
	// (2 s). A slow pusher is not stalled: pulls cover its lateness.
	StallAfter time.Duration
	// ReportEvery is the health report period (2 s).
	ReportEvery time.Duration
	StoreBytes  int64
	// Buffer is the playback delay behind the live edge: a chunk's deadline
	// is when it plays, Buffer after it was at the live edge (2 s).
	Buffer time.Duration
	// Startup is the time playback waits after the node starts, to fetch
	// the first chunks (500 ms): playback runs Buffer + Startup behind live.
	Startup time.Duration
	// Pull tunes pull repair (zero: scheduler.DefaultPullParams()).
	Pull *scheduler.PullParams
	// Guard tunes the RTT guard (zero values: its defaults).
	Guard scheduler.RTTGuardParams
	// OnUpload, if set, is called with every frame's size as it is handed to
	// a peer link, after the budget allowed it (metering, tests).
	OnUpload func(at time.Time, bytes int)
	Logger   *slog.Logger
}

func (p *NodeParams) defaults() {
	if p.PollEvery <= 0 {
		p.PollEvery = 200 * time.Millisecond
	}
	if p.SlowPoll <= 0 {
		p.SlowPoll = time.Second
	}
	if p.TickEvery <= 0 {
		p.TickEvery = 50 * time.Millisecond
	}
	if p.PushGrace <= 0 {
		p.PushGrace = 400 * time.Millisecond
	}
	if p.StallAfter <= 0 {
		p.StallAfter = 2 * time.Second
	}
	if p.ReportEvery <= 0 {
		p.ReportEvery = 2 * time.Second
	}
	if p.Buffer <= 0 {
		p.Buffer = 2 * time.Second
	}
	if p.Startup <= 0 {
		p.Startup = 500 * time.Millisecond
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Kind == "" {
		p.Kind = tracker.KindNative
	}
	if p.Seed {
		p.Quality = "all"
	}
	if p.Source == nil {
		p.Source = &HTTPSource{Server: p.Server, Stream: p.Stream, Client: p.HTTPClient}
	}
}

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
	PullsNoPusher   int   // pull requests for chunks of substreams with no live pusher
	PullsLatePush   int   // ... for chunks their pusher had not pushed within PushGrace
	OriginPulls     int   // chunks the planner asked the origin for (near their deadline)
	HTTPFed         int   // chunks fetched over HTTP because their substream had no upstream
	Peers           int   // open links
	Reassigned      int   // substreams the tracker gave a new upstream
	StallReports    int   // upstreams reported stalled
	ChunksOnTime    int   // media chunks held before their playback deadline
	ChunksLate      int   // media chunks held after it, or never
	// LatencyP50 and LatencyP95 are over the last 512 chunks, from when
	// ingest finished a chunk to when this node held it verified.
	LatencyP50, LatencyP95 time.Duration
	// Depth is this node's deepest hop count from the origin over its
	// substreams, as the tracker last assigned them (0 for the seed).
	Depth int
	// RelayKbps is the relay rate in force: the budget, less what the RTT
	// guard cut; Throttled is set while the guard cuts it.
	RelayKbps int64
	Throttled bool
	RTT       time.Duration // smoothed RTT to the origin
}

// Node is a swarm node. It joins the stream's swarm through the tracker,
// subscribes each substream from the upstream peer the tracker assigned and
// receives its chunks pushed over data channels, repairs what is missing by
// pulling (scheduler.Planner: peers first, the origin near deadlines),
// verifies every chunk and manifest batch against the stream key, and
// serves its downstream peers within its upload budget.
type Node struct {
	p       NodeParams
	log     *slog.Logger
	src     Source
	tc      *TrackerClient
	linker  *Linker
	verify  *Verifier
	store   *Store
	k       int
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{} // the uploader has work
	reportC chan struct{} // report to the tracker now

	mu sync.Mutex
	// Renditions this node plays and carries, and their index in keys.
	rends []string
	ri    map[string]int
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

	upstreams []tracker.PeerID         // per substream; "" = over HTTP
	ups       map[tracker.PeerID]*peer // links this node dialed
	dialing   map[tracker.PeerID]bool
	backoff   map[tracker.PeerID]time.Time // dial failed: not again before
	peers     map[*Link]*peer              // every open link
	stalled   []tracker.PeerID             // to report
	listed    []time.Time                  // per substream: when a wanted chunk was last listed

	wants    map[chunker.ID]*want
	byKey    map[uint64]*want
	held     []scheduler.SeqSet    // per rendition index: seqs held
	heldID   map[uint64]chunker.ID // key → id of the chunks held, for backfills
	fetching map[chunker.ID]bool
	originIn int // origin fetches in flight

	planner *scheduler.Planner
	pull    scheduler.PullParams
	chunks  []scheduler.Chunk
	states  []scheduler.PeerState
	reqs    []scheduler.Request
	nextReq uint32
	cancels []ctlSend // cancels to send with the next tick

	bucket   *scheduler.TokenBucket
	guard    *scheduler.RTTGuard
	rate     float64 // bytes/s in force
	fragSize int
	jobs     []*upJob
	lastUp   string // round-robin cursor of OrderUploads

	stats     Stats
	latencies []time.Duration
	latNext   int
	judged    map[chunker.ID]bool
	newest    uint64 // newest seq held
	announced int    // stats.Chunks at the last Have
	lastRep   struct {
		at       time.Time
		uploaded int64
	}
}

// want is a chunk of the window this node needs and does not hold.
type want struct {
	e        chunker.Entry
	key      uint64
	sub      int
	since    time.Time // when its entry was learnt
	deadline time.Time
	pending  []string // planner ids asked and not answered
}

// keyOf packs a rendition index and seq into one scheduler sequence number.
func keyOf(seq uint64, ri int) uint64 { return seq<<5 | uint64(ri) }

// StartNode fetches the manifest, joins the swarm and starts the node. A
// stream that is not live yet (its manifest names no rendition) is waited
// for, until ctx ends.
func StartNode(ctx context.Context, p NodeParams) (*Node, error) {
	p.defaults()
	m, err := waitRenditions(ctx, p.Source, p.PollEvery)
	if err != nil {
		return nil, err
	}
	// The tracker sizes this node's subscriptions from the budget it is
	// told: 80% of it, so that answering repairs, backfilling new
	// subscribers and relaying batches fit in the rest.
	join := tracker.Join{Stream: p.Stream, Token: p.Token, Kind: p.Kind, BudgetKbps: p.BudgetKbps * pushShare / 100}
	if p.Seed {
		join.Kind = tracker.KindOrigin
	}
	tc, err := DialTracker(ctx, TrackerParams{URL: "ws" + strings.TrimPrefix(p.Server, "http") + "/tracker", Join: join})
	if err != nil {
		return nil, err
	}
	w := tc.Welcome()
	key, err := hex.DecodeString(w.PublicKey) // from the tracker: the server's word
	if err != nil || len(key) != ed25519.PublicKeySize {
		tc.Close()
		return nil, fmt.Errorf("swarm: welcome carries no valid stream key")
	}
	verify, err := NewVerifier(VerifierParams{Stream: p.Stream, PublicKey: key})
	if err != nil {
		tc.Close()
		return nil, err
	}
	rends, err := SelectRenditions(m.Renditions, p.Quality)
	if err != nil {
		tc.Close()
		return nil, err
	}
	now := time.Now()
	n := newNode(p, verify, rends, w.Substreams, now)
	n.log = n.log.With("peer", w.Peer)
	n.tc = tc
	n.stats.Depth = w.Depth
	n.linker = NewLinker(LinkerParams{API: p.API, Signaler: tc, ICEServers: iceServers(w.ICEServers)})
	for _, u := range w.Upstreams {
		if u.Substream >= 0 && u.Substream < n.k {
			n.upstreams[u.Substream] = u.Peer
		}
	}
	n.anchor(now, m)
	for _, b := range m.Batches {
		n.contig = max(n.contig, int64(b.N)) // the first window is whole
	}
	if err := n.learnManifest(m); err != nil {
		n.Close()
		return nil, err
	}
	n.goRun(n.trackerLoop)
	n.goRun(n.acceptLoop)
	n.goRun(n.sourceLoop)
	n.goRun(n.tickLoop)
	n.goRun(n.uploadLoop)
	n.linkUpstreams()
	return n, nil
}

func waitRenditions(ctx context.Context, src Source, every time.Duration) (*chunker.Manifest, error) {
	for {
		m, err := src.Manifest(ctx, -1)
		if err != nil || len(m.Renditions) > 0 {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("swarm: waiting for the stream to go live: %w", ctx.Err())
		case <-time.After(every):
		}
	}
}

// newNode builds a node's state, with no tracker, links or goroutines yet.
func newNode(p NodeParams, verify *Verifier, rends []string, k int, now time.Time) *Node {
	k = max(k, 1)
	pull := scheduler.DefaultPullParams()
	if p.Pull != nil {
		pull = *p.Pull
	}
	g := p.Guard
	g.Now = now
	n := &Node{
		p: p, log: p.Logger.With("stream", p.Stream), src: p.Source, verify: verify,
		store: NewStore(p.StoreBytes), k: k,
		wake: make(chan struct{}, 1), reportC: make(chan struct{}, 1),
		rends: rends, ri: map[string]int{}, contig: -1,
		upstreams: make([]tracker.PeerID, k), listed: make([]time.Time, k),
		ups: map[tracker.PeerID]*peer{}, dialing: map[tracker.PeerID]bool{}, backoff: map[tracker.PeerID]time.Time{},
		peers: map[*Link]*peer{},
		wants: map[chunker.ID]*want{}, byKey: map[uint64]*want{}, held: make([]scheduler.SeqSet, len(rends)),
		fetching: map[chunker.ID]bool{}, judged: map[chunker.ID]bool{}, heldID: map[uint64]chunker.ID{},
		planner: scheduler.NewPlanner(pull), pull: pull,
		bucket: scheduler.NewTokenBucket(scheduler.TokenBucketParams{Now: now}),
		guard:  scheduler.NewRTTGuard(g),
	}
	for i, r := range rends {
		n.ri[r] = i
	}
	n.setRateLocked(now)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

func iceServers(in []tracker.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// anchor starts the playback clock at the live edge of the first manifest,
// Buffer behind it. An empty manifest leaves it to the first entry learnt.
func (n *Node) anchor(now time.Time, m *chunker.Manifest) {
	if d := time.Duration(m.ChunkDurationMs * float64(time.Millisecond)); d > 0 {
		n.chunkD = d
	}
	if len(m.Entries) == 0 {
		return
	}
	last := m.Entries[len(m.Entries)-1]
	n.anchorAt(now, time.Duration(last.MediaTimeUs+last.DurationUs)*time.Microsecond)
	n.startSeq = ^uint64(0)
	for _, e := range m.Entries {
		if time.Duration(e.MediaTimeUs)*time.Microsecond >= n.playFrom && e.Seq < n.startSeq {
			n.startSeq = e.Seq
		}
	}
	if n.startSeq == ^uint64(0) {
		n.startSeq = last.Seq + 1
	}
}

// anchorAt says media time edge is live at now.
func (n *Node) anchorAt(now time.Time, edge time.Duration) {
	n.t0, n.playFrom, n.anchored = now.Add(n.p.Startup), edge-n.p.Buffer, true
}

// deadline is when a chunk plays.
func (n *Node) deadline(e chunker.Entry) time.Time {
	return n.t0.Add(e.MediaTime - n.playFrom)
}

func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
}

// Close leaves the swarm and stops the node.
func (n *Node) Close() {
	n.cancel()
	_ = n.tc.Close()
	n.linker.Close()
	n.wg.Wait()
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.Peers = len(n.peers)
	if len(n.latencies) > 0 {
		l := slices.Clone(n.latencies)
		slices.Sort(l)
		s.LatencyP50, s.LatencyP95 = l[len(l)/2], l[(len(l)*95)/100]
	}
	s.RelayKbps = int64(n.rate * 8 / 1000)
	gs := n.guard.Status()
	s.Throttled, s.RTT = gs.Throttled && n.p.BudgetKbps > 0, gs.Smoothed
	return s
}

// LatencySamples returns the delivery latencies of the last 512 chunks held
// (ingest finished → held verified), oldest first not guaranteed.
func (n *Node) LatencySamples() []time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.latencies)
}

// Renditions are the renditions the node carries.
func (n *Node) Renditions() []string { return slices.Clone(n.rends) }

// Chunk returns a held chunk (a player reads the media from here).
func (n *Node) Chunk(id chunker.ID) ([]byte, bool) { return n.store.Get(id) }

// trackerLoop follows the tracker: signaling to the linker, reassignments
// to the substream table.
func (n *Node) trackerLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-n.tc.Events():
			if !ok {
				return
			}
			switch m := ev.(type) {
			case *tracker.Signal:
				if err := n.linker.HandleSignal(n.ctx, m); err != nil {
					n.log.Debug("signal", "from", m.From, "err", err)
				}
			case *tracker.Reassign:
				n.mu.Lock()
				if m.Substream >= 0 && m.Substream < n.k {
					n.upstreams[m.Substream] = m.Peer
					delete(n.backoff, m.Peer)
				}
				n.stats.Depth = m.Depth
				n.stats.Reassigned++
				n.mu.Unlock()
				n.log.Debug("reassigned", "substream", m.Substream, "upstream", m.Peer, "reason", m.Reason)
				n.linkUpstreams()
			}
		}
	}
}

// sourceLoop polls the origin's manifest (fast while some substream comes
// over HTTP, slowly otherwise) and learns its batches; once per SlowPoll it
// pings the origin for the RTT guard.
func (n *Node) sourceLoop() {
	var changed <-chan struct{}
	if nt, ok := n.src.(Notifier); ok {
		changed = nt.Changed()
	}
	timer := time.NewTimer(n.p.PollEvery)
	defer timer.Stop()
	var lastPing time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-changed:
			changed = n.src.(Notifier).Changed()
		case <-timer.C:
		}
		start := time.Now()
		if pg, ok := n.src.(Pinger); ok && start.Sub(lastPing) >= n.p.SlowPoll {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			rtt, err := pg.Ping(ctx)
			cancel()
			if err == nil {
				n.observeRTT(time.Now(), rtt)
			}
			lastPing = start
		}
		n.mu.Lock()
		after := n.contig
		n.mu.Unlock()
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		m, err := n.src.Manifest(ctx, after)
		cancel()
		if err != nil {
			if n.ctx.Err() == nil {
				n.log.Debug("manifest", "err", err)
			}
		} else {
			if err := n.learnManifest(m); err != nil {
				n.log.Warn("manifest refused", "err", err)
			}
		}
		n.mu.Lock()
		every := n.p.SlowPoll
		if n.p.Seed || n.httpFedLocked() {
			every = n.p.PollEvery
		}
		n.mu.Unlock()
		if changed != nil {
			every = n.p.SlowPoll // the notification drives it
		}
		timer.Reset(every)
	}
}

// learnManifest learns a manifest document from the origin.
func (n *Node) learnManifest(m *chunker.Manifest) error {
	batches, err := m.SignedBatches()
	if err != nil {
		return err
	}
	_, err = n.learnBatches(batches)
	return err
}

// learnBatches verifies signed batches, from the origin or a peer, and
// learns the entries of the new ones, up to the first that fails (counted
// as rejected, and returned). It returns the numbers of the new batches.
func (n *Node) learnBatches(batches []chunker.Batch) ([]uint64, error) {
	var fresh []uint64
	var entries []chunker.Entry
	var err error
	for i := range batches {
		var es []chunker.Entry
		if es, err = n.verify.Learn(&batches[i]); err != nil {
			n.mu.Lock()
			n.stats.Rejected++
			n.mu.Unlock()
			break
		}
		if es != nil {
			fresh = append(fresh, batches[i].N)
			entries = append(entries, es...)
		}
	}
	n.learn(entries, fresh)
	return fresh, err
}

// SelectRenditions picks the renditions a quality setting asks for, in the
// manifest's order: see NodeParams.Quality.
func SelectRenditions(infos []chunker.RenditionInfo, quality string) ([]string, error) {
	var video, audio []chunker.RenditionInfo
	for _, r := range infos {
		if r.Kind == "audio" {
			audio = append(audio, r)
		} else {
			video = append(video, r)
		}
	}
	pick := map[string]bool{}
	for _, a := range audio {
		pick[a.Name] = true
	}
	best := func(maxHeight int) {
		var b *chunker.RenditionInfo
		for i := range video {
			v := &video[i]
			if maxHeight > 0 && v.Height > maxHeight {
				continue
			}
			if b == nil || v.Height*v.Width > b.Height*b.Width {
				b = v
			}
		}
		if b != nil {
			pick[b.Name] = true
		}
	}
	switch q := strings.ToLower(quality); {
	case q == "" || q == "auto":
		best(0)
	case q == "all":
		for _, v := range video {
			pick[v.Name] = true
		}
	case q == "audio-only" || q == "audio":
	case strings.HasSuffix(q, "p"):
		var h int
		if _, err := fmt.Sscanf(q, "%dp", &h); err != nil || h <= 0 {
			return nil, fmt.Errorf("%w: quality %q", ErrBadQuality, quality)
		}
		best(h)
		if len(video) > 0 && len(pick) == len(audio) {
			return nil, fmt.Errorf("%w: no video rendition of %s or less", ErrBadQuality, quality)
		}
	default:
		return nil, fmt.Errorf("%w: quality %q (want auto, all, audio-only or a height like 720p)", ErrBadQuality, quality)
	}
	var out []string
	for _, r := range infos {
		if pick[r.Name] && len(out) < wire.MaxRenditions {
			out = append(out, r.Name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the stream has no rendition for %q", ErrBadQuality, quality)
	}
	return out, nil
}

// ErrBadQuality is returned for a quality setting the stream cannot meet.
var ErrBadQuality = errors.New("swarm: quality")
