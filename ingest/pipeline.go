package ingest

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/media"
)

// PipelineParams configures a Pipeline.
type PipelineParams struct {
	Stream string
	// Key is the stream's Ed25519 key: the pipeline signs every batch the
	// chunker hands out with it.
	Key           ed25519.PrivateKey
	ChunkDuration time.Duration // 0 means manifest.DefaultChunkDuration
	// Publish receives every batch once signed (origin.Stream.Publish). It is
	// called under the pipeline's lock, from Push and Close. An error is
	// logged (the origin counts what it refuses), and the stream goes on.
	Publish func(chunker.Output) error
	Now     func() time.Time // ingest wall clock; nil means time.Now
	Logger  *slog.Logger
	Metrics *Metrics // shared by the pipelines of a server; nil disables them
}

// Pipeline feeds one stream's access units into its chunker and signs the
// batches the chunker cuts before handing them on. It is safe for concurrent
// use: sources of different renditions may push from their own goroutines.
type Pipeline struct {
	p   PipelineParams
	log *slog.Logger

	mu sync.Mutex
	c  *chunker.Chunker
}

// NewPipeline returns a pipeline with no renditions.
func NewPipeline(p PipelineParams) (*Pipeline, error) {
	if len(p.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("ingest: PipelineParams.Key must be an Ed25519 private key")
	}
	if p.Publish == nil {
		return nil, errors.New("ingest: PipelineParams.Publish is required")
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	pipe := &Pipeline{p: p, log: p.Logger.With("stream", p.Stream)}
	c, err := chunker.New(chunker.Params{
		Stream: p.Stream, ChunkDuration: p.ChunkDuration, Now: p.Now, Publish: pipe.publish,
	})
	if err != nil {
		return nil, err
	}
	pipe.c = c
	return pipe, nil
}

// publish signs one batch of the chunker with the stream's key and hands it
// on. The chunker calls it from Push and Flush, under p.mu.
func (p *Pipeline) publish(o chunker.Output) {
	err := o.Batch.Sign(p.p.Key)
	if err == nil {
		err = p.p.Publish(o)
	}
	if err != nil {
		p.log.Error("batch not published", "batch", o.Batch.N, "entries", len(o.Batch.Entries), "err", err)
	}
}

// ChunkDuration is the chunk duration in use.
func (p *Pipeline) ChunkDuration() time.Duration { return p.c.ChunkDuration() }

// AddRendition declares a rendition fed by Push.
func (p *Pipeline) AddRendition(name string, t media.Track) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c.AddRendition(name, t)
}

// Push hands one access unit to the chunker. A unit the chunker cannot use is
// dropped, counted and logged at debug level; the error is returned so a
// live source can react (ask for a keyframe on chunker.ErrNeedKeyframe).
func (p *Pipeline) Push(rendition string, au media.AccessUnit) error {
	p.mu.Lock()
	err := p.c.Push(rendition, au)
	p.mu.Unlock()
	if p.p.Metrics != nil {
		p.p.Metrics.units.WithLabelValues(p.p.Stream, rendition).Inc()
		if err != nil {
			p.p.Metrics.dropped.WithLabelValues(p.p.Stream, dropReason(err)).Inc()
		}
	}
	if err != nil {
		p.log.Debug("access unit dropped", "rendition", rendition, "dts", au.DTS, "err", err)
	}
	return err
}

// ExpectKeyframe tells the chunker a keyframe of rendition was asked for
// (see chunker.Chunker.ExpectKeyframe).
func (p *Pipeline) ExpectKeyframe(rendition string, until time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.ExpectKeyframe(rendition, until)
}

// Close publishes what remains of the open chunks.
func (p *Pipeline) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.c.Flush()
}

func dropReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{chunker.ErrNeedKeyframe, "need_keyframe"},
		{chunker.ErrTimestamp, "timestamp"},
		{chunker.ErrBadUnit, "malformed"},
		{chunker.ErrUnknownRendition, "unknown_rendition"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}

// Metrics counts what the pipelines of a server ingest.
type Metrics struct {
	units   *prometheus.CounterVec
	dropped *prometheus.CounterVec
}

// NewMetrics registers the ingest metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		units: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_ingest_access_units_total", Help: "Access units received by ingest.",
		}, []string{"stream", "rendition"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedcast_ingest_dropped_total", Help: "Access units ingest could not use, by reason.",
		}, []string{"stream", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.units, m.dropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("ingest metrics: %w", err)
		}
	}
	return m, nil
}
