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
	devices      prometheus.Gauge
	rings        *prometheus.CounterVec
	// chat history on disk
	chatStoreErrors prometheus.Counter
	chatCorrupt     prometheus.Counter
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
		devices: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "presence_devices",
			Help: "Devices (open pages, native devices) holding a presence connection.",
		}),
		rings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "rings_total",
			Help: "Ringing calls: rung, refused as unavailable, and ended by reason.",
		}, []string{"outcome"}),
		chatStoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "chat_store_errors_total",
			Help: "Sealed chat lines that could not be written to the history on disk.",
		}),
		chatCorrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "seedcast", Subsystem: "call", Name: "chat_store_corrupt_lines_total",
			Help: "Lines of the chat history on disk skipped as torn or corrupt.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rooms, m.participants, m.messages, m.badMessages, m.refused, m.knocks, m.resumes, m.devices, m.rings, m.chatStoreErrors, m.chatCorrupt} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
