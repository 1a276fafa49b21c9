// Package manifest names what a stream is made of and proves it genuine:
// chunk ids (ID, Sum: BLAKE3-256 of the bytes), manifest entries (Entry),
// Ed25519-signed batches of entries (Batch: their one binary encoding,
// signing and verification; DecodeBatch; SignedBatch, the form peers relay),
// the manifest document served at /live/{stream}/manifest (Manifest,
// DecodeManifest), the chunk duration bounds, and the rules for stream and
// rendition names (ValidName). docs/protocol.md, sections 1–3, specifies the
// formats; the tests check its vectors.
//
// It is carried by every node, the browser's WebAssembly build included, so
// it imports nothing but the standard library and BLAKE3: no mp4ff, no
// network code.
package manifest
