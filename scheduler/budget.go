package scheduler

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrBadRelay is returned by ParseRelay for a setting it does not understand.
var ErrBadRelay = errors.New("scheduler: bad relay setting")

// RelayLevel is the share of the available upload a user lends to the swarm.
type RelayLevel int

const (
	RelayOff    RelayLevel = iota // no media to peers
	RelayLow                      // 10% of available
	RelayMedium                   // 25% of available
	RelayHigh                     // 50% of available
	RelayCustom                   // an exact rate, capped at available
)

// share is the fraction of available upload each non-custom level grants.
var share = [...]float64{RelayOff: 0, RelayLow: 0.10, RelayMedium: 0.25, RelayHigh: 0.50}

func (l RelayLevel) String() string {
	switch l {
	case RelayOff:
		return "off"
	case RelayLow:
		return "low"
	case RelayMedium:
		return "medium"
	case RelayHigh:
		return "high"
	case RelayCustom:
		return "custom"
	}
	return "RelayLevel(" + strconv.Itoa(int(l)) + ")"
}

// Relay is a user's relay setting: a level, and for RelayCustom the exact rate.
type Relay struct {
	Level      RelayLevel
	CustomKbps int64 // kilobits per second, only for RelayCustom
}

func (r Relay) String() string {
	if r.Level == RelayCustom {
		return strconv.FormatInt(r.CustomKbps, 10) + "kbps"
	}
	return r.Level.String()
}

// ParseRelay parses "off", "low", "medium", "high", or a bit rate such as
// "800kbps", "2Mbps", "1.5mbps" or "64000bps" (RelayCustom). Units are bits per
// second and case-insensitive; the rate must be positive and finite.
func ParseRelay(s string) (Relay, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "off":
		return Relay{Level: RelayOff}, nil
	case "low":
		return Relay{Level: RelayLow}, nil
	case "medium":
		return Relay{Level: RelayMedium}, nil
	case "high":
		return Relay{Level: RelayHigh}, nil
	}
	kbps, err := ParseKbps(t)
	if err != nil {
		return Relay{}, fmt.Errorf("%w: %q (want off, low, medium, high or a rate like 800kbps)", ErrBadRelay, s)
	}
	return Relay{Level: RelayCustom, CustomKbps: kbps}, nil
}

// ParseKbps parses a bit rate with a bps, kbps, mbps or gbps suffix
// (case-insensitive) and returns it in kilobits per second, rounded down.
func ParseKbps(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 0.0
	for _, u := range [...]struct {
		suffix string
		kbps   float64
	}{{"kbps", 1}, {"mbps", 1e3}, {"gbps", 1e6}, {"bps", 1e-3}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.kbps
			break
		}
	}
	if mult == 0 {
		return 0, fmt.Errorf("%w: %q has no bps/kbps/mbps/gbps unit", ErrBadRelay, s)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return 0, fmt.Errorf("%w: %q is not a positive rate", ErrBadRelay, s)
	}
	k := v * mult
	if k >= math.MaxInt64/2 {
		return 0, fmt.Errorf("%w: %q is too large", ErrBadRelay, s)
	}
	if k < 1 {
		// It would truncate to 0: "off" by another name.
		return 0, fmt.Errorf("%w: %q is under 1 kbps (use \"off\")", ErrBadRelay, s)
	}
	return int64(k), nil
}

// Budget is a node's upload budget. All rates are kilobits per second.
type Budget struct {
	TotalKbps    int64 // measured or set by the user
	ReservedKbps int64 // kept free for other apps
	Relay        Relay
}

// AvailableKbps is total minus reserved, never negative.
func (b Budget) AvailableKbps() int64 {
	return max(b.TotalKbps-b.ReservedKbps, 0)
}

// RelayKbps is the rate this node may upload to peers: the level's share of
// available, or the custom rate capped at available. RelayOff gives 0.
func (b Budget) RelayKbps() int64 {
	avail := b.AvailableKbps()
	switch b.Relay.Level {
	case RelayCustom:
		return min(max(b.Relay.CustomKbps, 0), avail)
	case RelayLow, RelayMedium, RelayHigh:
		return int64(float64(avail) * share[b.Relay.Level])
	}
	return 0
}

// RelayBytesPerSec is RelayKbps in bytes per second, the unit of TokenBucket.
func (b Budget) RelayBytesPerSec() float64 {
	return float64(b.RelayKbps()) * 1000 / 8
}

// TokenBucketParams configures a TokenBucket.
type TokenBucketParams struct {
	Rate  float64   // bytes per second; <= 0 allows nothing, ever
	Burst int       // bucket size in bytes; <= 0 means one second of Rate
	Now   time.Time // start time; the bucket starts full
}

// TokenBucket enforces a byte rate. Over any interval of length d it allows at
// most Burst + Rate·d bytes. Time is passed in and may not go backwards (an
// earlier time is treated as the latest seen).
type TokenBucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// NewTokenBucket returns a full bucket.
func NewTokenBucket(p TokenBucketParams) *TokenBucket {
	b := &TokenBucket{last: p.Now}
	b.configure(p.Rate, p.Burst)
	b.tokens = b.burst
	return b
}

func (b *TokenBucket) configure(rate float64, burst int) {
	if rate <= 0 || math.IsNaN(rate) {
		b.rate, b.burst, b.tokens = 0, 0, 0
		return
	}
	b.rate = rate
	if burst <= 0 {
		burst = int(min(rate, math.MaxInt32))
	}
	b.burst = float64(burst)
	b.tokens = min(b.tokens, b.burst)
}

func (b *TokenBucket) refill(now time.Time) {
	if !now.After(b.last) {
		return
	}
	b.tokens = min(b.burst, b.tokens+b.rate*now.Sub(b.last).Seconds())
	b.last = now
}

// SetRate changes the rate and burst from now on, keeping the tokens already
// earned (capped at the new burst). A rate <= 0 empties the bucket.
func (b *TokenBucket) SetRate(now time.Time, rate float64, burst int) {
	b.refill(now)
	b.configure(rate, burst)
}

// Rate is the current rate in bytes per second.
func (b *TokenBucket) Rate() float64 { return b.rate }

// Tokens is how many bytes may be sent at now.
func (b *TokenBucket) Tokens(now time.Time) int {
	b.refill(now)
	return int(b.tokens)
}

// Allow takes n bytes from the bucket if it holds them at now and reports
// whether it did. n larger than the burst is never allowed; split it.
func (b *TokenBucket) Allow(now time.Time, n int) bool {
	if n < 0 {
		return false
	}
	b.refill(now)
	if float64(n) > b.tokens {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// ReadyAt is the earliest time at or after now when Allow(·, n) would succeed,
// and false if it never will (rate off, or n above the burst). It takes nothing.
func (b *TokenBucket) ReadyAt(now time.Time, n int) (time.Time, bool) {
	b.refill(now)
	if b.last.After(now) {
		now = b.last
	}
	if n < 0 || b.rate == 0 || float64(n) > b.burst {
		return time.Time{}, false
	}
	need := float64(n) - b.tokens
	if need <= 0 {
		return now, true
	}
	return now.Add(time.Duration(math.Ceil(need / b.rate * float64(time.Second)))), true
}
