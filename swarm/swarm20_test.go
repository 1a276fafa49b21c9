package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/seedcast/seedcast/scheduler"
)

// TestTwentyNodeSwarm: twenty nodes with modest relay budgets on loopback,
// fed by an origin that serves only two viewers' worth of links. Over the
// steady state (after every node joined), most viewer bytes come from peers
// and chunks reach their nodes before their playback moment.
func TestTwentyNodeSwarm(t *testing.T) {
	if testing.Short() {
		t.Skip("20 pion nodes")
	}
	if raceEnabled {
		t.Skip("timing under -race on two cores means nothing; ./scripts/test runs this without -race")
	}
	url := startLiveOrigin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var nodes []*Node
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	for i := 0; i < 20; i++ {
		n, err := StartNode(ctx, NodeParams{
			Server: url, Stream: "demo", BudgetKbps: 2000, API: loopbackAPI(),
			// Twenty pion nodes (under -race) load two cores enough to
			// multiply the origin's RTT; that is not the uplink congestion
			// the guard is for, and budgets are tested on their own.
			Guard: scheduler.RTTGuardParams{Slack: 5 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	sum := func() (s Stats) {
		for _, n := range nodes {
			x := n.Stats()
			s.BytesFromPeers += x.BytesFromPeers
			s.BytesFromOrigin += x.BytesFromOrigin
			s.BytesFromSeed += x.BytesFromSeed
			s.Pulled += x.Pulled
			s.PullsNoPusher += x.PullsNoPusher
			s.PullsLatePush += x.PullsLatePush
			s.Pushed += x.Pushed
			s.StallReports += x.StallReports
			s.Reassigned += x.Reassigned
			s.ChunksOnTime += x.ChunksOnTime
			s.ChunksLate += x.ChunksLate
			s.Rejected += x.Rejected
		}
		return s
	}
	wait := func(d time.Duration) {
		select {
		case <-time.After(d): // the stream is live: measuring takes wall time
		case <-ctx.Done():
			t.Fatal("deadline")
		}
	}
	wait(4 * time.Second) // joins, links, start-up backlog
	a := sum()
	wait(5 * time.Second)
	b := sum()
	peers, origin := b.BytesFromPeers-a.BytesFromPeers, b.BytesFromOrigin-a.BytesFromOrigin
	onTime, late := b.ChunksOnTime-a.ChunksOnTime, b.ChunksLate-a.ChunksLate
	offload := float64(peers) / float64(peers+origin)
	continuity := float64(onTime) / float64(onTime+late)
	t.Logf("steady state over 5 s: %d bytes from peers, %d from the origin (offload %.1f%%); %d chunks on time, %d late (continuity %.2f%%)",
		peers, origin, 100*offload, onTime, late, 100*continuity)
	t.Logf("pulls: %d with no pusher, %d after a late push", b.PullsNoPusher-a.PullsNoPusher, b.PullsLatePush-a.PullsLatePush)
	t.Logf("of the origin's bytes %d came from the seed; %d chunks pushed, %d pulled from peers; %d stall reports, %d reassignments",
		b.BytesFromSeed-a.BytesFromSeed, b.Pushed-a.Pushed, b.Pulled-a.Pulled, b.StallReports-a.StallReports, b.Reassigned-a.Reassigned)
	if t.Failed() || testing.Verbose() {
		for i, n := range nodes {
			t.Logf("node %d: %+v", i, n.Stats())
		}
	}
	if b.Rejected != 0 {
		t.Errorf("%d rejected", b.Rejected)
	}
	if offload <= 0.5 {
		t.Errorf("offload %.2f, want more than half of viewer bytes from peers", offload)
	}
	if onTime == 0 || continuity < 0.99 {
		t.Errorf("continuity %.4f", continuity)
	}
	if t.Failed() {
		for i, n := range nodes {
			t.Logf("node %d: %+v", i, n.Stats())
		}
	}
}
