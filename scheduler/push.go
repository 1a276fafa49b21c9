package scheduler

import "time"

// Pusher is what a downstream knows of the upstream that pushes some of its
// substreams. Times are zero until they happen; LastPush and LastHave start
// when the link opens.
type Pusher struct {
	LastPush time.Time // its last push
	LastHave time.Time // its last have announcement
	// LastHeldWanted is when its have last showed a chunk of its
	// substreams that the downstream still wanted past the grace: held,
	// and not pushed.
	LastHeldWanted time.Time
	// LastUnpushed is when its have last showed, for the first time, a
	// chunk of its substreams that it had not pushed: held, announced,
	// and not sent.
	LastUnpushed time.Time
	// LastListed is when a chunk of its substreams was last listed.
	LastListed time.Time
	// Lag is the smoothed time from a chunk's entry being learnt to its
	// push arriving; 0 before the first.
	Lag time.Duration
}

// PushParams tunes how long pushes are waited for.
type PushParams struct {
	Grace        time.Duration // least wait for a push after the entry is learnt
	StallAfter   time.Duration // silence that makes a pusher stalled
	OriginMargin time.Duration // the planner's PullParams.OriginMargin
}

// originSlack keeps the origin's last chance clear of the pusher's grace.
const originSlack = 250 * time.Millisecond

// WaitForPush reports whether a chunk whose entry was learnt at since, due
// at deadline, is still left to its pusher at now (the planner then counts
// it pending there): within the grace, which grows to 1.5× the pusher's lag
// so that a deep pusher's chunks are not pulled twice, but never so close to
// the deadline that the origin would have no time left.
func WaitForPush(now, since, deadline time.Time, u Pusher, p PushParams) bool {
	grace := max(p.Grace, u.Lag*3/2)
	return now.Sub(since) < grace && deadline.Sub(now) > p.OriginMargin+originSlack
}

// Stalled reports whether a pusher has stopped serving: it held chunks the
// downstream wanted, or chunks it announced and did not push, and pushed
// nothing for StallAfter; or it said nothing at all (no push, no have) for
// StallAfter while its substreams' chunks kept being listed. A pusher
// starved by its own upstream holds nothing new, keeps announcing, and is
// not blamed. One that announces every chunk it gets and pushes none (it
// lies about its relay) is found by its unpushed chunks even when its haves
// come too late to show a chunk the downstream still wants: it gets its
// chunks no earlier than the downstream pulls them elsewhere.
func Stalled(now time.Time, u Pusher, p PushParams) bool {
	if u.LastHeldWanted.Sub(u.LastPush) > p.StallAfter || u.LastUnpushed.Sub(u.LastPush) > p.StallAfter {
		return true
	}
	silent := now.Sub(u.LastPush) > p.StallAfter && now.Sub(u.LastHave) > p.StallAfter
	return silent && u.LastListed.Sub(u.LastPush) > p.StallAfter
}

// SmoothLag folds one entry-to-push sample into a pusher's lag (an EWMA of
// weight 1/8; the first sample is taken whole).
func SmoothLag(lag, sample time.Duration) time.Duration {
	if lag == 0 {
		return sample
	}
	return lag + (sample-lag)/8
}
