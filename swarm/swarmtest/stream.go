package swarmtest

import (
	"crypto/ed25519"
	"encoding/hex"
	"math/rand/v2"
	"time"

	"github.com/seedcast/seedcast/manifest"
)

// Rendition is one rendition of the modelled stream.
type Rendition struct {
	Name string
	Kind string // "video" or "audio"
	Kbps int
}

// stream is the modelled live stream at the origin: every chunk duration
// one chunk per rendition, in one signed batch, as the chunker batches and
// ingest signs (one slot of every rendition per batch; init segments in a
// batch of their own).
type stream struct {
	name    string
	key     ed25519.PrivateKey
	d       time.Duration
	rends   []Rendition
	window  int // chunk slots the manifest lists
	rng     *rand.Rand
	start   time.Time
	real    bool // chunks have real bytes (else zeros of the right size)
	inits   []manifest.Entry
	batches []*batch // the window, oldest first, batch 0 (inits) apart
	init    *batch
	data    map[manifest.ID][]byte
	entries map[manifest.ID]manifest.Entry
	batchOf map[manifest.ID]uint64
	byN     map[uint64][]manifest.Entry
	signed  map[uint64]manifest.SignedBatch
	next    uint64 // next slot
}

type batch struct {
	b      manifest.Batch
	signed manifest.SignedBatch
}

func newStream(name string, key ed25519.PrivateKey, d time.Duration, rends []Rendition, window int, rng *rand.Rand, start time.Time, real bool) *stream {
	s := &stream{
		name: name, key: key, d: d, rends: rends, window: window, rng: rng, start: start, real: real,
		data: map[manifest.ID][]byte{}, entries: map[manifest.ID]manifest.Entry{},
		batchOf: map[manifest.ID]uint64{}, byN: map[uint64][]manifest.Entry{}, signed: map[uint64]manifest.SignedBatch{},
	}
	b := manifest.Batch{Stream: name, N: 0}
	for _, r := range rends {
		data := s.bytes(600)
		e := manifest.Entry{Kind: manifest.KindInit, Rendition: r.Name, IngestTime: start, Size: uint32(len(data)), Independent: true, Hash: manifest.Sum(data)}
		b.Entries = append(b.Entries, e)
		s.keep(e, data)
	}
	s.init = s.sign(b)
	return s
}

// bytes returns n bytes of chunk: random when the network checks hashes,
// else zeros (a shared buffer: sizes-only nodes keep no bytes).
func (s *stream) bytes(n int) []byte {
	if !s.real {
		return zeros(n)
	}
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := s.rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

var zeroBuf []byte

func zeros(n int) []byte {
	if n > len(zeroBuf) {
		zeroBuf = make([]byte, max(n, 1<<20))
	}
	return zeroBuf[:n:n]
}

func (s *stream) keep(e manifest.Entry, data []byte) {
	s.entries[e.Hash] = e
	if s.real {
		s.data[e.Hash] = data
	}
}

func (s *stream) sign(b manifest.Batch) *batch {
	if err := b.Sign(s.key); err != nil {
		panic(err) // only a bug: entries we made
	}
	sb, err := manifest.NewSignedBatch(&b)
	if err != nil {
		panic(err)
	}
	s.signed[b.N] = sb
	s.byN[b.N] = b.Entries
	for _, e := range b.Entries {
		s.batchOf[e.Hash] = b.N
	}
	return &batch{b: b, signed: sb}
}

// nextAt is when the next slot is finished.
func (s *stream) nextAt() time.Time { return s.start.Add(time.Duration(s.next+1) * s.d) }

// produce finishes the next slot at now: one chunk per rendition, signed.
func (s *stream) produce(now time.Time) {
	seq := s.next
	s.next++
	b := manifest.Batch{Stream: s.name, N: seq + 1}
	for _, r := range s.rends {
		mean := float64(r.Kbps) * 1000 / 8 * s.d.Seconds()
		size := max(int(mean*(0.85+0.3*s.rng.Float64())), 64)
		var data []byte
		if s.real {
			data = s.bytes(size)
		} else {
			// Sizes-only chunks still need distinct ids.
			var id manifest.ID
			for i := 0; i < 32; i += 8 {
				v := s.rng.Uint64()
				for j := range 8 {
					id[i+j] = byte(v >> (8 * j))
				}
			}
			e := s.entry(r, seq, now, size, id)
			b.Entries = append(b.Entries, e)
			s.keep(e, nil)
			continue
		}
		e := s.entry(r, seq, now, size, manifest.Sum(data))
		b.Entries = append(b.Entries, e)
		s.keep(e, data)
	}
	s.batches = append(s.batches, s.sign(b))
	if len(s.batches) > s.window {
		old := s.batches[0]
		s.batches = s.batches[1:]
		for _, e := range old.b.Entries {
			delete(s.data, e.Hash)
			delete(s.entries, e.Hash)
			delete(s.batchOf, e.Hash)
		}
		delete(s.signed, old.b.N)
		delete(s.byN, old.b.N)
	}
}

func (s *stream) entry(r Rendition, seq uint64, now time.Time, size int, id manifest.ID) manifest.Entry {
	return manifest.Entry{
		Kind: manifest.KindChunk, Rendition: r.Name, Seq: seq,
		MediaTime: time.Duration(seq) * s.d, Duration: s.d, IngestTime: now,
		Size: uint32(size), Independent: r.Kind == "audio" || seq%4 == 0, Hash: id,
	}
}

// chunk returns a chunk's bytes, as the origin serves them.
func (s *stream) chunk(id manifest.ID) ([]byte, bool) {
	e, ok := s.entries[id]
	if !ok {
		return nil, false
	}
	if s.real {
		return s.data[id], true
	}
	return zeros(int(e.Size)), true
}

// manifest renders the window as the origin's /live/{s}/manifest does;
// after ≥ 0 lists only the batches above it (and the init segments).
func (s *stream) manifest(after int64) *manifest.Manifest {
	m := &manifest.Manifest{
		Version: 1, Stream: s.name, PublicKey: hex.EncodeToString(s.key.Public().(ed25519.PublicKey)),
		ChunkDurationMs: float64(s.d.Microseconds()) / 1000,
	}
	for _, r := range s.rends {
		m.Renditions = append(m.Renditions, manifest.RenditionInfo{Name: r.Name, Kind: r.Kind, Codec: "sim", Height: 360 * btoi(r.Kind == "video")})
	}
	for _, e := range s.init.b.Entries {
		m.InitSegments = append(m.InitSegments, manifest.ToJSON(e, 0))
	}
	m.Batches = append(m.Batches, manifest.JSONBatch{N: 0, Signature: hex.EncodeToString(s.init.b.Signature)})
	for _, b := range s.batches {
		if after >= 0 && int64(b.b.N) <= after {
			continue
		}
		for _, e := range b.b.Entries {
			m.Entries = append(m.Entries, manifest.ToJSON(e, b.b.N))
		}
		m.Batches = append(m.Batches, manifest.JSONBatch{N: b.b.N, Signature: hex.EncodeToString(b.b.Signature)})
	}
	return m
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
