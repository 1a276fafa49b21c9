// Package protocol is the tracker's wire protocol (docs/protocol.md §4): the
// JSON messages a peer and the tracker exchange over the tracker WebSocket,
// peer ids and kinds, the protocol's limits, and the decoders that check
// every message a side receives (DecodeClient on the tracker, DecodeServer
// on a node).
//
// Both ends import it, the browser's WebAssembly build included, so it
// imports nothing but the standard library and package manifest (for the
// stream name rule).
package protocol
