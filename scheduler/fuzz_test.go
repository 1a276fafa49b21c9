package scheduler

import (
	"errors"
	"testing"
)

// FuzzParseRelay: the relay setting comes from users (flags, the player's
// slider, stats files): never a panic, errors wrap ErrBadRelay, and what
// parses has a sane rate.
func FuzzParseRelay(f *testing.F) {
	for _, s := range []string{"off", "low", "medium", "high", "800kbps", "2Mbps", "64000bps", "", "kbps", "-1kbps", "9999999999999Mbps", "1.5Mbps"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelay(s)
		if err != nil {
			if !errors.Is(err, ErrBadRelay) {
				t.Fatalf("%q: error %v does not wrap ErrBadRelay", s, err)
			}
			return
		}
		if r.Level == RelayCustom && r.CustomKbps <= 0 {
			t.Fatalf("%q: custom relay of %d kbps", s, r.CustomKbps)
		}
	})
}
