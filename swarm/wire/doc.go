// Package wire is the Seedcast peer wire codec: the binary, length-prefixed,
// versioned messages two swarm nodes exchange over a WebRTC data channel
// (docs/protocol.md, section 5).
//
// It owns framing (Reader, Splitter), the message types and their byte layouts
// (Hello, Have, Subscribe, Unsubscribe, Request, Cancel, Chunk, Manifest, Choke,
// Unchoke, Reject, Stats; Append to encode, Decode to decode) and the reassembly
// of chunks sent in fragments (Reassembler). A Manifest message carries signed
// batches as package manifest encodes them (manifest.SignedBatch), checked
// with manifest.DecodeBatch. Every length is checked against a limit before
// anything is allocated. Decode returns ErrUnknownType for a frame of a type it
// does not know (skip it) and an error wrapping ErrMalformed for anything else
// it refuses (close that connection).
//
// The codec does no I/O of its own beyond reading frames and trusts nothing:
// in particular it does not verify chunks or manifests. A reassembled chunk is
// just bytes a peer sent; the caller must check it against a verified manifest
// entry (size and BLAKE3 id) before using it, and verify relayed batches with
// the stream key obtained from the server.
package wire
