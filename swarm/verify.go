package swarm

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"github.com/seedcast/seedcast/chunker"
)

// Verification errors. ErrForgedManifest and ErrBadChunk mean the peer that
// sent the thing is lying: cut it off and report it.
var (
	ErrForgedManifest = errors.New("swarm: manifest batch not signed by the stream key")
	ErrUnknownChunk   = errors.New("swarm: chunk not in any signed manifest entry")
	ErrBadChunk       = errors.New("swarm: chunk bytes do not match their signed entry")
)

// VerifierParams configures a Verifier.
type VerifierParams struct {
	Stream    string
	PublicKey ed25519.PublicKey // from the server (HTTPS or the tracker), never from a peer
	// MaxEntries bounds the signed entries remembered, oldest first out
	// (default 4096: minutes of a stream's chunks).
	MaxEntries int
}

// Verifier knows which chunks are genuine: the entries of manifest batches
// signed by the stream's key. It is safe for concurrent use.
type Verifier struct {
	p       VerifierParams
	mu      sync.Mutex
	entries map[chunker.ID]chunker.Entry
	order   []chunker.ID // insertion order, for eviction
	batches map[uint64]bool
}

// NewVerifier returns a verifier that knows no entries yet.
func NewVerifier(p VerifierParams) (*Verifier, error) {
	if len(p.PublicKey) != ed25519.PublicKeySize {
		return nil, errors.New("swarm: VerifierParams.PublicKey must be an Ed25519 public key")
	}
	if !chunker.ValidName(p.Stream) {
		return nil, fmt.Errorf("swarm: stream name %q", p.Stream)
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = 4096
	}
	return &Verifier{p: p, entries: map[chunker.ID]chunker.Entry{}, batches: map[uint64]bool{}}, nil
}

// AddBatch learns the entries of a signed batch, from the origin or relayed
// by a peer. A batch of another stream or with a bad signature is refused
// with ErrForgedManifest and teaches nothing.
func (v *Verifier) AddBatch(b *chunker.Batch) error {
	if b.Stream != v.p.Stream {
		return fmt.Errorf("%w: batch of stream %q", ErrForgedManifest, b.Stream)
	}
	if err := b.Verify(v.p.PublicKey); err != nil {
		return fmt.Errorf("%w: %v", ErrForgedManifest, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.batches[b.N] {
		return nil
	}
	v.batches[b.N] = true
	for _, e := range b.Entries {
		if _, known := v.entries[e.Hash]; !known {
			v.order = append(v.order, e.Hash)
		}
		v.entries[e.Hash] = e
	}
	for len(v.order) > v.p.MaxEntries {
		delete(v.entries, v.order[0])
		v.order = v.order[1:]
	}
	if len(v.batches) > 4*v.p.MaxEntries {
		clear(v.batches) // only a shortcut for repeated batches; entries stay
	}
	return nil
}

// AddManifest learns every batch of a manifest document fetched from the
// server. The document's own publicKey field is ignored: the verifier's key
// decides.
func (v *Verifier) AddManifest(m *chunker.Manifest) error {
	batches, err := m.SignedBatches()
	if err != nil {
		return err
	}
	for i := range batches {
		if err := v.AddBatch(&batches[i]); err != nil {
			return err
		}
	}
	return nil
}

// Entry returns the signed entry of a chunk id, if known.
func (v *Verifier) Entry(id chunker.ID) (chunker.Entry, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[id]
	return e, ok
}

// Check accepts data as chunk (or init segment) id only when id is a signed
// entry and data hashes to it with the signed size. The id a peer claims
// proves nothing by itself: this is the only door into the store.
func (v *Verifier) Check(id chunker.ID, data []byte) (chunker.Entry, error) {
	e, ok := v.Entry(id)
	if !ok {
		return e, fmt.Errorf("%w: %s", ErrUnknownChunk, id)
	}
	if len(data) != int(e.Size) || chunker.Sum(data) != id {
		return e, fmt.Errorf("%w: %s/%d (%d bytes)", ErrBadChunk, e.Rendition, e.Seq, len(data))
	}
	return e, nil
}
