// Package sfu is Seedcast's selective forwarding unit: it owns rooms, their
// participants, published tracks with their simulcast layers, and the
// subscriptions that forward those tracks to other peers (sequence number and
// timestamp rewriting, keyframe gating on layer switches, keyframe requests,
// layer selection, dominant-speaker detection).
//
// It also serves WHIP ingest and WHEP playback (RFC 9725) as an http.Handler,
// and lets in-process consumers tap a room's RTP without WebRTC (see Tap).
//
// The package knows nothing about chunks, containers or the swarm: what a
// consumer does with the packets a Tap receives is its own business.
package sfu
