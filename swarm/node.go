package swarm

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/driver"
	"github.com/seedcast/seedcast/swarm/peerlink"
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
	// Buffer and Startup tune the core (core.Params says what each does;
	// a zero Buffer takes the tracker's delay from the welcome).
	PollEvery, SlowPoll, TickEvery, PushGrace, StallAfter, ReportEvery, Buffer, Startup time.Duration
	// StoreBytes bounds the verified chunks kept (default 64 MiB);
	// StoreWindow, if set, also drops those fetched longer ago than this
	// (core.StoreParams): the seed's, set to the origin's window, so that it
	// keeps no chunk the origin no longer lists.
	StoreBytes  int64
	StoreWindow time.Duration
	// Pull tunes pull repair (nil: scheduler.DefaultPullParams()).
	Pull *scheduler.PullParams
	// Guard tunes the RTT guard (zero values: its defaults).
	Guard scheduler.RTTGuardParams
	// OnUpload, if set, is called with every frame's size as it is handed to
	// a peer link, after the budget allowed it (metering, tests).
	OnUpload func(at time.Time, bytes int)
	// OnReady, if set, is given every chunk and init segment the node
	// holds verified, in order, with its bytes and its playback time
	// (driver.Params.OnReady: it must return soon).
	OnReady func(e manifest.Entry, deadline time.Time, data []byte)
	// Admit, if set, admits (or refuses) each offer a downstream peer makes
	// to this node before a peer connection is made for it
	// (peerlink.LinkerParams.Admit); the origin's seed sets it.
	Admit  func(from protocol.PeerID) (peerlink.Lease, error)
	Logger *slog.Logger
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
// the tracker (TrackerClient), links to peers over WebRTC data channels
// (Linker: pion), fetches from the origin over HTTP (Source), and hands
// them with the core to the event loop both real drivers share
// (driver.Loop), which feeds the core every event with the time and does
// what it outputs.
type Node struct {
	store *core.Store
	loop  *driver.Loop
}

// StartNode fetches the manifest, joins the swarm and starts the node. A
// stream that is not live yet (its manifest names no rendition) is waited
// for, until ctx ends.
func StartNode(ctx context.Context, p NodeParams) (*Node, error) {
	p.defaults()
	m, err := driver.WaitLive(ctx, p.Source, p.PollEvery)
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
	n, err := start(p, tc, m)
	if err != nil {
		tc.Close()
		return nil, err
	}
	return n, nil
}

func start(p NodeParams, tc *TrackerClient, m *manifest.Manifest) (*Node, error) {
	w := tc.Welcome()
	verify, ups, err := driver.FromWelcome(p.Stream, w)
	if err != nil {
		return nil, err
	}
	rends, err := core.SelectRenditions(m.Renditions, p.Quality)
	if err != nil {
		return nil, err
	}
	nt, notified := p.Source.(Notifier)
	store := core.NewStoreWith(core.StoreParams{MaxBytes: p.StoreBytes, Window: p.StoreWindow})
	c, err := core.New(core.Params{
		Stream: p.Stream, Seed: p.Seed, BudgetKbps: p.BudgetKbps, Renditions: rends,
		Substreams: w.Substreams, Upstreams: ups, Depth: w.Depth, Manifest: m,
		Verifier: verify, Store: store, Now: time.Now(),
		PollEvery: p.PollEvery, SlowPoll: p.SlowPoll, Notified: notified, TickEvery: p.TickEvery,
		PushGrace: p.PushGrace, StallAfter: p.StallAfter, ReportEvery: p.ReportEvery,
		Buffer: driver.Delay(p.Buffer, w), Startup: p.Startup, Pull: p.Pull, Guard: p.Guard,
	})
	if err != nil {
		return nil, err
	}
	linker := NewLinker(LinkerParams{API: p.API, Signaler: tc, ICEServers: peerlink.ICEServers(w.ICEServers), Admit: p.Admit})
	loop, err := driver.Start(driver.Params{
		Core: c, Store: store, Linker: linker.Driver(), Tracker: tc, Origin: p.Source,
		Leave:    func() { _ = tc.Close(); linker.Close() },
		OnUpload: p.OnUpload, OnReady: p.OnReady, Logger: p.Logger.With("stream", p.Stream, "peer", w.Peer),
	})
	if err != nil {
		return nil, err
	}
	if notified {
		loop.Follow(nt)
	}
	return &Node{store: store, loop: loop}, nil
}

// Close leaves the swarm and stops the node.
func (n *Node) Close() { n.loop.Close() }

// Lost is closed when the node loses the tracker (driver.Loop.Lost).
func (n *Node) Lost() <-chan struct{} { return n.loop.Lost() }

// Stats returns the node's counters.
func (n *Node) Stats() Stats { return n.loop.Stats() }

// LatencySamples returns the delivery latencies of the last 512 chunks held
// (ingest finished → held verified), in no particular order.
func (n *Node) LatencySamples() []time.Duration { return n.loop.LatencySamples() }

// SetBudget changes the relay budget while the node runs.
func (n *Node) SetBudget(kbps int) { n.loop.SetBudget(kbps) }

// SetQuality changes the renditions the node plays and carries while it
// runs (see NodeParams.Quality), from the stream's current manifest.
func (n *Node) SetQuality(ctx context.Context, quality string) error {
	return n.loop.SetQuality(ctx, quality)
}

// Renditions are the renditions the node carries.
func (n *Node) Renditions() []string { return n.loop.Renditions() }

// Chunk returns a held chunk (a player reads the media from here).
func (n *Node) Chunk(id manifest.ID) ([]byte, bool) { return n.store.Get(id) }

// SelectRenditions picks the renditions a quality setting asks for
// (core.SelectRenditions).
func SelectRenditions(infos []manifest.RenditionInfo, quality string) ([]string, error) {
	return core.SelectRenditions(infos, quality)
}

// ErrBadQuality is returned for a quality setting the stream cannot meet.
var ErrBadQuality = core.ErrBadQuality
