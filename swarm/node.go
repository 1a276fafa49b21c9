package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// NodeParams configures a Node.
type NodeParams struct {
	Server     string // the origin, e.g. http://127.0.0.1:8080
	Stream     string
	Kind       tracker.Kind // native or browser
	BudgetKbps int          // relay budget (scheduler.Budget.RelayKbps); 0 relays nothing
	API        *webrtc.API  // pion, with the SettingEngine ICE should use
	HTTPClient *http.Client
	// PollEvery is how often the manifest is fetched (default 100 ms).
	PollEvery time.Duration
	// PushWait is how long a chunk of a substream fed by a peer is waited
	// for before it is fetched from the origin (default 1 s).
	PushWait   time.Duration
	StoreBytes int64
	// Buffer is the playback delay the node keeps: playback starts this
	// long after the first chunk, and a chunk is on time when it is held
	// before its playback moment (default 2 s).
	Buffer time.Duration
	Logger *slog.Logger
}

// Stats counts what a node received and sent (cumulative).
type Stats struct {
	BytesFromPeers  int64
	BytesFromOrigin int64
	BytesUploaded   int64
	Chunks          int           // verified and stored
	Rejected        int           // chunks or batches that failed verification
	Peers           int           // open links
	ChunksOnTime    int           // media chunks held before their playback moment
	ChunksLate      int           // media chunks held after it, or never
	LatencyP50      time.Duration // from ingest to held, over the last 512 chunks
	LatencyP95      time.Duration
}

// Node is a viewer node: it joins the stream's swarm, receives each
// substream pushed by its upstream peer (or fetches it from the origin over
// HTTP when the tracker assigned the origin, or when a push is late),
// verifies every chunk against the signed manifest, and pushes what it holds
// to the downstream peers that subscribed, within its upload budget.
type Node struct {
	p      NodeParams
	log    *slog.Logger
	tc     *TrackerClient
	linker *Linker
	verify *Verifier
	store  *Store
	bucket *scheduler.TokenBucket // guarded by mu
	k      int
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	upstreams  []tracker.PeerID
	links      map[tracker.PeerID]*Link // upstream links
	subs       map[*Link]map[subKey]bool
	wanted     map[chunker.ID]time.Time // listed in the manifest, not held: since when
	fetching   map[chunker.ID]bool
	renditions []string
	stats      Stats
	latencies  []time.Duration // ring of the last 512 delivery latencies
	latNext    int
	playStart  time.Time // wall time of firstMedia's playback
	firstMedia time.Duration
	judged     map[chunker.ID]bool // on-time or late already counted
	startSeq   uint64              // the live edge when the node joined, less Buffer
	started    bool
	// Chunks pushed ahead of this node's manifest: held unverified (never
	// stored, played or relayed) until the next poll can check them.
	early map[chunker.ID]earlyChunk
}

type earlyChunk struct {
	data []byte
	from tracker.PeerID
	at   time.Time
}

// maxEarly bounds the chunks held ahead of the manifest.
const maxEarly = 64

type subKey struct {
	rendition string
	index     int
}

// StartNode joins the swarm and starts receiving.
func StartNode(ctx context.Context, p NodeParams) (*Node, error) {
	if p.HTTPClient == nil {
		p.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if p.PollEvery <= 0 {
		p.PollEvery = 100 * time.Millisecond
	}
	if p.PushWait <= 0 {
		p.PushWait = time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Kind == "" {
		p.Kind = tracker.KindNative
	}
	if p.Buffer <= 0 {
		p.Buffer = 2 * time.Second
	}
	tc, err := DialTracker(ctx, TrackerParams{
		URL:  "ws" + strings.TrimPrefix(p.Server, "http") + "/tracker",
		Join: tracker.Join{Stream: p.Stream, Kind: p.Kind, BudgetKbps: p.BudgetKbps},
	})
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
	rate := float64(p.BudgetKbps) * 1000 / 8
	n := &Node{
		p: p, log: p.Logger.With("stream", p.Stream, "peer", w.Peer), tc: tc, verify: verify,
		store: NewStore(p.StoreBytes), k: w.Substreams,
		bucket:    scheduler.NewTokenBucket(scheduler.TokenBucketParams{Rate: rate, Burst: max(int(rate), 256<<10), Now: time.Now()}),
		upstreams: make([]tracker.PeerID, w.Substreams),
		links:     map[tracker.PeerID]*Link{}, subs: map[*Link]map[subKey]bool{},
		wanted: map[chunker.ID]time.Time{}, fetching: map[chunker.ID]bool{}, judged: map[chunker.ID]bool{},
		early: map[chunker.ID]earlyChunk{},
	}
	n.linker = NewLinker(LinkerParams{API: p.API, Signaler: tc})
	for _, u := range w.Upstreams {
		if u.Substream >= 0 && u.Substream < n.k {
			n.upstreams[u.Substream] = u.Peer
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.goRun(n.trackerLoop)
	n.goRun(n.acceptLoop)
	n.goRun(n.manifestLoop)
	return n, nil
}

func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.Peers = len(n.links) + len(n.subs)
	if len(n.latencies) > 0 {
		l := slices.Clone(n.latencies)
		slices.Sort(l)
		s.LatencyP50, s.LatencyP95 = l[len(l)/2], l[(len(l)*95)/100]
	}
	return s
}

// deadline is when a chunk plays (zero before the first chunk).
func (n *Node) deadlineLocked(e chunker.Entry) time.Time {
	if n.playStart.IsZero() {
		return time.Time{}
	}
	return n.playStart.Add(e.MediaTime - n.firstMedia)
}

// Close leaves the swarm and stops the node.
func (n *Node) Close() {
	n.cancel()
	_ = n.tc.Close()
	n.linker.Close()
	n.wg.Wait()
}

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
				}
				n.mu.Unlock()
				n.subscribeAll()
			}
		}
	}
}

// subscribeAll links to every upstream peer and subscribes its substreams.
func (n *Node) subscribeAll() {
	n.mu.Lock()
	rends := n.renditions
	want := map[tracker.PeerID][]int{}
	for k, u := range n.upstreams {
		if u != "" && u != tracker.OriginPeer {
			want[u] = append(want[u], k)
		}
	}
	n.mu.Unlock()
	if len(rends) == 0 {
		return // the manifest names the renditions; the first poll subscribes
	}
	for peer, subs := range want {
		n.mu.Lock()
		lk := n.links[peer]
		n.mu.Unlock()
		if lk == nil {
			ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
			var err error
			lk, err = n.linker.Dial(ctx, peer)
			cancel()
			if err != nil {
				n.log.Debug("dial upstream", "peer", peer, "err", err)
				continue
			}
			n.mu.Lock()
			n.links[peer] = lk
			n.mu.Unlock()
			_ = lk.Send(&wire.Hello{Version: wire.Version, Renditions: rends, BudgetKbps: uint32(n.p.BudgetKbps)})
			n.goRun(func() { n.readLink(lk, true) })
		}
		for _, k := range subs {
			for _, r := range rends {
				_ = lk.Send(&wire.Subscribe{Rendition: r, K: uint16(n.k), Index: uint16(k)})
			}
		}
	}
}

// acceptLoop takes the links downstream peers open.
func (n *Node) acceptLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case lk := <-n.linker.Accepted():
			n.mu.Lock()
			n.subs[lk] = map[subKey]bool{}
			n.mu.Unlock()
			n.goRun(func() { n.readLink(lk, false) })
		}
	}
}

// readLink handles one link's frames until it closes: subscriptions from a
// downstream, chunks from an upstream. A peer that sends garbage or a bad
// chunk is cut off and reported.
func (n *Node) readLink(lk *Link, upstream bool) {
	re := wire.NewReassembler(wire.ReassemblerParams{})
	defer func() {
		lk.Close()
		n.mu.Lock()
		delete(n.subs, lk)
		if n.links[lk.Peer] == lk {
			delete(n.links, lk.Peer)
		}
		n.mu.Unlock()
	}()
	for {
		var frame []byte
		select {
		case <-n.ctx.Done():
			return
		case <-lk.Done():
			return
		case frame = <-lk.Recv():
		}
		m, err := wire.Decode(frame)
		if errors.Is(err, wire.ErrUnknownType) {
			continue
		}
		if err != nil {
			n.complain(lk.Peer, "bad-message")
			return
		}
		switch m := m.(type) {
		case *wire.Subscribe:
			if !upstream && int(m.K) == n.k {
				n.mu.Lock()
				if s := n.subs[lk]; s != nil {
					s[subKey{m.Rendition, int(m.Index)}] = true
				}
				n.mu.Unlock()
			}
		case *wire.Unsubscribe:
			n.mu.Lock()
			if s := n.subs[lk]; s != nil {
				delete(s, subKey{m.Rendition, int(m.Index)})
			}
			n.mu.Unlock()
		case *wire.Chunk:
			data, err := re.Add(m)
			if err != nil {
				n.complain(lk.Peer, "bad-message")
				return
			}
			if data == nil {
				continue
			}
			e, err := n.verify.Check(m.ID, data)
			if errors.Is(err, ErrUnknownChunk) {
				n.holdEarly(m.ID, data, lk.Peer) // ahead of our manifest: checked after the next poll
				continue
			}
			if err != nil {
				n.mu.Lock()
				n.stats.Rejected++
				n.mu.Unlock()
				n.complain(lk.Peer, "bad-chunk")
				return
			}
			n.accept(e, data, true)
		}
	}
}

// holdEarly keeps a pushed chunk the manifest does not list yet, within
// bounds (the oldest goes first).
func (n *Node) holdEarly(id chunker.ID, data []byte, from tracker.PeerID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.early) >= maxEarly {
		var oldest chunker.ID
		var at time.Time
		for k, c := range n.early {
			if at.IsZero() || c.at.Before(at) {
				oldest, at = k, c.at
			}
		}
		delete(n.early, oldest)
	}
	n.early[id] = earlyChunk{data: data, from: from, at: time.Now()}
}

// checkEarly verifies the chunks held ahead of the manifest against what
// the manifest now lists: genuine ones are accepted, bad ones get their
// sender reported, unknown ones wait a little longer.
func (n *Node) checkEarly() {
	n.mu.Lock()
	held := make(map[chunker.ID]earlyChunk, len(n.early))
	for id, c := range n.early {
		held[id] = c
	}
	n.mu.Unlock()
	for id, c := range held {
		e, err := n.verify.Check(id, c.data)
		if errors.Is(err, ErrUnknownChunk) && time.Since(c.at) < 5*time.Second {
			continue
		}
		n.mu.Lock()
		delete(n.early, id)
		if err != nil && !errors.Is(err, ErrUnknownChunk) {
			n.stats.Rejected++
		}
		n.mu.Unlock()
		switch {
		case err == nil:
			n.accept(e, c.data, true)
		case errors.Is(err, ErrBadChunk):
			n.complain(c.from, "bad-chunk")
		}
	}
}

func (n *Node) complain(peer tracker.PeerID, reason string) {
	ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
	defer cancel()
	_ = n.tc.Report(ctx, tracker.Report{Complaint: &tracker.Complaint{Peer: peer, Reason: reason}})
}

// accept stores a verified chunk and pushes it to the subscribers of its
// substream, within the upload budget.
func (n *Node) accept(e chunker.Entry, data []byte, fromPeer bool) {
	if n.store.Has(e.Hash) {
		return
	}
	n.store.Put(e.Hash, data)
	now := time.Now()
	n.mu.Lock()
	delete(n.wanted, e.Hash)
	n.stats.Chunks++
	if e.Kind == chunker.KindChunk {
		if n.playStart.IsZero() {
			n.playStart, n.firstMedia = now.Add(n.p.Buffer), e.MediaTime
		}
		if !n.judged[e.Hash] {
			n.judged[e.Hash] = true
			if now.After(n.deadlineLocked(e)) {
				n.stats.ChunksLate++
			} else {
				n.stats.ChunksOnTime++
			}
		}
		lat := now.Sub(e.IngestTime)
		if len(n.latencies) < 512 {
			n.latencies = append(n.latencies, lat)
		} else {
			n.latencies[n.latNext] = lat
			n.latNext = (n.latNext + 1) % len(n.latencies)
		}
	}
	if fromPeer {
		n.stats.BytesFromPeers += int64(len(data))
	} else {
		n.stats.BytesFromOrigin += int64(len(data))
	}
	var targets []*Link
	key := subKey{e.Rendition, int(e.Seq % uint64(n.k))}
	for lk, s := range n.subs {
		if s[key] {
			targets = append(targets, lk)
		}
	}
	n.mu.Unlock()
	if e.Kind != chunker.KindChunk {
		return
	}
	for _, lk := range targets {
		n.mu.Lock() // the bucket is pure policy: the node serialises it
		allowed := n.bucket.Allow(time.Now(), len(data))
		n.mu.Unlock()
		if !allowed {
			continue // no budget: the downstream will pull it from the origin
		}
		for _, f := range wire.Fragments(nil, 0, e.Hash, data) {
			if err := lk.Send(&f); err != nil {
				break
			}
		}
		n.mu.Lock()
		n.stats.BytesUploaded += int64(len(data))
		n.mu.Unlock()
	}
}

// manifestLoop polls the signed manifest, learns its entries, and fetches
// from the origin what no peer will push, or what a peer pushes too late.
func (n *Node) manifestLoop() {
	tick := time.NewTicker(n.p.PollEvery)
	defer tick.Stop()
	subscribed := false
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		m, err := n.fetchManifest()
		if err != nil {
			n.log.Debug("manifest", "err", err)
			continue
		}
		if err := n.verify.AddManifest(m); err != nil {
			n.mu.Lock()
			n.stats.Rejected++
			n.mu.Unlock()
			n.log.Warn("manifest refused", "err", err)
			continue
		}
		n.checkEarly()
		if !subscribed && len(m.Renditions) > 0 {
			n.mu.Lock()
			for _, r := range m.Renditions {
				n.renditions = append(n.renditions, r.Name)
			}
			n.mu.Unlock()
			subscribed = true
			n.goRun(n.subscribeAll)
		}
		now := time.Now()
		var due []chunker.Entry
		n.mu.Lock()
		if !n.started && len(m.Entries) > 0 {
			// A live viewer starts at the live edge, less its buffer: the
			// window's older chunks are history, not what it will play.
			newest := m.Entries[len(m.Entries)-1].Seq
			back := uint64(n.p.Buffer / time.Duration(m.ChunkDurationMs*float64(time.Millisecond)))
			n.startSeq, n.started = newest-min(newest, back), true
		}
		// Bounded bookkeeping: what left the window long ago is forgotten.
		for id, since := range n.wanted {
			if now.Sub(since) > 2*time.Minute {
				delete(n.wanted, id)
			}
		}
		if len(n.judged) > 8192 {
			clear(n.judged)
		}
		for _, je := range append(append([]chunker.JSONEntry{}, m.InitSegments...), m.Entries...) {
			e, ok := n.verify.Entry(je.Hash)
			if !ok || n.store.Has(e.Hash) || e.Kind == chunker.KindChunk && (!n.started || e.Seq < n.startSeq) {
				continue
			}
			if d := n.deadlineLocked(e); e.Kind == chunker.KindChunk && !d.IsZero() && e.MediaTime >= n.firstMedia && now.After(d) && !n.judged[e.Hash] {
				n.judged[e.Hash] = true // missed: counted late once, whenever it comes
				n.stats.ChunksLate++
			}
			if n.fetching[e.Hash] {
				continue
			}
			since, seen := n.wanted[e.Hash]
			if !seen {
				n.wanted[e.Hash], since = now, now
			}
			up := n.upstreams[e.Seq%uint64(n.k)]
			fromOrigin := e.Kind == chunker.KindInit || up == "" || up == tracker.OriginPeer
			if fromOrigin || now.Sub(since) >= n.p.PushWait {
				n.fetching[e.Hash] = true
				due = append(due, e)
			}
		}
		n.mu.Unlock()
		for _, e := range due {
			n.fetch(e)
		}
	}
}

func (n *Node) fetchManifest() (*chunker.Manifest, error) {
	req, _ := http.NewRequestWithContext(n.ctx, http.MethodGet, n.p.Server+"/live/"+n.p.Stream+"/manifest", nil)
	resp, err := n.p.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("manifest: %s", resp.Status)
	}
	return chunker.DecodeManifest(resp.Body)
}

// fetch gets a chunk from the origin over HTTP (verified like any other).
func (n *Node) fetch(e chunker.Entry) {
	defer func() {
		n.mu.Lock()
		delete(n.fetching, e.Hash)
		n.mu.Unlock()
	}()
	req, _ := http.NewRequestWithContext(n.ctx, http.MethodGet, n.p.Server+"/c/"+e.Hash.String(), nil)
	resp, err := n.p.HTTPClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxChunk+1))
	if err != nil || resp.StatusCode != http.StatusOK {
		return
	}
	if _, err := n.verify.Check(e.Hash, data); err != nil {
		n.mu.Lock()
		n.stats.Rejected++
		n.mu.Unlock()
		return
	}
	n.accept(e, bytes.Clone(data), false)
}
