package server

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// TestDashboard: the dashboard sums what viewers report, those gone
// included; counters never go back; rates come from the samples taken at
// each rebalance tick; the figures reach /metrics.
func TestDashboard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tt := newTestTracker(t, func(p *Params) { p.RebalanceEvery = time.Hour })
	a, _ := tt.join(ctx, t, 1000)
	b := tt.dial(ctx, t)
	b.send(ctx, protocol.Join{Type: protocol.TypeJoin, V: 1, Stream: "demo", Kind: protocol.KindBrowser})
	if _, ok := b.recv(ctx).(*protocol.Welcome); !ok {
		t.Fatal("no welcome")
	}
	st := func() *stream {
		tt.srv.mu.Lock()
		defer tt.srv.mu.Unlock()
		return tt.srv.streams["demo"]
	}()
	sample := func() {
		st.mu.Lock()
		st.sampleLocked(tt.srv.p.Now())
		st.mu.Unlock()
	}
	report := func(c *client, r protocol.Report) {
		r.Type = protocol.TypeReport
		c.send(ctx, r)
	}
	sample()
	report(a, protocol.Report{BytesFromPeers: 1_000_000, BytesFromOrigin: 250_000, BytesFromSeed: 200_000, ChunksOnTime: 99, ChunksLate: 1, LatencyMs: 300})
	report(b, protocol.Report{BytesFromPeers: 500_000, BytesFromOrigin: 0, ChunksOnTime: 50, LatencyMs: 700})
	waitFor(ctx, t, func() bool { d, _ := tt.srv.Dashboard("demo"); return d.ChunksOnTime == 149 })
	tt.advance(2 * time.Second)
	sample()
	d, ok := tt.srv.Dashboard("demo")
	if !ok || d.Viewers != 2 || d.Browsers != 1 || d.Natives != 1 {
		t.Fatalf("dashboard %+v", d)
	}
	// 1.5 MB from peers and 250 kB from the server in 2 s.
	if len(d.History) != 1 || d.History[0].PeerKbps != 6000 || d.History[0].ServerKbps != 1000 || d.PeerKbps != 6000 {
		t.Errorf("history %+v, peer rate %v", d.History, d.PeerKbps)
	}
	if d.BytesFromPeers != 1_500_000 || d.BytesFromOrigin != 250_000 || d.BytesFromSeed != 200_000 || d.Continuity != 149.0/150 || d.RecentContinuity != 149.0/150 {
		t.Errorf("totals %+v", d)
	}
	// The recent continuity is over the last minute of samples: a start-up
	// with late chunks leaves it once a minute of on-time play follows.
	for range int(recentWindow / (2 * time.Second)) {
		report(a, protocol.Report{BytesFromPeers: 1_000_000, BytesFromOrigin: 250_000, BytesFromSeed: 200_000, ChunksOnTime: 99 + 10*uint64(len(d.History)), ChunksLate: 1, LatencyMs: 300})
		want := 99 + 10*uint64(len(d.History))
		waitFor(ctx, t, func() bool { d, _ := tt.srv.Dashboard("demo"); return d.ChunksOnTime == want+50 })
		tt.advance(2 * time.Second)
		sample()
		d, _ = tt.srv.Dashboard("demo")
	}
	if d.RecentContinuity != 1 || d.Continuity >= 1 {
		t.Errorf("after a minute on time: recent continuity %v (want 1), overall %v (want below 1)", d.RecentContinuity, d.Continuity)
	}

	if d.LatencyP50Ms != 700 || d.DepthMean <= 0 {
		t.Errorf("latency %v, depth %v", d.LatencyP50Ms, d.DepthMean)
	}
	// A report that says less does not undo what was counted; a viewer
	// that leaves stays counted.
	report(b, protocol.Report{BytesFromPeers: 10})
	_ = b.ws.Close(websocket.StatusNormalClosure, "bye")
	waitFor(ctx, t, func() bool { d, _ := tt.srv.Dashboard("demo"); return d.Viewers == 1 })
	if after, _ := tt.srv.Dashboard("demo"); after.BytesFromPeers != 1_500_000 || after.ChunksOnTime != d.ChunksOnTime {
		t.Errorf("after b left: %+v", after)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tt.srv.AudienceCollector())
	if v := testutil.ToFloat64(prometheusSeries(t, reg, "seedcast_audience_bytes_total", "peers")); v != 1_500_000 {
		t.Errorf("seedcast_audience_bytes_total{source=peers} = %v", v)
	}
	if _, ok := tt.srv.Dashboard("nobody-joined"); ok {
		t.Error("a dashboard for a stream with no swarm")
	}
}

// prometheusSeries returns the one series of a family whose labels include
// value, as a collector ToFloat64 can read.
func prometheusSeries(t *testing.T, reg *prometheus.Registry, family, value string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetValue() == value {
					v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
					return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return v })
				}
			}
		}
	}
	t.Fatalf("no %s{…%q…}", family, value)
	return nil
}
