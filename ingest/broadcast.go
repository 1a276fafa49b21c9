package ingest

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/sfu"
)

// BroadcastParams configures a Broadcast.
type BroadcastParams struct {
	Pipeline *Pipeline // the stream's chunker; outlives publisher sessions
	// GOP is the longest the publisher may go without a keyframe before
	// ingest asks for one (default 2 s).
	GOP    time.Duration
	Now    func() time.Time // receiver wall clock; nil means time.Now
	Logger *slog.Logger
	// QueueLen bounds the events waiting for the ingest goroutine (default
	// 8192); past it packets are dropped and counted, never blocking the SFU.
	QueueLen int
}

// srWait is how long frames wait for their track's first RTCP sender report
// before ingest falls back to arrival times for A/V sync.
const srWait = time.Second

// Broadcast taps a broadcast room of the SFU (it implements sfu.Tap) and turns
// its RTP into access units for the stream's pipeline: one rendition per
// simulcast layer plus audio. It keeps the stream's timeline, chunk sequence
// and signing key across publisher reconnects: a new session continues where
// the old one stopped, plus the time the stream was away, and its first units
// are marked discontinuous.
//
// The tap callbacks only copy into a queue; Run does the work on its own
// goroutine so that the SFU's forwarding never waits for muxing or signing.
type Broadcast struct {
	p      BroadcastParams
	log    *slog.Logger
	events chan event

	mu      sync.Mutex
	keyReq  func(trackID, rid string)
	dropped int

	// Owned by Run.
	layers    map[uint32]*layer // by SSRC
	epoch     time.Time         // sender wall time of the session's media time offset
	haveEpoch bool
	offset    time.Duration // media time at the session's epoch
	lastDTS   time.Duration // newest media time pushed
	lastAt    time.Time     // when the frame of lastDTS arrived
	// resume: a new session began after media was pushed; its first frame
	// sets offset, so that media time keeps pace with the wall clock
	// across the time away.
	resume bool
	// skew is the largest (sender wall time − arrival time) seen on a track
	// synced by sender reports: the sender's clock offset less the smallest
	// path delay. A track without reports is synced on arrival + skew.
	skew     time.Duration
	haveSkew bool
}

type eventKind int

const (
	evTrack eventKind = iota
	evRTP
	evSR
	evEnded
	evPublisher
)

type event struct {
	kind eventKind
	info sfu.TrackInfo
	pkt  *rtp.Packet
	sr   rtcp.SenderReport
	pub  sfu.PublisherEvent
	at   time.Time
}

// layer is one received RTP stream: a rendition of the current session.
type layer struct {
	info      sfu.TrackInfo
	rendition string
	codec     media.Codec
	asm       *assembler
	clk       clockMap
	queue     []heldFrame // frames waiting for the first sender report
	needKey   bool        // video: dropping until a keyframe
	discont   bool        // mark the next unit pushed
	planner   *keyframePlanner
	firstSeen time.Time
}

type heldFrame struct {
	f  rtpFrame
	at time.Time
}

// NewBroadcast returns a Broadcast; call Run to process what the tap receives.
func NewBroadcast(p BroadcastParams) (*Broadcast, error) {
	if p.Pipeline == nil {
		return nil, errors.New("ingest: BroadcastParams.Pipeline is required")
	}
	if p.GOP <= 0 {
		p.GOP = 2 * time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.QueueLen <= 0 {
		p.QueueLen = 8192
	}
	return &Broadcast{
		p: p, log: p.Logger.With("stream", p.Pipeline.p.Stream),
		events: make(chan event, p.QueueLen), layers: map[uint32]*layer{},
	}, nil
}

// SetKeyframeRequester sets how ingest asks the publisher for a keyframe
// (sfu.Room.RequestKeyframe of the room tapped).
func (b *Broadcast) SetKeyframeRequester(f func(trackID, rid string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keyReq = f
}

func (b *Broadcast) enqueue(ev event) {
	select {
	case b.events <- ev:
	default:
		b.mu.Lock()
		b.dropped++
		b.mu.Unlock()
	}
}

// OnTrack implements sfu.Tap.
func (b *Broadcast) OnTrack(t sfu.TrackInfo) { b.enqueue(event{kind: evTrack, info: t, at: b.p.Now()}) }

// OnRTP implements sfu.Tap; it copies the packet.
func (b *Broadcast) OnRTP(t sfu.TrackInfo, pkt *rtp.Packet) {
	b.enqueue(event{kind: evRTP, info: t, pkt: pkt.Clone(), at: b.p.Now()})
}

// OnSenderReport implements sfu.Tap.
func (b *Broadcast) OnSenderReport(t sfu.TrackInfo, sr *rtcp.SenderReport) {
	b.enqueue(event{kind: evSR, info: t, sr: *sr, at: b.p.Now()})
}

// OnTrackEnded implements sfu.Tap.
func (b *Broadcast) OnTrackEnded(t sfu.TrackInfo) {
	b.enqueue(event{kind: evEnded, info: t, at: b.p.Now()})
}

// OnPublisherChange implements sfu.Tap.
func (b *Broadcast) OnPublisherChange(ev sfu.PublisherEvent) {
	b.enqueue(event{kind: evPublisher, pub: ev, at: b.p.Now()})
}

// Run processes the tap's events until ctx ends, then flushes the pipeline.
func (b *Broadcast) Run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	defer b.p.Pipeline.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-b.events:
			b.handle(ev)
		case <-tick.C:
			b.releaseHeld(b.p.Now())
		}
	}
}

func (b *Broadcast) handle(ev event) {
	switch ev.kind {
	case evTrack:
		b.addLayer(ev.info, ev.at)
	case evRTP:
		l := b.layers[ev.info.SSRC]
		if l == nil {
			l = b.addLayer(ev.info, ev.at)
		}
		if l.codec == "" {
			return
		}
		for _, f := range l.asm.push(ev.pkt) {
			l.queue = append(l.queue, heldFrame{f, ev.at})
		}
		b.drain(l, ev.at)
	case evSR:
		if l := b.layers[ev.info.SSRC]; l != nil && l.codec != "" {
			if !l.clk.haveSR {
				b.log.Debug("first sender report", "rendition", l.rendition, "after", ev.at.Sub(l.firstSeen))
			}
			l.clk.sender(l.asm.unwrap.nearest(ev.sr.RTPTime), ntpTime(ev.sr.NTPTime))
			b.drain(l, ev.at)
		}
	case evEnded:
		delete(b.layers, ev.info.SSRC)
	case evPublisher:
		if ev.pub.Joined {
			b.newSession(ev.pub.PublisherID)
		} else {
			b.p.Pipeline.Close() // publish what the publisher sent before leaving
		}
	}
}

// newSession starts a publisher session: its media time continues the
// stream's, plus the time the stream was away, measured when its first
// frame arrives (see pushFrame).
func (b *Broadcast) newSession(publisher string) {
	if b.haveEpoch {
		b.resume = true
	}
	b.haveEpoch = false
	for ssrc, l := range b.layers {
		if l.info.PublisherID != publisher {
			delete(b.layers, ssrc)
		} else {
			l.discont = b.resumed()
		}
	}
}

// resumed reports whether the session is not the stream's first.
func (b *Broadcast) resumed() bool { return b.resume || b.offset > 0 }

func (b *Broadcast) addLayer(t sfu.TrackInfo, at time.Time) *layer {
	l := &layer{info: t, firstSeen: at, discont: b.resumed()}
	switch {
	case strings.EqualFold(t.MimeType, "video/H264"):
		l.codec, l.rendition, l.needKey = media.CodecH264, "v0", true
		if t.RID != "" {
			l.rendition = "v-" + t.RID
		}
		d := b.p.Pipeline.ChunkDuration()
		l.planner = newKeyframePlanner(b.p.GOP, d, d/5, d/2)
	case strings.EqualFold(t.MimeType, "audio/opus"):
		l.codec, l.rendition = media.CodecOpus, "a0"
	default:
		// Remembered with no codec, so that its packets are ignored quietly.
		b.log.Warn("codec not ingested", "mime", t.MimeType, "ssrc", t.SSRC)
		b.layers[t.SSRC] = l
		return l
	}
	l.asm = newAssembler(l.codec, t.ClockRate)
	l.clk.rate = int64(t.ClockRate)
	track := media.Track{Codec: l.codec, Format: media.AnnexB, SampleRate: int(t.ClockRate), Channels: int(t.Channels)}
	// A reconnecting publisher brings its renditions again: keep them.
	if err := b.p.Pipeline.AddRendition(l.rendition, track); err != nil && !errors.Is(err, chunker.ErrDuplicate) {
		b.log.Warn("rendition refused", "rendition", l.rendition, "err", err)
	}
	b.layers[t.SSRC] = l
	return l
}

// releaseHeld gives frames that waited too long for a sender report an
// arrival-time clock, so a publisher that sends none still plays.
func (b *Broadcast) releaseHeld(now time.Time) {
	for _, l := range b.layers {
		if !l.clk.haveSR && len(l.queue) > 0 && now.Sub(l.queue[0].at) >= srWait {
			h := l.queue[0]
			l.clk.sender(h.f.ts, h.at.Add(b.skew)) // skew is 0 when no track has reports
			l.clk.synthetic = true
			b.log.Info("no RTCP sender report yet: syncing on arrival times", "rendition", l.rendition, "skew", b.skew, "skewKnown", b.haveSkew)
			b.drain(l, now)
		}
	}
}

// drain pushes l's held frames once its clock is known.
func (b *Broadcast) drain(l *layer, now time.Time) {
	if !l.clk.haveSR || l.codec == "" {
		return
	}
	for _, h := range l.queue {
		if !l.clk.synthetic {
			if d := l.clk.wall(h.f.ts).Sub(h.at); !b.haveSkew || d > b.skew {
				b.skew, b.haveSkew = d, true
			}
		}
		b.pushFrame(l, h.f, h.at)
	}
	l.queue = l.queue[:0]
}

// pushFrame pushes one frame, which arrived at at.
func (b *Broadcast) pushFrame(l *layer, f rtpFrame, at time.Time) {
	wall := l.clk.wall(f.ts)
	if !b.haveEpoch {
		b.epoch, b.haveEpoch = wall, true
		if b.resume {
			// Start on the chunk boundary after the old session's last
			// media plus the time away, from its last frame's arrival to
			// this one's (connecting and the wait for sender reports
			// included): the slot of the old session's last (flushed)
			// chunk is taken, a boundary start makes the first keyframe
			// independent, and viewers' playback clocks hold.
			d := b.p.Pipeline.ChunkDuration()
			b.offset = (b.lastDTS + max(at.Sub(b.lastAt), time.Millisecond) + d - 1) / d * d
			b.resume = false
		}
	}
	dts := b.offset + wall.Sub(b.epoch)
	if dts < b.offset {
		return // before the session's first frame
	}
	if l.codec == media.CodecH264 {
		if f.lost {
			l.needKey = true
			l.planner.needKeyframe()
		}
		if f.keyframe {
			l.planner.keyframe(dts)
		}
		if ok, hold := l.planner.due(dts); ok {
			b.requestKeyframe(l)
			if hold > 0 {
				b.p.Pipeline.ExpectKeyframe(l.rendition, hold)
			}
		}
		if l.needKey && !f.keyframe {
			return
		}
		if l.needKey {
			l.needKey, l.discont = false, l.discont || f.lost
		}
	} else if f.lost {
		l.discont = true
	}
	au := media.AccessUnit{DTS: dts, PTS: dts, Data: f.data, Keyframe: f.keyframe, Discontinuity: l.discont}
	err := b.p.Pipeline.Push(l.rendition, au)
	if err == nil {
		l.discont = false
		if dts >= b.lastDTS {
			b.lastDTS, b.lastAt = dts, at
		}
	} else if errors.Is(err, chunker.ErrNeedKeyframe) && l.planner != nil {
		l.planner.needKeyframe()
	}
}

func (b *Broadcast) requestKeyframe(l *layer) {
	b.mu.Lock()
	f := b.keyReq
	b.mu.Unlock()
	if f != nil {
		f(l.info.ID, l.info.RID)
	}
}

// Dropped is the number of tap events lost to a full queue.
func (b *Broadcast) Dropped() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
