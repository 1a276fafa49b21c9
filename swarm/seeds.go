package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// ErrSeedsParams reports SeedsParams that cannot run.
var ErrSeedsParams = errors.New("swarm: bad seeds params")

// SeedSource is a stream's origin as its seed node sees it in-process: the
// manifest and the chunks (Source), and a signal at every publish
// (Notifier). The origin's own source (origin.Source) has these methods.
type SeedSource interface {
	Source
	Notifier
}

// SeedsParams configures Seeds. Zero fields take the defaults shown.
type SeedsParams struct {
	Server     string // this server's own URL, for the seeds' tracker joins (required)
	Secret     string // the tracker's origin secret
	EgressKbps int    // each seed's relay budget to peers
	// StoreBytes and StoreWindow bound each seed's chunks (NodeParams):
	// give the origin's store bound and window (default 64 MiB and 1 min,
	// the origin's default window). A seed keeps nothing the origin has
	// dropped: peers learn chunks from the origin's window only.
	StoreBytes  int64
	StoreWindow time.Duration
	API         *webrtc.API
	// Source returns the in-process source of a stream, or false once the
	// stream is gone; its seed then stops for good (required).
	Source func(stream string) (SeedSource, bool)
	// Restart is how often a running seed checks its stream's renditions,
	// and the pause before a seed starts again (2 s).
	Restart time.Duration
	Logger  *slog.Logger // (slog.Default())

	// start starts one seed node (StartNode); tests replace it.
	start func(context.Context, NodeParams) (seedNode, error)
}

// seedNode is what Seeds does with a running node: close it.
type seedNode interface{ Close() }

// Seeds runs the origin's seed node of each stream: the root of its swarm,
// holding every chunk of the origin's window (SeedsParams.StoreWindow) and
// nothing older, serving the viewers the tracker gives the origin within
// the seed's egress budget.
type Seeds struct {
	p  SeedsParams
	wg sync.WaitGroup
}

// NewSeeds returns Seeds that run nothing until Run is called.
func NewSeeds(p SeedsParams) (*Seeds, error) {
	if p.Server == "" || p.Source == nil {
		return nil, fmt.Errorf("%w: Server and Source are required", ErrSeedsParams)
	}
	if p.Restart <= 0 {
		p.Restart = 2 * time.Second
	}
	if p.StoreWindow <= 0 {
		p.StoreWindow = time.Minute
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.start == nil {
		p.start = func(ctx context.Context, np NodeParams) (seedNode, error) { return StartNode(ctx, np) }
	}
	return &Seeds{p: p}, nil
}

// Run keeps stream's seed node up until ctx ends or the stream is gone: it
// starts once the stream is live, and starts again if the node fails or
// the stream's renditions change (a new publisher, another simulcast
// layout). It returns at once; Wait waits for every Run to end.
func (s *Seeds) Run(ctx context.Context, stream string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.run(ctx, stream)
	}()
}

// Wait returns when every seed started by Run has stopped.
func (s *Seeds) Wait() { s.wg.Wait() }

func (s *Seeds) run(ctx context.Context, stream string) {
	log := s.p.Logger.With("component", "seed")
	for ctx.Err() == nil {
		src, ok := s.p.Source(stream)
		if !ok {
			return
		}
		rends := waitSeedRenditions(ctx, src)
		if rends == nil {
			return
		}
		node, err := s.p.start(ctx, NodeParams{
			Server: s.p.Server, Stream: stream, Seed: true, Token: s.p.Secret, BudgetKbps: s.p.EgressKbps,
			Source: src, API: s.p.API, Logger: log, StoreBytes: s.p.StoreBytes, StoreWindow: s.p.StoreWindow,
		})
		if err != nil {
			s.p.Logger.Warn("seed node", "stream", stream, "err", err)
		} else {
			s.p.Logger.Info("seed node up", "stream", stream, "renditions", rends, "egress_kbps", s.p.EgressKbps)
			for ctx.Err() == nil && slices.Equal(seedRenditions(ctx, src), rends) {
				s.pause(ctx)
			}
			node.Close()
		}
		s.pause(ctx)
	}
}

// pause waits Restart, or until ctx ends.
func (s *Seeds) pause(ctx context.Context) {
	t := time.NewTimer(s.p.Restart)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitSeedRenditions waits until the stream lists media and returns its
// renditions, or nil when ctx ends.
func waitSeedRenditions(ctx context.Context, src SeedSource) []string {
	for {
		ch := src.Changed()
		if r := seedRenditions(ctx, src); len(r) > 0 {
			return r
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}

// seedRenditions returns the sorted names of the stream's renditions, or
// nil while it has no init segment. It asks for no chunk.
func seedRenditions(ctx context.Context, src Source) []string {
	m, err := src.Manifest(ctx, 1<<62)
	if err != nil || len(m.InitSegments) == 0 {
		return nil
	}
	return slices.Sorted(func(yield func(string) bool) {
		for _, r := range m.Renditions {
			if !yield(r.Name) {
				return
			}
		}
	})
}
