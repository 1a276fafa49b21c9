package sfu

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// codecKind is the codec family of a track, as far as forwarding cares.
type codecKind uint8

const (
	codecOther codecKind = iota
	codecAudio           // every packet is independently decodable
	codecH264
	codecVP8
)

func codecKindOf(mime string) codecKind {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return codecH264
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return codecVP8
	case strings.HasPrefix(strings.ToLower(mime), "audio/"):
		return codecAudio
	}
	return codecOther
}

// startsKeyframe reports whether an RTP payload of the given codec can begin
// a keyframe: a decoder that starts with this packet can decode the picture.
// The caller also checks that the packet is the first of its frame.
func startsKeyframe(c codecKind, payload []byte) bool {
	switch c {
	case codecAudio:
		return true
	case codecH264:
		return h264StartsKeyframe(payload)
	case codecVP8:
		return vp8Keyframe(payload)
	}
	return false
}

// H.264 NAL unit types (RFC 6184).
const (
	naluIDR   = 5
	naluSPS   = 7
	naluSTAPA = 24
	naluFUA   = 28
)

// h264StartsKeyframe reports whether an H.264 RTP payload starts an IDR
// access unit: an SPS or IDR slice in a single NAL unit packet, a STAP-A
// whose first unit is one of those, or the first fragment of an IDR slice.
func h264StartsKeyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case naluIDR, naluSPS:
		return true
	case naluSTAPA:
		// STAP-A: [hdr][size16][nal]...; look at the first aggregated unit.
		if len(p) < 4 {
			return false
		}
		t := p[3] & 0x1f
		return t == naluSPS || t == naluIDR
	case naluFUA:
		if len(p) < 2 {
			return false
		}
		start := p[1]&0x80 != 0
		return start && p[1]&0x1f == naluIDR
	}
	return false
}

// vp8Keyframe reports whether a VP8 RTP payload (RFC 7741) is the first
// packet of a keyframe.
func vp8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	// S bit set and partition index 0: start of a frame.
	if p[0]&0x10 == 0 || p[0]&0x07 != 0 {
		return false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extended control bits
		if len(p) <= i {
			return false
		}
		x := p[i]
		i++
		if x&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 { // M: 15-bit picture id
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0 // P bit: 0 for keyframes
}

// rateLimiter allows an event at most once per interval. It is safe for
// concurrent use; time is passed in.
type rateLimiter struct {
	interval int64        // ns
	last     atomic.Int64 // Unix ns of the last allowed event, 0 if none
}

func newRateLimiter(interval time.Duration) *rateLimiter {
	return &rateLimiter{interval: int64(interval)}
}

// allow reports whether an event at now (Unix ns) may happen, and if so
// records it.
func (l *rateLimiter) allow(now int64) bool {
	for {
		last := l.last.Load()
		if last != 0 && now-last < l.interval {
			return false
		}
		if l.last.CompareAndSwap(last, now) {
			return true
		}
	}
}
