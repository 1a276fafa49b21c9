package core

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/seedcast/seedcast/manifest"
)

// Verification errors. ErrForgedManifest and ErrBadChunk mean the peer that
// sent the thing is lying: cut it off and report it.
var (
	ErrForgedManifest = errors.New("swarm: manifest batch not signed by the stream key")
	ErrUnknownChunk   = errors.New("swarm: chunk not in any signed manifest entry")
	ErrBadChunk       = errors.New("swarm: chunk bytes do not match their signed entry")
	ErrMalformedBatch = errors.New("swarm: relayed manifest batch does not decode")
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
	entries map[manifest.ID]manifest.Entry
	order   []manifest.ID // insertion order, for eviction
	batches map[uint64]bool
	// The signed batches, as relayed to peers, and which batch signed
	// each entry; bounded like the entries.
	signed  map[uint64]manifest.SignedBatch
	signedQ []uint64
	batchOf map[manifest.ID]uint64
	// Init segments and their batches, kept apart (oldest out past
	// maxInits): they outlive the chunks' turnover.
	initOrder []manifest.ID
	initQ     []uint64
}

// maxInits bounds the init segment entries (and their batches) a Verifier
// keeps: a rendition's lasts as long as its publisher, and a day of
// reconnects makes a few dozen.
const maxInits = 256

// NewVerifier returns a verifier that knows no entries yet.
func NewVerifier(p VerifierParams) (*Verifier, error) {
	if len(p.PublicKey) != ed25519.PublicKeySize {
		return nil, errors.New("swarm: VerifierParams.PublicKey must be an Ed25519 public key")
	}
	if !manifest.ValidName(p.Stream) {
		return nil, fmt.Errorf("swarm: stream name %q", p.Stream)
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = 4096
	}
	return &Verifier{
		p: p, entries: map[manifest.ID]manifest.Entry{}, batches: map[uint64]bool{},
		signed: map[uint64]manifest.SignedBatch{}, batchOf: map[manifest.ID]uint64{},
	}, nil
}

// AddBatch learns the entries of a signed batch, from the origin or relayed
// by a peer. A batch of another stream or with a bad signature is refused
// with ErrForgedManifest and teaches nothing.
func (v *Verifier) AddBatch(b *manifest.Batch) error {
	_, err := v.Learn(b)
	return err
}

// Learn is AddBatch that also returns the batch's entries when the batch is
// new to the verifier (nil when it was known already).
func (v *Verifier) Learn(b *manifest.Batch) ([]manifest.Entry, error) {
	if b.Stream != v.p.Stream {
		return nil, fmt.Errorf("%w: batch of stream %q", ErrForgedManifest, b.Stream)
	}
	v.mu.Lock()
	prev, known := v.signed[b.N]
	v.mu.Unlock()
	if known && bytes.Equal(prev.Signature, b.Signature) {
		// The same signature over the same batch number: a resend. Its
		// encoding must match too, or it is a forgery under a copied
		// signature (Verify below catches that).
		if enc, err := b.Encode(); err == nil && bytes.Equal(enc, prev.Encoded) {
			return nil, nil
		}
	}
	if err := b.Verify(v.p.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForgedManifest, err)
	}
	sb, err := manifest.NewSignedBatch(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForgedManifest, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.batches[b.N] {
		return nil, nil
	}
	v.batches[b.N] = true
	v.signed[b.N] = sb
	// Init segments stay in force for as long as their rendition is
	// published: they and their batches are kept apart from the chunks'
	// (which a long stream turns over), in a bound of their own.
	inits := false
	for _, e := range b.Entries {
		init := e.Kind == manifest.KindInit
		inits = inits || init
		if _, known := v.entries[e.Hash]; !known {
			if init {
				v.initOrder = append(v.initOrder, e.Hash)
			} else {
				v.order = append(v.order, e.Hash)
			}
		}
		v.entries[e.Hash] = e
		v.batchOf[e.Hash] = b.N
	}
	if inits {
		v.initQ = append(v.initQ, b.N)
	} else {
		v.signedQ = append(v.signedQ, b.N)
	}
	evict := func(order *[]manifest.ID, max int) {
		for len(*order) > max {
			delete(v.entries, (*order)[0])
			delete(v.batchOf, (*order)[0])
			*order = (*order)[1:]
		}
	}
	evict(&v.order, v.p.MaxEntries)
	evict(&v.initOrder, maxInits)
	for len(v.signedQ) > v.p.MaxEntries {
		delete(v.signed, v.signedQ[0])
		v.signedQ = v.signedQ[1:]
	}
	for len(v.initQ) > maxInits {
		delete(v.signed, v.initQ[0])
		v.initQ = v.initQ[1:]
	}
	if len(v.batches) > 4*v.p.MaxEntries {
		clear(v.batches) // only a shortcut for repeated batches; entries stay
	}
	return slices.Clone(b.Entries), nil
}

// LearnSigned is Learn for a batch relayed by a peer in its wire form; it
// also returns the batch's number. A
// batch that does not decode is refused with ErrMalformedBatch.
func (v *Verifier) LearnSigned(sb manifest.SignedBatch) (uint64, []manifest.Entry, error) {
	b, err := sb.Batch()
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrMalformedBatch, err)
	}
	es, err := v.Learn(&b)
	return b.N, es, err
}

// Signed returns batch n as signed, for relaying to a peer.
func (v *Verifier) Signed(n uint64) (manifest.SignedBatch, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	sb, ok := v.signed[n]
	return sb, ok
}

// BatchOf returns the number of the batch that signed a chunk's entry.
func (v *Verifier) BatchOf(id manifest.ID) (uint64, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	n, ok := v.batchOf[id]
	return n, ok
}

// AddManifest learns every batch of a manifest document fetched from the
// server. The document's own publicKey field is ignored: the verifier's key
// decides.
func (v *Verifier) AddManifest(m *manifest.Manifest) error {
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
func (v *Verifier) Entry(id manifest.ID) (manifest.Entry, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	e, ok := v.entries[id]
	return e, ok
}

// CheckPieces accepts data as bytes [off, off+len(data)) of chunk id only
// when id is a signed entry and outboard proves them against it: the chunk
// verified piece by piece, as it arrives (docs/protocol.md §5.8).
func (v *Verifier) CheckPieces(id manifest.ID, outboard []byte, off int, data []byte) (manifest.Entry, error) {
	e, ok := v.Entry(id)
	if !ok {
		return e, fmt.Errorf("%w: %s", ErrUnknownChunk, id)
	}
	if err := manifest.VerifyPieces(id, int(e.Size), outboard, off, data); err != nil {
		return e, fmt.Errorf("%w: %s/%d: %w", ErrBadChunk, e.Rendition, e.Seq, err)
	}
	return e, nil
}

// Outboard returns manifest.Outboard(data).
func (v *Verifier) Outboard(_ manifest.ID, data []byte) []byte { return manifest.Outboard(data) }

// Check accepts data as chunk (or init segment) id only when id is a signed
// entry and data hashes to it with the signed size. The id a peer claims
// proves nothing by itself: this is the only door into the store.
func (v *Verifier) Check(id manifest.ID, data []byte) (manifest.Entry, error) {
	e, ok := v.Entry(id)
	if !ok {
		return e, fmt.Errorf("%w: %s", ErrUnknownChunk, id)
	}
	if len(data) != int(e.Size) || manifest.Sum(data) != id {
		return e, fmt.Errorf("%w: %s/%d (%d bytes)", ErrBadChunk, e.Rendition, e.Seq, len(data))
	}
	return e, nil
}
