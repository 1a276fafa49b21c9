package scheduler

import (
	"slices"
	"time"
)

// ABRParams tune an ABR. Zero values take the defaults shown.
type ABRParams struct {
	// DownLate is the share of chunks late (over the last report) that
	// steps quality down (0.02), and LowBuffer the buffer ahead of the
	// playhead under which it steps down too (500 ms).
	DownLate  float64
	LowBuffer time.Duration
	// UpAfter is how long every chunk must have been on time, with at
	// least UpBuffer buffered, before quality steps up (20 s and 1.5 s);
	// after a step down the wait doubles, up to MaxUpAfter (2 min).
	UpAfter, MaxUpAfter time.Duration
	UpBuffer            time.Duration
}

// ABRInput is what the player saw since the last decision.
type ABRInput struct {
	OnTime, Late int           // chunks judged since the last decision
	Buffer       time.Duration // media buffered ahead of the playhead now
}

// ABR chooses among a stream's video renditions, lowest to highest, from
// how the chunks of the one playing arrive: a step down when chunks come
// late or the buffer runs low, a step up after a long enough run with
// every chunk on time and a healthy buffer. In a swarm a viewer's download
// rate is the stream's (it receives what it subscribes to), so lateness and
// buffer, not throughput, say whether a rendition can be carried.
//
// It does no I/O and never reads the clock. It is not safe for concurrent
// use.
type ABR struct {
	p        ABRParams
	heights  []int // ascending
	cur      int   // index into heights
	goodFrom time.Time
	upAfter  time.Duration
}

// NewABR returns an ABR over renditions of the given heights, playing the
// highest at first.
func NewABR(p ABRParams, heights []int) *ABR {
	if p.DownLate <= 0 {
		p.DownLate = 0.02
	}
	if p.LowBuffer <= 0 {
		p.LowBuffer = 500 * time.Millisecond
	}
	if p.UpAfter <= 0 {
		p.UpAfter = 20 * time.Second
	}
	if p.MaxUpAfter < p.UpAfter {
		p.MaxUpAfter = max(2*time.Minute, p.UpAfter)
	}
	if p.UpBuffer <= 0 {
		p.UpBuffer = 1500 * time.Millisecond
	}
	hs := slices.Clone(heights)
	slices.Sort(hs)
	hs = slices.Compact(hs)
	return &ABR{p: p, heights: hs, cur: max(len(hs)-1, 0), upAfter: p.UpAfter}
}

// Height is the rendition height chosen now (0 when there is none).
func (a *ABR) Height() int {
	if len(a.heights) == 0 {
		return 0
	}
	return a.heights[a.cur]
}

// Decide takes what happened since the last call and returns the height to
// play, and whether it changed.
func (a *ABR) Decide(now time.Time, in ABRInput) (height int, changed bool) {
	if len(a.heights) < 2 {
		return a.Height(), false
	}
	judged := in.OnTime + in.Late
	late := judged > 0 && float64(in.Late)/float64(judged) > a.p.DownLate
	if late || (in.Buffer < a.p.LowBuffer && judged > 0) {
		a.goodFrom = time.Time{}
		if a.cur > 0 {
			a.cur--
			a.upAfter = min(2*a.upAfter, a.p.MaxUpAfter)
			return a.Height(), true
		}
		return a.Height(), false
	}
	if in.Late > 0 || in.Buffer < a.p.UpBuffer {
		a.goodFrom = time.Time{}
		return a.Height(), false
	}
	if a.goodFrom.IsZero() {
		a.goodFrom = now
	}
	if a.cur < len(a.heights)-1 && now.Sub(a.goodFrom) >= a.upAfter {
		a.cur++
		a.goodFrom = now
		return a.Height(), true
	}
	return a.Height(), false
}
