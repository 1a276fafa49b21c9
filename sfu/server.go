package sfu

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/transport/v5/udp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/internal/connlimit"
	"github.com/seedcast/seedcast/media"
)

// AudioLevelURI is the RFC 6464 client-to-mixer audio level header extension.
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// ICEConfig chooses the networks and timeouts of the server's ICE agents.
type ICEConfig struct {
	// NetworkTypes to gather candidates on; default udp4 and udp6.
	NetworkTypes []webrtc.NetworkType
	// IncludeLoopback adds loopback candidates (tests, same-host clients).
	IncludeLoopback bool
	// InterfaceFilter, when set, keeps only the interfaces it accepts.
	InterfaceFilter func(name string) bool
	// NAT1To1IPs are public IPs announced as host candidates (server behind
	// a 1:1 NAT).
	NAT1To1IPs []string
	// UDPPortMin and UDPPortMax restrict the ephemeral UDP port range when
	// both are set.
	UDPPortMin, UDPPortMax uint16
	// DisconnectedTimeout, FailedTimeout and KeepaliveInterval are the ICE
	// agent timeouts: a peer silent for DisconnectedTimeout+FailedTimeout is
	// failed and its session is closed. Defaults 5 s, 10 s and 2 s.
	DisconnectedTimeout, FailedTimeout, KeepaliveInterval time.Duration
	// DisableMDNS turns mDNS candidate resolution off.
	DisableMDNS bool
	// UDPMux, when set, carries every peer connection's ICE on one socket
	// (one port to open in a firewall; with NewBatchUDPMux, writes in
	// batches). The caller closes it after the server.
	UDPMux ice.UDPMux
}

// NewBatchUDPMux returns a UDP mux on conn whose writes go out in batches
// (sendmmsg on Linux) of up to size packets, or every interval: far fewer
// system calls when one packet goes to many subscribers.
func NewBatchUDPMux(conn net.PacketConn, size int, interval time.Duration) ice.UDPMux {
	return webrtc.NewICEUDPMux(nil, udp.NewBatchConn(conn, size, interval))
}

// LoopbackICE returns an ICEConfig for tests and same-host use: udp4 on the
// loopback interface only, no mDNS, and the given failure timeout (split
// into disconnected and failed halves).
func LoopbackICE(failAfter time.Duration) ICEConfig {
	if failAfter <= 0 {
		failAfter = 2 * time.Second
	}
	return ICEConfig{
		NetworkTypes:        []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
		IncludeLoopback:     true,
		InterfaceFilter:     func(name string) bool { return name == "lo" },
		DisconnectedTimeout: failAfter / 2,
		FailedTimeout:       failAfter / 2,
		KeepaliveInterval:   failAfter / 8,
		DisableMDNS:         true,
	}
}

// SettingEngine returns a pion SettingEngine configured from c.
func (c ICEConfig) SettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	if len(c.NetworkTypes) > 0 {
		se.SetNetworkTypes(c.NetworkTypes)
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}
	se.SetIncludeLoopbackCandidate(c.IncludeLoopback)
	if c.InterfaceFilter != nil {
		se.SetInterfaceFilter(c.InterfaceFilter)
	}
	if len(c.NAT1To1IPs) > 0 {
		se.SetNAT1To1IPs(c.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	if c.UDPPortMin != 0 && c.UDPPortMax != 0 {
		_ = se.SetEphemeralUDPPortRange(c.UDPPortMin, c.UDPPortMax)
	}
	disc, failed, keep := c.DisconnectedTimeout, c.FailedTimeout, c.KeepaliveInterval
	if disc <= 0 {
		disc = 5 * time.Second
	}
	if failed <= 0 {
		failed = 10 * time.Second
	}
	if keep <= 0 {
		keep = 2 * time.Second
	}
	se.SetICETimeouts(disc, failed, keep)
	if c.DisableMDNS {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if c.UDPMux != nil {
		se.SetICEUDPMux(c.UDPMux)
	}
	return se
}

// ServerParams configures a Server. The zero value of every field but
// PublishAuth has a usable default.
type ServerParams struct {
	Logger *slog.Logger // default: discard
	// Registerer receives the package's metrics; nil leaves them
	// unregistered. Never the global default registry unless passed in.
	Registerer prometheus.Registerer

	ICE ICEConfig
	// ICEServers are announced to WHIP/WHEP clients in Link headers.
	ICEServers []webrtc.ICEServer
	// GatherWithICEServers makes the server's own peer connections use
	// ICEServers too (server behind NAT without NAT1To1IPs).
	GatherWithICEServers bool

	// PublishAuth checks WHIP stream keys. nil refuses every publisher.
	PublishAuth PublishAuthorizer
	// PlayAuth checks WHEP tokens; nil makes every stream public.
	PlayAuth PlayAuthorizer

	// AllowOrigin is the Access-Control-Allow-Origin of WHIP/WHEP
	// responses; default "*".
	AllowOrigin string
	// MaxBodyBytes limits SDP and trickle bodies; default 64 KiB.
	MaxBodyBytes int64
	// GatherTimeout bounds the wait for ICE gathering before an answer is
	// sent; default 5 s.
	GatherTimeout time.Duration
	// ConnectTimeout closes sessions whose peer has not connected in time,
	// so that pending sessions are reaped well before ICE gives up on its
	// own (DisconnectedTimeout+FailedTimeout); default 10 s.
	ConnectTimeout time.Duration
	// Limits caps the peer connections sessions hold: in total, per client
	// address and per room, and those not connected yet. It may be shared
	// with the process's other peer connections (the origin's seed). nil:
	// a Limiter of its own with connlimit.Sized(1024).
	Limits *connlimit.Limiter
	// ClientIP returns the address a WHIP/WHEP request comes from, for the
	// per-address caps; default: the connection's remote address.
	ClientIP func(*http.Request) netip.Addr
	// RoomIdleTimeout is how long a room without a publisher keeps its
	// subscribers (waiting for the publisher to come back) before it
	// closes; default 30 s.
	RoomIdleTimeout time.Duration
	// KeyframeInterval is the minimum interval between keyframe requests
	// sent to a publisher for one layer; default 500 ms.
	KeyframeInterval time.Duration

	// Layers tunes automatic simulcast layer selection and Estimator the
	// per-subscriber bandwidth estimate it uses.
	Layers    LayerPolicy
	Estimator EstimatorParams
	// Speaker tunes dominant-speaker detection.
	Speaker SpeakerParams

	// OnRoomCreated, if set, is called (in its own goroutine) for every
	// new room, e.g. to add a Tap to broadcast rooms.
	OnRoomCreated func(*Room)

	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server is an SFU: it holds rooms by name and the WHIP/WHEP sessions of
// their participants. Create one with NewServer and Close it when done.
type Server struct {
	p       ServerParams
	log     *slog.Logger
	api     *webrtc.API
	callAPI *webrtc.API // call subscribers: api plus GCC
	m       *metrics
	now     func() time.Time

	ccMu   sync.Mutex
	ccLast cc.BandwidthEstimator // the estimator of the connection being made

	nextSource atomic.Uint64

	mu       sync.Mutex
	closed   bool
	rooms    map[string]*Room
	sessions map[string]*session
	wg       sync.WaitGroup
}

// NewServer returns a Server with its pion API and metrics set up.
func NewServer(p ServerParams) (*Server, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.AllowOrigin == "" {
		p.AllowOrigin = "*"
	}
	if p.MaxBodyBytes <= 0 {
		p.MaxBodyBytes = 64 << 10
	}
	if p.GatherTimeout <= 0 {
		p.GatherTimeout = 5 * time.Second
	}
	if p.ConnectTimeout <= 0 {
		p.ConnectTimeout = 10 * time.Second
	}
	if p.Limits == nil {
		l, err := connlimit.New(connlimit.Sized(1024))
		if err != nil {
			return nil, err
		}
		p.Limits = l
	}
	if p.ClientIP == nil {
		p.ClientIP = remoteAddr
	}
	if p.RoomIdleTimeout <= 0 {
		p.RoomIdleTimeout = 30 * time.Second
	}
	if p.KeyframeInterval <= 0 {
		p.KeyframeInterval = 500 * time.Millisecond
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	m, err := newMetrics(p.Registerer)
	if err != nil {
		return nil, fmt.Errorf("sfu: metrics: %w", err)
	}
	s := &Server{
		p:        p,
		log:      p.Logger,
		m:        m,
		now:      p.Now,
		rooms:    make(map[string]*Room),
		sessions: make(map[string]*session),
	}
	if s.api, err = newAPI(p.ICE, nil); err != nil {
		return nil, err
	}
	// Call subscribers' connections estimate their downlink with GCC over
	// transport-wide feedback. The estimator is made while
	// NewPeerConnection runs; newCallSubscriberPC collects it under ccMu.
	est := p.Estimator.withDefaults()
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(
			gcc.SendSideBWEInitialBitrate(int(est.Initial)),
			gcc.SendSideBWEMinBitrate(int(est.Min)),
			gcc.SendSideBWEMaxBitrate(int(est.Max)),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
		)
	})
	if err != nil {
		return nil, fmt.Errorf("sfu: congestion controller: %w", err)
	}
	ccf.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { s.ccLast = e })
	if s.callAPI, err = newAPI(p.ICE, ccf); err != nil {
		return nil, err
	}
	return s, nil
}

// videoFeedback is the RTCP feedback the server offers for video.
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"},
	{Type: "nack"}, {Type: "nack", Parameter: "pli"},
}

// newAPI builds the pion API shared by every peer connection: codecs,
// header extensions and interceptors (NACK, RTCP reports, TWCC).
func newAPI(iceCfg ICEConfig, ccf *cc.InterceptorFactory) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	opus := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	video := []struct {
		mime, fmtp string
		pt         webrtc.PayloadType
	}{
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 106},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", 102},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f", 127},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f", 112},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f", 114},
		{webrtc.MimeTypeVP8, "", 96},
	}
	rtxPT := map[webrtc.PayloadType]webrtc.PayloadType{106: 107, 102: 103, 127: 125, 112: 113, 114: 115, 96: 97}
	for _, v := range video {
		c := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: v.mime, ClockRate: 90000, SDPFmtpLine: v.fmtp, RTCPFeedback: videoFeedback,
			},
			PayloadType: v.pt,
		}
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		rtx := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", v.pt),
			},
			PayloadType: rtxPT[v.pt],
		}
		if err := me.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, err
	}

	ir := &interceptor.Registry{}
	if ccf != nil {
		ir.Add(ccf) // innermost: it sees every packet with its transport-wide sequence number
		// Transport-wide sequence numbers on what we send, inside the NACK
		// responder, so that a retransmission gets a fresh one (as in
		// pion's bandwidth estimation example). Only where GCC reads the
		// feedback: elsewhere (WHEP) they would cost every packet an
		// extension for nothing, and browsers send REMB instead.
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
			return nil, err
		}
	}
	// NACK: pion's responder answers subscribers; the requests to
	// publishers are the layers' own (see nack.go), not pion's generator.
	responder, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	// The video codecs carry nack in videoFeedback already; these give it to
	// the RTX codecs too, as webrtc.ConfigureNack did.
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	ir.Add(responder)
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(me, ir); err != nil { // feedback for what we receive
		return nil, err
	}
	api := webrtc.NewAPI(
		webrtc.WithMediaEngine(me),
		webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(iceCfg.SettingEngine()),
	)
	return api, nil
}

// Close ends every session and room and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()

	for _, ss := range sessions {
		ss.close("server closed")
	}
	for _, r := range rooms {
		r.close()
	}
	s.wg.Wait()
	return nil
}

// goTrack registers a goroutine with the server; it returns false once the
// server is closed, and the caller must then not start (or must end) it.
// Every true must be matched with s.wg.Done().
func (s *Server) goTrack() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// goFunc runs f in a tracked goroutine unless the server is closed.
func (s *Server) goFunc(f func()) {
	if !s.goTrack() {
		return
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func checkStreamName(name string) error {
	if !media.ValidName(name) {
		return fmt.Errorf("%w: %q", ErrBadStreamName, name)
	}
	return nil
}

// Room returns the open room with this name, if any.
func (s *Server) Room(name string) (*Room, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[name]
	return r, ok
}

// Rooms returns the open rooms.
func (s *Server) Rooms() []*Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rs = append(rs, r)
	}
	return rs
}

// OpenRoom returns the room with this name, creating it with the given kind
// if it does not exist. A room without a publisher closes after the
// RoomIdleTimeout. It fails with ErrRoomKind if the room exists with another
// kind.
func (s *Server) OpenRoom(name string, kind RoomKind) (*Room, error) {
	if err := checkStreamName(name); err != nil {
		return nil, err
	}
	if kind != RoomKindBroadcast && kind != RoomKindCall {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrRoomKind, kind)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if r, ok := s.rooms[name]; ok {
		s.mu.Unlock()
		if r.kind != kind {
			return nil, fmt.Errorf("%w: %q is a %v room", ErrRoomKind, name, r.kind)
		}
		return r, nil
	}
	r := newRoom(s, name, kind)
	s.rooms[name] = r
	s.mu.Unlock()
	s.m.rooms.Inc()
	s.log.Info("room opened", "room", name, "kind", kind)
	if f := s.p.OnRoomCreated; f != nil {
		s.goFunc(func() { f(r) })
	}
	r.touch()
	return r, nil
}

// removeRoom forgets r if it is still the room registered under its name.
func (s *Server) removeRoom(r *Room) {
	s.mu.Lock()
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
		s.mu.Unlock()
		s.m.rooms.Dec()
		s.log.Info("room closed", "room", r.name)
		return
	}
	s.mu.Unlock()
}

func (s *Server) addSession(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.sessions[ss.id] = ss
	return true
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
}

func (s *Server) session(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	return ss, ok
}

// newPeerConnection creates a peer connection with the server's API.
func (s *Server) newPeerConnection() (*webrtc.PeerConnection, error) {
	var cfg webrtc.Configuration
	if s.p.GatherWithICEServers {
		cfg.ICEServers = s.p.ICEServers
	}
	return s.api.NewPeerConnection(cfg)
}

// newCallSubscriberPC creates a peer connection for a call subscriber,
// with its GCC bandwidth estimator.
func (s *Server) newCallSubscriberPC() (*webrtc.PeerConnection, cc.BandwidthEstimator, error) {
	var cfg webrtc.Configuration
	if s.p.GatherWithICEServers {
		cfg.ICEServers = s.p.ICEServers
	}
	s.ccMu.Lock()
	defer s.ccMu.Unlock()
	s.ccLast = nil
	pc, err := s.callAPI.NewPeerConnection(cfg)
	bwe := s.ccLast
	s.ccLast = nil
	if err != nil {
		return nil, nil, err
	}
	if bwe == nil {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("sfu: no bandwidth estimator for a call subscriber")
	}
	return pc, bwe, nil
}

// remoteAddr is the default ClientIP: the connection's remote address.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
