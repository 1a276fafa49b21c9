//go:build js && wasm

package peerlink

import (
	"syscall/js"

	"github.com/pion/webrtc/v4"
)

// prepare makes the browser deliver a channel's binary messages as
// ArrayBuffers, not Blobs, which pion would read asynchronously and so
// possibly out of order. An exception JavaScript throws is ignored.
func prepare(dc *webrtc.DataChannel) {
	defer func() { _ = recover() }()
	dc.JSValue().Set("binaryType", "arraybuffer")
}

// Available reports whether the page has WebRTC: a browser with it turned
// off, or a page that removed it, has no RTCPeerConnection.
func Available() bool {
	return js.Global().Get("RTCPeerConnection").Type() == js.TypeFunction
}
