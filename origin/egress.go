package origin

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
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

// errEgressRefused ends the body of a response the cap refused (capWriter).
var errEgressRefused = errors.New("origin: egress cap reached")

// serveCapped answers r with body through http.ServeContent, charging the
// egress cap for what the response really sends: the Content-Length that
// ServeContent sets for a 200 or a 206 (a range), nothing for a 304 (the
// client holds it: If-None-Match) or a HEAD. A response the cap refuses
// is a 503 with Retry-After, counted under route, and none of the
// success's headers (an immutable Cache-Control, an ETag) goes with it.
func (s *Server) serveCapped(w http.ResponseWriter, r *http.Request, route string, body []byte) {
	if s.egress != nil {
		w = &capWriter{ResponseWriter: w, s: s, route: route, full: len(body), head: r.Method == http.MethodHead}
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// capWriter takes a response's bytes from the cap when its status is
// written (serveCapped).
type capWriter struct {
	http.ResponseWriter
	s       *Server
	route   string
	full    int  // the whole body, charged if no Content-Length was set
	head    bool // a HEAD: no body goes
	wrote   bool
	refused bool
}

func (c *capWriter) WriteHeader(code int) {
	if c.wrote {
		return
	}
	c.wrote = true
	if !c.head && (code == http.StatusOK || code == http.StatusPartialContent) {
		n, err := strconv.Atoi(c.Header().Get("Content-Length"))
		if err != nil || n < 0 {
			n = c.full
		}
		if !c.s.egress.take(n) {
			c.refused = true
			c.s.refuse(c.ResponseWriter, c.route)
			return
		}
	}
	c.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *capWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

func (c *capWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	if c.refused {
		return 0, errEgressRefused
	}
	return c.ResponseWriter.Write(b)
}

// refuse answers 503 with Retry-After for a response the cap does not
// admit, and counts it under route.
func (s *Server) refuse(w http.ResponseWriter, route string) {
	s.metrics.egressRefused.WithLabelValues(route).Inc()
	h := w.Header()
	// http.Error replaces Content-Length and Content-Type; these would
	// describe the body that is not sent.
	for _, k := range []string{"Content-Range", "ETag", "Last-Modified", "Accept-Ranges"} {
		h.Del(k)
	}
	h.Set("Retry-After", RetryAfter)
	h.Set("Cache-Control", "no-store")
	h.Set("Access-Control-Allow-Origin", "*")
	http.Error(w, "origin egress cap reached: fetch from peers, or retry later", http.StatusServiceUnavailable)
}
