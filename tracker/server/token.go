package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Token limits.
const (
	// MaxTokenLen is the longest input Verify reads; longer input is
	// rejected before any decoding.
	MaxTokenLen = 512
	// MinTokenKeyLen is the shortest key NewTokenIssuer accepts.
	MinTokenKeyLen = 32
)

const (
	tokenVersion    = "v1"
	tokenPayloadLen = 11 // base64url of 8 bytes
	tokenMACLen     = 43 // base64url of 32 bytes
)

// Token errors. Verify wraps ErrTokenInvalid or ErrTokenExpired with detail.
var (
	ErrTokenInvalid     = errors.New("tracker: invalid viewer token")
	ErrTokenExpired     = errors.New("tracker: viewer token expired")
	ErrTokenKeyTooShort = errors.New("tracker: viewer token key shorter than 32 bytes")
)

var b64 = base64.RawURLEncoding.Strict()

// TokenIssuer issues and verifies viewer tokens, which let a viewer into a
// private stream until a given time, with one HMAC-SHA256 key. It is safe
// for concurrent use.
//
// Token format, version 1. A token is ASCII text of exactly 58 characters:
//
//	token   = "v1." payload "." mac
//	payload = b64(expires)                      ; 11 characters
//	mac     = b64(HMAC-SHA256(key, signed))     ; 43 characters
//	signed  = "v1." payload "." stream
//
// where
//   - b64 is base64url (RFC 4648 section 5) without padding. Readers reject
//     padding, line breaks, any character outside the base64url alphabet and
//     non-zero unused trailing bits, so each token has exactly one spelling;
//   - expires is the expiry time in Unix seconds as a signed 64-bit
//     big-endian integer (8 bytes). A token is valid while now < expires:
//     from the expiry second on it is expired;
//   - key is the HMAC key shared by the tracker and whoever issues tokens
//     (for example the web site that sells access), at least 32 bytes;
//   - stream is the stream name as bytes. The stream name is not carried in
//     the token: the verifier knows which stream is asked for and recomputes
//     the MAC with it, so a token for one stream fails for every other;
//   - signed is thus the first 15 characters of the token followed by the
//     stream name.
//
// A verifier rejects input longer than 512 bytes before decoding anything,
// then anything not of the form above or with a version other than "v1",
// then a token whose MAC does not match (compared in constant time); only an
// authentic token can be reported expired.
type TokenIssuer struct {
	key []byte
}

// NewTokenIssuer returns an issuer for key, which must be at least 32
// bytes (ErrTokenKeyTooShort); key is copied.
func NewTokenIssuer(key []byte) (*TokenIssuer, error) {
	if len(key) < MinTokenKeyLen {
		return nil, fmt.Errorf("%w: got %d", ErrTokenKeyTooShort, len(key))
	}
	return &TokenIssuer{key: append([]byte(nil), key...)}, nil
}

// Issue returns a token for stream valid until expires (to the second,
// rounded down).
func (t *TokenIssuer) Issue(stream string, expires time.Time) string {
	var exp [8]byte
	binary.BigEndian.PutUint64(exp[:], uint64(expires.Unix()))
	head := tokenVersion + "." + b64.EncodeToString(exp[:]) + "."
	return head + b64.EncodeToString(t.mac(head, stream))
}

// Verify checks that token was issued with t's key for stream and has not
// expired at now. It returns nil, an error wrapping ErrTokenInvalid
// (malformed, oversized, unknown version, wrong key or stream, tampered) or
// one wrapping ErrTokenExpired (authentic but now is at or after its
// expiry).
func (t *TokenIssuer) Verify(token, stream string, now time.Time) error {
	if len(token) > MaxTokenLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrTokenInvalid, MaxTokenLen)
	}
	version, rest, ok := strings.Cut(token, ".")
	if !ok {
		return fmt.Errorf("%w: no version", ErrTokenInvalid)
	}
	if version != tokenVersion {
		return fmt.Errorf("%w: unknown version", ErrTokenInvalid)
	}
	payload, macText, ok := strings.Cut(rest, ".")
	if !ok {
		return fmt.Errorf("%w: no mac", ErrTokenInvalid)
	}
	// The encoded lengths are checked first: the decoder skips '\r' and
	// '\n', which would otherwise give a token more than one spelling.
	if len(payload) != tokenPayloadLen || len(macText) != tokenMACLen {
		return fmt.Errorf("%w: wrong length", ErrTokenInvalid)
	}
	exp, err := b64.DecodeString(payload)
	if err != nil || len(exp) != 8 {
		return fmt.Errorf("%w: malformed payload", ErrTokenInvalid)
	}
	mac, err := b64.DecodeString(macText)
	if err != nil || len(mac) != sha256.Size {
		return fmt.Errorf("%w: malformed mac", ErrTokenInvalid)
	}
	head := token[:len(version)+1+len(payload)+1]
	if !hmac.Equal(mac, t.mac(head, stream)) {
		return fmt.Errorf("%w: bad mac", ErrTokenInvalid)
	}
	expires := time.Unix(int64(binary.BigEndian.Uint64(exp)), 0)
	if !now.Before(expires) {
		return fmt.Errorf("%w: at %s", ErrTokenExpired, expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// mac is HMAC-SHA256(key, head || stream), head being "v1.<payload>.".
func (t *TokenIssuer) mac(head, stream string) []byte {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(head))
	m.Write([]byte(stream))
	return m.Sum(nil)
}
