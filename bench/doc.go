// Package bench measures the swarm. It owns the in-process harness that
// runs a seed and n real swarm nodes (pion peers on loopback) against a live
// origin, and the report of the design's measures over a steady-state
// window: server egress (in Mbit/s and in copies of the stream), offload,
// the fluid bound and the efficiency against it, continuity, and delivery
// latency overall and by hop depth. The nodes run the production swarm,
// scheduler and tracker code; nothing here is a separate policy.
package bench
