package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/seedcast/seedcast/internal/connlimit"
	"github.com/seedcast/seedcast/swarm/peerlink"
	"github.com/seedcast/seedcast/tracker/protocol"
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
	// Restart is the pause before a seed whose start failed tries again,
	// and how often a running seed checks its stream's renditions between
	// the changes its source announces (2 s). A seed whose renditions
	// changed starts again at once.
	Restart time.Duration
	// Limits, if set, caps the seeds' peer connections (kind
	// connlimit.KindSeed, sharing the process's caps with the SFU's
	// sessions); nil: no cap beyond one link per downstream.
	Limits *connlimit.Limiter
	// OfferEvery and OfferBurst pace the offers one downstream peer may
	// make to a seed (a token bucket per peer; 1 s and 3): a peer whose
	// link keeps failing re-dials, a peer that floods is refused.
	OfferEvery time.Duration
	OfferBurst int
	// OnUpload, if set, is called with the size of every frame a seed
	// hands to a peer within its budget (NodeParams.OnUpload): the
	// origin's data-channel egress, for its metrics.
	OnUpload func(stream string, bytes int)
	Logger   *slog.Logger // (slog.Default())

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
	if p.OfferEvery <= 0 {
		p.OfferEvery = time.Second
	}
	if p.OfferBurst <= 0 {
		p.OfferBurst = 3
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
		rends := waitSeedRenditions(ctx, src, seedSettle)
		if rends == nil {
			return
		}
		node, err := s.p.start(ctx, NodeParams{
			Server: s.p.Server, Stream: stream, Seed: true, Token: s.p.Secret, BudgetKbps: s.p.EgressKbps,
			Source: src, API: s.p.API, Logger: log, StoreBytes: s.p.StoreBytes, StoreWindow: s.p.StoreWindow,
			Admit: s.admitter(stream, time.Now), OnUpload: s.onUpload(stream),
		})
		if err != nil {
			s.p.Logger.Warn("seed node", "stream", stream, "err", err)
		} else {
			s.p.Logger.Info("seed node up", "stream", stream, "renditions", rends, "egress_kbps", s.p.EgressKbps)
			s.whileRenditions(ctx, src, rends)
			node.Close()
			continue // at once: the viewers wait on the seed
		}
		s.pause(ctx)
	}
}

// seedSettle is how long a new stream's renditions must stay the same
// before its seed starts: a publisher's tracks come up one after another
// (video, then audio a moment later), and a seed started on the first
// alone restarts when the next comes.
const seedSettle = 300 * time.Millisecond

// whileRenditions returns when the stream's renditions are no longer rends,
// or ctx ends. It looks at every change the source announces, and every
// Restart at least.
func (s *Seeds) whileRenditions(ctx context.Context, src SeedSource, rends []string) {
	t := time.NewTimer(s.p.Restart)
	defer t.Stop()
	for {
		ch := src.Changed()
		if !slices.Equal(seedRenditions(ctx, src), rends) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-t.C:
			t.Reset(s.p.Restart)
		}
	}
}

// onUpload is the OnUpload of stream's seed node (nil without
// SeedsParams.OnUpload).
func (s *Seeds) onUpload(stream string) func(time.Time, int) {
	if s.p.OnUpload == nil {
		return nil
	}
	return func(_ time.Time, bytes int) { s.p.OnUpload(stream, bytes) }
}

// ErrOfferRate means a downstream peer offered to a seed faster than
// SeedsParams.OfferEvery allows.
var ErrOfferRate = errors.New("swarm: offers from this peer too fast")

// admitter returns the Admit of stream's seed: each peer's offers are
// paced by a token bucket, then the process's caps (Limits) are asked.
// Refusals are counted in the Limiter's metrics (reason offer_rate for the
// pace).
func (s *Seeds) admitter(stream string, now func() time.Time) func(protocol.PeerID) (peerlink.Lease, error) {
	var mu sync.Mutex
	buckets := map[protocol.PeerID]*rate.Limiter{}
	return func(from protocol.PeerID) (peerlink.Lease, error) {
		t := now()
		mu.Lock()
		ok := takeOffer(buckets, from, t, s.p.OfferEvery, s.p.OfferBurst)
		mu.Unlock()
		if !ok {
			s.p.Limits.CountRefusal(connlimit.KindSeed, "offer_rate")
			return nil, fmt.Errorf("%w: %s", ErrOfferRate, from)
		}
		if s.p.Limits == nil {
			return nil, nil
		}
		lease, err := s.p.Limits.Acquire(connlimit.KindSeed, netip.Addr{}, stream)
		if err != nil {
			return nil, err
		}
		return lease, nil
	}
}

// maxOfferBuckets bounds the peers whose offer pace a seed remembers;
// past it, buckets that have refilled are forgotten (they hold nothing a
// fresh bucket would not).
const maxOfferBuckets = 4096

// takeOffer takes one token from from's bucket (one per every, burst
// burst) at now, and reports whether there was one.
func takeOffer(b map[protocol.PeerID]*rate.Limiter, from protocol.PeerID, now time.Time, every time.Duration, burst int) bool {
	lim := b[from]
	if lim == nil {
		if len(b) >= maxOfferBuckets {
			for id, l := range b {
				if l.TokensAt(now) >= float64(burst) {
					delete(b, id)
				}
			}
		}
		lim = rate.NewLimiter(rate.Every(every), burst)
		if len(b) < maxOfferBuckets {
			b[from] = lim
		}
	}
	return lim.AllowN(now, 1)
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

// waitSeedRenditions waits until the stream lists media, and its
// renditions have stayed the same for settle, and returns them; nil when
// ctx ends.
func waitSeedRenditions(ctx context.Context, src SeedSource, settle time.Duration) []string {
	var rends []string
	var stable <-chan time.Time
	for {
		ch := src.Changed()
		if r := seedRenditions(ctx, src); !slices.Equal(r, rends) {
			rends = r
			stable = nil
			if len(r) > 0 {
				stable = time.After(settle)
			}
		}
		select {
		case <-ch:
		case <-stable:
			return rends
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
