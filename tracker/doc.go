// Package tracker runs the swarm's coordination: viewers join a stream over a
// WebSocket (GET /tracker), get a peer id and upstream peers per substream,
// relay WebRTC signaling to the peers they are linked with, report their
// health, and are reassigned when an upstream leaves, stalls or misbehaves.
//
// The assignment policy (Swarm) is pure — no I/O, clock and randomness passed
// in — so the simulator in package bench runs the very same code. The tracker
// never touches media bytes.
package tracker
