package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/swarm"
)

// seeds runs the origin's seed node of each stream: the root of its swarm,
// holding every chunk, serving the viewers the tracker gives the origin
// within the seed's egress budget.
type seeds struct {
	srv     *origin.Server
	server  string // this server's own URL, for the seed's tracker join
	secret  string // the tracker's origin secret
	kbps    int
	api     *webrtc.API
	log     *slog.Logger
	wg      sync.WaitGroup
	restart time.Duration
}

func newOriginSecret() string { return rand.Text() }

// run keeps stream name's seed node up until ctx ends: it starts once the
// stream is live, and starts again if the node fails or the stream's
// renditions change (a new publisher, another simulcast layout).
func (s *seeds) run(ctx context.Context, name string) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for ctx.Err() == nil {
			st, ok := s.srv.Stream(name)
			if !ok {
				return
			}
			src := s.srv.Source(st)
			rends := waitLive(ctx, src)
			if rends == nil {
				return
			}
			node, err := swarm.StartNode(ctx, swarm.NodeParams{
				Server: s.server, Stream: name, Seed: true, Token: s.secret, BudgetKbps: s.kbps,
				Source: src, API: s.api, Logger: s.log.With("component", "seed"),
			})
			if err != nil {
				s.log.Warn("seed node", "stream", name, "err", err)
			} else {
				s.log.Info("seed node up", "stream", name, "renditions", rends, "egress_kbps", s.kbps)
				for ctx.Err() == nil && slices.Equal(renditionsOf(ctx, src), rends) {
					select {
					case <-ctx.Done():
					case <-time.After(s.restart):
					}
				}
				node.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(s.restart):
			}
		}
	}()
}

// waitLive waits until the stream lists media and returns its renditions.
func waitLive(ctx context.Context, src *origin.Source) []string {
	for {
		ch := src.Changed()
		if r := renditionsOf(ctx, src); len(r) > 0 {
			return r
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
	}
}

func renditionsOf(ctx context.Context, src *origin.Source) []string {
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
