package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"
)

// fuzzKey is the fixed key the fuzz targets verify with (the test vector key,
// so the seeds include documents whose signatures verify).
var fuzzKey = ed25519.NewKeyFromSeed(vectorSeed())

func FuzzDecodeManifest(f *testing.F) {
	pub := fuzzKey.Public().(ed25519.PublicKey)
	m, _ := testManifest(f, fuzzKey)
	doc := marshalManifest(f, m)
	f.Add(doc)

	vb, _ := signedVectorBatch(f)
	vm := Manifest{Version: 1, Stream: vb.Stream, PublicKey: hex.EncodeToString(pub), ChunkDurationMs: 250,
		InitSegments: []JSONEntry{ToJSON(vb.Entries[0], vb.N)},
		Entries:      []JSONEntry{ToJSON(vb.Entries[1], vb.N), ToJSON(vb.Entries[2], vb.N)},
		Batches:      []JSONBatch{{N: vb.N, Signature: hex.EncodeToString(vb.Signature)}},
	}
	f.Add(marshalManifest(f, &vm))

	for _, s := range []string{
		"",
		"{}",
		"null",
		"[]",
		`{"version":1}`,
		`{"version":1,"stream":"demo","publicKey":"` + m.PublicKey + `"}`,
		`{"version":1,"stream":"demo","publicKey":"` + m.PublicKey + `","entries":[{"rendition":"v0","batch":3}]}`,
		`{"version":1,"stream":"demo","publicKey":"` + m.PublicKey + `","batches":[{"n":1,"signature":"00"},{"n":1,"signature":"00"}]}`,
		`{"version":2,"stream":"demo","publicKey":"00"}`,
		`{"version":1,"stream":"a/b","publicKey":"` + m.PublicKey + `"}`,
		`{"version":1,"stream":"demo","publicKey":"` + m.PublicKey + `","entries":[{"rendition":"v0","mediaTimeUs":-1,"durationUs":9223372036854775807,"batch":0}],"batches":[{"n":0,"signature":"` + m.Batches[0].Signature + `"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Add(append(bytes.Clone(doc), "garbage"...))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeManifest(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadManifest) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("DecodeManifest error %v wraps neither ErrBadManifest nor ErrTooLarge", err)
			}
			return
		}
		if m.Version != 1 || !ValidName(m.Stream) {
			t.Fatalf("accepted version %d stream %q", m.Version, m.Stream)
		}
		if k, err := m.Key(); err != nil || len(k) != ed25519.PublicKeySize {
			t.Fatalf("accepted key %q: %v", m.PublicKey, err)
		}
		batches, err := m.SignedBatches()
		if err != nil {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("SignedBatches error %v does not wrap ErrBadManifest", err)
			}
		} else {
			n := 0
			for _, b := range batches {
				if b.Stream != m.Stream || len(b.Signature) != ed25519.SignatureSize || len(b.Entries) > MaxBatchEntries {
					t.Fatalf("batch %d: stream %q, %d-byte signature, %d entries", b.N, b.Stream, len(b.Signature), len(b.Entries))
				}
				n += len(b.Entries)
			}
			if n != len(m.InitSegments)+len(m.Entries) {
				t.Fatalf("batches hold %d entries, manifest lists %d", n, len(m.InitSegments)+len(m.Entries))
			}
		}
		entries, err := m.Verify(pub)
		if err != nil {
			if !errors.Is(err, ErrBadManifest) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify error %v wraps neither ErrBadManifest nor ErrBadSignature", err)
			}
			return
		}
		if len(entries) != len(m.InitSegments)+len(m.Entries) {
			t.Fatalf("Verify returned %d entries of %d", len(entries), len(m.InitSegments)+len(m.Entries))
		}
		// Every signed JSON field must say exactly what was signed: a verified
		// entry converted back to JSON gives the listed entry (durationMs
		// aside, which is not signed).
		i := 0
		for _, b := range batches {
			var listed []JSONEntry
			for _, je := range m.InitSegments {
				if je.Batch == b.N {
					listed = append(listed, je)
				}
			}
			for _, je := range m.Entries {
				if je.Batch == b.N {
					listed = append(listed, je)
				}
			}
			for _, je := range listed {
				got := ToJSON(entries[i], je.Batch)
				got.DurationMs = je.DurationMs
				if got != je {
					t.Fatalf("verified entry %d reads back as %+v, manifest lists %+v", i, got, je)
				}
				i++
			}
		}
		// A verified document survives a re-encoding.
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := DecodeManifest(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded manifest: %v", err)
		}
		entries2, err := m2.Verify(pub)
		if err != nil || len(entries2) != len(entries) {
			t.Fatalf("re-encoded manifest: %d entries, %v", len(entries2), err)
		}
		for i := range entries {
			if !sameEntry(entries[i], entries2[i]) {
				t.Fatalf("re-encoded entry %d: %+v, was %+v", i, entries2[i], entries[i])
			}
		}
	})
}

func FuzzBatchEncodeVerify(f *testing.F) {
	v := vectorBatch()
	for _, e := range v.Entries {
		f.Add(v.Stream, v.N, uint8(e.Kind), e.Rendition, e.Seq, int64(e.MediaTime), int64(e.Duration),
			e.IngestTime.UnixMicro(), e.Size, e.Independent, e.Discontinuity, e.Hash[:], uint8(3))
	}
	f.Add("s", uint64(math.MaxUint64), uint8(0), "r", uint64(math.MaxUint64), int64(math.MaxInt64), int64(math.MaxUint32)*1000+999,
		int64(math.MaxInt64), uint32(math.MaxUint32), true, true, bytes.Repeat([]byte{0xff}, 32), uint8(0))
	f.Add("", uint64(0), uint8(2), "", uint64(0), int64(-1), int64(-1), int64(math.MinInt64), uint32(0), false, false, []byte(nil), uint8(255))
	f.Add("bad name", uint64(1), uint8(1), "v/0", uint64(1), int64(0), int64(math.MaxUint32+1)*1000, int64(0), uint32(1), false, true, []byte("short"), uint8(1))

	pub := fuzzKey.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, stream string, n uint64, kind uint8, rendition string, seq uint64,
		mediaNs, durNs, ingestUs int64, size uint32, indep, disc bool, hash []byte, count uint8) {
		e := Entry{
			Kind: EntryKind(kind), Rendition: rendition, Seq: seq,
			MediaTime: time.Duration(mediaNs), Duration: time.Duration(durNs),
			IngestTime: time.UnixMicro(ingestUs), Size: size, Independent: indep, Discontinuity: disc,
		}
		copy(e.Hash[:], hash)
		b := Batch{Stream: stream, N: n}
		for i := range int(count%4) + 1 {
			ei := e
			ei.Seq += uint64(i)
			ei.Hash[31] ^= byte(i)
			b.Entries = append(b.Entries, ei)
		}
		valid := ValidName(stream) && ValidName(rendition) && kind <= 1 && mediaNs >= 0 && durNs >= 0 && durNs/1000 <= math.MaxUint32

		enc, err := b.Encode()
		if !valid {
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("invalid batch: Encode = %v, want ErrBadManifest", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid batch: %v", err)
		}
		want := len(batchMagic) + 1 + len(stream) + 8 + 2 + len(b.Entries)*(67+len(rendition))
		if len(enc) != want || !bytes.HasPrefix(enc, []byte(batchMagic)) {
			t.Fatalf("encoding of %d bytes, want %d", len(enc), want)
		}
		if again, _ := b.Encode(); !bytes.Equal(again, enc) {
			t.Fatal("Encode is not deterministic")
		}
		if err := b.Sign(fuzzKey); err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(pub); err != nil || !ed25519.Verify(pub, enc, b.Signature) {
			t.Fatalf("signed batch does not verify: %v", err)
		}

		// One changed field, in entry k, must break the signature.
		k := int(seq % uint64(len(b.Entries)))
		otherChar := func(s string) string {
			c := byte('a')
			if s[len(s)-1] == 'a' {
				c = 'b'
			}
			return s[:len(s)-1] + string(c)
		}
		muts := map[string]func(*Batch){
			"stream":        func(b *Batch) { b.Stream = otherChar(b.Stream) },
			"N":             func(b *Batch) { b.N++ },
			"kind":          func(b *Batch) { b.Entries[k].Kind ^= 1 },
			"rendition":     func(b *Batch) { b.Entries[k].Rendition = otherChar(b.Entries[k].Rendition) },
			"seq":           func(b *Batch) { b.Entries[k].Seq++ },
			"size":          func(b *Batch) { b.Entries[k].Size ^= 1 },
			"independent":   func(b *Batch) { b.Entries[k].Independent = !b.Entries[k].Independent },
			"discontinuity": func(b *Batch) { b.Entries[k].Discontinuity = !b.Entries[k].Discontinuity },
			"hash":          func(b *Batch) { b.Entries[k].Hash[size%32] ^= 0x80 },
			"media time": func(b *Batch) {
				if b.Entries[k].MediaTime > math.MaxInt64-time.Microsecond {
					b.Entries[k].MediaTime -= time.Microsecond
				} else {
					b.Entries[k].MediaTime += time.Microsecond
				}
			},
			"duration": func(b *Batch) {
				if b.Entries[k].Duration.Microseconds() == math.MaxUint32 {
					b.Entries[k].Duration -= time.Microsecond
				} else {
					b.Entries[k].Duration += time.Microsecond
				}
			},
			"ingest time": func(b *Batch) { b.Entries[k].IngestTime = b.Entries[k].IngestTime.Add(time.Microsecond) },
		}
		for name, mut := range muts {
			c := cloneBatch(b)
			mut(&c)
			cenc, err := c.Encode()
			if err != nil {
				t.Fatalf("%s changed: Encode: %v", name, err)
			}
			if bytes.Equal(cenc, enc) {
				t.Fatalf("%s changed: same encoding", name)
			}
			if err := c.Verify(pub); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("%s changed: Verify = %v, want ErrBadSignature", name, err)
			}
		}

		// Through the manifest JSON and back (one kind per batch, as the
		// chunker cuts them, so the regrouped order is the signed order).
		m := Manifest{Version: 1, Stream: stream, PublicKey: hex.EncodeToString(pub),
			Batches: []JSONBatch{{N: b.N, Signature: hex.EncodeToString(b.Signature)}}}
		for _, e := range b.Entries {
			if e.Kind == KindInit {
				m.InitSegments = append(m.InitSegments, ToJSON(e, b.N))
			} else {
				m.Entries = append(m.Entries, ToJSON(e, b.N))
			}
		}
		doc, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		dm, err := DecodeManifest(bytes.NewReader(doc))
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		got, err := dm.Verify(pub)
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		if len(got) != len(b.Entries) {
			t.Fatalf("manifest: %d entries of %d", len(got), len(b.Entries))
		}
		for i := range got {
			if !sameEntry(got[i], b.Entries[i]) {
				t.Fatalf("manifest entry %d: %+v, signed %+v", i, got[i], b.Entries[i])
			}
		}
	})
}

// FuzzDecodeBatch: DecodeBatch never panics, and whatever it accepts Encode
// gives back as the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	v := docVectors(f)
	f.Add(docHex(f, v, "encoded"))
	f.Add([]byte(batchMagic))
	f.Add([]byte(batchMagic + "\x01."))
	f.Add(append([]byte(batchMagic+"\x04demo"), make([]byte, 10)...))
	f.Fuzz(func(t *testing.T, enc []byte) {
		checkBatchRoundTrip(t, enc)
	})
}
