//go:build !js

package peerlink

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

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
