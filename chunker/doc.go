// Package chunker turns access units into CMAF: per rendition an init segment
// (ftyp+moov) and chunks (moof+mdat) of a fixed target duration cut at frame
// boundaries, all written with github.com/Eyevinn/mp4ff. Chunk n of every
// rendition covers the same slot of media time, [n·D, (n+1)·D) rounded to frame
// boundaries, so renditions stay aligned for players and peers alike.
//
// Every chunk and init segment is addressed by the BLAKE3-256 of its bytes
// (ID). Manifest entries describing them are signed with the stream's Ed25519
// key in small batches (Batch); the exact signed encoding is in
// docs/protocol.md. Playlist renders LL-HLS playlists over the same chunks.
//
// The package does no I/O of its own: callers push access units in and get
// signed batches out through a callback, with the wall clock injected.
package chunker
