// Package swarmtest is an in-memory network for swarm nodes: the
// production node core (swarm/core) and the production tracker policy
// (tracker.Swarm, with its rebalance timer) on one virtual clock. Only
// links, the clock and the origin are modelled: each frame is serialized at
// its sender's line rate and arrives one latency later; the origin is the
// live stream (batched as the chunker batches, signed as ingest signs) and
// its HTTP service; the origin's seed is one more core. Runs are
// deterministic given Params.Seed.
//
// With Params.Real, nodes check real Ed25519 signatures and BLAKE3 ids into
// the production store; without it they check sizes against the stream's
// own batches and keep no bytes, which is what lets a thousand cores run in
// the test pass. It is the seed of the simulator (a later issue); tests use
// it from 1 to 1,000 nodes, so their figures do not move with the machine's
// load.
package swarmtest
