package origin

import (
	"cmp"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/manifest"
)

// Stream is one live stream as the origin serves it: the signed manifest
// window, the LL-HLS playlist and the notifications a blocking playlist
// reload waits for. It is safe for concurrent use.
type Stream struct {
	name   string
	pub    ed25519.PublicKey
	srv    *Server
	window time.Duration
	chunk  time.Duration

	waiters atomic.Int32 // blocking playlist reloads in progress

	mu         sync.Mutex
	batches    []signedBatch // oldest first, within the window
	inits      map[string][]manifest.Entry
	initBatch  map[manifest.ID]uint64 // init hash → batch that signed it
	initSigs   map[uint64][]byte      // signatures of batches holding init segments
	renditions []manifest.RenditionInfo
	playlist   *Playlist
	changed    chan struct{} // closed and replaced at every Publish
	manifest   []byte        // rendered on demand, dropped at every Publish
	lastChunk  time.Time     // when the newest media chunk was published
	liveSince  time.Time     // when chunks began to flow after a gap of LiveGap
}

// LiveGap is how long a stream may go without a new chunk and still be
// live (Status).
const LiveGap = 5 * time.Second

type signedBatch struct {
	n         uint64
	signature []byte
	entries   []manifest.Entry
	newest    time.Time
}

// Status says whether the stream is live (a chunk was published within
// LiveGap of now) and since when chunks have flowed without such a gap.
func (st *Stream) Status(now time.Time) (live bool, since time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.lastChunk.IsZero() || now.Sub(st.lastChunk) > LiveGap {
		return false, time.Time{}
	}
	return true, st.liveSince
}

// Name returns the stream's name.
func (st *Stream) Name() string { return st.name }

// PublicKey returns the key that signs the stream's manifest.
func (st *Stream) PublicKey() ed25519.PublicKey { return st.pub }

// Publish takes one output of the stream's chunker, signed by the holder of
// the stream's key (ingest.Pipeline): stores its bytes, then makes its
// entries visible in the manifest and playlists. It refuses, counts
// (seedcast_batches_rejected_total) and otherwise ignores a batch without a
// signature (ErrUnsigned), one whose signature does not verify against the
// stream's public key (manifest.ErrBadSignature), and one that is malformed
// or names another stream (manifest.ErrBadManifest).
func (st *Stream) Publish(o chunker.Output) error {
	if err := st.check(o); err != nil {
		reason := "malformed"
		switch {
		case errors.Is(err, ErrUnsigned):
			reason = "unsigned"
		case errors.Is(err, manifest.ErrBadSignature):
			reason = "bad_signature"
		}
		st.srv.metrics.rejected.WithLabelValues(st.name, reason).Inc()
		return err
	}
	now := st.srv.p.Now()
	for i, e := range o.Batch.Entries {
		if e.Kind == manifest.KindInit {
			st.srv.store.Pin(e.Hash, o.Data[i], now)
		} else {
			st.srv.store.Put(e.Hash, o.Data[i], now)
		}
		st.srv.metrics.observe(st.name, e, st.kindOf(e.Rendition, o.Renditions))
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if o.Renditions != nil {
		st.renditions = o.Renditions
		st.playlist.SetRenditions(o.Renditions)
	}
	// Init segments outlive the chunk window (they stay in force), so their
	// batches are kept apart from the chunk batches.
	b := signedBatch{n: o.Batch.N, signature: o.Batch.Signature}
	for _, e := range o.Batch.Entries {
		if e.IngestTime.After(b.newest) {
			b.newest = e.IngestTime
		}
		if e.Kind == manifest.KindInit {
			st.inits[e.Rendition] = append(st.inits[e.Rendition], e)
			st.initBatch[e.Hash] = o.Batch.N
			st.initSigs[o.Batch.N] = o.Batch.Signature
		} else {
			b.entries = append(b.entries, e)
		}
	}
	if len(b.entries) > 0 {
		st.batches = append(st.batches, b)
		if st.lastChunk.IsZero() || now.Sub(st.lastChunk) > LiveGap {
			st.liveSince = now
		}
		st.lastChunk = now
	}
	st.playlist.Add(o.Batch.Entries)
	st.pruneLocked(b.newest)
	st.manifest = nil
	close(st.changed)
	st.changed = make(chan struct{})
	return nil
}

// check refuses an output the stream's viewers would reject, before any of
// it is stored.
func (st *Stream) check(o chunker.Output) error {
	b := &o.Batch
	if len(b.Signature) == 0 {
		return fmt.Errorf("%w: stream %q batch %d", ErrUnsigned, st.name, b.N)
	}
	if b.Stream != st.name || len(o.Data) != len(b.Entries) {
		return fmt.Errorf("%w: batch %d of stream %q with %d entries and %d data, published to %q",
			manifest.ErrBadManifest, b.N, b.Stream, len(b.Entries), len(o.Data), st.name)
	}
	if err := b.Verify(st.pub); err != nil {
		return fmt.Errorf("origin: stream %q: %w", st.name, err)
	}
	return nil
}

func (st *Stream) kindOf(rendition string, fresh []manifest.RenditionInfo) string {
	if fresh == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		fresh = st.renditions
	}
	for _, in := range fresh {
		if in.Name == rendition {
			return in.Kind
		}
	}
	return "unknown"
}

// pruneLocked drops chunk batches older than the window and init segments
// replaced before the oldest chunk left.
func (st *Stream) pruneLocked(newest time.Time) {
	drop := 0
	for drop < len(st.batches)-1 && newest.Sub(st.batches[drop].newest) > st.window {
		drop++
	}
	st.batches = st.batches[drop:]
	var oldest uint64
	found := false
	for _, b := range st.batches {
		for _, e := range b.entries {
			if e.Kind == manifest.KindChunk && (!found || e.Seq < oldest) {
				oldest, found = e.Seq, true
			}
		}
	}
	if !found {
		return
	}
	for r, list := range st.inits {
		keep := 0
		for i, e := range list {
			if e.Seq <= oldest {
				keep = i
			}
		}
		for _, e := range list[:keep] {
			st.srv.store.Unpin(e.Hash)
			delete(st.initSigs, st.initBatch[e.Hash])
			delete(st.initBatch, e.Hash)
		}
		st.inits[r] = list[keep:]
	}
}

// Changed returns a channel closed at the next Publish.
func (st *Stream) Changed() <-chan struct{} {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.changed
}

// Manifest renders the manifest JSON of the current window.
func (st *Stream) Manifest() []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.manifest == nil {
		st.manifest = st.renderLocked(0, false)
	}
	return st.manifest
}

// ManifestLast renders the manifest with only the chunks of its newest n
// chunk batches (and every init segment): what a viewer starting to play
// needs, without checking the signatures of the whole window.
func (st *Stream) ManifestLast(n int) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	if n <= 0 || n >= len(st.batches) {
		return st.renderLocked(0, false)
	}
	return st.renderLocked(st.batches[len(st.batches)-n].n-1, true)
}

// ManifestAfter renders the manifest with only the chunks of batches
// numbered above n (and every init segment): what a client that holds
// batch n already lacks. Polling nodes ask for this.
func (st *Stream) ManifestAfter(n uint64) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.renderLocked(n, true)
}

func (st *Stream) renderLocked(after uint64, partial bool) []byte {
	m := manifest.Manifest{
		Version: 1, Stream: st.name, PublicKey: hex.EncodeToString(st.pub),
		ChunkDurationMs: float64(st.chunk.Microseconds()) / 1000,
		Renditions:      st.renditions,
		InitSegments:    []manifest.JSONEntry{},
		Entries:         []manifest.JSONEntry{},
		Batches:         []manifest.JSONBatch{},
	}
	sigs := map[uint64][]byte{}
	for _, list := range st.inits {
		for _, e := range list {
			n := st.initBatch[e.Hash]
			m.InitSegments = append(m.InitSegments, manifest.ToJSON(e, n))
			sigs[n] = st.initSigs[n]
		}
	}
	for _, b := range st.batches {
		if partial && b.n <= after {
			continue
		}
		for _, e := range b.entries {
			m.Entries = append(m.Entries, manifest.ToJSON(e, b.n))
		}
		sigs[b.n] = b.signature
	}
	for _, n := range slices.Sorted(maps.Keys(sigs)) {
		m.Batches = append(m.Batches, manifest.JSONBatch{N: n, Signature: hex.EncodeToString(sigs[n])})
	}
	slices.SortFunc(m.InitSegments, func(a, b manifest.JSONEntry) int { return cmp.Compare(a.Batch, b.Batch) })
	out, _ := json.Marshal(m)
	return out
}

// AverageKbps is the stream's mean download rate for one viewer (highest
// video rendition plus audio) over the window, in kbit/s; 0 before media.
// The tracker sizes relay slots with it: budgets absorb the peaks.
func (st *Stream) AverageKbps() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return (st.playlist.AverageBandwidth() + 999) / 1000
}

// BitrateKbps is the stream's peak download rate for one viewer (highest
// video rendition plus audio) over the window, in kbit/s; 0 before media.
func (st *Stream) BitrateKbps() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return (st.playlist.Bandwidth() + 999) / 1000
}
