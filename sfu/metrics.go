package sfu

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the package's Prometheus collectors. They are registered on
// the Registerer from ServerParams (never the global default registry).
type metrics struct {
	rooms            prometheus.Gauge
	publishers       prometheus.Gauge
	subscribers      prometheus.Gauge
	packetsReceived  prometheus.Counter
	packetsForwarded prometheus.Counter
	bytesForwarded   prometheus.Counter
	keyframeRequests *prometheus.CounterVec
	nackRequested    prometheus.Counter
	nackRecovered    prometheus.Counter
	httpResponses    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "rooms",
			Help: "Rooms open.",
		}),
		publishers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "publishers",
			Help: "Publisher sessions open.",
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "subscribers",
			Help: "Subscriber sessions open.",
		}),
		packetsReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "rtp_packets_received_total",
			Help: "RTP packets received from publishers.",
		}),
		packetsForwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "rtp_packets_forwarded_total",
			Help: "RTP packets forwarded to subscribers.",
		}),
		bytesForwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "rtp_payload_bytes_forwarded_total",
			Help: "RTP payload bytes forwarded to subscribers.",
		}),
		keyframeRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "keyframe_requests_total",
			Help: "Keyframe requests (PLI) sent to publishers, by reason.",
		}, []string{"reason"}),
		nackRequested: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "nack_requested_packets_total",
			Help: "Lost video packets asked for again from publishers (NACK); a packet asked for twice counts twice.",
		}),
		nackRecovered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "nack_recovered_packets_total",
			Help: "Video packets from publishers that arrived after they were counted missing: retransmitted, or late.",
		}),
		httpResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "sfu", Name: "http_responses_total",
			Help: "WHIP/WHEP HTTP responses by endpoint, method and status code.",
		}, []string{"endpoint", "method", "code"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{
			m.rooms, m.publishers, m.subscribers, m.packetsReceived,
			m.packetsForwarded, m.bytesForwarded, m.keyframeRequests, m.nackRequested,
			m.nackRecovered, m.httpResponses,
		} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
