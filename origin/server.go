package origin

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seedcast/seedcast/manifest"
)

// Params configures a Server.
type Params struct {
	Logger *slog.Logger
	// Registry receives the origin's metrics and is served at /metrics.
	Registry *prometheus.Registry
	// StoreBytes bounds the chunk store (default 256 MiB); Window is how much
	// media the store, manifests and playlists keep (default 60 s).
	StoreBytes int64
	Window     time.Duration
	// SegmentTarget is the HLS segment duration aimed at (default 1 s).
	SegmentTarget time.Duration
	// EgressKbps caps the media bytes the HTTP routes send (chunks, HLS
	// segments and parts; not manifests or playlists): over any interval d
	// at most the cap's burst (250 ms of it, at least 2 MiB) + EgressKbps·d.
	// A request past it gets 503 with Retry-After, and is counted
	// (seedcast_http_egress_refused_total); the swarm's nodes then leave
	// the origin alone for a while and pull from their peers. 0: no cap.
	EgressKbps int
	Now        func() time.Time // default time.Now
}

// Errors of the origin.
var (
	ErrStreamExists = errors.New("origin: stream already registered")
	ErrBadStream    = errors.New("origin: invalid stream name")
	// ErrUnsigned is Stream.Publish's answer to a batch without a signature:
	// the origin publishes only batches signed with the stream's key.
	ErrUnsigned = errors.New("origin: batch not signed")
)

// Server holds the live streams and serves them over HTTP.
type Server struct {
	p       Params
	store   *Store
	metrics *metrics
	mux     *http.ServeMux
	egress  *egressCap // nil: no cap

	mu      sync.RWMutex
	streams map[string]*Stream
}

// New returns a Server with no streams.
func New(p Params) *Server {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Registry == nil {
		p.Registry = prometheus.NewRegistry()
	}
	if p.Window <= 0 {
		p.Window = time.Minute
	}
	if p.SegmentTarget <= 0 {
		p.SegmentTarget = time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	s := &Server{p: p, streams: map[string]*Stream{}, mux: http.NewServeMux()}
	s.store = NewStore(StoreParams{MaxBytes: p.StoreBytes, Window: p.Window})
	s.metrics = newMetrics(p.Registry, s.store)
	s.egress = newEgressCap(p.EgressKbps, p.Now)
	s.route("GET /c/{hash}", "chunk", s.serveChunk)
	s.route("GET /live/{stream}/manifest", "manifest", s.serveManifest)
	s.route("GET /live/{stream}/index.m3u8", "multivariant", s.serveMultivariant)
	s.route("GET /live/{stream}/{rendition}/index.m3u8", "media_playlist", s.serveMediaPlaylist)
	s.route("GET /live/{stream}/{rendition}/seg/{segment}", "segment", s.serveSegment)
	s.route("GET /live/{stream}/{rendition}/part/{part}", "part", s.servePart)
	s.route("GET /healthz", "healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(p.Registry, promhttp.HandlerOpts{}))
	return s
}

// Store returns the chunk store.
func (s *Server) Store() *Store { return s.store }

// Handle mounts another handler (WHIP, WHEP, tracker, player) on the origin's
// mux, counting its responses under route.
func (s *Server) Handle(pattern, route string, h http.Handler) {
	s.mux.Handle(pattern, s.count(route, h))
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) route(pattern, route string, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.count(route, h))
}

// AddStream registers a stream whose manifest pub signs; chunkDuration is its
// chunker's target.
func (s *Server) AddStream(name string, pub ed25519.PublicKey, chunkDuration time.Duration) (*Stream, error) {
	if !manifest.ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadStream, name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.streams[name]; dup {
		return nil, fmt.Errorf("%w: %q", ErrStreamExists, name)
	}
	st := &Stream{
		name: name, pub: pub, srv: s, window: s.p.Window, chunk: chunkDuration,
		inits: map[string][]manifest.Entry{}, initBatch: map[manifest.ID]uint64{},
		initSigs: map[uint64][]byte{},
		playlist: NewPlaylist(PlaylistParams{
			ChunkDuration: chunkDuration, SegmentTarget: s.p.SegmentTarget, Window: s.p.Window,
		}),
		changed: make(chan struct{}),
	}
	s.streams[name] = st
	return st, nil
}

// RemoveStream stops serving a stream's manifest and playlists. Its chunks
// stay in the store until they expire.
func (s *Server) RemoveStream(name string) {
	s.mu.Lock()
	st := s.streams[name]
	delete(s.streams, name)
	s.mu.Unlock()
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, list := range st.inits {
		for _, e := range list {
			s.store.Unpin(e.Hash)
		}
	}
}

// Streams returns the registered streams, by name.
func (s *Server) Streams() []*Stream {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Stream, 0, len(s.streams))
	for _, st := range s.streams {
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *Stream) int { return strings.Compare(a.name, b.name) })
	return out
}

// Stream returns a registered stream.
func (s *Server) Stream(name string) (*Stream, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.streams[name]
	return st, ok
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) (*Stream, bool) {
	st, ok := s.Stream(r.PathValue("stream"))
	if !ok {
		http.Error(w, "unknown stream", http.StatusNotFound)
	}
	return st, ok
}

const immutable = "public, max-age=31536000, immutable"

func (s *Server) serveChunk(w http.ResponseWriter, r *http.Request) {
	id, err := manifest.ParseID(r.PathValue("hash"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, ok := s.store.Get(id)
	if !ok {
		http.Error(w, "chunk not held", http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "video/mp4")
	h.Set("Cache-Control", immutable)
	h.Set("ETag", `"`+id.String()+`"`)
	h.Set("Access-Control-Allow-Origin", "*")
	s.serveCapped(w, r, "chunk", data)
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	body := st.Manifest()
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			http.Error(w, "after: want a batch number", http.StatusBadRequest)
			return
		}
		body = st.ManifestAfter(n)
	} else if l := r.URL.Query().Get("last"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			http.Error(w, "last: want a number of batches", http.StatusBadRequest)
			return
		}
		body = st.ManifestLast(n)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(body)
}

const m3u8Type = "application/vnd.apple.mpegurl"

func (s *Server) serveMultivariant(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	st.mu.Lock()
	body, err := st.playlist.Multivariant()
	st.mu.Unlock()
	if err != nil {
		http.Error(w, "stream has no media yet", http.StatusNotFound)
		return
	}
	writePlaylist(w, body)
}

func writePlaylist(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", m3u8Type)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(body)
}

// serveMediaPlaylist implements LL-HLS blocking playlist reload: with
// _HLS_msn (and _HLS_part) it answers once the playlist holds that segment
// (part), or 503 after three target durations.
func (s *Server) serveMediaPlaylist(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	rend := r.PathValue("rendition")
	q := r.URL.Query()
	if ms := q.Get("_HLS_msn"); ms != "" {
		msn, err := strconv.ParseUint(ms, 10, 64)
		part := -1
		if err == nil && q.Get("_HLS_part") != "" {
			part, err = strconv.Atoi(q.Get("_HLS_part"))
			if part < 0 {
				err = errors.New("negative part")
			}
		}
		if err != nil {
			http.Error(w, "bad _HLS_msn or _HLS_part", http.StatusBadRequest)
			return
		}
		if status := st.waitReady(r.Context(), rend, msn, part); status != http.StatusOK {
			http.Error(w, http.StatusText(status), status)
			return
		}
	}
	st.mu.Lock()
	body, err := st.playlist.Media(rend)
	st.mu.Unlock()
	if err != nil {
		http.Error(w, "unknown rendition", http.StatusNotFound)
		return
	}
	writePlaylist(w, body)
}

// waitReady blocks until the playlist holds rendition's segment msn (part),
// returning 200, 400 for a request too far ahead, or 503 on timeout.
func (st *Stream) waitReady(ctx context.Context, rend string, msn uint64, part int) int {
	st.mu.Lock()
	target := time.Duration(st.playlist.TargetDuration()) * time.Second
	next := st.playlist.NextMSN()
	st.mu.Unlock()
	if msn > next+2 {
		return http.StatusBadRequest
	}
	timer := time.NewTimer(3 * target)
	defer timer.Stop()
	st.waiters.Add(1)
	defer st.waiters.Add(-1)
	for {
		st.mu.Lock()
		ready := st.playlist.Ready(rend, msn, part)
		changed := st.changed
		st.mu.Unlock()
		if ready {
			return http.StatusOK
		}
		select {
		case <-changed:
		case <-timer.C:
			return http.StatusServiceUnavailable
		case <-ctx.Done():
			return http.StatusServiceUnavailable
		}
	}
}

func (s *Server) serveSegment(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	name, found := strings.CutSuffix(r.PathValue("segment"), ".m4s")
	msn, err := strconv.ParseUint(name, 10, 64)
	if !found || err != nil {
		http.Error(w, "bad segment name", http.StatusBadRequest)
		return
	}
	st.mu.Lock()
	entries, err := st.playlist.SegmentChunks(r.PathValue("rendition"), msn)
	st.mu.Unlock()
	if err != nil {
		http.Error(w, "no such segment", http.StatusNotFound)
		return
	}
	s.serveChunks(w, r, "segment", entries)
}

// servePart serves a partial segment of chunks grouped (Playlist's LL-HLS
// layout): part/{msn}.{i}.m4s.
func (s *Server) servePart(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	name, found := strings.CutSuffix(r.PathValue("part"), ".m4s")
	a, b, dot := strings.Cut(name, ".")
	msn, err1 := strconv.ParseUint(a, 10, 64)
	i, err2 := strconv.ParseUint(b, 10, 16)
	if !found || !dot || err1 != nil || err2 != nil {
		http.Error(w, "bad part name", http.StatusBadRequest)
		return
	}
	st.mu.Lock()
	entries, err := st.playlist.PartChunks(r.PathValue("rendition"), msn, int(i))
	st.mu.Unlock()
	if err != nil {
		http.Error(w, "no such part", http.StatusNotFound)
		return
	}
	s.serveChunks(w, r, "part", entries)
}

// serveChunks answers with the chunks' bytes one after the other: a
// segment or a part, immutable once listed.
func (s *Server) serveChunks(w http.ResponseWriter, r *http.Request, route string, entries []manifest.Entry) {
	var body []byte
	for _, e := range entries {
		data, ok := s.store.Get(e.Hash)
		if !ok {
			http.Error(w, "segment expired", http.StatusNotFound)
			return
		}
		body = append(body, data...)
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Cache-Control", immutable)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	s.serveCapped(w, r, route, body)
}

// count records the response status of every request under route.
func (s *Server) count(route string, h http.Handler) http.Handler {
	wt, hasWT := writeTimeouts[route]
	if !hasWT {
		wt = WriteTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wt > 0 {
			// Per route, not server-wide: a hijacked tracker WebSocket
			// keeps its own deadlines (the tracker sets them).
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wt))
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		if sw.bytes > 0 {
			s.metrics.responseBytes.WithLabelValues(route).Add(float64(sw.bytes))
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
	bytes       int64 // body bytes written
}

func (w *statusWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
