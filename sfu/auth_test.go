package sfu

import (
	"errors"
	"testing"
)

// TestCheckPublish: only the exact key opens its stream; a prefix, a longer
// token, another stream's key, no token and an unknown stream are refused
// with ErrUnauthorized. (The comparison runs over fixed-size digests, so its
// time does not depend on the key's length; a unit test cannot observe
// timing reliably, and does not try.)
func TestCheckPublish(t *testing.T) {
	keys := StreamKeys{"live": "change-me-0123456789", "other": "another-key-0123456"}
	if err := keys.CheckPublish("live", "change-me-0123456789"); err != nil {
		t.Fatalf("the right key: %v", err)
	}
	for _, c := range []struct{ stream, token string }{
		{"live", ""}, {"live", "change-me"}, {"live", "change-me-0123456789x"}, {"live", "another-key-0123456"},
		{"nope", "change-me-0123456789"}, {"nope", "\x00unknown-stream\x00"},
	} {
		if err := keys.CheckPublish(c.stream, c.token); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("CheckPublish(%q, %q) = %v, want ErrUnauthorized", c.stream, c.token, err)
		}
	}
}
