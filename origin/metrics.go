package origin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/manifest"
)

type metrics struct {
	chunks        *prometheus.CounterVec
	chunkBytes    *prometheus.CounterVec
	chunkDuration *prometheus.HistogramVec
	inits         *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	requests      *prometheus.CounterVec
	responseBytes *prometheus.CounterVec
	egressRefused *prometheus.CounterVec
	storeBytes    prometheus.GaugeFunc
	storeItems    prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, store *Store) *metrics {
	m := &metrics{
		chunks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_chunks_total", Help: "CMAF chunks produced and published.",
		}, []string{"stream", "rendition"}),
		chunkBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_chunk_bytes_total", Help: "Bytes of CMAF chunks produced.",
		}, []string{"stream", "rendition"}),
		chunkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "seedcast_chunk_duration_seconds", Help: "Media duration of produced chunks.",
			Buckets: []float64{.05, .1, .15, .2, .225, .25, .275, .3, .4, .5, .75, 1},
		}, []string{"kind"}),
		inits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_init_segments_total", Help: "Init segments produced.",
		}, []string{"stream", "rendition"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_batches_rejected_total", Help: "Batches the origin refused to publish, by reason (unsigned, bad_signature, malformed).",
		}, []string{"stream", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		responseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_http_response_bytes_total", Help: "Response body bytes written, by route (chunk: the origin's HTTP media egress).",
		}, []string{"route"}),
		egressRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_http_egress_refused_total", Help: "Media requests refused with 503 because the origin's HTTP egress cap was reached, by route.",
		}, []string{"route"}),
		storeBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "seedcast_store_bytes", Help: "Bytes of chunks held by the origin store.",
		}, func() float64 { _, b := store.Stats(); return float64(b) }),
		storeItems: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "seedcast_store_items", Help: "Chunks held by the origin store.",
		}, func() float64 { n, _ := store.Stats(); return float64(n) }),
	}
	reg.MustRegister(m.chunks, m.chunkBytes, m.chunkDuration, m.inits, m.rejected, m.requests, m.responseBytes, m.egressRefused, m.storeBytes, m.storeItems)
	return m
}

func (m *metrics) observe(stream string, e manifest.Entry, kind string) {
	if e.Kind == manifest.KindInit {
		m.inits.WithLabelValues(stream, e.Rendition).Inc()
		return
	}
	m.chunks.WithLabelValues(stream, e.Rendition).Inc()
	m.chunkBytes.WithLabelValues(stream, e.Rendition).Add(float64(e.Size))
	m.chunkDuration.WithLabelValues(kind).Observe(e.Duration.Seconds())
}
