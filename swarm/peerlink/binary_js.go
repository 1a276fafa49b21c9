//go:build js && wasm

package peerlink

import "github.com/pion/webrtc/v4"

// prepare makes the browser deliver a channel's binary messages as
// ArrayBuffers, not Blobs, which pion would read asynchronously and so
// possibly out of order. An exception JavaScript throws is ignored.
func prepare(dc *webrtc.DataChannel) {
	defer func() { _ = recover() }()
	dc.JSValue().Set("binaryType", "arraybuffer")
}
