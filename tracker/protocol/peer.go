package protocol

// PeerID names a peer: 128 random bits in lower-case base32 (26 characters),
// unguessable so that a peer cannot signal a peer it was not given.
type PeerID string

// OriginPeer is the peer id of a stream's origin seed node.
const OriginPeer PeerID = "origin"

// ValidPeerID reports whether s has the form of a peer id, 26 characters of
// [a-z2-7] (or is OriginPeer).
func ValidPeerID(s PeerID) bool {
	return s == OriginPeer || spanOf(string(s), 26, 26, func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' })
}

// spanOf reports whether s is min to max bytes, each one ok. (Checks this
// simple need no regexp package, whose start-up the browser's node pays.)
func spanOf(s string, min, max int, ok func(byte) bool) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// Kind is what a peer runs.
type Kind string

// Peer kinds.
const (
	KindBrowser Kind = "browser"
	KindNative  Kind = "native"
	KindOrigin  Kind = "origin" // the origin's own seed node: upstream of last resort
)
