// Package origin is the server side of distribution: it holds each live
// stream's signed manifest window and renders its LL-HLS playlists
// (Playlist: segments of whole chunks, every chunk a part), keeps chunk and
// init bytes in a byte- and time-bounded store, and serves them over HTTP —
// /c/{hash} (immutable), /live/{stream}/manifest, /live/{stream}/index.m3u8
// and its media playlists and segments — with /healthz and /metrics.
// Params.EgressKbps caps the media bytes those routes send (a token bucket:
// a request past it gets 503 with Retry-After, counted; a response is
// charged what it sends, so a range costs its length and a 304 or a HEAD
// nothing), so that an operator's bill holds whatever the swarm does.
//
// DESIGN.md has no room for this job: chunker must not do network I/O and
// swarm is a peer node, so the origin's HTTP publication lives here. It takes
// chunker.Output from ingest, signed there with the stream's key, and holds
// only the public key: Stream.Publish verifies every batch and refuses an
// unsigned one (ErrUnsigned). It never looks inside media bytes; the manifest
// types it serves are package manifest's.
package origin
