package protocol

import "regexp"

// PeerID names a peer: 128 random bits in lower-case base32 (26 characters),
// unguessable so that a peer cannot signal a peer it was not given.
type PeerID string

// OriginPeer is the peer id of a stream's origin seed node.
const OriginPeer PeerID = "origin"

var peerIDRE = regexp.MustCompile(`^[a-z2-7]{26}$`)

// ValidPeerID reports whether s has the form of a peer id (or is OriginPeer).
func ValidPeerID(s PeerID) bool { return peerIDRE.MatchString(string(s)) || s == OriginPeer }

// Kind is what a peer runs.
type Kind string

// Peer kinds.
const (
	KindBrowser Kind = "browser"
	KindNative  Kind = "native"
	KindOrigin  Kind = "origin" // the origin's own seed node: upstream of last resort
)
