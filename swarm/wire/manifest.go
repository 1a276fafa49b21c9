package wire

import (
	"encoding/binary"
	"math"

	"github.com/seedcast/seedcast/manifest"
)

// Manifest relays signed manifest batches from peer to peer. Nothing in it is
// trusted: the receiver verifies every batch with the stream key it got from
// the server before using any entry.
type Manifest struct {
	// Batches, 1 … MaxBatches; after Decode their bytes alias the frame.
	Batches []manifest.SignedBatch
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
		if _, err := manifest.DecodeBatch(b.Encoded); err != nil {
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
	m.Batches = make([]manifest.SignedBatch, 0, n)
	for range n {
		l := d.u32()
		if d.err != nil {
			break
		}
		if l > uint32(len(d.b)) {
			d.fail("batch", int(min(l, math.MaxInt32)))
			break
		}
		m.Batches = append(m.Batches, manifest.SignedBatch{Encoded: d.bytes(int(l)), Signature: d.bytes(SignatureSize)})
	}
	return m
}
