package sframe

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
)

// The seedcast SFrame profile v1 (docs/e2ee.md):
//
//   - a protected frame is clearPrefix || SFrame header || ciphertext || tag,
//     where the clear prefix is the codec's first bytes that the browser's
//     packetizer and the SFU read (ClearPrefixLen) and is the RFC's
//     metadata: AAD = header || clearPrefix;
//   - KID = senderID<<8 | epoch&0xff, with senderID a random 48-bit
//     number each sender draws when it starts, so that nonce uniqueness
//     does not depend on ids the server assigns;
//   - a sender's SFrame base key is HKDF-SHA256(the call's base key for
//     the epoch, salt empty, info "seedcast sframe sender v1" || KID as 8
//     bytes big-endian), 32 bytes, so no two senders share a key;
//   - the counter is the sender's frame count, never reset.

// SenderIDBits is the width of the random sender id in a KID.
const SenderIDBits = 48

// MaxSenderID is the largest sender id.
const MaxSenderID = 1<<SenderIDBits - 1

// MakeKID is the profile's key id: the sender id above the epoch's low
// byte.
func MakeKID(senderID, epoch uint64) uint64 { return senderID<<8 | epoch&0xff }

// SplitKID undoes MakeKID; the epoch comes back as its low byte only.
func SplitKID(kid uint64) (senderID uint64, epochByte byte) { return kid >> 8, byte(kid) }

// SenderBaseKey is the SFrame base key of one KID under the call's base
// key for the KID's epoch.
func SenderBaseKey(base []byte, kid uint64) ([]byte, error) {
	if len(base) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadKey)
	}
	info := make([]byte, 0, 33)
	info = append(info, "seedcast sframe sender v1"...)
	info = binary.BigEndian.AppendUint64(info, kid)
	return hkdf.Key(sha256.New, base, nil, string(info), 32)
}

// Ratchet is the group key's next epoch: HKDF-SHA256(key, salt empty, info
// "seedcast ratchet v1"), 32 bytes (keys.js's ratchet).
func Ratchet(key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadKey)
	}
	return hkdf.Key(sha256.New, key, nil, "seedcast ratchet v1", 32)
}

// ClearPrefixLen is how many bytes at the start of a frame stay in the
// clear for codec (a MIME type as WebRTC names it, case-insensitive): a
// VP8 keyframe (P bit of byte 0 clear) 10 (frame tag, start code, size),
// another VP8 frame 3 (frame tag), Opus 1 (TOC byte), anything else 0. It
// reads only byte 0, which the profile leaves in the clear, so it gives
// the same answer on a plaintext frame and on its protected form.
func ClearPrefixLen(codec string, frame []byte) int {
	switch {
	case strings.EqualFold(codec, "video/VP8"):
		if len(frame) > 0 && frame[0]&1 == 0 {
			return 10
		}
		return 3
	case strings.EqualFold(codec, "audio/opus"):
		return 1
	}
	return 0
}

func defaultSuite(s Suite) (Suite, error) {
	if s == 0 {
		s = AES128GCMSHA256
	}
	if _, _, err := s.params(); err != nil {
		return 0, err
	}
	return s, nil
}

// SenderParams configures a Sender.
type SenderParams struct {
	Suite    Suite     // zero: AES128GCMSHA256
	SenderID uint64    // 1..MaxSenderID; zero: drawn at random
	Rand     io.Reader // the source of the random sender id; nil: crypto/rand
}

// Sender protects one sender's frames. It is safe for concurrent use.
type Sender struct {
	suite    Suite
	senderID uint64

	mu    sync.Mutex
	key   *Key
	epoch uint64
	ctr   uint64
}

// NewSender returns a sender with no key yet (Encrypt fails with ErrNoKey
// until SetKey).
func NewSender(p SenderParams) (*Sender, error) {
	suite, err := defaultSuite(p.Suite)
	if err != nil {
		return nil, err
	}
	id := p.SenderID
	if id > MaxSenderID {
		return nil, fmt.Errorf("%w: %d > %d", ErrBadSenderID, id, uint64(MaxSenderID))
	}
	r := p.Rand
	if r == nil {
		r = rand.Reader
	}
	for id == 0 {
		var b [8]byte
		if _, err := io.ReadFull(r, b[2:]); err != nil {
			return nil, fmt.Errorf("sframe: sender id: %w", err)
		}
		id = binary.BigEndian.Uint64(b[:])
	}
	return &Sender{suite: suite, senderID: id}, nil
}

// SenderID returns the sender's id.
func (s *Sender) SenderID() uint64 { return s.senderID }

// KID returns the key id of the current epoch (zero epoch before SetKey).
func (s *Sender) KID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return MakeKID(s.senderID, s.epoch)
}

// SetKey makes base, the call's key for epoch, the one new frames are
// protected with.
func (s *Sender) SetKey(base []byte, epoch uint64) error {
	kid := MakeKID(s.senderID, epoch)
	sk, err := SenderBaseKey(base, kid)
	if err != nil {
		return err
	}
	k, err := DeriveKey(s.suite, kid, sk)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.key, s.epoch = k, epoch
	s.mu.Unlock()
	return nil
}

// Encrypt appends frame's protected form to dst: frame[:clearLen] ||
// header || ciphertext || tag, with AAD = header || frame[:clearLen].
func (s *Sender) Encrypt(dst, frame []byte, clearLen int) ([]byte, error) {
	if clearLen < 0 || len(frame) < clearLen {
		return nil, fmt.Errorf("%w: %d bytes, clear prefix %d", ErrShortFrame, len(frame), clearLen)
	}
	s.mu.Lock()
	k, ctr := s.key, s.ctr
	if k != nil {
		if s.ctr == ^uint64(0) {
			s.mu.Unlock()
			return nil, ErrCounterExhausted
		}
		s.ctr++
	}
	s.mu.Unlock()
	if k == nil {
		return nil, ErrNoKey
	}
	dst = append(dst, frame[:clearLen]...)
	return k.Seal(dst, ctr, frame[:clearLen], frame[clearLen:]), nil
}

// ReceiverParams configures a Receiver.
type ReceiverParams struct {
	Suite   Suite // zero: AES128GCMSHA256
	MaxKeys int   // derived per-KID keys kept; zero: 64
}

type epochKey struct {
	epoch uint64
	base  []byte
}

type cacheKey struct {
	epoch, kid uint64
}

// Receiver opens the frames of any sender of a call: it keeps the call's
// key for the current epoch and the previous one (for the overlap while
// senders switch) and derives each KID's key when it first sees it. It is
// safe for concurrent use.
type Receiver struct {
	suite Suite
	max   int

	mu        sync.Mutex
	cur, prev *epochKey
	keys      map[cacheKey]*Key
	order     []cacheKey // insertion order, for eviction
}

// NewReceiver returns a receiver with no key (Decrypt fails with
// ErrUnknownKey until SetKey).
func NewReceiver(p ReceiverParams) (*Receiver, error) {
	suite, err := defaultSuite(p.Suite)
	if err != nil {
		return nil, err
	}
	if p.MaxKeys <= 0 {
		p.MaxKeys = 64
	}
	return &Receiver{suite: suite, max: p.MaxKeys, keys: map[cacheKey]*Key{}}, nil
}

// SetKey makes base the key of epoch, the current one; the former current
// epoch (if another) stays readable as the previous one until the next
// SetKey or ForgetPrevious.
func (r *Receiver) SetKey(base []byte, epoch uint64) error {
	if len(base) == 0 {
		return fmt.Errorf("%w: empty", ErrBadKey)
	}
	e := &epochKey{epoch: epoch, base: append([]byte(nil), base...)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur != nil && r.cur.epoch != epoch {
		r.prev = r.cur
	}
	r.cur = e
	r.prune()
	return nil
}

// ForgetPrevious ends the overlap: only the current epoch is readable.
func (r *Receiver) ForgetPrevious() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prev = nil
	r.prune()
}

// prune drops derived keys of epochs no longer held (and, after SetKey
// replaced the current epoch's key, all of them).
func (r *Receiver) prune() {
	clear(r.keys)
	r.order = r.order[:0]
}

// Decrypt opens a protected frame whose first clearLen bytes are in the clear
// and appends the plain frame (clear prefix and plaintext) to dst.
func (r *Receiver) Decrypt(dst, frame []byte, clearLen int) ([]byte, error) {
	if clearLen < 0 || len(frame) < clearLen {
		return nil, fmt.Errorf("%w: %d bytes, clear prefix %d", ErrShortFrame, len(frame), clearLen)
	}
	body := frame[clearLen:]
	h, n, err := ParseHeader(body)
	if err != nil {
		return nil, err
	}
	k, err := r.key(h.KID)
	if err != nil {
		return nil, err
	}
	prefix := frame[:clearLen]
	dst = append(dst, prefix...)
	return k.open(dst, body, n, h.CTR, prefix)
}

// key finds or derives the key of kid.
func (r *Receiver) key(kid uint64) (*Key, error) {
	_, eb := SplitKID(kid)
	r.mu.Lock()
	var e *epochKey
	switch {
	case r.cur == nil:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: no key set", ErrUnknownKey)
	case byte(r.cur.epoch) == eb:
		e = r.cur
	case r.prev != nil && byte(r.prev.epoch) == eb:
		e = r.prev
	default:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: epoch %d (low byte) not held", ErrUnknownKey, eb)
	}
	ck := cacheKey{epoch: e.epoch, kid: kid}
	if k, ok := r.keys[ck]; ok {
		r.mu.Unlock()
		return k, nil
	}
	r.mu.Unlock()
	sk, err := SenderBaseKey(e.base, kid)
	if err != nil {
		return nil, err
	}
	k, err := DeriveKey(r.suite, kid, sk)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if (r.cur == e || r.prev == e) && r.keys[ck] == nil {
		for len(r.order) >= r.max {
			delete(r.keys, r.order[0])
			r.order = r.order[1:]
		}
		r.keys[ck] = k
		r.order = append(r.order, ck)
	}
	return k, nil
}
