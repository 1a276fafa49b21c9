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
	Logger     *slog.Logger
}

// Stats counts what a node received and sent (cumulative).
type Stats struct {
	BytesFromPeers  int64
	BytesFromOrigin int64
	BytesUploaded   int64
	Chunks          int // verified and stored
	Rejected        int // chunks or batches that failed verification
	Peers           int // open links
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
	bucket *scheduler.TokenBucket
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
}

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
		wanted: map[chunker.ID]time.Time{}, fetching: map[chunker.ID]bool{},
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
	return s
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
				continue // ahead of our manifest: it will come again or from the origin
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
	n.mu.Lock()
	delete(n.wanted, e.Hash)
	n.stats.Chunks++
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
		if !n.bucket.Allow(time.Now(), len(data)) {
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
		for _, je := range append(append([]chunker.JSONEntry{}, m.InitSegments...), m.Entries...) {
			e, ok := n.verify.Entry(je.Hash)
			if !ok || n.store.Has(e.Hash) || n.fetching[e.Hash] {
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
