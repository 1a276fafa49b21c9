package swarmtest

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/core"
)

// trustVerifier is the sizes-only network's verifier: a batch is genuine
// when its signature is the one the modelled origin made for that number
// (no Ed25519 per node), and a chunk when its size matches its entry and
// its bytes are the model's, all zero (no BLAKE3: a poisoner's bytes are
// not zero). Each node keeps only the numbers of the batches it learnt; the
// entries are the stream's, shared. Like core.Verifier it forgets what
// left the window: here, what left the origin's.
type trustVerifier struct {
	s     *stream
	known scheduler.SeqSet // batch numbers learnt
}

func newTrustVerifier(s *stream) *trustVerifier { return &trustVerifier{s: s} }

func (v *trustVerifier) learn(n uint64, sig []byte) ([]manifest.Entry, error) {
	genuine, ok := v.s.signed[n]
	if !ok {
		return nil, nil // left the origin's window: nothing to learn
	}
	if !bytes.Equal(genuine.Signature, sig) {
		return nil, fmt.Errorf("%w: batch %d", core.ErrForgedManifest, n)
	}
	if v.known.Has(n) {
		return nil, nil
	}
	v.known.Add(n)
	if n > 1024 {
		v.known.Advance(n - 1024)
	}
	return v.s.byN[n], nil
}

func (v *trustVerifier) Learn(b *manifest.Batch) ([]manifest.Entry, error) {
	return v.learn(b.N, b.Signature)
}

func (v *trustVerifier) LearnSigned(sb manifest.SignedBatch) (uint64, []manifest.Entry, error) {
	b, err := sb.Batch()
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", core.ErrMalformedBatch, err)
	}
	es, err := v.learn(b.N, sb.Signature)
	return b.N, es, err
}

func (v *trustVerifier) Entry(id manifest.ID) (manifest.Entry, bool) {
	n, ok := v.s.batchOf[id]
	if !ok || !v.known.Has(n) {
		return manifest.Entry{}, false
	}
	return v.s.entries[id], true
}

func (v *trustVerifier) Check(id manifest.ID, data []byte) (manifest.Entry, error) {
	e, ok := v.Entry(id)
	if !ok {
		return e, fmt.Errorf("%w: %s", core.ErrUnknownChunk, id)
	}
	if len(data) != int(e.Size) {
		return e, fmt.Errorf("%w: %d bytes, signed %d", core.ErrBadChunk, len(data), e.Size)
	}
	if !modelBytes(data) {
		return e, fmt.Errorf("%w: bytes that are not the chunk's", core.ErrBadChunk)
	}
	return e, nil
}

// modelBytes reports whether data is the model's bytes of a chunk: zeros
// (most often the shared zero buffer itself, checked without a scan).
func modelBytes(data []byte) bool {
	if len(data) == 0 || len(zeroBuf) > 0 && &data[0] == &zeroBuf[0] {
		return true
	}
	for _, b := range data {
		if b != 0 {
			return false
		}
	}
	return true
}

// CheckPieces checks what the model can: a known entry, an outboard and
// whole pieces that fit it (manifest.CheckPieceBounds), and the model's
// bytes (no BLAKE3).
func (v *trustVerifier) CheckPieces(id manifest.ID, outboard []byte, off int, data []byte) (manifest.Entry, error) {
	e, ok := v.Entry(id)
	if !ok {
		return e, fmt.Errorf("%w: %s", core.ErrUnknownChunk, id)
	}
	if err := manifest.CheckPieceBounds(int(e.Size), outboard, off, len(data)); err != nil {
		return e, fmt.Errorf("%w: %w", core.ErrBadChunk, err)
	}
	if !modelBytes(data) {
		return e, fmt.Errorf("%w: pieces [%d, %d): bytes that are not the chunk's", core.ErrBadChunk, off, off+len(data))
	}
	return e, nil
}

// Outboard returns zeros of an outboard's size, its length field set: the
// model carries its bytes, not its hashes.
func (v *trustVerifier) Outboard(_ manifest.ID, data []byte) []byte {
	ob := make([]byte, manifest.OutboardSize(len(data)))
	binary.LittleEndian.PutUint64(ob, uint64(len(data)))
	return ob
}

func (v *trustVerifier) BatchOf(id manifest.ID) (uint64, bool) {
	n, ok := v.s.batchOf[id]
	return n, ok && v.known.Has(n)
}

func (v *trustVerifier) Signed(n uint64) (manifest.SignedBatch, bool) {
	if !v.known.Has(n) {
		return manifest.SignedBatch{}, false
	}
	sb, ok := v.s.signed[n]
	return sb, ok
}

// sizeStore keeps the ids and sizes of the chunks a node holds, no bytes:
// Get returns zeros of the right size. It holds at most max chunks, oldest
// out first.
type sizeStore struct {
	bad   *int64 // counts chunks put whose bytes are not the model's
	max   int
	size  map[manifest.ID]int
	order []manifest.ID
}

func newSizeStore(max int) *sizeStore { return &sizeStore{max: max, size: map[manifest.ID]int{}} }

func (s *sizeStore) Put(id manifest.ID, data []byte) {
	if _, ok := s.size[id]; ok {
		return
	}
	if s.bad != nil && !modelBytes(data) {
		*s.bad++
	}
	s.size[id] = len(data)
	s.order = append(s.order, id)
	for len(s.order) > s.max {
		delete(s.size, s.order[0])
		s.order = s.order[1:]
	}
}

func (s *sizeStore) Get(id manifest.ID) ([]byte, bool) {
	n, ok := s.size[id]
	if !ok {
		return nil, false
	}
	return zeros(n), true
}

func (s *sizeStore) Has(id manifest.ID) bool {
	_, ok := s.size[id]
	return ok
}
