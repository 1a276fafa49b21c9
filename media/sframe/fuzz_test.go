package sframe

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseHeader: any bytes either fail with ErrShortFrame or
// ErrBadHeader, or decode to a header whose encoding is exactly the bytes
// read (one encoding per header).
func FuzzParseHeader(f *testing.F) {
	for _, v := range loadVectors(f).Header {
		f.Add(unhex(f, v.Encoded))
	}
	f.Add([]byte{0x80, 0x05})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrShortFrame) && !errors.Is(err, ErrBadHeader) {
				t.Fatalf("%x: unexpected error %v", b, err)
			}
			return
		}
		if n < 1 || n > MaxHeaderSize || n > len(b) || h.Len() != n {
			t.Fatalf("%x: length %d, Len %d", b, n, h.Len())
		}
		if enc := h.Append(nil); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("%x: %+v re-encodes as %x", b, h, enc)
		}
	})
}

// FuzzDecrypt: a receiver given arbitrary bytes never panics, returns
// nothing with an error that wraps one of the package's sentinels, and
// never "decrypts" a frame that is not one of the seeds' (a forgery would be
// an AES-GCM break).
func FuzzDecrypt(f *testing.F) {
	s, err := NewSender(SenderParams{SenderID: 0x0102030405})
	if err != nil {
		f.Fatal(err)
	}
	_ = s.SetKey(testBase, 1)
	valid := map[string]bool{}
	for _, fr := range [][]byte{vp8Key(40), {0x31, 0, 0, 5, 6}, {0x78, 1, 2, 3}} {
		codec := "video/VP8"
		if len(fr) == 4 {
			codec = "audio/opus"
		}
		enc, _ := s.Encrypt([]byte{byte(len(codec))}, fr, ClearPrefixLen(codec, fr))
		valid[string(enc[1:])] = true
		f.Add(enc)
	}
	f.Add([]byte{4})
	f.Add([]byte{})
	r, _ := NewReceiver(ReceiverParams{MaxKeys: 4})
	_ = r.SetKey(testBase, 1)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		// The first byte picks the codec, so that both prefix lengths of
		// VP8 and Opus's are explored.
		codec := "video/VP8"
		if b[0] == byte(len("audio/opus")) {
			codec = "audio/opus"
		}
		frame := b[1:]
		out, err := r.Decrypt(nil, frame, ClearPrefixLen(codec, frame))
		if err != nil {
			if out != nil {
				t.Fatal("output with an error")
			}
			for _, e := range []error{ErrShortFrame, ErrBadHeader, ErrUnknownKey, ErrAuth} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if !valid[string(frame)] {
			t.Fatalf("%x decrypted to %x", frame, out)
		}
	})
}
