package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
)

const testPub = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

type testTracker struct {
	srv     *Server
	url     string
	metrics *Metrics
	tokens  *TokenIssuer
	now     time.Time    // the virtual clock's start
	elapsed atomic.Int64 // ... and how far it moved (advance)
}

// advance moves the tracker's virtual clock (Params.Now) on.
func (tt *testTracker) advance(d time.Duration) { tt.elapsed.Add(int64(d)) }

func newTestTracker(t *testing.T, mod func(*Params)) *testTracker {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := NewTokenIssuer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	tt := &testTracker{metrics: m, tokens: tokens, now: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)}
	p := Params{
		Metrics: m, Tokens: tokens, Seed: 1,
		Streams: StreamsFunc(func(name string) (StreamInfo, bool) {
			switch name {
			case "demo":
				return StreamInfo{PublicKey: testPub, Manifest: "/live/demo/manifest", BitrateKbps: 1000}, true
			case "private":
				return StreamInfo{PublicKey: testPub, Manifest: "/live/private/manifest", BitrateKbps: 1000, Private: true}, true
			}
			return StreamInfo{}, false
		}),
		Swarm:       tracker.SwarmParams{Substreams: 4},
		OriginSlots: 8,
		Now:         func() time.Time { return tt.now.Add(time.Duration(tt.elapsed.Load())) },
	}
	if mod != nil {
		mod(&p)
	}
	srv, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	tt.srv, tt.url = srv, "ws"+strings.TrimPrefix(hs.URL, "http")
	return tt
}

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

func (tt *testTracker) dial(ctx context.Context, t *testing.T) *client {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, tt.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (c *client) sendRaw(ctx context.Context, s string) {
	c.t.Helper()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(ctx context.Context, v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	c.sendRaw(ctx, string(b))
}

func (c *client) recv(ctx context.Context) any {
	c.t.Helper()
	_, data, err := c.ws.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	m, err := protocol.DecodeServer(data)
	if err != nil {
		c.t.Fatalf("decode %s: %v", data, err)
	}
	return m
}

// closed waits for the tracker to close the connection and returns the code
// and reason.
func (c *client) closed(ctx context.Context) (websocket.StatusCode, string) {
	c.t.Helper()
	for {
		_, _, err := c.ws.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Reason
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

func (tt *testTracker) join(ctx context.Context, t *testing.T, budget int) (*client, *protocol.Welcome) {
	t.Helper()
	c := tt.dial(ctx, t)
	c.send(ctx, protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: "demo", BudgetKbps: budget, Kind: protocol.KindNative})
	w, ok := c.recv(ctx).(*protocol.Welcome)
	if !ok {
		t.Fatal("no welcome")
	}
	return c, w
}

func TestJoinWelcome(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, nil)
	_, w := tt.join(ctx, t, 0)
	if !protocol.ValidPeerID(w.Peer) || w.Peer == protocol.OriginPeer || w.PublicKey != testPub || w.Manifest != "/live/demo/manifest" || w.Substreams != 4 {
		t.Errorf("welcome %+v", w)
	}
	for i, u := range w.Upstreams {
		if u.Substream != i || u.Peer != protocol.OriginPeer {
			t.Errorf("first viewer's upstream %d: %+v, want the origin", i, u)
		}
	}
	_, w2 := tt.join(ctx, t, 0)
	if w2.Peer == w.Peer {
		t.Error("two peers with one id")
	}
	if got := testutil.ToFloat64(tt.metrics.joins.WithLabelValues("demo")); got != 2 {
		t.Errorf("joins metric %v", got)
	}
}

// Peers relay signaling only to peers they are linked with; an upstream
// leaving gets its downstreams reassigned.
func TestSignalingAndReassign(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.OriginSlots = 4 }) // the origin serves one viewer's 4 substreams
	up, upW := tt.join(ctx, t, 10_000)                             // a strong relay, fed by the origin
	down, downW := tt.join(ctx, t, 0)                              // the origin is full: fed by up
	other, otherW := tt.join(ctx, t, 0)
	linked := false
	for _, u := range downW.Upstreams {
		linked = linked || u.Peer == upW.Peer
	}
	if !linked {
		t.Fatalf("second viewer not fed by the relay: %+v", downW.Upstreams)
	}
	offer := &protocol.SDP{Type: "offer", SDP: "v=0\r\n"}
	down.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: upW.Peer, SDP: offer})
	got, ok := up.recv(ctx).(*protocol.Signal)
	if !ok || got.From != downW.Peer || got.SDP == nil || got.SDP.SDP != offer.SDP {
		t.Fatalf("relayed signal %+v", got)
	}
	// A viewer that is not linked with up cannot signal it. (other may be
	// linked with up too; then it signals down, with which it is not linked.)
	target := upW.Peer
	for _, u := range otherW.Upstreams {
		if u.Peer == upW.Peer {
			target = downW.Peer
		}
	}
	before := testutil.ToFloat64(tt.metrics.rejected.WithLabelValues("signal_unlinked"))
	other.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: target, SDP: offer})
	other.send(ctx, protocol.Report{Type: protocol.TypeReport}) // a round trip through other's loop
	waitFor(ctx, t, func() bool {
		return testutil.ToFloat64(tt.metrics.rejected.WithLabelValues("signal_unlinked")) == before+1
	})
	// up leaves: down is reassigned on every substream up served it.
	up.send(ctx, protocol.Leave{Type: protocol.TypeLeave})
	want := 0
	for _, u := range downW.Upstreams {
		if u.Peer == upW.Peer {
			want++
		}
	}
	for i := 0; i < want; i++ {
		r, ok := down.recv(ctx).(*protocol.Reassign)
		if !ok || r.Peer == upW.Peer || r.Peer == downW.Peer || r.Reason != "upstream-left" {
			t.Fatalf("reassign %+v", r)
		}
	}
	_ = other
}

func waitFor(ctx context.Context, t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met before the deadline")
		case <-time.After(time.Millisecond):
		}
	}
}

func TestRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.MessageRate, p.MessageBurst = 1, 5 })
	expired := tt.tokens.Issue("private", tt.now.Add(-time.Second))
	valid := tt.tokens.Issue("private", tt.now.Add(time.Hour))
	otherStream := tt.tokens.Issue("demo", tt.now.Add(time.Hour))
	join := func(stream, token string) string {
		b, _ := json.Marshal(protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: stream, Token: token, Kind: protocol.KindBrowser})
		return string(b)
	}
	cases := []struct {
		name   string
		send   []string
		binary bool
		code   websocket.StatusCode
		reason string
		metric string
	}{
		{"not json", []string{"{"}, false, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"unknown type", []string{`{"type":"hello"}`}, false, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"unknown field", []string{`{"type":"join","v":1,"stream":"demo","kind":"native","admin":true}`}, false, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"old version", []string{`{"type":"join","v":0,"stream":"demo","kind":"native"}`}, false, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"binary", []string{"\x00\x01"}, true, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"signal before join", []string{`{"type":"signal","to":"origin","candidate":{"candidate":"x"}}`}, false, websocket.StatusPolicyViolation, "join first", "join_first"},
		{"oversized", []string{`{"type":"join","region":"` + strings.Repeat("a", protocol.MaxMessageBytes) + `"}`}, false, websocket.StatusMessageTooBig, "", "too_big"},
		{"unknown stream", []string{join("nope", "")}, false, websocket.StatusPolicyViolation, "unknown stream", "unknown_stream"},
		{"private, no token", []string{join("private", "")}, false, websocket.StatusPolicyViolation, "viewer token refused", "token"},
		{"private, expired token", []string{join("private", expired)}, false, websocket.StatusPolicyViolation, "viewer token refused", "token"},
		{"private, other stream's token", []string{join("private", otherStream)}, false, websocket.StatusPolicyViolation, "viewer token refused", "token"},
		{"join twice", []string{join("demo", ""), join("demo", "")}, false, websocket.StatusPolicyViolation, "joined already", "join_twice"},
		{"signal with from", []string{join("demo", ""), `{"type":"signal","to":"origin","from":"origin","candidate":{"candidate":"x"}}`}, false, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"unknown complaint reason", []string{join("demo", ""), `{"type":"report","complaint":{"peer":"origin","reason":"rude"}}`}, false, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"relay budget above the limit", []string{join("demo", ""), `{"type":"report","relayKbps":10000001}`}, false, websocket.StatusPolicyViolation, "bad message", "bad_message"},
		{"upload above the limit", []string{join("demo", ""), `{"type":"report","uploadKbps":10000001}`}, false, websocket.StatusPolicyViolation, "bad message: tracker: bad message: report: upload", "bad_message"},
		{"an hour buffered", []string{join("demo", ""), `{"type":"report","bufferSec":3600}`}, false, websocket.StatusPolicyViolation, "bad message: tracker: bad message: report: buffer", "bad_message"},
		{"a receipt twice", []string{join("demo", ""), `{"type":"report","received":[{"peer":"origin","bytes":1},{"peer":"origin","bytes":1}]}`}, false, websocket.StatusPolicyViolation, "bad message: tracker: bad message: report: two receipts", "bad_message"},
		{"rate", []string{join("demo", ""), `{"type":"report"}`, `{"type":"report"}`, `{"type":"report"}`, `{"type":"report"}`, `{"type":"report"}`, `{"type":"report"}`, `{"type":"report"}`}, false, websocket.StatusPolicyViolation, "too many messages", "rate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := testutil.ToFloat64(tt.metrics.rejected.WithLabelValues(c.metric))
			cl := tt.dial(ctx, t)
			typ := websocket.MessageText
			if c.binary {
				typ = websocket.MessageBinary
			}
			for _, m := range c.send {
				if err := cl.ws.Write(ctx, typ, []byte(m)); err != nil {
					break // the tracker may close before the last one
				}
			}
			code, reason := cl.closed(ctx)
			if code != c.code || !strings.HasPrefix(reason, c.reason) {
				t.Errorf("closed with %d %q, want %d %q", code, reason, c.code, c.reason)
			}
			// The count may land just after the close frame (coder/websocket
			// closes over-long messages itself).
			waitFor(ctx, t, func() bool {
				return testutil.ToFloat64(tt.metrics.rejected.WithLabelValues(c.metric)) == before+1
			})
		})
	}
	// A valid token lets the viewer in.
	cl := tt.dial(ctx, t)
	cl.sendRaw(ctx, join("private", valid))
	if _, ok := cl.recv(ctx).(*protocol.Welcome); !ok {
		t.Error("valid token refused")
	}
}

func TestJoinTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.JoinTimeout = 100 * time.Millisecond })
	cl := tt.dial(ctx, t)
	if code, reason := cl.closed(ctx); code != websocket.StatusPolicyViolation || reason != "join first" {
		t.Errorf("closed with %d %q", code, reason)
	}
}

func TestConnectionsPerIP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.MaxConnsPerIP = 2 })
	tt.join(ctx, t, 0)
	tt.join(ctx, t, 0)
	_, resp, err := websocket.Dial(ctx, tt.url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("third connection: %v %v", resp, err)
	}
}

// TestGeoAssignment: viewers reach the tracker through a trusted proxy, which
// names their addresses in X-Forwarded-For; with a GeoIP database, each gets
// upstreams in its own city.
func TestGeoAssignment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	geo := openTestGeo(t, GeoParams{CityDB: testCityDB(t, "GeoLite2-City")})
	tt := newTestTracker(t, func(p *Params) {
		p.Geo = geo
		p.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		// Proximity alone decides, among relays believed at once.
		p.Swarm = tracker.SwarmParams{Substreams: 4, MinUpstreams: 1, MaxUpstreams: 1,
			Trusted: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24")}}
		p.OriginSlots = 8
	})
	joinFrom := func(ip string, budget int) *protocol.Welcome {
		ws, _, err := websocket.Dial(ctx, tt.url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {ip}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		c := &client{t: t, ws: ws}
		c.send(ctx, protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: "demo", BudgetKbps: budget, Kind: protocol.KindNative})
		w, ok := c.recv(ctx).(*protocol.Welcome)
		if !ok {
			t.Fatal("no welcome")
		}
		return w
	}
	paris := joinFrom("192.0.2.10", 10_000)
	tokyo := joinFrom("198.51.100.10", 10_000)
	for _, v := range []struct {
		ip   string
		want protocol.PeerID
	}{{"198.51.100.20", tokyo.Peer}, {"192.0.2.20", paris.Peer}, {"198.51.100.30", tokyo.Peer}} {
		w := joinFrom(v.ip, 0)
		for _, u := range w.Upstreams {
			if u.Peer != v.want {
				t.Errorf("viewer at %s: substream %d from %s, want the relay in its city %s", v.ip, u.Substream, u.Peer, v.want)
			}
		}
	}
}

// TestPendingToHTTPAndBack: with the origin full, a viewer starts on HTTP
// (empty upstreams); once a slot frees, the periodic rebalance gives it an
// upstream with reason "pending".
func TestPendingToHTTPAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) {
		p.OriginSlots = 4 // one viewer's worth
		p.RebalanceEvery = 10 * time.Millisecond
	})
	a, _ := tt.join(ctx, t, 0)
	b, w := tt.join(ctx, t, 0)
	for _, u := range w.Upstreams {
		if u.Peer != "" {
			t.Fatalf("second viewer got %+v with the origin full; want HTTP (empty peer)", u)
		}
	}
	a.send(ctx, protocol.Leave{Type: protocol.TypeLeave})
	got := map[int]bool{}
	for len(got) < 4 {
		r, ok := b.recv(ctx).(*protocol.Reassign)
		if !ok || r.Peer != protocol.OriginPeer || r.Reason != "pending" {
			t.Fatalf("reassign %+v", r)
		}
		got[r.Substream] = true
	}
}

func TestPeerIDs(t *testing.T) {
	seen := map[protocol.PeerID]bool{}
	for i := 0; i < 1000; i++ {
		id := newPeerID()
		if !protocol.ValidPeerID(id) || id == protocol.OriginPeer || seen[id] {
			t.Fatalf("peer id %q", id)
		}
		seen[id] = true
	}
}

// peerSlots reads the relay slots the stream's viewers offer.
func (tt *testTracker) peerSlots(name string) (n int) {
	tt.locked(name, func(st *stream) { n = st.swarm.Stats().PeerSlots })
	return n
}

// A report's relayKbps sets the relay budget in force: it may cut the budget
// the viewer joined with, restore it and raise it (the user moved the
// slider); the slots still follow probation and measured delivery.
func TestReportRelayKbps(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// 1000 kbps in 4 substreams: a slot is 250 kbps.
	tt := newTestTracker(t, func(p *Params) { p.OriginSlots = 4; p.RebalanceEvery = time.Hour })
	up, upW := tt.join(ctx, t, 1000) // 4 slots, fed by the origin
	down, downW := tt.join(ctx, t, 0)
	served := 0
	for _, u := range downW.Upstreams {
		if u.Peer == upW.Peer {
			served++
		}
	}
	if served == 0 || tt.peerSlots("demo") != 4 {
		t.Fatalf("down not fed by up (%+v), or %d slots", downW.Upstreams, tt.peerSlots("demo"))
	}
	relay := func(kbps int) { up.send(ctx, protocol.Report{Type: protocol.TypeReport, RelayKbps: &kbps}) }

	// The RTT guard cuts relay: down moves off up, to HTTP (the origin is full).
	relay(0)
	for range served {
		r, ok := down.recv(ctx).(*protocol.Reassign)
		if !ok || r.Reason != string(tracker.ReasonBudget) || r.Peer != "" {
			t.Fatalf("reassign %+v, want one to HTTP for the budget", r)
		}
	}
	if n := tt.peerSlots("demo"); n != 0 {
		t.Fatalf("%d slots after the cut", n)
	}

	// A report above the join budget is taken; a peer on probation still
	// serves one copy's worth (K slots) until its delivery is measured.
	relay(100_000)
	r, ok := down.recv(ctx).(*protocol.Reassign)
	if !ok || r.Reason != string(tracker.ReasonPending) || r.Peer != upW.Peer {
		t.Fatalf("reassign %+v, want up again", r)
	}
	waitFor(ctx, t, func() bool { return tt.peerSlots("demo") != 0 })
	if n := tt.peerSlots("demo"); n != 4 {
		t.Fatalf("%d slots after a report of 100000 kbps, want probation's 4", n)
	}

	// Reports without relayKbps leave the budget alone; a lower one cuts part.
	up.send(ctx, protocol.Report{Type: protocol.TypeReport, BufferSec: 3})
	relay(500)
	waitFor(ctx, t, func() bool { return tt.peerSlots("demo") == 2 })
}

// TestPingOnlyClient: a joined client that only pings (standard WebSocket
// keepalive) stays connected past the 10 s message deadline and gets every
// pong; one that floods pings is closed for its rate.
func TestPingOnlyClient(t *testing.T) {
	if testing.Short() {
		t.Skip("14 s of pings")
	}
	tt := newTestTracker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _ := tt.join(ctx, t, 0)
	rctx := c.ws.CloseRead(ctx) // reads control frames (pongs) in the background
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := range 14 {
		<-tick.C
		pctx, pcancel := context.WithTimeout(rctx, 3*time.Second)
		err := c.ws.Ping(pctx)
		pcancel()
		if err != nil {
			t.Fatalf("ping %d (after %d s): %v", i, i+1, err)
		}
	}

	flood, _ := tt.join(ctx, t, 0)
	fctx := flood.ws.CloseRead(ctx)
	for range 200 {
		pctx, pcancel := context.WithTimeout(fctx, time.Second)
		err := flood.ws.Ping(pctx)
		pcancel()
		if err != nil {
			break
		}
	}
	select {
	case <-fctx.Done(): // the tracker closed it
	case <-time.After(3 * time.Second):
		t.Error("200 pings at once: still connected")
	}
}

// TestKeepalive: on the tracker's clock, a joined client that sends nothing
// is pinged after 25 s of silence; one that answers stays connected (60 s
// here, and on), one that does not is closed after 75 s, 1008 "idle".
func TestKeepalive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.RebalanceEvery = 5 * time.Millisecond }) // keepalive checked that often
	live, lw := tt.join(ctx, t, 0)
	live.ws.CloseRead(ctx)         // reads in the background: answers pings
	mute, mw := tt.join(ctx, t, 0) // never reads: answers nothing
	conn := func(id protocol.PeerID) (pc *peerConn) {
		tt.locked("demo", func(st *stream) { pc = st.peers[id] })
		return pc
	}
	lpc, mpc := conn(lw.Peer), conn(mw.Peer)
	seen := func(pc *peerConn) time.Duration { return time.Duration(pc.seen.Load() - tt.now.UnixNano()) }
	pings := func() float64 { return testutil.ToFloat64(tt.metrics.pings) }
	for step := 1; step <= 6; step++ {
		tt.advance(10 * time.Second)
		at := time.Duration(step) * 10 * time.Second
		if at == 30*time.Second || at == 60*time.Second {
			// Silent for 25 s or more: pinged, and the pong came back.
			waitFor(ctx, t, func() bool { return seen(lpc) == at })
		}
	}
	waitFor(ctx, t, func() bool { return pings() >= 4 }) // both, at 30 s and at 60 s
	if lpc.isClosed() || mpc.isClosed() || seen(mpc) != 0 {
		t.Fatalf("at 60 s: live closed %v, mute closed %v (seen at %v)", lpc.isClosed(), mpc.isClosed(), seen(mpc))
	}
	tt.advance(20 * time.Second) // 80 s: the mute one has been silent for over 75 s
	// (Reading now would answer the pings queued to it: wait for the close.)
	waitFor(ctx, t, mpc.isClosed)
	if code, reason := mute.closed(ctx); code != websocket.StatusPolicyViolation || reason != closeIdle {
		t.Errorf("silent client closed with %d %q, want %d %q", code, reason, websocket.StatusPolicyViolation, closeIdle)
	}
	waitFor(ctx, t, func() bool { return testutil.ToFloat64(tt.metrics.rejected.WithLabelValues("idle")) == 1 })
	if lpc.isClosed() {
		t.Error("the client that answers pings was closed")
	}
}

// TestWelcomeDelay: every welcome, a viewer's and the seed's, carries the
// swarm's playback delay; a delay the swarm cannot keep fails New, not the
// first join.
func TestWelcomeDelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.Swarm.Delay, p.OriginSecret = 5*time.Second, testOriginSecret })
	_, w := tt.join(ctx, t, 1000)
	_, ow := tt.originWelcome(ctx, t)
	if w.DelayMs != 5000 || ow.DelayMs != 5000 {
		t.Errorf("welcomes give delays of %d and %d ms, want 5000", w.DelayMs, ow.DelayMs)
	}
	for _, d := range []time.Duration{100 * time.Millisecond, time.Minute} {
		_, err := New(Params{Streams: StreamsFunc(func(string) (StreamInfo, bool) { return StreamInfo{}, false }), Swarm: tracker.SwarmParams{Delay: d}})
		if !errors.Is(err, tracker.ErrBadParams) {
			t.Errorf("a %v delay: err %v, want tracker.ErrBadParams", d, err)
		}
	}
}
