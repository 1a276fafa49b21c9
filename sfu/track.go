package sfu

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/seedcast/seedcast/media"
)

// Reasons for keyframe requests, as counted in metrics.
const (
	reasonJoin       = "join"
	reasonSwitch     = "switch"
	reasonSubscriber = "subscriber"
	reasonTap        = "tap"
)

// publishedTrack is a track of a room: the layers currently received for it
// and the subscribers' down tracks forwarding it. In a broadcast it outlives
// publisher sessions, so subscribers stay attached across reconnects.
type publishedTrack struct {
	room  *Room
	id    string
	kind  webrtc.RTPCodecType
	codec webrtc.RTPCodecParameters // what subscribers are bound to
	ck    codecKind

	layers atomic.Pointer[[]*layer]     // copy-on-write, written with room.mu held
	downs  atomic.Pointer[[]*downTrack] // copy-on-write, written with room.mu held

	demand Quality // highest layer in demand (calls), under room.demandMu
}

func newPublishedTrack(r *Room, id string, kind webrtc.RTPCodecType, codec webrtc.RTPCodecParameters) *publishedTrack {
	t := &publishedTrack{room: r, id: id, kind: kind, codec: codec, ck: codecKindOf(codec.MimeType)}
	t.layers.Store(&[]*layer{})
	t.downs.Store(&[]*downTrack{})
	return t
}

// addDown and removeDown are called with room.mu held.
func (t *publishedTrack) addDown(d *downTrack) {
	old := *t.downs.Load()
	downs := append(append(make([]*downTrack, 0, len(old)+1), old...), d)
	t.downs.Store(&downs)
}

func (t *publishedTrack) removeDown(d *downTrack) {
	old := *t.downs.Load()
	downs := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			downs = append(downs, x)
		}
	}
	t.downs.Store(&downs)
}

// layer is one received RTP stream of a publisher: a track or one of its
// simulcast layers. Its read loop fans packets out to taps and down tracks.
type layer struct {
	t        *publishedTrack
	pub      *session
	src      uint64 // unique source id for rewriters
	rid      string
	ssrc     uint32
	info     TrackInfo
	ck       codecKind
	levelExt uint8 // RFC 6464 extension id, 0 if not negotiated
	limiter  *rateLimiter
	bitrate  atomic.Uint64 // smoothed bit/s
	lastRTP  atomic.Int64  // Unix ns of the last packet

	// Read-loop state.
	lastTS    uint32
	haveTS    bool
	rateBytes uint64
	rateStart int64
	nack      nackLog  // video only
	nackSeqs  []uint16 // scratch for nack.due
	nackFrom  uint32   // sender SSRC of our NACKs
}

func newLayer(t *publishedTrack, pub *session, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) *layer {
	s := t.room.s
	c := remote.Codec()
	kind := media.KindVideo
	if remote.Kind() == webrtc.RTPCodecTypeAudio {
		kind = media.KindAudio
	}
	l := &layer{
		t:        t,
		pub:      pub,
		src:      s.nextSource.Add(1),
		rid:      remote.RID(),
		ssrc:     uint32(remote.SSRC()),
		ck:       codecKindOf(c.MimeType),
		limiter:  newRateLimiter(s.p.KeyframeInterval),
		nackFrom: rand.Uint32(),
		info: TrackInfo{
			Room:        t.room.name,
			ID:          t.id,
			PublisherID: pub.id,
			Kind:        kind,
			MimeType:    c.MimeType,
			RID:         remote.RID(),
			SSRC:        uint32(remote.SSRC()),
			ClockRate:   c.ClockRate,
			Channels:    c.Channels,
			PayloadType: uint8(c.PayloadType),
			Fmtp:        c.SDPFmtpLine,
		},
	}
	if recv != nil {
		for _, e := range recv.GetParameters().HeaderExtensions {
			if strings.EqualFold(e.URI, AudioLevelURI) && e.ID > 0 && e.ID < 15 {
				l.levelExt = uint8(e.ID)
			}
		}
	}
	return l
}

// flowing reports whether the layer received a packet in the last second.
func (l *layer) flowing(now int64) bool { return now-l.lastRTP.Load() < int64(time.Second) }

// requestKeyframe sends a PLI to the publisher unless one was sent for this
// layer less than KeyframeInterval ago (every subscriber's requests count
// against the one limit). now is Unix ns. It reports whether it asked.
func (l *layer) requestKeyframe(now int64, reason string) bool {
	if l.ck == codecAudio || !l.limiter.allow(now) {
		return false
	}
	m := l.t.room.s.m
	m.keyframeRequests.WithLabelValues(reason).Inc()
	if l.pub == nil || l.pub.pc == nil {
		return true
	}
	_ = l.pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: l.ssrc}})
	return true
}

// account enters a video packet in the layer's nackLog and asks the
// publisher again for the packets it says are due.
func (l *layer) account(pkt *rtp.Packet, now int64) {
	m := l.t.room.s.m
	if l.nack.received(pkt.SequenceNumber, now) {
		m.nackRecovered.Inc()
	}
	if len(l.nack.missing) == 0 {
		return
	}
	l.nackSeqs = l.nack.due(now, l.nackSeqs[:0])
	if len(l.nackSeqs) == 0 {
		return
	}
	m.nackRequested.Add(float64(len(l.nackSeqs)))
	if l.pub == nil || l.pub.pc == nil {
		return
	}
	_ = l.pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
		SenderSSRC: l.nackFrom,
		MediaSSRC:  pkt.SSRC,
		Nacks:      rtcp.NackPairsFromSequenceNumbers(l.nackSeqs),
	}})
}

// readLoop reads the layer's RTP until the track ends.
func (l *layer) readLoop(remote *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	s := l.t.room.s
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		l.handle(&pkt, s.now())
	}
}

// rtcpLoop reads the layer's RTCP (which also feeds pion's interceptors)
// and passes sender reports to taps.
func (l *layer) rtcpLoop(recv *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		n, _, err := recv.ReadSimulcast(buf, l.rid)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == l.ssrc {
				for _, e := range *l.t.room.taps.Load() {
					e.tap.OnSenderReport(l.info, sr)
				}
			}
		}
	}
}

// rateWindow is how often a layer's bitrate estimate is updated.
const rateWindow = int64(500 * time.Millisecond)

// handle fans one received packet out. It runs on the read goroutine.
func (l *layer) handle(pkt *rtp.Packet, now time.Time) {
	nowNS := now.UnixNano()
	t := l.t
	m := t.room.s.m
	m.packetsReceived.Inc()

	keyStart := false
	if l.ck == codecAudio {
		keyStart = true
	} else if !l.haveTS || pkt.Timestamp != l.lastTS {
		l.haveTS, l.lastTS = true, pkt.Timestamp
		keyStart = len(pkt.Payload) > 0 && startsKeyframe(l.ck, pkt.Payload)
	}

	if l.ck != codecAudio {
		l.account(pkt, nowNS)
	}

	// Bitrate, for automatic layer selection.
	l.lastRTP.Store(nowNS)
	l.rateBytes += uint64(len(pkt.Payload))
	if l.rateStart == 0 {
		l.rateStart = nowNS
	} else if el := nowNS - l.rateStart; el >= rateWindow {
		br := l.rateBytes * 8 * 1e9 / uint64(el)
		if old := l.bitrate.Load(); old != 0 {
			br = (old + br) / 2
		}
		l.bitrate.Store(br)
		l.rateBytes, l.rateStart = 0, nowNS
	}

	if l.levelExt != 0 {
		if v := pkt.Header.GetExtension(l.levelExt); len(v) > 0 {
			t.room.observeLevel(l.pub.speakerID(), v[0]&0x7f, now)
		}
	}

	for _, e := range *t.room.taps.Load() {
		e.tap.OnRTP(l.info, pkt)
	}

	var fwd, bytes int
	for _, d := range *t.downs.Load() {
		if d.forward(l, pkt, keyStart, nowNS) {
			fwd++
			bytes += len(pkt.Payload)
		}
	}
	if fwd > 0 {
		m.packetsForwarded.Add(float64(fwd))
		m.bytesForwarded.Add(float64(bytes))
	}
}
