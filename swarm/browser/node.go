//go:build js && wasm

package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/driver"
	"github.com/seedcast/seedcast/swarm/peerlink"
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
	// Buffer is the playback delay behind the live edge (0: the tracker's,
	// from the welcome, else core.DefaultBuffer), Startup the extra wait at
	// start (core.Params: 500 ms). PollEvery is the
	// manifest poll while a substream comes over HTTP, and the wait between
	// tries while the stream is not live yet (200 ms).
	Buffer, Startup, PollEvery time.Duration
	// JoinTimeout bounds each step of Start that talks to the server: the
	// first manifest, the tracker's welcome, and the join once the stream is
	// live (30 s). The wait for a stream that is not live is bounded by
	// Start's ctx only.
	JoinTimeout time.Duration
	// Manifest, if set, is the stream's manifest as the page fetched it
	// (GET /live/{stream}/manifest?last=32) while the node loaded, at
	// ManifestAt: Start uses it instead of fetching its own. One that does
	// not decode is ignored.
	Manifest   []byte
	ManifestAt time.Time
	// OnWaiting, if set, is called once, from Start, when the stream is
	// found not live: Start then waits for it.
	OnWaiting func()
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
	if p.JoinTimeout <= 0 {
		p.JoinTimeout = 30 * time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return nil
}

// Stats counts what a node received and sent (core.Stats).
type Stats = core.Stats

// ErrLinkClosed is returned by a closed peer link (peerlink.ErrLinkClosed).
var ErrLinkClosed = peerlink.ErrLinkClosed

// Node is a swarm node in a browser: the driver around the I/O-free core.
// It joins the stream's swarm through the tracker (the browser's
// WebSocket), links to peers over WebRTC data channels (package peerlink,
// through pion's js build), fetches from the origin with fetch, and hands
// them with the core to the event loop the native driver runs too
// (driver.Loop), which feeds the core every event with the time and does
// what it outputs. Its methods are safe for concurrent use but block, so
// JavaScript callbacks must call them from a new goroutine.
type Node struct {
	src    *origin
	loop   *driver.Loop
	infos  []manifest.RenditionInfo
	closed sync.Once
}

// Start fetches the manifest, joins the swarm and starts the node. A
// stream that is not live yet (its manifest names no rendition) is waited
// for (Params.OnWaiting is told), until ctx ends; each exchange with the
// server is bounded by Params.JoinTimeout. ctx bounds the start only; Close
// stops the node. An unknown stream is an error wrapping ErrNoStream.
func Start(ctx context.Context, p Params) (*Node, error) {
	if err := p.defaults(); err != nil {
		return nil, err
	}
	src := &origin{server: p.Server, stream: p.Stream}
	jctx, cancel := context.WithTimeout(ctx, p.JoinTimeout)
	defer cancel()
	// The tracker's welcome and the manifest are fetched at once: start-up
	// waits for the slower, not for both in turn. The early join is kept
	// only if the stream was live at the first look.
	join := trackerParams{
		URL:  "ws" + strings.TrimPrefix(p.Server, "http") + "/tracker",
		Join: protocol.Join{Stream: p.Stream, Token: p.Token, Kind: protocol.KindBrowser, BudgetKbps: p.BudgetKbps * core.PushShare / 100},
	}
	type dialed struct {
		tc  *tracker
		err error
	}
	var early chan dialed
	if peerlink.Available() {
		early = make(chan dialed, 1)
		go func() {
			tc, err := dialTracker(jctx, join)
			early <- dialed{tc, err}
		}()
	}
	discard := func() {
		if early != nil {
			go func() {
				if d := <-early; d.tc != nil {
					_ = d.tc.Close()
				}
			}()
			early = nil
		}
	}
	var m *manifest.Manifest
	var err error
	at := p.ManifestAt
	if p.Manifest != nil {
		m, err = manifest.DecodeManifest(bytes.NewReader(p.Manifest))
	}
	if m == nil || err != nil {
		at = time.Now()
		m, err = src.Manifest(jctx, -1)
	}
	if err == nil && len(m.Renditions) == 0 {
		discard() // not live yet: join when it is
		if p.OnWaiting != nil {
			p.OnWaiting()
		}
		m, err = driver.WaitLive(ctx, src, p.PollEvery)
		at = time.Now()
		var rejoin context.CancelFunc
		jctx, rejoin = context.WithTimeout(ctx, p.JoinTimeout)
		defer rejoin()
	}
	if err != nil {
		discard()
		return nil, err
	}
	mark("seedcast:manifest")
	rends, err := core.SelectRenditions(m.Renditions, p.Quality)
	if err != nil {
		discard()
		return nil, err
	}
	if !peerlink.Available() {
		// No WebRTC on this page: no peer can reach it and it can reach
		// none, so it does not join the swarm, where it would only hold
		// slots. It plays over HTTP, every chunk verified against the
		// stream key the origin's manifest names (from the server, as the
		// tracker's would be).
		return start(p, src, offline{}, protocol.Welcome{
			PublicKey: m.PublicKey, Substreams: 1, Upstreams: []protocol.Upstream{},
		}, m, at, rends)
	}
	// The tracker sizes this node's subscriptions from the push share of
	// the budget, as for a native node.
	var tc *tracker
	if early != nil {
		d := <-early
		tc, err = d.tc, d.err
	} else {
		tc, err = dialTracker(jctx, join)
	}
	if err != nil {
		return nil, err
	}
	mark("seedcast:welcome")
	n, err := start(p, src, tc, tc.Welcome(), m, at, rends)
	if err != nil {
		_ = tc.Close()
		return nil, err
	}
	return n, nil
}

// swarmTracker is the tracker connection as the node uses it.
type swarmTracker interface {
	driver.Tracker
	peerlink.Signaler
	Close() error
}

// offline is the tracker of a node that does not join the swarm: it never
// relays a signal or a reassignment, and reports go nowhere.
type offline struct{}

func (o offline) Events() <-chan any                            { return nil }
func (o offline) Report(context.Context, protocol.Report) error { return nil }
func (o offline) Err() error                                    { return nil }
func (o offline) Close() error                                  { return nil }
func (o offline) Signal(context.Context, protocol.PeerID, *protocol.SDP, *protocol.Candidate) error {
	return peerlink.ErrNoWebRTC
}

func start(p Params, src *origin, tc swarmTracker, w protocol.Welcome, m *manifest.Manifest, at time.Time, rends []string) (*Node, error) {
	verify, ups, err := driver.FromWelcome(p.Stream, w)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTracker, err)
	}
	store := core.NewStore(p.StoreBytes)
	c, err := core.New(core.Params{
		Stream: p.Stream, BudgetKbps: p.BudgetKbps, Renditions: rends,
		Substreams: w.Substreams, Upstreams: ups, Depth: w.Depth, Manifest: m, ManifestAt: at,
		Verifier: verify, Store: store, Now: time.Now(),
		PollEvery: p.PollEvery, Buffer: driver.Delay(p.Buffer, w), Startup: p.Startup,
	})
	if err != nil {
		return nil, err
	}
	linker := peerlink.NewLinker(peerlink.LinkerParams{Signaler: tc, ICEServers: peerlink.ICEServers(w.ICEServers)})
	loop, err := driver.Start(driver.Params{
		Core: c, Store: store, Linker: linker.Driver(), Tracker: tc, Origin: src,
		Leave:   func() { _ = tc.Close(); linker.Close() },
		OnReady: p.OnReady, Logger: p.Logger.With("stream", p.Stream, "peer", w.Peer),
	})
	if err != nil {
		return nil, err
	}
	return &Node{src: src, loop: loop, infos: m.Renditions}, nil
}

// Close leaves the swarm and stops the node. It waits for the node's
// goroutines, so it must not run on a JavaScript callback's goroutine.
func (n *Node) Close() {
	n.closed.Do(func() {
		n.loop.Close()
		n.src.close()
	})
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats { return n.loop.Stats() }

// SetBudget changes the relay budget while the node runs (0: relay off; at
// most protocol.MaxBudgetKbps).
func (n *Node) SetBudget(kbps int) {
	n.loop.SetBudget(min(max(kbps, 0), protocol.MaxBudgetKbps))
}

// Renditions are the renditions the node carries, in the manifest's order.
func (n *Node) Renditions() []string { return n.loop.Renditions() }

// RenditionInfos describes the stream's renditions, as its manifest did
// when the node started (codecs, sizes: what a player sets MSE up with).
func (n *Node) RenditionInfos() []manifest.RenditionInfo { return n.infos }

// SetQuality changes the renditions the node plays and carries while it
// runs ("auto", "audio-only", "720p", ...; core.SelectRenditions). The
// init segment of a rendition it did not carry comes through OnReady
// before its first chunk.
func (n *Node) SetQuality(ctx context.Context, quality string) error {
	return n.loop.SetQuality(ctx, quality)
}
