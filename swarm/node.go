package swarm

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// NodeParams configures a Node. Zero fields take the defaults shown.
type NodeParams struct {
	Server string // the origin, e.g. http://127.0.0.1:8080 (the tracker is at /tracker)
	Stream string
	// Token is the viewer token of a private stream; for the seed, the
	// tracker's origin secret.
	Token string
	Kind  protocol.Kind // native (default) or browser
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
	// PollEvery, SlowPoll, TickEvery, PushGrace, StallAfter, ReportEvery,
	// Buffer and Startup tune the core (core.Params says what each does).
	PollEvery, SlowPoll, TickEvery, PushGrace, StallAfter, ReportEvery, Buffer, Startup time.Duration
	StoreBytes                                                                          int64
	// Pull tunes pull repair (nil: scheduler.DefaultPullParams()).
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
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Kind == "" {
		p.Kind = protocol.KindNative
	}
	if p.Seed {
		p.Quality = "all"
	}
	if p.Source == nil {
		p.Source = &HTTPSource{Server: p.Server, Stream: p.Stream, Client: p.HTTPClient}
	}
}

// Stats counts what a node received and sent (core.Stats).
type Stats = core.Stats

// Node is a swarm node on real networks: the native driver around the
// I/O-free core (package swarm/core). It joins the stream's swarm through
// the tracker, links to peers over WebRTC data channels (pion), fetches
// from the origin over HTTP, and feeds the core every event with the time;
// the core decides everything and the driver does what it outputs.
//
// One goroutine runs the timers; each link has a reader; dials, fetches,
// offers and tracker writes run apart, so none blocks another. Every call
// into the core holds mu; the outputs it produced are carried out in order
// under sendMu.
type Node struct {
	p       NodeParams
	log     *slog.Logger
	src     Source
	tc      *TrackerClient
	linker  *Linker
	store   *core.Store
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // an input may have moved NextWake earlier
	reports chan *protocol.Report
	offers  chan struct{} // bounds the offers answered at once

	mu     sync.Mutex
	core   *core.Node
	links  map[core.LinkID]*Link
	nextID core.LinkID

	sendMu sync.Mutex
	buf    []byte
}

// maxOffers bounds the downstream offers a node answers at once.
const maxOffers = 8

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
	// told: the push share of it, so that answering repairs, backfilling new
	// subscribers and relaying batches fit in the rest.
	join := protocol.Join{Stream: p.Stream, Token: p.Token, Kind: p.Kind, BudgetKbps: p.BudgetKbps * core.PushShare / 100}
	if p.Seed {
		join.Kind = protocol.KindOrigin
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
	verify, err := core.NewVerifier(core.VerifierParams{Stream: p.Stream, PublicKey: key})
	if err != nil {
		tc.Close()
		return nil, err
	}
	rends, err := core.SelectRenditions(m.Renditions, p.Quality)
	if err != nil {
		tc.Close()
		return nil, err
	}
	ups := make([]protocol.PeerID, max(w.Substreams, 1))
	for _, u := range w.Upstreams {
		if u.Substream >= 0 && u.Substream < len(ups) {
			ups[u.Substream] = u.Peer
		}
	}
	_, notified := p.Source.(Notifier)
	store := core.NewStore(p.StoreBytes)
	c, err := core.New(core.Params{
		Stream: p.Stream, Seed: p.Seed, BudgetKbps: p.BudgetKbps, Renditions: rends,
		Substreams: w.Substreams, Upstreams: ups, Depth: w.Depth, Manifest: m,
		Verifier: verify, Store: store, Now: time.Now(),
		PollEvery: p.PollEvery, SlowPoll: p.SlowPoll, Notified: notified, TickEvery: p.TickEvery,
		PushGrace: p.PushGrace, StallAfter: p.StallAfter, ReportEvery: p.ReportEvery,
		Buffer: p.Buffer, Startup: p.Startup, Pull: p.Pull, Guard: p.Guard,
	})
	if err != nil {
		tc.Close()
		return nil, err
	}
	n := &Node{
		p: p, log: p.Logger.With("stream", p.Stream, "peer", w.Peer), src: p.Source, tc: tc, store: store,
		kick: make(chan struct{}, 1), reports: make(chan *protocol.Report, 64), offers: make(chan struct{}, maxOffers),
		core: c, links: map[core.LinkID]*Link{},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.linker = NewLinker(LinkerParams{API: p.API, Signaler: tc, ICEServers: iceServers(w.ICEServers)})
	n.goRun(n.timerLoop)
	n.goRun(n.trackerLoop)
	n.goRun(n.trackerWriter)
	n.goRun(n.acceptLoop)
	if notified {
		n.goRun(n.notifyLoop)
	}
	n.do(func(time.Time) {}) // carry out what New decided
	return n, nil
}

func waitRenditions(ctx context.Context, src Source, every time.Duration) (*manifest.Manifest, error) {
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

func iceServers(in []protocol.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
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
	links := make(map[core.LinkID]*Link, len(outs))
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
		n.carryOut(now, o, links[o.Link])
	}
}

// carryOut does one output of the core. It runs under sendMu, in order.
func (n *Node) carryOut(now time.Time, o core.Output, lk *Link) {
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
		if o.Charged && n.p.OnUpload != nil {
			n.p.OnUpload(now, o.Bytes)
		}
		_ = lk.sendFrame(n.buf) // a closed link is reported by its reader
	case core.OutClose:
		if lk != nil {
			if o.Err != nil {
				n.log.Debug("link closed", "remote", o.Peer, "why", o.Err)
			}
			n.goRun(lk.Close) // closing a peer connection can take a while
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
		pg, ok := n.src.(Pinger)
		if !ok {
			n.goRun(func() { n.do(func(now time.Time) { n.core.RTT(now, 0, errNoPing) }) })
			return
		}
		n.goRun(func() {
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			rtt, err := pg.Ping(ctx)
			cancel()
			n.do(func(now time.Time) { n.core.RTT(now, rtt, err) })
		})
	case core.OutReport:
		if o.Report.Complaint != nil {
			n.log.Warn("peer cut off", "remote", o.Peer, "reason", o.Report.Complaint.Reason, "err", o.Err)
		}
		select {
		case n.reports <- o.Report:
		default:
			n.log.Warn("tracker report dropped: the tracker connection is backed up")
		}
	case core.OutReady:
		// A native node plays nothing; the browser driver feeds MSE here.
	}
}

var errNoPing = errors.New("swarm: the source cannot be pinged")

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
// answered on its own goroutine, so that none holds up the others),
// reassignments to the core.
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

// trackerWriter sends the core's reports and complaints to the tracker.
func (n *Node) trackerWriter() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case r := <-n.reports:
			ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
			if err := n.tc.Report(ctx, *r); err != nil && n.ctx.Err() == nil {
				n.log.Debug("report", "err", err)
			}
			cancel()
		}
	}
}

// notifyLoop turns a Notifier source's changes into early polls.
func (n *Node) notifyLoop() {
	nt := n.src.(Notifier)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-nt.Changed():
			n.do(func(now time.Time) { n.core.ManifestChanged(now) })
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
func (n *Node) open(lk *Link, up bool) {
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
// Data-channel messages are pieces of a byte stream of frames.
func (n *Node) readLink(id core.LinkID, lk *Link) {
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
		case <-lk.Done():
			return
		case piece = <-lk.Recv():
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
	return n.core.Stats()
}

// LatencySamples returns the delivery latencies of the last 512 chunks held
// (ingest finished → held verified), in no particular order.
func (n *Node) LatencySamples() []time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.LatencySamples()
}

// SetBudget changes the relay budget while the node runs.
func (n *Node) SetBudget(kbps int) {
	n.do(func(now time.Time) { n.core.SetBudget(now, kbps) })
}

// SetQuality changes the renditions the node plays and carries while it
// runs (see NodeParams.Quality), from the stream's current manifest.
func (n *Node) SetQuality(ctx context.Context, quality string) error {
	m, err := n.src.Manifest(ctx, -1)
	if err != nil {
		return err
	}
	rends, err := core.SelectRenditions(m.Renditions, quality)
	if err != nil {
		return err
	}
	var setErr error
	n.do(func(now time.Time) { setErr = n.core.SetRenditions(now, rends) })
	return setErr
}

// Renditions are the renditions the node carries.
func (n *Node) Renditions() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Renditions()
}

// Chunk returns a held chunk (a player reads the media from here).
func (n *Node) Chunk(id manifest.ID) ([]byte, bool) { return n.store.Get(id) }

// SelectRenditions picks the renditions a quality setting asks for
// (core.SelectRenditions).
func SelectRenditions(infos []manifest.RenditionInfo, quality string) ([]string, error) {
	return core.SelectRenditions(infos, quality)
}

// ErrBadQuality is returned for a quality setting the stream cannot meet.
var ErrBadQuality = core.ErrBadQuality
