package origin

import (
	"net/http"
	"sync"
	"time"

	"github.com/seedcast/seedcast/scheduler"
)

// Egress cap limits (Params.EgressKbps).
const (
	// egressBurstTime is the cap's bucket depth in time at its rate, and
	// minEgressBurst its least depth: one response of several chunks (an
	// HLS segment) must fit it, or it would never go.
	egressBurstTime = 250 * time.Millisecond
	minEgressBurst  = 2 << 20
	// RetryAfter is what a request refused by the cap is told to wait
	// (the header's unit is whole seconds). The swarm's nodes wait less or
	// more, jittered, on their own (swarm/core.ErrOriginBusy).
	RetryAfter = "1"
)

// egressCap holds the media bytes the HTTP routes send (chunks, HLS
// segments and parts) to a rate: over any interval d at most burst +
// rate·d. A response larger than the burst goes when the bucket is full,
// and takes all of it.
type egressCap struct {
	now   func() time.Time
	mu    sync.Mutex
	b     *scheduler.TokenBucket
	burst int
}

// newEgressCap returns a cap of kbps, or nil (no cap) for kbps ≤ 0.
func newEgressCap(kbps int, now func() time.Time) *egressCap {
	if kbps <= 0 {
		return nil
	}
	rate := float64(kbps) * 1000 / 8
	burst := EgressBurst(kbps)
	return &egressCap{now: now, burst: burst, b: scheduler.NewTokenBucket(scheduler.TokenBucketParams{Rate: rate, Burst: burst, Now: now()})}
}

// EgressBurst is the depth in bytes of an egress cap of kbps
// (Params.EgressKbps): 250 ms of it, at least 2 MiB.
func EgressBurst(kbps int) int {
	return max(int(float64(kbps)*1000/8*egressBurstTime.Seconds()), minEgressBurst)
}

// take reports whether n bytes may go now, and takes them if so.
func (c *egressCap) take(n int) bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Allow(c.now(), min(n, c.burst))
}

// admit takes a response of n media bytes from the cap, or answers 503
// with Retry-After, counts the refusal under route, and reports false.
func (s *Server) admit(w http.ResponseWriter, route string, n int) bool {
	if s.egress.take(n) {
		return true
	}
	s.metrics.egressRefused.WithLabelValues(route).Inc()
	w.Header().Set("Retry-After", RetryAfter)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	http.Error(w, "origin egress cap reached: fetch from peers, or retry later", http.StatusServiceUnavailable)
	return false
}
