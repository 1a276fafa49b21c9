package driver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// TestMain fails the package's tests if they leave goroutines behind. (The
// tests run under GOOS=js GOARCH=wasm too, whose runtime keeps a goroutine
// of its own for JavaScript's events.)
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("runtime.handleEvent"))
}

// The loop runs a real core here, in real time, against fakes of the world:
// a live stream that publishes a slot (one chunk of v0, one of a0) every
// chunkD, links that are in-memory pipes, and a tracker that records.

const chunkD = 50 * time.Millisecond

var errNoChunk = errors.New("no such chunk")

// stream is a live origin: slot n is listed from start + (n+1)·chunkD.
type stream struct {
	key   ed25519.PrivateKey
	start time.Time

	mu      sync.Mutex
	batches map[uint64]manifest.Batch
	data    map[manifest.ID][]byte
	fetched int
}

func newStream() *stream {
	return &stream{
		key:     ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)),
		start:   time.Now().Add(-8 * chunkD),
		batches: map[uint64]manifest.Batch{}, data: map[manifest.ID][]byte{},
	}
}

// slot returns slot seq's signed batch (number seq+1). s.mu is held.
func (s *stream) slot(seq uint64) manifest.Batch {
	if b, ok := s.batches[seq]; ok {
		return b
	}
	b := manifest.Batch{Stream: "demo", N: seq + 1}
	for i, r := range []string{"v0", "a0"} {
		d := make([]byte, 3000-i*2000)
		for j := range d {
			d[j] = byte(seq*7 + uint64(i*31+j))
		}
		s.data[manifest.Sum(d)] = d
		b.Entries = append(b.Entries, manifest.Entry{
			Kind: manifest.KindChunk, Rendition: r, Seq: seq, MediaTime: time.Duration(seq) * chunkD, Duration: chunkD,
			IngestTime: s.start.Add(time.Duration(seq+1) * chunkD), Size: uint32(len(d)), Independent: true, Hash: manifest.Sum(d),
		})
	}
	if err := b.Sign(s.key); err != nil {
		panic(err)
	}
	s.batches[seq] = b
	return b
}

func (s *stream) Manifest(_ context.Context, after int64) (*manifest.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &manifest.Manifest{
		Version: 1, Stream: "demo", PublicKey: hex.EncodeToString(s.key.Public().(ed25519.PublicKey)), ChunkDurationMs: float64(chunkD.Milliseconds()),
		Renditions: []manifest.RenditionInfo{{Name: "v0", Kind: "video"}, {Name: "a0", Kind: "audio"}},
	}
	listed := uint64(time.Since(s.start) / chunkD)
	for seq := listed - min(listed, 16); seq < listed; seq++ {
		b := s.slot(seq)
		if int64(b.N) <= after {
			continue
		}
		for _, e := range b.Entries {
			m.Entries = append(m.Entries, manifest.ToJSON(e, b.N))
		}
		m.Batches = append(m.Batches, manifest.JSONBatch{N: b.N, Signature: hex.EncodeToString(b.Signature)})
	}
	return m, nil
}

func (s *stream) Chunk(_ context.Context, id manifest.ID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.data[id]
	if !ok {
		return nil, errNoChunk
	}
	s.fetched++
	return d, nil
}

func (s *stream) Ping(context.Context) (time.Duration, error) { return time.Millisecond, nil }

func (s *stream) welcome(peer protocol.PeerID, ups ...protocol.PeerID) protocol.Welcome {
	w := protocol.Welcome{Peer: peer, PublicKey: hex.EncodeToString(s.key.Public().(ed25519.PublicKey)), Substreams: 2}
	for i, u := range ups {
		w.Upstreams = append(w.Upstreams, protocol.Upstream{Substream: i, Peer: u})
	}
	return w
}

var errPipeClosed = errors.New("pipe closed")

// pipeEnd is one end of an in-memory link; closing either end closes both.
type pipeEnd struct {
	remote protocol.PeerID
	recv   chan []byte
	done   chan struct{}
	once   *sync.Once
	other  *pipeEnd
}

// pipe links a to b: it returns a's end and b's.
func pipe(a, b protocol.PeerID) (*pipeEnd, *pipeEnd) {
	done, once := make(chan struct{}), new(sync.Once)
	x := &pipeEnd{remote: b, recv: make(chan []byte, 256), done: done, once: once}
	y := &pipeEnd{remote: a, recv: make(chan []byte, 256), done: done, once: once}
	x.other, y.other = y, x
	return x, y
}

func (p *pipeEnd) Remote() protocol.PeerID { return p.remote }
func (p *pipeEnd) Recv() <-chan []byte     { return p.recv }
func (p *pipeEnd) Done() <-chan struct{}   { return p.done }
func (p *pipeEnd) Buffered() uint64        { return 0 }
func (p *pipeEnd) Close(error)             { p.once.Do(func() { close(p.done) }) }

func (p *pipeEnd) SendFrame(frame []byte) error {
	select {
	case <-p.done:
		return errPipeClosed
	default:
	}
	select {
	case p.other.recv <- bytes.Clone(frame):
	default:
		p.Close(nil) // a reader that cannot keep up
	}
	return nil
}

// network finds linkers by peer id.
type network struct {
	mu      sync.Mutex
	linkers map[protocol.PeerID]*linker
}

// linker dials the linkers of its network; HandleSignal runs signal.
type linker struct {
	self     protocol.PeerID
	net      *network
	accepted chan *pipeEnd
	signal   func(ctx context.Context, s *protocol.Signal) error

	mu    sync.Mutex
	links []*pipeEnd
}

func (n *network) linker(self protocol.PeerID) *linker {
	l := &linker{self: self, net: n, accepted: make(chan *pipeEnd, 16)}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.linkers == nil {
		n.linkers = map[protocol.PeerID]*linker{}
	}
	n.linkers[self] = l
	return l
}

func (l *linker) keep(p *pipeEnd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.links = append(l.links, p)
}

func (l *linker) Dial(ctx context.Context, peer protocol.PeerID) (Link, error) {
	l.net.mu.Lock()
	remote := l.net.linkers[peer]
	l.net.mu.Unlock()
	if remote == nil {
		return nil, fmt.Errorf("no peer %s", peer)
	}
	a, b := pipe(l.self, peer)
	l.keep(a)
	remote.keep(b)
	select {
	case remote.accepted <- b:
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *linker) Accept(ctx context.Context) (Link, error) {
	select {
	case p := <-l.accepted:
		return p, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *linker) HandleSignal(ctx context.Context, s *protocol.Signal) error {
	if l.signal == nil {
		return nil
	}
	return l.signal(ctx, s)
}

func (l *linker) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.links {
		p.Close(nil)
	}
}

var errTrackerGone = errors.New("tracker gone")

// tracker records reports; Events is fed by the test.
type tracker struct {
	events chan any
	once   sync.Once

	mu      sync.Mutex
	reports []protocol.Report
}

func newTracker() *tracker { return &tracker{events: make(chan any, 64)} }

func (t *tracker) Events() <-chan any { return t.events }
func (t *tracker) Err() error         { return errTrackerGone }
func (t *tracker) Close()             { t.once.Do(func() { close(t.events) }) }

func (t *tracker) Report(_ context.Context, r protocol.Report) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reports = append(t.reports, r)
	return nil
}

func (t *tracker) complaints() []protocol.Complaint {
	t.mu.Lock()
	defer t.mu.Unlock()
	var cs []protocol.Complaint
	for _, r := range t.reports {
		if r.Complaint != nil {
			cs = append(cs, *r.Complaint)
		}
	}
	return cs
}

// ready records what OnReady got.
type ready struct {
	mu      sync.Mutex
	entries []manifest.Entry
	bad     int // bytes that do not match their entry
}

func (r *ready) onReady(e manifest.Entry, _ time.Time, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if manifest.Sum(data) != e.Hash {
		r.bad++
	}
	r.entries = append(r.entries, e)
}

func (r *ready) count() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries), r.bad
}

// node is a loop around a real core, with its fakes.
type node struct {
	loop    *Loop
	linker  *linker
	tracker *tracker
	ready   *ready
	uploads atomic.Int64
}

func startNode(t *testing.T, s *stream, net *network, self protocol.PeerID, budget int, ups ...protocol.PeerID) *node {
	t.Helper()
	m, err := WaitLive(context.Background(), s, chunkD)
	if err != nil {
		t.Fatal(err)
	}
	w := s.welcome(self, ups...)
	verify, upstreams, err := FromWelcome("demo", w)
	if err != nil {
		t.Fatal(err)
	}
	store := core.NewStore(0)
	c, err := core.New(core.Params{
		Stream: "demo", BudgetKbps: budget, Renditions: []string{"v0", "a0"}, Substreams: w.Substreams, Upstreams: upstreams,
		Manifest: m, Verifier: verify, Store: store, Now: time.Now(),
		PollEvery: chunkD / 2, Buffer: 300 * time.Millisecond, Startup: 100 * time.Millisecond, PushGrace: 150 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{linker: net.linker(self), tracker: newTracker(), ready: &ready{}}
	n.loop, err = Start(Params{
		Core: c, Store: store, Linker: n.linker, Tracker: n.tracker, Origin: s,
		OnReady: n.ready.onReady, OnUpload: func(_ time.Time, b int) { n.uploads.Add(int64(b)) },
		Leave: func() { n.tracker.Close(); n.linker.Close() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.loop.Close)
	return n
}

// waitFor polls cond until it holds, or fails the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A node whose substreams all come over HTTP fetches the live stream from
// the origin and hands every chunk, verified, to OnReady.
func TestLoopOverHTTP(t *testing.T) {
	s := newStream()
	n := startNode(t, s, &network{}, "viewer", 0)
	waitFor(t, "8 chunks ready", func() bool { c, _ := n.ready.count(); return c >= 8 })
	if _, bad := n.ready.count(); bad != 0 {
		t.Errorf("%d chunks handed to OnReady do not match their entry", bad)
	}
	st := n.loop.Stats()
	if st.BytesFromOrigin == 0 || st.Rejected != 0 {
		t.Errorf("stats %+v", st)
	}
	if got := n.loop.Renditions(); !slices.Equal(got, []string{"v0", "a0"}) {
		t.Errorf("renditions %v", got)
	}
}

// A viewer reassigned to a relay dials it; the relay pushes the stream over
// the link (framed, split, decoded) within its budget.
func TestLoopPeers(t *testing.T) {
	s := newStream()
	net := &network{}
	relay := startNode(t, s, net, "relay", 10_000)
	viewer := startNode(t, s, net, "viewer", 0)
	for sub := range 2 {
		viewer.tracker.events <- &protocol.Reassign{Type: protocol.TypeReassign, Substream: sub, Peer: "relay", Depth: 2}
	}
	waitFor(t, "chunks from the relay", func() bool { return viewer.loop.Stats().BytesFromPeers > 0 })
	waitFor(t, "the viewer's chunks ready", func() bool { c, _ := viewer.ready.count(); return c >= 8 })
	if _, bad := viewer.ready.count(); bad != 0 {
		t.Errorf("%d chunks handed to OnReady do not match their entry", bad)
	}
	if relay.loop.Stats().BytesUploaded == 0 || relay.uploads.Load() == 0 {
		t.Errorf("relay uploaded %d bytes, OnUpload saw %d", relay.loop.Stats().BytesUploaded, relay.uploads.Load())
	}
	if viewer.uploads.Load() != 0 {
		t.Errorf("the viewer (relay off) uploaded %d bytes", viewer.uploads.Load())
	}
	if got := relay.loop.Stats().Peers; got != 1 {
		t.Errorf("relay has %d links, want 1", got)
	}
}

// A peer that sends bytes that do not frame is cut off and reported.
func TestLoopBadInput(t *testing.T) {
	s := newStream()
	n := startNode(t, s, &network{}, "node", 10_000)
	evil, theirs := pipe("evil", "node")
	n.linker.keep(theirs)
	n.linker.accepted <- theirs
	waitFor(t, "the link open", func() bool { return n.loop.Stats().Peers == 1 })
	if err := evil.SendFrame([]byte{0xff, 0xff, 0xff, 0xff, 0}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-evil.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the link stayed open")
	}
	waitFor(t, "the complaint", func() bool { return len(n.tracker.complaints()) == 1 })
	if c := n.tracker.complaints()[0]; c.Peer != "evil" || c.Reason != protocol.ComplaintBadMessage {
		t.Errorf("complaint %+v", c)
	}
	waitFor(t, "the link forgotten", func() bool { return n.loop.Stats().Peers == 0 })
}

// Offers are answered each on a goroutine of its own, MaxOffers at most at
// once; the signals over that are dropped.
func TestLoopOffersBounded(t *testing.T) {
	s := newStream()
	net := &network{}
	release := make(chan struct{})
	var running, calls atomic.Int32
	n := startNode(t, s, net, "node", 0)
	// The hook is set before any signal is sent: the loop reads it only then.
	n.linker.signal = func(ctx context.Context, _ *protocol.Signal) error {
		calls.Add(1)
		running.Add(1)
		defer running.Add(-1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	for range MaxOffers + 5 {
		n.tracker.events <- &protocol.Signal{Type: protocol.TypeSignal, From: "down", SDP: &protocol.SDP{Type: "offer", SDP: "v=0"}}
	}
	waitFor(t, "MaxOffers answering", func() bool { return running.Load() == MaxOffers })
	time.Sleep(50 * time.Millisecond)
	if got := calls.Load(); got != MaxOffers {
		t.Errorf("%d offers handled at once, want %d", got, MaxOffers)
	}
	close(release)
	waitFor(t, "the offers done", func() bool { return running.Load() == 0 })
	n.tracker.events <- &protocol.Signal{Type: protocol.TypeSignal, From: "down", SDP: &protocol.SDP{Type: "offer", SDP: "v=0"}}
	waitFor(t, "a new offer handled", func() bool { return calls.Load() == MaxOffers+1 })
}

// Close ends everything once; a lost tracker leaves the loop running and
// says so on Lost, which Close alone does not close.
func TestLoopClose(t *testing.T) {
	s := newStream()
	n := startNode(t, s, &network{}, "node", 0)
	select {
	case <-n.loop.Lost():
		t.Fatal("Lost closed with the tracker still there")
	default:
	}
	n.tracker.Close() // the tracker goes away
	select {
	case <-n.loop.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed 5 s after the tracker went away")
	}
	waitFor(t, "chunks after the tracker left", func() bool { c, _ := n.ready.count(); return c >= 2 })
	n.loop.Close()
	n.loop.Close()

	kept := startNode(t, newStream(), &network{}, "kept", 0)
	kept.loop.Close()
	select {
	case <-kept.loop.Lost():
		t.Error("Close closed Lost")
	default:
	}
}

func TestStartParams(t *testing.T) {
	if _, err := Start(Params{}); !errors.Is(err, ErrParams) {
		t.Errorf("no core: %v, want ErrParams", err)
	}
	s := newStream()
	m, _ := s.Manifest(context.Background(), -1)
	verify, _, err := FromWelcome("demo", s.welcome("x"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(core.Params{Stream: "demo", Renditions: []string{"v0"}, Manifest: m, Verifier: verify, Store: core.NewStore(0), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	p := Params{Core: c, Linker: (&network{}).linker("x"), Tracker: newTracker(), Origin: s, Leave: func() {}, OnReady: (&ready{}).onReady}
	if _, err := Start(p); !errors.Is(err, ErrParams) {
		t.Errorf("OnReady without a store: %v, want ErrParams", err)
	}
}

func TestFromWelcome(t *testing.T) {
	s := newStream()
	w := s.welcome("x", "a", "b")
	w.Substreams = 3
	w.Upstreams = append(w.Upstreams, protocol.Upstream{Substream: 7, Peer: "out of range"})
	_, ups, err := FromWelcome("demo", w)
	if err != nil || !slices.Equal(ups, []protocol.PeerID{"a", "b", ""}) {
		t.Errorf("upstreams %q, %v", ups, err)
	}
	for _, key := range []string{"", "zz", "abcd"} {
		w.PublicKey = key
		if _, _, err := FromWelcome("demo", w); !errors.Is(err, ErrWelcome) {
			t.Errorf("key %q: %v, want ErrWelcome", key, err)
		}
	}
}

// notLive is an origin whose stream has no rendition yet.
type notLive struct{ stream }

func (o *notLive) Manifest(context.Context, int64) (*manifest.Manifest, error) {
	return &manifest.Manifest{Version: 1, Stream: "demo"}, nil
}

func TestWaitLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := WaitLive(ctx, &notLive{}, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a stream that never goes live: %v", err)
	}
}

// notifying is a stream that counts manifest fetches and says when its
// manifest changed.
type notifying struct {
	*stream
	fetches atomic.Int32
	changed chan struct{}
}

func (o *notifying) Manifest(ctx context.Context, after int64) (*manifest.Manifest, error) {
	o.fetches.Add(1)
	return o.stream.Manifest(ctx, after)
}

func (o *notifying) Changed() <-chan struct{} { return o.changed }

// A followed Notifier's changes bring the next manifest poll forward.
func TestLoopFollow(t *testing.T) {
	o := &notifying{stream: newStream(), changed: make(chan struct{}, 1)}
	m, _ := o.stream.Manifest(context.Background(), -1)
	verify, ups, err := FromWelcome("demo", o.welcome("x"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := core.New(core.Params{
		Stream: "demo", Renditions: []string{"v0", "a0"}, Substreams: 2, Upstreams: ups, Manifest: m,
		Verifier: verify, Store: core.NewStore(0), Now: time.Now(), Notified: true, SlowPoll: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	tr, lk := newTracker(), (&network{}).linker("x")
	loop, err := Start(Params{Core: c, Linker: lk, Tracker: tr, Origin: o, Leave: func() { tr.Close(); lk.Close() }})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	loop.Follow(o)
	waitFor(t, "the first poll", func() bool { return o.fetches.Load() >= 1 })
	time.Sleep(100 * time.Millisecond)
	before := o.fetches.Load()
	o.changed <- struct{}{}
	waitFor(t, "a poll after the change", func() bool { return o.fetches.Load() > before })
}
