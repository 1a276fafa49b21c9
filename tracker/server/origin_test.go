package server

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/tracker/protocol"
)

const testOriginSecret = "origin-secret-for-tests"

// joinOrigin dials and sends an origin join for stream with token.
func (tt *testTracker) joinOrigin(ctx context.Context, t *testing.T, stream, token string) *client {
	t.Helper()
	c := tt.dial(ctx, t)
	c.send(ctx, protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: stream, Token: token, Kind: protocol.KindOrigin})
	return c
}

// originWelcome joins as the origin and returns its welcome.
func (tt *testTracker) originWelcome(ctx context.Context, t *testing.T) (*client, *protocol.Welcome) {
	t.Helper()
	c := tt.joinOrigin(ctx, t, "demo", testOriginSecret)
	w, ok := c.recv(ctx).(*protocol.Welcome)
	if !ok {
		t.Fatal("origin got no welcome")
	}
	return c, w
}

func (tt *testTracker) rejected(reason string) float64 {
	return testutil.ToFloat64(tt.metrics.rejected.WithLabelValues(reason))
}

// waitRejected waits until the rejected count for reason reaches want.
func (tt *testTracker) waitRejected(ctx context.Context, t *testing.T, reason string, want float64) {
	t.Helper()
	waitFor(ctx, t, func() bool { return tt.rejected(reason) == want })
}

// locked calls f with the stream's lock held.
func (tt *testTracker) locked(name string, f func(st *stream)) {
	tt.srv.mu.Lock()
	st := tt.srv.streams[name]
	tt.srv.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	f(st)
}

// upstreams reads a viewer's upstreams from the stream's swarm.
func (tt *testTracker) upstreams(name string, id protocol.PeerID) (ups []protocol.PeerID) {
	tt.locked(name, func(st *stream) { ups = st.swarm.Upstreams(id) })
	return ups
}

// originBound reports whether the stream has an origin seed bound.
func (tt *testTracker) originBound(name string) (bound bool) {
	tt.locked(name, func(st *stream) { bound = st.origin != nil })
	return bound
}

// silent checks that c receives nothing for a moment. It ends c's
// connection (coder/websocket closes a connection whose read is cancelled),
// so it is a client's last check.
func (c *client) silent(ctx context.Context) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, data, err := c.ws.Read(ctx)
	if err == nil {
		c.t.Errorf("received %s, want nothing", data)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		c.t.Errorf("read: %v, want nothing until the deadline", err)
	}
}

func TestOriginJoinRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	off := newTestTracker(t, nil) // no OriginSecret: origin joins are off
	on := newTestTracker(t, func(p *Params) { p.OriginSecret = testOriginSecret })
	cases := []struct {
		name  string
		tt    *testTracker
		token string
	}{
		{"no secret configured, empty token", off, ""},
		{"no secret configured, some token", off, testOriginSecret},
		{"missing token", on, ""},
		{"wrong token", on, "origin-secret-for-test"},
		{"longer token", on, testOriginSecret + "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.tt.rejected("origin")
			cl := c.tt.joinOrigin(ctx, t, "demo", c.token)
			code, reason := cl.closed(ctx)
			if code != websocket.StatusPolicyViolation || reason != closeOrigin {
				t.Errorf("closed with %d %q, want %d %q", code, reason, websocket.StatusPolicyViolation, closeOrigin)
			}
			c.tt.waitRejected(ctx, t, "origin", before+1)
		})
	}
	// The secret does not open an unknown stream.
	cl := on.joinOrigin(ctx, t, "nope", testOriginSecret)
	if code, reason := cl.closed(ctx); code != websocket.StatusPolicyViolation || reason != closeUnknown {
		t.Errorf("origin join of an unknown stream: closed with %d %q", code, reason)
	}
	// It does open a private stream, without a viewer token.
	cl = on.joinOrigin(ctx, t, "private", testOriginSecret)
	if w, ok := cl.recv(ctx).(*protocol.Welcome); !ok || w.Peer != protocol.OriginPeer || w.Manifest != "/live/private/manifest" {
		t.Errorf("origin join of a private stream: %+v", w)
	}
}

// TestOriginSeed: the origin's seed binds as peer "origin"; viewers it feeds
// signal it and it answers; it cannot signal viewers it does not feed; when
// it goes, viewers keep their links and signals to it are dropped again.
func TestOriginSeed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ice := []protocol.ICEServer{{URLs: []string{"stun:stun.example.net:3478"}}}
	tt := newTestTracker(t, func(p *Params) {
		p.OriginSecret = testOriginSecret
		p.OriginSlots = 4 // one viewer's 4 substreams
		p.ICEServers = ice
	})
	offer := &protocol.SDP{Type: "offer", SDP: "v=0\r\no=offer\r\n"}
	answer := &protocol.SDP{Type: "answer", SDP: "v=0\r\no=answer\r\n"}

	a, aw := tt.join(ctx, t, 0)
	for _, u := range aw.Upstreams {
		if u.Peer != protocol.OriginPeer {
			t.Fatalf("first viewer's upstreams %+v, want the origin", aw.Upstreams)
		}
	}
	// No origin seed bound yet: a's signal to it goes nowhere.
	before := tt.rejected("signal_unroutable")
	a.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: protocol.OriginPeer, SDP: offer})
	tt.waitRejected(ctx, t, "signal_unroutable", before+1)

	o, ow := tt.originWelcome(ctx, t)
	if ow.Peer != protocol.OriginPeer || ow.V != protocol.ProtocolVersion || ow.PublicKey != testPub || ow.Manifest != "/live/demo/manifest" ||
		ow.Substreams != 4 || ow.Upstreams == nil || len(ow.Upstreams) != 0 || ow.Depth != 0 || ow.DelayMs != int(protocol.DefaultDelay.Milliseconds()) ||
		len(ow.ICEServers) != 1 || !slices.Equal(ow.ICEServers[0].URLs, ice[0].URLs) {
		t.Errorf("origin welcome %+v", ow)
	}
	// The origin seed is not a viewer.
	if got := testutil.ToFloat64(tt.metrics.joins.WithLabelValues("demo")); got != 1 {
		t.Errorf("joins metric %v, want 1 (the viewer)", got)
	}

	// a, fed by the origin, offers; the seed answers.
	a.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: protocol.OriginPeer, SDP: offer})
	got, ok := o.recv(ctx).(*protocol.Signal)
	if !ok || got.From != aw.Peer || got.To != "" || got.SDP == nil || *got.SDP != *offer {
		t.Fatalf("origin received %+v", got)
	}
	o.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: aw.Peer, SDP: answer})
	got, ok = a.recv(ctx).(*protocol.Signal)
	if !ok || got.From != protocol.OriginPeer || got.SDP == nil || *got.SDP != *answer {
		t.Fatalf("viewer received %+v", got)
	}
	mid := "0"
	o.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: aw.Peer, Candidate: &protocol.Candidate{Candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host", SDPMid: &mid}})
	if got, ok := a.recv(ctx).(*protocol.Signal); !ok || got.From != protocol.OriginPeer || got.Candidate == nil {
		t.Fatalf("viewer received %+v", got)
	}

	// b: the origin is full and a relays nothing, so b is on HTTP and not
	// linked with the origin either way.
	b, bw := tt.join(ctx, t, 0)
	for _, u := range bw.Upstreams {
		if u.Peer != "" {
			t.Fatalf("second viewer's upstreams %+v, want HTTP", bw.Upstreams)
		}
	}
	before = tt.rejected("signal_unlinked")
	o.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: bw.Peer, SDP: offer})
	tt.waitRejected(ctx, t, "signal_unlinked", before+1)
	b.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: protocol.OriginPeer, SDP: offer})
	tt.waitRejected(ctx, t, "signal_unlinked", before+2)

	// A report from the seed is allowed (and ignored); a signal behind it
	// still goes through, so the connection is open.
	o.send(ctx, protocol.Report{Type: protocol.TypeReport, BufferSec: 1})
	o.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: aw.Peer, SDP: answer})
	if got, ok := a.recv(ctx).(*protocol.Signal); !ok || got.From != protocol.OriginPeer {
		t.Fatalf("viewer received %+v", got)
	}
	if got := tt.rejected("signal_unlinked"); got != before+2 {
		t.Errorf("signal_unlinked %v, want %v", got, before+2)
	}
	b.silent(ctx) // neither the seed's offer nor anything else reached b

	// The seed leaves: it is unbound, a keeps the origin as its upstream
	// (no reassign) and its signals to it are dropped again.
	o.send(ctx, protocol.Leave{Type: protocol.TypeLeave})
	if code, reason := o.closed(ctx); code != websocket.StatusNormalClosure || reason != "bye" {
		t.Errorf("origin leave: closed with %d %q", code, reason)
	}
	waitFor(ctx, t, func() bool { return !tt.originBound("demo") })
	if ups := tt.upstreams("demo", aw.Peer); !slices.Equal(ups, []protocol.PeerID{protocol.OriginPeer, protocol.OriginPeer, protocol.OriginPeer, protocol.OriginPeer}) {
		t.Errorf("after the seed left, a's upstreams are %v", ups)
	}
	before = tt.rejected("signal_unroutable")
	a.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: protocol.OriginPeer, SDP: offer})
	tt.waitRejected(ctx, t, "signal_unroutable", before+1)
	a.silent(ctx)
}

// TestOriginReplaced: a second origin join takes the stream's seed over and
// closes the first; the first one's end does not unbind the second.
func TestOriginReplaced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.OriginSecret = testOriginSecret })
	first, _ := tt.originWelcome(ctx, t)
	second, w := tt.originWelcome(ctx, t)
	if w.Peer != protocol.OriginPeer {
		t.Fatalf("second origin welcome %+v", w)
	}
	if code, reason := first.closed(ctx); code != websocket.StatusPolicyViolation || reason != closeReplaced {
		t.Errorf("first origin closed with %d %q, want %d %q", code, reason, websocket.StatusPolicyViolation, closeReplaced)
	}
	waitFor(ctx, t, func() bool { // the first connection is finished
		tt.srv.mu.Lock()
		defer tt.srv.mu.Unlock()
		return len(tt.srv.conns) == 1
	})
	if !tt.originBound("demo") {
		t.Fatal("the first seed's end unbound the second")
	}
	v, vw := tt.join(ctx, t, 0)
	offer := &protocol.SDP{Type: "offer", SDP: "v=0\r\n"}
	v.send(ctx, protocol.Signal{Type: protocol.TypeSignal, To: protocol.OriginPeer, SDP: offer})
	if got, ok := second.recv(ctx).(*protocol.Signal); !ok || got.From != vw.Peer || got.SDP == nil || *got.SDP != *offer {
		t.Fatalf("second origin received %+v", got)
	}
}

// TestDepth: welcomes and reassigns carry the viewer's deepest hop count.
func TestDepth(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) {
		p.OriginSlots = 4 // one viewer's 4 substreams
		// A relay believed at once (one on probation serves a viewer one
		// substream only).
		p.Swarm.Trusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	relay, rw := tt.join(ctx, t, 10_000) // fed by the origin
	if rw.Depth != 1 {
		t.Errorf("first viewer's depth %d, want 1", rw.Depth)
	}
	down, dw := tt.join(ctx, t, 0) // the origin is full: fed by the relay
	for _, u := range dw.Upstreams {
		if u.Peer != rw.Peer {
			t.Fatalf("second viewer's upstreams %+v, want the relay %s", dw.Upstreams, rw.Peer)
		}
	}
	if dw.Depth != 2 {
		t.Errorf("second viewer's depth %d, want 2", dw.Depth)
	}
	// The relay goes: down moves to the origin, at depth 1.
	relay.send(ctx, protocol.Leave{Type: protocol.TypeLeave})
	for range dw.Upstreams {
		r, ok := down.recv(ctx).(*protocol.Reassign)
		if !ok || r.Peer != protocol.OriginPeer || r.Depth != 1 {
			t.Fatalf("reassign %+v, want the origin at depth 1", r)
		}
	}
}

// TestDepthHTTP: a viewer with every substream on HTTP is at depth 1.
func TestDepthHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.OriginSlots = 4 })
	tt.join(ctx, t, 0)
	_, w := tt.join(ctx, t, 0)
	if w.Depth != 1 || w.Upstreams[0].Peer != "" {
		t.Errorf("viewer on HTTP: depth %d, upstreams %+v; want depth 1 on HTTP", w.Depth, w.Upstreams)
	}
}
