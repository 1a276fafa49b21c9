// Package chunker muxes CMAF: it turns access units into, per rendition, an
// init segment (ftyp+moov) and chunks (moof+mdat) of a fixed target duration
// cut at frame boundaries, all written with github.com/Eyevinn/mp4ff. Chunk n
// of every rendition covers the same slot of media time, [n·D, (n+1)·D)
// rounded to frame boundaries, so renditions stay aligned for players and
// peers alike.
//
// It describes every chunk and init segment in a manifest.Entry and decides
// what goes in each batch (manifest.Batch): one slot of every rendition per
// batch, init segments in a batch of their own. It does not sign: batches
// come out unsigned, and whoever holds the stream's key signs them (package
// ingest) before the origin publishes them. The ids, the entries and the
// signed encoding belong to package manifest; serving them, LL-HLS
// playlists included, is package origin's job.
//
// The package does no I/O of its own: callers push access units in and get
// batches out through a callback, with the wall clock injected.
package chunker
