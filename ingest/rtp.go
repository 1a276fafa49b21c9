package ingest

import (
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"

	"github.com/seedcast/seedcast/media"
)

// Reordering: how many packets (video) the assembler waits for a missing one,
// which leaves time for a NACK retransmission on a jittery path.
const (
	videoMaxLate = 512
	audioMaxLate = 64
	maxHold      = 400 * time.Millisecond // and how long, at most
)

// rtpFrame is an access unit still in RTP time.
type rtpFrame struct {
	ts       int64 // unwrapped RTP timestamp
	data     []byte
	keyframe bool
	lost     bool // packets were lost before it
}

// assembler turns one RTP stream (one SSRC) into frames: it reorders packets,
// depacketizes them (pion's H.264 and Opus depacketizers via samplebuilder),
// unwraps timestamps, and reports loss it could not repair.
type assembler struct {
	codec   media.Codec
	sb      *samplebuilder.SampleBuilder
	unwrap  unwrapper
	started bool
}

func newAssembler(codec media.Codec, clockRate uint32) *assembler {
	a := &assembler{codec: codec}
	if codec == media.CodecH264 {
		a.sb = samplebuilder.New(videoMaxLate, &codecs.H264Packet{}, clockRate, samplebuilder.WithMaxTimeDelay(maxHold))
	} else {
		a.sb = samplebuilder.New(audioMaxLate, &codecs.OpusPacket{}, clockRate, samplebuilder.WithMaxTimeDelay(maxHold))
	}
	return a
}

// push adds a packet and returns the frames it completed, in order.
func (a *assembler) push(p *rtp.Packet) []rtpFrame {
	a.sb.Push(p)
	var out []rtpFrame
	for s := a.sb.Pop(); s != nil; s = a.sb.Pop() {
		if len(s.Data) == 0 {
			continue
		}
		f := rtpFrame{ts: a.unwrap.unwrap(s.PacketTimestamp), data: s.Data, lost: a.started && s.PrevDroppedPackets > 0}
		a.started = true
		if a.codec == media.CodecH264 {
			f.keyframe = hasIDR(s.Data)
		} else {
			f.keyframe = true
		}
		out = append(out, f)
	}
	return out
}

// hasIDR reports whether Annex-B data holds an IDR slice (NAL type 5).
func hasIDR(b []byte) bool {
	for i := 0; i+3 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 && b[i+3]&0x1f == 5 {
			return true
		}
	}
	return false
}

// unwrapper extends 32-bit RTP timestamps to 64 bits across wrap-arounds.
// A timestamp is taken as the nearest value to the newest one seen, so
// reordered packets from just before a wrap stay before it.
type unwrapper struct {
	last    uint32
	full    int64
	started bool
}

func (u *unwrapper) unwrap(ts uint32) int64 {
	if !u.started {
		u.started, u.last, u.full = true, ts, int64(ts)
		return u.full
	}
	v := u.full + int64(int32(ts-u.last))
	if v > u.full {
		u.last, u.full = ts, v
	}
	return v
}

// nearest unwraps ts relative to the newest timestamp without recording it
// (for RTCP, whose timestamps must not move the packet timeline).
func (u *unwrapper) nearest(ts uint32) int64 {
	if !u.started {
		return int64(ts)
	}
	return u.full + int64(int32(ts-u.last))
}

// clockMap maps a track's RTP time to the sender's wall clock with its latest
// RTCP sender report, which is what lines up audio and video: every track of
// a publisher reports against the same sender clock.
type clockMap struct {
	rate      int64
	synthetic bool // mapped from arrival times until a sender report comes
	haveSR    bool
	srRTP     int64
	srWall    time.Time
}

// srTolerance is how far a sender report may disagree with the mapping in use
// before the mapping moves to it. Reports jitter by a millisecond or so
// (senders take the RTP time of "now" by extrapolation); re-anchoring on each
// would put that jitter into the media timestamps.
const srTolerance = 5 * time.Millisecond

// sender records a sender report (NTP time and the RTP time of that instant).
func (m *clockMap) sender(rtpTS int64, ntp time.Time) {
	if m.haveSR {
		if d := m.wall(rtpTS).Sub(ntp); d < srTolerance && d > -srTolerance {
			m.synthetic = false
			return
		}
	}
	m.srRTP, m.srWall, m.haveSR, m.synthetic = rtpTS, ntp, true, false
}

// wall returns the sender wall-clock time of RTP time ts.
func (m *clockMap) wall(ts int64) time.Time {
	d := ts - m.srRTP
	return m.srWall.Add(time.Duration(d/m.rate)*time.Second + time.Duration(d%m.rate)*time.Second/time.Duration(m.rate))
}

// ntpTime converts a 64-bit NTP timestamp (RFC 3550) to a time.
func ntpTime(ntp uint64) time.Time {
	const ntpToUnix = 2208988800
	secs := int64(ntp>>32) - ntpToUnix
	frac := int64(ntp & 0xffffffff)
	return time.Unix(secs, frac*1e9>>32)
}

// keyframePlanner decides when ingest asks the publisher for a keyframe. Pure:
// times are media times of the video the caller has seen.
//
// Keyframes are asked for at least every GOP, timed to arrive near a chunk
// boundary: the chunker snaps a keyframe up to snap before a boundary forward
// to it, and holds the chunk before a boundary open for up to hold after it
// while a keyframe is expected (chunker.ExpectKeyframe), so that the keyframe
// opens a chunk either way. Requests aim at the middle of that window; the
// request-to-keyframe latency is learnt from past requests.
type keyframePlanner struct {
	gop, chunk, snap time.Duration
	hold             time.Duration
	latency          time.Duration // smoothed request → keyframe delay
	lastKey          time.Duration
	haveKey          bool
	pending          bool          // a request is outstanding
	requestedAt      time.Duration // media time of the outstanding request
	urgent           bool          // the stream cannot go on without a keyframe
}

func newKeyframePlanner(gop, chunk, snap, hold time.Duration) *keyframePlanner {
	return &keyframePlanner{gop: gop, chunk: chunk, snap: snap, hold: hold, latency: 100 * time.Millisecond, urgent: true}
}

// keyframe records a keyframe at media time t.
func (k *keyframePlanner) keyframe(t time.Duration) {
	if k.pending {
		if d := t - k.requestedAt; d >= 0 && d < 2*time.Second {
			k.latency = (3*k.latency + d) / 4
		}
		k.pending = false
	}
	k.lastKey, k.haveKey, k.urgent = t, true, false
}

// needKeyframe marks the stream as unable to go on without a keyframe (start,
// unrepaired loss, a publisher reconnect).
func (k *keyframePlanner) needKeyframe() { k.urgent = true }

// due reports whether to send a keyframe request now, at media time now, and
// until when the chunker should hold a boundary for it (0: no hold, for
// urgent requests).
func (k *keyframePlanner) due(now time.Duration) (request bool, holdUntil time.Duration) {
	// An outstanding request is repeated if nothing came of it in a second.
	if k.pending && now-k.requestedAt < time.Second {
		return false, 0
	}
	if !k.urgent {
		if !k.haveKey {
			return false, 0
		}
		// Aim at the first chunk boundary at least a GOP after the last keyframe.
		boundary := ((k.lastKey + k.gop + k.chunk - 1) / k.chunk) * k.chunk
		if now < boundary+(k.hold-k.snap)/2-k.latency {
			return false, 0
		}
		holdUntil = boundary + k.hold
	}
	k.pending, k.requestedAt = true, now
	return true, holdUntil
}
