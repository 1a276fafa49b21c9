package server

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// viewer is a client that keeps its upstreams up to date from its welcome
// and the reassigns that follow (a goroutine reads them).
type viewer struct {
	*client
	id    protocol.PeerID
	mu    sync.Mutex
	ups   []protocol.PeerID
	total uint64 // media received in all, as its reports say
}

func (v *viewer) upstreams() []protocol.PeerID {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]protocol.PeerID(nil), v.ups...)
}

// joinFrom joins stream demo as a native viewer from address ip (the test
// tracker trusts loopback proxies' X-Forwarded-For).
func (tt *testTracker) joinFrom(ctx context.Context, t *testing.T, ip string, budget int) *viewer {
	t.Helper()
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
	v := &viewer{client: c, id: w.Peer, ups: make([]protocol.PeerID, w.Substreams)}
	for _, u := range w.Upstreams {
		v.ups[u.Substream] = u.Peer
	}
	go func() {
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return
			}
			if r, ok := mustDecode(data).(*protocol.Reassign); ok && r.Substream < len(v.ups) {
				v.mu.Lock()
				v.ups[r.Substream] = r.Peer
				v.mu.Unlock()
			}
		}
	}()
	return v
}

func mustDecode(data []byte) any {
	m, err := protocol.DecodeServer(data)
	if err != nil {
		return nil
	}
	return m
}

// TestSybilsOverWebSockets: ten identities from one address, claiming the
// largest budget the wire allows, join early among 40 honest viewers (each
// from an address in a /24 of its own, through a trusted proxy) and forward
// nothing. What the clients are told (welcomes, reassigns) never gives a
// viewer more than one substream from that address, nor fewer than two
// upstreams off it beside one; after rounds of reports (receipts from the
// honest, nothing and stalls for the sybils) the sybils serve nothing, and
// fresh joiners get nothing from them.
func TestSybilsOverWebSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) {
		p.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		p.OriginSlots = 16
		p.RebalanceEvery = 20 * time.Millisecond
	})
	var honest, sybils []*viewer
	sybil := map[protocol.PeerID]bool{}
	joinHonest := func(n int) {
		for range n {
			j := len(honest) + 1
			honest = append(honest, tt.joinFrom(ctx, t, fmt.Sprintf("10.%d.%d.1", j/256, j%256), []int{0, 1000, 2000, 0, 2000}[j%5]))
		}
	}
	check := func(when string, vs []*viewer) {
		t.Helper()
		for _, v := range vs {
			in, others := 0, map[protocol.PeerID]bool{}
			for _, u := range v.upstreams() {
				switch {
				case sybil[u]:
					in++
				case u == "":
					others[protocol.OriginPeer] = true // HTTP: the origin
				default:
					others[u] = true
				}
			}
			if in > 1 || in > 0 && len(others) < 2 {
				t.Fatalf("%s: %s has %d substreams from the sybils' address, %d upstreams off it: %v", when, v.id, in, len(others), v.upstreams())
			}
		}
	}
	joinHonest(5)
	for range 10 {
		v := tt.joinFrom(ctx, t, "203.0.113.7", protocol.MaxBudgetKbps)
		sybils = append(sybils, v)
		sybil[v.id] = true
	}
	joinHonest(35)
	check("after the joins", honest)

	// settled waits until every honest viewer's view is the swarm's.
	settled := func() {
		t.Helper()
		waitFor(ctx, t, func() bool {
			var views [][]protocol.PeerID
			for _, v := range honest {
				views = append(views, v.upstreams())
			}
			ok := true
			tt.locked("demo", func(st *stream) {
				for i, v := range honest {
					if fmt.Sprint(st.swarm.Upstreams(v.id)) != fmt.Sprint(views[i]) {
						ok = false
						return
					}
				}
			})
			return ok
		})
	}
	const slotBps = 1000 * 1000 / 8 / 4 // 1000 kbit/s in 4 substreams
	reports := func() float64 { return testutil.ToFloat64(tt.metrics.reports) }
	for round := range 20 {
		tt.advance(2 * time.Second)
		before := reports()
		for _, v := range honest {
			r := protocol.Report{Type: protocol.TypeReport, BufferSec: 4, RTTms: 40}
			v.total += 4 * slotBps * 2
			r.BytesFromPeers = v.total
			got := map[protocol.PeerID]uint64{}
			for _, u := range v.upstreams() {
				if u != "" && u != protocol.OriginPeer {
					got[u] += 0
					if !sybil[u] {
						got[u] += slotBps * 2
					}
				}
			}
			for u, b := range got {
				r.Received = append(r.Received, protocol.Receipt{Peer: u, Bytes: b})
				if sybil[u] {
					r.Stalled = append(r.Stalled, u)
				}
			}
			v.send(ctx, r)
		}
		for _, v := range sybils {
			v.send(ctx, protocol.Report{Type: protocol.TypeReport, BufferSec: protocol.MaxBufferSec, UploadKbps: protocol.MaxBudgetKbps, RTTms: 1})
		}
		// Every report taken (a round trip on each connection: the
		// tracker handles a connection's messages in order).
		waitFor(ctx, t, func() bool { return reports() == before+float64(len(honest)+len(sybils)) })
		settled()
		check(fmt.Sprint("round ", round), honest)
	}
	tt.locked("demo", func(st *stream) {
		for _, v := range sybils {
			if d := st.swarm.Downstreams(v.id); len(d) != 0 {
				t.Errorf("sybil %s still serves %d links", v.id, len(d))
			}
		}
	})
	var fresh []*viewer
	for j := range 6 {
		fresh = append(fresh, tt.joinFrom(ctx, t, fmt.Sprintf("10.9.%d.1", j), 0))
	}
	for _, v := range fresh {
		for _, u := range v.upstreams() {
			if sybil[u] {
				t.Errorf("fresh joiner %s got a substream from sybil %s: %v", v.id, u, v.upstreams())
			}
		}
	}
	if n := testutil.ToFloat64(tt.metrics.rejected.WithLabelValues("bad_message")); n != 0 {
		t.Errorf("%v messages refused", n)
	}
}
