// Package swarmtest is an in-memory network for swarm nodes: the
// production node core (swarm/core) and the production tracker policy
// (tracker.Swarm, with its rebalance timer) on one virtual clock. Only
// links, the clock and the origin are modelled: each frame is serialized
// at its sender's line rate, arrives one latency later (Params.Latency,
// which may read each node's Region), comes down the receiver's download
// line if it has one, in arrival order, and may be lost once and sent
// again a round trip later (Params.Loss; data channels are reliable and
// ordered). The origin is the live stream (batched as the chunker batches,
// signed as ingest signs) and its HTTP service; the origin's seed is one
// more core. Nodes leave gracefully, crash, or vanish silently (their
// peers and the tracker notice after timeouts). Wake-ups come from each
// core's NextWake; runs are deterministic given Params.Seed. Traffic
// counts every byte sent between nodes as delivered, lost or in flight.
//
// With Params.Real, nodes check real Ed25519 signatures and BLAKE3 ids into
// the production store; without it they check sizes against the stream's
// own batches and keep no bytes, which is what lets many thousand cores
// run. Tests use it from 1 to 1,000 nodes, so their figures do not move
// with the machine's load; package bench's simulator (seedcast sim) runs
// scenarios on it at any size.
package swarmtest
