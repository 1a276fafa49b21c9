// Package client is a Go participant of Seedcast calls: it speaks the
// signalling protocol (docs/protocol.md §6) over a WebSocket, publishes
// synthetic audio and video (H.264 and Opus payloads that carry a sequence
// and a send time, not pictures or sound) and receives what it subscribes
// to. Tests and `seedcast bench call` drive it where a browser cannot be
// steered, or would not scale.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/sfu/call"
)

// ErrClosed is returned once the client is closed or the server closed it.
var ErrClosed = errors.New("client: closed")

// Params configures Dial.
type Params struct {
	URL    string // ws://host/call/{room}/ws or ws://host/voice/{channel}/ws
	Name   string
	Invite string
	// API makes the peer connections; default NewAPI(SettingEngine{}).
	API *webrtc.API
	// Header is sent with the WebSocket handshake (Origin, say).
	Header http.Header
	// AutoSubscribe subscribes to every track others publish.
	AutoSubscribe bool
	// Quality, when AutoSubscribe, is the tile height asked for each video
	// (0: 720, the full layer).
	TileHeight int
	// OnRTP, if set, sees every RTP packet received, with its track id and
	// codec (a tap for tests: what does the server forward?). It runs on
	// the track's reader; the packet is not reused after it returns.
	OnRTP func(track, mime string, pkt *rtp.Packet)
}

// Client is a call participant.
type Client struct {
	p      Params
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	welcome  call.Out
	members  map[string]call.Member
	closed   *call.Out // the server's closed message, or the connection's end
	gone     error     // the connection's end
	events   []call.Out
	notify   chan struct{} // closed and replaced on every event
	pub, sub *webrtc.PeerConnection
	rx       map[string]*RxStats // by track id
	answers  map[string]chan call.Out
	refs     atomic.Uint64
	sender   *sender
}

// RxStats counts what arrived on one subscribed track.
type RxStats struct {
	Packets, Bytes, Lost atomic.Int64
	// Layer is the simulcast layer of the last video packet ('q', 'h', 'f').
	Layer atomic.Int32
	// Delay is the last packet's one-way delay (sender clock = ours).
	Delay atomic.Int64
}

// Dial connects, sends join and returns once the server welcomed the
// client or put it in the waiting room (see Waiting).
func Dial(ctx context.Context, p Params) (*Client, error) {
	return dial(ctx, p, call.Msg{Type: call.TypeJoin, Name: p.Name, Invite: p.Invite})
}

func dial(ctx context.Context, p Params, first call.Msg) (*Client, error) {
	if p.API == nil {
		p.API = NewAPI(webrtc.SettingEngine{})
	}
	ws, _, err := websocket.Dial(ctx, p.URL, &websocket.DialOptions{HTTPHeader: p.Header})
	if err != nil {
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		p: p, ws: ws, ctx: cctx, cancel: cancel, members: map[string]call.Member{},
		notify: make(chan struct{}), rx: map[string]*RxStats{}, answers: map[string]chan call.Out{},
	}
	c.wg.Add(1)
	go c.readLoop()
	if err := c.Send(first); err != nil {
		c.Close()
		return nil, err
	}
	o, err := c.WaitFor(ctx, func(o call.Out) bool {
		return o.Type == call.TypeWelcome || o.Type == call.TypeWaiting || o.Type == call.TypeClosed
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	if o.Type == call.TypeClosed {
		c.Close()
		return nil, fmt.Errorf("%w: %s: %s", ErrClosed, o.Code, o.Message)
	}
	return c, nil
}

// NewAPI returns a pion API for clients: H.264, VP8 and Opus with the audio
// level extension, and pion's default interceptors (NACK, reports, TWCC).
func NewAPI(se webrtc.SettingEngine) *webrtc.API {
	me := &webrtc.MediaEngine{}
	_ = me.RegisterDefaultCodecs()
	_ = me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: "urn:ietf:params:rtp-hdrext:ssrc-audio-level"}, webrtc.RTPCodecTypeAudio)
	ir := &interceptor.Registry{}
	_ = webrtc.RegisterDefaultInterceptors(me, ir)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// Send sends a message.
func (c *Client) Send(m call.Msg) error {
	m.V = call.Version
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return nil
}

// SendRaw sends bytes as they are (tests of bad input).
func (c *Client) SendRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	for {
		_, b, err := c.ws.Read(c.ctx)
		if err != nil {
			c.mu.Lock()
			if c.closed == nil {
				c.closed = &call.Out{Type: call.TypeClosed, Code: "connection", Message: err.Error()}
			}
			c.gone = err
			c.bump()
			c.mu.Unlock()
			return
		}
		var o call.Out
		if json.Unmarshal(b, &o) != nil {
			continue
		}
		c.handle(o)
	}
}

// bump wakes the waiters. Called with c.mu held.
func (c *Client) bump() {
	close(c.notify)
	c.notify = make(chan struct{})
}

func (c *Client) handle(o call.Out) {
	c.mu.Lock()
	c.events = append(c.events, o)
	if len(c.events) > 4096 {
		c.events = c.events[len(c.events)-2048:]
	}
	var subscribe []string
	switch o.Type {
	case call.TypeWelcome:
		c.welcome = o
		c.members = map[string]call.Member{}
		for _, m := range o.Members {
			c.members[m.ID] = m
			if m.ID != o.Participant {
				subscribe = append(subscribe, trackIDs(m.Tracks)...)
			}
		}
	case call.TypeJoined:
		c.members[o.Member.ID] = *o.Member
	case call.TypeLeft:
		delete(c.members, o.Participant)
	case call.TypeTracks:
		old := c.members[o.Participant]
		known := map[string]bool{}
		for _, t := range old.Tracks {
			known[t.ID] = true
		}
		if o.Member != nil {
			c.members[o.Participant] = *o.Member
		}
		for _, t := range o.Tracks {
			if !known[t.ID] {
				subscribe = append(subscribe, t.ID)
			}
		}
	case call.TypeHostChanged:
		if o.Member != nil {
			m := c.members[o.Member.ID]
			m.Host = true
			c.members[o.Member.ID] = m
			if o.Member.ID == c.welcome.Participant {
				c.welcome.Host = true
			}
		}
	case call.TypeMute:
		if m, ok := c.members[o.Participant]; ok {
			if o.Source == call.SourceMicrophone {
				m.MicMuted = o.Muted
			} else if o.Source == call.SourceCamera {
				m.CameraMuted = o.Muted
			}
			c.members[o.Participant] = m
		}
	case call.TypeClosed:
		cp := o
		c.closed = &cp
	case call.TypeLayers:
		if c.sender != nil {
			c.sender.setActive(o.Active)
		}
	}
	if ch, ok := c.answers[o.Ref]; ok && o.Ref != "" && (o.Type == call.TypeAnswer || o.Type == call.TypeError) {
		delete(c.answers, o.Ref)
		ch <- o
	}
	c.bump()
	auto := c.p.AutoSubscribe
	c.mu.Unlock()
	if o.Type == call.TypeOffer {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := c.answerOffer(o.SDP); err != nil && c.ctx.Err() == nil {
				c.mu.Lock()
				c.events = append(c.events, call.Out{Type: call.TypeError, Code: "client", Message: err.Error()})
				c.mu.Unlock()
			}
		}()
	}
	if auto && len(subscribe) > 0 {
		_ = c.Subscribe(subscribe...)
	}
}

func trackIDs(ts []call.TrackInfo) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

// WaitFor returns the first message, received since the client started,
// for which match is true, waiting for it if needed. It fails when ctx
// ends or the connection closes before.
func (c *Client) WaitFor(ctx context.Context, match func(call.Out) bool) (call.Out, error) {
	seen := 0
	for {
		c.mu.Lock()
		evs := c.events[min(seen, len(c.events)):]
		ch, gone := c.notify, c.gone
		c.mu.Unlock()
		for _, o := range evs { // match may call the client's methods
			seen++
			if match(o) {
				return o, nil
			}
		}
		if gone != nil {
			return call.Out{}, fmt.Errorf("%w: %v", ErrClosed, gone)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return call.Out{}, ctx.Err()
		}
	}
}

// Until waits until cond, checked after every message, holds.
func (c *Client) Until(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ch := c.notify
		c.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // media counters move between messages
		}
	}
}

// Welcome returns the last welcome (zero while waiting).
func (c *Client) Welcome() call.Out {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

// ID returns the participant id given by the server.
func (c *Client) ID() string { return c.Welcome().Participant }

// Members returns the room's members as last heard.
func (c *Client) Members() map[string]call.Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]call.Member, len(c.members))
	for k, v := range c.members {
		out[k] = v
	}
	return out
}

// Events returns every message received so far.
func (c *Client) Events() []call.Out {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call.Out(nil), c.events...)
}

// ClosedBy returns the server's closing message, if it sent one.
func (c *Client) ClosedBy() *call.Out {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Subscribe asks for tracks; their media arrives on the subscribe
// connection once the server's offer is answered (automatically).
func (c *Client) Subscribe(ids ...string) error {
	if err := c.Send(call.Msg{Type: call.TypeSubscribe, IDs: ids}); err != nil {
		return err
	}
	h := c.p.TileHeight
	if h == 0 {
		h = 720
	}
	for _, id := range ids {
		if err := c.Send(call.Msg{Type: call.TypeSize, Track: id, Width: h * 16 / 9, Height: h}); err != nil {
			return err
		}
	}
	return nil
}

// Rx returns the receive counters of a track (nil before its first
// packet).
func (c *Client) Rx(id string) *RxStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rx[id]
}

// RxAll returns the counters of every track received.
func (c *Client) RxAll() map[string]*RxStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]*RxStats, len(c.rx))
	for k, v := range c.rx {
		out[k] = v
	}
	return out
}

// trickle returns an OnICECandidate handler that sends the candidates of
// one connection (target "publish" or "subscribe").
func (c *Client) trickle(target string) func(*webrtc.ICECandidate) {
	return func(ci *webrtc.ICECandidate) {
		if ci == nil {
			return
		}
		init := ci.ToJSON()
		_ = c.Send(call.Msg{Type: call.TypeTrickle, Target: target, Candidate: &call.Candidate{
			Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}})
	}
}

// answerOffer answers a server offer on the subscribe connection.
func (c *Client) answerOffer(sdp string) error {
	c.mu.Lock()
	if c.sub == nil {
		pc, err := c.p.API.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			c.mu.Unlock()
			return err
		}
		c.sub = pc
		pc.OnTrack(c.onTrack)
		pc.OnICECandidate(c.trickle("subscribe"))
	}
	pc := c.sub
	c.mu.Unlock()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(ans); err != nil {
		return err
	}
	return c.Send(call.Msg{Type: call.TypeAnswer, SDP: pc.LocalDescription().SDP})
}

func (c *Client) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	id := tr.StreamID()
	st := &RxStats{}
	c.mu.Lock()
	if old := c.rx[id]; old != nil {
		st = old
	} else {
		c.rx[id] = st
	}
	c.mu.Unlock()
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	var last uint16
	have := false
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		st.Packets.Add(1)
		st.Bytes.Add(int64(len(pkt.Payload)))
		if c.p.OnRTP != nil {
			c.p.OnRTP(id, tr.Codec().MimeType, pkt)
		}
		if have {
			if gap := pkt.SequenceNumber - last - 1; gap > 0 && gap < 1000 {
				st.Lost.Add(int64(gap))
			}
		}
		last, have = pkt.SequenceNumber, true
		if layer, sent, ok := parsePayload(pkt.Payload, video); ok {
			if video {
				st.Layer.Store(int32(layer))
			}
			st.Delay.Store(int64(time.Since(sent)))
		}
	}
}

// Close leaves the call (a leave message, then the WebSocket and peer
// connections close).
func (c *Client) Close() {
	_ = c.Send(call.Msg{Type: call.TypeLeave})
	c.Drop()
}

// Drop closes the WebSocket and the peer connections without a leave, as
// a vanished client would.
func (c *Client) Drop() {
	c.cancel()
	_ = c.ws.CloseNow()
	c.mu.Lock()
	pub, sub, snd := c.pub, c.sub, c.sender
	c.mu.Unlock()
	if snd != nil {
		snd.stop()
	}
	if pub != nil {
		_ = pub.Close()
	}
	if sub != nil {
		_ = sub.Close()
	}
	c.wg.Wait()
}

// DropSignalling closes the WebSocket only: the peer connections stay, as
// after a network blip that killed the TCP connection.
func (c *Client) DropSignalling() {
	_ = c.ws.CloseNow()
}

// Resume opens a new WebSocket for the same participant (after
// DropSignalling), restarts ICE on the publish connection, and returns
// once welcomed again.
func (c *Client) Resume(ctx context.Context) error {
	c.wg.Wait() // the old read loop has ended
	ws, _, err := websocket.Dial(ctx, c.p.URL, &websocket.DialOptions{HTTPHeader: c.p.Header})
	if err != nil {
		return fmt.Errorf("client: resume: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	w := c.Welcome()
	c.mu.Lock()
	c.ws = ws
	c.closed, c.gone = nil, nil
	start := len(c.events)
	c.mu.Unlock()
	c.wg.Add(1)
	go c.readLoop()
	if err := c.Send(call.Msg{Type: call.TypeResume, Participant: w.Participant, Token: w.Token}); err != nil {
		return err
	}
	n := 0
	o, err := c.WaitFor(ctx, func(o call.Out) bool {
		n++
		return n > start && (o.Type == call.TypeWelcome || o.Type == call.TypeClosed)
	})
	if err != nil {
		return err
	}
	if o.Type == call.TypeClosed {
		return fmt.Errorf("%w: %s: %s", ErrClosed, o.Code, o.Message)
	}
	c.mu.Lock()
	pub := c.pub
	c.mu.Unlock()
	if pub != nil {
		return c.renegotiate(ctx, true)
	}
	return nil
}
