package sfu

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/internal/connlimit"
)

type role int

const (
	rolePublisher role = iota
	roleSubscriber
)

func (r role) String() string {
	if r == rolePublisher {
		return "publisher"
	}
	return "subscriber"
}

// session is one WHIP or WHEP session: a peer connection of a participant.
type session struct {
	s     *Server
	id    string
	role  role
	room  *Room
	pc    *webrtc.PeerConnection
	log   *slog.Logger
	etag  string
	ufrag string // the peer's ICE ufrag, from its offer
	lease *connlimit.Lease

	downs []*downTrack // WHEP subscribers: one per forwarded track

	// Call participants' sessions (nil for WHIP and WHEP): the
	// participant, hooks it sets before start, and the bandwidth estimate
	// of a subscribe connection.
	part        *Participant
	onClose     func(reason string)
	onConnected func(now time.Time)
	bwe         cc.BandwidthEstimator

	mu           sync.Mutex
	registered   bool
	connectTimer *time.Timer
	once         sync.Once
	done         chan struct{}
}

func (s *Server) newSession(r role, room *Room) *session {
	id := rand.Text()
	return &session{
		s:    s,
		id:   id,
		role: r,
		room: room,
		log:  s.log.With("room", room.name, "session", id, "role", r.String()),
		etag: rand.Text()[:16],
		done: make(chan struct{}),
	}
}

// close ends the session: it leaves its room and its peer connection is
// closed. Safe to call more than once and from pion callbacks.
func (ss *session) close(reason string) {
	first := false
	ss.once.Do(func() {
		first = true
		ss.mu.Lock()
		if ss.connectTimer != nil {
			ss.connectTimer.Stop()
		}
		registered := ss.registered
		ss.mu.Unlock()
		ss.s.removeSession(ss)
		if ss.role == rolePublisher {
			ss.room.removePublisher(ss)
		} else {
			ss.room.removeSubscriber(ss)
		}
		if registered {
			if ss.role == rolePublisher {
				ss.s.m.publishers.Dec()
			} else {
				ss.s.m.subscribers.Dec()
			}
		}
		if ss.pc != nil {
			if err := ss.pc.Close(); err != nil {
				ss.log.Debug("close peer connection", "err", err)
			}
		}
		ss.lease.Release()
		ss.log.Info("session closed", "reason", reason)
		close(ss.done)
	})
	if first && ss.onClose != nil {
		ss.onClose(reason) // outside once: it may close this session again
	}
}

// watch closes the session when its peer fails or does not connect within
// the server's ConnectTimeout.
func (ss *session) watch() {
	ss.mu.Lock()
	ss.connectTimer = time.AfterFunc(ss.s.p.ConnectTimeout, func() {
		if ss.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
			ss.close("connect timeout")
		}
	})
	ss.mu.Unlock()
	ss.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		ss.log.Debug("peer connection state", "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateConnected:
			ss.mu.Lock()
			if ss.connectTimer != nil {
				ss.connectTimer.Stop()
			}
			ss.mu.Unlock()
			ss.lease.Connected()
			now := ss.s.now()
			for _, d := range ss.downs {
				d.setReady(now)
			}
			if ss.onConnected != nil {
				ss.onConnected(now)
			}
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			ss.close("peer " + st.String())
		}
	})
}

// register makes the session known to the server (for DELETE/PATCH).
func (ss *session) register() bool {
	if !ss.s.addSession(ss) {
		return false
	}
	ss.mu.Lock()
	ss.registered = true
	ss.mu.Unlock()
	if ss.role == rolePublisher {
		ss.s.m.publishers.Inc()
	} else {
		ss.s.m.subscribers.Inc()
	}
	return true
}

// answer sets the offer, runs prepare (which adds tracks or sets codec
// preferences), and returns the answer once ICE gathering completed or
// GatherTimeout passed.
func (ss *session) answer(ctx context.Context, offer string, prepare func() error) (string, error) {
	if err := ss.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", resourceErr(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	if prepare != nil {
		if err := prepare(); err != nil {
			return "", err
		}
	}
	ans, err := ss.pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	gathered := webrtc.GatheringCompletePromise(ss.pc)
	if err := ss.pc.SetLocalDescription(ans); err != nil {
		if errors.Is(err, ErrUnsupportedCodec) || strings.Contains(err.Error(), "codec") {
			return "", fmt.Errorf("%w: %v", ErrUnsupportedCodec, err)
		}
		return "", resourceErr(fmt.Errorf("%w: %v", ErrBadOffer, err))
	}
	t := time.NewTimer(ss.s.p.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		ss.log.Warn("ICE gathering timed out; answering with the candidates so far")
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return ss.pc.LocalDescription().SDP, nil
}

// PublishOptions are a publisher's particulars.
type PublishOptions struct {
	// Addr is the client's address, for the per-address caps (the zero
	// Addr: unknown, only the other caps apply).
	Addr netip.Addr
}

// Publish starts a publisher session in room stream (a broadcast room is
// created if needed) from an SDP offer, and returns the session id and the
// SDP answer with all ICE candidates. It is what a WHIP POST does, without
// HTTP or authorization.
//
// A broadcast room takes one publisher. A new one replaces a publisher
// whose peer connection is not connected (it never connected, or its ICE
// is disconnected or failed): the real publisher reconnecting after a blip
// gets in at once instead of waiting out the old session's timeout. A
// connected publisher makes Publish fail with ErrStreamBusy.
func (s *Server) Publish(ctx context.Context, stream, offer string, opts PublishOptions) (sessionID, answer string, err error) {
	if err := checkStreamName(stream); err != nil {
		return "", "", err
	}
	kind := RoomKindBroadcast
	if r, ok := s.Room(stream); ok {
		if r.kind != RoomKindBroadcast {
			// A call's members join through its signalling (Join).
			return "", "", fmt.Errorf("%w: %q is a %v room", ErrRoomKind, stream, r.kind)
		}
		if err := r.replaceStalePublishers(); err != nil {
			return "", "", err
		}
	}
	sd, err := checkOffer(offer, kind)
	if err != nil {
		return "", "", err
	}
	var room *Room
	for {
		if room, err = s.OpenRoom(stream, kind); err != nil {
			return "", "", err
		}
		release, ok := room.hold()
		if ok {
			defer release()
			break
		}
		s.removeRoom(room) // closing: make OpenRoom create a new one
	}
	ss := s.newSession(rolePublisher, room)
	fail, err := ss.start(sd, opts.Addr)
	if err != nil {
		return "", "", err
	}
	ss.pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		ss.onTrack(remote, recv)
	})
	ans, err := ss.answer(ctx, offer, func() error {
		if kind != RoomKindBroadcast {
			return nil
		}
		for _, tr := range ss.pc.GetTransceivers() {
			if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.Receiver() == nil {
				continue
			}
			prefs := h264Only(tr.Receiver().GetParameters().Codecs)
			if len(prefs) == 0 {
				return fmt.Errorf("%w: no H.264 with packetization-mode=1 in the video section", ErrUnsupportedCodec)
			}
			if err := tr.SetCodecPreferences(prefs); err != nil {
				return fmt.Errorf("%w: %v", ErrUnsupportedCodec, err)
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	// Create the room's tracks now, so subscribers can join before media
	// flows.
	for _, tr := range ss.pc.GetTransceivers() {
		if tr.Receiver() == nil {
			continue
		}
		codec, ok := firstMediaCodec(tr.Receiver().GetParameters().Codecs)
		if !ok {
			continue
		}
		room.track(ss.trackID(tr.Kind(), tr.Mid()), tr.Kind(), codec)
	}
	if err := room.addPublisher(ss); err != nil {
		return fail(err)
	}
	if !ss.register() {
		return fail(ErrClosed)
	}
	ss.watch()
	ss.log.Info("publisher joined")
	return ss.id, ans, nil
}

// trackID names a publisher's track in its room: by kind in broadcasts (so
// a reconnecting publisher feeds the same tracks), by session and mid in
// calls.
func (ss *session) trackID(kind webrtc.RTPCodecType, mid string) string {
	if ss.room.kind == RoomKindBroadcast {
		return kind.String()
	}
	if ss.part != nil {
		return ss.part.trackID(mid)
	}
	return ss.id + "-" + mid
}

func (ss *session) onTrack(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	s := ss.s
	if !s.goTrack() {
		return
	}
	defer s.wg.Done()
	mid := ""
	if tr := recv.RTPTransceiver(); tr != nil {
		mid = tr.Mid()
	}
	t := ss.room.track(ss.trackID(remote.Kind(), mid), remote.Kind(), remote.Codec())
	l := newLayer(t, ss, remote, recv)
	ss.log.Info("receiving", "track", t.id, "rid", l.rid, "ssrc", l.ssrc, "codec", l.info.MimeType)
	ss.room.addLayer(l)
	s.goFunc(func() { l.rtcpLoop(recv) })
	l.readLoop(remote)
	ss.room.removeLayer(l)
}

// SubscribeOptions are a subscriber's choices.
type SubscribeOptions struct {
	// Layer pins a simulcast layer (rid); "" selects automatically.
	Layer string
	// Addr is the client's address, for the per-address caps (the zero
	// Addr: unknown, only the other caps apply).
	Addr netip.Addr
}

// Subscribe starts a subscriber session of room stream from an SDP offer
// (with receive-capable media sections) and returns the session id and the
// SDP answer. It fails with ErrNotLive when the room has no publisher. It is
// what a WHEP POST does, without HTTP or authorization.
func (s *Server) Subscribe(ctx context.Context, stream, offer string, opts SubscribeOptions) (sessionID, answer string, err error) {
	room, ok := s.Room(stream)
	if !ok || room.kind != RoomKindBroadcast { // calls are not for WHEP
		return "", "", ErrNotLive
	}
	tracks, err := room.liveTracks()
	if err != nil {
		return "", "", err
	}
	sd := &sdp.SessionDescription{}
	if err := sd.UnmarshalString(offer); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	ss := s.newSession(roleSubscriber, room)
	fail, err := ss.start(sd, opts.Addr)
	if err != nil {
		return "", "", err
	}
	var senders []*webrtc.RTPSender
	ans, err := ss.answer(ctx, offer, func() error {
		avail := map[webrtc.RTPCodecType]int{}
		for _, md := range sd.MediaDescriptions {
			if canReceive(md) {
				avail[webrtc.NewRTPCodecType(md.MediaName.Media)]++
			}
		}
		for _, t := range tracks {
			if avail[t.kind] == 0 {
				continue
			}
			avail[t.kind]--
			d := newDownTrack(ss, t, stream)
			if t.kind == webrtc.RTPCodecTypeVideo {
				d.pinned = opts.Layer
			}
			sender, err := ss.pc.AddTrack(d)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrUnsupportedCodec, err)
			}
			ss.downs = append(ss.downs, d)
			senders = append(senders, sender)
		}
		if len(ss.downs) == 0 {
			return fmt.Errorf("%w: the offer has no media section to receive the stream's tracks", ErrUnsupportedCodec)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	bound := false
	for _, d := range ss.downs {
		d.mu.Lock()
		bound = bound || d.ws != nil
		d.mu.Unlock()
	}
	if !bound {
		return fail(fmt.Errorf("%w: the offer accepts none of the stream's codecs", ErrUnsupportedCodec))
	}
	if err := room.addSubscriber(ss); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrNotLive, err))
	}
	if !ss.register() {
		return fail(ErrClosed)
	}
	for i, d := range ss.downs {
		d, sender := d, senders[i]
		s.goFunc(func() { d.rtcpLoop(sender) })
	}
	ss.watch()
	ss.log.Info("subscriber joined", "tracks", len(ss.downs), "layer", opts.Layer)
	return ss.id, ans, nil
}

// EndSession ends a WHIP or WHEP session by id, as a DELETE does.
func (s *Server) EndSession(id string) error {
	ss, ok := s.session(id)
	if !ok {
		return ErrNotLive
	}
	ss.close("ended")
	return nil
}

// firstMediaCodec returns the first codec that is not a repair codec.
func firstMediaCodec(cs []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	for _, c := range cs {
		if !strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && !strings.Contains(strings.ToLower(c.MimeType), "fec") {
			return c, true
		}
	}
	return webrtc.RTPCodecParameters{}, false
}

// h264Only keeps the H.264 (packetization-mode=1) codecs of a negotiated
// list and the RTX codecs repairing them.
func h264Only(cs []webrtc.RTPCodecParameters) []webrtc.RTPCodecParameters {
	var out []webrtc.RTPCodecParameters
	pts := map[string]bool{}
	for _, c := range cs {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeH264) && fmtpParam(c.SDPFmtpLine, "packetization-mode") == "1" {
			out = append(out, c)
			pts[fmt.Sprint(c.PayloadType)] = true
		}
	}
	for _, c := range cs {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && pts[fmtpParam(c.SDPFmtpLine, "apt")] {
			out = append(out, c)
		}
	}
	return out
}

// start takes a lease from the server's Limits for a client at addr, gives
// the new session its peer connection, and returns the function that tears
// the session down when its set-up fails.
func (ss *session) start(offer *sdp.SessionDescription, addr netip.Addr) (fail func(error) (string, string, error), err error) {
	if offer != nil {
		ss.ufrag = offerUfrag(offer)
	}
	kind := connlimit.KindWHEP
	switch {
	case ss.room.kind == RoomKindCall:
		kind = connlimit.KindCall
	case ss.role == rolePublisher:
		kind = connlimit.KindWHIP
	}
	if ss.lease, err = ss.s.p.Limits.Acquire(kind, addr, ss.room.name); err != nil {
		if errors.Is(err, connlimit.ErrTooMany) {
			return nil, fmt.Errorf("%w: %w", ErrTooMany, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	newPC := ss.s.newPeerConnection
	if ss.part != nil && ss.role == roleSubscriber {
		newPC = func() (*webrtc.PeerConnection, error) {
			pc, bwe, err := ss.s.newCallSubscriberPC()
			ss.bwe = bwe
			return pc, err
		}
	}
	if ss.pc, err = newPC(); err != nil {
		ss.lease.Release()
		return nil, resourceErr(fmt.Errorf("sfu: new peer connection: %w", err))
	}
	return func(err error) (string, string, error) {
		ss.close("setup failed: " + err.Error())
		return "", "", err
	}, nil
}

// resourceErr turns an error that came from running out of file
// descriptors (pion opening ICE sockets) into ErrBusy: the offer was not
// at fault. Others are returned as they are.
func resourceErr(err error) error {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		strings.Contains(err.Error(), "too many open files") {
		return fmt.Errorf("%w: %v", ErrBusy, err)
	}
	return err
}
