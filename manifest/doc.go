// Package manifest names what a stream is made of and proves it genuine:
// chunk ids (BLAKE3-256 of the bytes), manifest entries, Ed25519-signed
// batches of entries (their one binary encoding, signing and verification),
// the manifest document served at /live/{stream}/manifest, and the rules
// for stream and rendition names.
//
// It is carried by every node, the browser's WebAssembly build included, so
// it imports nothing but the standard library and BLAKE3: no mp4ff, no
// network code.
package manifest
