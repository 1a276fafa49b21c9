package swarm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/seedcast/seedcast/origin/origintest"
	"github.com/seedcast/seedcast/scheduler"
)

// meter records every frame a node hands to its peer links.
type meter struct {
	mu     sync.Mutex
	at     []time.Time
	bytes  []int
	frames int
}

func (m *meter) record(at time.Time, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.at = append(m.at, at)
	m.bytes = append(m.bytes, n)
	m.frames++
}

// maxWindow returns the most bytes sent in any window of length d that
// starts at a frame sent at or after from, and the total since from.
func (m *meter) maxWindow(from time.Time, d time.Duration) (peak, total int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, sum := 0, 0
	for i := range m.at {
		if m.at[i].Before(from) {
			j = i + 1
			continue
		}
		total += m.bytes[i]
		sum += m.bytes[i]
		for m.at[i].Sub(m.at[j]) >= d {
			sum -= m.bytes[j]
			j++
		}
		peak = max(peak, sum)
	}
	return peak, total
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// sleepCtx waits d of wall time (the stream is live: measuring takes time).
func sleepCtx(ctx context.Context, t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		t.Fatal("test deadline")
	}
}

// TestRelayOff: a node with relay off hands no byte of media to any peer,
// while the swarm around it relays and it plays on time.
func TestRelayOff(t *testing.T) {
	o, _ := startSeeded(t, origintest.Params{OriginSlots: 4}, 4000)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	// It joins first and takes the origin's slots; the tracker then swaps
	// the relays in ahead of it, and it could still be asked for repairs.
	var off meter
	a, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: 0, API: loopbackAPI(), OnUpload: off.record})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var others []*Node
	defer func() {
		for _, n := range others {
			n.Close()
		}
	}()
	for range 3 {
		n, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: 1250, API: loopbackAPI()})
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, n)
	}
	sleepCtx(ctx, t, 6*time.Second)
	s := a.Stats()
	relayed := int64(0)
	for _, n := range others {
		relayed += n.Stats().BytesUploaded
	}
	t.Logf("relay-off node: %+v; the others uploaded %d bytes", s, relayed)
	for i, n := range others {
		t.Logf("other %d: %+v", i, n.Stats())
	}
	if off.frames != 0 || s.BytesUploaded != 0 {
		t.Errorf("relay off, yet %d frames (%d media bytes) went to peers", off.frames, s.BytesUploaded)
	}
	if relayed == 0 {
		t.Error("nobody relayed: the test proves nothing")
	}
	if s.ChunksOnTime < 30 || s.ChunksLate > 0 && !raceEnabled {
		t.Errorf("relay-off node played %d chunks on time, %d late", s.ChunksOnTime, s.ChunksLate)
	}
}

// TestRelayBudgetMedium: a relay at "medium" (25% of 10 − 5 Mbit/s) with
// more downstream demand than budget never sends more than 5% over its
// budget in any 1 s window, and does use its budget.
func TestRelayBudgetMedium(t *testing.T) {
	o, _ := startSeeded(t, origintest.Params{OriginSlots: 4}, 4000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	budget := scheduler.Budget{TotalKbps: 10_000, ReservedKbps: 5_000, Relay: scheduler.Relay{Level: scheduler.RelayMedium}}
	kbps := budget.RelayKbps()
	if kbps != 1250 {
		t.Fatalf("medium of 5 Mbit/s is %d kbps", kbps)
	}
	var m meter
	relay, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: int(kbps), API: loopbackAPI(), OnUpload: m.record})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	waitFor(ctx, t, "the relay's first chunks", func() bool { return relay.Stats().Chunks > 8 })
	var viewers []*Node
	defer func() {
		for _, n := range viewers {
			n.Close()
		}
	}()
	for range 5 { // 5 × ~550 kbit/s wanted from a 1250 kbit/s relay
		n, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: 0, API: loopbackAPI()})
		if err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, n)
	}
	sleepCtx(ctx, t, 2*time.Second) // links up
	from := time.Now()
	sleepCtx(ctx, t, 6*time.Second)
	window := time.Since(from)
	peak, total := m.maxWindow(from, time.Second)
	rate := float64(kbps) * 1000 / 8
	t.Logf("relay budget %d kbit/s = %.0f B/s: busiest 1 s window %d B (%.1f%% of budget), mean %.0f B/s over %v",
		kbps, rate, peak, 100*float64(peak)/rate, float64(total)/window.Seconds(), window.Round(time.Millisecond))
	if float64(peak) > 1.05*rate {
		t.Errorf("a 1 s window carried %d bytes, over budget + 5%% (%.0f)", peak, 1.05*rate)
	}
	if raceEnabled {
		return // the cap holds by construction; pace and deadlines need a machine not slowed by -race
	}
	if mean := float64(total) / window.Seconds(); mean < 0.6*rate {
		t.Errorf("the relay sent %.0f B/s, well under its budget: demand did not exceed it, the test proves nothing", mean)
	}
	for i, n := range viewers {
		if s := n.Stats(); s.ChunksLate > 0 || s.ChunksOnTime == 0 {
			t.Errorf("viewer %d: %d on time, %d late (what the relay cannot carry must come from elsewhere)", i, s.ChunksOnTime, s.ChunksLate)
		}
	}
}

// TestRTTThrottle: when the origin's RTT rises well above its baseline, the
// node cuts its relay rate and says so; when it recovers, relay comes back.
func TestRTTThrottle(t *testing.T) {
	o, _ := startSeeded(t, origintest.Params{OriginSlots: 4}, 4000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	relay, err := StartNode(ctx, NodeParams{
		Server: o.URL, Stream: o.Stream, BudgetKbps: 2000, API: loopbackAPI(),
		SlowPoll: 100 * time.Millisecond, PollEvery: 100 * time.Millisecond,
		// A slack that CPU noise on a loaded two-core machine stays under.
		Guard: scheduler.RTTGuardParams{Interval: 300 * time.Millisecond, Slack: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	viewer, err := StartNode(ctx, NodeParams{Server: o.URL, Stream: o.Stream, BudgetKbps: 0, API: loopbackAPI()})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	sleepCtx(ctx, t, 2*time.Second) // a baseline
	if s := relay.Stats(); s.Throttled || s.RelayKbps != 2000 {
		t.Fatalf("throttled before the RTT rose: %+v", s)
	}
	o.SetRTT(time.Second)
	waitFor(ctx, t, "throttling", func() bool { s := relay.Stats(); return s.Throttled && s.RelayKbps < 2000 })
	s := relay.Stats()
	t.Logf("RTT +1 s: relay %d kbit/s, throttled, smoothed RTT %v", s.RelayKbps, s.RTT)
	o.SetRTT(0)
	waitFor(ctx, t, "relay to come back", func() bool { s := relay.Stats(); return !s.Throttled && s.RelayKbps == 2000 })
	if vs := viewer.Stats(); vs.ChunksLate > 0 && !raceEnabled {
		t.Errorf("the viewer behind the throttled relay missed %d deadlines", vs.ChunksLate)
	}
}
