// Package bench measures the swarm, on real networks and in simulation,
// and reports the design's measures over a steady-state window: server
// egress (in Mbit/s and in copies of the stream), offload, the fluid bound
// and the efficiency against it, continuity, and delivery latency overall
// and by hop depth (SwarmReport).
//
// RunSwarm is the in-process harness: a seed and n real swarm nodes
// (swarm.Node: pion peers on loopback) against a live origin
// (origin/origintest).
//
// RunSim is the simulator (seedcast sim): one origin (its seed, a
// production node core with the origin's egress budget, and its HTTP
// service), the production tracker policy with its rebalance timer, and n
// production node cores on one virtual clock, over the modelled links of
// package swarm/swarmtest (per-node upload serialised at the relay budget,
// download lines, a region RTT matrix, loss). Scenarios (Scenario) are
// JSON files embedded from scenarios/: the audience's relay mix, steady
// joins or a flash crowd, churn with graceful and silent departures,
// regions as GeoIP places viewers. Results go to results.json,
// results.md and plots (gonum.org/v1/plot) against a plain CDN, the
// founding design's claim and the fluid bound, with the run second by
// second (SimResult.Timeline).
//
// RunHarness is the real-process harness (seedcast bench): on this
// machine's loopback, `seedcast serve`, `seedcast publish` (the demo clip,
// or one ffmpeg encodes at the asked rate) and n viewer nodes in `seedcast
// viewer --plan` processes (ViewerPlan), joining and leaving as RunSim has
// them, with the scenario's relay budgets. It measures RunSim's window from
// the nodes' stats lines (NodeLine) and the origin's /metrics, takes the
// CPU of every process and of the machine from /proc, says whether the run
// was CPU-bound, and writes the simulator's report format (HarnessResult,
// WriteHarnessResults), with the simulator's run of the same scenario
// beside it (SimFor, ModelCheckMarkdown) for the model check.
//
// Nothing here is a separate policy: the nodes run the production swarm
// core, scheduler and tracker code.
package bench
