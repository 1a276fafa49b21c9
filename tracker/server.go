package tracker

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// StreamInfo is what the tracker needs to know of a stream.
type StreamInfo struct {
	PublicKey   string // Ed25519, hex: the key viewers verify manifests with
	Manifest    string // manifest URL path
	BitrateKbps int    // for slot arithmetic; 0 means 2500
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
type ServerParams struct {
	Logger         *slog.Logger
	Metrics        *Metrics // nil disables metrics
	Streams        Streams
	Geo            *Geo           // nil: declared regions and IP prefixes only
	TrustedProxies []netip.Prefix // whose X-Forwarded-For is believed
	Tokens         *TokenIssuer   // nil: private streams cannot be joined
	ICEServers     []ICEServer
	Swarm          SwarmParams // per-stream policy settings (Rand is set per stream)
	OriginSlots    int         // links the origin seed serves per stream (default 64)

	MaxConnsPerIP int           // default 16
	MessageRate   float64       // messages per second per connection (default 20)
	MessageBurst  int           // default 60
	JoinTimeout   time.Duration // the join must come within this (default 10 s)
	WriteTimeout  time.Duration // default 10 s
	SendQueue     int           // messages queued to a slow client before it is dropped (default 64)
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
	closeShutdown    = "tracker shutting down"
)

// Server is the tracker's WebSocket endpoint (GET /tracker).
type Server struct {
	p   ServerParams
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	perIP   map[netip.Addr]int
	streams map[string]*stream
	conns   map[*peerConn]struct{}
	wg      sync.WaitGroup
	rng     *mrand.Rand
	stop    chan struct{}
}

type stream struct {
	name  string
	info  StreamInfo
	mu    sync.Mutex
	swarm *Swarm
	peers map[PeerID]*peerConn
}

type peerConn struct {
	id     PeerID
	ip     netip.Addr
	ws     *websocket.Conn
	st     *stream
	once   sync.Once
	closed chan struct{}
	ctx    context.Context // the connection's; writes stop with it

	// Outbound messages. A writer goroutine runs only while some are queued:
	// an idle connection costs one goroutine (its reader), not two.
	mu      sync.Mutex
	queue   [][]byte
	writing bool
	done    bool // the handler has returned: no new writer
	writer  sync.WaitGroup
}

// NewServer returns a tracker with no peers.
func NewServer(p ServerParams) (*Server, error) {
	if p.Streams == nil {
		return nil, errors.New("tracker: ServerParams.Streams is required")
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
	s.wg.Add(1)
	go s.maintain()
	return s, nil
}

// maintain rebalances every swarm periodically until Close.
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
		s.mu.Lock()
		streams := make([]*stream, 0, len(s.streams))
		for _, st := range s.streams {
			streams = append(streams, st)
		}
		s.mu.Unlock()
		for _, st := range streams {
			st.mu.Lock()
			links := st.swarm.Rebalance(s.p.Now())
			st.mu.Unlock()
			s.reassign(st, links)
		}
	}
}

var peerIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newPeerID returns 128 random bits as 26 lower-case base32 characters.
func newPeerID() PeerID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return PeerID(strings.ToLower(peerIDEncoding.EncodeToString(b[:])))
}

// ServeHTTP accepts a tracker WebSocket.
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
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.perIP[ip]--; s.perIP[ip] <= 0 {
			delete(s.perIP, ip)
		}
		s.mu.Unlock()
		s.wg.Done()
	}()

	// Any page may embed the player, and the tracker uses no cookies: every
	// origin is accepted.
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: []string{"*"}})
	if err != nil {
		return
	}
	ws.SetReadLimit(MaxMessageBytes)
	pc := &peerConn{ip: ip, ws: ws, closed: make(chan struct{}), ctx: r.Context()}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, closeShutdown)
		return
	}
	s.conns[pc] = struct{}{}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(r.Context())
	pc.ctx = ctx
	defer func() {
		s.close(pc, websocket.StatusNormalClosure, "")
		cancel()
		pc.mu.Lock()
		pc.done = true
		pc.mu.Unlock()
		pc.writer.Wait()
		s.mu.Lock()
		delete(s.conns, pc)
		s.mu.Unlock()
	}()
	s.serve(ctx, pc)
}

// serve runs one connection: join, then the message loop, then the leave.
func (s *Server) serve(ctx context.Context, pc *peerConn) {
	// A connection closed from anywhere (s.close) ends here too: the close
	// handshake makes the pending Read return.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The join timeout closes the connection properly (a deadline on Read
	// would drop it without a close frame, and the client would not know why).
	timer := time.AfterFunc(s.p.JoinTimeout, func() {
		s.p.Metrics.reject("join_timeout")
		s.close(pc, websocket.StatusPolicyViolation, closeJoinFirst)
	})
	msg, err := s.read(ctx, pc)
	if !timer.Stop() {
		return // timed out: closed already
	}
	if err != nil {
		s.fail(pc, err)
		return
	}
	join, ok := msg.(*Join)
	if !ok {
		s.p.Metrics.reject("join_first")
		s.close(pc, websocket.StatusPolicyViolation, closeJoinFirst)
		return
	}
	if !s.join(pc, join) {
		return
	}
	defer s.leave(pc)

	limiter := rate.NewLimiter(rate.Limit(s.p.MessageRate), s.p.MessageBurst)
	for {
		msg, err := s.read(ctx, pc)
		if err != nil {
			s.fail(pc, err)
			return
		}
		if !limiter.AllowN(s.p.Now(), 1) {
			s.p.Metrics.reject("rate")
			s.close(pc, websocket.StatusPolicyViolation, closeRateLimited)
			return
		}
		switch m := msg.(type) {
		case *Join:
			s.p.Metrics.reject("join_twice")
			s.close(pc, websocket.StatusPolicyViolation, "joined already")
			return
		case *Signal:
			s.signal(pc, m)
		case *Report:
			s.report(pc, m)
		case *Leave:
			s.close(pc, websocket.StatusNormalClosure, "bye")
			return
		}
	}
}

// errBadMessage is a read error that is the client's fault.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }

func (s *Server) read(ctx context.Context, pc *peerConn) (any, error) {
	typ, data, err := pc.ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if typ != websocket.MessageText {
		return nil, readError{fmt.Errorf("%w: binary message", ErrBadMessage)}
	}
	msg, err := DecodeClient(data)
	if err != nil {
		return nil, readError{err}
	}
	return msg, nil
}

// fail ends a connection after a read error, saying why when it was the
// client's fault.
func (s *Server) fail(pc *peerConn, err error) {
	var re readError
	switch {
	case errors.As(err, &re):
		s.p.Metrics.reject("bad_message")
		s.log.Debug("bad tracker message", "peer", pc.id, "ip", pc.ip, "err", re.err)
		s.close(pc, websocket.StatusPolicyViolation, truncate(closeBadMessage+": "+re.err.Error(), 120))
	case strings.Contains(err.Error(), "read limited at"):
		// coder/websocket has closed with 1009 itself; its error has no type.
		s.p.Metrics.reject("too_big")
		s.close(pc, websocket.StatusMessageTooBig, "message too big")
	default:
		s.close(pc, websocket.StatusNormalClosure, "")
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// close ends a connection once, with a close status and reason. The close
// handshake waits for the client (up to a few seconds), so it runs on its
// own goroutine, which Close waits for.
func (s *Server) close(pc *peerConn, code websocket.StatusCode, reason string) {
	pc.once.Do(func() {
		close(pc.closed)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = pc.ws.Close(code, reason)
		}()
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
		sw, err := NewSwarm(sp)
		if err != nil {
			s.log.Error("swarm", "stream", name, "err", err)
			return nil, info, false
		}
		if err := sw.AddOrigin(OriginPeer, s.p.OriginSlots); err != nil {
			s.log.Error("swarm origin", "stream", name, "err", err)
			return nil, info, false
		}
		st = &stream{name: name, info: info, swarm: sw, peers: map[PeerID]*peerConn{}}
		s.streams[name] = st
	}
	return st, info, true
}

// join registers the peer and sends its welcome; false when refused.
func (s *Server) join(pc *peerConn, j *Join) bool {
	st, info, ok := s.streamFor(j.Stream)
	if !ok {
		s.p.Metrics.reject("unknown_stream")
		s.close(pc, websocket.StatusPolicyViolation, closeUnknown)
		return false
	}
	if info.Private {
		if s.p.Tokens == nil || s.p.Tokens.Verify(j.Token, j.Stream, s.p.Now()) != nil {
			s.p.Metrics.reject("token")
			s.close(pc, websocket.StatusPolicyViolation, closeToken)
			return false
		}
	}
	pc.id, pc.st = newPeerID(), st
	loc := s.p.Geo.Locate(pc.ip, j.Region)
	now := s.p.Now()
	st.mu.Lock()
	links, err := st.swarm.Join(now, PeerInfo{ID: pc.id, Kind: j.Kind, Loc: loc, BudgetKbps: j.BudgetKbps})
	if err == nil {
		st.peers[pc.id] = pc
	}
	peers := len(st.peers)
	st.mu.Unlock()
	if err != nil { // only a bug: the swarm takes every valid join (on HTTP when full)
		s.log.Error("swarm refused a join", "stream", st.name, "err", err)
		s.p.Metrics.reject("internal")
		s.close(pc, websocket.StatusInternalError, "internal error")
		return false
	}
	s.p.Metrics.joined(st.name, peers)
	w := Welcome{
		Type: TypeWelcome, V: ProtocolVersion, Peer: pc.id, PublicKey: info.PublicKey, Manifest: info.Manifest,
		ICEServers: s.p.ICEServers, Substreams: len(links), Upstreams: make([]Upstream, len(links)),
	}
	if w.ICEServers == nil {
		w.ICEServers = []ICEServer{}
	}
	for i, l := range links {
		w.Upstreams[i] = Upstream{Substream: l.Substream, Peer: l.Upstream}
		s.p.Metrics.assigned(string(l.Reason), st.depth(l))
	}
	s.send(pc, w)
	s.log.Debug("peer joined", "stream", st.name, "peer", pc.id, "kind", j.Kind, "budgetKbps", j.BudgetKbps, "country", loc.Country)
	return true
}

func (st *stream) depth(l Link) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.swarm.Depth(l.Peer, l.Substream)
}

// leave removes the peer and reassigns its orphans.
func (s *Server) leave(pc *peerConn) {
	st := pc.st
	st.mu.Lock()
	delete(st.peers, pc.id)
	links := st.swarm.Leave(s.p.Now(), pc.id)
	peers := len(st.peers)
	st.mu.Unlock()
	s.p.Metrics.left(st.name, peers)
	s.reassign(st, links)
}

// reassign tells peers of their new upstreams.
func (s *Server) reassign(st *stream, links []Link) {
	for _, l := range links {
		s.p.Metrics.assigned(string(l.Reason), st.depth(l))
		st.mu.Lock()
		target := st.peers[l.Peer]
		st.mu.Unlock()
		if target != nil {
			s.send(target, Reassign{Type: TypeReassign, Substream: l.Substream, Peer: l.Upstream, Reason: string(l.Reason)})
		}
	}
}

// signal relays signaling between two linked peers; anything else is
// refused (and counted), but does not end the sender's connection: a link
// may have just been reassigned.
func (s *Server) signal(pc *peerConn, m *Signal) {
	st := pc.st
	st.mu.Lock()
	target := st.peers[m.To]
	linked := st.swarm.Linked(pc.id, m.To)
	st.mu.Unlock()
	switch {
	case !linked:
		s.p.Metrics.reject("signal_unlinked")
		return
	case target == nil:
		s.p.Metrics.reject("signal_unroutable") // the origin's seed, or gone
		return
	}
	m.From, m.To = pc.id, ""
	s.p.Metrics.signalled()
	s.send(target, m)
}

func (s *Server) report(pc *peerConn, m *Report) {
	st := pc.st
	now := s.p.Now()
	var links []Link
	st.mu.Lock()
	st.swarm.Report(now, pc.id, Health{BufferSec: m.BufferSec, UploadKbps: m.UploadKbps, RTTms: m.RTTms})
	if c := m.Complaint; c != nil {
		links = append(links, st.swarm.Complain(now, pc.id, c.Peer)...)
	}
	for _, p := range m.Stalled {
		links = append(links, st.swarm.Complain(now, pc.id, p)...)
	}
	st.mu.Unlock()
	s.reassign(st, links)
}

// send queues a message; a client whose queue is full is too slow to keep
// and is dropped (its downstreams get reassigned).
func (s *Server) send(pc *peerConn, msg any) {
	data, err := json.Marshal(msg)
	if err != nil {
		return
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	switch {
	case pc.done:
		return
	case len(pc.queue) >= s.p.SendQueue:
		s.p.Metrics.reject("slow_client")
		s.close(pc, websocket.StatusPolicyViolation, closeSlow)
		return
	}
	pc.queue = append(pc.queue, data)
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
		if len(pc.queue) == 0 || pc.ctx.Err() != nil {
			pc.queue, pc.writing = nil, false
			pc.mu.Unlock()
			return
		}
		data := pc.queue[0]
		pc.queue = pc.queue[1:]
		pc.mu.Unlock()
		wctx, cancel := context.WithTimeout(pc.ctx, s.p.WriteTimeout)
		err := pc.ws.Write(wctx, websocket.MessageText, data)
		cancel()
		if err != nil {
			s.close(pc, websocket.StatusNormalClosure, "")
		}
	}
}

// Close ends every connection and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.closed {
		close(s.stop)
	}
	s.closed = true
	conns := make([]*peerConn, 0, len(s.conns))
	for pc := range s.conns {
		conns = append(conns, pc)
	}
	s.mu.Unlock()
	for _, pc := range conns {
		s.close(pc, websocket.StatusGoingAway, closeShutdown)
	}
	s.wg.Wait()
}
