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
//
// An upstream keeps one link per downstream peer (a new offer from a peer
// replaces its old link), closes a link that has not opened within
// ConnectTimeout, and asks LinkerParams.Admit, when set, before it makes a
// peer connection for an offer (the origin's seed: the process's caps and a
// pace of offers per peer).
package peerlink
