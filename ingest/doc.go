// Package ingest turns a broadcaster's feed into the stream's chunks: it takes
// access units — from the SFU's RTP tap (RTP → ordered access units, keyframe
// requests, clock mapping) or from a local source such as the demo loop — and
// drives the stream's chunker, whose signed output it hands to the origin.
//
// It owns the stream's chunker and signing key; it does not mux containers
// itself (that is chunker's job).
package ingest
