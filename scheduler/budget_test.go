package scheduler

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestParseRelay(t *testing.T) {
	tests := []struct {
		in   string
		want Relay
		err  bool
	}{
		{in: "off", want: Relay{Level: RelayOff}},
		{in: "Low", want: Relay{Level: RelayLow}},
		{in: " medium ", want: Relay{Level: RelayMedium}},
		{in: "HIGH", want: Relay{Level: RelayHigh}},
		{in: "800kbps", want: Relay{Level: RelayCustom, CustomKbps: 800}},
		{in: "2Mbps", want: Relay{Level: RelayCustom, CustomKbps: 2000}},
		{in: "1.5mbps", want: Relay{Level: RelayCustom, CustomKbps: 1500}},
		{in: "64000bps", want: Relay{Level: RelayCustom, CustomKbps: 64}},
		{in: "1Gbps", want: Relay{Level: RelayCustom, CustomKbps: 1_000_000}},
		{in: "800 kbps", want: Relay{Level: RelayCustom, CustomKbps: 800}},
		{in: "", err: true},
		{in: "800", err: true},
		{in: "kbps", err: true},
		{in: "0kbps", err: true},
		{in: "-5kbps", err: true},
		{in: "NaNkbps", err: true},
		{in: "infkbps", err: true},
		{in: "1e300gbps", err: true},
		{in: "max", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRelay(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadRelay) {
					t.Errorf("ParseRelay(%q) = %v, %v; want ErrBadRelay", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseRelay(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if back, err := ParseRelay(got.String()); err != nil || back != got {
				t.Errorf("round trip %q: %v, %v", got.String(), back, err)
			}
		})
	}
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name       string
		b          Budget
		avail, rel int64
	}{
		{"off", Budget{TotalKbps: 10_000, ReservedKbps: 2_000, Relay: Relay{Level: RelayOff}}, 8_000, 0},
		{"low 10%", Budget{TotalKbps: 10_000, ReservedKbps: 2_000, Relay: Relay{Level: RelayLow}}, 8_000, 800},
		{"medium 25%", Budget{TotalKbps: 10_000, ReservedKbps: 2_000, Relay: Relay{Level: RelayMedium}}, 8_000, 2_000},
		{"high 50%", Budget{TotalKbps: 10_000, ReservedKbps: 2_000, Relay: Relay{Level: RelayHigh}}, 8_000, 4_000},
		{"custom exact", Budget{TotalKbps: 10_000, ReservedKbps: 2_000, Relay: Relay{Level: RelayCustom, CustomKbps: 3_000}}, 8_000, 3_000},
		{"custom capped at available", Budget{TotalKbps: 10_000, ReservedKbps: 2_000, Relay: Relay{Level: RelayCustom, CustomKbps: 9_000}}, 8_000, 8_000},
		{"reserved above total", Budget{TotalKbps: 1_000, ReservedKbps: 2_000, Relay: Relay{Level: RelayHigh}}, 0, 0},
		{"unknown level", Budget{TotalKbps: 1_000, Relay: Relay{Level: RelayLevel(42)}}, 1_000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.AvailableKbps(); got != tt.avail {
				t.Errorf("AvailableKbps = %d, want %d", got, tt.avail)
			}
			if got := tt.b.RelayKbps(); got != tt.rel {
				t.Errorf("RelayKbps = %d, want %d", got, tt.rel)
			}
			if got, want := tt.b.RelayBytesPerSec(), float64(tt.rel)*125; got != want {
				t.Errorf("RelayBytesPerSec = %v, want %v", got, want)
			}
		})
	}
}

// TestTokenBucketWindow sends at random times and sizes and checks that no
// window of one second ever carries more than burst + rate bytes, and that a
// busy sender gets close to the rate over the long run.
func TestTokenBucketWindow(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		rate := float64(10_000 + r.IntN(1_000_000))
		burst := 1 + r.IntN(int(rate))
		b := NewTokenBucket(TokenBucketParams{Rate: rate, Burst: burst, Now: t0})
		type send struct {
			at time.Time
			n  int
		}
		var sent []send
		now := t0
		total := 0
		for range 5000 {
			now = now.Add(time.Duration(r.IntN(int(20 * time.Millisecond))))
			n := 1 + r.IntN(burst)
			if b.Allow(now, n) {
				sent = append(sent, send{now, n})
				total += n
			}
		}
		// Sliding one-second windows starting at every send.
		j, inWin := 0, 0
		for i := range sent {
			for j < len(sent) && sent[j].at.Sub(sent[i].at) < time.Second {
				inWin += sent[j].n
				j++
			}
			if limit := float64(burst) + rate; float64(inWin) > limit {
				t.Fatalf("seed %d: %d bytes in 1 s from %v, limit %.0f", seed, inWin, sent[i].at.Sub(t0), limit)
			}
			inWin -= sent[i].n
		}
		elapsed := now.Sub(t0).Seconds()
		if avg := float64(total) / elapsed; avg > rate+float64(burst)/elapsed {
			t.Fatalf("seed %d: average %.0f B/s above rate %.0f", seed, avg, rate)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	b := NewTokenBucket(TokenBucketParams{Rate: 1000, Burst: 500, Now: t0})
	if !b.Allow(t0, 500) || b.Allow(t0, 1) {
		t.Fatal("full bucket should give exactly its burst")
	}
	if b.Allow(t0, 501) {
		t.Fatal("more than burst allowed")
	}
	if at, ok := b.ReadyAt(t0, 250); !ok || !at.Equal(t0.Add(250*time.Millisecond)) {
		t.Fatalf("ReadyAt = %v, %v; want +250ms", at.Sub(t0), ok)
	}
	if _, ok := b.ReadyAt(t0, 501); ok {
		t.Fatal("ReadyAt above burst should never be ready")
	}
	if b.Allow(t0.Add(249*time.Millisecond), 250) || !b.Allow(t0.Add(250*time.Millisecond), 250) {
		t.Fatal("refill timing wrong")
	}
	// Time going backwards earns nothing.
	if b.Allow(t0, 1) {
		t.Fatal("backwards clock earned tokens")
	}
	if got := b.Tokens(t0.Add(10 * time.Second)); got != 500 {
		t.Fatalf("Tokens after idle = %d, want burst 500", got)
	}
	b.SetRate(t0.Add(10*time.Second), 100, 200)
	if got := b.Tokens(t0.Add(10 * time.Second)); got != 200 {
		t.Fatalf("Tokens after SetRate = %d, want capped at 200", got)
	}
	if b.Rate() != 100 {
		t.Fatalf("Rate = %v", b.Rate())
	}
	// Default burst is one second of rate.
	if got := NewTokenBucket(TokenBucketParams{Rate: 4000, Now: t0}).Tokens(t0); got != 4000 {
		t.Fatalf("default burst = %d, want 4000", got)
	}
}

func TestTokenBucketOffSendsNothing(t *testing.T) {
	bud := Budget{TotalKbps: 50_000, Relay: Relay{Level: RelayOff}}
	b := NewTokenBucket(TokenBucketParams{Rate: bud.RelayBytesPerSec(), Burst: 1 << 20, Now: t0})
	for i := range 1000 {
		if b.Allow(t0.Add(time.Duration(i)*time.Second), 1) {
			t.Fatalf("off allowed a byte at +%ds", i)
		}
	}
	if _, ok := b.ReadyAt(t0, 1); ok {
		t.Fatal("off bucket claims it will be ready")
	}
	if n := TakeUploads(t0.Add(time.Hour), []Upload{{Peer: "a", Size: 1}}, b); n != 0 {
		t.Fatalf("off TakeUploads = %d", n)
	}
	// Turning relay on later works, and off again empties it.
	b.SetRate(t0.Add(time.Hour), 1000, 1000)
	if !b.Allow(t0.Add(time.Hour+time.Second), 1000) {
		t.Fatal("re-enabled bucket gave nothing")
	}
	b.SetRate(t0.Add(2*time.Hour), 0, 1000)
	if b.Allow(t0.Add(3*time.Hour), 1) {
		t.Fatal("bucket turned off still allows")
	}
}

func TestRTTGuard(t *testing.T) {
	g := NewRTTGuard(RTTGuardParams{Now: t0})
	now := t0
	feed := func(rtt time.Duration, d time.Duration) {
		for end := now.Add(d); now.Before(end); now = now.Add(100 * time.Millisecond) {
			g.Observe(now, rtt)
		}
	}
	feed(40*time.Millisecond, 10*time.Second)
	if g.Throttled() || g.Factor() != 1 || g.Baseline() != 40*time.Millisecond {
		t.Fatalf("calm: %+v", g.Status())
	}
	// 2×40 ms + 50 ms = 130 ms is the limit; 120 ms is tolerated.
	feed(120*time.Millisecond, 10*time.Second)
	if g.Throttled() {
		t.Fatalf("120 ms should be tolerated: %+v", g.Status())
	}
	// Congestion: repeated cuts, halving each Interval, down to 0.
	var factors []float64
	for range 5 {
		feed(400*time.Millisecond, 2*time.Second)
		factors = append(factors, g.Factor())
	}
	want := []float64{0.5, 0.25, 0.125, 0, 0}
	for i := range want {
		if factors[i] != want[i] {
			t.Fatalf("factors under congestion %v, want %v", factors, want)
		}
	}
	if st := g.Status(); !st.Throttled || st.Cuts != 4 || g.Apply(8000) != 0 {
		t.Fatalf("status %+v apply %d", st, g.Apply(8000))
	}
	// Recovery: gradual, at most one Step per Interval, monotone, back to 1.
	prev := g.Factor()
	start := now
	for range 60 {
		feed(40*time.Millisecond, time.Second)
		f := g.Factor()
		if f < prev || f-prev > 0.1+1e-9 {
			t.Fatalf("recovery step %v -> %v", prev, f)
		}
		prev = f
	}
	if g.Throttled() || g.Factor() != 1 {
		t.Fatalf("not recovered: %+v", g.Status())
	}
	if took := now.Sub(start); took < 20*time.Second {
		t.Fatalf("recovered in %v; want gradual (>= 10 steps of 2 s)", took)
	}
	if g.Apply(8000) != 8000 {
		t.Fatal("Apply after recovery")
	}
}

func TestRTTGuardBaselineExpires(t *testing.T) {
	g := NewRTTGuard(RTTGuardParams{Now: t0, BaseSlot: time.Second, BaseSlots: 3})
	g.Observe(t0, 10*time.Millisecond)
	g.Observe(t0.Add(2500*time.Millisecond), 30*time.Millisecond)
	if g.Baseline() != 10*time.Millisecond {
		t.Fatalf("baseline %v within window", g.Baseline())
	}
	g.Observe(t0.Add(3500*time.Millisecond), 30*time.Millisecond)
	if g.Baseline() != 30*time.Millisecond {
		t.Fatalf("baseline %v after old slot expired", g.Baseline())
	}
	g.Observe(t0.Add(time.Hour), 70*time.Millisecond)
	if g.Baseline() != 70*time.Millisecond {
		t.Fatalf("baseline %v after long gap", g.Baseline())
	}
	g.Observe(t0.Add(time.Hour), -1)
	if g.Baseline() != 70*time.Millisecond {
		t.Fatal("negative sample changed baseline")
	}
}
