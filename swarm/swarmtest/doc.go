// Package swarmtest is an in-memory network for swarm nodes: the
// production node core (swarm/core) and the production tracker policy
// (tracker.Swarm) on one virtual clock, with modelled links (serialization
// at the sender's line rate, per-link latency), a modelled origin (the live
// stream, signed as the chunker signs it, and its HTTP service) and the
// origin's seed as one more core. Runs are deterministic given Params.Seed.
//
// It is the seed of the simulator: tests drive 1 to 1,000 nodes with it in
// the normal test pass, in virtual time, so their figures do not move with
// the machine's load.
package swarmtest
