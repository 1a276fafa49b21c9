package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/seedcast/seedcast/origin/origintest"
	"github.com/seedcast/seedcast/tracker"
)

// kill stops a node the way a crash does: its peer links and its tracker
// connection drop with no leave message.
func (n *Node) kill() {
	n.cancel()
	n.linker.Close()
	n.tc.ws.CloseNow()
	n.wg.Wait()
	<-n.tc.done
}

// freeze makes a node stop sending media without a word: its links stay
// up, it chokes nobody, its budget silently goes to nothing.
func (n *Node) freeze() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.bucket.SetRate(time.Now(), 0, 0)
	n.rate = 0
}

// TestUpstreamKilled: a relay that feeds a viewer dies mid-stream, or
// silently stops sending. The viewer notices (the links drop, or pushes stop
// for StallAfter), the tracker reassigns its substreams, and it misses no
// playback deadline on the way.
func TestUpstreamKilled(t *testing.T) {
	for _, how := range []string{"killed", "frozen"} {
		t.Run(how, func(t *testing.T) { testUpstreamLost(t, how == "frozen") })
	}
}

func testUpstreamLost(t *testing.T, frozen bool) {
	o, _ := startSeeded(t, origintest.Params{OriginSlots: 4}, 4000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// relay takes the origin's four slots; spare is a second relay.
	relay, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: 4000, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			relay.Close()
		}
	}()
	waitFor(ctx, t, "the relay's chunks", func() bool { return relay.Stats().Chunks > 8 })
	spare, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: 4000, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	defer spare.Close()
	viewer, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: 0, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	relayID := relay.tc.Welcome().Peer
	fedBy := func() (n int) {
		viewer.mu.Lock()
		defer viewer.mu.Unlock()
		for _, u := range viewer.upstreams {
			if u == relayID {
				n++
			}
		}
		return n
	}
	if fedBy() == 0 {
		t.Fatalf("the viewer is not fed by the relay: %v", viewer.upstreams)
	}
	waitFor(ctx, t, "pushes from the relay", func() bool { return viewer.Stats().Pushed > 8 })
	before := viewer.Stats()
	t.Logf("the relay feeds %d of the viewer's substreams; now it goes (frozen: %v)", fedBy(), frozen)
	if frozen {
		relay.freeze()
	} else {
		relay.kill()
		killed = true
	}
	waitFor(ctx, t, "reassignment", func() bool { return fedBy() == 0 && viewer.Stats().Reassigned > before.Reassigned })
	sleepCtx(ctx, t, 4*time.Second) // and the stream goes on
	after := viewer.Stats()
	t.Logf("after the kill: %d reassignments, %d chunks on time, %d late; upstreams now %v",
		after.Reassigned-before.Reassigned, after.ChunksOnTime-before.ChunksOnTime, after.ChunksLate-before.ChunksLate, viewer.upstreamsNow())
	if raceEnabled {
		return // deadlines need a machine not slowed by -race
	}
	if after.ChunksLate != before.ChunksLate {
		t.Errorf("%d deadlines missed after the upstream died", after.ChunksLate-before.ChunksLate)
	}
	if after.ChunksOnTime-before.ChunksOnTime < 24 {
		t.Errorf("only %d chunks on time in the 4 s after the kill", after.ChunksOnTime-before.ChunksOnTime)
	}
}

func (n *Node) upstreamsNow() []tracker.PeerID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]tracker.PeerID(nil), n.upstreams...)
}
