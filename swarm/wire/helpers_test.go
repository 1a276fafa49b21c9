package wire

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/internal/docvectors"
)

// protocolDoc is the specification whose test vectors TestProtocolVectors checks.
const protocolDoc = "../../docs/protocol.md"

// docVectors returns the test vectors of docs/protocol.md by name.
func docVectors(t testing.TB) map[string]string { return docvectors.Read(t, protocolDoc) }

// docHex decodes a hexadecimal vector, ignoring white space.
func docHex(t testing.TB, vectors map[string]string, name string) []byte {
	return docvectors.Hex(t, vectors, name)
}

// vectorKey is the key of docs/protocol.md §2.5 (seed 0x00…0x1f).
func vectorKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// vectorBatch is the signed batch of docs/protocol.md §2.5.
func vectorBatch(t testing.TB) chunker.Batch {
	base := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	b := chunker.Batch{Stream: "demo", N: 42, Entries: []chunker.Entry{
		{
			Kind: chunker.KindInit, Rendition: "v0", Seq: 1200,
			IngestTime: base.Add(123456 * time.Microsecond), Size: 812, Independent: true,
			Hash: chunker.Sum([]byte("seedcast test init v0")),
		},
		{
			Kind: chunker.KindChunk, Rendition: "v0", Seq: 1200, MediaTime: 300 * time.Second, Duration: 266667 * time.Microsecond,
			IngestTime: base.Add(400 * time.Millisecond), Size: 48213, Independent: true,
			Hash: chunker.Sum([]byte("seedcast test chunk 1")),
		},
		{
			Kind: chunker.KindChunk, Rendition: "a0", Seq: 1200, MediaTime: 300*time.Second + 20*time.Millisecond, Duration: 240 * time.Millisecond,
			IngestTime: base.Add(410 * time.Millisecond), Size: 4120, Independent: true, Discontinuity: true,
			Hash: chunker.Sum([]byte("seedcast test chunk 2")),
		},
	}}
	if err := b.Sign(vectorKey()); err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorSignedBatch(t testing.TB) SignedBatch {
	b := vectorBatch(t)
	sb, err := NewSignedBatch(&b)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// vectorID is the id used by the wire vectors: BLAKE3 of "seedcast test chunk 1".
func vectorID() chunker.ID { return chunker.Sum([]byte("seedcast test chunk 1")) }

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
		"manifest":       &Manifest{Batches: []SignedBatch{vectorSignedBatch(t)}},
		"choke":          &Choke{Reason: ChokeCongested},
		"unchoke":        &Unchoke{},
		"reject":         &Reject{ReqID: 7, Reason: RejectNotHeld},
		"stats":          &Stats{BufferMs: 3200, UploadKbps: 800, Peers: 5},
	}
}

type ed25519PublicKey = ed25519.PublicKey
