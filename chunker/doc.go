// Package chunker muxes CMAF: it turns access units into, per rendition, an
// init segment (ftyp+moov) and chunks (moof+mdat) of a fixed target duration
// cut at frame boundaries, all written with github.com/Eyevinn/mp4ff. Chunk n
// of every rendition covers the same slot of media time, [n·D, (n+1)·D)
// rounded to frame boundaries, so renditions stay aligned for players and
// peers alike.
//
// It describes every chunk and init segment in a manifest.Entry and signs
// them in small batches (manifest.Batch) with the stream's key; the ids, the
// entries and the signed encoding belong to package manifest. Serving them,
// LL-HLS playlists included, is package origin's job.
//
// The package does no I/O of its own: callers push access units in and get
// signed batches out through a callback, with the wall clock injected.
package chunker
