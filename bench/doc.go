// Package bench measures the swarm on real networks. It owns the
// in-process harness (RunSwarm) that runs a seed and n real swarm nodes
// (swarm.Node: pion peers on loopback) against a live origin
// (origin/origintest), and the report of the design's measures over a
// steady-state window: server egress (in Mbit/s and in copies of the
// stream), offload, the fluid bound and the efficiency against it,
// continuity, and delivery latency overall and by hop depth. The nodes run
// the production swarm core, scheduler and tracker code; nothing here is a
// separate policy.
//
// The in-memory network on a virtual clock, where the same node core and
// tracker policy run without pion or wall time, is package swarm/swarmtest.
package bench
