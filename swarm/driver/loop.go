package driver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// Bounds and timeouts of a Loop.
const (
	// MaxOffers bounds the downstream offers a node answers at once; a
	// signal over it is dropped.
	MaxOffers = 8
	// MaxReports bounds the reports queued for the tracker; one over it is
	// dropped.
	MaxReports = 64

	fetchTimeout  = 5 * time.Second  // a chunk, a manifest or a ping
	dialTimeout   = 5 * time.Second  // an upstream's link open
	signalTimeout = 10 * time.Second // an offer answered
	reportTimeout = 2 * time.Second  // a report written
)

// Params configures a Loop. Core, Linker, Tracker, Origin and Leave are
// required.
type Params struct {
	// Core is the node's core, just made by core.New: Start carries out
	// what it decided there.
	Core    *core.Node
	Linker  Linker
	Tracker Tracker
	// Origin is where the core's fetches, manifest polls and pings go; if
	// it is a Pinger its Ping times the pings.
	Origin Origin
	// Leave is called by Close once the loop's goroutines are told to
	// stop: the driver leaves the swarm there (it closes its tracker
	// connection), then closes its Linker's links.
	Leave func()
	// Store is the core's chunk store, where OnReady's bytes come from
	// (required with OnReady).
	Store core.ChunkStore
	// OnReady, if set, is given each chunk or init segment the core
	// declares ready, with its bytes and, for a media chunk, the time it
	// plays at, in order, while the loop holds its send lock: it must
	// return soon and must not call the Loop's methods.
	OnReady func(e manifest.Entry, deadline time.Time, data []byte)
	// OnUpload, if set, is called with every frame's size as it is handed
	// to a peer link, after the budget allowed it (metering, tests).
	OnUpload func(at time.Time, bytes int)
	Logger   *slog.Logger // nil: slog.Default()
}

// Loop runs a core on real links, a real tracker and a real origin. One
// goroutine runs the timers; each link has a reader; dials, fetches, pings,
// manifest polls, offers and tracker writes run apart, so none blocks
// another. Every call into the core holds mu, briefly; the outputs it
// produced are encoded without a lock and carried out in the order the
// core made them (a ticket per call). Its methods are safe for concurrent
// use.
type Loop struct {
	p       Params
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // an input may have moved NextWake earlier
	drained chan struct{} // a link's send backlog fell low (Drainer)
	reports chan *protocol.Report
	offers  chan struct{} // bounds the offers answered at once
	lost    chan struct{} // closed when the tracker connection is lost
	closed  sync.Once

	mu     sync.Mutex
	core   *core.Node
	links  map[core.LinkID]Link
	nextID core.LinkID

	// sendMu and turn order the carrying out of outputs: each do takes a
	// ticket under mu and carries out its outputs when serving reaches it.
	sendMu  sync.Mutex
	turn    *sync.Cond
	tickets uint64
	serving uint64
}

// Start starts the loop around p.Core and carries out what the core
// decided when it was made.
func Start(p Params) (*Loop, error) {
	if p.Core == nil || p.Linker == nil || p.Tracker == nil || p.Origin == nil || p.Leave == nil || p.OnReady != nil && p.Store == nil {
		return nil, fmt.Errorf("%w: Core, Linker, Tracker, Origin and Leave are required, and Store with OnReady", ErrParams)
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	l := &Loop{
		p: p, log: p.Logger, core: p.Core, links: map[core.LinkID]Link{},
		kick: make(chan struct{}, 1), drained: make(chan struct{}, 1), reports: make(chan *protocol.Report, MaxReports), offers: make(chan struct{}, MaxOffers),
		lost: make(chan struct{}),
	}
	l.turn = sync.NewCond(&l.sendMu)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.goRun(l.timerLoop)
	l.goRun(l.trackerLoop)
	l.goRun(l.trackerWriter)
	l.goRun(l.acceptLoop)
	l.do(func(time.Time) {}) // carry out what New decided
	return l, nil
}

// Close leaves the swarm and closes every link (Params.Leave), and waits
// for the loop's goroutines. Closing again does nothing.
func (l *Loop) Close() {
	l.closed.Do(func() {
		l.cancel()
		l.p.Leave()
		l.wg.Wait()
	})
}

// Lost is closed when the tracker connection is lost while the loop runs
// (not by Close). The node keeps its links, but it hears of no new
// upstream, and a restarted origin signs with a key it does not know: a
// viewer starts a new node (swarm.Viewer).
func (l *Loop) Lost() <-chan struct{} { return l.lost }

// Follow makes every change nt announces call the core's ManifestChanged,
// until the loop closes. (A core told Params.Notified polls slowly.)
func (l *Loop) Follow(nt Notifier) { l.goRun(func() { l.notifyLoop(nt) }) }

// Stats returns the core's counters.
func (l *Loop) Stats() core.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.Stats()
}

// LatencySamples returns the core's delivery latencies of the last chunks
// held, in no particular order.
func (l *Loop) LatencySamples() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.LatencySamples()
}

// Renditions are the renditions the core carries.
func (l *Loop) Renditions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.core.Renditions()
}

// SetBudget changes the relay budget.
func (l *Loop) SetBudget(kbps int) {
	l.do(func(now time.Time) { l.core.SetBudget(now, kbps) })
}

// SetQuality changes the renditions the core plays and carries
// (core.SelectRenditions), from the origin's current manifest.
func (l *Loop) SetQuality(ctx context.Context, quality string) error {
	m, err := l.p.Origin.Manifest(ctx, -1)
	if err != nil {
		return err
	}
	rends, err := core.SelectRenditions(m.Renditions, quality)
	if err != nil {
		return err
	}
	var setErr error
	l.do(func(now time.Time) { setErr = l.core.SetRenditions(now, rends) })
	return setErr
}

func (l *Loop) goRun(f func()) {
	l.wg.Add(1)
	go func() { defer l.wg.Done(); f() }()
}

// do feeds the core one input (f, called with the time) and carries out
// what it outputs.
func (l *Loop) do(f func(now time.Time)) {
	l.mu.Lock()
	now := time.Now()
	f(now)
	var outs []core.Output
	var links []Link // per output: the link it names, as it was then (nil: closed)
	for {
		o, ok := l.core.Poll()
		if !ok {
			break
		}
		var lk Link
		if o.Kind == core.OutSend || o.Kind == core.OutClose {
			lk = l.links[o.Link]
			if o.Kind == core.OutClose {
				delete(l.links, o.Link)
			}
		}
		outs, links = append(outs, o), append(links, lk)
	}
	// Outputs are carried out in the order the core made them, but the
	// core is free again at once: frames are encoded outside both locks,
	// and each batch of outputs waits only for the batches before it.
	ticket := l.tickets
	l.tickets++
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
	frames := make([][]byte, len(outs))
	for i, o := range outs {
		if o.Kind == core.OutSend && links[i] != nil {
			// The core makes only valid messages (FuzzCore checks it):
			// Append, not AppendFrame, which would validate (and decode
			// every relayed batch) again.
			frames[i] = o.Msg.Append(make([]byte, 0, o.Bytes))
		}
	}
	l.sendMu.Lock()
	for l.serving != ticket {
		l.turn.Wait()
	}
	for i, o := range outs {
		l.carryOut(now, o, links[i], frames[i])
	}
	l.serving++
	l.turn.Broadcast()
	l.sendMu.Unlock()
}

// carryOut does one output of the core. It runs under sendMu, in order.
func (l *Loop) carryOut(now time.Time, o core.Output, lk Link, frame []byte) {
	switch o.Kind {
	case core.OutSend:
		if lk == nil {
			return
		}
		if o.Charged && l.p.OnUpload != nil {
			l.p.OnUpload(now, o.Bytes)
		}
		_ = lk.SendFrame(frame) // a closed link is reported by its reader
	case core.OutClose:
		if lk != nil {
			if o.Err != nil {
				l.log.Debug("link closed", "remote", o.Peer, "why", o.Err)
			}
			l.goRun(func() { lk.Close(o.Err) }) // closing a peer connection can take a while
		}
	case core.OutDial:
		l.goRun(func() { l.dial(o.Peer) })
	case core.OutFetchChunk:
		l.goRun(func() {
			ctx, cancel := context.WithTimeout(l.ctx, fetchTimeout)
			data, err := l.p.Origin.Chunk(ctx, o.Entry.Hash)
			cancel()
			l.do(func(now time.Time) {
				if err := l.core.ChunkFetched(now, o.Entry.Hash, data, err); err != nil && l.ctx.Err() == nil {
					l.log.Debug("origin fetch", "chunk", o.Entry.Hash, "err", err)
				}
			})
		})
	case core.OutFetchManifest:
		l.goRun(func() {
			ctx, cancel := context.WithTimeout(l.ctx, fetchTimeout)
			m, err := l.p.Origin.Manifest(ctx, o.After)
			cancel()
			l.do(func(now time.Time) {
				if err := l.core.ManifestFetched(now, m, err); err != nil && l.ctx.Err() == nil {
					l.log.Warn("manifest", "err", err)
				}
			})
		})
	case core.OutPing:
		l.goRun(l.ping)
	case core.OutReport:
		if o.Report.Complaint != nil {
			l.log.Warn("peer cut off", "remote", o.Peer, "reason", o.Report.Complaint.Reason, "err", o.Err)
		}
		select {
		case l.reports <- o.Report:
		default:
			l.log.Warn("tracker report dropped: the tracker connection is backed up")
		}
	case core.OutReady:
		if l.p.OnReady == nil {
			return
		}
		data, ok := l.p.Store.Get(o.Entry.Hash)
		if !ok {
			l.log.Warn("a ready chunk left the store before it was played", "chunk", o.Entry.Hash)
			return
		}
		l.p.OnReady(o.Entry, o.Deadline, data)
	}
}

// ping measures one round trip to the origin for the core's RTT guard.
func (l *Loop) ping() {
	pg, ok := l.p.Origin.(Pinger)
	if !ok {
		l.do(func(now time.Time) { l.core.RTT(now, 0, ErrNoPing) })
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, fetchTimeout)
	rtt, err := pg.Ping(ctx)
	cancel()
	l.do(func(now time.Time) { l.core.RTT(now, rtt, err) })
}

// timerLoop calls the core's Tick when its NextWake comes, after telling it
// each link's send backlog.
func (l *Loop) timerLoop() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		l.mu.Lock()
		wake := l.core.NextWake()
		l.mu.Unlock()
		t.Reset(max(time.Until(wake), 0))
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
			continue
		case <-l.drained: // the backlogs are read below: a backlogged peer is fed now
		case <-t.C:
		}
		l.do(func(now time.Time) {
			for id, lk := range l.links {
				l.core.LinkBacklog(now, id, lk.Buffered())
			}
			l.core.Tick(now)
		})
	}
}

// trackerLoop follows the tracker: signalling to the linker (each offer
// answered on its own goroutine, so that none holds up the others, at most
// MaxOffers at once), reassignments to the core.
func (l *Loop) trackerLoop() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case ev, ok := <-l.p.Tracker.Events():
			if !ok {
				if l.ctx.Err() == nil {
					l.log.Warn("tracker connection lost; peers stay linked", "err", l.p.Tracker.Err())
					close(l.lost)
				}
				return
			}
			switch m := ev.(type) {
			case *protocol.Signal:
				// Only offers are bounded: an answer completes a dial of
				// this node's own, which its dials already bound.
				offer := m.SDP != nil && m.SDP.Type == "offer"
				if offer {
					select {
					case l.offers <- struct{}{}:
					default:
						l.log.Debug("offer dropped: too many at once", "from", m.From)
						continue
					}
				}
				l.goRun(func() {
					if offer {
						defer func() { <-l.offers }()
					}
					ctx, cancel := context.WithTimeout(l.ctx, signalTimeout)
					defer cancel()
					if err := l.p.Linker.HandleSignal(ctx, m); err != nil {
						l.log.Debug("signal", "from", m.From, "err", err)
					}
				})
			case *protocol.Reassign:
				l.log.Debug("reassigned", "substream", m.Substream, "upstream", m.Peer, "reason", m.Reason)
				l.do(func(now time.Time) { l.core.Reassign(now, m.Substream, m.Peer, m.Depth) })
			}
		}
	}
}

// trackerWriter sends the core's reports and complaints to the tracker.
func (l *Loop) trackerWriter() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case r := <-l.reports:
			ctx, cancel := context.WithTimeout(l.ctx, reportTimeout)
			if err := l.p.Tracker.Report(ctx, *r); err != nil && l.ctx.Err() == nil {
				l.log.Debug("report", "err", err)
			}
			cancel()
		}
	}
}

// notifyLoop turns a Notifier origin's changes into early polls.
func (l *Loop) notifyLoop(nt Notifier) {
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-nt.Changed():
			l.do(func(now time.Time) { l.core.ManifestChanged(now) })
		}
	}
}

// dial links to an upstream.
func (l *Loop) dial(id protocol.PeerID) {
	ctx, cancel := context.WithTimeout(l.ctx, dialTimeout)
	lk, err := l.p.Linker.Dial(ctx, id)
	cancel()
	if err != nil {
		if l.ctx.Err() == nil {
			l.log.Debug("dial upstream", "remote", id, "err", err)
		}
		l.do(func(now time.Time) { l.core.DialFailed(now, id) })
		return
	}
	l.open(lk, true)
}

// acceptLoop takes the links downstream peers open.
func (l *Loop) acceptLoop() {
	for {
		lk, err := l.p.Linker.Accept(l.ctx)
		if err != nil {
			return
		}
		l.open(lk, false)
	}
}

// open gives a new link an id, tells the core, and starts its reader.
func (l *Loop) open(lk Link, up bool) {
	var id core.LinkID
	l.do(func(now time.Time) {
		l.nextID++
		id = l.nextID
		l.links[id] = lk
		l.core.LinkOpened(now, id, lk.Remote(), up)
	})
	if d, ok := lk.(Drainer); ok {
		d.OnDrain(func() {
			select {
			case l.drained <- struct{}{}:
			default:
			}
		})
	}
	l.goRun(func() { l.readLink(id, lk) })
}

// readLink feeds one link's frames to the core until it closes. Its
// messages are pieces of a byte stream of frames.
func (l *Loop) readLink(id core.LinkID, lk Link) {
	var split wire.Splitter
	defer l.do(func(now time.Time) {
		if l.links[id] == lk {
			delete(l.links, id)
			l.core.LinkClosed(now, id)
		}
	})
	defer lk.Close(nil)
	for {
		var piece []byte
		select {
		case <-l.ctx.Done():
			return
		case <-lk.Done():
			return
		case piece = <-lk.Recv():
		}
		if _, err := split.Write(piece); err != nil {
			l.do(func(now time.Time) { l.core.BadInput(now, id, err) })
			return
		}
		for {
			f, err := split.Next()
			if err != nil {
				l.do(func(now time.Time) { l.core.BadInput(now, id, err) })
				return
			}
			if f == nil {
				break
			}
			l.do(func(now time.Time) { l.core.ReceiveFrame(now, id, f) })
		}
	}
}
