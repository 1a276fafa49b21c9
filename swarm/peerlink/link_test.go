//go:build !js

package peerlink

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/seedcast/seedcast/swarm/driver"
	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// TestMain fails the package's tests if they leave goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func loopback() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// direct hands signals straight to the other linker, as the tracker would
// relay them (From set, To dropped).
type direct struct {
	self protocol.PeerID
	to   *Linker
	ctx  context.Context
	errs chan error
}

func (d *direct) Signal(_ context.Context, _ protocol.PeerID, sdp *protocol.SDP, _ *protocol.Candidate) error {
	go func() { d.errs <- d.to.HandleSignal(d.ctx, &protocol.Signal{From: d.self, SDP: sdp}) }()
	return nil
}

// Two linkers, as a driver sees them, open a link and pass frames both ways;
// closing one end closes the other.
func TestDriverLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, 4)
	down, up := &direct{self: "down", ctx: ctx, errs: errs}, &direct{self: "up", ctx: ctx, errs: errs}
	dl := NewLinker(LinkerParams{API: loopback(), Signaler: down})
	ul := NewLinker(LinkerParams{API: loopback(), Signaler: up})
	down.to, up.to = ul, dl
	defer dl.Close()
	defer ul.Close()

	out, err := dl.Driver().Dial(ctx, "up")
	if err != nil {
		t.Fatal(err)
	}
	in, err := ul.Driver().Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the offer and the answer
		if err := <-errs; err != nil {
			t.Fatalf("signal: %v", err)
		}
	}
	if out.Remote() != "up" || in.Remote() != "down" {
		t.Errorf("remotes %s, %s", out.Remote(), in.Remote())
	}
	if err := out.SendFrame([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-in.Recv():
		if string(m) != "ping" {
			t.Errorf("received %q", m)
		}
	case <-ctx.Done():
		t.Fatal("nothing received")
	}

	// A long run of frames goes as messages of at most wire.MaxPiece bytes,
	// whole and in order; once the backlog it made drains under LowWater,
	// the sender's drain callback runs.
	drained := make(chan struct{}, 1)
	out.(driver.Drainer).OnDrain(func() {
		select {
		case drained <- struct{}{}:
		default:
		}
	})
	run := make([]byte, 3*wire.MaxPiece+4321)
	for i := range run {
		run[i] = byte(i * 7)
	}
	for range 4 {
		if err := out.SendFrame(run); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for len(got) < 4*len(run) {
		select {
		case m := <-in.Recv():
			if len(m) > wire.MaxPiece {
				t.Fatalf("a data-channel message of %d bytes, over %d", len(m), wire.MaxPiece)
			}
			got = append(got, m...)
		case <-ctx.Done():
			t.Fatalf("received %d of %d bytes", len(got), 4*len(run))
		}
	}
	for i := range 4 {
		if !bytes.Equal(got[i*len(run):(i+1)*len(run)], run) {
			t.Fatalf("run %d arrived altered", i)
		}
	}
	select {
	case <-drained:
	case <-ctx.Done():
		t.Fatal("no drain callback after a backlog of 800 KB")
	}

	out.Close(nil)
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Fatal("the far end did not see the link close")
	}
	if err := out.SendFrame([]byte("x")); !errors.Is(err, ErrLinkClosed) {
		t.Errorf("send on a closed link: %v", err)
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := ul.Driver().Accept(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("accept with nothing dialed: %v", err)
	}
}

func TestHandleSignalRefuses(t *testing.T) {
	l := NewLinker(LinkerParams{API: loopback(), Signaler: &direct{}})
	defer l.Close()
	ctx := context.Background()
	if err := l.HandleSignal(ctx, &protocol.Signal{From: "x", SDP: &protocol.SDP{Type: "answer", SDP: "v=0"}}); err == nil {
		t.Error("an answer nobody dialed was taken")
	}
	if err := l.HandleSignal(ctx, &protocol.Signal{From: "x", SDP: &protocol.SDP{Type: "pranswer", SDP: "v=0"}}); !errors.Is(err, protocol.ErrBadMessage) {
		t.Errorf("unknown sdp type: %v", err)
	}
	if err := l.HandleSignal(ctx, &protocol.Signal{From: "x", SDP: &protocol.SDP{Type: "offer", SDP: "not sdp"}}); err == nil {
		t.Error("a garbage offer was answered")
	}
	if err := l.HandleSignal(ctx, &protocol.Signal{From: "x"}); err != nil {
		t.Errorf("a candidate-only signal: %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.links) != 0 || len(l.pending) != 0 {
		t.Errorf("%d links, %d pending left after refusals", len(l.links), len(l.pending))
	}
}

// countLease counts what a Linker does with the leases Admit gives.
type countLease struct {
	connected, released chan struct{}
}

func (c *countLease) Connected() { c.connected <- struct{}{} }
func (c *countLease) Release()   { c.released <- struct{}{} }

// TestOfferAdmission: Admit is asked before any peer connection is made
// for an offer, and its refusal is returned; a second offer from the same
// peer replaces its first link (one link per downstream); a link that never
// opens is closed after ConnectTimeout and its lease released.
func TestOfferAdmission(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	offer := func() string {
		pc, err := loopback().NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		if _, err := pc.CreateDataChannel("seedcast", nil); err != nil {
			t.Fatal(err)
		}
		o, err := pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		return o.SDP // no candidates: it never connects
	}()
	lease := &countLease{connected: make(chan struct{}, 4), released: make(chan struct{}, 4)}
	refuse := errors.New("no room")
	var asked []protocol.PeerID
	answers := make(chan error, 4)
	l := NewLinker(LinkerParams{
		API: loopback(), Signaler: &direct{to: NewLinker(LinkerParams{}), ctx: ctx, errs: answers}, ConnectTimeout: 300 * time.Millisecond,
		Admit: func(from protocol.PeerID) (Lease, error) {
			asked = append(asked, from)
			if from == "greedy" {
				return nil, refuse
			}
			return lease, nil
		},
	})
	defer l.Close()
	sig := func(from protocol.PeerID) error {
		return l.HandleSignal(ctx, &protocol.Signal{From: from, SDP: &protocol.SDP{Type: "offer", SDP: offer}})
	}
	if err := sig("greedy"); !errors.Is(err, ErrRefused) || !errors.Is(err, refuse) {
		t.Fatalf("refused offer: %v, want ErrRefused wrapping Admit's error", err)
	}
	if n := len(l.links); n != 0 {
		t.Fatalf("%d links after a refused offer, want none", n)
	}
	if err := sig("p"); err != nil {
		t.Fatal(err)
	}
	if err := sig("p"); err != nil {
		t.Fatal(err)
	}
	// The first link of p was closed for the second: its lease is back.
	select {
	case <-lease.released:
	case <-ctx.Done():
		t.Fatal("the replaced link's lease was not released")
	}
	l.mu.Lock()
	n := len(l.links)
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d links for one peer, want 1", n)
	}
	// It never opens: ConnectTimeout closes it.
	select {
	case <-lease.released:
	case <-ctx.Done():
		t.Fatal("a link that never opened was not closed after ConnectTimeout")
	}
	select {
	case <-lease.connected:
		t.Fatal("a link that never opened was reported connected")
	default:
	}
	if len(asked) != 3 {
		t.Errorf("Admit asked %d times, want 3", len(asked))
	}
}
