package ingest

import (
	"bytes"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/sfu"
)

// packetize turns the demo clip's video into RTP packets with pion's H.264
// payloader, as a WebRTC publisher would, starting near a timestamp wrap.
func packetizeVideo(t *testing.T) ([]*rtp.Packet, [][][]byte) {
	t.Helper()
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	p := rtp.NewPacketizer(1200, 96, 0x1234, &codecs.H264Payloader{}, rtp.NewFixedSequencer(65000), 90000)
	var pkts []*rtp.Packet
	var want [][][]byte
	const start = uint32(0xffffffff - 90000) // wraps after one second
	for _, au := range clip.VideoUnits {
		// The clip's keyframes carry SPS and PPS in-band, as WebRTC encoders' do.
		annexB := avc.ConvertSampleToByteStream(bytes.Clone(au.Data))
		ts := start + uint32((au.DTS*90000+time.Second/2)/time.Second)
		for _, q := range p.Packetize(annexB, 0) {
			q.Timestamp = ts
			pkts = append(pkts, q)
		}
		want = append(want, avc.ExtractNalusFromByteStream(annexB))
	}
	return pkts, want
}

func nalus(b []byte) [][]byte { return avc.ExtractNalusFromByteStream(b) }

func sameNALUs(a, b [][]byte) bool {
	var fa, fb [][]byte
	for _, n := range a {
		if len(n) > 0 && n[0]&0x1f != 9 { // AUDs are not carried
			fa = append(fa, n)
		}
	}
	for _, n := range b {
		if len(n) > 0 && n[0]&0x1f != 9 {
			fb = append(fb, n)
		}
	}
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if !bytes.Equal(fa[i], fb[i]) {
			return false
		}
	}
	return true
}

func TestAssemblerInOrderAndReordered(t *testing.T) {
	pkts, want := packetizeVideo(t)
	rng := rand.New(rand.NewPCG(1, 2))
	shuffled := append([]*rtp.Packet(nil), pkts...)
	// Jitter: reorder within runs of 8 (not the first run: the builder anchors
	// on the first packet it sees).
	for i := 8; i+8 <= len(shuffled); i += 8 {
		rng.Shuffle(8, func(a, b int) { shuffled[i+a], shuffled[i+b] = shuffled[i+b], shuffled[i+a] })
	}
	for name, in := range map[string][]*rtp.Packet{"in order": pkts, "reordered": shuffled} {
		a := newAssembler(media.CodecH264, 90000)
		var got []rtpFrame
		for _, p := range in {
			got = append(got, a.push(p)...)
		}
		// The last frame waits for a successor; all others come out intact.
		if len(got) != len(want)-1 {
			t.Fatalf("%s: %d frames, want %d", name, len(got), len(want)-1)
		}
		for i, f := range got {
			if !sameNALUs(nalus(f.data), want[i]) {
				t.Fatalf("%s: frame %d differs", name, i)
			}
			if f.keyframe != (i%30 == 0) || f.lost {
				t.Errorf("%s: frame %d keyframe=%v lost=%v", name, i, f.keyframe, f.lost)
			}
			if i > 0 && f.ts-got[i-1].ts != 3000 {
				t.Fatalf("%s: frame %d at %d, previous at %d", name, i, f.ts, got[i-1].ts)
			}
		}
	}
}

func TestAssemblerLoss(t *testing.T) {
	pkts, _ := packetizeVideo(t)
	a := newAssembler(media.CodecH264, 90000)
	var got []rtpFrame
	for i, p := range pkts {
		if i == 100 { // lose one packet
			continue
		}
		got = append(got, a.push(p)...)
	}
	lost := 0
	for _, f := range got {
		if f.lost {
			lost++
		}
	}
	if lost != 1 {
		t.Errorf("%d frames flagged after a loss, want 1", lost)
	}
}

func TestUnwrap(t *testing.T) {
	var u unwrapper
	const top = int64(1) << 32
	cases := []struct {
		in   uint32
		want int64
	}{
		{0xfffffff0, 0xfffffff0},
		{0xfffffffa, 0xfffffffa},
		{5, top + 5},
		{0xfffffff8, 0xfffffff8}, // reordered from before the wrap
		{20, top + 20},
		{0x80000010, top + 0x80000010},
		{0xf0000000, top + 0xf0000000},
		{30, 2*top + 30},
	}
	for _, c := range cases {
		if got := u.unwrap(c.in); got != c.want {
			t.Errorf("unwrap(%#x) = %#x, want %#x", c.in, got, c.want)
		}
	}
}

func TestClockMap(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := clockMap{rate: 90000}
	m.sender(900000, base)
	if got := m.wall(900000 + 45000); !got.Equal(base.Add(500 * time.Millisecond)) {
		t.Errorf("wall = %v", got)
	}
	if got := m.wall(900000 - 3000); !got.Equal(base.Add(-time.Second / 30)) {
		t.Errorf("wall before the report = %v", got)
	}
	// NTP: 2026-01-01 is 3976214400 s after 1900; half a second in the fraction.
	if got := ntpTime(uint64(3976214400)<<32 | 1<<31); !got.Equal(base.Add(500 * time.Millisecond)) {
		t.Errorf("ntpTime = %v", got)
	}
}

func TestKeyframePlanner(t *testing.T) {
	const chunk = 250 * time.Millisecond
	k := newKeyframePlanner(2*time.Second, chunk, 50*time.Millisecond, 125*time.Millisecond)
	if ok, hold := k.due(0); !ok || hold != 0 {
		t.Fatalf("start: request %v, hold %v (want an urgent request)", ok, hold)
	}
	if ok, _ := k.due(100 * time.Millisecond); ok {
		t.Error("request repeated within a second")
	}
	k.keyframe(180 * time.Millisecond) // latency 180 ms: smoothed 100→120 ms
	if k.latency != 120*time.Millisecond {
		t.Errorf("latency %v", k.latency)
	}
	// Next aim: boundary 2.25 s (the first ≥ 0.18+2), window centre
	// 2.25+(0.125−0.05)/2 = 2.2875 s; ask 120 ms of latency before it.
	if ok, _ := k.due(2167 * time.Millisecond); ok {
		t.Error("asked too early")
	}
	if ok, hold := k.due(2168 * time.Millisecond); !ok || hold != 2375*time.Millisecond {
		t.Errorf("at the planned time: request %v, hold until %v", ok, hold)
	}
	k.keyframe(2290 * time.Millisecond)
	k.needKeyframe()
	if ok, hold := k.due(2300 * time.Millisecond); !ok || hold != 0 {
		t.Error("loss did not trigger an immediate request")
	}
}

func TestClockMapIgnoresJitter(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := clockMap{rate: 90000}
	m.sender(0, base)
	m.sender(90000, base.Add(time.Second+time.Millisecond)) // 1 ms of report jitter: ignored
	if got := m.wall(180000); !got.Equal(base.Add(2 * time.Second)) {
		t.Errorf("jitter moved the mapping: %v", got)
	}
	m.sender(180000, base.Add(2*time.Second+20*time.Millisecond)) // a real step: followed
	if got := m.wall(180000); !got.Equal(base.Add(2*time.Second + 20*time.Millisecond)) {
		t.Errorf("step not followed: %v", got)
	}
}

// A layer of a codec ingest does not take (VP8 in a call room, say) is
// remembered and ignored: no panic on its packets or sender reports.
func TestBroadcastIgnoresOtherCodecs(t *testing.T) {
	pipe, err := NewPipeline(PipelineParams{Stream: "s", Key: ed25519.NewKeyFromSeed(make([]byte, 32)), Publish: func(chunker.Output) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBroadcast(BroadcastParams{Pipeline: pipe})
	if err != nil {
		t.Fatal(err)
	}
	info := sfu.TrackInfo{ID: "video", MimeType: "video/VP8", SSRC: 7, ClockRate: 90000}
	b.handle(event{kind: evTrack, info: info})
	for i := 0; i < 3; i++ {
		b.handle(event{kind: evRTP, info: info, pkt: &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), SSRC: 7}, Payload: []byte{1, 2, 3}}})
		b.handle(event{kind: evSR, info: info, sr: rtcp.SenderReport{SSRC: 7}})
	}
	if l := b.layers[7]; l == nil || l.codec != "" {
		t.Errorf("layer %+v", l)
	}
}

// TestBroadcastResumeKeepsPace: a publisher vanishes without leaving (a
// killed encoder), and another takes the stream over and sends its first
// frame a while later, after connecting. Media time resumes where the wall
// clock says, not where the first publisher stopped: viewers play on a
// clock of media time, and chunks behind it would all be late.
func TestBroadcastResumeKeepsPace(t *testing.T) {
	var entries []manifest.Entry
	pipe, err := NewPipeline(PipelineParams{Stream: "s", Key: ed25519.NewKeyFromSeed(make([]byte, 32)), Publish: func(o chunker.Output) error {
		for _, e := range o.Batch.Entries {
			if e.Kind == manifest.KindChunk {
				entries = append(entries, e)
			}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := start
	b, err := NewBroadcast(BroadcastParams{Pipeline: pipe, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	const frame = 20 * time.Millisecond
	// session sends Opus frames (20 ms each) from from for dur, with a
	// sender report every half second mapping its RTP time to the wall.
	session := func(pub string, ssrc uint32, joined, from time.Time, dur time.Duration) {
		now = joined
		b.handle(event{kind: evPublisher, pub: sfu.PublisherEvent{PublisherID: pub, Joined: true}, at: now})
		info := sfu.TrackInfo{ID: "audio", PublisherID: pub, MimeType: "audio/opus", SSRC: ssrc, ClockRate: 48000, Channels: 2}
		for i := range int(dur / frame) {
			now = from.Add(time.Duration(i) * frame)
			ts := uint32(1000 + i*960)
			if i%25 == 0 {
				secs := uint64(now.Unix() + 2208988800)
				frac := uint64(now.Nanosecond()) << 32 / 1e9
				b.handle(event{kind: evSR, info: info, sr: rtcp.SenderReport{SSRC: ssrc, RTPTime: ts, NTPTime: secs<<32 | frac}, at: now})
			}
			pkt := &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: ts, SSRC: ssrc, Marker: true}, Payload: []byte{0xfc, 0xff, 0xfe}}
			b.handle(event{kind: evRTP, info: info, pkt: pkt, at: now})
		}
	}
	session("a", 1, start, start, 2*time.Second)
	// "a" is never heard of again; "b" joins 5 s later and its first frame
	// comes 800 ms after that.
	resumedAt := start.Add(7*time.Second + 800*time.Millisecond)
	session("b", 2, start.Add(7*time.Second), resumedAt, 2*time.Second)
	pipe.Close()

	var first *manifest.Entry
	for i := range entries {
		if entries[i].Discontinuity {
			first = &entries[i]
			break
		}
	}
	if first == nil {
		t.Fatalf("no discontinuity in %d chunks", len(entries))
	}
	// The stream's media time 0 was at start: the resumed media should sit
	// at its wall-clock place, within a chunk (its start is rounded up to
	// a chunk boundary).
	want := resumedAt.Sub(start)
	if d := first.MediaTime - want; d < 0 || d > manifest.DefaultChunkDuration {
		t.Errorf("resumed at media time %v, want %v (+ up to a chunk)", first.MediaTime, want)
	}
}
