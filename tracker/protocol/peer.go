package tracker

import (
	"net/netip"
)

// PeerID names a peer: 128 random bits in lower-case base32 (26 characters),
// unguessable so that a peer cannot signal a peer it was not given.
type PeerID string

// Kind is what a peer runs.
type Kind string

// Peer kinds.
const (
	KindBrowser Kind = "browser"
	KindNative  Kind = "native"
	KindOrigin  Kind = "origin" // the origin's own seed node: upstream of last resort
)

// Location is what the tracker knows of where a peer is. Any part may be
// missing: coordinates and ASN come from a GeoIP database when one is
// configured, Region from what the peer declares, Prefix from its address.
type Location struct {
	Lat, Lon  float64
	HasCoords bool
	Country   string // ISO 3166-1 alpha-2, upper case; "" when unknown
	ASN       uint32 // 0 when unknown
	Region    string // declared by the peer (e.g. "eu-west"); "" when none
	// Prefix is the peer's /24 (IPv4) or /48 (IPv6): peers sharing one are
	// probably close when nothing better is known.
	Prefix netip.Prefix
}
