package swarmtest

import (
	"bytes"
	"fmt"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
)

// trustVerifier is the sizes-only network's verifier: a batch is genuine
// when its signature is the one the modelled origin made for that number
// (no Ed25519 per node), and a chunk when its size matches its entry (no
// BLAKE3). It forgets like core.Verifier: oldest entries first.
type trustVerifier struct {
	s       *stream
	max     int
	entries map[manifest.ID]manifest.Entry
	batchOf map[manifest.ID]uint64
	order   []manifest.ID
	signed  map[uint64]manifest.SignedBatch
	signedQ []uint64
}

func newTrustVerifier(s *stream) *trustVerifier {
	return &trustVerifier{s: s, max: 1024, entries: map[manifest.ID]manifest.Entry{}, batchOf: map[manifest.ID]uint64{}, signed: map[uint64]manifest.SignedBatch{}}
}

func (v *trustVerifier) learn(n uint64, sig []byte) ([]manifest.Entry, error) {
	if _, known := v.signed[n]; known {
		return nil, nil
	}
	genuine, ok := v.s.signed[n]
	if !ok {
		return nil, nil // left the origin's window: nothing to learn
	}
	if !bytes.Equal(genuine.Signature, sig) {
		return nil, fmt.Errorf("%w: batch %d", core.ErrForgedManifest, n)
	}
	var es []manifest.Entry
	if n == 0 {
		es = v.s.init.b.Entries
	} else {
		for _, b := range v.s.batches {
			if b.b.N == n {
				es = b.b.Entries
			}
		}
	}
	v.signed[n] = genuine
	v.signedQ = append(v.signedQ, n)
	for _, e := range es {
		if _, known := v.entries[e.Hash]; !known {
			v.order = append(v.order, e.Hash)
		}
		v.entries[e.Hash] = e
		v.batchOf[e.Hash] = n
	}
	for len(v.order) > v.max {
		delete(v.entries, v.order[0])
		delete(v.batchOf, v.order[0])
		v.order = v.order[1:]
	}
	for len(v.signedQ) > v.max {
		delete(v.signed, v.signedQ[0])
		v.signedQ = v.signedQ[1:]
	}
	return es, nil
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

func (v *trustVerifier) Check(id manifest.ID, data []byte) (manifest.Entry, error) {
	e, ok := v.entries[id]
	if !ok {
		return e, fmt.Errorf("%w: %s", core.ErrUnknownChunk, id)
	}
	if len(data) != int(e.Size) {
		return e, fmt.Errorf("%w: %d bytes, signed %d", core.ErrBadChunk, len(data), e.Size)
	}
	return e, nil
}

func (v *trustVerifier) Entry(id manifest.ID) (manifest.Entry, bool) {
	e, ok := v.entries[id]
	return e, ok
}

func (v *trustVerifier) BatchOf(id manifest.ID) (uint64, bool) {
	n, ok := v.batchOf[id]
	return n, ok
}

func (v *trustVerifier) Signed(n uint64) (manifest.SignedBatch, bool) {
	sb, ok := v.signed[n]
	return sb, ok
}

// sizeStore keeps the ids and sizes of the chunks a node holds, no bytes:
// Get returns zeros of the right size. It holds at most max chunks, oldest
// out first.
type sizeStore struct {
	max   int
	size  map[manifest.ID]int
	order []manifest.ID
}

func newSizeStore(max int) *sizeStore { return &sizeStore{max: max, size: map[manifest.ID]int{}} }

func (s *sizeStore) Put(id manifest.ID, data []byte) {
	if _, ok := s.size[id]; ok {
		return
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
