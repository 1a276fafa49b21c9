package server

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// figures are a viewer's cumulative report figures (or a sum of them).
type figures struct {
	fromPeers, fromOrigin, fromSeed uint64
	onTime, late                    uint64
	latencyMs                       int // the viewer's median delivery latency lately (not summed)
}

// take keeps a report's figures. They only ever grow: a report that says
// less (a restarted counter, or a lie) does not undo what was counted.
func (f *figures) take(r *protocol.Report) {
	f.fromPeers = max(f.fromPeers, r.BytesFromPeers)
	f.fromOrigin = max(f.fromOrigin, r.BytesFromOrigin)
	f.fromSeed = max(f.fromSeed, min(r.BytesFromSeed, r.BytesFromOrigin))
	f.onTime = max(f.onTime, r.ChunksOnTime)
	f.late = max(f.late, r.ChunksLate)
	f.latencyMs = r.LatencyMs
}

func (f *figures) add(g figures) {
	f.fromPeers += g.fromPeers
	f.fromOrigin += g.fromOrigin
	f.fromSeed += g.fromSeed
	f.onTime += g.onTime
	f.late += g.late
}

// historyLen is how many samples the dashboard keeps: ten minutes at the
// default two-second rebalance tick.
const historyLen = 300

// Sample is one point of a stream's history: the media rates viewers
// received from the server (HTTP and the origin's seed) and from peers,
// over the interval that ended at T.
type Sample struct {
	T          time.Time `json:"t"`
	ServerKbps float64   `json:"serverKbps"`
	PeerKbps   float64   `json:"peerKbps"`
	// OnTime and Late are the chunks viewers reported judged in the
	// interval.
	OnTime uint64 `json:"onTime"`
	Late   uint64 `json:"late"`
}

// recentWindow is how far back from the newest sample the recent
// continuity looks.
const recentWindow = time.Minute

// audience is a stream's dashboard state; guarded by the stream's mu.
type audience struct {
	gone    figures // the last figures of viewers that left
	last    figures // the totals at the last sample
	lastAt  time.Time
	history []Sample
}

// totalsLocked sums the figures of every viewer, present and gone.
func (st *stream) totalsLocked() figures {
	t := st.aud.gone
	for _, pc := range st.peers {
		t.add(pc.fig)
	}
	return t
}

// sampleLocked adds a point to the history (at every rebalance tick).
func (st *stream) sampleLocked(now time.Time) {
	a := &st.aud
	tot := st.totalsLocked()
	if !a.lastAt.IsZero() {
		if dt := now.Sub(a.lastAt).Seconds(); dt > 0 {
			delta := func(now, then uint64) uint64 { return now - min(now, then) }
			kbps := func(now, then uint64) float64 { return float64(delta(now, then)) * 8 / 1000 / dt }
			a.history = append(a.history, Sample{
				T: now.UTC(), ServerKbps: kbps(tot.fromOrigin, a.last.fromOrigin), PeerKbps: kbps(tot.fromPeers, a.last.fromPeers),
				OnTime: delta(tot.onTime, a.last.onTime), Late: delta(tot.late, a.last.late),
			})
			if len(a.history) > historyLen {
				a.history = slices.Delete(a.history, 0, len(a.history)-historyLen)
			}
		}
	}
	a.last, a.lastAt = tot, now
}

// Dashboard is a stream's audience as its viewers report it (GET
// /live/{stream}/dashboard.json): who watches, what the server sent them
// against what peers carried, and how well it played.
type Dashboard struct {
	Stream      string `json:"stream"`
	BitrateKbps int    `json:"bitrateKbps"`
	Viewers     int    `json:"viewers"`
	Browsers    int    `json:"browsers"`
	Natives     int    `json:"natives"`
	// Cumulative media bytes the viewers received (those gone included):
	// from peers, and from the server (HTTP and the origin's seed; of
	// which from the seed).
	BytesFromPeers  uint64 `json:"bytesFromPeers"`
	BytesFromOrigin uint64 `json:"bytesFromOrigin"`
	BytesFromSeed   uint64 `json:"bytesFromSeed"`
	ChunksOnTime    uint64 `json:"chunksOnTime"`
	ChunksLate      uint64 `json:"chunksLate"`
	// Rates over the last ten seconds of samples.
	ServerKbps float64 `json:"serverKbps"`
	PeerKbps   float64 `json:"peerKbps"`
	// Offload is BytesFromPeers over all media bytes; Continuity the share
	// of chunks on time (-1 before any), and RecentContinuity the same over
	// the last minute of samples (-1 when none was judged in it): the
	// cumulative figure carries every viewer's start-up for ever.
	Offload          float64 `json:"offload"`
	Continuity       float64 `json:"continuity"`
	RecentContinuity float64 `json:"recentContinuity"`
	// Latency: the median and 95th percentile of the viewers' median
	// delivery latencies (ingest to verified).
	LatencyP50Ms float64 `json:"latencyP50Ms"`
	LatencyP95Ms float64 `json:"latencyP95Ms"`
	// Depth: hops from the origin, over the viewers.
	DepthMean float64  `json:"depthMean"`
	DepthMax  int      `json:"depthMax"`
	History   []Sample `json:"history"`
}

// Dashboard returns a stream's dashboard; false for a stream the tracker
// has no swarm for (nobody joined it yet).
func (s *Server) Dashboard(name string) (Dashboard, bool) {
	s.mu.Lock()
	st := s.streams[name]
	s.mu.Unlock()
	if st == nil {
		return Dashboard{}, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	d := Dashboard{Stream: name, BitrateKbps: st.swarm.BitrateKbps(), Viewers: len(st.peers), Continuity: -1, RecentContinuity: -1}
	tot := st.totalsLocked()
	d.BytesFromPeers, d.BytesFromOrigin, d.BytesFromSeed = tot.fromPeers, tot.fromOrigin, tot.fromSeed
	d.ChunksOnTime, d.ChunksLate = tot.onTime, tot.late
	if all := tot.fromPeers + tot.fromOrigin; all > 0 {
		d.Offload = float64(tot.fromPeers) / float64(all)
	}
	if judged := tot.onTime + tot.late; judged > 0 {
		d.Continuity = float64(tot.onTime) / float64(judged)
	}
	var lat []int
	depths := 0
	for id, pc := range st.peers {
		if pc.kind == protocol.KindBrowser {
			d.Browsers++
		} else {
			d.Natives++
		}
		if pc.fig.latencyMs > 0 {
			lat = append(lat, pc.fig.latencyMs)
		}
		dep := st.swarm.ViewerDepth(id)
		depths += dep
		d.DepthMax = max(d.DepthMax, dep)
	}
	if len(st.peers) > 0 {
		d.DepthMean = float64(depths) / float64(len(st.peers))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		d.LatencyP50Ms, d.LatencyP95Ms = float64(lat[len(lat)/2]), float64(lat[len(lat)*95/100])
	}
	d.History = slices.Clone(st.aud.history)
	if n := min(len(d.History), 5); n > 0 {
		for _, h := range d.History[len(d.History)-n:] {
			d.ServerKbps += h.ServerKbps / float64(n)
			d.PeerKbps += h.PeerKbps / float64(n)
		}
	}
	var onTime, late uint64
	for i := len(d.History) - 1; i >= 0 && d.History[i].T.After(d.History[len(d.History)-1].T.Add(-recentWindow)); i-- {
		onTime, late = onTime+d.History[i].OnTime, late+d.History[i].Late
	}
	if onTime+late > 0 {
		d.RecentContinuity = float64(onTime) / float64(onTime+late)
	}
	if d.History == nil {
		d.History = []Sample{}
	}
	return d, true
}

var (
	descAudienceViewers = prometheus.NewDesc("seedcast_audience_viewers", "Viewers in a stream's swarm, by kind.", []string{"stream", "kind"}, nil)
	descAudienceBytes   = prometheus.NewDesc("seedcast_audience_bytes_total",
		"Media bytes the viewers report having received, by source: peers, seed (the origin's seed over WebRTC), http (the origin over HTTP).",
		[]string{"stream", "source"}, nil)
	descAudienceChunks = prometheus.NewDesc("seedcast_audience_chunks_total", "Chunks the viewers report, on time or late.", []string{"stream", "result"}, nil)
	descAudienceDepth  = prometheus.NewDesc("seedcast_audience_depth", "Mean hops from the origin of a stream's viewers.", []string{"stream"}, nil)
)

// audienceCollector exports every stream's dashboard figures to /metrics.
type audienceCollector struct{ s *Server }

// AudienceCollector returns a prometheus.Collector of the dashboards'
// figures (seedcast_audience_*), read at every scrape.
func (s *Server) AudienceCollector() prometheus.Collector { return audienceCollector{s} }

func (c audienceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAudienceViewers, descAudienceBytes, descAudienceChunks, descAudienceDepth} {
		ch <- d
	}
}

func (c audienceCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	names := make([]string, 0, len(c.s.streams))
	for name := range c.s.streams {
		names = append(names, name)
	}
	c.s.mu.Unlock()
	for _, name := range names {
		d, ok := c.s.Dashboard(name)
		if !ok {
			continue
		}
		g := func(desc *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(desc, t, v, append([]string{name}, labels...)...)
		}
		g(descAudienceViewers, prometheus.GaugeValue, float64(d.Browsers), "browser")
		g(descAudienceViewers, prometheus.GaugeValue, float64(d.Natives), "native")
		g(descAudienceBytes, prometheus.CounterValue, float64(d.BytesFromPeers), "peers")
		g(descAudienceBytes, prometheus.CounterValue, float64(d.BytesFromSeed), "seed")
		g(descAudienceBytes, prometheus.CounterValue, float64(d.BytesFromOrigin-d.BytesFromSeed), "http")
		g(descAudienceDepth, prometheus.GaugeValue, d.DepthMean)
		g(descAudienceChunks, prometheus.CounterValue, float64(d.ChunksOnTime), "on_time")
		g(descAudienceChunks, prometheus.CounterValue, float64(d.ChunksLate), "late")
	}
}
