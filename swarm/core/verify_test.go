package core

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
)

var (
	streamKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	attackerKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
)

// demoOutputs chunks seconds of the demo clip, signed with key.
func demoOutputs(t *testing.T, key ed25519.PrivateKey, seconds time.Duration) []chunker.Output {
	t.Helper()
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	var outs []chunker.Output
	c, _ := chunker.New(chunker.Params{Stream: "demo", Publish: func(o chunker.Output) {
		if err := o.Batch.Sign(key); err != nil { // as ingest signs
			t.Fatal(err)
		}
		outs = append(outs, o)
	}, Now: func() time.Time { return time.Unix(1_800_000_000, 0) }})
	_ = c.AddRendition("v0", *clip.Video)
	_ = c.AddRendition("a0", *clip.Audio)
	clip.Each(1, func(k media.Kind, au media.AccessUnit) bool {
		if au.DTS >= seconds {
			return false
		}
		name := "a0"
		if k == media.KindVideo {
			name = "v0"
		}
		_ = c.Push(name, au)
		return true
	})
	c.Flush()
	return outs
}

func newVerifier(t *testing.T) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierParams{Stream: "demo", PublicKey: streamKey.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifierAcceptsOnlySignedChunks(t *testing.T) {
	v := newVerifier(t)
	outs := demoOutputs(t, streamKey, 2*time.Second)
	for _, o := range outs {
		if err := v.AddBatch(&o.Batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range outs {
		for i, e := range o.Batch.Entries {
			data := o.Data[i]
			if got, err := v.Check(e.Hash, data); err != nil || got.Seq != e.Seq {
				t.Fatalf("genuine %s/%d refused: %v", e.Rendition, e.Seq, err)
			}
			bad := bytes.Clone(data)
			bad[len(bad)/2] ^= 1
			if _, err := v.Check(e.Hash, bad); !errors.Is(err, ErrBadChunk) {
				t.Errorf("tampered %s/%d: %v", e.Rendition, e.Seq, err)
			}
			if _, err := v.Check(e.Hash, data[:len(data)-1]); !errors.Is(err, ErrBadChunk) {
				t.Errorf("truncated %s/%d: %v", e.Rendition, e.Seq, err)
			}
			// A peer's claim that tampered bytes are "chunk Sum(bad)" proves nothing.
			if _, err := v.Check(manifest.Sum(bad), bad); !errors.Is(err, ErrUnknownChunk) {
				t.Errorf("self-named tampered chunk: %v", err)
			}
		}
	}
}

func TestVerifierRefusesForgedManifests(t *testing.T) {
	v := newVerifier(t)
	forged := demoOutputs(t, attackerKey, time.Second) // a peer signing its own chunks
	for _, o := range forged {
		if err := v.AddBatch(&o.Batch); !errors.Is(err, ErrForgedManifest) {
			t.Fatalf("batch signed by another key: %v", err)
		}
		for i, e := range o.Batch.Entries {
			if _, err := v.Check(e.Hash, o.Data[i]); !errors.Is(err, ErrUnknownChunk) {
				t.Errorf("chunk of a forged batch accepted: %v", err)
			}
		}
	}
	genuine := demoOutputs(t, streamKey, time.Second)
	b := genuine[len(genuine)-1].Batch
	b.Entries = append([]manifest.Entry(nil), b.Entries...)
	b.Entries[0].Size++ // one field changed after signing
	if err := v.AddBatch(&b); !errors.Is(err, ErrForgedManifest) {
		t.Errorf("tampered entry: %v", err)
	}
	other := genuine[0].Batch
	other.Stream = "other"
	if err := v.AddBatch(&other); !errors.Is(err, ErrForgedManifest) {
		t.Errorf("batch of another stream: %v", err)
	}
}

// A manifest document's own publicKey field is not trusted: the verifier's
// key decides.
func TestVerifierManifestKeyIgnored(t *testing.T) {
	v := newVerifier(t)
	forged := demoOutputs(t, attackerKey, time.Second)
	m := manifest.Manifest{Version: 1, Stream: "demo", PublicKey: hex.EncodeToString(attackerKey.Public().(ed25519.PublicKey))}
	for _, o := range forged {
		for _, e := range o.Batch.Entries {
			if e.Kind == manifest.KindInit {
				m.InitSegments = append(m.InitSegments, manifest.ToJSON(e, o.Batch.N))
			} else {
				m.Entries = append(m.Entries, manifest.ToJSON(e, o.Batch.N))
			}
		}
		m.Batches = append(m.Batches, manifest.JSONBatch{N: o.Batch.N, Signature: hex.EncodeToString(o.Batch.Signature)})
	}
	doc, _ := json.Marshal(m)
	parsed, err := manifest.DecodeManifest(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.AddManifest(parsed); !errors.Is(err, ErrForgedManifest) {
		t.Errorf("manifest signed by the key it names, not the stream's: %v", err)
	}
}

func TestVerifierWindow(t *testing.T) {
	v, _ := NewVerifier(VerifierParams{Stream: "demo", PublicKey: streamKey.Public().(ed25519.PublicKey), MaxEntries: 8})
	outs := demoOutputs(t, streamKey, 3*time.Second)
	for _, o := range outs {
		if err := v.AddBatch(&o.Batch); err != nil {
			t.Fatal(err)
		}
	}
	// The oldest chunk entry (init segments are kept apart: see
	// TestVerifierKeepsInits).
	var first manifest.Entry
	for _, o := range outs {
		for _, e := range o.Batch.Entries {
			if e.Kind == manifest.KindChunk && first.Hash == (manifest.ID{}) {
				first = e
			}
		}
	}
	last := outs[len(outs)-1].Batch.Entries[0]
	if _, ok := v.Entry(first.Hash); ok {
		t.Error("oldest chunk entry kept past MaxEntries")
	}
	if _, ok := v.Entry(last.Hash); !ok {
		t.Error("newest entry lost")
	}
}

func TestStoreBound(t *testing.T) {
	s := NewStore(10_000)
	var ids []manifest.ID
	for i := 0; i < 20; i++ {
		b := bytes.Repeat([]byte{byte(i)}, 1000)
		id := manifest.Sum(b)
		ids = append(ids, id)
		s.Put(id, b)
		if s.Bytes() > 10_000 {
			t.Fatalf("%d bytes stored", s.Bytes())
		}
	}
	if s.Has(ids[0]) || !s.Has(ids[19]) {
		t.Error("eviction order")
	}
	if b, ok := s.Get(ids[19]); !ok || len(b) != 1000 {
		t.Error("get")
	}
}

// TestStoreWindow: a store with a Window holds only the chunks put within it
// however long the stream runs, far below its byte bound (issue 10: the
// origin's seed kept 64 MiB of a stream whose origin kept one minute).
func TestStoreWindow(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewStoreWith(StoreParams{MaxBytes: 1 << 30, Window: time.Minute, Now: func() time.Time { return now }})
	var ids []manifest.ID
	for i := 0; i < 10*60*4; i++ { // ten minutes of 250 ms chunks
		b := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, 500)
		id := manifest.Sum(b)
		ids = append(ids, id)
		s.Put(id, b)
		if s.Len() > 60*4+1 {
			t.Fatalf("after %v: %d chunks stored, want at most a minute's (%d)", time.Duration(i)*250*time.Millisecond, s.Len(), 60*4+1)
		}
		now = now.Add(250 * time.Millisecond)
	}
	if s.Bytes() > int64(60*4+1)*1000 {
		t.Errorf("%d bytes stored", s.Bytes())
	}
	if s.Has(ids[0]) || !s.Has(ids[len(ids)-1]) {
		t.Error("expiry order")
	}
	if len(s.fifo) > 60*4+1 {
		t.Errorf("expiry queue of %d", len(s.fifo))
	}
	// Without a Window only bytes bind, as before.
	u := NewStore(1 << 30)
	for _, id := range ids[:300] {
		u.Put(id, make([]byte, 1000))
	}
	if u.Len() != 300 {
		t.Errorf("windowless store holds %d of 300", u.Len())
	}
}

// TestVerifierKeepsInits: a long stream turns the chunk entries over, but
// the init segments' entries and batches stay, so that a viewer that takes
// a rendition up an hour in can still check its init segment.
func TestVerifierKeepsInits(t *testing.T) {
	v, err := NewVerifier(VerifierParams{Stream: "demo", PublicKey: streamKey.Public().(ed25519.PublicKey), MaxEntries: 16})
	if err != nil {
		t.Fatal(err)
	}
	initData := []byte("init segment")
	ib := manifest.Batch{Stream: "demo", N: 1, Entries: []manifest.Entry{{Kind: manifest.KindInit, Rendition: "v0",
		IngestTime: rigStart, Size: uint32(len(initData)), Hash: manifest.Sum(initData)}}}
	if err := ib.Sign(streamKey); err != nil {
		t.Fatal(err)
	}
	if err := v.AddBatch(&ib); err != nil {
		t.Fatal(err)
	}
	for seq := range uint64(100) { // 200 chunk entries through a bound of 16
		b, _ := rigSlot(seq + 10)
		if err := v.AddBatch(&b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.Check(manifest.Sum(initData), initData); err != nil {
		t.Errorf("the init segment no longer checks after the chunks turned over: %v", err)
	}
	if _, ok := v.Signed(1); !ok {
		t.Error("the init segment's signed batch was evicted")
	}
	old, _ := rigSlot(10)
	if _, ok := v.Entry(old.Entries[0].Hash); ok {
		t.Error("an old chunk entry is still known past MaxEntries")
	}
}
