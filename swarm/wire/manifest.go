package wire

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/seedcast/seedcast/chunker"
)

// SignedBatch is one signed manifest batch as relayed between peers: the exact
// bytes the signature covers (docs/protocol.md §2.2) and the signature.
type SignedBatch struct {
	Encoded   []byte // (*chunker.Batch).Encode() of the batch
	Signature []byte // SignatureSize bytes
}

// Batch decodes the batch (with DecodeBatch) and attaches its signature. The
// result is not verified: call its Verify with the key from the server.
func (s SignedBatch) Batch() (chunker.Batch, error) {
	b, err := DecodeBatch(s.Encoded)
	if err != nil {
		return b, err
	}
	b.Signature = append([]byte(nil), s.Signature...)
	return b, nil
}

// NewSignedBatch encodes a signed batch for a Manifest message.
func NewSignedBatch(b *chunker.Batch) (SignedBatch, error) {
	enc, err := b.Encode()
	if err != nil {
		return SignedBatch{}, err
	}
	if len(b.Signature) != SignatureSize {
		return SignedBatch{}, malformed("manifest: signature of %d bytes", len(b.Signature))
	}
	return SignedBatch{Encoded: enc, Signature: b.Signature}, nil
}

// Manifest relays signed manifest batches from peer to peer. Nothing in it is
// trusted: the receiver verifies every batch with the stream key it got from
// the server before using any entry.
type Manifest struct {
	// Batches, 1 … MaxBatches; after Decode their bytes alias the frame.
	Batches []SignedBatch
}

func (*Manifest) Type() Type { return TypeManifest }

func (m *Manifest) Append(buf []byte) []byte {
	buf, start := beginFrame(buf, TypeManifest)
	buf = append(buf, byte(len(m.Batches)))
	for _, b := range m.Batches {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(b.Encoded)))
		buf = append(buf, b.Encoded...)
		buf = append(buf, b.Signature...)
	}
	return endFrame(buf, start)
}

func (m *Manifest) Validate() error {
	if len(m.Batches) == 0 || len(m.Batches) > MaxBatches {
		return malformed("manifest: %d batches, not in 1…%d", len(m.Batches), MaxBatches)
	}
	size := 1
	for i, b := range m.Batches {
		if len(b.Signature) != SignatureSize {
			return malformed("manifest: batch %d: signature of %d bytes", i, len(b.Signature))
		}
		if _, err := DecodeBatch(b.Encoded); err != nil {
			return malformed("manifest: batch %d: %v", i, err)
		}
		size += 4 + len(b.Encoded) + SignatureSize
	}
	if size+1 > MaxMessage {
		return malformed("manifest: message of %d bytes, over %d", size+1, MaxMessage)
	}
	return nil
}

func decodeManifest(d *decoder) *Manifest {
	m := &Manifest{}
	n := int(d.u8())
	if n == 0 || n > MaxBatches {
		if d.err == nil {
			d.err = malformed("manifest: %d batches, not in 1…%d", n, MaxBatches)
		}
		return m
	}
	m.Batches = make([]SignedBatch, 0, n)
	for range n {
		l := d.u32()
		if d.err != nil {
			break
		}
		if l > uint32(len(d.b)) {
			d.fail("batch", int(min(l, math.MaxInt32)))
			break
		}
		m.Batches = append(m.Batches, SignedBatch{Encoded: d.bytes(int(l)), Signature: d.bytes(SignatureSize)})
	}
	return m
}

// batchMagic starts every signed batch encoding (docs/protocol.md §2.2).
const batchMagic = "seedcast-manifest-v1\n"

// DecodeBatch parses the signed encoding of a manifest batch
// (docs/protocol.md §2.2, the output of (*chunker.Batch).Encode), checking
// every limit, so that Encode of the result gives back exactly encoded. The
// batch has no signature and is not verified. Errors wrap ErrMalformed.
func DecodeBatch(encoded []byte) (chunker.Batch, error) {
	var b chunker.Batch
	d := decoder{b: encoded}
	if magic := d.bytes(len(batchMagic)); d.err != nil || string(magic) != batchMagic {
		return b, malformed("batch: bad magic")
	}
	b.Stream = d.name()
	if d.err == nil {
		if err := checkName("batch: stream", b.Stream); err != nil {
			return b, err
		}
	}
	b.N = d.u64()
	n := int(d.u16())
	if d.err != nil {
		return b, d.err
	}
	if n == 0 || n > chunker.MaxBatchEntries {
		return b, malformed("batch: %d entries, not in 1…%d", n, chunker.MaxBatchEntries)
	}
	// The smallest entry is 68 bytes: refuse a count the input cannot hold
	// before allocating for it.
	if len(d.b) < n*68 {
		return b, malformed("batch: %d entries in %d bytes", n, len(d.b))
	}
	b.Entries = make([]chunker.Entry, n)
	for i := range b.Entries {
		e := &b.Entries[i]
		kind := d.u8()
		if kind != byte(chunker.KindChunk) && kind != byte(chunker.KindInit) {
			return b, malformed("batch: entry %d: kind %d", i, kind)
		}
		e.Kind = chunker.EntryKind(kind)
		e.Rendition = d.name()
		if d.err == nil {
			if err := checkName("batch: rendition", e.Rendition); err != nil {
				return b, err
			}
		}
		e.Seq = d.u64()
		media := d.u64()
		if media > math.MaxInt64/1000 {
			return b, malformed("batch: entry %d: media time %d µs out of range", i, media)
		}
		e.MediaTime = time.Duration(media) * time.Microsecond
		e.Duration = time.Duration(d.u32()) * time.Microsecond
		e.IngestTime = time.UnixMicro(int64(d.u64())).UTC()
		e.Size = d.u32()
		flags := d.u8()
		if flags&^3 != 0 {
			return b, malformed("batch: entry %d: flags 0x%02x", i, flags)
		}
		e.Independent = flags&1 != 0
		e.Discontinuity = flags&2 != 0
		e.Hash = d.id()
		if d.err != nil {
			return b, d.err
		}
	}
	if len(d.b) != 0 {
		return b, malformed("batch: %d bytes after the last entry", len(d.b))
	}
	return b, nil
}
