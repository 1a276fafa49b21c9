package media

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
)

func demoClip(t testing.TB) *Clip {
	t.Helper()
	c, err := DemoClip()
	if err != nil {
		t.Fatalf("DemoClip: %v", err)
	}
	return c
}

func TestDemoClip(t *testing.T) {
	c := demoClip(t)
	if c.Duration != 10*time.Second {
		t.Errorf("Duration = %v, want 10s", c.Duration)
	}

	v := c.Video
	if v == nil || v.Codec != CodecH264 || v.Format != AVCC || v.Width != 640 || v.Height != 360 ||
		len(v.SPS) != 1 || len(v.PPS) != 1 {
		t.Fatalf("video track = %+v", v)
	}
	if len(c.VideoUnits) != 300 {
		t.Fatalf("%d video units, want 300", len(c.VideoUnits))
	}
	for i, u := range c.VideoUnits {
		want := time.Duration(i) * time.Second / 30
		if u.DTS != want || u.PTS != want {
			t.Errorf("video %d: DTS %v PTS %v, want %v", i, u.DTS, u.PTS, want)
		}
		if key := i%30 == 0; u.Keyframe != key {
			t.Errorf("video %d: Keyframe = %v, want %v", i, u.Keyframe, key)
		}
	}
	for s := 0; s < 10; s++ {
		if u := c.VideoUnits[30*s]; u.DTS != time.Duration(s)*time.Second {
			t.Errorf("keyframe %d at %v", s, u.DTS)
		}
	}

	a := c.Audio
	if a == nil || a.Codec != CodecOpus || a.SampleRate != 48000 || a.Channels != 2 || a.PreSkip != 312 {
		t.Fatalf("audio track = %+v", a)
	}
	if len(c.AudioUnits) != 500 {
		t.Fatalf("%d audio units, want 500", len(c.AudioUnits))
	}
	for i, u := range c.AudioUnits {
		want := time.Duration(i) * 20 * time.Millisecond
		if u.DTS != want || u.PTS != want || !u.Keyframe || len(u.Data) == 0 {
			t.Errorf("audio %d: DTS %v PTS %v key %v len %d, want at %v", i, u.DTS, u.PTS, u.Keyframe, len(u.Data), want)
		}
		if d := opusPacketDuration(u.Data); d != 20*time.Millisecond {
			t.Errorf("audio %d: packet lasts %v, want 20ms", i, d)
		}
	}

	again, _ := DemoClip()
	if again != c {
		t.Error("DemoClip parsed twice")
	}
}

// opusPacketDuration reads an Opus packet's duration from its TOC byte
// (RFC 6716 section 3.1); 0 if the packet is malformed.
func opusPacketDuration(packet []byte) time.Duration {
	if len(packet) == 0 {
		return 0
	}
	config := packet[0] >> 3
	var frame time.Duration
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = []time.Duration{10, 20, 40, 60}[config%4] * time.Millisecond
	case config < 16: // hybrid: 10, 20 ms
		frame = []time.Duration{10, 20}[config%2] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []time.Duration{2500, 5000, 10000, 20000}[config%4] * time.Microsecond
	}
	switch packet[0] & 3 {
	case 0:
		return frame
	case 1, 2:
		return 2 * frame
	default:
		if len(packet) < 2 {
			return 0
		}
		return time.Duration(packet[1]&0x3f) * frame
	}
}

// TestDemoVideoNALUs checks that the AVCC samples split into NAL units that
// hold slices, and that the in-band parameter sets match the avcC ones.
func TestDemoVideoNALUs(t *testing.T) {
	c := demoClip(t)
	sps, err := avc.ParseSPSNALUnit(c.Video.SPS[0], false)
	if err != nil {
		t.Fatalf("ParseSPSNALUnit: %v", err)
	}
	if sps.Width != 640 || sps.Height != 360 || sps.Profile != 66 {
		t.Errorf("SPS: %dx%d profile %d", sps.Width, sps.Height, sps.Profile)
	}
	for i, u := range c.VideoUnits {
		nalus, err := avc.GetNalusFromSample(u.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var slices, idr int
		for _, n := range nalus {
			switch avc.GetNaluType(n[0]) {
			case avc.NALU_NON_IDR:
				slices++
			case avc.NALU_IDR:
				slices++
				idr++
			case avc.NALU_SPS:
				if !bytes.Equal(n, c.Video.SPS[0]) {
					t.Errorf("frame %d: in-band SPS differs from avcC", i)
				}
			}
		}
		if slices == 0 {
			t.Errorf("frame %d: no slice NAL unit", i)
		}
		if (idr > 0) != u.Keyframe {
			t.Errorf("frame %d: %d IDR slices, Keyframe %v", i, idr, u.Keyframe)
		}
	}
}

// TestReadFragmented writes the demo clip as a fragmented MP4 with mp4ff and
// reads it back.
func TestReadFragmented(t *testing.T) {
	want := demoClip(t)
	got, err := ReadMP4(fragment(t, want))
	if err != nil {
		t.Fatalf("ReadMP4: %v", err)
	}
	if got.Duration != want.Duration {
		t.Errorf("Duration = %v, want %v", got.Duration, want.Duration)
	}
	if got.Video.Width != 640 || got.Video.Height != 360 || got.Audio.PreSkip != 312 || got.Audio.Channels != 2 {
		t.Errorf("tracks = %+v, %+v", got.Video, got.Audio)
	}
	compare := func(kind Kind, got, want []AccessUnit) {
		if len(got) != len(want) {
			t.Fatalf("%s: %d units, want %d", kind, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.DTS != w.DTS || g.PTS != w.PTS || g.Keyframe != w.Keyframe || !bytes.Equal(g.Data, w.Data) {
				t.Fatalf("%s %d: got %v/%v/%v, want %v/%v/%v", kind, i, g.DTS, g.PTS, g.Keyframe, w.DTS, w.PTS, w.Keyframe)
			}
		}
	}
	compare(KindVideo, got.VideoUnits, want.VideoUnits)
	compare(KindAudio, got.AudioUnits, want.AudioUnits)
}

// fragment writes c as a fragmented MP4 with one-second fragments holding
// both tracks.
func fragment(t testing.TB, c *Clip) []byte {
	t.Helper()
	const videoScale, audioScale = 90000, 48000
	init := mp4.CreateEmptyInit()
	vtrak := init.AddEmptyTrack(videoScale, "video", "und")
	if err := vtrak.SetAVCDescriptor("avc1", c.Video.SPS, c.Video.PPS, true); err != nil {
		t.Fatal(err)
	}
	atrak := init.AddEmptyTrack(audioScale, "audio", "und")
	dops := &mp4.DopsBox{OutputChannelCount: 2, PreSkip: c.Audio.PreSkip, InputSampleRate: 48000}
	atrak.Mdia.Minf.Stbl.Stsd.AddChild(mp4.CreateAudioSampleEntryBox("Opus", 2, 16, 48000, dops))

	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	ticks := func(d time.Duration, scale int64) uint64 {
		return uint64((int64(d)*scale + int64(time.Second)/2) / int64(time.Second))
	}
	add := func(frag *mp4.Fragment, trackID uint32, units []AccessUnit, i int, scale int64) {
		u := units[i]
		end := c.Duration
		if i+1 < len(units) {
			end = units[i+1].DTS
		}
		flags := mp4.NonSyncSampleFlags
		if u.Keyframe {
			flags = mp4.SyncSampleFlags
		}
		dts := ticks(u.DTS, scale)
		s := mp4.FullSample{
			Sample:     mp4.NewSample(flags, uint32(ticks(end, scale)-dts), uint32(len(u.Data)), int32(ticks(u.PTS, scale)-dts)),
			DecodeTime: dts,
			Data:       u.Data,
		}
		if err := frag.AddFullSampleToTrack(s, trackID); err != nil {
			t.Fatal(err)
		}
	}
	var vi, ai int
	for sec := 1; vi < len(c.VideoUnits) || ai < len(c.AudioUnits); sec++ {
		frag, err := mp4.CreateMultiTrackFragment(uint32(sec), []uint32{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		limit := time.Duration(sec) * time.Second
		for ; vi < len(c.VideoUnits) && c.VideoUnits[vi].DTS < limit; vi++ {
			add(frag, 1, c.VideoUnits, vi, videoScale)
		}
		for ; ai < len(c.AudioUnits) && c.AudioUnits[ai].DTS < limit; ai++ {
			add(frag, 2, c.AudioUnits, ai, audioScale)
		}
		if err := frag.Encode(&buf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestReadMP4Malformed(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	cases := map[string][]byte{
		"nil":         nil,
		"empty":       {},
		"random":      random,
		"box header":  demoMP4[:8],
		"ftyp only":   demoMP4[:32],
		"no mdat":     demoMP4[:9400],
		"half":        demoMP4[:len(demoMP4)/2],
		"last byte":   demoMP4[:len(demoMP4)-1],
		"huge box":    {0xff, 0xff, 0xff, 0xff, 'm', 'o', 'o', 'v'},
		"random tail": append(append([]byte{}, demoMP4[:5000]...), random...),
	}
	for _, n := range []int{1, 100, 1000, 5000, 9000, 20000, 300000} {
		cases[fmt.Sprintf("truncated %d", n)] = demoMP4[:n]
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ReadMP4(data)
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoTracks) {
				t.Errorf("ReadMP4(%d bytes) = %v, want ErrMalformed or ErrNoTracks", len(data), err)
			}
		})
	}
}

func TestReadMP4TooLarge(t *testing.T) {
	_, err := ReadMP4(make([]byte, MaxMP4Size+1))
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("err = %v, want ErrMalformed", err)
	}
}

func TestReadMP4Unsupported(t *testing.T) {
	init := mp4.CreateEmptyInit()
	trak := init.AddEmptyTrack(48000, "audio", "und")
	if err := trak.SetAACDescriptor(2, 48000); err != nil { // AAC-LC
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	_, err := ReadMP4(buf.Bytes())
	if !errors.Is(err, ErrUnsupportedCodec) || !errors.Is(err, ErrNoTracks) {
		t.Errorf("err = %v, want ErrNoTracks and ErrUnsupportedCodec", err)
	}
}

func TestTicksToDuration(t *testing.T) {
	cases := []struct {
		ticks int64
		scale uint32
		want  time.Duration
	}{
		{512, 15360, 33333333},
		{153600, 15360, 10 * time.Second},
		{960, 48000, 20 * time.Millisecond},
		{-312, 48000, -6500 * time.Microsecond},
		{3003, 90000, 33366666},
	}
	for _, c := range cases {
		if got, err := ticksToDuration(c.ticks, c.scale); err != nil || got != c.want {
			t.Errorf("ticksToDuration(%d, %d) = %v, %v; want %v", c.ticks, c.scale, got, err, c.want)
		}
	}
	if _, err := ticksToDuration(1<<62, 1); !errors.Is(err, ErrMalformed) {
		t.Errorf("huge time: err = %v", err)
	}
}

func readShort(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/short.mp4")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReadShort reads the first 0.1 s of the demo clip, cut by ffmpeg.
func TestReadShort(t *testing.T) {
	c, err := ReadMP4(readShort(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration != 100*time.Millisecond || len(c.VideoUnits) != 3 || len(c.AudioUnits) != 5 {
		t.Errorf("Duration %v, %d video and %d audio units; want 100ms, 3 and 5",
			c.Duration, len(c.VideoUnits), len(c.AudioUnits))
	}
}

func FuzzReadMP4(f *testing.F) {
	// Seeds: a 0.1 s cut of the demo clip (progressive and fragmented) and
	// truncations. The whole 680 kB clip would make a poor seed: each new
	// mutant of it takes the fuzzer up to a minute to minimize.
	short := readShort(f)
	shortClip, err := ReadMP4(short)
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []int{len(short), len(short) - 1, len(short) / 2, 2000, 1000, 100, 32, 8, 0} {
		f.Add(short[:n])
	}
	f.Add(fragment(f, shortClip))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ReadMP4(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoTracks) && !errors.Is(err, ErrUnsupportedCodec) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if c.Duration <= 0 || (c.Video == nil && c.Audio == nil) {
			t.Fatalf("bad clip: %+v", c)
		}
		if _, err := NewLoop(LoopParams{Clip: c}); err != nil {
			t.Fatalf("clip not loopable: %v", err)
		}
	})
}

func BenchmarkReadMP4(b *testing.B) {
	b.SetBytes(int64(len(demoMP4)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadMP4(demoMP4); err != nil {
			b.Fatal(err)
		}
	}
}
