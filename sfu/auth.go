package sfu

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
)

// PublishAuthorizer decides who may publish (WHIP) to a stream. token is the
// bearer token of the request ("" when there was none). It returns nil or an
// error wrapping ErrUnauthorized.
type PublishAuthorizer interface {
	CheckPublish(stream, token string) error
}

// PlayAuthorizer decides who may play (WHEP) a stream. A nil PlayAuthorizer
// makes every stream public.
type PlayAuthorizer interface {
	CheckPlay(stream, token string) error
}

// StreamKeys is a PublishAuthorizer holding one key per stream name. Keys are
// compared in constant time, as SHA-256 digests: subtle.ConstantTimeCompare
// returns at once on a length mismatch, so comparing the keys themselves
// would tell a prober the key's length. Streams absent from the map cannot
// be published.
type StreamKeys map[string]string

// CheckPublish implements PublishAuthorizer.
func (k StreamKeys) CheckPublish(stream, token string) error {
	key, ok := k[stream]
	if !ok {
		// Compare anyway so unknown streams take as long as wrong keys.
		key = "\x00unknown-stream\x00"
	}
	want, got := sha256.Sum256([]byte(key)), sha256.Sum256([]byte(token))
	if token == "" || subtle.ConstantTimeCompare(want[:], got[:]) != 1 || !ok {
		return fmt.Errorf("%w: bad stream key for %q", ErrUnauthorized, stream)
	}
	return nil
}
