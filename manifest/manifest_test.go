package manifest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/seedcast/seedcast/internal/docvectors"
)

// protocolDoc is the protocol specification whose test vectors
// TestProtocolVectors checks.
const protocolDoc = "../docs/protocol.md"

// docVectors returns the test vectors of docs/protocol.md by name.
func docVectors(t testing.TB) map[string]string { return docvectors.Read(t, protocolDoc) }

// docHex decodes a hexadecimal vector, ignoring white space.
func docHex(t testing.TB, vectors map[string]string, name string) []byte {
	return docvectors.Hex(t, vectors, name)
}

// vectorSeed is the seed of the test vector key: bytes 0x00..0x1f.
func vectorSeed() []byte {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

// vectorHashInputs are the byte strings whose BLAKE3 are the vector's hashes.
var vectorHashInputs = []string{"seedcast test init v0", "seedcast test chunk 1", "seedcast test chunk 2"}

// vectorBatch is the unsigned batch of docs/protocol.md, section 2.5.
func vectorBatch() Batch {
	base := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	return Batch{Stream: "demo", N: 42, Entries: []Entry{
		{
			Kind: KindInit, Rendition: "v0", Seq: 1200, MediaTime: 0, Duration: 0,
			IngestTime: base.Add(123456 * time.Microsecond), Size: 812, Independent: true,
			Hash: Sum([]byte(vectorHashInputs[0])),
		},
		{
			Kind: KindChunk, Rendition: "v0", Seq: 1200, MediaTime: 300 * time.Second, Duration: 266667 * time.Microsecond,
			IngestTime: base.Add(400 * time.Millisecond), Size: 48213, Independent: true,
			Hash: Sum([]byte(vectorHashInputs[1])),
		},
		{
			Kind: KindChunk, Rendition: "a0", Seq: 1200, MediaTime: 300*time.Second + 20*time.Millisecond, Duration: 240 * time.Millisecond,
			IngestTime: base.Add(410 * time.Millisecond), Size: 4120, Independent: true, Discontinuity: true,
			Hash: Sum([]byte(vectorHashInputs[2])),
		},
	}}
}

func TestProtocolVectors(t *testing.T) {
	v := docVectors(t)

	seed := docHex(t, v, "seed")
	if !bytes.Equal(seed, vectorSeed()) {
		t.Fatalf("documented seed %x, want bytes 0x00..0x1f", seed)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	if doc := docHex(t, v, "public-key"); !bytes.Equal(doc, pub) {
		t.Errorf("public key:\n doc  %x\n code %x", doc, []byte(pub))
	}

	b := vectorBatch()
	docHashes := docHex(t, v, "hashes")
	if len(docHashes) != len(b.Entries)*len(ID{}) {
		t.Fatalf("%d bytes of hashes documented, want %d", len(docHashes), len(b.Entries)*len(ID{}))
	}
	for i, e := range b.Entries {
		if doc := docHashes[i*32 : (i+1)*32]; !bytes.Equal(doc, e.Hash[:]) {
			t.Errorf("hash of entry %d (BLAKE3 %q):\n doc  %x\n code %x", i, vectorHashInputs[i], doc, e.Hash[:])
		}
	}

	enc, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	docEnc := docHex(t, v, "encoded")
	if !bytes.Equal(enc, docEnc) {
		t.Errorf("encoded batch differs from the documented one at byte %d:\n doc  %x\n code %x", firstDiff(enc, docEnc), docEnc, enc)
	}

	docSig := docHex(t, v, "signature")
	if !ed25519.Verify(pub, docEnc, docSig) {
		t.Errorf("documented signature does not verify the documented encoding")
	}
	b.Signature = docSig
	if err := b.Verify(pub); err != nil {
		t.Errorf("documented signature does not verify the batch: %v", err)
	}
	if err := b.Sign(key); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Signature, docSig) {
		t.Errorf("signature:\n doc  %x\n code %x", docSig, b.Signature)
	}

	// The example manifest document verifies with the vector key and yields
	// the vector's entries.
	doc, ok := v["manifest"]
	if !ok {
		t.Fatalf("%s has no vector \"manifest\"", protocolDoc)
	}
	m, err := DecodeManifest(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("example manifest: %v", err)
	}
	if k, err := m.Key(); err != nil || !k.Equal(pub) {
		t.Errorf("example manifest key %x, %v", []byte(k), err)
	}
	got, err := m.Verify(pub)
	if err != nil {
		t.Fatalf("example manifest: %v", err)
	}
	assertEntriesEqual(t, got, vectorBatch().Entries)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSumKnownVector pins Sum to BLAKE3-256 (the published hash of the empty
// input), whatever implementation backs it.
func TestSumKnownVector(t *testing.T) {
	const empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	if got := Sum(nil).String(); got != empty {
		t.Errorf("Sum(nil) = %s, want BLAKE3 %s", got, empty)
	}
}

// sameEntry compares entries at the precision the signature covers:
// microseconds for every time.
func sameEntry(a, b Entry) bool {
	return a.Kind == b.Kind && a.Rendition == b.Rendition && a.Seq == b.Seq &&
		a.MediaTime.Microseconds() == b.MediaTime.Microseconds() &&
		a.Duration.Microseconds() == b.Duration.Microseconds() &&
		a.IngestTime.UnixMicro() == b.IngestTime.UnixMicro() &&
		a.Size == b.Size && a.Independent == b.Independent &&
		a.Discontinuity == b.Discontinuity && a.Hash == b.Hash
}

func assertEntriesEqual(t testing.TB, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if !sameEntry(got[i], want[i]) {
			t.Errorf("entry %d:\n got  %+v\n want %+v", i, got[i], want[i])
		}
	}
}

func cloneBatch(b Batch) Batch {
	b.Entries = append([]Entry(nil), b.Entries...)
	b.Signature = bytes.Clone(b.Signature)
	return b
}

// signedVectorBatch is the vector batch signed with the vector key.
func signedVectorBatch(t testing.TB) (Batch, ed25519.PrivateKey) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(vectorSeed())
	b := vectorBatch()
	if err := b.Sign(key); err != nil {
		t.Fatal(err)
	}
	return b, key
}

func TestBatchTamper(t *testing.T) {
	signed, key := signedVectorBatch(t)
	pub := key.Public().(ed25519.PublicKey)
	if err := signed.Verify(pub); err != nil {
		t.Fatal(err)
	}
	orig, _ := signed.Encode()

	type mutation struct {
		name string
		f    func(*Batch)
	}
	muts := []mutation{
		{"stream", func(b *Batch) { b.Stream = "demp" }},
		{"stream length", func(b *Batch) { b.Stream = "demo2" }},
		{"N+1", func(b *Batch) { b.N++ }},
		{"N-1", func(b *Batch) { b.N-- }},
		{"N high bit", func(b *Batch) { b.N |= 1 << 63 }},
		{"drop last entry", func(b *Batch) { b.Entries = b.Entries[:len(b.Entries)-1] }},
		{"drop first entry", func(b *Batch) { b.Entries = b.Entries[1:] }},
		{"swap entries", func(b *Batch) { b.Entries[1], b.Entries[2] = b.Entries[2], b.Entries[1] }},
		{"duplicate entry", func(b *Batch) { b.Entries = append(b.Entries, b.Entries[1]) }},
	}
	for i := range signed.Entries {
		e := func(b *Batch) *Entry { return &b.Entries[i] }
		p := fmt.Sprintf("entry %d ", i)
		muts = append(muts,
			mutation{p + "kind", func(b *Batch) { e(b).Kind ^= 1 }},
			mutation{p + "rendition", func(b *Batch) { e(b).Rendition = "x" + e(b).Rendition[1:] }},
			mutation{p + "rendition length", func(b *Batch) { e(b).Rendition += "0" }},
			mutation{p + "seq+1", func(b *Batch) { e(b).Seq++ }},
			mutation{p + "seq high bit", func(b *Batch) { e(b).Seq |= 1 << 63 }},
			mutation{p + "media time +1µs", func(b *Batch) { e(b).MediaTime += time.Microsecond }},
			mutation{p + "duration +1µs", func(b *Batch) { e(b).Duration += time.Microsecond }},
			mutation{p + "ingest time +1µs", func(b *Batch) { e(b).IngestTime = e(b).IngestTime.Add(time.Microsecond) }},
			mutation{p + "ingest time -1µs", func(b *Batch) { e(b).IngestTime = e(b).IngestTime.Add(-time.Microsecond) }},
			mutation{p + "size+1", func(b *Batch) { e(b).Size++ }},
			mutation{p + "size high bit", func(b *Batch) { e(b).Size ^= 1 << 31 }},
			mutation{p + "independent", func(b *Batch) { e(b).Independent = !e(b).Independent }},
			mutation{p + "discontinuity", func(b *Batch) { e(b).Discontinuity = !e(b).Discontinuity }},
		)
		for j := range len(ID{}) {
			muts = append(muts, mutation{fmt.Sprintf("%shash byte %d", p, j), func(b *Batch) { e(b).Hash[j] ^= 0x01 }})
		}
	}
	for _, m := range muts {
		b := cloneBatch(signed)
		m.f(&b)
		if enc, err := b.Encode(); err != nil {
			t.Errorf("%s: encode: %v", m.name, err)
		} else if bytes.Equal(enc, orig) {
			t.Errorf("%s: encoding unchanged", m.name)
		}
		if err := b.Verify(pub); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: Verify = %v, want ErrBadSignature", m.name, err)
		}
	}

	// Changes below a microsecond are not covered: times are signed in whole
	// microseconds (docs/protocol.md, 2.1).
	b := cloneBatch(signed)
	b.Entries[0].MediaTime += 999 * time.Nanosecond
	b.Entries[1].Duration += 999 * time.Nanosecond
	b.Entries[2].IngestTime = b.Entries[2].IngestTime.Add(999 * time.Nanosecond)
	if err := b.Verify(pub); err != nil {
		t.Errorf("sub-microsecond changes: %v", err)
	}

	// Any single bit or byte changed in the signed bytes or the signature.
	sig := signed.Signature
	for i := range orig {
		for _, x := range []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff} {
			msg := bytes.Clone(orig)
			msg[i] ^= x
			if ed25519.Verify(pub, msg, sig) {
				t.Fatalf("encoding byte %d ^ %#x still verifies", i, x)
			}
		}
	}
	for i := range sig {
		for _, x := range []byte{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff} {
			b := cloneBatch(signed)
			b.Signature[i] ^= x
			if err := b.Verify(pub); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("signature byte %d ^ %#x: Verify = %v", i, x, err)
			}
		}
	}
	// Truncated or extended encodings.
	for _, msg := range [][]byte{orig[:len(orig)-1], append(bytes.Clone(orig), 0), orig[1:], nil} {
		if ed25519.Verify(pub, msg, sig) {
			t.Errorf("encoding of %d bytes verifies", len(msg))
		}
	}

	// Wrong keys.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xee}, ed25519.SeedSize))
	if err := signed.Verify(other.Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong key: %v", err)
	}
	for _, k := range []ed25519.PublicKey{nil, {}, pub[:31], append(bytes.Clone(pub), 0), ed25519.PublicKey(key)} {
		if err := signed.Verify(k); !errors.Is(err, ErrBadSignature) {
			t.Errorf("public key of %d bytes: Verify = %v, want ErrBadSignature", len(k), err)
		}
	}
	for _, s := range [][]byte{nil, {}, sig[:63], append(bytes.Clone(sig), 0), make([]byte, 64)} {
		b := cloneBatch(signed)
		b.Signature = s
		if err := b.Verify(pub); !errors.Is(err, ErrBadSignature) {
			t.Errorf("signature of %d bytes: Verify = %v, want ErrBadSignature", len(s), err)
		}
	}
	// A batch re-signed by another key carries a valid signature, just not the
	// stream's.
	b = cloneBatch(signed)
	if err := b.Sign(other); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("batch signed by another key: %v", err)
	}
}

// TestBatchEncodeLimits checks the encoder refuses what docs/protocol.md, 2.2,
// says it must, and Sign and Verify with it.
func TestBatchEncodeLimits(t *testing.T) {
	key := ed25519.NewKeyFromSeed(vectorSeed())
	pub := key.Public().(ed25519.PublicKey)
	valid := vectorBatch()
	entries := func(n int) []Entry {
		out := make([]Entry, n)
		for i := range out {
			out[i] = valid.Entries[1]
			out[i].Seq = uint64(i)
		}
		return out
	}
	bad := map[string]func(*Batch){
		"no entries":           func(b *Batch) { b.Entries = nil },
		"1025 entries":         func(b *Batch) { b.Entries = entries(MaxBatchEntries + 1) },
		"empty stream":         func(b *Batch) { b.Stream = "" },
		"stream of 65 bytes":   func(b *Batch) { b.Stream = strings.Repeat("s", MaxNameLen+1) },
		"stream with slash":    func(b *Batch) { b.Stream = "a/b" },
		"stream with space":    func(b *Batch) { b.Stream = "a b" },
		"stream non-ASCII":     func(b *Batch) { b.Stream = "démo" },
		"empty rendition":      func(b *Batch) { b.Entries[1].Rendition = "" },
		"rendition of 65":      func(b *Batch) { b.Entries[1].Rendition = strings.Repeat("r", MaxNameLen+1) },
		"rendition with colon": func(b *Batch) { b.Entries[2].Rendition = "a:0" },
		"kind 2":               func(b *Batch) { b.Entries[0].Kind = 2 },
		"negative media time":  func(b *Batch) { b.Entries[1].MediaTime = -time.Microsecond },
		"negative duration":    func(b *Batch) { b.Entries[1].Duration = -time.Microsecond },
		"duration of 2^32 µs":  func(b *Batch) { b.Entries[1].Duration = (math.MaxUint32 + 1) * time.Microsecond },
	}
	for name, f := range bad {
		b := cloneBatch(valid)
		f(&b)
		if _, err := b.Encode(); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: Encode = %v, want ErrBadManifest", name, err)
		}
		if err := b.Sign(key); err == nil {
			t.Errorf("%s: signed", name)
		}
		b.Signature = make([]byte, ed25519.SignatureSize)
		if err := b.Verify(pub); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: Verify = %v, want ErrBadManifest", name, err)
		}
	}
	good := map[string]func(*Batch){
		"1024 entries":          func(b *Batch) { b.Entries = entries(MaxBatchEntries) },
		"names of 64 bytes":     func(b *Batch) { b.Stream, b.Entries[0].Rendition = strings.Repeat("s", 64), strings.Repeat("r", 64) },
		"every name character":  func(b *Batch) { b.Stream = "AZaz09._-" },
		"duration of 2^32-1 µs": func(b *Batch) { b.Entries[1].Duration = math.MaxUint32 * time.Microsecond },
		"max media time":        func(b *Batch) { b.Entries[1].MediaTime = math.MaxInt64 },
		"ingest before 1970":    func(b *Batch) { b.Entries[1].IngestTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) },
		"zero ingest time":      func(b *Batch) { b.Entries[1].IngestTime = time.Time{} },
	}
	for name, f := range good {
		b := cloneBatch(valid)
		f(&b)
		enc, err := b.Encode()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := len(batchMagic) + 1 + len(b.Stream) + 8 + 2
		for _, e := range b.Entries {
			want += 67 + len(e.Rendition)
		}
		if len(enc) != want {
			t.Errorf("%s: %d bytes, want %d", name, len(enc), want)
		}
		if err := b.Sign(key); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if err := b.Verify(pub); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// testManifest returns a manifest of one init batch and two chunk batches of
// two entries each, signed with key, and the entries in the order Verify
// returns them.
func testManifest(t testing.TB, key ed25519.PrivateKey) (*Manifest, []Entry) {
	t.Helper()
	// Ingest times with nanoseconds: the manifest keeps microseconds.
	base := time.Date(2026, 11, 21, 12, 0, 0, 789, time.UTC)
	hash := func(s string) ID { return Sum([]byte(s)) }
	chunk := func(rend string, seq uint64, ms int, size uint32, indep, disc bool) Entry {
		return Entry{
			Kind: KindChunk, Rendition: rend, Seq: seq,
			MediaTime:  time.Duration(seq)*250*time.Millisecond + 1234*time.Nanosecond,
			Duration:   250*time.Millisecond + 567*time.Nanosecond,
			IngestTime: base.Add(time.Duration(ms) * time.Millisecond), Size: size,
			Independent: indep, Discontinuity: disc, Hash: hash(fmt.Sprintf("%s/%d", rend, seq)),
		}
	}
	batches := []Batch{
		{Stream: "demo", N: 7, Entries: []Entry{
			{Kind: KindInit, Rendition: "v0", Seq: 100, IngestTime: base, Size: 700, Independent: true, Hash: hash("init v0")},
			{Kind: KindInit, Rendition: "a0", Seq: 100, IngestTime: base.Add(time.Millisecond), Size: 600, Independent: true, Hash: hash("init a0")},
		}},
		{Stream: "demo", N: 8, Entries: []Entry{
			chunk("v0", 100, 250, 30000, true, false),
			chunk("a0", 100, 251, 4000, true, true),
		}},
		{Stream: "demo", N: 9, Entries: []Entry{
			chunk("v0", 101, 500, 12000, false, false),
			chunk("a0", 101, 501, 4100, true, false),
		}},
	}
	m := &Manifest{
		Version: 1, Stream: "demo", PublicKey: hex.EncodeToString(key.Public().(ed25519.PublicKey)),
		ChunkDurationMs: 250,
		Renditions: []RenditionInfo{
			{Name: "v0", Kind: "video", Codec: "avc1.42c01e", Width: 640, Height: 360, FrameRate: 30},
			{Name: "a0", Kind: "audio", Codec: "opus", SampleRate: 48000, Channels: 2},
		},
	}
	var all []Entry
	for i := range batches {
		b := &batches[i]
		if err := b.Sign(key); err != nil {
			t.Fatal(err)
		}
		m.Batches = append(m.Batches, JSONBatch{N: b.N, Signature: hex.EncodeToString(b.Signature)})
		for _, e := range b.Entries {
			if e.Kind == KindInit {
				m.InitSegments = append(m.InitSegments, ToJSON(e, b.N))
			} else {
				m.Entries = append(m.Entries, ToJSON(e, b.N))
			}
			all = append(all, e)
		}
	}
	return m, all
}

func marshalManifest(t testing.TB, m *Manifest) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editJSON decodes doc generically, lets f change it, and encodes it again.
func editJSON(t testing.TB, doc []byte, f func(m map[string]any)) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jsonEntry returns element i of the array field list of a generic manifest.
func jsonEntry(m map[string]any, list string, i int) map[string]any {
	return m[list].([]any)[i].(map[string]any)
}

func TestManifestRoundTrip(t *testing.T) {
	key := ed25519.NewKeyFromSeed(vectorSeed())
	pub := key.Public().(ed25519.PublicKey)
	m, want := testManifest(t, key)
	doc := marshalManifest(t, m)

	got, err := DecodeManifest(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := got.Key(); err != nil || !k.Equal(pub) {
		t.Fatalf("Key = %x, %v", []byte(k), err)
	}
	entries, err := got.Verify(pub)
	if err != nil {
		t.Fatal(err)
	}
	assertEntriesEqual(t, entries, want)
	for _, e := range entries {
		if e.IngestTime.Nanosecond()%1000 != 0 || e.MediaTime%time.Microsecond != 0 || e.Duration%time.Microsecond != 0 {
			t.Errorf("entry %s/%d keeps sub-microsecond times", e.Rendition, e.Seq)
		}
	}
	if len(got.Renditions) != 2 || got.Renditions[0] != m.Renditions[0] || got.Renditions[1] != m.Renditions[1] || got.ChunkDurationMs != 250 {
		t.Errorf("unsigned fields: %+v", got)
	}
	batches, err := got.SignedBatches()
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 3 || batches[0].N != 7 || batches[1].N != 8 || batches[2].N != 9 || len(batches[1].Entries) != 2 {
		t.Fatalf("batches %+v", batches)
	}

	// Entries of different batches may interleave; listed order within a batch
	// is the signed order.
	inter := *got
	inter.Entries = []JSONEntry{got.Entries[0], got.Entries[2], got.Entries[1], got.Entries[3]}
	if _, err := inter.Verify(pub); err != nil {
		t.Errorf("interleaved batches: %v", err)
	}
	swapped := *got
	swapped.Entries = []JSONEntry{got.Entries[1], got.Entries[0], got.Entries[2], got.Entries[3]}
	if _, err := swapped.Verify(pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("entries of a batch reordered: %v", err)
	}
	// An empty window is a valid document.
	empty := &Manifest{Version: 1, Stream: "demo", PublicKey: m.PublicKey}
	if es, err := empty.Verify(pub); err != nil || len(es) != 0 {
		t.Errorf("empty manifest: %v, %d entries", err, len(es))
	}
}

// TestManifestTamper edits one JSON field of a signed manifest at a time.
func TestManifestTamper(t *testing.T) {
	key := ed25519.NewKeyFromSeed(vectorSeed())
	pub := key.Public().(ed25519.PublicKey)
	m, _ := testManifest(t, key)
	doc := marshalManifest(t, m)
	if _, err := m.Verify(pub); err != nil {
		t.Fatal(err)
	}

	set := func(list string, i int, field string, v any) func(map[string]any) {
		return func(m map[string]any) { jsonEntry(m, list, i)[field] = v }
	}
	flipHashDigit := func(list string, i, pos int) func(map[string]any) {
		return func(m map[string]any) {
			e := jsonEntry(m, list, i)
			h := []byte(e["hash"].(string))
			if h[pos] == '0' {
				h[pos] = '1'
			} else {
				h[pos] = '0'
			}
			e["hash"] = string(h)
		}
	}
	signature := func(m map[string]any) map[string]any { return m["batches"].([]any)[1].(map[string]any) }
	tampered := map[string]func(map[string]any){
		"chunk size":               set("entries", 0, "size", 30001),
		"init size":                set("initSegments", 1, "size", 601),
		"chunk independent":        set("entries", 2, "independent", true),
		"audio not independent":    set("entries", 1, "independent", false),
		"discontinuity added":      set("entries", 3, "discontinuity", true),
		"discontinuity removed":    set("entries", 1, "discontinuity", false),
		"seq":                      set("entries", 2, "seq", 102),
		"mediaTimeUs":              set("entries", 0, "mediaTimeUs", 25000002),
		"durationUs":               set("entries", 3, "durationUs", 249999),
		"ingestTime":               set("entries", 1, "ingestTime", 1795262400251001),
		"rendition":                set("entries", 0, "rendition", "v1"),
		"init rendition":           set("initSegments", 0, "rendition", "v1"),
		"entry moved to batch 9":   set("entries", 1, "batch", 9),
		"chunk moved to init list": func(m map[string]any) { m["initSegments"] = append(m["initSegments"].([]any), m["entries"].([]any)[0]) },
		"stream":                   func(m map[string]any) { m["stream"] = "demo2" },
		"batch n":                  func(m map[string]any) { signature(m)["n"] = 10 },
		"hash first digit":         flipHashDigit("entries", 0, 0),
		"hash last digit":          flipHashDigit("entries", 3, 63),
		"init hash":                flipHashDigit("initSegments", 0, 17),
		"signature digit": func(m map[string]any) {
			s := []byte(signature(m)["signature"].(string))
			s[5] ^= 0x01 // '0'-'9' and 'a'-'f' map into hex digits
			if s[5] == '`' || s[5] == ':' || s[5] == 'g' {
				s[5] = '0'
			}
			signature(m)["signature"] = string(s)
		},
	}
	for name, f := range tampered {
		d := editJSON(t, doc, f)
		got, err := DecodeManifest(bytes.NewReader(d))
		if err != nil {
			t.Errorf("%s: decode: %v", name, err)
			continue
		}
		if _, err := got.Verify(pub); err == nil {
			t.Errorf("%s: tampered manifest verifies", name)
		} else if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: %v, want ErrBadSignature or ErrBadManifest", name, err)
		}
	}

	// Unsigned, informative fields may change without breaking verification.
	informative := map[string]func(map[string]any){
		"durationMs":      set("entries", 0, "durationMs", 1234.5),
		"chunkDurationMs": func(m map[string]any) { m["chunkDurationMs"] = 500 },
		"renditions":      func(m map[string]any) { m["renditions"] = []any{} },
		"unknown field":   func(m map[string]any) { m["x-extra"] = "ignored" },
	}
	for name, f := range informative {
		got, err := DecodeManifest(bytes.NewReader(editJSON(t, doc, f)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := got.Verify(pub); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A manifest re-signed with another key, carrying that key, verifies only
	// with its own key: Verify trusts the caller's key, not publicKey.
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xee}, ed25519.SeedSize))
	forged, _ := testManifest(t, other)
	fm, err := DecodeManifest(bytes.NewReader(marshalManifest(t, forged)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fm.Verify(pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("manifest signed by another key: %v", err)
	}
	if k, _ := fm.Key(); k.Equal(pub) {
		t.Errorf("forged manifest carries the stream key")
	}
}

// errReader fails after returning its data.
type errReader struct{ data []byte }

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, errors.New("connection reset")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestDecodeManifestRejects(t *testing.T) {
	key := ed25519.NewKeyFromSeed(vectorSeed())
	pub := key.Public().(ed25519.PublicKey)
	m, _ := testManifest(t, key)
	doc := marshalManifest(t, m)
	top := func(field string, v any) []byte {
		return editJSON(t, doc, func(m map[string]any) { m[field] = v })
	}
	del := func(field string) []byte {
		return editJSON(t, doc, func(m map[string]any) { delete(m, field) })
	}
	entry := func(list string, i int, field string, v any) []byte {
		return editJSON(t, doc, func(m map[string]any) { jsonEntry(m, list, i)[field] = v })
	}
	batchSig := func(s string) []byte {
		return editJSON(t, doc, func(m map[string]any) { m["batches"].([]any)[0].(map[string]any)["signature"] = s })
	}
	sigHex := m.Batches[0].Signature

	// Rejected by DecodeManifest.
	decodeErrs := map[string][]byte{
		"empty":                  nil,
		"not JSON":               []byte("seedcast"),
		"null":                   []byte("null"),
		"array":                  []byte("[]"),
		"string":                 []byte(`"manifest"`),
		"truncated":              doc[:len(doc)-1],
		"version 0":              top("version", 0),
		"version 2":              top("version", 2),
		"version missing":        del("version"),
		"version string":         top("version", "1"),
		"stream missing":         del("stream"),
		"stream empty":           top("stream", ""),
		"stream slash":           top("stream", "de/mo"),
		"stream too long":        top("stream", strings.Repeat("d", MaxNameLen+1)),
		"stream non-ASCII":       top("stream", "démo"),
		"public key missing":     del("publicKey"),
		"public key short":       top("publicKey", m.PublicKey[:62]),
		"public key long":        top("publicKey", m.PublicKey+"00"),
		"public key odd":         top("publicKey", m.PublicKey[:63]),
		"public key non-hex":     top("publicKey", "zz"+m.PublicKey[2:]),
		"public key number":      top("publicKey", 5),
		"hash not hex":           entry("entries", 0, "hash", strings.Repeat("x", 64)),
		"hash short":             entry("entries", 0, "hash", strings.Repeat("a", 62)),
		"hash number":            entry("entries", 0, "hash", 12),
		"size negative":          entry("entries", 0, "size", -1),
		"size over uint32":       entry("entries", 0, "size", uint64(math.MaxUint32)+1),
		"seq negative":           entry("entries", 0, "seq", -1),
		"seq fraction":           entry("entries", 0, "seq", 1.5),
		"batch negative":         entry("entries", 0, "batch", -1),
		"independent string":     entry("entries", 0, "independent", "true"),
		"entries object":         top("entries", map[string]any{}),
		"batches string":         top("batches", "7"),
		"trailing garbage":       append(bytes.Clone(doc), []byte("garbage")...),
		"trailing second object": append(bytes.Clone(doc), doc...),
	}
	for name, d := range decodeErrs {
		if _, err := DecodeManifest(bytes.NewReader(d)); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: DecodeManifest = %v, want ErrBadManifest", name, err)
		}
	}
	if _, err := DecodeManifest(&errReader{data: doc[:100]}); !errors.Is(err, ErrBadManifest) {
		t.Errorf("reader error: %v", err)
	}

	// Size limit: exactly MaxManifestBytes is read, one byte more is refused
	// before parsing.
	pad := func(n int) []byte { // leading white space keeps the document valid
		return append(bytes.Repeat([]byte{' '}, n-len(doc)), doc...)
	}
	if _, err := DecodeManifest(bytes.NewReader(pad(MaxManifestBytes))); err != nil {
		t.Errorf("document of MaxManifestBytes: %v", err)
	}
	for _, n := range []int{MaxManifestBytes + 1, 2 * MaxManifestBytes} {
		if _, err := DecodeManifest(bytes.NewReader(pad(n))); !errors.Is(err, ErrTooLarge) {
			t.Errorf("document of %d bytes: %v, want ErrTooLarge", n, err)
		}
	}

	// Rejected by SignedBatches and Verify (DecodeManifest checks only the
	// document's shape today).
	structErrs := map[string][]byte{
		"unknown batch":         entry("entries", 0, "batch", 99),
		"init of unknown batch": entry("initSegments", 1, "batch", 99),
		"duplicate batch": editJSON(t, doc, func(m map[string]any) {
			bs := m["batches"].([]any)
			bs[2].(map[string]any)["n"] = json.Number("8")
		}),
		"signature not hex": batchSig("zz" + sigHex[2:]),
		"signature short":   batchSig(sigHex[:126]),
		"signature long":    batchSig(sigHex + "00"),
		"signature odd":     batchSig(sigHex[:127]),
		"signature empty":   batchSig(""),
		"no batches":        top("batches", []any{}),
		"batches null":      top("batches", nil),
	}
	for name, d := range structErrs {
		got, err := DecodeManifest(bytes.NewReader(d))
		if err != nil { // rejecting earlier is fine too
			if !errors.Is(err, ErrBadManifest) {
				t.Errorf("%s: DecodeManifest = %v, want ErrBadManifest", name, err)
			}
			continue
		}
		if _, err := got.SignedBatches(); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: SignedBatches = %v, want ErrBadManifest", name, err)
		}
		if _, err := got.Verify(pub); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: Verify = %v, want ErrBadManifest", name, err)
		}
	}

	// Rejected by Verify before any signature check.
	verifyErrs := map[string][]byte{
		"batch without entries": editJSON(t, doc, func(m map[string]any) {
			m["batches"] = append(m["batches"].([]any), map[string]any{"n": 10, "signature": sigHex})
		}),
		"bad rendition name":   entry("entries", 0, "rendition", "v 0"),
		"negative media time":  entry("entries", 0, "mediaTimeUs", -1),
		"negative duration":    entry("entries", 0, "durationUs", -1),
		"duration over 2^32µs": entry("entries", 0, "durationUs", int64(math.MaxUint32)+1),
	}
	for name, d := range verifyErrs {
		got, err := DecodeManifest(bytes.NewReader(d))
		if err != nil { // rejecting earlier is fine too
			if !errors.Is(err, ErrBadManifest) {
				t.Errorf("%s: DecodeManifest = %v, want ErrBadManifest", name, err)
			}
			continue
		}
		if _, err := got.Verify(pub); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: Verify = %v, want ErrBadManifest", name, err)
		}
	}

	// More than MaxBatchEntries entries naming one batch.
	big := *m
	big.Entries = nil
	for i := range MaxBatchEntries + 1 {
		big.Entries = append(big.Entries, JSONEntry{Rendition: "v0", Seq: uint64(i), Batch: 8, Size: 1})
	}
	if _, err := big.SignedBatches(); !errors.Is(err, ErrBadManifest) {
		t.Errorf("batch over %d entries: %v", MaxBatchEntries, err)
	}
}

func TestParseID(t *testing.T) {
	want := Sum([]byte("seedcast"))
	lower := want.String()
	if len(lower) != 64 || strings.ToLower(lower) != lower {
		t.Fatalf("String() = %q, want 64 lower-case hex digits", lower)
	}
	valid := map[string]string{
		"lower case": lower,
	}
	for name, s := range valid {
		id, err := ParseID(s)
		if err != nil || id != want {
			t.Errorf("%s: ParseID(%q) = %v, %v", name, s, id, err)
		}
		if id.String() != lower {
			t.Errorf("%s: String() = %q", name, id.String())
		}
	}
	if id, err := ParseID(strings.Repeat("0", 64)); err != nil || id != (ID{}) {
		t.Errorf("zero id: %v, %v", id, err)
	}

	invalid := map[string]string{
		"empty":          "",
		"63 digits":      lower[:63],
		"65 digits":      lower + "0",
		"62 digits":      lower[:62],
		"128 digits":     lower + lower,
		"g":              "g" + lower[1:],
		"space":          " " + lower[1:],
		"0x prefix":      "0x" + lower[2:],
		"trailing NL":    lower[:63] + "\n",
		"non-ASCII":      "é" + lower[2:],
		"dash":           lower[:32] + "-" + lower[33:],
		"base64-looking": strings.Repeat("A/", 32),
		// One spelling per id: /c/{hash} has exactly one URL per chunk.
		"upper case": strings.ToUpper(lower),
		"mixed case": strings.ToUpper(lower[:32]) + lower[32:],
	}
	for name, s := range invalid {
		if _, err := ParseID(s); !errors.Is(err, ErrBadID) {
			t.Errorf("%s: ParseID(%q) = %v, want ErrBadID", name, s, err)
		}
	}

	// JSON: a string of the lower-case form, both ways.
	type doc struct {
		Hash ID  `json:"hash"`
		Ptr  *ID `json:"ptr,omitempty"`
	}
	out, err := json.Marshal(doc{Hash: want, Ptr: &want})
	if err != nil {
		t.Fatal(err)
	}
	if exp := `{"hash":"` + lower + `","ptr":"` + lower + `"}`; string(out) != exp {
		t.Errorf("JSON %s, want %s", out, exp)
	}
	var back doc
	if err := json.Unmarshal(out, &back); err != nil || back.Hash != want || back.Ptr == nil || *back.Ptr != want {
		t.Errorf("JSON round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"hash":"`+strings.ToUpper(lower)+`"}`), &back); !errors.Is(err, ErrBadID) {
		t.Errorf("upper-case JSON id: %v", err)
	}
	for _, bad := range []string{`{"hash":"abc"}`, `{"hash":12}`, `{"hash":["` + lower + `"]}`, `{"hash":"` + lower[:63] + `g"}`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("JSON %s accepted", bad)
		}
	}
	if err := json.Unmarshal([]byte(`{"hash":"abc"}`), &back); !errors.Is(err, ErrBadID) {
		t.Errorf("JSON short id: %v, want ErrBadID", err)
	}
	// Text forms.
	var id ID
	if err := id.UnmarshalText([]byte(lower)); err != nil || id != want {
		t.Errorf("UnmarshalText: %v", err)
	}
	if txt, _ := want.MarshalText(); string(txt) != lower {
		t.Errorf("MarshalText = %q", txt)
	}
	before := id
	if err := id.UnmarshalText([]byte("nope")); !errors.Is(err, ErrBadID) || id != before {
		t.Errorf("UnmarshalText of garbage: %v, id changed: %v", err, id != before)
	}
}
