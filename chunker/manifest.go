package chunker

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/seedcast/seedcast/media"
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

// Limits on signed batches, checked when encoding and decoding.
const (
	MaxNameLen      = 64   // stream and rendition names, bytes
	MaxBatchEntries = 1024 // entries per batch
)

// Errors of manifest handling.
var (
	ErrBadSignature = errors.New("chunker: bad manifest signature")
	ErrBadManifest  = errors.New("chunker: malformed manifest")
	ErrTooLarge     = errors.New("chunker: manifest too large")
)

// batchMagic starts every signed batch encoding (domain separation).
const batchMagic = "seedcast-manifest-v1\n"

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
	buf := make([]byte, 0, len(batchMagic)+1+len(b.Stream)+10+len(b.Entries)*80)
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

// checkName accepts the names media.ValidName does: they appear in URLs and
// playlists unescaped.
func checkName(s string) error {
	if !media.ValidName(s) {
		return fmt.Errorf("%w: name %q", ErrBadManifest, s)
	}
	return nil
}

// ValidName reports whether s can name a stream or a rendition.
func ValidName(s string) bool { return checkName(s) == nil }

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

// Manifest is the JSON document served at /live/{stream}/manifest: the signed
// window of a stream. Entries and init segments name the batch that signs them;
// a batch's signed entries are its init segments followed by its chunks, each in
// the order listed (a batch holds only one kind in practice).
type Manifest struct {
	Version         int             `json:"version"`
	Stream          string          `json:"stream"`
	PublicKey       string          `json:"publicKey"` // hex Ed25519
	ChunkDurationMs float64         `json:"chunkDurationMs"`
	Renditions      []RenditionInfo `json:"renditions"`
	InitSegments    []JSONEntry     `json:"initSegments"`
	Entries         []JSONEntry     `json:"entries"`
	Batches         []JSONBatch     `json:"batches"`
}

// RenditionInfo describes a rendition for players and playlists. It is not
// signed: the init segment, whose hash is signed, carries the same facts.
type RenditionInfo struct {
	Name       string  `json:"name"`
	Kind       string  `json:"kind"`  // "video" or "audio"
	Codec      string  `json:"codec"` // RFC 6381 codecs value, e.g. avc1.42c01e, opus
	Width      int     `json:"width,omitempty"`
	Height     int     `json:"height,omitempty"`
	FrameRate  float64 `json:"frameRate,omitempty"`
	SampleRate int     `json:"sampleRate,omitempty"`
	Channels   int     `json:"channels,omitempty"`
}

// JSONEntry is an Entry as it appears in the manifest JSON.
type JSONEntry struct {
	Rendition     string  `json:"rendition"`
	Seq           uint64  `json:"seq"`
	Hash          ID      `json:"hash"`
	MediaTimeUs   int64   `json:"mediaTimeUs"`
	DurationUs    int64   `json:"durationUs"`
	DurationMs    float64 `json:"durationMs"` // DurationUs/1000, for people; not signed
	IngestTime    int64   `json:"ingestTime"` // Unix time in microseconds
	Size          uint32  `json:"size"`
	Independent   bool    `json:"independent"`
	Discontinuity bool    `json:"discontinuity,omitempty"`
	Batch         uint64  `json:"batch"`
}

// JSONBatch carries one batch's signature.
type JSONBatch struct {
	N         uint64 `json:"n"`
	Signature string `json:"signature"` // hex
}

// ToJSON converts a signed entry for the manifest.
func ToJSON(e Entry, batch uint64) JSONEntry {
	return JSONEntry{
		Rendition: e.Rendition, Seq: e.Seq, Hash: e.Hash,
		MediaTimeUs: e.MediaTime.Microseconds(), DurationUs: e.Duration.Microseconds(),
		DurationMs: float64(e.Duration.Microseconds()) / 1000, IngestTime: e.IngestTime.UnixMicro(),
		Size: e.Size, Independent: e.Independent, Discontinuity: e.Discontinuity, Batch: batch,
	}
}

func (j JSONEntry) entry(kind EntryKind) Entry {
	return Entry{
		Kind: kind, Rendition: j.Rendition, Seq: j.Seq,
		MediaTime: time.Duration(j.MediaTimeUs) * time.Microsecond,
		Duration:  time.Duration(j.DurationUs) * time.Microsecond,
		// UnixMicro's own range covers every int64 microsecond value.
		IngestTime: time.UnixMicro(j.IngestTime), Size: j.Size,
		Independent: j.Independent, Discontinuity: j.Discontinuity, Hash: j.Hash,
	}
}

// MaxManifestBytes bounds a manifest document accepted by DecodeManifest.
const MaxManifestBytes = 8 << 20

// DecodeManifest parses a manifest document of at most MaxManifestBytes. It
// checks the document's shape, not its signatures: call Verify for those.
func DecodeManifest(r io.Reader) (*Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxManifestBytes)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the document", ErrBadManifest)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrBadManifest, m.Version)
	}
	if err := checkName(m.Stream); err != nil {
		return nil, fmt.Errorf("stream: %w", err)
	}
	if _, err := m.Key(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Key returns the manifest's public key. Only trust it when the manifest came
// from the server.
func (m *Manifest) Key() (ed25519.PublicKey, error) {
	k, err := hex.DecodeString(m.PublicKey)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: public key %q", ErrBadManifest, m.PublicKey)
	}
	return ed25519.PublicKey(k), nil
}

// Batches regroups the manifest's entries into the batches that signed them,
// in the order of m.Batches. An entry naming an unlisted batch is an error.
func (m *Manifest) SignedBatches() ([]Batch, error) {
	index := make(map[uint64]int, len(m.Batches))
	out := make([]Batch, len(m.Batches))
	for i, jb := range m.Batches {
		if _, dup := index[jb.N]; dup {
			return nil, fmt.Errorf("%w: batch %d listed twice", ErrBadManifest, jb.N)
		}
		sig, err := hex.DecodeString(jb.Signature)
		if err != nil || len(sig) != ed25519.SignatureSize {
			return nil, fmt.Errorf("%w: signature of batch %d", ErrBadManifest, jb.N)
		}
		index[jb.N] = i
		out[i] = Batch{Stream: m.Stream, N: jb.N, Signature: sig}
	}
	add := func(list []JSONEntry, kind EntryKind) error {
		for _, je := range list {
			// Out-of-range times would overflow into other values that verify
			// (the JSON would no longer say what was signed).
			if je.MediaTimeUs < 0 || je.MediaTimeUs > math.MaxInt64/1000 || je.DurationUs < 0 || je.DurationUs > math.MaxUint32 {
				return fmt.Errorf("%w: entry %s/%d: time out of range", ErrBadManifest, je.Rendition, je.Seq)
			}
			i, ok := index[je.Batch]
			if !ok {
				return fmt.Errorf("%w: entry %s/%d names unknown batch %d", ErrBadManifest, je.Rendition, je.Seq, je.Batch)
			}
			if len(out[i].Entries) >= MaxBatchEntries {
				return fmt.Errorf("%w: batch %d over %d entries", ErrBadManifest, je.Batch, MaxBatchEntries)
			}
			out[i].Entries = append(out[i].Entries, je.entry(kind))
		}
		return nil
	}
	if err := add(m.InitSegments, KindInit); err != nil {
		return nil, err
	}
	if err := add(m.Entries, KindChunk); err != nil {
		return nil, err
	}
	return out, nil
}

// Verify checks every batch of the manifest against pub (the key the caller
// trusts, not necessarily m.PublicKey) and returns the verified entries, init
// segments first.
func (m *Manifest) Verify(pub ed25519.PublicKey) ([]Entry, error) {
	batches, err := m.SignedBatches()
	if err != nil {
		return nil, err
	}
	var all []Entry
	for i := range batches {
		if err := batches[i].Verify(pub); err != nil {
			return nil, err
		}
		all = append(all, batches[i].Entries...)
	}
	return all, nil
}
