package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
)

// MaxMP4Size is the largest file ReadMP4 accepts, in bytes.
const MaxMP4Size = 512 << 20

// maxSeconds bounds every media time ReadMP4 produces (about 34 years), so
// that time arithmetic on a clip can never overflow time.Duration.
const maxSeconds = 1 << 30

// Clip is a parsed media file: at most one H.264 video track and one Opus
// audio track, each with its access units in decode order.
//
// Times start at 0 and all units lie before Duration, so a clip can be
// played in a loop by adding k×Duration to the times of the k-th repetition.
type Clip struct {
	Video, Audio           *Track // nil when absent
	VideoUnits, AudioUnits []AccessUnit
	// Duration is the loop period: the video's presentation length when
	// there is video, else the audio's.
	Duration time.Duration
}

// ReadMP4 parses a progressive or fragmented MP4 file holding one H.264
// video track (avc1/avc3) and/or one Opus audio track. Other tracks are
// ignored.
//
// Video units are AVCC-framed; Keyframe is set for sync samples that hold an
// IDR slice, and the first video unit must be one. Audio units are Opus
// packets on the decoder's timeline: a packet's time is that of its first
// decoded sample, and a decoder drops Track.PreSkip samples at the start of
// the stream. With the usual edit list (media_time = pre-skip) the first
// packet is at 0 and audio lines up with video; an edit that skips more is
// applied as a time shift, dropping packets that would start before 0.
// Units from either track that start at or after Duration are dropped.
//
// The units' Data slices point into data, which the caller must not modify
// afterwards. Bad input returns an error wrapping ErrMalformed, ErrNoTracks or
// ErrUnsupportedCodec.
func ReadMP4(data []byte) (clip *Clip, err error) {
	if len(data) > MaxMP4Size {
		return nil, fmt.Errorf("%w: file is %d bytes, limit %d", ErrMalformed, len(data), MaxMP4Size)
	}
	// mp4ff trusts many fields of the file; a panic in it means bad input.
	defer func() {
		if r := recover(); r != nil {
			clip, err = nil, fmt.Errorf("%w: mp4 parser: %v", ErrMalformed, r)
		}
	}()
	f, err := mp4.DecodeFileSR(bits.NewFixedSliceReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if f.Moov == nil || f.Moov.Mvhd == nil {
		return nil, fmt.Errorf("%w: no moov box", ErrMalformed)
	}
	videoTrak, audioTrak, err := findTracks(f.Moov)
	if err != nil {
		return nil, err
	}
	var video, audio *parsedTrack
	if videoTrak != nil {
		if video, err = readVideo(f, videoTrak, data); err != nil {
			return nil, err
		}
	}
	if audioTrak != nil {
		if audio, err = readAudio(f, audioTrak, data); err != nil {
			return nil, err
		}
	}
	return assemble(video, audio)
}

// parsedTrack is one track on its way into a Clip.
type parsedTrack struct {
	track *Track
	units []AccessUnit
	end   time.Duration // end of the track's presentation
}

// rawSample is one sample as the file describes it, times in track ticks.
type rawSample struct {
	decodeTime uint64
	dur        uint32
	cto        int32 // composition time offset
	sync       bool
	data       []byte
}

// findTracks picks the first H.264 video track and the first Opus audio track.
func findTracks(moov *mp4.MoovBox) (video, audio *mp4.TrakBox, err error) {
	var unsupported []string
	for _, trak := range moov.Traks {
		stbl := sampleTable(trak)
		if stbl == nil || stbl.Stsd == nil {
			return nil, nil, fmt.Errorf("%w: track without sample table", ErrMalformed)
		}
		switch {
		case stbl.Stsd.AvcX != nil:
			if video == nil {
				video = trak
			}
		case stbl.Stsd.Opus != nil:
			if audio == nil {
				audio = trak
			}
		case trak.Mdia.Hdlr != nil && (trak.Mdia.Hdlr.HandlerType == "vide" || trak.Mdia.Hdlr.HandlerType == "soun"):
			for _, entry := range stbl.Stsd.Children {
				unsupported = append(unsupported, entry.Type())
			}
		}
	}
	switch {
	case video != nil || audio != nil:
		return video, audio, nil
	case len(unsupported) > 0:
		return nil, nil, fmt.Errorf("%w: %w %q", ErrNoTracks, ErrUnsupportedCodec, unsupported)
	default:
		return nil, nil, ErrNoTracks
	}
}

// sampleTable returns trak's stbl box, or nil when the track lacks one.
func sampleTable(trak *mp4.TrakBox) *mp4.StblBox {
	if trak.Mdia == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Minf == nil {
		return nil
	}
	return trak.Mdia.Minf.Stbl
}

func readVideo(f *mp4.File, trak *mp4.TrakBox, data []byte) (*parsedTrack, error) {
	entry := sampleTable(trak).Stsd.AvcX
	t := &Track{Codec: CodecH264, Format: AVCC, Width: int(entry.Width), Height: int(entry.Height)}
	if entry.AvcC != nil {
		t.SPS, t.PPS = entry.AvcC.SPSnalus, entry.AvcC.PPSnalus
	}
	samples, err := trackSamples(f, trak, data)
	if err != nil {
		return nil, fmt.Errorf("%w (video track)", err)
	}
	tl, err := newTimeline(f.Moov, trak)
	if err != nil {
		return nil, err
	}
	p := &parsedTrack{track: t, units: make([]AccessUnit, 0, len(samples))}
	for i, s := range samples {
		if err := checkAVCC(s.data); err != nil {
			return nil, fmt.Errorf("%w: video sample %d: %v", ErrMalformed, i+1, err)
		}
		dts, err1 := tl.at(s.decodeTime, 0)
		pts, err2 := tl.at(s.decodeTime, int64(s.cto))
		end, err3 := tl.at(s.decodeTime, int64(s.cto)+int64(s.dur))
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		p.units = append(p.units, AccessUnit{
			DTS: dts, PTS: pts, Data: s.data,
			Keyframe: s.sync && avc.IsIDRSample(s.data),
		})
		p.end = max(p.end, end)
	}
	if len(p.units) == 0 || !p.units[0].Keyframe {
		return nil, fmt.Errorf("%w: video does not start with an IDR frame", ErrMalformed)
	}
	if len(t.SPS) == 0 { // avc3 may carry its parameter sets in band only
		t.SPS, t.PPS = avc.GetParameterSets(p.units[0].Data)
	}
	if len(t.SPS) == 0 || len(t.PPS) == 0 {
		return nil, fmt.Errorf("%w: no H.264 SPS/PPS", ErrMalformed)
	}
	p.end = tl.cap(p.end)
	return p, nil
}

func readAudio(f *mp4.File, trak *mp4.TrakBox, data []byte) (*parsedTrack, error) {
	dops := sampleTable(trak).Stsd.Opus.Dops
	if dops == nil {
		return nil, fmt.Errorf("%w: Opus sample entry without dOps box", ErrMalformed)
	}
	if dops.OutputChannelCount < 1 || dops.OutputChannelCount > 2 {
		return nil, fmt.Errorf("%w: Opus with %d channels", ErrUnsupportedCodec, dops.OutputChannelCount)
	}
	t := &Track{Codec: CodecOpus, SampleRate: 48000, Channels: int(dops.OutputChannelCount), PreSkip: dops.PreSkip}
	samples, err := trackSamples(f, trak, data)
	if err != nil {
		return nil, fmt.Errorf("%w (audio track)", err)
	}
	tl, err := newTimeline(f.Moov, trak)
	if err != nil {
		return nil, err
	}
	// The decoder already drops the pre-skip; shift only by what the edit
	// list skips beyond it.
	preSkip := int64(dops.PreSkip) * int64(tl.timescale) / 48000
	tl.shift = max(0, tl.shift-preSkip)

	p := &parsedTrack{track: t, units: make([]AccessUnit, 0, len(samples))}
	for _, s := range samples {
		at, err1 := tl.at(s.decodeTime, 0)
		end, err2 := tl.at(s.decodeTime, int64(s.dur))
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if at < 0 {
			continue
		}
		p.units = append(p.units, AccessUnit{DTS: at, PTS: at, Data: s.data, Keyframe: true})
		p.end = max(p.end, end)
	}
	if len(p.units) == 0 {
		return nil, fmt.Errorf("%w: audio track has no packets", ErrMalformed)
	}
	p.end = tl.cap(p.end)
	return p, nil
}

// assemble shifts both tracks so the earlier one starts at 0, sets the loop
// period and drops the units at or after it.
func assemble(video, audio *parsedTrack) (*Clip, error) {
	tracks := []*parsedTrack{video, audio}
	origin := time.Duration(maxSeconds * time.Second)
	for _, p := range tracks {
		if p != nil {
			origin = min(origin, p.units[0].DTS)
		}
	}
	if origin < 0 {
		origin = 0 // reordered video may start decoding before 0
	}
	for _, p := range tracks {
		if p == nil {
			continue
		}
		p.end -= origin
		for i := range p.units {
			p.units[i].DTS -= origin
			p.units[i].PTS -= origin
			if i > 0 && p.units[i].DTS < p.units[i-1].DTS {
				return nil, fmt.Errorf("%w: %s decode times go backwards at unit %d",
					ErrMalformed, p.track.Codec.Kind(), i)
			}
		}
	}

	c := &Clip{}
	if video != nil {
		c.Duration = video.end
	} else {
		c.Duration = audio.end
	}
	if c.Duration <= 0 {
		return nil, fmt.Errorf("%w: clip has zero duration", ErrMalformed)
	}
	if video != nil {
		c.Video, c.VideoUnits = video.track, trim(video.units, c.Duration)
	}
	if audio != nil {
		c.Audio, c.AudioUnits = audio.track, trim(audio.units, c.Duration)
		if len(c.AudioUnits) == 0 {
			return nil, fmt.Errorf("%w: audio starts after the video ends", ErrMalformed)
		}
	}
	return c, nil
}

// trim returns the units that start before end. units are in decode order.
func trim(units []AccessUnit, end time.Duration) []AccessUnit {
	n := len(units)
	for n > 0 && units[n-1].DTS >= end {
		n--
	}
	return units[:n:n]
}

// trackSamples lists the samples of trak, from the sample table of a
// progressive file or from the fragments of a fragmented one.
func trackSamples(f *mp4.File, trak *mp4.TrakBox, data []byte) ([]rawSample, error) {
	var samples []rawSample
	var err error
	if f.IsFragmented() {
		samples, err = fragmentSamples(f, trak.Tkhd)
	} else {
		samples, err = progressiveSamples(sampleTable(trak), data)
	}
	if err != nil {
		return nil, err
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("%w: track has no samples", ErrMalformed)
	}
	for i, s := range samples {
		if len(s.data) == 0 {
			return nil, fmt.Errorf("%w: sample %d is empty", ErrMalformed, i+1)
		}
	}
	return samples, nil
}

// progressiveSamples walks the sample table of a non-fragmented track:
// sizes (stsz), times (stts, ctts), sync samples (stss) and where each
// sample lies in the file (stsc with stco or co64).
func progressiveSamples(stbl *mp4.StblBox, data []byte) ([]rawSample, error) {
	if stbl.Stts == nil || stbl.Stsz == nil || stbl.Stsc == nil || (stbl.Stco == nil && stbl.Co64 == nil) {
		return nil, fmt.Errorf("%w: incomplete sample table", ErrMalformed)
	}
	n := stbl.Stsz.GetNrSamples()
	if uint64(n) > uint64(len(data)) { // every sample takes at least one byte
		return nil, fmt.Errorf("%w: %d samples in a %d-byte file", ErrMalformed, n, len(data))
	}
	samples := make([]rawSample, n)

	i := 0
	var t uint64
	for e, count := range stbl.Stts.SampleCount {
		for ; count > 0 && i < len(samples); count-- {
			samples[i].decodeTime, samples[i].dur = t, stbl.Stts.SampleTimeDelta[e]
			t += uint64(samples[i].dur)
			i++
		}
	}
	if i < len(samples) {
		return nil, fmt.Errorf("%w: stts covers %d of %d samples", ErrMalformed, i, n)
	}

	if ctts := stbl.Ctts; ctts != nil {
		i = 0
		for e, offset := range ctts.SampleOffset {
			for count := ctts.SampleCount(e); count > 0 && i < len(samples); count-- {
				samples[i].cto = offset
				i++
			}
		}
	}

	if stbl.Stss == nil {
		for i := range samples {
			samples[i].sync = true
		}
	} else {
		for _, nr := range stbl.Stss.SampleNumber {
			if nr >= 1 && nr <= n {
				samples[nr-1].sync = true
			}
		}
	}

	var chunks []uint64
	if stbl.Stco != nil {
		for _, off := range stbl.Stco.ChunkOffset {
			chunks = append(chunks, uint64(off))
		}
	} else {
		chunks = stbl.Co64.ChunkOffset
	}
	size := uint64(len(data))
	i = 0
	for e, entry := range stbl.Stsc.Entries {
		last := uint64(len(chunks)) // last chunk (one-based) this entry covers
		if e+1 < len(stbl.Stsc.Entries) {
			last = uint64(stbl.Stsc.Entries[e+1].FirstChunk) - 1
		}
		first := uint64(entry.FirstChunk)
		if first < 1 || last > uint64(len(chunks)) {
			return nil, fmt.Errorf("%w: stsc refers to chunks %d-%d of %d", ErrMalformed, first, last, len(chunks))
		}
		for chunk := first; chunk <= last && i < len(samples); chunk++ {
			off := chunks[chunk-1]
			for k := uint32(0); k < entry.SamplesPerChunk && i < len(samples); k++ {
				n := uint64(stbl.Stsz.GetSampleSize(i + 1))
				if off > size || n > size-off {
					return nil, fmt.Errorf("%w: sample %d (%d bytes at %d) lies beyond the %d-byte file",
						ErrMalformed, i+1, n, off, size)
				}
				samples[i].data = data[off : off+n : off+n]
				off += n
				i++
			}
		}
	}
	if i < len(samples) {
		return nil, fmt.Errorf("%w: chunks hold %d of %d samples", ErrMalformed, i, n)
	}
	return samples, nil
}

// fragmentSamples collects a track's samples from all fragments of a
// fragmented file.
func fragmentSamples(f *mp4.File, tkhd *mp4.TkhdBox) ([]rawSample, error) {
	if tkhd == nil || f.Moov.Mvex == nil {
		return nil, fmt.Errorf("%w: fragmented file without tkhd or mvex", ErrMalformed)
	}
	trex, ok := f.Moov.Mvex.GetTrex(tkhd.TrackID)
	if !ok {
		return nil, fmt.Errorf("%w: no trex for track %d", ErrMalformed, tkhd.TrackID)
	}
	var samples []rawSample
	for _, seg := range f.Segments {
		for _, frag := range seg.Fragments {
			if frag.Moof == nil || frag.Mdat == nil {
				return nil, fmt.Errorf("%w: fragment without moof or mdat", ErrMalformed)
			}
			full, err := frag.GetFullSamples(trex)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			for _, s := range full {
				samples = append(samples, rawSample{
					decodeTime: s.DecodeTime, dur: s.Dur, cto: s.CompositionTimeOffset,
					sync: s.IsSync(), data: s.Data[:len(s.Data):len(s.Data)],
				})
			}
		}
	}
	return samples, nil
}

// timeline maps a track's media time (ticks of its timescale) to clip time,
// following the track's edit list: leading empty edits delay the track, and
// the first real edit says which media time is shown at clip time 0 and for
// how long.
type timeline struct {
	timescale uint32
	shift     int64         // media ticks shown at the start of the first real edit
	delay     time.Duration // length of the leading empty edits
	length    time.Duration // length of the first real edit; 0 = to the end
}

func newTimeline(moov *mp4.MoovBox, trak *mp4.TrakBox) (timeline, error) {
	tl := timeline{timescale: trak.Mdia.Mdhd.Timescale}
	if tl.timescale == 0 {
		return tl, fmt.Errorf("%w: track timescale is 0", ErrMalformed)
	}
	movieScale := moov.Mvhd.Timescale
	if trak.Edts == nil || len(trak.Edts.Elst) == 0 || movieScale == 0 {
		return tl, nil
	}
	var empty uint64
	for _, e := range trak.Edts.Elst[0].Entries {
		if e.MediaTime == -1 {
			empty += min(e.SegmentDuration, 1<<61) // clamped: stays far from overflow
			continue
		}
		if e.MediaTime < 0 || e.MediaTime > 1<<61 {
			return tl, fmt.Errorf("%w: edit list media time %d", ErrMalformed, e.MediaTime)
		}
		tl.shift = e.MediaTime
		var err error
		if tl.length, err = ticksToDuration(int64(min(e.SegmentDuration, 1<<61)), movieScale); err != nil {
			return tl, err
		}
		break
	}
	var err error
	tl.delay, err = ticksToDuration(int64(min(empty, 1<<61)), movieScale)
	return tl, err
}

// at returns the clip time of media time ticks+offset.
func (tl timeline) at(ticks uint64, offset int64) (time.Duration, error) {
	if ticks > 1<<61 {
		return 0, fmt.Errorf("%w: media time %d out of range", ErrMalformed, ticks)
	}
	d, err := ticksToDuration(int64(ticks)+offset-tl.shift, tl.timescale)
	return d + tl.delay, err
}

// cap limits a track end to the end of the track's edit.
func (tl timeline) cap(end time.Duration) time.Duration {
	if tl.length > 0 {
		return min(end, tl.delay+tl.length)
	}
	return end
}

// ticksToDuration converts ticks of a 1/timescale clock to a Duration,
// truncating to whole nanoseconds. It computes from the absolute tick count,
// so rounding never accumulates.
func ticksToDuration(ticks int64, timescale uint32) (time.Duration, error) {
	ts := int64(timescale)
	if ts == 0 {
		return 0, fmt.Errorf("%w: timescale is 0", ErrMalformed)
	}
	sec, rem := ticks/ts, ticks%ts
	if sec > maxSeconds || sec < -maxSeconds {
		return 0, fmt.Errorf("%w: media time %d/%d s out of range", ErrMalformed, ticks, ts)
	}
	return time.Duration(sec)*time.Second + time.Duration(rem*int64(time.Second)/ts), nil
}

// checkAVCC verifies that sample is a sequence of 4-byte-length-prefixed
// NAL units that exactly fill it. (mp4ff's avc helpers assume so and can
// loop forever or panic otherwise.)
func checkAVCC(sample []byte) error {
	for rest := sample; len(rest) > 0; {
		if len(rest) < 5 {
			return fmt.Errorf("%d trailing bytes", len(rest))
		}
		n := binary.BigEndian.Uint32(rest)
		if n == 0 || uint64(n) > uint64(len(rest)-4) {
			return fmt.Errorf("NAL unit length %d with %d bytes left", n, len(rest)-4)
		}
		rest = rest[4+n:]
	}
	return nil
}
