// Package peerlink makes a swarm node's links to its peers: WebRTC data
// channels through pion/webrtc, signalled through the tracker as
// docs/protocol.md §4 says (the downstream dials with an offer, the
// upstream answers; both carry all their ICE candidates, as gathering
// completes before they are sent). Linker and Link are the Linker and Link
// of package swarm/driver.
//
// The same code builds natively and for GOOS=js GOARCH=wasm: it uses only
// the part of pion's API that its js build (which wraps the browser's
// RTCPeerConnection) shares with the native one, so the native driver
// (package swarm) and the browser's (package swarm/browser) link the same
// way. Only a data channel's binary type is set apart, in the js build.
package peerlink
