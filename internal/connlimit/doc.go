// Package connlimit bounds the WebRTC peer connections one process holds.
//
// Every peer connection costs file descriptors (about 8 with the default ICE
// settings: a UDP socket per interface and network type, plus DTLS/SCTP
// plumbing), about 20 goroutines and about 440 KB, and one whose ICE never
// completes lives until the ICE timeout. Anyone who can POST an SDP offer or
// relay one through the tracker can make the server open them, so every
// kind (WHIP publishers, WHEP viewers, the origin seed's links, calls) takes
// a Lease from one shared Limiter before it creates a peer connection, and
// gives it back when the connection closes.
//
// A Limiter caps connections in total, per client address (an IPv4 address
// or an IPv6 /64), and per stream, and caps pending ones (not connected yet)
// in total and per address. Sized derives defaults from the process's file
// descriptor limit. Refusals are ErrFull (the server or the stream is at
// its cap: HTTP 503) or ErrTooMany (this address holds too many: HTTP
// 429), each counted by kind and reason.
//
// The package does no I/O and starts no goroutines; the callers reap pending
// connections that do not connect in time and release their leases.
package connlimit
