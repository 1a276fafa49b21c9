package server

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"golang.org/x/time/rate"

	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// StreamInfo is what the tracker needs to know of a stream.
type StreamInfo struct {
	PublicKey   string // Ed25519, hex: the key viewers verify manifests with
	Manifest    string // manifest URL path
	BitrateKbps int    // mean bitrate, for slot arithmetic; 0 means not known yet (2500 until it is)
	Private     bool   // joining needs a viewer token
	MaxDepth    int    // hop cap for interactive streams; 0 for none
}

// Streams looks streams up by name (the origin's registry, in production).
type Streams interface {
	TrackerStream(name string) (StreamInfo, bool)
}

// StreamsFunc adapts a function to Streams.
type StreamsFunc func(name string) (StreamInfo, bool)

// TrackerStream implements Streams.
func (f StreamsFunc) TrackerStream(name string) (StreamInfo, bool) { return f(name) }

// ServerParams configures a Server.
type Params struct {
	Logger         *slog.Logger
	Metrics        *Metrics // nil disables metrics
	Streams        Streams
	Geo            *Geo           // nil: declared regions and IP prefixes only
	TrustedProxies []netip.Prefix // whose X-Forwarded-For is believed
	Tokens         *TokenIssuer   // nil: private streams cannot be joined
	ICEServers     []protocol.ICEServer
	Swarm          tracker.SwarmParams // per-stream policy settings (Rand is set per stream)
	OriginSlots    int                 // links the origin seed serves per stream (default 64)
	// OriginSecret is what the origin's seed node sends as the token of a
	// join of kind origin (docs/protocol.md §4.6). Empty: every origin join is
	// refused, and the origin seed stays virtual (signals to it are dropped).
	OriginSecret string

	MaxConnsPerIP int           // default 16
	MessageRate   float64       // messages per second per connection (default 20)
	MessageBurst  int           // default 60
	JoinTimeout   time.Duration // the join must come within this (default 10 s)
	WriteTimeout  time.Duration // default 10 s
	SendQueue     int           // messages queued to a slow client before it is dropped (default 64)
	// PingAfter: a joined connection that has sent nothing (no message,
	// no ping, no pong) for this long gets a WebSocket ping from the
	// tracker, and another every PingAfter while it stays silent (default
	// 25 s). IdleTimeout: one silent for this long is closed, 1008 "idle"
	// (default 75 s: three pings unanswered). Both are checked at every
	// rebalance tick, against Now.
	PingAfter   time.Duration
	IdleTimeout time.Duration
	// RebalanceEvery is how often each swarm is rebalanced: waiting
	// substreams get upstreams, long-lived relays move up (default 2 s).
	RebalanceEvery time.Duration
	Now            func() time.Time
	Seed           uint64 // randomness of the swarms; 0 picks one
}

// Close codes and reasons the tracker uses.
const (
	closeJoinFirst   = "join first"
	closeBadMessage  = "bad message"
	closeRateLimited = "too many messages"
	closeSlow        = "client too slow"
	closeUnknown     = "unknown stream"
	closeToken       = "viewer token refused"
	closeOrigin      = "origin secret refused"
	closeReplaced    = "origin replaced"
	closeShutdown    = "tracker shutting down"
	closeIdle        = "idle"
)

// Server is the tracker's WebSocket endpoint (GET /tracker).
type Server struct {
	p   Params
	log *slog.Logger
	// originKey is the SHA-256 of OriginSecret, compared in constant time
	// with that of an origin join's token; nil when origin joins are off.
	originKey []byte

	mu      sync.Mutex
	closed  bool
	perIP   map[netip.Addr]int
	streams map[string]*stream
	conns   map[*peerConn]struct{}
	wg      sync.WaitGroup
	rng     *mrand.Rand
	stop    chan struct{}
	poll    *poller
}

type stream struct {
	name   string
	info   StreamInfo
	mu     sync.Mutex
	swarm  *tracker.Swarm
	peers  map[protocol.PeerID]*peerConn // viewers
	origin *peerConn                     // the bound origin seed (peer protocol.OriginPeer); nil when none
	aud    audience                      // what the viewers report, for the dashboard
}

type peerConn struct {
	id      protocol.PeerID
	ip      netip.Addr
	nc      net.Conn
	fd      int // watched by the poller
	st      *stream
	origin  bool // the stream's origin seed (id protocol.OriginPeer), not a viewer
	limiter *rate.Limiter
	kind    protocol.Kind // a viewer's, from its join
	// fig is the viewer's latest report figures, for the dashboard.
	// Guarded by st.mu.
	fig figures

	wmu sync.Mutex // one frame at a time on nc: messages, pongs, the close

	// seen is when the client last sent a frame (unix ns, by Params.Now),
	// pinged when the tracker last pinged it; both only for keepalive.
	seen   atomic.Int64
	pinged atomic.Int64

	// Outbound frames: text messages, and the tracker's pings. A writer
	// goroutine runs only while some are queued.
	mu       sync.Mutex
	queue    []outFrame
	writing  bool
	closed   bool
	joined   bool
	writer   sync.WaitGroup
	finished sync.Once
}

// outFrame is a frame queued to a client: a text message, or a ping (nil
// data).
type outFrame struct {
	data []byte
	ping bool
}

func (pc *peerConn) isClosed() bool {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.closed
}

// writeFrame writes one whole frame (compiled first, so that frames written
// by different goroutines never interleave).
func (pc *peerConn) writeFrame(f ws.Frame, timeout time.Duration) error {
	b, err := ws.CompileFrame(f)
	if err != nil {
		return err
	}
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	_ = pc.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err = pc.nc.Write(b)
	return err
}

// NewServer returns a tracker with no peers.
func New(p Params) (*Server, error) {
	if p.Streams == nil {
		return nil, errors.New("tracker: server.Params.Streams is required")
	}
	// The per-stream policy is checked now, on a probe, rather than at the
	// first join of each stream.
	probe := p.Swarm
	probe.BitrateKbps, probe.Rand = cmp.Or(probe.BitrateKbps, 2500), mrand.New(mrand.NewPCG(1, 1))
	if _, err := tracker.NewSwarm(probe); err != nil {
		return nil, fmt.Errorf("tracker: server.Params.Swarm: %w", err)
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.OriginSlots <= 0 {
		p.OriginSlots = 64
	}
	if p.MaxConnsPerIP <= 0 {
		p.MaxConnsPerIP = 16
	}
	if p.MessageRate <= 0 {
		p.MessageRate = 20
	}
	if p.MessageBurst <= 0 {
		p.MessageBurst = 60
	}
	if p.JoinTimeout <= 0 {
		p.JoinTimeout = 10 * time.Second
	}
	if p.WriteTimeout <= 0 {
		p.WriteTimeout = 10 * time.Second
	}
	if p.SendQueue <= 0 {
		p.SendQueue = 64
	}
	if p.RebalanceEvery <= 0 {
		p.RebalanceEvery = 2 * time.Second
	}
	if p.PingAfter <= 0 {
		p.PingAfter = 25 * time.Second
	}
	if p.IdleTimeout <= 0 {
		p.IdleTimeout = 75 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	seed := p.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, x := range b {
			seed = seed<<8 | uint64(x)
		}
	}
	s := &Server{
		p: p, log: p.Logger.With("component", "tracker"), perIP: map[netip.Addr]int{},
		streams: map[string]*stream{}, conns: map[*peerConn]struct{}{},
		rng:  mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		stop: make(chan struct{}),
	}
	s.originKey = originKey(p.OriginSecret)
	poll, err := newPoller(s.handleOne)
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	s.poll = poll
	s.wg.Add(1)
	go s.maintain()
	return s, nil
}

// maintain rebalances every swarm, and keeps idle connections alive (or
// closes silent ones), periodically until Close.
func (s *Server) maintain() {
	defer s.wg.Done()
	tick := time.NewTicker(s.p.RebalanceEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.keepalive()
		s.mu.Lock()
		streams := make([]*stream, 0, len(s.streams))
		for _, st := range s.streams {
			streams = append(streams, st)
		}
		s.mu.Unlock()
		for _, st := range streams {
			// The stream's bitrate settles as it runs: slots follow it
			// once it moved by more than a fifth.
			info, ok := s.p.Streams.TrackerStream(st.name)
			st.mu.Lock()
			var links []tracker.Link
			if cur := st.swarm.BitrateKbps(); ok && info.BitrateKbps > 0 && (info.BitrateKbps*5 < cur*4 || info.BitrateKbps*4 > cur*5) {
				links = st.swarm.SetBitrate(s.p.Now(), info.BitrateKbps)
			}
			links = append(links, st.swarm.Rebalance(s.p.Now())...)
			st.sampleLocked(s.p.Now())
			st.mu.Unlock()
			s.reassign(st, links)
		}
	}
}

// keepalive pings the joined connections that have been silent for
// PingAfter (again every PingAfter while they stay so) and closes those
// silent for IdleTimeout. The ping goes through the connection's write
// queue, like a message: no goroutine waits on an idle connection.
func (s *Server) keepalive() {
	now := s.p.Now().UnixNano()
	s.mu.Lock()
	var ping, idle []*peerConn
	for pc := range s.conns {
		seen := pc.seen.Load()
		switch {
		case seen == 0: // not joined yet: the join timeout holds it
		case pc.isClosed(): // closing (it stays in conns until finished): counted once
		case now-seen >= int64(s.p.IdleTimeout):
			idle = append(idle, pc)
		case now-max(seen, pc.pinged.Load()) >= int64(s.p.PingAfter):
			ping = append(ping, pc)
		}
	}
	s.mu.Unlock()
	for _, pc := range idle {
		s.p.Metrics.reject("idle")
		s.close(pc, ws.StatusPolicyViolation, closeIdle)
	}
	for _, pc := range ping {
		pc.pinged.Store(now)
		s.p.Metrics.pinged()
		s.enqueue(pc, outFrame{ping: true})
	}
}

func originKey(secret string) []byte {
	if secret == "" {
		return nil
	}
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// originAllowed reports whether token is the origin secret. The digests are
// compared, in constant time, so that neither the secret's bytes nor its
// length leak through timing.
func (s *Server) originAllowed(token string) bool {
	if s.originKey == nil {
		return false
	}
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], s.originKey) == 1
}

var peerIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newPeerID returns 128 random bits as 26 lower-case base32 characters.
func newPeerID() protocol.PeerID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return protocol.PeerID(strings.ToLower(peerIDEncoding.EncodeToString(b[:])))
}

// Connection timing.
const (
	// messageTimeout bounds how long a message, once begun, may take to
	// arrive in full (a stalled half-sent frame would hold its reader).
	messageTimeout = 10 * time.Second
	// closeLinger is how long a closed connection waits for the client's
	// close frame before the socket goes.
	closeLinger = 2 * time.Second
)

// errPeerClosed: the client closed the WebSocket.
var errPeerClosed = errors.New("tracker: peer closed the connection")

// ServeHTTP accepts a tracker WebSocket: the upgrade and the join happen
// here; afterwards the connection has no goroutine of its own while idle (the
// poller hands each incoming message to handleOne).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := ClientIP(r, s.p.TrustedProxies)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, closeShutdown, http.StatusServiceUnavailable)
		return
	}
	if s.perIP[ip] >= s.p.MaxConnsPerIP {
		s.mu.Unlock()
		s.p.Metrics.reject("conns_per_ip")
		http.Error(w, fmt.Sprintf("more than %d tracker connections from one address", s.p.MaxConnsPerIP), http.StatusTooManyRequests)
		return
	}
	s.perIP[ip]++
	s.wg.Add(1) // done in finish
	s.mu.Unlock()

	// Any page may embed the player, and the tracker uses no cookies: every
	// origin is accepted.
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	pc := &peerConn{ip: ip, nc: nc}
	if err != nil {
		s.finish(pc)
		return
	}
	s.mu.Lock()
	s.conns[pc] = struct{}{}
	s.mu.Unlock()

	// The join, read from the upgrade's buffered reader within the join timeout.
	_ = nc.SetReadDeadline(time.Now().Add(s.p.JoinTimeout))
	msg, err := s.readMessageMode(pc, rw.Reader, true)
	if err != nil {
		s.fail(pc, err)
		return
	}
	join, ok := msg.(*protocol.Join)
	if !ok {
		s.p.Metrics.reject("join_first")
		s.close(pc, ws.StatusPolicyViolation, closeJoinFirst)
		return
	}
	if !s.join(pc, join) {
		return
	}
	pc.seen.Store(s.p.Now().UnixNano())
	// Whatever the client sent right behind its join is in the buffer, where
	// the poller would not see it.
	for rw.Reader.Buffered() > 0 {
		_ = nc.SetReadDeadline(time.Now().Add(messageTimeout))
		msg, err := s.readMessage(pc, rw.Reader)
		if err != nil {
			s.fail(pc, err)
			return
		}
		if !s.dispatch(pc, msg) {
			return
		}
	}
	_ = nc.SetReadDeadline(time.Time{})
	if err := s.poll.watch(pc); err != nil {
		if pc.isClosed() {
			return // it ended already (the client left right after its welcome)
		}
		s.log.Error("tracker poller", "err", err)
		s.close(pc, ws.StatusInternalServerError, "internal error")
	}
}

// handleOne reads and handles one message of a joined connection: the
// poller calls it when the connection has data.
func (s *Server) handleOne(pc *peerConn) {
	if pc.isClosed() {
		return
	}
	if pollReadTimeout > 0 {
		_ = pc.nc.SetReadDeadline(time.Now().Add(pollReadTimeout))
	}
	msg, err := s.readMessage(pc, pc.nc)
	if err != nil {
		s.fail(pc, err)
		return
	}
	pc.seen.Store(s.p.Now().UnixNano()) // a message, a ping or a pong: it lives
	if msg == nil {
		// A ping (or pong) between messages: answered, and the connection
		// waits for its next frame with no deadline, as an idle one does.
		// Control frames count against the message rate.
		if !pc.limiter.AllowN(s.p.Now(), 1) {
			s.p.Metrics.reject("rate")
			s.close(pc, ws.StatusPolicyViolation, closeRateLimited)
			return
		}
	} else if !s.dispatch(pc, msg) {
		return
	}
	if err := s.poll.rearm(pc); err != nil {
		s.close(pc, 0, "")
	}
}

// dispatch handles a message of a joined connection; false when it ended
// the connection.
func (s *Server) dispatch(pc *peerConn, msg any) bool {
	if !pc.limiter.AllowN(s.p.Now(), 1) {
		s.p.Metrics.reject("rate")
		s.close(pc, ws.StatusPolicyViolation, closeRateLimited)
		return false
	}
	switch m := msg.(type) {
	case *protocol.Join:
		s.p.Metrics.reject("join_twice")
		s.close(pc, ws.StatusPolicyViolation, "joined already")
		return false
	case *protocol.Signal:
		s.signal(pc, m)
	case *protocol.Report:
		s.report(pc, m)
	case *protocol.Leave:
		s.close(pc, ws.StatusNormalClosure, "bye")
		return false
	}
	return true
}

// readError is a read error that is the client's fault.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

// readMessage reads one whole message from src (answering pings on the
// way) and decodes it. A control frame between messages is answered and
// returns a nil message, so that a client that only pings is not held to
// the deadline of a message it never began.
func (s *Server) readMessage(pc *peerConn, src io.Reader) (any, error) {
	return s.readMessageMode(pc, src, false)
}

// readMessageMode is readMessage; with whole set, control frames are
// answered and reading goes on until a data message (the join, read under
// its own deadline).
func (s *Server) readMessageMode(pc *peerConn, src io.Reader, whole bool) (any, error) {
	rd := wsutil.Reader{Source: src, State: ws.StateServerSide, MaxFrameSize: protocol.MaxMessageBytes, MaxMessageSize: protocol.MaxMessageBytes}
	control := func(h ws.Header, r io.Reader) error { return s.control(pc, h, r) }
	rd.OnIntermediate = control
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return nil, err
		}
		if hdr.OpCode.IsControl() {
			if err := control(hdr, &rd); err != nil {
				return nil, err
			}
			if !whole {
				return nil, nil
			}
			continue
		}
		if hdr.OpCode != ws.OpText {
			return nil, readError{fmt.Errorf("%w: binary message", protocol.ErrBadMessage)}
		}
		data, err := io.ReadAll(&rd)
		if err != nil {
			return nil, err
		}
		msg, err := protocol.DecodeClient(data)
		if err != nil {
			return nil, readError{err}
		}
		return msg, nil
	}
}

// control answers a control frame: pong for ping; a close is echoed and ends
// the connection.
func (s *Server) control(pc *peerConn, h ws.Header, r io.Reader) error {
	payload, err := io.ReadAll(io.LimitReader(r, 125))
	if err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		return pc.writeFrame(ws.NewPongFrame(payload), s.p.WriteTimeout)
	case ws.OpClose:
		pc.mu.Lock()
		echo := !pc.closed
		pc.mu.Unlock()
		if echo {
			_ = pc.writeFrame(ws.NewCloseFrame(payload[:min(len(payload), 2)]), s.p.WriteTimeout)
		}
		return errPeerClosed
	}
	return nil
}

// fail ends a connection after a read error, saying why when it was the
// client's fault.
func (s *Server) fail(pc *peerConn, err error) {
	var re readError
	var pe ws.ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &re):
		s.p.Metrics.reject("bad_message")
		s.log.Debug("bad tracker message", "peer", pc.id, "ip", pc.ip, "err", re.err)
		s.close(pc, ws.StatusPolicyViolation, truncate(closeBadMessage+": "+re.err.Error(), 120))
	case errors.Is(err, wsutil.ErrFrameTooLarge), errors.Is(err, wsutil.ErrMessageTooLarge):
		s.p.Metrics.reject("too_big")
		s.close(pc, ws.StatusMessageTooBig, "message too big")
	case errors.As(err, &pe):
		s.p.Metrics.reject("bad_frame")
		s.close(pc, ws.StatusProtocolError, truncate(pe.Error(), 120))
	case errors.As(err, &ne) && ne.Timeout():
		pc.mu.Lock()
		joined := pc.joined
		pc.mu.Unlock()
		if !joined {
			s.p.Metrics.reject("join_timeout")
			s.close(pc, ws.StatusPolicyViolation, closeJoinFirst)
		} else {
			s.p.Metrics.reject("slow_message")
			s.close(pc, ws.StatusPolicyViolation, "message too slow")
		}
	default: // the client went (EOF, reset, its close frame)
		s.close(pc, 0, "")
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// close ends a connection once: it stops watching it, sends a close frame
// with code and reason (code 0: none, the client is gone or closed first),
// waits a moment for the client's close frame, and releases it. It never
// blocks the caller.
func (s *Server) close(pc *peerConn, code ws.StatusCode, reason string) {
	pc.mu.Lock()
	if pc.closed {
		pc.mu.Unlock()
		return
	}
	pc.closed, pc.queue = true, nil
	pc.mu.Unlock()
	s.poll.forget(pc)
	go func() {
		if code != 0 {
			_ = pc.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason)), time.Second)
			if tc, ok := pc.nc.(interface{ CloseWrite() error }); ok {
				_ = tc.CloseWrite()
			}
			_ = pc.nc.SetReadDeadline(time.Now().Add(closeLinger))
			_, _ = io.Copy(io.Discard, io.LimitReader(pc.nc, protocol.MaxMessageBytes))
		}
		_ = pc.nc.Close()
		pc.writer.Wait()
		s.finish(pc)
	}()
}

// finish forgets a connection for good: its leave, its address's count.
func (s *Server) finish(pc *peerConn) {
	pc.finished.Do(func() {
		pc.mu.Lock()
		joined := pc.joined
		pc.mu.Unlock()
		if joined {
			s.leave(pc)
		}
		s.mu.Lock()
		delete(s.conns, pc)
		if s.perIP[pc.ip]--; s.perIP[pc.ip] <= 0 {
			delete(s.perIP, pc.ip)
		}
		s.mu.Unlock()
		s.wg.Done()
	})
}

func (s *Server) streamFor(name string) (*stream, StreamInfo, bool) {
	info, ok := s.p.Streams.TrackerStream(name)
	if !ok {
		return nil, info, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[name]
	if st == nil {
		sp := s.p.Swarm
		sp.BitrateKbps = info.BitrateKbps
		if sp.BitrateKbps == 0 {
			sp.BitrateKbps = 2500
		}
		sp.MaxDepth = info.MaxDepth
		sp.Rand = mrand.New(mrand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
		sw, err := tracker.NewSwarm(sp)
		if err != nil {
			s.log.Error("swarm", "stream", name, "err", err)
			return nil, info, false
		}
		if err := sw.AddOrigin(protocol.OriginPeer, s.p.OriginSlots); err != nil {
			s.log.Error("swarm origin", "stream", name, "err", err)
			return nil, info, false
		}
		st = &stream{name: name, info: info, swarm: sw, peers: map[protocol.PeerID]*peerConn{}}
		s.streams[name] = st
	}
	return st, info, true
}

// join registers the peer and sends its welcome; false when refused.
func (s *Server) join(pc *peerConn, j *protocol.Join) bool {
	if j.Kind == protocol.KindOrigin && !s.originAllowed(j.Token) {
		s.p.Metrics.reject("origin")
		s.log.Warn("origin join refused", "stream", j.Stream, "ip", pc.ip)
		s.close(pc, ws.StatusPolicyViolation, closeOrigin)
		return false
	}
	st, info, ok := s.streamFor(j.Stream)
	if !ok {
		s.p.Metrics.reject("unknown_stream")
		s.close(pc, ws.StatusPolicyViolation, closeUnknown)
		return false
	}
	if j.Kind == protocol.KindOrigin {
		s.bindOrigin(pc, st, info)
		return true
	}
	if info.Private {
		if s.p.Tokens == nil || s.p.Tokens.Verify(j.Token, j.Stream, s.p.Now()) != nil {
			s.p.Metrics.reject("token")
			s.close(pc, ws.StatusPolicyViolation, closeToken)
			return false
		}
	}
	pc.id, pc.st, pc.kind = newPeerID(), st, j.Kind
	pc.limiter = rate.NewLimiter(rate.Limit(s.p.MessageRate), s.p.MessageBurst)
	loc := s.p.Geo.Locate(pc.ip, j.Region)
	loc.Addr = pc.ip // the viewers of one address share one relay allowance
	now := s.p.Now()
	st.mu.Lock()
	links, err := st.swarm.Join(now, tracker.PeerInfo{ID: pc.id, Kind: j.Kind, Loc: loc, BudgetKbps: j.BudgetKbps})
	var moved []tracker.Link // others moved to make room: told after the welcome
	if k := st.swarm.Substreams(); err == nil && len(links) > k {
		links, moved = links[:k], links[k:]
	}
	if err != nil { // only a bug: the swarm takes every valid join (on HTTP when full)
		st.mu.Unlock()
		s.log.Error("swarm refused a join", "stream", st.name, "err", err)
		s.p.Metrics.reject("internal")
		s.close(pc, ws.StatusInternalServerError, "internal error")
		return false
	}
	st.peers[pc.id] = pc
	pc.mu.Lock()
	pc.joined = true
	pc.mu.Unlock()
	w := protocol.Welcome{
		Type: protocol.TypeWelcome, V: protocol.ProtocolVersion, Peer: pc.id, PublicKey: info.PublicKey, Manifest: info.Manifest,
		ICEServers: s.p.ICEServers, Substreams: len(links), Upstreams: make([]protocol.Upstream, len(links)), Depth: st.swarm.ViewerDepth(pc.id),
		DelayMs: int(st.swarm.Delay().Milliseconds()),
	}
	if w.ICEServers == nil {
		w.ICEServers = []protocol.ICEServer{}
	}
	depths := make([]int, len(links))
	for i, l := range links {
		w.Upstreams[i] = protocol.Upstream{Substream: l.Substream, Peer: l.Upstream}
		depths[i] = st.swarm.Depth(l.Peer, l.Substream)
	}
	// Counted before the welcome goes, so that a client holding its
	// welcome finds itself in the metrics.
	s.p.Metrics.joined(st.name, len(st.peers))
	for i, l := range links {
		s.p.Metrics.assigned(string(l.Reason), depths[i])
	}
	// Queued before the stream is unlocked: a reassign of this viewer (a
	// rebalance may give it one at once) can only follow its welcome.
	s.send(pc, w)
	st.mu.Unlock()
	s.reassign(st, moved)
	s.log.Debug("peer joined", "stream", st.name, "peer", pc.id, "kind", j.Kind, "budgetKbps", j.BudgetKbps, "country", loc.Country)
	return true
}

// bindOrigin makes pc the stream's origin seed, replacing (and closing) the
// one bound before, and sends its welcome. The swarm holds OriginPeer from
// the start (AddOrigin): binding changes no assignment, it only gives the
// signals addressed to OriginPeer somewhere to go.
func (s *Server) bindOrigin(pc *peerConn, st *stream, info StreamInfo) {
	pc.id, pc.st, pc.origin = protocol.OriginPeer, st, true
	// The seed answers every viewer the origin feeds (up to OriginSlots at
	// once when a stream starts): it proved the secret, and is not held
	// to a viewer's message rate.
	pc.limiter = rate.NewLimiter(rate.Inf, 0)
	st.mu.Lock()
	old := st.origin
	st.origin = pc
	pc.mu.Lock()
	pc.joined = true
	pc.mu.Unlock()
	k, delay := st.swarm.Substreams(), st.swarm.Delay()
	st.mu.Unlock()
	if old != nil {
		s.close(old, ws.StatusPolicyViolation, closeReplaced)
	}
	w := protocol.Welcome{
		Type: protocol.TypeWelcome, V: protocol.ProtocolVersion, Peer: protocol.OriginPeer, PublicKey: info.PublicKey, Manifest: info.Manifest,
		ICEServers: s.p.ICEServers, Substreams: k, Upstreams: []protocol.Upstream{}, Depth: 0, DelayMs: int(delay.Milliseconds()),
	}
	if w.ICEServers == nil {
		w.ICEServers = []protocol.ICEServer{}
	}
	s.send(pc, w)
	s.log.Info("origin seed bound", "stream", st.name, "ip", pc.ip, "replaced", old != nil)
}

func (st *stream) depth(l tracker.Link) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.swarm.Depth(l.Peer, l.Substream)
}

// leave removes the peer and reassigns its orphans. The origin seed leaving
// only unbinds it: OriginPeer stays in the swarm, its links stand, and a
// restarted seed binds again.
func (s *Server) leave(pc *peerConn) {
	st := pc.st
	if pc.origin {
		st.mu.Lock()
		bound := st.origin == pc
		if bound {
			st.origin = nil
		}
		st.mu.Unlock()
		if bound {
			s.log.Info("origin seed unbound", "stream", st.name, "ip", pc.ip)
		}
		return
	}
	st.mu.Lock()
	delete(st.peers, pc.id)
	st.aud.gone.add(pc.fig)
	links := st.swarm.Leave(s.p.Now(), pc.id)
	peers := len(st.peers)
	st.mu.Unlock()
	s.p.Metrics.left(st.name, peers)
	s.reassign(st, links)
}

// reassign tells peers of their new upstreams, and of their depth now.
func (s *Server) reassign(st *stream, links []tracker.Link) {
	for _, l := range links {
		st.mu.Lock()
		linkDepth := st.swarm.Depth(l.Peer, l.Substream)
		target := st.peers[l.Peer]
		depth := st.swarm.ViewerDepth(l.Peer)
		st.mu.Unlock()
		s.p.Metrics.assigned(string(l.Reason), linkDepth)
		if target != nil {
			s.send(target, protocol.Reassign{Type: protocol.TypeReassign, Substream: l.Substream, Peer: l.Upstream, Reason: string(l.Reason), Depth: depth})
		}
	}
}

// signal relays signaling between two linked peers — viewers, and the
// origin seed (OriginPeer) when one is bound; anything else is refused (and
// counted), but does not end the sender's connection: a link may have just
// been reassigned.
func (s *Server) signal(pc *peerConn, m *protocol.Signal) {
	st := pc.st
	st.mu.Lock()
	target := st.peers[m.To]
	if m.To == protocol.OriginPeer {
		target = st.origin
	}
	linked := st.swarm.Linked(pc.id, m.To)
	replaced := pc.origin && st.origin != pc
	st.mu.Unlock()
	switch {
	case replaced: // a replaced origin seed's last words
		s.p.Metrics.reject("signal_unroutable")
		return
	case !linked:
		s.p.Metrics.reject("signal_unlinked")
		return
	case target == nil:
		s.p.Metrics.reject("signal_unroutable") // gone, or no origin seed bound
		return
	}
	m.From, m.To = pc.id, ""
	s.p.Metrics.signalled()
	s.send(target, m)
}

func (s *Server) report(pc *peerConn, m *protocol.Report) {
	if pc.origin {
		return // the origin seed reports nothing the swarm uses
	}
	st := pc.st
	now := s.p.Now()
	st.mu.Lock()
	// A viewer may raise its budget above the join's (its user moved the
	// slider): the policy caps it, and slots follow measured delivery.
	links := st.swarm.TakeReport(now, pc.id, m, protocol.MaxBudgetKbps)
	pc.fig.take(m)
	st.mu.Unlock()
	s.p.Metrics.reported()
	s.reassign(st, links)
}

// send queues a message; a client whose queue is full is too slow to keep
// and is dropped (its downstreams get reassigned).
func (s *Server) send(pc *peerConn, msg any) {
	data, err := json.Marshal(msg)
	if err != nil {
		return
	}
	s.enqueue(pc, outFrame{data: data})
}

// enqueue queues a frame and starts the writer if none runs.
func (s *Server) enqueue(pc *peerConn, f outFrame) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	switch {
	case pc.closed:
		return
	case len(pc.queue) >= s.p.SendQueue:
		s.p.Metrics.reject("slow_client")
		go s.close(pc, ws.StatusPolicyViolation, closeSlow) // close takes pc.mu
		return
	}
	pc.queue = append(pc.queue, f)
	if !pc.writing {
		pc.writing = true
		pc.writer.Add(1)
		go s.drain(pc)
	}
}

// drain writes the queued messages, then exits.
func (s *Server) drain(pc *peerConn) {
	defer pc.writer.Done()
	for {
		pc.mu.Lock()
		if len(pc.queue) == 0 || pc.closed {
			pc.queue, pc.writing = nil, false
			pc.mu.Unlock()
			return
		}
		f := pc.queue[0]
		pc.queue = pc.queue[1:]
		pc.mu.Unlock()
		frame := ws.NewTextFrame(f.data)
		if f.ping {
			frame = ws.NewPingFrame(nil)
		}
		if err := pc.writeFrame(frame, s.p.WriteTimeout); err != nil {
			s.close(pc, 0, "")
		}
	}
}

// Close ends every connection and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	conns := make([]*peerConn, 0, len(s.conns))
	for pc := range s.conns {
		conns = append(conns, pc)
	}
	s.mu.Unlock()
	if first {
		close(s.stop)
	}
	for _, pc := range conns {
		s.close(pc, ws.StatusGoingAway, closeShutdown)
	}
	s.wg.Wait()
	if first {
		s.poll.close()
	}
}
