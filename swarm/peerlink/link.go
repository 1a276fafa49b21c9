package peerlink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/swarm/driver"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// MaxQueuedFrames bounds the data-channel messages a link buffers for its
// reader; a peer that sends faster than the node reads is cut off.
const MaxQueuedFrames = 256

// Sentinel errors.
var (
	// ErrLinkClosed is returned by a closed peer link.
	ErrLinkClosed = errors.New("swarm/peerlink: peer link closed")
	// ErrRefused wraps what LinkerParams.Admit said when it refused an
	// offer.
	ErrRefused = errors.New("swarm/peerlink: offer refused")
)

// DefaultConnectTimeout is how long an accepted offer's link may take to
// open before it is closed (LinkerParams.ConnectTimeout).
const DefaultConnectTimeout = 10 * time.Second

// Lease is a peer connection admitted by LinkerParams.Admit: Connected
// when its data channel opens, Release when it closes. Both may be called
// more than once (*connlimit.Lease is one).
type Lease interface {
	Connected()
	Release()
}

// Signaler sends signalling to a linked peer (the tracker connection).
type Signaler interface {
	Signal(ctx context.Context, to protocol.PeerID, sdp *protocol.SDP, cand *protocol.Candidate) error
}

// LinkerParams configures a Linker.
type LinkerParams struct {
	// API makes the peer connections (nil: webrtc.NewAPI()). Natively its
	// SettingEngine decides the networks ICE uses; in the browser, the
	// browser does.
	API        *webrtc.API
	Signaler   Signaler
	ICEServers []webrtc.ICEServer
	// Admit, if set, is asked before a peer connection is made for an
	// offer; an error refuses the offer (HandleSignal returns it wrapped
	// in ErrRefused), a Lease is held for the link's life. The origin's
	// seed uses it for the process's peer-connection caps and a rate of
	// offers per peer.
	Admit func(from protocol.PeerID) (Lease, error)
	// ConnectTimeout closes a link made for an offer that has not opened in
	// this time (DefaultConnectTimeout), so that a peer that offers and
	// never connects holds nothing for long.
	ConnectTimeout time.Duration
}

// ICEServers turns the tracker's ICE servers into pion's.
func ICEServers(in []protocol.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(in))
	for _, s := range in {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// Linker makes WebRTC data-channel links to the peers the tracker links
// this node with, signalling through the tracker: the downstream dials
// (offers), the upstream accepts. Offers and answers carry all ICE
// candidates (gathering completes before they are sent).
type Linker struct {
	p        LinkerParams
	accepted chan *Link

	mu       sync.Mutex
	pending  map[protocol.PeerID]*Link // dialed, waiting for the answer
	answered map[protocol.PeerID]*Link // made for an offer from this peer, not closed yet
	links    map[*Link]struct{}        // not closed yet
}

// Link is one data-channel connection to a peer (Driver's links hand each
// to the loop as a driver.Link). Messages are pieces of a byte stream of
// wire frames.
type Link struct {
	Peer     protocol.PeerID
	pc       *webrtc.PeerConnection
	dc       *webrtc.DataChannel
	open     chan struct{}
	openOnce sync.Once
	recv     chan []byte
	once     sync.Once
	done     chan struct{}
	l        *Linker
	lease    Lease // from Admit, for a link made for an offer; nil otherwise
	drain    atomic.Pointer[func()]
}

// NewLinker returns a Linker.
func NewLinker(p LinkerParams) *Linker {
	if p.API == nil {
		p.API = webrtc.NewAPI()
	}
	if p.ConnectTimeout <= 0 {
		p.ConnectTimeout = DefaultConnectTimeout
	}
	return &Linker{
		p: p, pending: map[protocol.PeerID]*Link{}, answered: map[protocol.PeerID]*Link{},
		accepted: make(chan *Link, 16), links: map[*Link]struct{}{},
	}
}

// Accepted delivers links that peers dialed to this node, once open.
func (l *Linker) Accepted() <-chan *Link { return l.accepted }

// Driver returns l as the driver.Linker a node's driver.Loop runs on; its
// links are driver.Links. The driver closes l itself (Close).
//
// The two are thin values that reach l and its links through funcs: no
// pion type is stored in an interface, so that the linker need not keep
// their methods (nor those of pion's types they lead to) in the browser's
// .wasm.
func (l *Linker) Driver() driver.Linker {
	return &forDriver{
		dial: func(ctx context.Context, peer protocol.PeerID) (driver.Link, error) {
			lk, err := l.Dial(ctx, peer)
			if err != nil {
				return nil, err
			}
			return lk.forDriver(), nil
		},
		accept: func(ctx context.Context) (driver.Link, error) {
			select {
			case lk := <-l.accepted:
				return lk.forDriver(), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
		signal: l.HandleSignal,
	}
}

// forDriver is a Linker as a driver.Linker.
type forDriver struct {
	dial   func(context.Context, protocol.PeerID) (driver.Link, error)
	accept func(context.Context) (driver.Link, error)
	signal func(context.Context, *protocol.Signal) error
}

func (d *forDriver) Dial(ctx context.Context, peer protocol.PeerID) (driver.Link, error) {
	return d.dial(ctx, peer)
}

func (d *forDriver) Accept(ctx context.Context) (driver.Link, error) { return d.accept(ctx) }

func (d *forDriver) HandleSignal(ctx context.Context, s *protocol.Signal) error {
	return d.signal(ctx, s)
}

// linkForDriver is a Link as a driver.Link.
type linkForDriver struct {
	peer     protocol.PeerID
	recv     <-chan []byte
	done     <-chan struct{}
	send     func([]byte) error
	buffered func() uint64
	onDrain  func(func())
	close    func()
}

func (lk *Link) forDriver() driver.Link {
	return &linkForDriver{peer: lk.Peer, recv: lk.recv, done: lk.done, send: lk.SendFrame, buffered: lk.Buffered, onDrain: lk.OnDrain, close: lk.Close}
}

func (d *linkForDriver) Remote() protocol.PeerID      { return d.peer }
func (d *linkForDriver) SendFrame(frame []byte) error { return d.send(frame) }
func (d *linkForDriver) Recv() <-chan []byte          { return d.recv }
func (d *linkForDriver) Done() <-chan struct{}        { return d.done }
func (d *linkForDriver) Buffered() uint64             { return d.buffered() }
func (d *linkForDriver) Close(error)                  { d.close() }
func (d *linkForDriver) OnDrain(f func())             { d.onDrain(f) }

// ErrNoWebRTC means the page has no RTCPeerConnection.
var ErrNoWebRTC = errors.New("swarm/peerlink: WebRTC is not available")

func (l *Linker) newLink(peer protocol.PeerID) (*Link, error) {
	if !Available() {
		return nil, ErrNoWebRTC
	}
	pc, err := l.p.API.NewPeerConnection(webrtc.Configuration{ICEServers: l.p.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("swarm/peerlink: peer connection: %w", err)
	}
	lk := &Link{Peer: peer, pc: pc, open: make(chan struct{}), recv: make(chan []byte, MaxQueuedFrames), done: make(chan struct{}), l: l}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
			lk.Close()
		}
	})
	l.mu.Lock()
	l.links[lk] = struct{}{}
	l.mu.Unlock()
	return lk, nil
}

// attach wires a data channel to a link.
func (lk *Link) attach(dc *webrtc.DataChannel) {
	lk.dc = dc
	prepare(dc)
	markOpen := func() { lk.openOnce.Do(func() { close(lk.open) }) }
	dc.OnOpen(markOpen)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case lk.recv <- m.Data:
		case <-lk.done:
		default:
			lk.Close() // a reader that cannot keep up: the peer is cut off
		}
	})
	dc.OnClose(lk.Close)
	dc.SetBufferedAmountLowThreshold(LowWater)
	dc.OnBufferedAmountLow(func() {
		if f := lk.drain.Load(); f != nil {
			(*f)()
		}
	})
	// A channel the peer created may be open already when it is announced
	// (in a browser).
	if dc.ReadyState() == webrtc.DataChannelStateOpen {
		markOpen()
	}
}

// Dial links to an upstream peer: it offers a data channel and waits until
// it is open.
func (l *Linker) Dial(ctx context.Context, peer protocol.PeerID) (*Link, error) {
	lk, err := l.newLink(peer)
	if err != nil {
		return nil, err
	}
	dc, err := lk.pc.CreateDataChannel("seedcast", nil)
	if err != nil {
		lk.Close()
		return nil, fmt.Errorf("swarm/peerlink: data channel: %w", err)
	}
	lk.attach(dc)
	offer, err := lk.pc.CreateOffer(nil)
	if err == nil {
		err = setLocalAndGather(ctx, lk.pc, offer)
	}
	if err != nil {
		lk.Close()
		return nil, fmt.Errorf("swarm/peerlink: offering to %s: %w", peer, err)
	}
	l.mu.Lock()
	l.pending[peer] = lk
	l.mu.Unlock()
	if err := l.p.Signaler.Signal(ctx, peer, &protocol.SDP{Type: "offer", SDP: lk.pc.LocalDescription().SDP}, nil); err != nil {
		lk.Close()
		return nil, err
	}
	select {
	case <-lk.open:
		return lk, nil
	case <-lk.done:
		return nil, fmt.Errorf("%w: dialing %s", ErrLinkClosed, peer)
	case <-ctx.Done():
		lk.Close()
		return nil, ctx.Err()
	}
}

func setLocalAndGather(ctx context.Context, pc *webrtc.PeerConnection, sd webrtc.SessionDescription) error {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(sd); err != nil {
		return err
	}
	select {
	case <-gathered:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// HandleSignal takes a signal the tracker relayed: the answer to a dial,
// or an offer from a downstream peer (answered, and its link delivered on
// Accepted once open). A bad signal closes only the link concerned.
func (l *Linker) HandleSignal(ctx context.Context, s *protocol.Signal) error {
	if s.SDP == nil {
		return nil // candidates travel inside the descriptions
	}
	switch s.SDP.Type {
	case "answer":
		l.mu.Lock()
		lk := l.pending[s.From]
		delete(l.pending, s.From)
		l.mu.Unlock()
		if lk == nil {
			return fmt.Errorf("swarm/peerlink: answer from %s, which was not dialed", s.From)
		}
		if err := lk.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP.SDP}); err != nil {
			lk.Close()
			return fmt.Errorf("swarm/peerlink: answer from %s: %w", s.From, err)
		}
		return nil
	case "offer":
		var lease Lease
		if l.p.Admit != nil {
			var err error
			if lease, err = l.p.Admit(s.From); err != nil {
				return fmt.Errorf("%w: from %s: %w", ErrRefused, s.From, err)
			}
		}
		// One link per downstream peer: a new offer means the peer gave up
		// on the old link (it re-dials after a failure).
		l.mu.Lock()
		old := l.answered[s.From]
		l.mu.Unlock()
		if old != nil {
			old.Close()
		}
		lk, err := l.newLink(s.From)
		if err != nil {
			if lease != nil {
				lease.Release()
			}
			return err
		}
		lk.lease = lease
		l.mu.Lock()
		l.answered[s.From] = lk
		l.mu.Unlock()
		timer := time.AfterFunc(l.p.ConnectTimeout, func() {
			select {
			case <-lk.open:
			default:
				lk.Close()
			}
		})
		go func() {
			select {
			case <-lk.open:
				if lease != nil {
					lease.Connected()
				}
			case <-lk.done:
			}
			timer.Stop()
		}()
		// Natively pion waits for this handler before it opens the
		// channel: the wait for the open runs apart.
		lk.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			lk.attach(dc)
			go func() {
				select {
				case <-lk.open:
					select {
					case l.accepted <- lk:
					case <-lk.done:
					}
				case <-lk.done:
				}
			}()
		})
		if err := lk.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: s.SDP.SDP}); err != nil {
			lk.Close()
			return fmt.Errorf("swarm/peerlink: offer from %s: %w", s.From, err)
		}
		answer, err := lk.pc.CreateAnswer(nil)
		if err == nil {
			err = setLocalAndGather(ctx, lk.pc, answer)
		}
		if err == nil {
			err = l.p.Signaler.Signal(ctx, s.From, &protocol.SDP{Type: "answer", SDP: lk.pc.LocalDescription().SDP}, nil)
		}
		if err != nil {
			lk.Close()
			return fmt.Errorf("swarm/peerlink: answering %s: %w", s.From, err)
		}
		return nil
	}
	return fmt.Errorf("%w: sdp type %q from %s", protocol.ErrBadMessage, s.SDP.Type, s.From)
}

// Close closes every link.
func (l *Linker) Close() {
	l.mu.Lock()
	links := make([]*Link, 0, len(l.links))
	for lk := range l.links {
		links = append(links, lk)
	}
	l.mu.Unlock()
	for _, lk := range links {
		lk.Close()
	}
}

// Send sends one wire message.
func (lk *Link) Send(m wire.Message) error {
	frame, err := wire.AppendFrame(nil, m)
	if err != nil {
		return err
	}
	return lk.SendFrame(frame)
}

// SendFrame sends encoded wire frames (or several back to back: the peer's
// reader splits them), as binary messages of at most wire.MaxPiece bytes.
func (lk *Link) SendFrame(frame []byte) error {
	select {
	case <-lk.done:
		return ErrLinkClosed
	default:
	}
	if lk.dc == nil { // an accepted link before its channel arrived
		return ErrLinkClosed
	}
	for len(frame) > 0 {
		n := min(len(frame), wire.MaxPiece)
		if err := lk.dc.Send(frame[:n]); err != nil {
			return err
		}
		frame = frame[n:]
	}
	return nil
}

// LowWater is the send backlog under which a link tells its OnDrain
// callback (the data channel's bufferedamountlow event): well under the
// node core's high-water mark, so that a backlogged peer is fed again as
// soon as its queue has room, not at the next timer.
const LowWater = 256 << 10

// OnDrain sets f to be called (on the channel's own goroutine, or the
// page's event loop: it must not block) when the send backlog falls under
// LowWater.
func (lk *Link) OnDrain(f func()) { lk.drain.Store(&f) }

// Buffered is the data channel's send backlog in bytes.
func (lk *Link) Buffered() uint64 {
	if lk.dc == nil {
		return 0
	}
	return lk.dc.BufferedAmount()
}

// Recv delivers the messages the peer sends. It is never closed: select
// on Done too.
func (lk *Link) Recv() <-chan []byte { return lk.recv }

// Done is closed when the link closes.
func (lk *Link) Done() <-chan struct{} { return lk.done }

// Close ends the link.
func (lk *Link) Close() { lk.once.Do(lk.shut) }

// shut is Close's work, once. (A method, not a closure in Close: Close is
// inlined in many places, and a closure would be copied into each.)
func (lk *Link) shut() {
	close(lk.done)
	lk.l.mu.Lock()
	delete(lk.l.links, lk)
	if lk.l.pending[lk.Peer] == lk {
		delete(lk.l.pending, lk.Peer)
	}
	if lk.l.answered[lk.Peer] == lk {
		delete(lk.l.answered, lk.Peer)
	}
	lk.l.mu.Unlock()
	_ = lk.pc.Close()
	if lk.lease != nil {
		lk.lease.Release()
	}
}
