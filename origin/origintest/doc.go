// Package origintest runs a live origin for tests and benchmarks: the demo
// clip chunked and signed in real time (through an ingest.Pipeline, as in
// seedcast serve) as one stream, the origin's HTTP routes and the tracker on
// one loopback server. The caller starts the seed node (swarm.StartNode with
// Seed and the in-process source Server.Source(Live); seedcast serve does the
// same through swarm.Seeds) and the viewer nodes against it.
package origintest
