package sframe

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// rfcVectors are RFC 9605 Appendix C's vectors; testdata/rfc9605.json says
// where they were taken from.
type rfcVectors struct {
	Header []struct {
		KID     uint64 `json:"kid"`
		CTR     uint64 `json:"ctr"`
		Encoded string `json:"encoded"`
	} `json:"header"`
	SFrame []struct {
		CipherSuite Suite  `json:"cipher_suite"`
		KID         uint64 `json:"kid"`
		CTR         uint64 `json:"ctr"`
		BaseKey     string `json:"base_key"`
		KeyLabel    string `json:"sframe_key_label"`
		SaltLabel   string `json:"sframe_salt_label"`
		Secret      string `json:"sframe_secret"`
		Key         string `json:"sframe_key"`
		Salt        string `json:"sframe_salt"`
		Metadata    string `json:"metadata"`
		Nonce       string `json:"nonce"`
		AAD         string `json:"aad"`
		PT          string `json:"pt"`
		CT          string `json:"ct"`
	} `json:"sframe"`
}

func loadVectors(t testing.TB) rfcVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc9605.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Header) < 100 || len(v.SFrame) != 2 {
		t.Fatalf("%d header and %d sframe vectors", len(v.Header), len(v.SFrame))
	}
	return v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRFC9605Header(t *testing.T) {
	for _, v := range loadVectors(t).Header {
		want := unhex(t, v.Encoded)
		h := Header{KID: v.KID, CTR: v.CTR}
		if got := h.Append(nil); !bytes.Equal(got, want) {
			t.Errorf("encode %+v = %x, want %x", h, got, want)
		}
		if h.Len() != len(want) {
			t.Errorf("%+v: Len %d, want %d", h, h.Len(), len(want))
		}
		// Decode with trailing bytes: the length says where the header ends.
		got, n, err := ParseHeader(append(want, 0xAA, 0xBB))
		if err != nil || got != h || n != len(want) {
			t.Errorf("decode %x = %+v, %d, %v; want %+v, %d", want, got, n, err, h, len(want))
		}
	}
}

func TestRFC9605Encrypt(t *testing.T) {
	for _, v := range loadVectors(t).SFrame {
		t.Run(v.CipherSuite.String(), func(t *testing.T) {
			if got := []byte(label("SFrame 1.0 Secret key ", v.KID, v.CipherSuite)); !bytes.Equal(got, unhex(t, v.KeyLabel)) {
				t.Errorf("key label %x", got)
			}
			if got := []byte(label("SFrame 1.0 Secret salt ", v.KID, v.CipherSuite)); !bytes.Equal(got, unhex(t, v.SaltLabel)) {
				t.Errorf("salt label %x", got)
			}
			secret, key, salt, err := deriveKeySalt(v.CipherSuite, v.KID, unhex(t, v.BaseKey))
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what      string
				got, want []byte
			}{{"sframe_secret", secret, unhex(t, v.Secret)}, {"sframe_key", key, unhex(t, v.Key)}, {"sframe_salt", salt, unhex(t, v.Salt)}} {
				if !bytes.Equal(c.got, c.want) {
					t.Errorf("%s = %x, want %x", c.what, c.got, c.want)
				}
			}
			k, err := DeriveKey(v.CipherSuite, v.KID, unhex(t, v.BaseKey))
			if err != nil {
				t.Fatal(err)
			}
			if got := k.nonce(v.CTR); !bytes.Equal(got, unhex(t, v.Nonce)) {
				t.Errorf("nonce %x, want %x", got, v.Nonce)
			}
			md, pt, ct := unhex(t, v.Metadata), unhex(t, v.PT), unhex(t, v.CT)
			if aad := append(Header{KID: v.KID, CTR: v.CTR}.Append(nil), md...); !bytes.Equal(aad, unhex(t, v.AAD)) {
				t.Errorf("aad %x", aad)
			}
			if got := k.Seal([]byte("x"), v.CTR, md, pt); !bytes.Equal(got[1:], ct) || got[0] != 'x' {
				t.Errorf("seal = %x, want x || %x", got, ct)
			}
			got, err := k.Open([]byte("y"), ct, md)
			if err != nil || !bytes.Equal(got, append([]byte("y"), pt...)) {
				t.Errorf("open = %q, %v", got, err)
			}
			if _, err := k.Open(nil, ct, md[1:]); !errors.Is(err, ErrAuth) {
				t.Errorf("open with other metadata: %v, want ErrAuth", err)
			}
		})
	}
}

func TestParseHeaderRejects(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{"", ErrShortFrame},
		{"80", ErrBadHeader},     // KID of 1 byte missing
		{"9001", ErrBadHeader},   // KID of 2 bytes, 1 there
		{"08", ErrBadHeader},     // CTR of 1 byte missing
		{"8008", ErrBadHeader},   // KID 8 fine, CTR... no: see below
		{"8005", ErrBadHeader},   // KID 5 sent long
		{"0807", ErrBadHeader},   // CTR 7 sent long
		{"090012", ErrBadHeader}, // CTR with a leading zero byte
		{"900012", ErrBadHeader}, // KID with a leading zero byte
		{"8f0801", ErrBadHeader}, // KID 8, CTR of 8 bytes, 1 there
		{"ff0102030405060708", ErrBadHeader},
	} {
		in := unhex(t, c.in)
		if c.in == "8008" {
			// 0x80 0x08 is KID 8, CTR 0: valid. Keep it as a positive case.
			if h, n, err := ParseHeader(in); err != nil || h != (Header{KID: 8}) || n != 2 {
				t.Errorf("%s: %+v %d %v", c.in, h, n, err)
			}
			continue
		}
		if _, _, err := ParseHeader(in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.in, err, c.want)
		}
	}
}

func TestHeaderRoundTripEdges(t *testing.T) {
	for _, h := range []Header{{0, 0}, {7, 7}, {8, 8}, {255, 256}, {1<<56 - 1, 1<<64 - 1}, {1 << 63, 1 << 8}} {
		b := h.Append(nil)
		got, n, err := ParseHeader(b)
		if err != nil || got != h || n != len(b) || n != h.Len() {
			t.Errorf("%+v: %x → %+v %d %v", h, b, got, n, err)
		}
	}
}

var testBase = bytes.Repeat([]byte{0x42}, 32)

func newPair(t testing.TB, suite Suite) (*Sender, *Receiver) {
	t.Helper()
	s, err := NewSender(SenderParams{Suite: suite})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReceiver(ReceiverParams{Suite: suite})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(testBase, 3); err != nil {
		t.Fatal(err)
	}
	if err := r.SetKey(testBase, 3); err != nil {
		t.Fatal(err)
	}
	return s, r
}

func vp8Key(n int) []byte {
	f := make([]byte, n)
	copy(f, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
	for i := 10; i < n; i++ {
		f[i] = byte(i)
	}
	return f
}

func TestProfileRoundTrip(t *testing.T) {
	for _, suite := range []Suite{AES128GCMSHA256, AES256GCMSHA512} {
		s, r := newPair(t, suite)
		delta := []byte{0x31, 0x02, 0x00, 1, 2, 3, 4, 5}
		for _, c := range []struct {
			codec string
			frame []byte
			clear int
		}{
			{"video/VP8", vp8Key(1200), 10},
			{"video/vp8", delta, 3},
			{"audio/opus", []byte{0xfc, 0xff, 0xfe}, 1},
			{"audio/opus", []byte{0x78}, 1}, // TOC only
			{"video/H264", []byte{0, 0, 0, 1, 0x65}, 0},
		} {
			n := ClearPrefixLen(c.codec, c.frame)
			if n != c.clear {
				t.Fatalf("%s: clear prefix %d, want %d", c.codec, n, c.clear)
			}
			enc, err := s.Encrypt([]byte("dst"), c.frame, n)
			if err != nil {
				t.Fatal(err)
			}
			enc = enc[3:]
			if !bytes.Equal(enc[:n], c.frame[:n]) {
				t.Errorf("%s: prefix not in the clear: %x", c.codec, enc[:n])
			}
			if ClearPrefixLen(c.codec, enc) != n {
				t.Errorf("%s: the protected frame's clear prefix differs", c.codec)
			}
			h, hn, err := ParseHeader(enc[n:])
			if err != nil || h.KID != s.KID() {
				t.Fatalf("%s: header %+v %v, KID %d", c.codec, h, err, s.KID())
			}
			if sid, eb := SplitKID(h.KID); sid != s.SenderID() || eb != 3 {
				t.Errorf("KID %x splits into %x %d", h.KID, sid, eb)
			}
			if len(enc) != len(c.frame)+hn+TagSize {
				t.Errorf("%s: %d bytes from %d", c.codec, len(enc), len(c.frame))
			}
			if bytes.Contains(enc, c.frame[n:]) && len(c.frame)-n > 4 {
				t.Errorf("%s: plaintext visible", c.codec)
			}
			dec, err := r.Decrypt([]byte("out"), enc, ClearPrefixLen(c.codec, enc))
			if err != nil || !bytes.Equal(dec, append([]byte("out"), c.frame...)) {
				t.Errorf("%s: decrypt %x, %v", c.codec, dec, err)
			}
		}
	}
}

// Two senders with one base key never share a key: the same plaintext at
// the same counter encrypts differently, and each decrypts under its KID.
func TestSendersDoNotShareKeys(t *testing.T) {
	a, r := newPair(t, 0)
	b, _ := newPair(t, 0)
	if a.SenderID() == b.SenderID() || a.SenderID() > MaxSenderID || b.SenderID() == 0 {
		t.Fatalf("sender ids %x %x", a.SenderID(), b.SenderID())
	}
	f := vp8Key(100)
	ea, _ := a.Encrypt(nil, f, 10)
	eb, _ := b.Encrypt(nil, f, 10)
	ha, na, _ := ParseHeader(ea[10:])
	hb, nb, _ := ParseHeader(eb[10:])
	if ha.CTR != 0 || hb.CTR != 0 {
		t.Fatalf("counters %d %d", ha.CTR, hb.CTR)
	}
	if bytes.Equal(ea[10+na:], eb[10+nb:]) {
		t.Fatal("two senders, same counter: same ciphertext")
	}
	for _, e := range [][]byte{ea, eb} {
		if _, err := r.Decrypt(nil, e, 10); err != nil {
			t.Error(err)
		}
	}
	// The counter moves on.
	e2, _ := a.Encrypt(nil, f, 10)
	if h, _, _ := ParseHeader(e2[10:]); h.CTR != 1 {
		t.Errorf("second frame CTR %d", h.CTR)
	}
}

func TestProfileErrors(t *testing.T) {
	s, r := newPair(t, 0)
	frame := vp8Key(64)
	enc, err := s.Encrypt(nil, frame, 10)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(enc)
		b[i] ^= 0x01
		return b
	}
	_, hn, _ := ParseHeader(enc[10:])
	other := bytes.Repeat([]byte{7}, 32)
	wrongKey, _ := NewReceiver(ReceiverParams{})
	_ = wrongKey.SetKey(other, 3)
	noKey, _ := NewReceiver(ReceiverParams{})
	otherEpoch, _ := NewReceiver(ReceiverParams{})
	_ = otherEpoch.SetKey(testBase, 4)
	for _, c := range []struct {
		name  string
		r     *Receiver
		frame []byte
		clear int
		want  error
	}{
		{"shorter than its prefix", r, enc[:5], 10, ErrShortFrame},
		{"negative prefix", r, enc, -1, ErrShortFrame},
		{"no header", r, enc[:10], 10, ErrShortFrame},
		{"bad header", r, append(bytes.Clone(enc[:10]), 0x80), 10, ErrBadHeader},
		{"header without tag", r, enc[:10+hn+TagSize-1], 10, ErrShortFrame},
		{"prefix tampered", r, flip(5), 10, ErrAuth},
		{"ciphertext tampered", r, flip(len(enc) - 20), 10, ErrAuth},
		{"tag tampered", r, flip(len(enc) - 1), 10, ErrAuth},
		{"counter tampered", r, flip(10), 10, ErrAuth}, // CTR 0 → 1 in the config byte
		{"KID tampered", r, flip(10 + 2), 10, ErrAuth}, // another sender id: another key
		{"epoch tampered", r, flip(10 + hn - 1), 10, ErrUnknownKey},
		{"wrong key", wrongKey, enc, 10, ErrAuth},
		{"no key", noKey, enc, 10, ErrUnknownKey},
		{"other epoch", otherEpoch, enc, 10, ErrUnknownKey},
		{"prefix length disagrees", r, enc, 3, nil}, // any error
	} {
		out, err := c.r.Decrypt(nil, c.frame, c.clear)
		if err == nil || c.want != nil && !errors.Is(err, c.want) || out != nil {
			t.Errorf("%s: %x, %v; want %v", c.name, out, err, c.want)
		}
	}

	var noKeySender, _ = NewSender(SenderParams{})
	if _, err := noKeySender.Encrypt(nil, frame, 10); !errors.Is(err, ErrNoKey) {
		t.Errorf("sender without key: %v", err)
	}
	if _, err := s.Encrypt(nil, frame[:4], 10); !errors.Is(err, ErrShortFrame) {
		t.Errorf("short frame: %v", err)
	}
	if _, err := NewSender(SenderParams{Suite: 1}); !errors.Is(err, ErrBadSuite) {
		t.Errorf("suite 1: %v", err)
	}
	if _, err := NewReceiver(ReceiverParams{Suite: 0x99}); !errors.Is(err, ErrBadSuite) {
		t.Errorf("suite 0x99: %v", err)
	}
	if _, err := DeriveKey(3, 1, testBase); !errors.Is(err, ErrBadSuite) {
		t.Errorf("DeriveKey suite 3: %v", err)
	}
	if _, err := NewSender(SenderParams{SenderID: MaxSenderID + 1}); !errors.Is(err, ErrBadSenderID) {
		t.Errorf("sender id 2^48: %v", err)
	}
	if err := s.SetKey(nil, 1); !errors.Is(err, ErrBadKey) {
		t.Errorf("sender empty key: %v", err)
	}
	if err := r.SetKey(nil, 1); !errors.Is(err, ErrBadKey) {
		t.Errorf("receiver empty key: %v", err)
	}
	if _, err := DeriveKey(AES128GCMSHA256, 1, nil); !errors.Is(err, ErrBadKey) {
		t.Errorf("DeriveKey empty key: %v", err)
	}
	if _, err := Ratchet(nil); !errors.Is(err, ErrBadKey) {
		t.Errorf("Ratchet empty key: %v", err)
	}
	if _, err := NewSender(SenderParams{Rand: strings.NewReader("ab")}); err == nil {
		t.Error("sender id from a 2-byte source")
	}
	k, _ := DeriveKey(AES128GCMSHA256, 9, testBase)
	if _, err := k.Open(nil, k.Seal(nil, 1, nil, []byte("hi")), nil); err != nil {
		t.Error(err)
	}
	k2, _ := DeriveKey(AES128GCMSHA256, 10, testBase)
	if _, err := k2.Open(nil, k.Seal(nil, 1, nil, []byte("hi")), nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("open under another KID's key: %v", err)
	}
	if _, err := k.Open(nil, nil, nil); !errors.Is(err, ErrShortFrame) {
		t.Errorf("open nothing: %v", err)
	}
	s.ctr = ^uint64(0)
	if _, err := s.Encrypt(nil, frame, 10); !errors.Is(err, ErrCounterExhausted) {
		t.Errorf("counter at 2^64-1: %v", err)
	}
}

func TestEpochs(t *testing.T) {
	s, r := newPair(t, 0) // epoch 3
	old, _ := s.Encrypt(nil, vp8Key(40), 10)
	next, err := Ratchet(testBase)
	if err != nil || bytes.Equal(next, testBase) || len(next) != 32 {
		t.Fatalf("ratchet %x %v", next, err)
	}
	if again, _ := Ratchet(testBase); !bytes.Equal(again, next) {
		t.Fatal("ratchet not deterministic")
	}
	_ = s.SetKey(next, 4)
	cur, _ := s.Encrypt(nil, vp8Key(40), 10)
	if _, err := r.Decrypt(nil, cur, 10); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("epoch 4 before the receiver has it: %v", err)
	}
	_ = r.SetKey(next, 4)
	for name, f := range map[string][]byte{"previous": old, "current": cur} {
		if _, err := r.Decrypt(nil, f, 10); err != nil {
			t.Errorf("%s epoch: %v", name, err)
		}
	}
	// Setting the current epoch again keeps the previous one.
	_ = r.SetKey(next, 4)
	if _, err := r.Decrypt(nil, old, 10); err != nil {
		t.Errorf("previous epoch after re-setting the current: %v", err)
	}
	r.ForgetPrevious()
	if _, err := r.Decrypt(nil, old, 10); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("previous epoch after ForgetPrevious: %v", err)
	}
	if _, err := r.Decrypt(nil, cur, 10); err != nil {
		t.Errorf("current epoch after ForgetPrevious: %v", err)
	}
	// Epoch 260 shares epoch 4's low byte but is another key: frames of
	// epoch 4 no longer authenticate.
	_ = r.SetKey(bytes.Repeat([]byte{9}, 32), 260)
	r.ForgetPrevious()
	if _, err := r.Decrypt(nil, cur, 10); !errors.Is(err, ErrAuth) {
		t.Errorf("epoch 4 frame under epoch 260: %v", err)
	}
}

func TestReceiverCacheBounded(t *testing.T) {
	r, _ := NewReceiver(ReceiverParams{MaxKeys: 2})
	_ = r.SetKey(testBase, 0)
	for round := 0; round < 2; round++ {
		for i := 0; i < 5; i++ {
			s, _ := NewSender(SenderParams{SenderID: uint64(i + 1)})
			_ = s.SetKey(testBase, 0)
			f, _ := s.Encrypt(nil, []byte{0x78, 1, 2}, 1)
			if _, err := r.Decrypt(nil, f, 1); err != nil {
				t.Fatal(err)
			}
			if len(r.keys) > 2 || len(r.order) != len(r.keys) {
				t.Fatalf("%d keys cached, order %d", len(r.keys), len(r.order))
			}
		}
	}
}

func TestSenderIDs(t *testing.T) {
	// Zero is redrawn; the id is 48 bits of the source.
	src := bytes.NewReader(append(make([]byte, 6), 0xff, 1, 2, 3, 4, 5))
	s, err := NewSender(SenderParams{Rand: src})
	if err != nil || s.SenderID() != 0xff0102030405 {
		t.Fatalf("%x %v", s.SenderID(), err)
	}
	if MakeKID(0xff0102030405, 0x1_07) != 0xff010203040507 {
		t.Errorf("KID %x", MakeKID(0xff0102030405, 0x107))
	}
	// The KID's header form is 7 bytes for such an id.
	if n := (Header{KID: MakeKID(0xff0102030405, 7), CTR: 300}).Len(); n != 1+7+2 {
		t.Errorf("header length %d", n)
	}
}

func TestClearPrefixLen(t *testing.T) {
	for _, c := range []struct {
		codec string
		frame []byte
		want  int
	}{
		{"video/VP8", []byte{0x50}, 10},
		{"VIDEO/VP8", []byte{0x51}, 3},
		{"video/VP8", nil, 3},
		{"audio/opus", nil, 1},
		{"audio/OPUS", []byte{1, 2}, 1},
		{"video/H264", []byte{0}, 0},
		{"", nil, 0},
	} {
		if got := ClearPrefixLen(c.codec, c.frame); got != c.want {
			t.Errorf("%s %x: %d, want %d", c.codec, c.frame, got, c.want)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	for _, size := range []int{1200, 30000} {
		b.Run(sizeName(size), func(b *testing.B) {
			s, _ := newPair(b, 0)
			f := vp8Key(size)
			dst := make([]byte, 0, size+Overhead)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Encrypt(dst[:0], f, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	for _, size := range []int{1200, 30000} {
		b.Run(sizeName(size), func(b *testing.B) {
			s, r := newPair(b, 0)
			enc, _ := s.Encrypt(nil, vp8Key(size), 10)
			dst := make([]byte, 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Decrypt(dst[:0], enc, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sizeName(n int) string {
	if n%1000 == 0 {
		return strconv.Itoa(n/1000) + "kB"
	}
	return strconv.Itoa(n) + "B"
}

// TestProfileVector pins the seedcast SFrame profile v1 (docs/e2ee.md
// lists the same vector; TestE2EECrossImplementation checks sframe.js
// against it): base key 00..1f, sender id 0x123456789abc, epoch 1,
// counter 300, a VP8 delta frame.
func TestProfileVector(t *testing.T) {
	base := make([]byte, 32)
	for i := range base {
		base[i] = byte(i)
	}
	s, err := NewSender(SenderParams{SenderID: 0x123456789abc})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKey(base, 1); err != nil {
		t.Fatal(err)
	}
	s.ctr = 300
	sk, _ := SenderBaseKey(base, s.KID())
	next, _ := Ratchet(base)
	frame := append([]byte{0x31, 0x02, 0x00}, "seedcast"...)
	out, err := s.Encrypt(nil, frame, ClearPrefixLen("video/VP8", frame))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, got, want string }{
		{"KID", hex.EncodeToString(binaryBE(s.KID())), "00123456789abc01"},
		{"sender base key", hex.EncodeToString(sk), profileSenderKey},
		{"protected frame", hex.EncodeToString(out), profileFrame},
		{"ratchet", hex.EncodeToString(next), profileRatchet},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.what, c.got, c.want)
		}
	}
	r, _ := NewReceiver(ReceiverParams{})
	_ = r.SetKey(base, 1)
	if dec, err := r.Decrypt(nil, unhex(t, profileFrame), 3); err != nil || !bytes.Equal(dec, frame) {
		t.Errorf("open the vector: %x %v", dec, err)
	}
}

const (
	profileSenderKey = "ba92ba5f8fdb2855e5faf1be318d54b8c932e7a872c16dc02594a49f45127a7e"
	profileFrame     = "310200e9123456789abc01012caf029c7c4c582eaa391f92afd84e93a2798a30f1f3b90a21"
	profileRatchet   = "8ac1975f3ebf9ca3cc3c7719beeb68cfa66a442b52f7fab38cc54ebc0502e38c"
)

func binaryBE(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (56 - 8*i))
	}
	return b
}

// TestConcurrent: goroutines sharing a Sender never get one counter
// twice, and a shared Receiver opens every frame while keys change.
func TestConcurrent(t *testing.T) {
	s, r := newPair(t, 0)
	const workers, each = 4, 200
	ctrs := make(chan uint64, workers*each)
	errs := make(chan error, workers*each)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				enc, err := s.Encrypt(nil, []byte{0x78, byte(i)}, 1)
				if err != nil {
					errs <- err
					continue
				}
				h, _, _ := ParseHeader(enc[1:])
				ctrs <- h.CTR
				if _, err := r.Decrypt(nil, enc, 1); err != nil {
					errs <- err
				}
			}
		}()
	}
	go func() { // the receiver re-sets its key meanwhile (same epoch, same key)
		defer close(done)
		for i := 0; i < 50; i++ {
			_ = r.SetKey(testBase, 3)
		}
	}()
	wg.Wait()
	<-done
	close(ctrs)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[uint64]bool{}
	for c := range ctrs {
		if seen[c] {
			t.Fatalf("counter %d used twice", c)
		}
		seen[c] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d counters", len(seen))
	}
}
