package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// fakeSeedSource is a stream whose renditions the test sets. It counts the
// manifest reads, so that a test can wait for the seeds' checks instead of
// sleeping.
type fakeSeedSource struct {
	mu      sync.Mutex
	rends   []string
	gen     int // bumped by set
	reads   int
	changed chan struct{}
	read    chan struct{} // signalled (without blocking) at every manifest read
}

func newFakeSeedSource() *fakeSeedSource {
	return &fakeSeedSource{changed: make(chan struct{}), read: make(chan struct{}, 1)}
}

// set publishes new renditions (none: the stream is not live).
func (f *fakeSeedSource) set(rends ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rends, f.gen = rends, f.gen+1
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeSeedSource) state() (gen, reads int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen, f.reads
}

func (f *fakeSeedSource) Manifest(context.Context, int64) (*manifest.Manifest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	select {
	case f.read <- struct{}{}:
	default:
	}
	m := &manifest.Manifest{}
	for _, r := range f.rends {
		m.Renditions = append(m.Renditions, manifest.RenditionInfo{Name: r})
		m.InitSegments = append(m.InitSegments, manifest.JSONEntry{Rendition: r})
	}
	return m, nil
}

func (f *fakeSeedSource) Chunk(context.Context, manifest.ID) ([]byte, error) {
	return nil, ErrSource
}

func (f *fakeSeedSource) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// seedStart is one call of the seeds' start hook: the source generation it
// saw and the node it returned.
type seedStart struct {
	p      NodeParams
	gen    int
	closed chan struct{}
}

type fakeSeedNode struct {
	once   sync.Once
	closed chan struct{}
}

func (n *fakeSeedNode) Close() { n.once.Do(func() { close(n.closed) }) }

// TestSeedsRestart: a seed starts once its stream is live, stays up while
// the renditions stay the same, starts again (after closing the old node)
// when they change or when a start fails, and stops for good when the
// stream is gone or ctx ends.
func TestSeedsRestart(t *testing.T) {
	src := newFakeSeedSource()
	var mu sync.Mutex
	present := true
	fail := false
	starts := make(chan seedStart, 8)
	sd, err := NewSeeds(SeedsParams{
		Server: "http://origin.test", Secret: "s3cret", EgressKbps: 4000, Restart: time.Millisecond,
		StoreBytes: 8 << 20, Logger: slog.New(slog.DiscardHandler),
		Source: func(stream string) (SeedSource, bool) {
			mu.Lock()
			defer mu.Unlock()
			return src, stream == "demo" && present
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sd.p.start = func(_ context.Context, p NodeParams) (seedNode, error) {
		gen, _ := src.state()
		mu.Lock()
		failing := fail
		fail = false
		mu.Unlock()
		st := seedStart{p: p, gen: gen, closed: make(chan struct{})}
		starts <- st
		if failing {
			return nil, errors.New("test: start failed")
		}
		return &fakeSeedNode{closed: st.closed}, nil
	}
	next := func(what string) seedStart {
		t.Helper()
		select {
		case st := <-starts:
			return st
		case <-time.After(10 * time.Second):
			t.Fatalf("no seed start %s", what)
			return seedStart{}
		}
	}
	waitClosed := func(st seedStart, what string) {
		t.Helper()
		select {
		case <-st.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("seed node not closed %s", what)
		}
	}
	// change publishes new renditions and returns the start that follows
	// the running node's close; that start must have seen them.
	change := func(running seedStart, rends ...string) seedStart {
		t.Helper()
		src.set(rends...)
		waitClosed(running, "after its renditions changed")
		gen, _ := src.state()
		st := next("after the renditions changed")
		if st.gen != gen {
			t.Fatalf("restart saw source generation %d, want %d", st.gen, gen)
		}
		return st
	}
	noStart := func(why string) {
		t.Helper()
		select {
		case st := <-starts:
			t.Fatalf("seed started (generation %d) %s", st.gen, why)
		default:
		}
	}
	// waitReads returns once the source has been read n times in all.
	waitReads := func(n int) {
		t.Helper()
		for {
			if _, reads := src.state(); reads >= n {
				return
			}
			select {
			case <-src.read:
			case <-time.After(10 * time.Second):
				t.Fatal("the seed stopped checking its renditions")
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sd.Run(ctx, "demo")

	waitReads(1) // not live: the seed waits for a publish
	src.set("video", "audio")
	first := next("when the stream went live")
	if first.gen != 1 {
		t.Fatalf("first start saw source generation %d, want 1", first.gen)
	}
	if p := first.p; !p.Seed || p.Stream != "demo" || p.Token != "s3cret" || p.BudgetKbps != 4000 ||
		p.Server != "http://origin.test" || p.Source != SeedSource(src) {
		t.Fatalf("seed node params %+v", p)
	}
	// The seed keeps what the origin keeps: its store has the origin's
	// window (here the default minute), not only a byte bound (issue 10).
	if p := first.p; p.StoreBytes != 8<<20 || p.StoreWindow != time.Minute {
		t.Fatalf("seed store bounds %d bytes, window %v; want 8 MiB and 1m", p.StoreBytes, p.StoreWindow)
	}

	_, reads := src.state()
	waitReads(reads + 5) // five checks of unchanged renditions: no restart
	noStart("with unchanged renditions")

	second := change(first, "video_hi", "video_lo", "audio") // another simulcast layout

	mu.Lock()
	fail = true
	mu.Unlock()
	failed := change(second, "video") // that start fails, and is retried
	third := next("after a failed start")
	if third.gen != failed.gen {
		t.Fatalf("retry saw source generation %d, want %d", third.gen, failed.gen)
	}

	mu.Lock()
	present = false
	mu.Unlock()
	src.set("audio") // the node goes down and the stream is gone: no restart
	waitClosed(third, "after its renditions changed")
	done := make(chan struct{})
	go func() { sd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the seed did not stop when its stream was gone")
	}
	noStart("for a stream that is gone")
}

// TestSeedsStopWithContext: ending ctx closes the running seed node and
// ends Run.
func TestSeedsStopWithContext(t *testing.T) {
	src := newFakeSeedSource()
	src.set("video", "audio")
	started := make(chan *fakeSeedNode, 1)
	sd, err := NewSeeds(SeedsParams{
		Server: "http://origin.test", Restart: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Source: func(string) (SeedSource, bool) { return src, true },
	})
	if err != nil {
		t.Fatal(err)
	}
	sd.p.start = func(context.Context, NodeParams) (seedNode, error) {
		n := &fakeSeedNode{closed: make(chan struct{})}
		started <- n
		return n, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	sd.Run(ctx, "demo")
	var n *fakeSeedNode
	select {
	case n = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no seed start")
	}
	cancel()
	sd.Wait()
	select {
	case <-n.closed:
	default:
		t.Fatal("Run ended with its seed node open")
	}
}

func TestNewSeedsParams(t *testing.T) {
	src := func(string) (SeedSource, bool) { return nil, false }
	for _, p := range []SeedsParams{{Source: src}, {Server: "http://origin.test"}} {
		if _, err := NewSeeds(p); !errors.Is(err, ErrSeedsParams) {
			t.Errorf("NewSeeds(%+v) = %v, want ErrSeedsParams", p, err)
		}
	}
}

// TestTakeOffer: each peer's offers to the seed are paced by its own token
// bucket (burst, then one per interval), and the buckets' map stays bounded.
func TestTakeOffer(t *testing.T) {
	b := map[protocol.PeerID]*rate.Limiter{}
	t0 := time.Unix(1000, 0)
	took := func(from protocol.PeerID, at time.Duration) bool {
		return takeOffer(b, from, t0.Add(at), time.Second, 3)
	}
	for i := range 3 {
		if !took("a", 0) {
			t.Fatalf("offer %d of a burst of 3 refused", i+1)
		}
	}
	if took("a", 0) || took("a", 500*time.Millisecond) {
		t.Fatal("a fourth offer within the second was taken")
	}
	if !took("b", 500*time.Millisecond) {
		t.Fatal("another peer's offer was refused: buckets are per peer")
	}
	if !took("a", 1100*time.Millisecond) || took("a", 1200*time.Millisecond) {
		t.Fatal("a's bucket should refill one offer a second")
	}
	for i := range 2 * maxOfferBuckets {
		took(protocol.PeerID(fmt.Sprint("p", i)), time.Hour)
	}
	if len(b) > maxOfferBuckets {
		t.Fatalf("%d buckets remembered, want at most %d", len(b), maxOfferBuckets)
	}
}
