package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"
)

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

// SignedBatches regroups the manifest's entries into the batches that signed them,
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
