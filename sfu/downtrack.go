package sfu

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// A down track waiting for a keyframe on its target layer asks again
// every keyframeRetry while the layer it forwards still plays, and every
// keyframeRetryFrozen while the subscriber's picture is frozen: nothing is
// forwarded yet, or the layer forwarded has sent nothing for frozenAfter.
// Requests are also limited per publisher layer (KeyframeInterval), so
// many waiting subscribers do not multiply them.
const (
	keyframeRetry       = int64(time.Second)
	keyframeRetryFrozen = int64(500 * time.Millisecond)
	frozenAfter         = int64(500 * time.Millisecond)
)

// keyframeAskDue reports whether a down track waiting for a keyframe
// should ask again at now, having last asked at lastAsk; curLast is when
// the layer it forwards last sent a packet (0: it forwards none). All
// Unix ns. Pure.
func keyframeAskDue(now, lastAsk, curLast int64) bool {
	every := keyframeRetry
	if curLast == 0 || now-curLast >= frozenAfter {
		every = keyframeRetryFrozen
	}
	return now-lastAsk >= every
}

// downTrack forwards one room track to one subscriber. It is the
// subscriber's pion TrackLocal: it has its own SSRC (chosen by pion when it
// is bound) and rewrites sequence numbers and timestamps so that the
// subscriber sees one continuous stream across layer switches and publisher
// reconnects.
type downTrack struct {
	sub      *session
	t        *publishedTrack
	kind     webrtc.RTPCodecType
	streamID string

	mu       sync.Mutex
	ws       webrtc.TrackLocalWriter // nil until bound
	ready    bool                    // the subscriber's transport is up
	ssrc     uint32
	pt       uint8
	levelExt uint8 // subscriber's RFC 6464 extension id, 0 if none
	rw       rewriter
	cur      *layer // layer being forwarded
	target   *layer // layer to switch to at its next keyframe
	pinned   string // rid chosen with SetLayer, "" for automatic
	alloc    string // rid chosen by a call's allocator, "" for none
	off      bool   // a call subscriber does not show the track: forward nothing
	lastAsk  int64  // last keyframe request for target, Unix ns
	waitFrom int64  // when the wait for target's keyframe began, Unix ns (0: none)
	est      *lossEstimator
	hdr      rtp.Header      // scratch output header
	ext      []rtp.Extension // scratch extensions, reused
}

func newDownTrack(sub *session, t *publishedTrack, streamID string) *downTrack {
	return &downTrack{
		sub:      sub,
		t:        t,
		kind:     t.kind,
		streamID: streamID,
		rw:       newRewriter(t.codec.ClockRate),
		est:      newLossEstimator(t.room.s.p.Estimator),
		ext:      make([]rtp.Extension, 0, 4),
	}
}

// ID implements webrtc.TrackLocal.
func (d *downTrack) ID() string { return d.t.id }

// RID implements webrtc.TrackLocal: subscribers get one stream, no simulcast.
func (d *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (d *downTrack) StreamID() string { return d.streamID }

// Kind implements webrtc.TrackLocal.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.kind }

// Bind implements webrtc.TrackLocal: it picks the subscriber's payload type
// for the track's codec.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	c, ok := matchCodec(d.t.codec, ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("%w: subscriber does not accept %s",
			ErrUnsupportedCodec, d.t.codec.MimeType)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ws = ctx.WriteStream()
	d.lastAsk = 0 // the first packet forwarded asks for a keyframe at once
	d.ssrc = uint32(ctx.SSRC())
	d.pt = uint8(c.PayloadType)
	for _, e := range ctx.HeaderExtensions() {
		if strings.EqualFold(e.URI, AudioLevelURI) && e.ID > 0 && e.ID < 15 {
			d.levelExt = uint8(e.ID)
		}
	}
	return c, nil
}

// Unbind implements webrtc.TrackLocal.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ws = nil
	return nil
}

// matchCodec finds want among a subscriber's codecs: same MIME type and, for
// H.264, the same packetization mode and profile, else the first codec with
// the same MIME type.
func matchCodec(want webrtc.RTPCodecParameters, have []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	var partial *webrtc.RTPCodecParameters
	for i := range have {
		c := &have[i]
		if !strings.EqualFold(c.MimeType, want.MimeType) {
			continue
		}
		if !strings.EqualFold(want.MimeType, webrtc.MimeTypeH264) ||
			(fmtpParam(c.SDPFmtpLine, "packetization-mode") == fmtpParam(want.SDPFmtpLine, "packetization-mode") &&
				profileMatches(fmtpParam(c.SDPFmtpLine, "profile-level-id"), fmtpParam(want.SDPFmtpLine, "profile-level-id"))) {
			return *c, true
		}
		if partial == nil {
			partial = c
		}
	}
	if partial != nil && fmtpParam(partial.SDPFmtpLine, "packetization-mode") == fmtpParam(want.SDPFmtpLine, "packetization-mode") {
		return *partial, true
	}
	return webrtc.RTPCodecParameters{}, false
}

// fmtpParam returns the value of key in an fmtp line ("" if absent).
func fmtpParam(fmtp, key string) string {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// profileMatches compares the profile_idc and constraint bytes of two H.264
// profile-level-ids (the level may differ).
func profileMatches(a, b string) bool {
	if len(a) < 4 || len(b) < 4 {
		return a == b
	}
	return strings.EqualFold(a[:4], b[:4])
}

// forward sends pkt, received on layer l, to the subscriber if l is the
// layer it should get. keyStart says pkt starts a keyframe. It reports
// whether the packet was sent. Called from layer read goroutines.
func (d *downTrack) forward(l *layer, pkt *rtp.Packet, keyStart bool, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ws == nil || !d.ready {
		return false
	}
	if l != d.cur {
		if l != d.target {
			return false
		}
		if !keyStart {
			// Keep the old layer until the new one sends a keyframe.
			var curLast int64
			if d.cur != nil {
				curLast = d.cur.lastRTP.Load()
			}
			if keyframeAskDue(now, d.lastAsk, curLast) {
				d.lastAsk = now
				sent := l.requestKeyframe(now, reasonSwitch)
				d.sub.log.Debug("keyframe asked again", "track", d.t.id, "rid", l.rid, "sent", sent, "waiting", time.Duration(now-d.waitFrom).Round(time.Millisecond).String())
			}
			return false
		}
		from := "none"
		if d.cur != nil {
			from = d.cur.rid
		}
		d.sub.log.Debug("layer switched", "track", d.t.id, "from", from, "to", l.rid, "waited", time.Duration(now-d.waitFrom).Round(time.Millisecond).String())
		d.waitFrom = 0
		d.cur = l
	}
	seq, ts, ok := d.rw.rewrite(l.src, pkt.SequenceNumber, pkt.Timestamp, now)
	if !ok {
		return false
	}
	h := &d.hdr
	*h = pkt.Header
	h.SSRC = d.ssrc
	h.PayloadType = d.pt
	h.SequenceNumber = seq
	h.Timestamp = ts
	// The publisher's extension ids mean nothing to the subscriber; pion's
	// interceptors add the ones negotiated with it.
	h.Extension = false
	h.Extensions = d.ext[:0]
	if d.levelExt != 0 && l.levelExt != 0 {
		if v := pkt.Header.GetExtension(l.levelExt); len(v) > 0 {
			_ = h.SetExtension(d.levelExt, v)
		}
	}
	if pkt.Header.PaddingSize == 0 && pkt.PaddingSize != 0 {
		h.PaddingSize = pkt.PaddingSize
	}
	_, err := d.ws.WriteRTP(h, pkt.Payload)
	if cap(h.Extensions) > cap(d.ext) {
		d.ext = h.Extensions[:0]
	}
	h.Extensions = nil
	return err == nil
}

// setReady starts forwarding once the subscriber is connected, from a
// keyframe: packets written before would be dropped by pion.
func (d *downTrack) setReady(now time.Time) {
	d.mu.Lock()
	if d.ready { // connected again after a disconnection: carry on
		d.mu.Unlock()
		return
	}
	d.ready = true
	d.cur = nil
	d.mu.Unlock()
	d.reselect(now, true)
}

// setPinned selects layer rid ("" for automatic selection).
func (d *downTrack) setPinned(rid string, now time.Time) error {
	if d.kind != webrtc.RTPCodecTypeVideo {
		return nil
	}
	if rid != "" {
		known := false
		for _, l := range *d.t.layers.Load() {
			known = known || l.rid == rid
		}
		if !known {
			return fmt.Errorf("%w: %q", ErrUnknownLayer, rid)
		}
	}
	d.mu.Lock()
	d.pinned = rid
	d.mu.Unlock()
	d.reselect(now, false)
	return nil
}

// reselect chooses the target layer: the pinned one if published, else by
// the bandwidth estimate. A new target gets a keyframe request; force
// requests one even if the target is unchanged (a subscriber joining).
func (d *downTrack) reselect(now time.Time, force bool) {
	layers := *d.t.layers.Load()
	d.mu.Lock()
	defer d.mu.Unlock()
	var next *layer
	switch {
	case d.off:
		d.target, d.cur = nil, nil
		return
	case len(layers) == 0:
		next = nil
	case d.pinned == "" && d.alloc != "":
		next = allocLayer(layers, d.alloc)
	case len(layers) == 1:
		next = layers[0]
	default:
		for _, l := range layers {
			if d.pinned != "" && l.rid == d.pinned {
				next = l
			}
		}
		if next == nil {
			next = d.autoLayer(layers, now)
		}
	}
	if next == nil {
		d.target = nil
		return
	}
	if next == d.target && !force {
		return
	}
	d.target = next
	if next != d.cur || force {
		ns := now.UnixNano()
		d.lastAsk = ns
		d.waitFrom = ns
		sent := next.requestKeyframe(ns, reasonJoin)
		from := "none"
		if d.cur != nil {
			from = d.cur.rid
		}
		d.sub.log.Debug("waiting for a keyframe", "track", d.t.id, "from", from, "to", next.rid, "asked", sent, "flowing", next.flowing(ns))
	}
}

// allocLayer returns the layer a call's allocator chose (rid), or the
// nearest call layer below it when that one is not received, or the lowest
// there is.
func allocLayer(layers []*layer, rid string) *layer {
	want := rankOf(rid)
	var best, low *layer
	for _, l := range layers {
		r := rankOf(l.rid)
		if r < 0 {
			continue
		}
		if r <= want && (best == nil || r > rankOf(best.rid)) {
			best = l
		}
		if low == nil || r < rankOf(low.rid) {
			low = l
		}
	}
	switch {
	case best != nil:
		return best
	case low != nil:
		return low
	}
	return layers[0] // no simulcast
}

// autoLayer picks a layer by bandwidth estimate. Called with d.mu held.
func (d *downTrack) autoLayer(layers []*layer, now time.Time) *layer {
	// Order by measured bitrate; unmeasured layers keep offer order.
	var buf [8]*layer
	sorted := append(buf[:0], layers...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j].bitrate.Load() < sorted[j-1].bitrate.Load(); j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	var rates [8]uint64
	br := rates[:0]
	current := -1
	known := false
	for i, l := range sorted {
		r := l.bitrate.Load()
		known = known || r > 0
		br = append(br, r)
		if l == d.target {
			current = i
		}
	}
	if !known {
		if d.target != nil && current >= 0 {
			return d.target
		}
		return layers[0]
	}
	i := selectLayer(br, current, d.est.value(now), d.t.room.s.p.Layers)
	if i < 0 {
		return layers[0]
	}
	return sorted[i]
}

// setAlloc sets the layer a call's allocator chose (rid; "" for the
// automatic choice) and whether the track is shown at all.
func (d *downTrack) setAlloc(rid string, off bool, now time.Time) {
	d.mu.Lock()
	same := d.alloc == rid && d.off == off
	d.alloc, d.off = rid, off
	d.mu.Unlock()
	if !same {
		d.reselect(now, false)
	}
}

// wanted returns the layer this subscriber is forwarded or waits for
// (nil for none).
func (d *downTrack) wanted() (cur, target *layer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur, d.target
}

// rtcpLoop reads the subscriber's RTCP for this track: keyframe requests
// go to the publisher, receiver reports and REMB feed the estimate.
func (d *downTrack) rtcpLoop(sender *webrtc.RTPSender) {
	s := d.t.room.s
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		now := s.now()
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.mu.Lock()
				l := d.cur
				if l == nil {
					l = d.target
				}
				d.mu.Unlock()
				if l != nil {
					l.requestKeyframe(now.UnixNano(), reasonSubscriber)
				}
			case *rtcp.ReceiverReport:
				for _, rr := range p.Reports {
					if rr.SSRC == d.ssrcLocked() {
						d.mu.Lock()
						d.est.onLoss(rr.FractionLost)
						d.mu.Unlock()
						d.reselect(now, false)
					}
				}
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				d.mu.Lock()
				d.est.onREMB(uint64(p.Bitrate), now)
				d.mu.Unlock()
				d.reselect(now, false)
			}
		}
	}
}

func (d *downTrack) ssrcLocked() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ssrc
}
