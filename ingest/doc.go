// Package ingest turns a broadcaster's feed into the stream's chunks: it takes
// access units — from the SFU's RTP tap (RTP → ordered access units, keyframe
// requests, clock mapping) or from a local source such as the demo loop — and
// drives the stream's chunker, whose batches it signs (Pipeline) before
// handing them to the origin.
//
// It owns the stream's chunker and its Ed25519 signing key (Manager makes
// one per stream and gives the origin only the public half); it does not mux
// containers itself (that is chunker's job).
package ingest
