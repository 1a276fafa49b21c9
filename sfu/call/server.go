package call

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/sfu"
	"github.com/seedcast/seedcast/sfu/call/ring"
)

// Limits bound what a call server holds. Zero values take the defaults.
type Limits struct {
	Rooms        int // rooms open at once (calls and voice channels); default 200
	Participants int // members of a call; default 16
	Voice        int // members of a voice channel; default 50
	Waiting      int // knocking at one call's door; default 20
	PerAddress   int // signalling connections from one address (IPv6: /64); default 16
	// MsgRate messages a second per connection, with bursts of MsgBurst;
	// defaults 20 and 60. A connection that keeps over it is closed.
	MsgRate  float64
	MsgBurst int
	// ResumeWindow is how long a participant whose signalling connection
	// went away stays in its room, waiting to resume; default 6 s. With the
	// keepalive, a participant that vanishes is gone within about 10 s.
	ResumeWindow time.Duration
	// PingInterval and PingTimeout: the server pings every connection, and
	// one that does not answer in time is lost; defaults 2 s and 3 s.
	PingInterval, PingTimeout time.Duration
	InviteTTL                 time.Duration // default 24 h
	ChatHistory               int           // lines kept per room; default 100
	// Ring bounds ringing calls (no answer, connect, lost); zero values
	// take package ring's defaults (30 s, 15 s, 10 s).
	Ring ring.Timeouts
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Rooms, 200)
	def(&l.Participants, 16)
	def(&l.Voice, 50)
	def(&l.Waiting, 20)
	def(&l.PerAddress, 16)
	def(&l.MsgBurst, 60)
	def(&l.ChatHistory, 100)
	if l.MsgRate <= 0 {
		l.MsgRate = 20
	}
	durs := []struct {
		v *time.Duration
		d time.Duration
	}{
		{&l.ResumeWindow, 6 * time.Second}, {&l.PingInterval, 2 * time.Second},
		{&l.PingTimeout, 3 * time.Second}, {&l.InviteTTL, 24 * time.Hour},
	}
	for _, x := range durs {
		if *x.v <= 0 {
			*x.v = x.d
		}
	}
	return l
}

// Params configures a Server.
type Params struct {
	SFU    *sfu.Server // required
	Logger *slog.Logger
	// Registerer receives the package's metrics (nil: unregistered).
	Registerer prometheus.Registerer
	// Secret signs invites; default random (invites die with the process).
	Secret []byte
	// ICEServers are given to clients for their peer connections.
	ICEServers []ICE
	// Voice lists the voice channels (names matching [a-z0-9-]{1,32}).
	Voice  []string
	Limits Limits
	// ClientIP returns the address a request comes from; default the
	// connection's remote address.
	ClientIP func(*http.Request) netip.Addr
	// OriginPatterns are the page origins (host patterns, as
	// websocket.AcceptOptions) besides the server's own that may open the
	// signalling WebSocket.
	OriginPatterns []string
	Now            func() time.Time
	// ChatDir keeps rooms' end-to-end encrypted chat history (sealed lines
	// only) across restarts; empty: in memory only.
	ChatDir string
}

// Server runs call rooms and voice channels: their membership, access and
// signalling, over the SFU's participants.
type Server struct {
	p   Params
	lim Limits
	log *slog.Logger
	m   *metrics
	now func() time.Time

	mu     sync.Mutex
	closed bool
	rooms  map[string]*room // by SFU room name
	// forgets counts the rooms forgotten: a room opened with a chat
	// history read before a forget may miss lines of the room forgotten.
	forgets uint64
	perIP   map[netip.Prefix]int
	wg      sync.WaitGroup
	voice   map[string]bool
	done    chan struct{}

	// Presence and ringing calls (presence.go, ringcalls.go). pmu is never
	// held while taking a room's lock.
	pmu     sync.Mutex
	devices map[string]map[string]*device // key → device id → device
	calls   map[string]*ringCall          // by call id
	tickets map[string]ticket             // ring calls' room invites, by nonce

	chats *chatStore // nil without Params.ChatDir
}

// New returns a Server.
func New(p Params) (*Server, error) {
	if p.SFU == nil {
		return nil, fmt.Errorf("%w: SFU is required", ErrBadParams)
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if len(p.Secret) == 0 {
		p.Secret = make([]byte, 32)
		_, _ = rand.Read(p.Secret)
	}
	if p.ClientIP == nil {
		p.ClientIP = func(r *http.Request) netip.Addr {
			ap, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil {
				return netip.Addr{}
			}
			return ap.Addr().Unmap()
		}
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	m, err := newMetrics(p.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		p: p, lim: p.Limits.withDefaults(), log: p.Logger, m: m, now: p.Now,
		rooms: map[string]*room{}, perIP: map[netip.Prefix]int{}, voice: map[string]bool{},
		done:    make(chan struct{}),
		devices: map[string]map[string]*device{}, calls: map[string]*ringCall{}, tickets: map[string]ticket{},
	}
	if p.ChatDir != "" {
		s.chats, err = openChatStore(p.ChatDir, s.lim.ChatHistory, DefaultChatRooms, DefaultChatMaxAge, p.Logger, m.chatCorrupt.Inc)
		if err != nil {
			return nil, err
		}
	}
	for _, v := range p.Voice {
		if !ValidChannel(v) {
			return nil, fmt.Errorf("%w: voice channel %q: want [a-z0-9-]{1,32}", ErrBadParams, v)
		}
		s.voice[v] = true
	}
	return s, nil
}

// NewRoomID returns a fresh call room id: 128 bits of randomness in base32
// (26 characters).
func NewRoomID() string { return rand.Text() }

// ValidRoomID reports whether id has the form of a call room id.
func ValidRoomID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for _, c := range id {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// ValidChannel reports whether name is a valid voice channel name.
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Channels returns the voice channels with who is in each.
func (s *Server) Channels() []ChannelInfo {
	names := make([]string, 0, len(s.voice))
	for v := range s.voice {
		names = append(names, v)
	}
	slices.Sort(names)
	out := make([]ChannelInfo, 0, len(names))
	for _, n := range names {
		out = append(out, s.Channel(n))
	}
	return out
}

// ChannelInfo is a voice channel as a passer-by sees it.
type ChannelInfo struct {
	Name    string   `json:"name"`
	Members []Member `json:"members"`
	// Speaking lists the members talking now.
	Speaking []string `json:"speaking"`
}

// Channel returns one voice channel's members.
func (s *Server) Channel(name string) ChannelInfo {
	ci := ChannelInfo{Name: name, Members: []Member{}, Speaking: []string{}}
	s.mu.Lock()
	r := s.rooms[voicePrefix+name]
	s.mu.Unlock()
	if r == nil {
		return ci
	}
	r.mu.Lock()
	ci.Members = r.membersLocked()
	r.mu.Unlock()
	if sr, ok := s.p.SFU.Room(r.name); ok {
		levels, th := sr.SpeakerLevels()
		for id, l := range levels {
			if l > th {
				ci.Speaking = append(ci.Speaking, id)
			}
		}
		slices.Sort(ci.Speaking)
	}
	return ci
}

// HasChannel reports whether name is a voice channel of the server.
func (s *Server) HasChannel(name string) bool { return s.voice[name] }

const (
	callPrefix  = "call."
	voicePrefix = "voice."
)

// Handler serves the signalling WebSockets: GET /call/{room}/ws, GET
// /voice/{channel}/ws and GET /presence/ws, and POST /call (a new room id,
// as JSON {"room": id}).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /presence/ws", s.servePresence)
	mux.HandleFunc("GET /call/{room}/ws", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("room")
		if !ValidRoomID(id) {
			s.refuse(w, http.StatusNotFound, "bad-room", "a call room id is 26 characters of A–Z and 2–7")
			return
		}
		s.serveWS(w, r, callPrefix+id, KindCall)
	})
	mux.HandleFunc("GET /voice/{channel}/ws", func(w http.ResponseWriter, r *http.Request) {
		ch := r.PathValue("channel")
		if !s.voice[ch] {
			s.refuse(w, http.StatusNotFound, "bad-room", "no such voice channel")
			return
		}
		s.serveWS(w, r, voicePrefix+ch, KindVoice)
	})
	mux.HandleFunc("POST /call", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "{\"room\":%q}\n", NewRoomID())
	})
	return mux
}

// Room kinds.
const (
	KindCall  = "call"
	KindVoice = "voice"
)

func (s *Server) refuse(w http.ResponseWriter, code int, reason, msg string) {
	s.m.refused.WithLabelValues(reason).Inc()
	http.Error(w, msg, code)
}

func addrKey(a netip.Addr) netip.Prefix {
	if !a.IsValid() {
		return netip.Prefix{}
	}
	bits := 32
	if a.Is6() && !a.Is4In6() {
		bits = 64
	}
	p, _ := a.Unmap().Prefix(bits)
	return p
}

// admitConn counts a new WebSocket against its address's cap (signalling
// and presence together), or refuses it. release undoes the count.
func (s *Server) admitConn(w http.ResponseWriter, addr netip.Addr) (release func(), ok bool) {
	key := addrKey(addr)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.refuse(w, http.StatusServiceUnavailable, "closed", "shutting down")
		return nil, false
	}
	if key.IsValid() && s.perIP[key] >= s.lim.PerAddress {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "5")
		s.refuse(w, http.StatusTooManyRequests, CodeTooMany, "too many signalling connections from this address")
		return nil, false
	}
	s.perIP[key]++
	s.wg.Add(1)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		if s.perIP[key]--; s.perIP[key] <= 0 {
			delete(s.perIP, key)
		}
		s.mu.Unlock()
		s.wg.Done()
	}, true
}

// accept admits and upgrades a WebSocket (signalling or presence) whose
// messages are at most limit bytes; release must follow its end.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, limit int64) (ws *websocket.Conn, release func(), ok bool) {
	release, ok = s.admitConn(w, s.p.ClientIP(r))
	if !ok {
		return nil, nil, false
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.p.OriginPatterns})
	if err != nil {
		s.m.refused.WithLabelValues("handshake").Inc()
		release()
		return nil, nil, false
	}
	ws.SetReadLimit(limit)
	return ws, release, true
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, name, kind string) {
	ws, release, ok := s.accept(w, r, MaxMessageBytes)
	if !ok {
		return
	}
	defer release()
	newConn(s, ws, name, kind, s.p.ClientIP(r)).run(r.Context())
}

// Close ends every room and connection and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.closeAll("server closing")
	}
	s.pmu.Lock()
	for _, rc := range s.calls {
		rc.ended = true
		if rc.timer != nil {
			rc.timer.Stop()
		}
	}
	s.pmu.Unlock()
	s.wg.Wait()
}

// room returns the room with this SFU name, opening it if allowed. A new
// room's chat history is read from disk outside the server's lock, so
// that a slow disk stalls only the joins of that room.
func (s *Server) room(name, kind string) (*room, string) {
	s.mu.Lock()
	r, code, done := s.roomLocked(name)
	forgets := s.forgets
	s.mu.Unlock()
	if done {
		return r, code
	}
	var chat []ChatLine
	if s.chats != nil {
		chat = s.chats.load(name, s.now())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, code, done := s.roomLocked(name); done {
		return r, code
	}
	if s.chats != nil && s.forgets != forgets {
		chat = s.chats.load(name, s.now()) // this room may be the one forgotten
	}
	r = newRoom(s, name, kind, chat)
	s.rooms[name] = r
	s.m.rooms.Inc()
	return r, ""
}

// roomLocked returns the open room of this name, or a refusal; done is
// false when the room may be opened.
func (s *Server) roomLocked(name string) (r *room, code string, done bool) {
	if s.closed {
		return nil, CodeServerFull, true
	}
	if r, ok := s.rooms[name]; ok {
		return r, "", true
	}
	if len(s.rooms) >= s.lim.Rooms {
		return nil, CodeServerFull, true
	}
	return nil, "", false
}

// forget removes an empty room.
func (s *Server) forget(r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.name] == r {
		delete(s.rooms, r.name)
		s.forgets++
		s.m.rooms.Dec()
	}
}

// idFor returns a fresh participant id.
func idFor() string { return strings.ToLower(rand.Text()[:16]) }
