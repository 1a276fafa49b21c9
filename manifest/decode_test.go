package manifest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"reflect"
	"testing"
)

func TestDecodeBatch(t *testing.T) {
	v := docVectors(t)
	enc := docHex(t, v, "encoded")
	sig := docHex(t, v, "signature")
	b, err := DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	want := vectorBatch()
	if !reflect.DeepEqual(b.Entries, want.Entries) || b.Stream != want.Stream || b.N != want.N {
		t.Fatalf("decoded %+v\nwant %+v", b, want)
	}
	re, err := b.Encode()
	if err != nil || !bytes.Equal(re, enc) {
		t.Fatalf("re-encoding differs (%v)", err)
	}
	b, err = SignedBatch{Encoded: enc, Signature: sig}.Batch()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(ed25519.NewKeyFromSeed(vectorSeed()).Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("vector batch does not verify after DecodeBatch: %v", err)
	}

	// Every truncation and every single-byte change that Encode would not
	// produce is refused; whatever decodes re-encodes identically.
	for n := range len(enc) {
		if _, err := DecodeBatch(enc[:n]); !errors.Is(err, ErrBadManifest) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	if _, err := DecodeBatch(append(bytes.Clone(enc), 0)); !errors.Is(err, ErrBadManifest) {
		t.Fatalf("trailing byte: %v", err)
	}
	for i := range enc {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			mut := bytes.Clone(enc)
			mut[i] ^= x
			checkBatchRoundTrip(t, mut)
		}
	}
}

func TestDecodeBatchLimits(t *testing.T) {
	enc := docHex(t, docVectors(t), "encoded")
	set := func(off int, b ...byte) []byte {
		m := bytes.Clone(enc)
		copy(m[off:], b)
		return m
	}
	tests := map[string][]byte{
		"bad magic":        set(0, 'S'),
		"stream length 0":  set(21, 0),
		"stream bad char":  set(22, '/'),
		"0 entries":        set(34, 0, 0),
		"1025 entries":     set(34, 0x04, 0x01),
		"entries past end": set(34, 0, 4),
		"kind 2":           set(36, 2),
		"rendition len 0":  set(37, 0),
		"rendition len 65": set(37, 65),
		"rendition char":   set(38, ' '),
		"media time > max": set(48, 0x00, 0x20, 0xc4, 0x9b, 0xa5, 0xe3, 0x53, 0xf8),
		"media time neg":   set(48, 0x80),
		"flags bit 2":      set(72, 0x05),
		"flags bit 7":      set(72, 0x81),
	}
	// The names ValidName refuses beyond their characters.
	for _, name := range []string{".", ".."} {
		b := vectorBatch()
		b.Stream = "ss"[:len(name)]
		dot, _ := b.Encode()
		copy(dot[22:], name)
		tests["stream "+name] = dot
	}
	for name, b := range tests {
		if _, err := DecodeBatch(b); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: %v, want ErrBadManifest", name, err)
		}
	}
	// The largest media time Entry can express round-trips.
	ok := set(48, 0x00, 0x20, 0xc4, 0x9b, 0xa5, 0xe3, 0x53, 0xf7) // MaxInt64/1000
	checkBatchRoundTrip(t, ok)
	if _, err := DecodeBatch(ok); err != nil {
		t.Fatal(err)
	}
}

// checkBatchRoundTrip asserts that enc is refused as malformed or re-encodes,
// through Encode, to exactly enc.
func checkBatchRoundTrip(t testing.TB, enc []byte) {
	t.Helper()
	b, err := DecodeBatch(enc)
	if err != nil {
		if !errors.Is(err, ErrBadManifest) {
			t.Fatalf("DecodeBatch(%x): error %v does not wrap ErrBadManifest", enc, err)
		}
		return
	}
	re, err := b.Encode()
	if err != nil {
		t.Fatalf("DecodeBatch accepted what Encode refuses: %v\n%x", err, enc)
	}
	if !bytes.Equal(re, enc) {
		t.Fatalf("round trip differs:\n in  %x\n out %x", enc, re)
	}
}

func TestSignedBatch(t *testing.T) {
	b, _ := signedVectorBatch(t)
	sb, err := NewSignedBatch(&b)
	if err != nil {
		t.Fatal(err)
	}
	if enc, _ := b.Encode(); !bytes.Equal(sb.Encoded, enc) || !bytes.Equal(sb.Signature, b.Signature) {
		t.Fatalf("signed batch %x / %x", sb.Encoded, sb.Signature)
	}
	got, err := sb.Batch()
	if err != nil {
		t.Fatal(err)
	}
	assertEntriesEqual(t, got.Entries, b.Entries)
	if err := got.Verify(ed25519.NewKeyFromSeed(vectorSeed()).Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	got.Signature[0] ^= 1 // a copy: the relayed bytes stay as they came
	if sb.Signature[0] != b.Signature[0] {
		t.Error("Batch() shares the signature with the SignedBatch")
	}

	for _, sig := range [][]byte{nil, b.Signature[:63], append(bytes.Clone(b.Signature), 0)} {
		u := cloneBatch(b)
		u.Signature = sig
		if _, err := NewSignedBatch(&u); !errors.Is(err, ErrBadSignature) {
			t.Errorf("signature of %d bytes: %v, want ErrBadSignature", len(sig), err)
		}
	}
	u := cloneBatch(b)
	u.Stream = ".."
	if _, err := NewSignedBatch(&u); !errors.Is(err, ErrBadManifest) {
		t.Errorf("stream \"..\": %v, want ErrBadManifest", err)
	}
	if _, err := (SignedBatch{Encoded: sb.Encoded[:40], Signature: sb.Signature}).Batch(); !errors.Is(err, ErrBadManifest) {
		t.Errorf("truncated batch: %v, want ErrBadManifest", err)
	}
}
