package swarm

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/seedcast/seedcast/tracker"
	"github.com/seedcast/seedcast/tracker/protocol"
	"github.com/seedcast/seedcast/tracker/server"
)

func startTracker(t *testing.T) string {
	t.Helper()
	srv, err := server.New(server.Params{
		Streams: server.StreamsFunc(func(name string) (server.StreamInfo, bool) {
			return server.StreamInfo{PublicKey: strings.Repeat("ab", 32), Manifest: "/live/" + name + "/manifest", BitrateKbps: 1000}, name == "demo"
		}),
		// Both nodes are on loopback, one address: believed, as the
		// operator's own relays would be.
		Swarm: tracker.SwarmParams{Substreams: 4, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, OriginSlots: 4, Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

func join(budget int) protocol.Join {
	return protocol.Join{Stream: "demo", Kind: protocol.KindNative, BudgetKbps: budget}
}

// Two nodes through a real tracker: the second is fed by the first, they
// exchange signaling, and the second is reassigned when the first leaves.
func TestTrackerClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	url := startTracker(t)
	relay, err := DialTracker(ctx, TrackerParams{URL: url, Join: join(10_000)})
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := DialTracker(ctx, TrackerParams{URL: url, Join: join(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	w := viewer.Welcome()
	if w.PublicKey != strings.Repeat("ab", 32) || w.Manifest != "/live/demo/manifest" || len(w.Upstreams) != 4 {
		t.Fatalf("welcome %+v", w)
	}
	relayID := relay.Welcome().Peer
	for _, u := range w.Upstreams {
		if u.Peer != relayID {
			t.Fatalf("viewer's upstream %+v; the origin is full, want the relay %s", u, relayID)
		}
	}
	if err := viewer.Signal(ctx, relayID, &protocol.SDP{Type: "offer", SDP: "v=0\r\n"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-relay.Events():
		s, ok := ev.(*protocol.Signal)
		if !ok || s.From != w.Peer || s.SDP == nil || s.SDP.Type != "offer" {
			t.Fatalf("relay got %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("no signal")
	}
	if err := relay.Report(ctx, protocol.Report{BufferSec: 2, UploadKbps: 800}); err != nil {
		t.Fatal(err)
	}
	if err := relay.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	for i := 0; i < 4; i++ {
		select {
		case ev := <-viewer.Events():
			r, ok := ev.(*protocol.Reassign)
			if !ok || r.Reason != "upstream-left" || r.Peer == relayID {
				t.Fatalf("after the relay left: %+v", ev)
			}
		case <-ctx.Done():
			t.Fatal("no reassign")
		}
	}
	if err := relay.Report(ctx, protocol.Report{}); !errors.Is(err, ErrTrackerClosed) {
		t.Errorf("report after close: %v", err)
	}
}

func TestTrackerRefusal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := startTracker(t)
	j := join(0)
	j.Stream = "nope"
	if _, err := DialTracker(ctx, TrackerParams{URL: url, Join: j}); err == nil || !strings.Contains(err.Error(), "unknown stream") {
		t.Errorf("unknown stream: %v", err)
	}
}
