//go:build js && wasm

package browser

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// ErrParams is returned by Start for unusable parameters.
var ErrParams = errors.New("swarm/browser: bad params")

// Params configures a browser node. Zero fields take the defaults shown.
type Params struct {
	// Server is the origin, e.g. https://example.org; the tracker is its
	// /tracker over ws: or wss:. Empty: the page's own origin.
	Server string
	Stream string
	// Token is the viewer token of a private stream.
	Token string
	// BudgetKbps is the relay budget; 0 relays nothing to peers.
	BudgetKbps int
	// Quality picks the renditions: "auto" (default: the best video and the
	// audio), "all", "audio-only", or a height such as "720p".
	Quality string
	// StoreBytes bounds the verified chunks kept for peers and the player
	// (32 MiB).
	StoreBytes int64
	// Buffer is the playback delay behind the live edge, Startup the extra
	// wait at start (core.Params: 2 s and 500 ms). PollEvery is the
	// manifest poll while a substream comes over HTTP, and the wait between
	// tries while the stream is not live yet (200 ms).
	Buffer, Startup, PollEvery time.Duration
	// OnReady is given each verified chunk or init segment (the entry's
	// Kind says which) with its bytes and, for a media chunk, the time it
	// plays at. It is called in the order the core declares them ready,
	// from the node's own goroutines while they hold its send lock: it must
	// return soon and must not call the Node's methods (start a goroutine
	// for that). The bytes are the node's: do not modify them.
	OnReady func(e manifest.Entry, deadline time.Time, data []byte)
	Logger  *slog.Logger // nil: slog.Default()
}

func (p *Params) defaults() error {
	if p.Server == "" {
		_ = try(func() { p.Server = js.Global().Get("location").Get("origin").String() })
	}
	p.Server = strings.TrimSuffix(p.Server, "/")
	if !strings.HasPrefix(p.Server, "http://") && !strings.HasPrefix(p.Server, "https://") {
		return fmt.Errorf("%w: server %q is not an http(s) URL", ErrParams, p.Server)
	}
	if !manifest.ValidName(p.Stream) {
		return fmt.Errorf("%w: stream name %q", ErrParams, p.Stream)
	}
	if p.BudgetKbps < 0 || p.BudgetKbps > protocol.MaxBudgetKbps {
		return fmt.Errorf("%w: budget %d kbps", ErrParams, p.BudgetKbps)
	}
	if p.StoreBytes <= 0 {
		p.StoreBytes = 32 << 20
	}
	if p.PollEvery <= 0 {
		p.PollEvery = 200 * time.Millisecond
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return nil
}

// Stats counts what a node received and sent (core.Stats).
type Stats = core.Stats

// Node is a swarm node in a browser: the driver around the I/O-free core.
// It joins the stream's swarm through the tracker, links to peers over
// WebRTC data channels, fetches from the origin with fetch, and feeds the
// core every event with the time; the core decides everything and the
// driver does what it outputs. Its methods are safe for concurrent use but
// block, so JavaScript callbacks must call them from a new goroutine.
//
// One goroutine runs the timers; each link has a reader; dials, fetches and
// answers to offers run apart. Every call into the core holds mu; the
// outputs it produced are carried out in order under sendMu.
type Node struct {
	p      Params
	log    *slog.Logger
	src    *origin
	tc     *tracker
	linker *linker
	store  *core.Store
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // an input may have moved NextWake earlier
	offers chan struct{} // bounds the offers answered at once
	closed sync.Once

	mu     sync.Mutex
	core   *core.Node
	links  map[core.LinkID]*link
	nextID core.LinkID

	sendMu sync.Mutex
	buf    []byte
}

// maxOffers bounds the downstream offers a node answers at once.
const maxOffers = 8

// Start fetches the manifest, joins the swarm and starts the node. A
// stream that is not live yet (its manifest names no rendition) is waited
// for, until ctx ends. ctx bounds the start only; Close stops the node.
func Start(ctx context.Context, p Params) (*Node, error) {
	if err := p.defaults(); err != nil {
		return nil, err
	}
	src := &origin{server: p.Server, stream: p.Stream}
	m, err := waitRenditions(ctx, src, p.PollEvery)
	if err != nil {
		return nil, err
	}
	rends, err := core.SelectRenditions(m.Renditions, p.Quality)
	if err != nil {
		return nil, err
	}
	// The tracker sizes this node's subscriptions from the push share of
	// the budget, as for a native node.
	tc, err := dialTracker(ctx, trackerParams{
		URL:  "ws" + strings.TrimPrefix(p.Server, "http") + "/tracker",
		Join: protocol.Join{Stream: p.Stream, Token: p.Token, Kind: protocol.KindBrowser, BudgetKbps: p.BudgetKbps * core.PushShare / 100},
	})
	if err != nil {
		return nil, err
	}
	n, err := start(p, src, tc, m, rends)
	if err != nil {
		_ = tc.Close()
		return nil, err
	}
	return n, nil
}

func start(p Params, src *origin, tc *tracker, m *manifest.Manifest, rends []string) (*Node, error) {
	w := tc.Welcome()
	key, err := hex.DecodeString(w.PublicKey) // from the tracker: the server's word
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: the welcome carries no valid stream key", ErrTracker)
	}
	verify, err := core.NewVerifier(core.VerifierParams{Stream: p.Stream, PublicKey: key})
	if err != nil {
		return nil, err
	}
	ups := make([]protocol.PeerID, max(w.Substreams, 1))
	for _, u := range w.Upstreams {
		if u.Substream >= 0 && u.Substream < len(ups) {
			ups[u.Substream] = u.Peer
		}
	}
	store := core.NewStore(p.StoreBytes)
	c, err := core.New(core.Params{
		Stream: p.Stream, BudgetKbps: p.BudgetKbps, Renditions: rends,
		Substreams: w.Substreams, Upstreams: ups, Depth: w.Depth, Manifest: m,
		Verifier: verify, Store: store, Now: time.Now(),
		PollEvery: p.PollEvery, Buffer: p.Buffer, Startup: p.Startup,
	})
	if err != nil {
		return nil, err
	}
	ice := make([]webrtc.ICEServer, 0, len(w.ICEServers))
	for _, s := range w.ICEServers {
		ice = append(ice, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	n := &Node{
		p: p, log: p.Logger.With("stream", p.Stream, "peer", w.Peer), src: src, tc: tc, store: store,
		linker: newLinker(linkerParams{Signaler: tc, ICEServers: ice}),
		kick:   make(chan struct{}, 1), offers: make(chan struct{}, maxOffers),
		core: c, links: map[core.LinkID]*link{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.goRun(n.timerLoop)
	n.goRun(n.trackerLoop)
	n.goRun(n.acceptLoop)
	n.do(func(time.Time) {}) // carry out what New decided
	return n, nil
}

func waitRenditions(ctx context.Context, src *origin, every time.Duration) (*manifest.Manifest, error) {
	for {
		m, err := src.Manifest(ctx, -1)
		if err != nil || len(m.Renditions) > 0 {
			return m, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("swarm/browser: waiting for the stream to go live: %w", ctx.Err())
		case <-time.After(every):
		}
	}
}

func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() { defer n.wg.Done(); f() }()
}

// do feeds the core one input (f, called with the time) and carries out
// what it outputs.
func (n *Node) do(f func(now time.Time)) {
	n.mu.Lock()
	now := time.Now()
	f(now)
	var outs []core.Output
	for {
		o, ok := n.core.Poll()
		if !ok {
			break
		}
		outs = append(outs, o)
	}
	links := make(map[core.LinkID]*link, len(outs))
	for _, o := range outs {
		if o.Kind == core.OutSend || o.Kind == core.OutClose {
			links[o.Link] = n.links[o.Link]
			if o.Kind == core.OutClose {
				delete(n.links, o.Link)
			}
		}
	}
	n.sendMu.Lock()
	n.mu.Unlock()
	defer n.sendMu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
	for _, o := range outs {
		n.carryOut(o, links[o.Link])
	}
}

// carryOut does one output of the core. It runs under sendMu, in order.
func (n *Node) carryOut(o core.Output, lk *link) {
	switch o.Kind {
	case core.OutSend:
		if lk == nil {
			return
		}
		var err error
		n.buf, err = wire.AppendFrame(n.buf[:0], o.Msg)
		if err != nil {
			n.log.Error("encoding a wire message", "type", o.Msg.Type(), "err", err)
			return
		}
		_ = lk.send(n.buf) // a closed link is reported by its reader
	case core.OutClose:
		if lk != nil {
			if o.Err != nil {
				n.log.Debug("link closed", "remote", o.Peer, "why", o.Err)
			}
			lk.Close()
		}
	case core.OutDial:
		n.goRun(func() { n.dial(o.Peer) })
	case core.OutFetchChunk:
		n.goRun(func() {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			data, err := n.src.Chunk(ctx, o.Entry.Hash)
			cancel()
			n.do(func(now time.Time) {
				if err := n.core.ChunkFetched(now, o.Entry.Hash, data, err); err != nil && n.ctx.Err() == nil {
					n.log.Debug("origin fetch", "chunk", o.Entry.Hash, "err", err)
				}
			})
		})
	case core.OutFetchManifest:
		n.goRun(func() {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			m, err := n.src.Manifest(ctx, o.After)
			cancel()
			n.do(func(now time.Time) {
				if err := n.core.ManifestFetched(now, m, err); err != nil && n.ctx.Err() == nil {
					n.log.Warn("manifest", "err", err)
				}
			})
		})
	case core.OutPing:
		n.goRun(func() {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			rtt, err := n.src.Ping(ctx)
			cancel()
			n.do(func(now time.Time) { n.core.RTT(now, rtt, err) })
		})
	case core.OutReport:
		if o.Report.Complaint != nil {
			n.log.Warn("peer cut off", "remote", o.Peer, "reason", o.Report.Complaint.Reason, "err", o.Err)
		}
		// The browser queues WebSocket writes: sending does not block.
		if err := n.tc.Report(*o.Report); err != nil && n.ctx.Err() == nil {
			n.log.Debug("report", "err", err)
		}
	case core.OutReady:
		if n.p.OnReady == nil {
			return
		}
		data, ok := n.store.Get(o.Entry.Hash)
		if !ok {
			n.log.Warn("a ready chunk left the store before it was played", "chunk", o.Entry.Hash)
			return
		}
		n.p.OnReady(o.Entry, o.Deadline, data)
	}
}

// timerLoop calls the core's Tick when its NextWake comes, after telling it
// each link's send backlog.
func (n *Node) timerLoop() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		n.mu.Lock()
		wake := n.core.NextWake()
		n.mu.Unlock()
		t.Reset(max(time.Until(wake), 0))
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
			continue
		case <-t.C:
		}
		n.do(func(now time.Time) {
			for id, lk := range n.links {
				n.core.LinkBacklog(now, id, lk.buffered())
			}
			n.core.Tick(now)
		})
	}
}

// trackerLoop follows the tracker: signaling to the linker (each offer
// answered on its own goroutine), reassignments to the core.
func (n *Node) trackerLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case ev, ok := <-n.tc.Events():
			if !ok {
				if n.ctx.Err() == nil {
					n.log.Warn("tracker connection lost; peers stay linked", "err", n.tc.Err())
				}
				return
			}
			switch m := ev.(type) {
			case *protocol.Signal:
				select {
				case n.offers <- struct{}{}:
				default:
					n.log.Debug("signal dropped: too many offers at once", "from", m.From)
					continue
				}
				n.goRun(func() {
					defer func() { <-n.offers }()
					ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
					defer cancel()
					if err := n.linker.HandleSignal(ctx, m); err != nil {
						n.log.Debug("signal", "from", m.From, "err", err)
					}
				})
			case *protocol.Reassign:
				n.log.Debug("reassigned", "substream", m.Substream, "upstream", m.Peer, "reason", m.Reason)
				n.do(func(now time.Time) { n.core.Reassign(now, m.Substream, m.Peer, m.Depth) })
			}
		}
	}
}

// dial links to an upstream.
func (n *Node) dial(id protocol.PeerID) {
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	lk, err := n.linker.Dial(ctx, id)
	cancel()
	if err != nil {
		if n.ctx.Err() == nil {
			n.log.Debug("dial upstream", "remote", id, "err", err)
		}
		n.do(func(now time.Time) { n.core.DialFailed(now, id) })
		return
	}
	n.open(lk, true)
}

// acceptLoop takes the links downstream peers open.
func (n *Node) acceptLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case lk := <-n.linker.Accepted():
			n.open(lk, false)
		}
	}
}

// open gives a new link an id, tells the core, and starts its reader.
func (n *Node) open(lk *link, up bool) {
	var id core.LinkID
	n.do(func(now time.Time) {
		n.nextID++
		id = n.nextID
		n.links[id] = lk
		n.core.LinkOpened(now, id, lk.Peer, up)
	})
	n.goRun(func() { n.readLink(id, lk) })
}

// readLink feeds one link's frames to the core until it closes.
func (n *Node) readLink(id core.LinkID, lk *link) {
	var split wire.Splitter
	defer n.do(func(now time.Time) {
		if n.links[id] == lk {
			delete(n.links, id)
			n.core.LinkClosed(now, id)
		}
	})
	defer lk.Close()
	for {
		var piece []byte
		select {
		case <-n.ctx.Done():
			return
		case <-lk.done:
			return
		case piece = <-lk.recv:
		}
		if _, err := split.Write(piece); err != nil {
			n.do(func(now time.Time) { n.core.BadInput(now, id, err) })
			return
		}
		for {
			f, err := split.Next()
			if err != nil {
				n.do(func(now time.Time) { n.core.BadInput(now, id, err) })
				return
			}
			if f == nil {
				break
			}
			n.do(func(now time.Time) { n.core.ReceiveFrame(now, id, f) })
		}
	}
}

// Close leaves the swarm and stops the node. It waits for the node's
// goroutines, so it must not run on a JavaScript callback's goroutine.
func (n *Node) Close() {
	n.closed.Do(func() {
		n.cancel()
		_ = n.tc.Close()
		n.linker.Close()
		n.wg.Wait()
		n.src.close()
	})
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Stats()
}

// SetBudget changes the relay budget while the node runs (0: relay off; at
// most protocol.MaxBudgetKbps).
func (n *Node) SetBudget(kbps int) {
	kbps = min(max(kbps, 0), protocol.MaxBudgetKbps)
	n.do(func(now time.Time) { n.core.SetBudget(now, kbps) })
}

// Renditions are the renditions the node carries, in the manifest's order.
func (n *Node) Renditions() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Renditions()
}
