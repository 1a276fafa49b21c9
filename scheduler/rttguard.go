package scheduler

import "time"

// RTTGuardParams configures an RTTGuard. Zero fields take the defaults shown.
type RTTGuardParams struct {
	Factor    float64       // congested when smoothed RTT > Factor·baseline + Slack (2)
	Slack     time.Duration // (50 ms)
	Interval  time.Duration // least time between two adjustments (2 s)
	Cut       float64       // relay factor multiplier on congestion (0.5)
	Floor     float64       // a factor below this becomes 0 (1/8)
	Step      float64       // additive increase per Interval once recovered (0.1)
	BaseSlot  time.Duration // baseline = least RTT over BaseSlots slots of BaseSlot (1 min)
	BaseSlots int           // (10)
	Now       time.Time     // start time
}

func (p *RTTGuardParams) defaults() {
	if p.Factor <= 0 {
		p.Factor = 2
	}
	if p.Slack <= 0 {
		p.Slack = 50 * time.Millisecond
	}
	if p.Interval <= 0 {
		p.Interval = 2 * time.Second
	}
	if p.Cut <= 0 || p.Cut >= 1 {
		p.Cut = 0.5
	}
	if p.Floor <= 0 {
		p.Floor = 1.0 / 8
	}
	if p.Step <= 0 {
		p.Step = 0.1
	}
	if p.BaseSlot <= 0 {
		p.BaseSlot = time.Minute
	}
	if p.BaseSlots <= 0 {
		p.BaseSlots = 10
	}
}

// RTTGuard protects the user's own connection: when the RTT to the origin rises
// well above its baseline, it cuts the relay share multiplicatively (down to
// zero after repeated cuts), and once the RTT recovers it raises the share back
// additively, one Step per Interval. Feed it every RTT sample with Observe and
// scale the relay rate with Apply.
type RTTGuard struct {
	p          RTTGuardParams
	mins       []time.Duration // per-slot minimum RTT, 0 = no sample
	slot       int
	slotStart  time.Time
	srtt       time.Duration
	factor     float64
	lastAdjust time.Time
	adjusted   bool
	cuts       int
}

// NewRTTGuard returns a guard with the full relay share (factor 1).
func NewRTTGuard(p RTTGuardParams) *RTTGuard {
	p.defaults()
	return &RTTGuard{p: p, mins: make([]time.Duration, p.BaseSlots), slotStart: p.Now, factor: 1}
}

// RTTStatus is what a node reports about the guard in its stats.
type RTTStatus struct {
	Throttled bool          // relay is below the user's setting because of RTT
	Factor    float64       // share of the user's relay rate currently allowed, 0..1
	Baseline  time.Duration // least recent RTT
	Smoothed  time.Duration // EWMA of RTT samples
	Cuts      int           // cuts since start
}

// Status reports the guard's state.
func (g *RTTGuard) Status() RTTStatus {
	return RTTStatus{Throttled: g.Throttled(), Factor: g.factor, Baseline: g.Baseline(), Smoothed: g.srtt, Cuts: g.cuts}
}

// Throttled reports whether relay is currently cut below the user's setting.
func (g *RTTGuard) Throttled() bool { return g.factor < 1 }

// Factor is the share of the user's relay rate currently allowed, 0..1.
func (g *RTTGuard) Factor() float64 { return g.factor }

// Apply scales a relay rate (any unit) by the current factor.
func (g *RTTGuard) Apply(kbps int64) int64 { return int64(float64(kbps) * g.factor) }

// Baseline is the least RTT seen over the baseline window, 0 before any sample.
func (g *RTTGuard) Baseline() time.Duration {
	var b time.Duration
	for _, m := range g.mins {
		if m > 0 && (b == 0 || m < b) {
			b = m
		}
	}
	return b
}

// Observe records one RTT sample taken at now and adjusts the factor, at most
// once per Interval. Non-positive samples are ignored.
func (g *RTTGuard) Observe(now time.Time, rtt time.Duration) {
	if rtt <= 0 {
		return
	}
	g.advance(now)
	if m := g.mins[g.slot]; m == 0 || rtt < m {
		g.mins[g.slot] = rtt
	}
	if g.srtt == 0 {
		g.srtt = rtt
	} else {
		g.srtt += (rtt - g.srtt) / 8
	}
	if g.adjusted && now.Sub(g.lastAdjust) < g.p.Interval {
		return
	}
	base := g.Baseline()
	limit := time.Duration(float64(base)*g.p.Factor) + g.p.Slack
	switch {
	case g.srtt > limit:
		if g.factor > 0 {
			g.factor *= g.p.Cut
			if g.factor < g.p.Floor {
				g.factor = 0
			}
			g.cuts++
		}
	case g.factor < 1:
		g.factor = min(1, g.factor+g.p.Step)
	default:
		return
	}
	g.lastAdjust, g.adjusted = now, true
}

// advance moves the baseline ring to the slot holding now, clearing slots
// that were skipped.
func (g *RTTGuard) advance(now time.Time) {
	for n := 0; now.Sub(g.slotStart) >= g.p.BaseSlot; n++ {
		g.slotStart = g.slotStart.Add(g.p.BaseSlot)
		if n >= len(g.mins) { // long gap: every slot is stale
			g.slotStart = now
			clear(g.mins)
			return
		}
		g.slot = (g.slot + 1) % len(g.mins)
		g.mins[g.slot] = 0
	}
}
