package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/seedcast/seedcast/manifest"
)

// ErrNotHeld is returned by Source.Chunk for a chunk the store does not hold.
var ErrNotHeld = errors.New("origin: chunk not held")

// Source gives the origin's own seed node the stream in-process: the
// manifest as the HTTP route serves it, chunks from the store, and a
// notification at every publish. It has the methods of swarm.SeedSource
// (swarm.Source and swarm.Notifier).
type Source struct {
	srv *Server
	st  *Stream
}

// Source returns the in-process source of a stream.
func (s *Server) Source(st *Stream) *Source { return &Source{srv: s, st: st} }

// Manifest decodes the stream's current manifest window, or only its
// batches above after when after ≥ 0.
func (s *Source) Manifest(_ context.Context, after int64) (*manifest.Manifest, error) {
	if after >= 0 {
		return manifest.DecodeManifest(bytes.NewReader(s.st.ManifestAfter(uint64(after))))
	}
	return manifest.DecodeManifest(bytes.NewReader(s.st.Manifest()))
}

// Chunk returns a stored chunk or init segment.
func (s *Source) Chunk(_ context.Context, id manifest.ID) ([]byte, error) {
	data, ok := s.srv.store.Get(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotHeld, id)
	}
	return data, nil
}

// Changed is closed at the stream's next publish.
func (s *Source) Changed() <-chan struct{} { return s.st.Changed() }
