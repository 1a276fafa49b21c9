package call

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// Invites are one-time links that skip a call's waiting room:
//
//	token = base64url(nonce[16] | expiry[8, Unix s, big-endian] | mac[16])
//	mac   = HMAC-SHA256(secret, room | 0x00 | nonce | expiry)[:16]
//
// The server remembers a used nonce until its expiry, so a token works
// once; a server with a new secret refuses the old ones.

const inviteLen = 16 + 8 + 16

// newInvite returns a token for room valid until exp.
func newInvite(secret []byte, room string, exp time.Time) string {
	b := make([]byte, inviteLen)
	_, _ = rand.Read(b[:16])
	binary.BigEndian.PutUint64(b[16:24], uint64(exp.Unix()))
	copy(b[24:], inviteMAC(secret, room, b[:24]))
	return base64.RawURLEncoding.EncodeToString(b)
}

func inviteMAC(secret []byte, room string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(room))
	m.Write([]byte{0})
	m.Write(body)
	return m.Sum(nil)[:16]
}

// checkInvite verifies a token for room at now and returns its nonce and
// expiry. It does not know whether the token was used.
func checkInvite(secret []byte, room, token string, now time.Time) (nonce string, exp time.Time, err error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != inviteLen {
		return "", time.Time{}, fmt.Errorf("%w: malformed", ErrInvite)
	}
	if !hmac.Equal(b[24:], inviteMAC(secret, room, b[:24])) {
		return "", time.Time{}, fmt.Errorf("%w: not for this room", ErrInvite)
	}
	exp = time.Unix(int64(binary.BigEndian.Uint64(b[16:24])), 0)
	if !now.Before(exp) {
		return "", time.Time{}, fmt.Errorf("%w: expired", ErrInvite)
	}
	return string(b[:16]), exp, nil
}
