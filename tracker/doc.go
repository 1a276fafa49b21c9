// Package tracker is the swarm's assignment policy: Swarm, one stream's
// registry of peers and of the upstream each viewer receives each substream
// from (K trees rooted at the origin seeds), which assigns upstreams when
// viewers join, reassigns them when an upstream leaves, is complained about
// or cuts its relay budget, and moves relays up the trees (Rebalance); and
// where peers are (Location, Distance), which its choices weigh.
//
// It is pure — no I/O, no goroutines, clock and randomness passed in — so
// that the tracker server (tracker/server) and the virtual-clock network
// of swarm/swarmtest run the very same code. The wire
// protocol is package tracker/protocol; the WebSocket server, GeoIP, viewer
// tokens and metrics are package tracker/server. The tracker never touches
// media bytes.
package tracker
