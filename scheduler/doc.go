// Package scheduler is Seedcast's pure delivery policy: which chunk to pull
// from which peer (sequential near the playback deadline, rarest-first further
// out, the origin only when peers are too slow), how deep to pipeline requests
// per peer, how long a pushed chunk is waited for and when a pusher counts as
// stalled, what to upload first, and the budget math (relay levels, token
// bucket, RTT guard). Which upstream serves each substream is the tracker's
// call (tracker.Swarm), not the node's.
//
// It does no I/O, starts no goroutines and never reads the clock: time and
// randomness are passed in, so the swarm node core (swarm/core) makes
// identical decisions from identical inputs whichever driver runs it: the
// native node, the browser build, or the virtual-clock network of
// swarm/swarmtest.
// Types here are not safe for concurrent use; the caller owns them.
package scheduler
