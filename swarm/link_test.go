package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/seedcast/seedcast/swarm/wire"
	"github.com/seedcast/seedcast/tracker/protocol"
)

var loopbackAPI = LoopbackAPI

// pump hands a node's tracker signals to its linker until ctx ends.
func pump(ctx context.Context, t *testing.T, c *TrackerClient, l *Linker, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-c.Events():
			if !ok {
				return
			}
			if s, ok := ev.(*protocol.Signal); ok {
				if err := l.HandleSignal(ctx, s); err != nil {
					t.Errorf("signal: %v", err)
				}
			}
		}
	}
}

// Two nodes, linked by the tracker, open a data channel through its
// signaling and exchange wire messages both ways.
func TestLinkThroughTracker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := startTracker(t)
	relayTC, err := DialTracker(ctx, TrackerParams{URL: url, Join: join(10_000)})
	if err != nil {
		t.Fatal(err)
	}
	defer relayTC.Close()
	viewerTC, err := DialTracker(ctx, TrackerParams{URL: url, Join: join(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer viewerTC.Close()

	relay := NewLinker(LinkerParams{API: loopbackAPI(), Signaler: relayTC})
	viewer := NewLinker(LinkerParams{API: loopbackAPI(), Signaler: viewerTC})
	defer relay.Close()
	defer viewer.Close()
	pumpCtx, stopPumps := context.WithCancel(ctx)
	d1, d2 := make(chan struct{}), make(chan struct{})
	go pump(pumpCtx, t, relayTC, relay, d1)
	go pump(pumpCtx, t, viewerTC, viewer, d2)
	defer func() { stopPumps(); <-d1; <-d2 }()

	up := viewerTC.Welcome().Upstreams[0].Peer // the relay: the origin is full
	if up != relayTC.Welcome().Peer {
		t.Fatalf("upstream %s, want the relay", up)
	}
	out, err := viewer.Dial(ctx, up)
	if err != nil {
		t.Fatal(err)
	}
	var in *Link
	select {
	case in = <-relay.Accepted():
	case <-ctx.Done():
		t.Fatal("relay accepted no link")
	}
	if in.Peer != viewerTC.Welcome().Peer {
		t.Errorf("accepted link from %s", in.Peer)
	}
	hello := func(budget uint32) *wire.Hello {
		return &wire.Hello{Version: wire.Version, Renditions: []string{"v0", "a0"}, BudgetKbps: budget}
	}
	for _, c := range []struct {
		from, to *Link
		budget   uint32
	}{{out, in, 0}, {in, out, 10_000}} {
		if err := c.from.Send(hello(c.budget)); err != nil {
			t.Fatal(err)
		}
		select {
		case frame := <-c.to.Recv():
			m, err := wire.Decode(frame)
			h, ok := m.(*wire.Hello)
			if err != nil || !ok || h.BudgetKbps != c.budget || len(h.Renditions) != 2 {
				t.Fatalf("received %+v, %v", m, err)
			}
		case <-ctx.Done():
			t.Fatal("no hello")
		}
	}
	out.Close()
	select {
	case <-in.Done():
	case <-ctx.Done():
		t.Error("the far end did not see the link close")
	}
}
