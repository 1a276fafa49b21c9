package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/driver"
	"github.com/seedcast/seedcast/swarm/wire"
)

// ErrSource is returned when the origin cannot give a manifest or a chunk.
var ErrSource = errors.New("swarm: origin")

type (
	// Source is the origin as a node sees it: where the signed manifest
	// comes from, and the chunks no peer can deliver in time
	// (driver.Origin). What it returns is verified like anything else.
	Source = driver.Origin
	// Pinger is a Source that can measure its round-trip time cheaply; the
	// node's RTT guard feeds on it (driver.Pinger).
	Pinger = driver.Pinger
	// Notifier is a Source that can say when its manifest changed (the
	// origin's own seed node uses it instead of polling; driver.Notifier).
	Notifier = driver.Notifier
)

// HTTPSource reads the origin over HTTP: GET /live/{stream}/manifest and
// GET /c/{hash}.
type HTTPSource struct {
	Server string // e.g. http://127.0.0.1:8080
	Stream string
	Client *http.Client // nil: a client with a 10 s timeout
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

func (s *HTTPSource) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return defaultClient
}

func (s *HTTPSource) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.Server, "/")+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		if resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests {
			// The origin's egress cap: the core waits, and asks peers.
			return nil, fmt.Errorf("%w: GET %s: %s: %w", ErrSource, path, resp.Status, core.ErrOriginBusy)
		}
		return nil, fmt.Errorf("%w: GET %s: %s", ErrSource, path, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %v", ErrSource, path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: GET %s: over %d bytes", ErrSource, path, limit)
	}
	return data, nil
}

// Manifest fetches the signed manifest window (GET /live/{s}/manifest, with
// ?after=N when after ≥ 0).
func (s *HTTPSource) Manifest(ctx context.Context, after int64) (*manifest.Manifest, error) {
	path := "/live/" + s.Stream + "/manifest"
	if after >= 0 {
		path += "?after=" + strconv.FormatInt(after, 10)
	}
	data, err := s.get(ctx, path, manifest.MaxManifestBytes)
	if err != nil {
		return nil, err
	}
	return manifest.DecodeManifest(bytes.NewReader(data))
}

// Ping times GET /healthz: one round trip on a kept-alive connection,
// with no work at either end.
func (s *HTTPSource) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := s.get(ctx, "/healthz", 4096)
	return time.Since(start), err
}

// Chunk fetches one chunk or init segment by id.
func (s *HTTPSource) Chunk(ctx context.Context, id manifest.ID) ([]byte, error) {
	return s.get(ctx, "/c/"+id.String(), wire.MaxChunk)
}
