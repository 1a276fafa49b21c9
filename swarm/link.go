package swarm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// MaxQueuedFrames bounds the frames a peer link buffers for its reader.
const MaxQueuedFrames = 256

// ErrLinkClosed is returned by a closed peer link.
var ErrLinkClosed = errors.New("swarm: peer link closed")

// Signaler sends signaling to a linked peer (the TrackerClient).
type Signaler interface {
	Signal(ctx context.Context, to protocol.PeerID, sdp *protocol.SDP, cand *protocol.Candidate) error
}

// LinkerParams configures a Linker.
type LinkerParams struct {
	API        *webrtc.API // its SettingEngine decides the networks ICE uses
	Signaler   Signaler
	ICEServers []webrtc.ICEServer
}

// Linker makes WebRTC data-channel links to the peers the tracker links this
// node with, signaling through the tracker: the downstream dials (offers),
// the upstream accepts. Offers and answers carry all ICE candidates
// (gathering completes before they are sent).
type Linker struct {
	p        LinkerParams
	mu       sync.Mutex
	pending  map[protocol.PeerID]*Link // dialed, waiting for the answer
	accepted chan *Link
	closed   bool
	links    map[*Link]struct{}
}

// Link is one data-channel connection to a peer. Frames are wire frames.
type Link struct {
	Peer protocol.PeerID
	pc   *webrtc.PeerConnection
	dc   *webrtc.DataChannel
	open chan struct{}
	recv chan []byte
	once sync.Once
	done chan struct{}
}

// NewLinker returns a Linker.
func NewLinker(p LinkerParams) *Linker {
	if p.API == nil {
		p.API = webrtc.NewAPI()
	}
	return &Linker{p: p, pending: map[protocol.PeerID]*Link{}, accepted: make(chan *Link, 16), links: map[*Link]struct{}{}}
}

// Accepted delivers links that peers dialed to this node, once open.
func (l *Linker) Accepted() <-chan *Link { return l.accepted }

func (l *Linker) newLink(peer protocol.PeerID) (*Link, error) {
	pc, err := l.p.API.NewPeerConnection(webrtc.Configuration{ICEServers: l.p.ICEServers})
	if err != nil {
		return nil, err
	}
	lk := &Link{Peer: peer, pc: pc, open: make(chan struct{}), recv: make(chan []byte, MaxQueuedFrames), done: make(chan struct{})}
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
	dc.OnOpen(func() { close(lk.open) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case lk.recv <- m.Data:
		case <-lk.done:
		default:
			lk.Close() // a reader that cannot keep up: the peer is cut off
		}
	})
	dc.OnClose(func() { lk.Close() })
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
		return nil, err
	}
	lk.attach(dc)
	offer, err := lk.pc.CreateOffer(nil)
	if err == nil {
		err = setLocalAndGather(ctx, lk.pc, offer)
	}
	if err != nil {
		lk.Close()
		return nil, err
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

// HandleSignal takes a signal the tracker relayed: the answer to a dial, or
// an offer from a downstream peer (answered, and its link delivered on
// Accepted once open). Bad signals close only the link concerned.
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
			return fmt.Errorf("swarm: answer from %s, which was not dialed", s.From)
		}
		if err := lk.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP.SDP}); err != nil {
			lk.Close()
			return fmt.Errorf("swarm: answer from %s: %w", s.From, err)
		}
		return nil
	case "offer":
		lk, err := l.newLink(s.From)
		if err != nil {
			return err
		}
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
			return fmt.Errorf("swarm: offer from %s: %w", s.From, err)
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
			return fmt.Errorf("swarm: answering %s: %w", s.From, err)
		}
		return nil
	}
	return nil
}

// Close closes every link.
func (l *Linker) Close() {
	l.mu.Lock()
	links := make([]*Link, 0, len(l.links))
	for lk := range l.links {
		links = append(links, lk)
	}
	l.links = map[*Link]struct{}{}
	l.mu.Unlock()
	for _, lk := range links {
		lk.Close()
	}
}

// Send sends one wire message.
func (lk *Link) Send(m wire.Message) error {
	select {
	case <-lk.done:
		return ErrLinkClosed
	default:
	}
	frame, err := wire.AppendFrame(nil, m)
	if err != nil {
		return err
	}
	return lk.dc.Send(frame)
}

// sendFrame sends an encoded wire frame (or several back to back: the
// peer's reader splits them).
func (lk *Link) sendFrame(frame []byte) error {
	select {
	case <-lk.done:
		return ErrLinkClosed
	default:
	}
	if lk.dc == nil { // an accepted link before its channel arrived
		return ErrLinkClosed
	}
	return lk.dc.Send(frame)
}

// buffered is the data channel's send backlog in bytes.
func (lk *Link) buffered() uint64 {
	if lk.dc == nil {
		return 0
	}
	return lk.dc.BufferedAmount()
}

// Recv delivers the frames the peer sends (wire.Decode them). It is never
// closed: select on Done too.
func (lk *Link) Recv() <-chan []byte { return lk.recv }

// Done is closed when the link closes.
func (lk *Link) Done() <-chan struct{} { return lk.done }

// Close ends the link.
func (lk *Link) Close() {
	lk.once.Do(func() {
		close(lk.done)
		_ = lk.pc.Close()
	})
}
