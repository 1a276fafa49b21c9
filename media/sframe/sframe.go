package sframe

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// Errors. Every error this package returns wraps one of these.
var (
	ErrShortFrame       = errors.New("sframe: frame too short")
	ErrBadHeader        = errors.New("sframe: malformed header")
	ErrUnknownKey       = errors.New("sframe: no key for this key id")
	ErrAuth             = errors.New("sframe: authentication failed")
	ErrBadSuite         = errors.New("sframe: unsupported cipher suite")
	ErrBadKey           = errors.New("sframe: unusable base key")
	ErrBadSenderID      = errors.New("sframe: sender id out of range")
	ErrNoKey            = errors.New("sframe: no key set")
	ErrCounterExhausted = errors.New("sframe: counter exhausted")
)

// Suite is an SFrame cipher suite (RFC 9605 §4.5).
type Suite uint16

// The supported cipher suites.
const (
	AES128GCMSHA256 Suite = 0x0004 // AES_128_GCM_SHA256_128, the default
	AES256GCMSHA512 Suite = 0x0005 // AES_256_GCM_SHA512_128
)

// Sizes common to both suites.
const (
	NonceSize = 12 // AEAD.Nn
	TagSize   = 16 // AEAD.Nt
	// MaxHeaderSize is the longest header: a config byte, an 8-byte KID
	// and an 8-byte CTR.
	MaxHeaderSize = 17
	// Overhead is the most a frame grows by when encrypted.
	Overhead = MaxHeaderSize + TagSize
)

func (s Suite) String() string {
	switch s {
	case AES128GCMSHA256:
		return "AES_128_GCM_SHA256_128"
	case AES256GCMSHA512:
		return "AES_256_GCM_SHA512_128"
	}
	return fmt.Sprintf("Suite(0x%04x)", uint16(s))
}

// params returns the suite's hash and key size (AEAD.Nk).
func (s Suite) params() (func() hash.Hash, int, error) {
	switch s {
	case AES128GCMSHA256:
		return sha256.New, 16, nil
	case AES256GCMSHA512:
		return sha512.New, 32, nil
	}
	return nil, 0, fmt.Errorf("%w: 0x%04x", ErrBadSuite, uint16(s))
}

// Header is a decoded SFrame header (RFC 9605 §4.3).
type Header struct {
	KID uint64 // key id
	CTR uint64 // counter
}

// byteLen is the number of bytes of v's minimal big-endian form (v ≥ 8).
func byteLen(v uint64) int {
	n := 1
	for v > 0xff {
		v >>= 8
		n++
	}
	return n
}

// Len is the encoded header's length.
func (h Header) Len() int {
	n := 1
	if h.KID >= 8 {
		n += byteLen(h.KID)
	}
	if h.CTR >= 8 {
		n += byteLen(h.CTR)
	}
	return n
}

// Append appends the header's encoding to b: values 0-7 in the config
// byte, larger ones in the fewest big-endian bytes.
func (h Header) Append(b []byte) []byte {
	var cfg byte
	if h.KID < 8 {
		cfg = byte(h.KID) << 4
	} else {
		cfg = 0x80 | byte(byteLen(h.KID)-1)<<4
	}
	if h.CTR < 8 {
		cfg |= byte(h.CTR)
	} else {
		cfg |= 0x08 | byte(byteLen(h.CTR)-1)
	}
	b = append(b, cfg)
	if h.KID >= 8 {
		b = appendUint(b, h.KID)
	}
	if h.CTR >= 8 {
		b = appendUint(b, h.CTR)
	}
	return b
}

func appendUint(b []byte, v uint64) []byte {
	for i := byteLen(v) - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// ParseHeader decodes the header at the start of b and returns it with its
// length. A value that fits the config byte but is sent long, or a long
// value with a leading zero byte, is refused: each (KID, CTR) has exactly
// one encoding.
func ParseHeader(b []byte) (Header, int, error) {
	if len(b) < 1 {
		return Header{}, 0, fmt.Errorf("%w: empty", ErrShortFrame)
	}
	cfg := b[0]
	var h Header
	n := 1
	read := func(ext bool, field byte, what string) (uint64, error) {
		if !ext {
			return uint64(field), nil
		}
		l := int(field) + 1
		if len(b) < n+l {
			return 0, fmt.Errorf("%w: %s of %d bytes, %d left", ErrBadHeader, what, l, len(b)-n)
		}
		if b[n] == 0 {
			return 0, fmt.Errorf("%w: %s not minimally encoded", ErrBadHeader, what)
		}
		var v uint64
		for _, c := range b[n : n+l] {
			v = v<<8 | uint64(c)
		}
		n += l
		if v < 8 {
			return 0, fmt.Errorf("%w: %s %d sent long", ErrBadHeader, what, v)
		}
		return v, nil
	}
	var err error
	if h.KID, err = read(cfg&0x80 != 0, cfg>>4&7, "KID"); err != nil {
		return Header{}, 0, err
	}
	if h.CTR, err = read(cfg&0x08 != 0, cfg&7, "CTR"); err != nil {
		return Header{}, 0, err
	}
	return h, n, nil
}

// Key is the key and salt of one KID (RFC 9605 §4.4.2), ready to seal and
// open. It is safe for concurrent use.
type Key struct {
	suite Suite
	kid   uint64
	aead  cipher.AEAD
	salt  [NonceSize]byte
}

// label is "SFrame 1.0 Secret key|salt " + KID (8 bytes) + suite (2 bytes).
func label(prefix string, kid uint64, s Suite) string {
	b := append([]byte(prefix), make([]byte, 10)...)
	binary.BigEndian.PutUint64(b[len(prefix):], kid)
	binary.BigEndian.PutUint16(b[len(prefix)+8:], uint16(s))
	return string(b)
}

// deriveKeySalt is RFC 9605 §4.4.2's derive_key_salt.
func deriveKeySalt(s Suite, kid uint64, baseKey []byte) (secret, key, salt []byte, err error) {
	h, nk, err := s.params()
	if err != nil {
		return nil, nil, nil, err
	}
	if len(baseKey) == 0 {
		return nil, nil, nil, fmt.Errorf("%w: empty", ErrBadKey)
	}
	if secret, err = hkdf.Extract(h, baseKey, nil); err != nil {
		return nil, nil, nil, err
	}
	if key, err = hkdf.Expand(h, secret, label("SFrame 1.0 Secret key ", kid, s), nk); err != nil {
		return nil, nil, nil, err
	}
	if salt, err = hkdf.Expand(h, secret, label("SFrame 1.0 Secret salt ", kid, s), NonceSize); err != nil {
		return nil, nil, nil, err
	}
	return secret, key, salt, nil
}

// DeriveKey derives a KID's key and salt from its base key, as RFC 9605
// §4.4.2 says.
func DeriveKey(s Suite, kid uint64, baseKey []byte) (*Key, error) {
	_, key, salt, err := deriveKeySalt(s, kid, baseKey)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	k := &Key{suite: s, kid: kid, aead: aead}
	copy(k.salt[:], salt)
	return k, nil
}

// Suite returns the key's cipher suite.
func (k *Key) Suite() Suite { return k.suite }

// KID returns the key's id.
func (k *Key) KID() uint64 { return k.kid }

func (k *Key) nonce(ctr uint64) []byte {
	n := k.salt
	for i := 0; i < 8; i++ {
		n[NonceSize-1-i] ^= byte(ctr >> (8 * i))
	}
	return n[:]
}

// Seal appends to dst the SFrame ciphertext of plaintext under counter
// ctr: header || AEAD(plaintext) with AAD = header || metadata. The caller
// must never use a counter twice with one key.
func (k *Key) Seal(dst []byte, ctr uint64, metadata, plaintext []byte) []byte {
	h := Header{KID: k.kid, CTR: ctr}
	start := len(dst)
	dst = h.Append(dst)
	end := len(dst)
	var aadBuf [MaxHeaderSize + 32]byte
	aad := append(append(aadBuf[:0], dst[start:end]...), metadata...)
	return k.aead.Seal(dst, k.nonce(ctr), plaintext, aad)
}

// Open authenticates and decrypts the SFrame ciphertext ct (which starts
// with its header) with metadata as the rest of the AAD, and appends the
// plaintext to dst. The header's KID must be the key's.
func (k *Key) Open(dst, ct, metadata []byte) ([]byte, error) {
	h, n, err := ParseHeader(ct)
	if err != nil {
		return nil, err
	}
	if h.KID != k.kid {
		return nil, fmt.Errorf("%w: KID %d, key is for %d", ErrUnknownKey, h.KID, k.kid)
	}
	return k.open(dst, ct, n, h.CTR, metadata)
}

func (k *Key) open(dst, ct []byte, n int, ctr uint64, metadata []byte) ([]byte, error) {
	if len(ct) < n+TagSize {
		return nil, fmt.Errorf("%w: %d bytes after the header, the tag alone is %d", ErrShortFrame, len(ct)-n, TagSize)
	}
	var aadBuf [MaxHeaderSize + 32]byte
	aad := append(append(aadBuf[:0], ct[:n]...), metadata...)
	out, err := k.aead.Open(dst, k.nonce(ctr), ct[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w (KID %d, CTR %d)", ErrAuth, k.kid, ctr)
	}
	return out, nil
}
