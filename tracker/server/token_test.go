package server

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// Token test vector (for docs/protocol.md), computed independently:
//
//	key     = bytes 0x00, 0x01, ..., 0x1f (32 bytes)
//	stream  = "demo"
//	expires = 2030-01-01T00:00:00Z (Unix 1893456000)
//	token   = v1.AAAAAHDb2IA.srbFjA58iuuQKHqt8v_2TkNqbqARPsq8ipeFHz--ufI
const (
	vectorStream = "demo"
	vectorToken  = "v1.AAAAAHDb2IA.srbFjA58iuuQKHqt8v_2TkNqbqARPsq8ipeFHz--ufI"
)

var vectorExpires = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func vectorKey() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

func testIssuer(t testing.TB) *TokenIssuer {
	t.Helper()
	ti, err := NewTokenIssuer(vectorKey())
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

func TestTokenVector(t *testing.T) {
	ti := testIssuer(t)
	if got := ti.Issue(vectorStream, vectorExpires); got != vectorToken {
		t.Fatalf("Issue = %s, want %s", got, vectorToken)
	}
	// Sub-second parts of the expiry are dropped.
	if got := ti.Issue(vectorStream, vectorExpires.Add(999*time.Millisecond)); got != vectorToken {
		t.Errorf("Issue with 999 ms = %s, want %s", got, vectorToken)
	}
	if err := ti.Verify(vectorToken, vectorStream, vectorExpires.Add(-time.Hour)); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestNewTokenIssuer(t *testing.T) {
	for _, n := range []int{0, 1, 31} {
		if _, err := NewTokenIssuer(make([]byte, n)); !errors.Is(err, ErrTokenKeyTooShort) {
			t.Errorf("%d-byte key: err = %v, want ErrTokenKeyTooShort", n, err)
		}
	}
	for _, n := range []int{32, 64, 100} {
		if _, err := NewTokenIssuer(make([]byte, n)); err != nil {
			t.Errorf("%d-byte key: %v", n, err)
		}
	}
	// The key is copied: changing the caller's slice changes nothing.
	key := vectorKey()
	ti, err := NewTokenIssuer(key)
	if err != nil {
		t.Fatal(err)
	}
	key[0] ^= 0xff
	if got := ti.Issue(vectorStream, vectorExpires); got != vectorToken {
		t.Errorf("issuer follows the caller's key slice: %s", got)
	}
}

func TestTokenVerify(t *testing.T) {
	ti := testIssuer(t)
	other, err := NewTokenIssuer(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	exp := vectorExpires
	valid := ti.Issue("demo", exp)
	head, mac := valid[:15], valid[15:]

	// A payload with a later expiry, well-formed but not what was signed.
	var later [8]byte
	binary.BigEndian.PutUint64(later[:], uint64(exp.Add(24*time.Hour).Unix()))
	extended := "v1." + base64.RawURLEncoding.EncodeToString(later[:]) + "." + mac

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	// The last mac character carries 4 data bits and 2 unused ones; setting
	// an unused bit keeps the decoded bytes but must not be accepted.
	last := strings.IndexByte(
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", valid[len(valid)-1])
	nonCanonical := valid[:len(valid)-1] +
		string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])

	before := exp.Add(-time.Second)
	for _, tc := range []struct {
		name   string
		token  string
		stream string
		now    time.Time
		want   error // nil, ErrTokenInvalid or ErrTokenExpired
	}{
		{"valid", valid, "demo", before, nil},
		{"valid long before", valid, "demo", time.Unix(0, 0), nil},
		{"valid 1 ns before", valid, "demo", exp.Add(-time.Nanosecond), nil},
		{"exactly at expiry", valid, "demo", exp, ErrTokenExpired},
		{"after expiry", valid, "demo", exp.Add(time.Nanosecond), ErrTokenExpired},
		{"long after expiry", valid, "demo", exp.AddDate(10, 0, 0), ErrTokenExpired},
		{"other time zone, same instant", valid, "demo", exp.In(time.FixedZone("x", 3600)), ErrTokenExpired},
		{"wrong stream", valid, "demo2", before, ErrTokenInvalid},
		{"stream prefix", valid, "dem", before, ErrTokenInvalid},
		{"stream case", valid, "Demo", before, ErrTokenInvalid},
		{"empty stream", valid, "", before, ErrTokenInvalid},
		{"wrong key", other.Issue("demo", exp), "demo", before, ErrTokenInvalid},
		{"extended expiry", extended, "demo", before, ErrTokenInvalid},
		{"tampered payload", flip(valid, 5), "demo", before, ErrTokenInvalid},
		{"tampered mac", flip(valid, 20), "demo", before, ErrTokenInvalid},
		{"tampered mac end", flip(valid, len(valid)-2), "demo", before, ErrTokenInvalid},
		{"non-canonical mac", nonCanonical, "demo", before, ErrTokenInvalid},
		{"version v2", "v2" + valid[2:], "demo", before, ErrTokenInvalid},
		{"version V1", "V1" + valid[2:], "demo", before, ErrTokenInvalid},
		{"no version", valid[3:], "demo", before, ErrTokenInvalid},
		{"truncated by one", valid[:len(valid)-1], "demo", before, ErrTokenInvalid},
		{"truncated mac", head + mac[:20], "demo", before, ErrTokenInvalid},
		{"no mac", head, "demo", before, ErrTokenInvalid},
		{"no mac separator", head[:14], "demo", before, ErrTokenInvalid},
		{"version only", "v1", "demo", before, ErrTokenInvalid},
		{"extra part", valid + ".AAAA", "demo", before, ErrTokenInvalid},
		{"extra char", valid + "A", "demo", before, ErrTokenInvalid},
		{"padding", valid + "=", "demo", before, ErrTokenInvalid},
		{"padded payload", "v1." + base64.URLEncoding.EncodeToString(later[:]) + "." + mac, "demo", before, ErrTokenInvalid},
		{"newline in mac", head + mac[:10] + "\n" + mac[10:42], "demo", before, ErrTokenInvalid},
		{"standard alphabet", head + strings.NewReplacer("-", "+", "_", "/").Replace(mac), "demo", before, ErrTokenInvalid},
		{"surrounding space", " " + valid, "demo", before, ErrTokenInvalid},
		{"empty", "", "demo", before, ErrTokenInvalid},
		{"dots", "..", "demo", before, ErrTokenInvalid},
		{"garbage", "not a token at all", "demo", before, ErrTokenInvalid},
		{"binary garbage", "v1.\x00\xff\xfe.\x80", "demo", before, ErrTokenInvalid},
		{"long garbage under the limit", "v1." + strings.Repeat("A", MaxTokenLen-3), "demo", before, ErrTokenInvalid},
		{"oversized", valid + strings.Repeat("A", MaxTokenLen-len(valid)+1), "demo", before, ErrTokenInvalid},
		{"huge", strings.Repeat("v1.", 1<<16), "demo", before, ErrTokenInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ti.Verify(tc.token, tc.stream, tc.now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if errors.Is(err, ErrTokenInvalid) && errors.Is(err, ErrTokenExpired) {
				t.Fatalf("Verify = %v wraps both sentinels", err)
			}
		})
	}
}

func TestTokenIssue(t *testing.T) {
	ti := testIssuer(t)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		stream  string
		expires time.Time
		validAt time.Time // zero: never valid at the times below
	}{
		{"plain", "live", now.Add(time.Minute), now},
		{"long stream name", strings.Repeat("s", 64), now.Add(time.Minute), now},
		{"odd stream name", "a.b.c/\x00ü", now.Add(time.Minute), now},
		{"before 1970", "live", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1959, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"far future", "live", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := ti.Issue(tc.stream, tc.expires)
			if len(tok) != 58 {
				t.Errorf("len(%q) = %d, want 58", tok, len(tok))
			}
			if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
				t.Errorf("%q is not URL-safe", tok)
			}
			if err := ti.Verify(tok, tc.stream, tc.validAt); err != nil {
				t.Errorf("Verify at %v: %v", tc.validAt, err)
			}
			if err := ti.Verify(tok, tc.stream, tc.expires); !errors.Is(err, ErrTokenExpired) {
				t.Errorf("Verify at expiry: %v, want ErrTokenExpired", err)
			}
		})
	}
}

func TestTokenConcurrent(t *testing.T) {
	ti := testIssuer(t)
	now := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			stream := strings.Repeat("x", i+1)
			for range 100 {
				if err := ti.Verify(ti.Issue(stream, now.Add(time.Hour)), stream, now); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzVerifyToken checks that Verify never panics, answers nil or exactly
// one of the sentinels, rejects oversized input, and accepts only the one
// spelling Issue produces for a stream and an expiry after now.
func FuzzVerifyToken(f *testing.F) {
	ti := testIssuer(f)
	exp := vectorExpires.Unix()
	f.Add(vectorToken, vectorStream, exp-1)
	f.Add(vectorToken, vectorStream, exp)
	f.Add(vectorToken, "other", exp-1)
	f.Add(vectorToken+"=", vectorStream, exp-1)
	f.Add(vectorToken[:40]+"\n"+vectorToken[40:57], vectorStream, exp-1)
	f.Add(ti.Issue("", time.Unix(-1, 0)), "", int64(-2))
	f.Add("v1..", "", int64(0))
	f.Add("", "", int64(0))
	f.Add(strings.Repeat("v1.", 200), "demo", int64(0))
	f.Fuzz(func(t *testing.T, token, stream string, nowUnix int64) {
		now := time.Unix(nowUnix, 0)
		err := ti.Verify(token, stream, now)
		invalid, expired := errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenExpired)
		switch {
		case err != nil && invalid == expired:
			t.Fatalf("Verify = %v: not exactly one sentinel", err)
		case len(token) > MaxTokenLen && !invalid:
			t.Fatalf("oversized token: %v", err)
		case err == nil || expired:
			// Authentic: it must be the token Issue makes for its expiry.
			raw, derr := base64.RawURLEncoding.DecodeString(token[3:14])
			if derr != nil || len(raw) != 8 {
				t.Fatalf("accepted token %q with a bad payload", token)
			}
			expires := time.Unix(int64(binary.BigEndian.Uint64(raw)), 0)
			if again := ti.Issue(stream, expires); again != token {
				t.Fatalf("accepted %q, but Issue gives %q", token, again)
			}
			if (err == nil) != now.Before(expires) {
				t.Fatalf("Verify = %v at %v for expiry %v", err, now, expires)
			}
		}
	})
}
