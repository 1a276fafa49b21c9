// Package sfu is Seedcast's selective forwarding unit: it owns rooms, their
// participants, published tracks with their simulcast layers, and the
// subscriptions that forward those tracks to other peers (sequence number and
// timestamp rewriting, keyframe gating on layer switches, keyframe requests,
// layer selection, dominant-speaker detection). It asks publishers for lost
// video packets itself (nackLog, in nack.go), because pion's NACK generator
// never learns of packets repaired over RTX; pion's responder answers the
// subscribers' NACKs.
//
// It also serves WHIP ingest and WHEP playback (RFC 9725) as an http.Handler,
// and lets in-process consumers tap a room's RTP without WebRTC (see Tap).
//
// Every session takes a lease from ServerParams.Limits (package
// internal/connlimit) before it makes a peer connection: sessions are
// capped in total, per client address, per room and while not connected
// (429 past a per-address cap, 503 past the others), and one that has not
// connected within ConnectTimeout is closed. A new publisher replaces a
// broadcast's publisher whose peer connection is not connected.
//
// The package knows nothing about chunks, containers or the swarm: what a
// consumer does with the packets a Tap receives is its own business.
package sfu
