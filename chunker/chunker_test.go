package chunker

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
)

// fixedClock advances one millisecond per call, so ingest times are distinct
// and deterministic.
func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

type unit struct {
	rendition string
	au        media.AccessUnit
}

func renditionOf(k media.Kind) string {
	if k == media.KindVideo {
		return "v0"
	}
	return "a0"
}

// demoUnits interleaves `loops` repetitions of the demo clip in decode order,
// as a live source would emit them.
func demoUnits(t testing.TB, loops int) (*media.Clip, []unit) {
	t.Helper()
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	var out []unit
	clip.Each(loops, func(k media.Kind, au media.AccessUnit) bool {
		out = append(out, unit{renditionOf(k), au})
		return true
	})
	return clip, out
}

type run struct {
	outs  []Output
	inits map[string][]byte
	data  map[manifest.ID][]byte
	byR   map[string][]manifest.Entry // chunk entries per rendition, in publish order
}

// chunkDemo chunks loops of the demo clip. edit may change or drop units
// (returning false); annexB declares the video rendition as Annex-B without
// out-of-band parameter sets (edit must then convert the units).
// fixtureChunk is the slot length the tests' expectations are worked out
// for (the demo clip's 1 s GOP puts an IDR at the start of every fourth
// slot), whatever the production default.
const fixtureChunk = 250 * time.Millisecond

func chunkDemo(t testing.TB, loops int, d time.Duration, edit func(*unit) bool, annexB bool) *run {
	t.Helper()
	clip, units := demoUnits(t, loops)
	r := &run{inits: map[string][]byte{}, data: map[manifest.ID][]byte{}, byR: map[string][]manifest.Entry{}}
	c, err := New(Params{
		Stream: "demo", ChunkDuration: d, Now: fixedClock(),
		Publish: func(o Output) { r.outs = append(r.outs, o) },
	})
	if err != nil {
		t.Fatal(err)
	}
	vt := *clip.Video
	if annexB {
		vt.Format, vt.SPS, vt.PPS = media.AnnexB, nil, nil
	}
	if err := c.AddRendition("v0", vt); err != nil {
		t.Fatal(err)
	}
	if err := c.AddRendition("a0", *clip.Audio); err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if edit != nil && !edit(&u) {
			continue
		}
		if err := c.Push(u.rendition, u.au); err != nil {
			t.Fatalf("push %s %v: %v", u.rendition, u.au.DTS, err)
		}
	}
	c.Flush()
	for _, o := range r.outs {
		for i, e := range o.Batch.Entries {
			r.data[e.Hash] = o.Data[i]
			if e.Kind == manifest.KindInit {
				r.inits[e.Rendition] = o.Data[i]
			} else {
				r.byR[e.Rendition] = append(r.byR[e.Rendition], e)
			}
		}
	}
	return r
}

// samples decodes a chunk against its init segment with mp4ff.
func samples(t testing.TB, init, chunk []byte) []mp4.FullSample {
	t.Helper()
	f, err := mp4.DecodeFile(bytes.NewReader(append(bytes.Clone(init), chunk...)))
	if err != nil {
		t.Fatalf("decode chunk: %v", err)
	}
	if len(f.Segments) != 1 || len(f.Segments[0].Fragments) != 1 {
		t.Fatalf("chunk is not exactly one fragment")
	}
	fs, err := f.Segments[0].Fragments[0].GetFullSamples(f.Init.Moov.Mvex.Trex)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDemoChunks(t *testing.T) {
	const d = fixtureChunk
	clip, units := demoUnits(t, 2)
	r := chunkDemo(t, 2, d, nil, false)

	frame := map[string]time.Duration{"v0": time.Second / 30, "a0": 20 * time.Millisecond}
	for _, rend := range []string{"v0", "a0"} {
		entries := r.byR[rend]
		if want := int(2 * clip.Duration / d); len(entries) != want {
			t.Fatalf("%s: %d chunks, want %d", rend, len(entries), want)
		}
		nSamples := 0
		for i, e := range entries {
			data := r.data[e.Hash]
			if manifest.Sum(data) != e.Hash || int(e.Size) != len(data) {
				t.Fatalf("%s/%d: hash or size does not match the bytes", rend, e.Seq)
			}
			if e.Seq != uint64(i) {
				t.Fatalf("%s: chunk %d has seq %d", rend, i, e.Seq)
			}
			// Boundaries on the slot grid, within one frame.
			if start := time.Duration(e.Seq) * d; e.MediaTime < start || e.MediaTime >= start+frame[rend] {
				t.Errorf("%s/%d starts at %v, slot starts at %v", rend, e.Seq, e.MediaTime, start)
			}
			if diff := e.Duration - d; diff < -frame[rend] || diff > frame[rend] {
				t.Errorf("%s/%d lasts %v, target %v", rend, e.Seq, e.Duration, d)
			}
			fs := samples(t, r.inits[rend], data)
			nSamples += len(fs)
			var sum uint64
			for _, s := range fs {
				sum += uint64(s.Dur)
			}
			ts := uint64(audioTimescale)
			if rend == "v0" {
				ts = videoTimescale
				// Independent exactly when the chunk starts with an IDR frame; the
				// clip's 1 s GOP puts one at the start of every fourth slot.
				idr := avc.IsIDRSample(fs[0].Data)
				if e.Independent != idr || idr != (e.Seq%4 == 0) {
					t.Errorf("v0/%d: independent=%v, first sample IDR=%v", e.Seq, e.Independent, idr)
				}
			} else if !e.Independent {
				t.Errorf("a0/%d not independent", e.Seq)
			}
			if got := time.Duration(sum * uint64(time.Second) / ts); got-e.Duration > time.Microsecond || e.Duration-got > time.Microsecond {
				t.Errorf("%s/%d: samples last %v, entry says %v", rend, e.Seq, got, e.Duration)
			}
			if want := ticks(e.MediaTime, uint32(ts)); fs[0].DecodeTime != want {
				t.Errorf("%s/%d: tfdt %d, want %d", rend, e.Seq, fs[0].DecodeTime, want)
			}
		}
		want := 0
		for _, u := range units {
			if u.rendition == rend {
				want++
			}
		}
		if nSamples != want {
			t.Errorf("%s: %d samples in chunks, %d pushed", rend, nSamples, want)
		}
	}
	// Aligned: chunk n of audio and video start within one video frame.
	for i, v := range r.byR["v0"] {
		a := r.byR["a0"][i]
		if diff := v.MediaTime - a.MediaTime; diff < -frame["v0"] || diff > frame["v0"] {
			t.Errorf("slot %d: video starts %v, audio %v", v.Seq, v.MediaTime, a.MediaTime)
		}
	}
}

func TestInitSegments(t *testing.T) {
	r := chunkDemo(t, 1, fixtureChunk, nil, false)
	for rend, fourcc := range map[string]string{"v0": "avc1", "a0": "Opus"} {
		f, err := mp4.DecodeFile(bytes.NewReader(r.inits[rend]))
		if err != nil || f.Init == nil {
			t.Fatalf("%s init: %v", rend, err)
		}
		if got := f.Init.Moov.Trak.Mdia.Minf.Stbl.Stsd.Children[0].Type(); got != fourcc {
			t.Errorf("%s sample entry %q, want %q", rend, got, fourcc)
		}
	}
	info := r.outs[len(r.outs)-1].Renditions
	for _, o := range r.outs {
		if o.Renditions != nil {
			info = o.Renditions
		}
	}
	if len(info) != 2 || info[0].Codec != "avc1.42C01E" && info[0].Codec != "avc1.42c01e" || info[0].Width != 640 || info[0].Height != 360 || info[1].Codec != "opus" {
		t.Errorf("rendition info %+v", info)
	}
}

// The chunker hands out small, numbered, unsigned batches that encode (so
// the key holder can sign them): init segments alone, chunks by slot.
func TestBatches(t *testing.T) {
	r := chunkDemo(t, 1, fixtureChunk, nil, false)
	var prev uint64
	for i, o := range r.outs {
		if o.Batch.Signature != nil {
			t.Fatalf("batch %d is signed", o.Batch.N)
		}
		if _, err := o.Batch.Encode(); err != nil {
			t.Fatal(err)
		}
		if o.Batch.Stream != "demo" || i == 0 && o.Batch.N != 0 || i > 0 && o.Batch.N != prev+1 {
			t.Fatalf("batch %q %d follows %d", o.Batch.Stream, o.Batch.N, prev)
		}
		prev = o.Batch.N
		if n := len(o.Batch.Entries); n == 0 || n > 4 {
			t.Errorf("batch %d has %d entries, want small batches", o.Batch.N, n)
		}
		for _, e := range o.Batch.Entries {
			if e.Kind == manifest.KindInit && len(o.Batch.Entries) != 1 {
				t.Errorf("batch %d: init segment %s shares its batch", o.Batch.N, e.Rendition)
			}
		}
	}
}

func TestChunkDurationBounds(t *testing.T) {
	for _, d := range []time.Duration{50 * time.Millisecond, 600 * time.Millisecond} {
		if _, err := New(Params{Stream: "s", ChunkDuration: d, Publish: func(Output) {}}); err == nil {
			t.Errorf("chunk duration %v accepted", d)
		}
	}
	for _, d := range []time.Duration{manifest.MinChunkDuration, manifest.MaxChunkDuration} {
		r := chunkDemo(t, 1, d, nil, false)
		for _, e := range r.byR["v0"][:len(r.byR["v0"])-1] {
			if diff := e.Duration - d; diff < -time.Second/30 || diff > time.Second/30 {
				t.Errorf("%v: chunk %d lasts %v", d, e.Seq, e.Duration)
			}
		}
	}
}

// Annex-B input with in-band parameter sets gives the very same chunks as
// AVCC input with parameter sets out of band.
func TestAnnexBMatchesAVCC(t *testing.T) {
	avccRun := chunkDemo(t, 1, fixtureChunk, nil, false)
	clip, _ := demoUnits(t, 1)
	annexB := chunkDemo(t, 1, fixtureChunk, func(u *unit) bool {
		if u.rendition != "v0" {
			return true
		}
		var b []byte
		if u.au.Keyframe {
			b = append(b, 0, 0, 0, 1, 9, 0xf0) // an access unit delimiter, dropped
			for _, ps := range append(clip.Video.SPS, clip.Video.PPS...) {
				b = append(append(b, 0, 0, 0, 1), ps...)
			}
		}
		b = append(b, avc.ConvertSampleToByteStream(bytes.Clone(u.au.Data))...)
		u.au.Data = b
		return true
	}, true)
	if !bytes.Equal(avccRun.inits["v0"], annexB.inits["v0"]) {
		t.Error("init segments differ")
	}
	for i, e := range avccRun.byR["v0"] {
		if annexB.byR["v0"][i].Hash != e.Hash {
			t.Fatalf("chunk %d differs", e.Seq)
		}
	}
}

func TestBadUnits(t *testing.T) {
	clip, _ := demoUnits(t, 1)
	var outs []Output
	c, _ := New(Params{Stream: "s", ChunkDuration: fixtureChunk, Publish: func(o Output) { outs = append(outs, o) }})
	annexB := media.Track{Codec: media.CodecH264, Format: media.AnnexB}
	if err := c.AddRendition("v0", annexB); err != nil {
		t.Fatal(err)
	}
	if err := c.AddRendition("v0", annexB); err == nil {
		t.Error("duplicate rendition accepted")
	}
	if err := c.AddRendition("bad name", annexB); err == nil {
		t.Error("bad rendition name accepted")
	}
	if err := c.AddRendition("x", media.Track{Codec: "vp8"}); !errors.Is(err, media.ErrUnsupportedCodec) {
		t.Errorf("vp8: %v", err)
	}
	idr := append([]byte{0, 0, 0, 1}, clip.Video.SPS[0]...)
	idr = append(append(append(idr, 0, 0, 0, 1), clip.Video.PPS[0]...), avc.ConvertSampleToByteStream(bytes.Clone(clip.VideoUnits[0].Data))...)
	p := avc.ConvertSampleToByteStream(bytes.Clone(clip.VideoUnits[1].Data))
	cases := []struct {
		name      string
		rendition string
		au        media.AccessUnit
		want      error
	}{
		{"unknown rendition", "v9", media.AccessUnit{Data: idr}, ErrUnknownRendition},
		{"empty", "v0", media.AccessUnit{}, ErrBadUnit},
		{"negative time", "v0", media.AccessUnit{DTS: -1, Data: idr}, ErrBadUnit},
		{"P frame first", "v0", media.AccessUnit{Data: p}, ErrNeedKeyframe},
		{"no start code", "v0", media.AccessUnit{Data: []byte{1, 2, 3}}, ErrBadUnit},
		{"keyframe", "v0", media.AccessUnit{DTS: time.Second, Data: idr, Keyframe: true}, nil},
		{"time going back", "v0", media.AccessUnit{DTS: time.Second - 1, Data: p}, ErrTimestamp},
		{"same time", "v0", media.AccessUnit{DTS: time.Second, Data: p}, ErrTimestamp},
		{"next frame", "v0", media.AccessUnit{DTS: time.Second + time.Second/30, Data: p}, nil},
	}
	for _, tc := range cases {
		err := c.Push(tc.rendition, tc.au)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	c.Flush()
	var chunks int
	for _, o := range outs {
		for _, e := range o.Batch.Entries {
			if e.Kind == manifest.KindChunk {
				chunks++
				if e.Seq != 4 || !e.Independent {
					t.Errorf("chunk %+v", e)
				}
			}
		}
	}
	if chunks != 1 {
		t.Errorf("%d chunks after the bad units, want 1", chunks)
	}
}

// A gap longer than maxSampleGap gives the last sample before it a nominal
// duration and marks the next chunk discontinuous.
func TestGapMarksDiscontinuity(t *testing.T) {
	r := chunkDemo(t, 1, fixtureChunk, func(u *unit) bool {
		return u.rendition != "a0" || u.au.DTS < 2*time.Second || u.au.DTS >= 5*time.Second
	}, false)
	for _, e := range r.byR["a0"] {
		wantDisc := e.Seq == 20
		if e.Discontinuity != wantDisc {
			t.Errorf("a0/%d discontinuity=%v", e.Seq, e.Discontinuity)
		}
		if e.Seq >= 8 && e.Seq < 20 {
			t.Errorf("a0/%d published inside the gap", e.Seq)
		}
		if e.Seq == 7 && e.Duration > 300*time.Millisecond {
			t.Errorf("a0/7 lasts %v across the gap", e.Duration)
		}
	}
}

// BenchmarkChunker measures muxing and batching one loop of the demo clip;
// signing the batches is ingest's, and its cost is manifest's
// BenchmarkBatchSign.
func BenchmarkChunker(b *testing.B) {
	clip, units := demoUnits(b, 1)
	var bytesIn int64
	for _, u := range units {
		bytesIn += int64(len(u.au.Data))
	}
	b.SetBytes(bytesIn)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, _ := New(Params{Stream: "demo", ChunkDuration: fixtureChunk, Publish: func(Output) {}})
		_ = c.AddRendition("v0", *clip.Video)
		_ = c.AddRendition("a0", *clip.Audio)
		for _, u := range units {
			if err := c.Push(u.rendition, u.au); err != nil {
				b.Fatal(err)
			}
		}
		c.Flush()
	}
	b.ReportMetric(float64(len(units)*b.N)/b.Elapsed().Seconds(), "units/s")
}

// Keyframes that arrive shortly before a slot boundary (as keyframes
// requested over RTCP do) still start an independent chunk of the next slot.
func TestKeyframeSnap(t *testing.T) {
	const d = fixtureChunk
	const early = 40 * time.Millisecond // more than a frame before the boundary, within the snap
	r := chunkDemo(t, 1, fixtureChunk, func(u *unit) bool {
		u.au.DTS += d - early // keyframes now at k s + 210 ms
		u.au.PTS += d - early
		return true
	}, false)
	v := r.byR["v0"]
	for _, e := range v[:len(v)-1] {
		if e.Independent != (e.Seq%4 == 1) {
			t.Errorf("v0/%d independent=%v", e.Seq, e.Independent)
		}
		if start := time.Duration(e.Seq) * d; e.Independent && e.MediaTime != start-early {
			t.Errorf("v0/%d starts at %v, want %v", e.Seq, e.MediaTime, start-early)
		}
		if diff := e.Duration - d; diff > early+time.Second/30 || diff < -early-time.Second/30 {
			t.Errorf("v0/%d lasts %v", e.Seq, e.Duration)
		}
	}
	if v[0].Seq != 1 {
		t.Errorf("first chunk has seq %d, want 1 (its keyframe snapped forward)", v[0].Seq)
	}
}

// With a keyframe expected, a keyframe that comes shortly after a slot
// boundary still opens that slot's chunk: the chunk before takes the frames
// up to it.
func TestExpectKeyframe(t *testing.T) {
	const d = fixtureChunk
	const late = 80 * time.Millisecond // keyframes 80 ms after the boundary
	clip, units := demoUnits(t, 1)
	var outs []Output
	c, _ := New(Params{Stream: "s", ChunkDuration: fixtureChunk, Now: fixedClock(), Publish: func(o Output) { outs = append(outs, o) }})
	_ = c.AddRendition("v0", *clip.Video)
	for _, u := range units {
		if u.rendition != "v0" {
			continue
		}
		u.au.DTS += late
		u.au.PTS += late
		if u.au.DTS%time.Second > 900*time.Millisecond { // 100 ms before each keyframe, as ingest would
			sec := u.au.DTS / time.Second
			c.ExpectKeyframe("v0", (sec+1)*time.Second+d/2)
		}
		if err := c.Push("v0", u.au); err != nil {
			t.Fatal(err)
		}
	}
	c.Flush()
	var chunks []manifest.Entry
	for _, o := range outs {
		for _, e := range o.Batch.Entries {
			if e.Kind == manifest.KindChunk {
				chunks = append(chunks, e)
			}
		}
	}
	for _, e := range chunks[:len(chunks)-1] {
		if e.Independent != (e.Seq%4 == 0) {
			t.Errorf("v0/%d independent=%v", e.Seq, e.Independent)
		}
		if start := time.Duration(e.Seq) * d; e.Independent && e.MediaTime != start+late {
			t.Errorf("v0/%d starts at %v, want its keyframe at %v", e.Seq, e.MediaTime, start+late)
		}
		if diff := e.Duration - d; diff > late+time.Second/30 || diff < -late-time.Second/30 {
			t.Errorf("v0/%d lasts %v", e.Seq, e.Duration)
		}
	}
	// Without the expectation, the same keyframes land mid-chunk.
	r := chunkDemo(t, 1, fixtureChunk, func(u *unit) bool { u.au.DTS += late; u.au.PTS += late; return true }, false)
	for _, e := range r.byR["v0"] {
		if e.Independent && e.Seq > 0 {
			t.Errorf("v0/%d independent without an expected keyframe", e.Seq)
		}
	}
}
