//go:build !(js && wasm)

package peerlink

import "github.com/pion/webrtc/v4"

// prepare does nothing natively: pion delivers binary messages as bytes.
func prepare(*webrtc.DataChannel) {}

// Available reports whether WebRTC can be used: natively, always.
func Available() bool { return true }
