package wire

import (
	"encoding/binary"
	"testing"

	"github.com/seedcast/seedcast/internal/docvectors"
	"github.com/seedcast/seedcast/manifest"
)

// protocolDoc is the specification whose test vectors TestProtocolVectors checks.
const protocolDoc = "../../docs/protocol.md"

// docVectors returns the test vectors of docs/protocol.md by name.
func docVectors(t testing.TB) map[string]string { return docvectors.Read(t, protocolDoc) }

// docHex decodes a hexadecimal vector, ignoring white space.
func docHex(t testing.TB, vectors map[string]string, name string) []byte {
	return docvectors.Hex(t, vectors, name)
}

// vectorSignedBatch is the signed batch of docs/protocol.md §2.5, as
// documented (package manifest checks it against its encoder).
func vectorSignedBatch(t testing.TB) manifest.SignedBatch {
	v := docVectors(t)
	return manifest.SignedBatch{Encoded: docHex(t, v, "encoded"), Signature: docHex(t, v, "signature")}
}

// vectorID is the id used by the wire vectors: BLAKE3 of "seedcast test chunk 1".
func vectorID() manifest.ID { return manifest.Sum([]byte("seedcast test chunk 1")) }

// pieceData is the outboard vector's chunk: byte i is i mod 251.
func pieceData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// vectorOutboard is the outboard of docs/protocol.md §5.8: the chunk of
// 32,769 bytes of pieceData (three pieces).
func vectorOutboard() *Outboard {
	data := pieceData(2*manifest.PieceSize + 1)
	return &Outboard{ID: manifest.Sum(data), Data: manifest.Outboard(data)}
}

// maxOutboard is a well-formed outboard of a chunk of MaxChunk bytes (its
// tree nodes are not a real chunk's).
func maxOutboard() []byte {
	b := make([]byte, manifest.OutboardSize(MaxChunk))
	binary.LittleEndian.PutUint64(b, MaxChunk)
	return b
}

// fragment is a deterministic test payload.
func fragment(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

// sampleMessages is one valid message of every type, with edge values.
func sampleMessages(t testing.TB) map[string]Message {
	have := &Have{Rendition: "v0", Base: 1200, Bits: 12, Bitmap: []byte{0b10110000, 0b01010000}}
	full := &Have{Rendition: "a0", Base: 1 << 40, Bits: MaxHaveBits, Bitmap: fragment(MaxHaveBits / 8)}
	return map[string]Message{
		"hello":          &Hello{Version: 1, Renditions: []string{"v0", "a0"}, BudgetKbps: 2500, Slots: 4},
		"hello-empty":    &Hello{Version: 1},
		"hello-v2":       &Hello{Version: 2, Renditions: []string{"v0"}, Extension: []byte{1, 2, 3}},
		"have":           have,
		"have-empty":     &Have{Rendition: "v0", Base: 7},
		"have-full":      full,
		"have-top":       &Have{Rendition: "v0", Base: 1<<64 - 8, Bits: 8, Bitmap: []byte{0xff}},
		"subscribe":      &Subscribe{Rendition: "v0", K: 4, Index: 2},
		"unsubscribe":    &Unsubscribe{Rendition: "v0", K: 4, Index: 3},
		"request":        &Request{ReqID: 7, ID: vectorID(), Rendition: "v0", Seq: 1200},
		"request-nohint": &Request{ReqID: 1<<32 - 1, ID: vectorID()},
		"cancel":         &Cancel{ReqID: 7, ID: vectorID()},
		"chunk":          &Chunk{ReqID: 7, ID: vectorID(), Size: 48213, Offset: 48200, Data: fragment(13)},
		"chunk-max":      &Chunk{ID: vectorID(), Size: MaxChunk, Offset: MaxChunk - MaxFragment, Data: fragment(MaxFragment)},
		"manifest":       &Manifest{Batches: []manifest.SignedBatch{vectorSignedBatch(t)}},
		"choke":          &Choke{Reason: ChokeCongested},
		"unchoke":        &Unchoke{},
		"reject":         &Reject{ReqID: 7, Reason: RejectNotHeld},
		"stats":          &Stats{BufferMs: 3200, UploadKbps: 800, Peers: 5},
		"outboard":       vectorOutboard(),
		"outboard-one":   &Outboard{ID: vectorID(), Data: []byte{0x00, 0x40, 0, 0, 0, 0, 0, 0}},
		"outboard-max":   &Outboard{ID: vectorID(), Data: maxOutboard()},
	}
}
