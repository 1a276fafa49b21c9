//go:build js && wasm

package browser

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// maxQueuedFrames bounds the data-channel messages a link buffers for its
// reader; a peer that sends faster than the node reads is cut off.
const maxQueuedFrames = 256

// ErrLinkClosed is returned by a closed peer link.
var ErrLinkClosed = errors.New("swarm/browser: peer link closed")

// signaler sends signaling to a linked peer (the tracker connection).
type signaler interface {
	Signal(ctx context.Context, to protocol.PeerID, sdp *protocol.SDP, cand *protocol.Candidate) error
}

// linkerParams configures a linker.
type linkerParams struct {
	Signaler   signaler
	ICEServers []webrtc.ICEServer
}

// linker makes WebRTC data-channel links to the peers the tracker links
// this node with, as swarm.Linker does natively (docs/protocol.md §4): the
// downstream dials with an offer, the upstream answers, and both carry all
// their ICE candidates (gathering completes before they are sent). Under
// GOOS=js pion's PeerConnection is the browser's RTCPeerConnection.
type linker struct {
	p        linkerParams
	accepted chan *link

	mu      sync.Mutex
	pending map[protocol.PeerID]*link // dialed, waiting for the answer
	links   map[*link]struct{}        // not closed yet
}

// link is one data-channel connection to a peer. Messages are pieces of a
// byte stream of wire frames.
type link struct {
	Peer protocol.PeerID
	pc   *webrtc.PeerConnection
	dc   *webrtc.DataChannel
	open chan struct{}
	recv chan []byte
	once sync.Once
	done chan struct{}
	l    *linker
}

func newLinker(p linkerParams) *linker {
	return &linker{p: p, pending: map[protocol.PeerID]*link{}, accepted: make(chan *link, 16), links: map[*link]struct{}{}}
}

// Accepted delivers links that peers dialed to this node, once open.
func (l *linker) Accepted() <-chan *link { return l.accepted }

func (l *linker) newLink(peer protocol.PeerID) (*link, error) {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{ICEServers: l.p.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("swarm/browser: peer connection: %w", err)
	}
	lk := &link{Peer: peer, pc: pc, open: make(chan struct{}), recv: make(chan []byte, maxQueuedFrames), done: make(chan struct{}), l: l}
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

// attach wires a data channel to a link. Binary messages arrive as
// ArrayBuffers (not Blobs, which pion would read asynchronously and so
// possibly out of order).
func (lk *link) attach(dc *webrtc.DataChannel) {
	lk.dc = dc
	_ = try(func() { dc.JSValue().Set("binaryType", "arraybuffer") })
	var opened sync.Once
	markOpen := func() { opened.Do(func() { close(lk.open) }) }
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
	// A channel the peer created may be open already when it is announced.
	if dc.ReadyState() == webrtc.DataChannelStateOpen {
		markOpen()
	}
}

// Dial links to an upstream peer: it offers a data channel and waits until
// it is open.
func (l *linker) Dial(ctx context.Context, peer protocol.PeerID) (*link, error) {
	lk, err := l.newLink(peer)
	if err != nil {
		return nil, err
	}
	dc, err := lk.pc.CreateDataChannel("seedcast", nil)
	if err != nil {
		lk.Close()
		return nil, fmt.Errorf("swarm/browser: data channel: %w", err)
	}
	lk.attach(dc)
	offer, err := lk.pc.CreateOffer(nil)
	if err == nil {
		err = setLocalAndGather(ctx, lk.pc, offer)
	}
	if err != nil {
		lk.Close()
		return nil, fmt.Errorf("swarm/browser: offering to %s: %w", peer, err)
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
func (l *linker) HandleSignal(ctx context.Context, s *protocol.Signal) error {
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
			return fmt.Errorf("swarm/browser: answer from %s, which was not dialed", s.From)
		}
		if err := lk.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: s.SDP.SDP}); err != nil {
			lk.Close()
			return fmt.Errorf("swarm/browser: answer from %s: %w", s.From, err)
		}
		return nil
	case "offer":
		lk, err := l.newLink(s.From)
		if err != nil {
			return err
		}
		lk.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
			lk.attach(dc)
			select {
			case <-lk.open:
				select {
				case l.accepted <- lk:
				case <-lk.done:
				}
			case <-lk.done:
			}
		})
		if err := lk.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: s.SDP.SDP}); err != nil {
			lk.Close()
			return fmt.Errorf("swarm/browser: offer from %s: %w", s.From, err)
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
			return fmt.Errorf("swarm/browser: answering %s: %w", s.From, err)
		}
		return nil
	}
	return fmt.Errorf("%w: sdp type %q from %s", protocol.ErrBadMessage, s.SDP.Type, s.From)
}

// Close closes every link.
func (l *linker) Close() {
	l.mu.Lock()
	links := make([]*link, 0, len(l.links))
	for lk := range l.links {
		links = append(links, lk)
	}
	l.mu.Unlock()
	for _, lk := range links {
		lk.Close()
	}
}

// send sends encoded wire frames (the peer's reader splits them).
func (lk *link) send(frame []byte) error {
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
func (lk *link) buffered() uint64 {
	if lk.dc == nil {
		return 0
	}
	return lk.dc.BufferedAmount()
}

// Close ends the link.
func (lk *link) Close() {
	lk.once.Do(func() {
		close(lk.done)
		lk.l.mu.Lock()
		delete(lk.l.links, lk)
		if lk.l.pending[lk.Peer] == lk {
			delete(lk.l.pending, lk.Peer)
		}
		lk.l.mu.Unlock()
		_ = lk.pc.Close()
	})
}
