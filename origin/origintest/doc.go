// Package origintest runs a live origin for tests and benchmarks: the demo
// clip chunked and signed in real time as one stream, the origin's HTTP
// routes and the tracker on one loopback server. The caller starts the seed
// and the viewer nodes against it (swarm.StartNode), as seedcast serve does.
package origintest
