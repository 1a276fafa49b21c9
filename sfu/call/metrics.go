package call

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	rooms        prometheus.Gauge
	participants prometheus.Gauge
	messages     *prometheus.CounterVec
	badMessages  prometheus.Counter
	refused      *prometheus.CounterVec
	knocks       prometheus.Counter
	resumes      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rooms: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "rooms",
			Help: "Call rooms and voice channels with anyone in them or at the door.",
		}),
		participants: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "participants",
			Help: "Participants in calls and voice channels (those resuming included).",
		}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "messages_total",
			Help: "Signalling messages received, by type.",
		}, []string{"type"}),
		badMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "bad_messages_total",
			Help: "Signalling messages refused as malformed or out of bounds.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "refused_total",
			Help: "Joins, connections and requests refused, by error code.",
		}, []string{"reason"}),
		knocks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "knocks_total",
			Help: "Joins that waited for the host.",
		}),
		resumes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "resumes_total",
			Help: "Participants that resumed on a new signalling connection.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rooms, m.participants, m.messages, m.badMessages, m.refused, m.knocks, m.resumes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
