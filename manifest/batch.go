package manifest

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Chunk duration bounds and default (docs/protocol.md, section 1): the
// chunker's target, and what a node assumes before a manifest says otherwise.
// The default is 125 ms: a relay sends each chunk of its substream to its
// children one after the other, so a hop costs up to 0.8·K chunk durations;
// in the simulator 125 ms halves delivery latency against 250 ms and keeps a
// 1,000-viewer swarm on peers (docs/benchmarks.md, "The chunk duration").
const (
	MinChunkDuration     = 100 * time.Millisecond
	MaxChunkDuration     = 500 * time.Millisecond
	DefaultChunkDuration = 125 * time.Millisecond
)

// EntryKind says what an entry names.
type EntryKind uint8

// Entry kinds.
const (
	KindChunk EntryKind = 0 // a CMAF chunk (moof+mdat)
	KindInit  EntryKind = 1 // an init segment (ftyp+moov)
)

// Entry describes one chunk or init segment. Every field is covered by the
// batch signature.
type Entry struct {
	Kind      EntryKind
	Rendition string
	// Seq is the chunk's slot: chunk Seq of every rendition covers the same
	// media time. For an init segment, the first slot it applies to.
	Seq uint64
	// MediaTime is the decode time of the chunk's first sample, from stream start.
	MediaTime time.Duration
	Duration  time.Duration
	// IngestTime is the wall-clock time the chunker finished the chunk.
	IngestTime time.Time
	Size       uint32
	// Independent is true when the chunk starts with a keyframe (always for
	// audio and init segments).
	Independent bool
	// Discontinuity marks the first chunk after media the source lost.
	Discontinuity bool
	Hash          ID
}

// Batch is a run of entries signed together with the stream's key.
type Batch struct {
	Stream    string
	N         uint64 // batch number, counting from 0 for the stream
	Entries   []Entry
	Signature []byte // Ed25519 over Encode()
}

// MaxBatchEntries bounds the entries of one batch, checked when encoding and
// decoding. Names are bounded by MaxNameLen.
const MaxBatchEntries = 1024

// Errors of manifest handling.
var (
	ErrBadSignature = errors.New("manifest: bad signature")
	ErrBadManifest  = errors.New("manifest: malformed")
	ErrTooLarge     = errors.New("manifest: document too large")
)

// batchMagic starts every signed batch encoding (domain separation).
const batchMagic = "seedcast-manifest-v1\n"

// Sizes in the batch encoding (docs/protocol.md, section 2.2).
const (
	batchHeaderFixed = 8 + 2                             // N, E
	entryFixed       = 8 + 8 + 4 + 8 + 4 + 1 + len(ID{}) // seq … hash, after kind and rendition
	minEntry         = 1 + 1 + 1 + entryFixed            // kind, a one-byte rendition name
)

const (
	flagIndependent   = 1 << 0
	flagDiscontinuity = 1 << 1
)

// Encode returns the exact bytes the batch signature covers, as specified in
// docs/protocol.md ("Signed manifest batches").
func (b *Batch) Encode() ([]byte, error) {
	if err := checkName(b.Stream); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if len(b.Entries) == 0 || len(b.Entries) > MaxBatchEntries {
		return nil, fmt.Errorf("%w: batch of %d entries", ErrBadManifest, len(b.Entries))
	}
	buf := make([]byte, 0, len(batchMagic)+1+len(b.Stream)+batchHeaderFixed+len(b.Entries)*80)
	buf = append(buf, batchMagic...)
	buf = appendName(buf, b.Stream)
	buf = binary.BigEndian.AppendUint64(buf, b.N)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(b.Entries)))
	for i := range b.Entries {
		e := &b.Entries[i]
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		buf = append(buf, byte(e.Kind))
		buf = appendName(buf, e.Rendition)
		buf = binary.BigEndian.AppendUint64(buf, e.Seq)
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.MediaTime.Microseconds()))
		buf = binary.BigEndian.AppendUint32(buf, uint32(e.Duration.Microseconds()))
		buf = binary.BigEndian.AppendUint64(buf, uint64(e.IngestTime.UnixMicro()))
		buf = binary.BigEndian.AppendUint32(buf, e.Size)
		var flags byte
		if e.Independent {
			flags |= flagIndependent
		}
		if e.Discontinuity {
			flags |= flagDiscontinuity
		}
		buf = append(buf, flags)
		buf = append(buf, e.Hash[:]...)
	}
	return buf, nil
}

// Sign fills in b.Signature.
func (b *Batch) Sign(key ed25519.PrivateKey) error {
	msg, err := b.Encode()
	if err != nil {
		return err
	}
	b.Signature = ed25519.Sign(key, msg)
	return nil
}

// Verify checks b.Signature against the stream's public key. The key must come
// from the server, never from a peer.
func (b *Batch) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: public key of %d bytes", ErrBadSignature, len(pub))
	}
	msg, err := b.Encode()
	if err != nil {
		return err
	}
	if len(b.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, b.Signature) {
		return fmt.Errorf("%w: batch %d of stream %q", ErrBadSignature, b.N, b.Stream)
	}
	return nil
}

func appendName(buf []byte, s string) []byte {
	buf = append(buf, byte(len(s)))
	return append(buf, s...)
}

// checkName accepts what ValidName does, as an error wrapping ErrBadManifest.
func checkName(s string) error {
	if !ValidName(s) {
		return fmt.Errorf("%w: name %q", ErrBadManifest, s)
	}
	return nil
}

func (e *Entry) check() error {
	if e.Kind != KindChunk && e.Kind != KindInit {
		return fmt.Errorf("%w: entry kind %d", ErrBadManifest, e.Kind)
	}
	if err := checkName(e.Rendition); err != nil {
		return err
	}
	if e.MediaTime < 0 || e.Duration < 0 || e.Duration.Microseconds() > math.MaxUint32 {
		return fmt.Errorf("%w: media time %v duration %v", ErrBadManifest, e.MediaTime, e.Duration)
	}
	return nil
}

// DecodeBatch parses the signed encoding of a batch (docs/protocol.md,
// section 2.2; the output of Encode), checking every limit, so that Encode
// of the result gives back exactly encoded. The batch has no signature and
// is not verified. Errors wrap ErrBadManifest.
func DecodeBatch(encoded []byte) (Batch, error) {
	var b Batch
	rest, ok := cutPrefix(encoded, batchMagic)
	if !ok {
		return b, fmt.Errorf("%w: batch: bad magic", ErrBadManifest)
	}
	var err error
	if b.Stream, rest, err = cutName(rest, "stream"); err != nil {
		return b, err
	}
	if len(rest) < batchHeaderFixed {
		return b, fmt.Errorf("%w: batch: truncated in the header", ErrBadManifest)
	}
	b.N = binary.BigEndian.Uint64(rest)
	n := int(binary.BigEndian.Uint16(rest[8:]))
	rest = rest[batchHeaderFixed:]
	if n == 0 || n > MaxBatchEntries {
		return b, fmt.Errorf("%w: batch: %d entries, not in 1…%d", ErrBadManifest, n, MaxBatchEntries)
	}
	// Refuse a count the input cannot hold before allocating for it.
	if len(rest) < n*minEntry {
		return b, fmt.Errorf("%w: batch: %d entries in %d bytes", ErrBadManifest, n, len(rest))
	}
	b.Entries = make([]Entry, n)
	for i := range b.Entries {
		if rest, err = decodeEntry(&b.Entries[i], rest); err != nil {
			return b, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	if len(rest) != 0 {
		return b, fmt.Errorf("%w: batch: %d bytes after the last entry", ErrBadManifest, len(rest))
	}
	return b, nil
}

// decodeEntry decodes the entry at the start of p into e and returns what
// follows it.
func decodeEntry(e *Entry, p []byte) ([]byte, error) {
	if len(p) == 0 {
		return nil, fmt.Errorf("%w: batch: truncated entry", ErrBadManifest)
	}
	if kind := EntryKind(p[0]); kind != KindChunk && kind != KindInit {
		return nil, fmt.Errorf("%w: batch: kind %d", ErrBadManifest, kind)
	}
	e.Kind = EntryKind(p[0])
	var err error
	if e.Rendition, p, err = cutName(p[1:], "rendition"); err != nil {
		return nil, err
	}
	if len(p) < entryFixed {
		return nil, fmt.Errorf("%w: batch: truncated entry", ErrBadManifest)
	}
	e.Seq = binary.BigEndian.Uint64(p)
	media := binary.BigEndian.Uint64(p[8:])
	if media > math.MaxInt64/1000 {
		return nil, fmt.Errorf("%w: batch: media time %d µs out of range", ErrBadManifest, media)
	}
	e.MediaTime = time.Duration(media) * time.Microsecond
	e.Duration = time.Duration(binary.BigEndian.Uint32(p[16:])) * time.Microsecond
	e.IngestTime = time.UnixMicro(int64(binary.BigEndian.Uint64(p[20:]))).UTC()
	e.Size = binary.BigEndian.Uint32(p[28:])
	flags := p[32]
	if flags&^(flagIndependent|flagDiscontinuity) != 0 {
		return nil, fmt.Errorf("%w: batch: flags 0x%02x", ErrBadManifest, flags)
	}
	e.Independent = flags&flagIndependent != 0
	e.Discontinuity = flags&flagDiscontinuity != 0
	copy(e.Hash[:], p[33:entryFixed])
	return p[entryFixed:], nil
}

func cutPrefix(p []byte, prefix string) ([]byte, bool) {
	if len(p) < len(prefix) || string(p[:len(prefix)]) != prefix {
		return p, false
	}
	return p[len(prefix):], true
}

// cutName reads a u8-length-prefixed name and checks it.
func cutName(p []byte, what string) (string, []byte, error) {
	if len(p) == 0 || len(p) < 1+int(p[0]) {
		return "", nil, fmt.Errorf("%w: batch: truncated %s name", ErrBadManifest, what)
	}
	s := string(p[1 : 1+int(p[0])])
	if err := checkName(s); err != nil {
		return "", nil, fmt.Errorf("batch: %s: %w", what, err)
	}
	return s, p[1+len(s):], nil
}

// SignedBatch is one signed batch as peers relay it: the exact bytes the
// signature covers and the signature. Nothing in it is trusted until Verify
// of its Batch succeeds with the key from the server.
type SignedBatch struct {
	Encoded   []byte // (*Batch).Encode() of the batch
	Signature []byte // ed25519.SignatureSize bytes
}

// NewSignedBatch encodes a signed batch for relaying.
func NewSignedBatch(b *Batch) (SignedBatch, error) {
	enc, err := b.Encode()
	if err != nil {
		return SignedBatch{}, err
	}
	if len(b.Signature) != ed25519.SignatureSize {
		return SignedBatch{}, fmt.Errorf("%w: signature of %d bytes", ErrBadSignature, len(b.Signature))
	}
	return SignedBatch{Encoded: enc, Signature: b.Signature}, nil
}

// Batch decodes the batch (DecodeBatch) and attaches a copy of its
// signature. The result is not verified: call its Verify with the key from
// the server.
func (s SignedBatch) Batch() (Batch, error) {
	b, err := DecodeBatch(s.Encoded)
	if err != nil {
		return b, err
	}
	b.Signature = append([]byte(nil), s.Signature...)
	return b, nil
}
