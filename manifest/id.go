package manifest

import (
	"encoding/hex"
	"errors"
	"fmt"

	"lukechampine.com/blake3"
)

// ID is the BLAKE3-256 hash of a chunk's or an init segment's bytes: the only
// name a chunk has anywhere in Seedcast.
type ID [32]byte

// ErrBadID is returned for a string that is not 64 hexadecimal digits.
var ErrBadID = errors.New("manifest: malformed chunk id")

// Sum returns the ID of b.
func Sum(b []byte) ID { return blake3.Sum256(b) }

// String returns the lower-case hexadecimal form used in URLs and manifests.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses the 64-digit lower-case hexadecimal form of an ID. Upper
// case is refused so that a chunk has exactly one URL (one cache entry).
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("%w: want %d hex digits, got %d characters", ErrBadID, 2*len(id), len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'F' {
			return id, fmt.Errorf("%w: upper-case hex digit %q", ErrBadID, c)
		}
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: %v", ErrBadID, err)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler (hex).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (hex).
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
