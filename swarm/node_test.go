package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/seedcast/seedcast/origin/origintest"
)

// startLiveOrigin serves the demo clip live (real time) as stream "demo",
// with the tracker and the origin's seed node, until the test ends.
func startLiveOrigin(t *testing.T) string {
	o, _ := startSeeded(t, origintest.Params{}, 4000)
	return o.URL
}

// startSeeded starts a live origin and its seed node with an egress budget
// of seedKbps, as seedcast serve does.
func startSeeded(t testing.TB, p origintest.Params, seedKbps int) (*origintest.Origin, *Node) {
	t.Helper()
	o := origintest.Start(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.WaitLive(ctx); err != nil {
		t.Fatal(err)
	}
	seed, err := StartNode(ctx, NodeParams{
		Server: o.URL, Stream: o.Stream, Seed: true, Token: o.Secret, BudgetKbps: seedKbps,
		Source: o.Server.Source(o.Live), API: loopbackAPI(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(seed.Close)
	return o, seed
}

// TestTwoNodeSwarm: a relay node fed by the origin pushes the stream to a
// second node, which gets most of its bytes from the relay, all verified.
func TestTwoNodeSwarm(t *testing.T) {
	url := startLiveOrigin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	relay, err := StartNode(ctx, NodeParams{Server: url, Stream: "demo", BudgetKbps: 10_000, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	viewer, err := StartNode(ctx, NodeParams{Server: url, Stream: "demo", BudgetKbps: 0, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for viewer.Stats().Chunks < 24 { // 3 s of video and audio
		select {
		case <-ctx.Done():
			t.Fatalf("viewer holds %d chunks; relay %+v, viewer %+v", viewer.Stats().Chunks, relay.Stats(), viewer.Stats())
		case <-tick.C:
		}
	}
	rs, vs := relay.Stats(), viewer.Stats()
	t.Logf("relay %+v", rs)
	t.Logf("viewer %+v", vs)
	if rs.Rejected+vs.Rejected != 0 {
		t.Errorf("%d chunks rejected", rs.Rejected+vs.Rejected)
	}
	if offload := float64(vs.BytesFromPeers) / float64(vs.BytesFromPeers+vs.BytesFromOrigin); offload < 0.5 {
		t.Errorf("viewer offload %.2f, want most bytes from the relay", offload)
	}
	if rs.BytesUploaded == 0 || vs.BytesUploaded != 0 {
		t.Errorf("uploads: relay %d, viewer (relay off) %d", rs.BytesUploaded, vs.BytesUploaded)
	}
}

// TestWelcomeDelay: a node keeps the playback delay its tracker gives in the
// welcome, unless its own params set one.
func TestWelcomeDelay(t *testing.T) {
	o, _ := startSeeded(t, origintest.Params{Delay: 5 * time.Second}, 4000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		own, want time.Duration
	}{{0, 5 * time.Second}, {2 * time.Second, 2 * time.Second}} {
		n, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, Buffer: c.own, API: loopbackAPI()})
		if err != nil {
			t.Fatal(err)
		}
		got := n.Stats().Delay
		n.Close()
		if got != c.want {
			t.Errorf("own delay %v: the node keeps %v, want %v", c.own, got, c.want)
		}
	}
}
