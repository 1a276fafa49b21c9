// Package browser is the swarm node's browser driver, built for GOOS=js
// GOARCH=wasm: the same I/O-free core as the native node (package
// swarm/core) fed by the browser's own means, through the event loop the
// native driver runs too (package swarm/driver). Peer links are package
// swarm/peerlink's, the native node's own: WebRTC data channels through
// pion/webrtc's js build (which wraps RTCPeerConnection), signalled through
// the tracker as docs/protocol.md §4 says. The tracker is the browser's
// WebSocket and the origin is read with fetch, both through syscall/js, so
// that neither net/http nor a WebSocket library is compiled into the .wasm.
// Chunks the core declares ready go to Params.OnReady, in order, with their
// bytes: the web player appends them to Media Source Extensions.
//
// Outside js/wasm the package is empty.
package browser
