// Package swarm is the native driver of a swarm node around its I/O-free
// core (package swarm/core, where every decision is made: what to send,
// pull, relay, verify, report). Node runs a core on real networks: the
// tracker client (TrackerClient, WebSocket), peer links over WebRTC data
// channels (Linker, Link: pion, package swarm/peerlink), the origin over
// HTTP (HTTPSource, or any Source in-process), handed with the core to the
// event loop the browser's driver runs too (package swarm/driver), which
// feeds the core its inputs with the time and carries out its outputs.
// Viewer keeps a viewer's node running across the loss of its tracker (a
// restarted origin signs with a new key: the node is replaced by one that
// takes the key the server gives then). Seeds keeps the origin's seed node of each stream running (seedcast
// serve), its chunks bounded like the origin's store: by its window as
// well as by bytes; LoopbackAPI is a pion API for peers on one machine.
//
// What to fetch from whom is package scheduler's policy; the wire format
// is package swarm/wire. Nothing a peer sends is trusted: the core checks
// every chunk against the stream's signed manifest, whose key comes from
// the server, never from a peer.
package swarm
