package server

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the tracker does. A nil *Metrics counts nothing.
type Metrics struct {
	peers       *prometheus.GaugeVec
	joins       *prometheus.CounterVec
	assignments *prometheus.CounterVec
	depth       prometheus.Histogram
	rejected    *prometheus.CounterVec
	signals     prometheus.Counter
	pings       prometheus.Counter
	reports     prometheus.Counter
}

// NewMetrics registers the tracker's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		peers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seedcast_tracker_peers", Help: "Peers joined, by stream.",
		}, []string{"stream"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_tracker_joins_total", Help: "Joins accepted, by stream.",
		}, []string{"stream"}),
		assignments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_tracker_assignments_total", Help: "Upstream links assigned, by reason.",
		}, []string{"reason"}),
		depth: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "seedcast_tracker_assignment_depth", Help: "Depth (hops from the origin) of assigned links.",
			Buckets: []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20},
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_tracker_rejected_total", Help: "Connections, messages and signals refused, by reason.",
		}, []string{"reason"}),
		signals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seedcast_tracker_signals_total", Help: "Signaling messages relayed between peers.",
		}),
		pings: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seedcast_tracker_keepalive_pings_total", Help: "WebSocket pings the tracker sent to silent connections.",
		}),
		reports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seedcast_tracker_reports_total", Help: "Viewer reports taken (health, receipts, complaints).",
		}),
	}
	for _, c := range []prometheus.Collector{m.peers, m.joins, m.assignments, m.depth, m.rejected, m.signals, m.pings, m.reports} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) reject(reason string) {
	if m != nil {
		m.rejected.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) joined(stream string, peers int) {
	if m != nil {
		m.joins.WithLabelValues(stream).Inc()
		m.peers.WithLabelValues(stream).Set(float64(peers))
	}
}

func (m *Metrics) left(stream string, peers int) {
	if m != nil {
		m.peers.WithLabelValues(stream).Set(float64(peers))
	}
}

func (m *Metrics) assigned(reason string, depth int) {
	if m != nil {
		m.assignments.WithLabelValues(reason).Inc()
		m.depth.Observe(float64(depth))
	}
}

func (m *Metrics) signalled() {
	if m != nil {
		m.signals.Inc()
	}
}

func (m *Metrics) pinged() {
	if m != nil {
		m.pings.Inc()
	}
}

func (m *Metrics) reported() {
	if m != nil {
		m.reports.Inc()
	}
}
