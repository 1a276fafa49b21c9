package chunker

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
)

// Timescales of the CMAF tracks.
const (
	videoTimescale = 90000
	audioTimescale = 48000
)

// maxSampleGap is the longest decode-time step taken as one sample's duration;
// a longer one is a gap in the source, and the next chunk is marked discontinuous.
const maxSampleGap = time.Second

// Errors of the chunker.
var (
	ErrUnknownRendition = errors.New("chunker: unknown rendition")
	ErrDuplicate        = errors.New("chunker: rendition declared twice")
	ErrNeedKeyframe     = errors.New("chunker: waiting for a keyframe with parameter sets")
	ErrTimestamp        = errors.New("chunker: decode time not increasing")
	ErrBadUnit          = errors.New("chunker: malformed access unit")
)

// Output is what the chunker publishes: one batch, not yet signed
// (Batch.Signature is nil), and the bytes of each of its entries. Whoever
// holds the stream's key signs the batch before the origin publishes it.
type Output struct {
	Batch manifest.Batch
	Data  [][]byte // Data[i] is the chunk or init segment Batch.Entries[i] names
	// Renditions is set whenever a batch carries an init segment: the current
	// description of every rendition.
	Renditions []manifest.RenditionInfo
}

// Params configures a Chunker.
type Params struct {
	Stream        string
	ChunkDuration time.Duration    // 100–500 ms; 0 means 250 ms
	Now           func() time.Time // ingest wall clock; nil means time.Now
	// Publish receives every batch, unsigned, in order. It is called
	// synchronously from Push and Flush and must not call back into the
	// Chunker.
	Publish func(Output)
	// FirstSeq is the slot number of media time 0. Ingest sets it when a stream
	// resumes after a restart so that sequence numbers keep increasing.
	FirstSeq uint64
	// FirstBatch numbers the first batch published (continuing a resumed stream).
	FirstBatch uint64
	// KeyframeSnap: a keyframe this close before a slot boundary starts the
	// next slot's chunk early, so that the chunk is independent even though
	// the encoder's keyframe (requested over RTCP) missed the boundary by a
	// frame or two. 0 means ChunkDuration/5; negative disables snapping.
	KeyframeSnap time.Duration
}

// Chunker cuts the renditions of one stream into aligned CMAF chunks and
// groups their manifest entries into numbered batches. It is not safe for
// concurrent use.
type Chunker struct {
	p          Params
	renditions []*rendition
	byName     map[string]*rendition
	pending    []pendingChunk
	nextBatch  uint64
	infoDirty  bool
}

type pendingChunk struct {
	entry manifest.Entry
	data  []byte
	order int // rendition index, to sort batches deterministically
}

// New returns a Chunker with no renditions.
func New(p Params) (*Chunker, error) {
	if !manifest.ValidName(p.Stream) {
		return nil, fmt.Errorf("chunker: stream: %w: name %q", manifest.ErrBadManifest, p.Stream)
	}
	if p.ChunkDuration == 0 {
		p.ChunkDuration = manifest.DefaultChunkDuration
	}
	if p.ChunkDuration < manifest.MinChunkDuration || p.ChunkDuration > manifest.MaxChunkDuration {
		return nil, fmt.Errorf("chunker: chunk duration %v outside %v–%v", p.ChunkDuration, manifest.MinChunkDuration, manifest.MaxChunkDuration)
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.KeyframeSnap == 0 {
		p.KeyframeSnap = p.ChunkDuration / 5
	}
	if p.Publish == nil {
		return nil, errors.New("chunker: Params.Publish is required")
	}
	return &Chunker{p: p, byName: map[string]*rendition{}, nextBatch: p.FirstBatch}, nil
}

// ChunkDuration is the target chunk duration in use.
func (c *Chunker) ChunkDuration() time.Duration { return c.p.ChunkDuration }

// AddRendition declares a rendition (one CMAF track) fed with Push(name, ...).
func (c *Chunker) AddRendition(name string, t media.Track) error {
	if !manifest.ValidName(name) {
		return fmt.Errorf("chunker: rendition: %w: name %q", manifest.ErrBadManifest, name)
	}
	if _, dup := c.byName[name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	r := &rendition{name: name, track: t, order: len(c.renditions)}
	switch t.Codec {
	case media.CodecH264:
		r.timescale = videoTimescale
		if len(t.SPS) > 0 && len(t.PPS) > 0 {
			r.sps, r.pps = cloneAll(t.SPS), cloneAll(t.PPS)
		}
	case media.CodecOpus:
		r.timescale = audioTimescale
		if t.SampleRate != 0 && t.SampleRate != 48000 {
			return fmt.Errorf("%w: opus at %d Hz", media.ErrUnsupportedCodec, t.SampleRate)
		}
	default:
		return fmt.Errorf("%w: %q", media.ErrUnsupportedCodec, t.Codec)
	}
	c.renditions = append(c.renditions, r)
	c.byName[name] = r
	return nil
}

// Renditions describes the renditions that have an init segment.
func (c *Chunker) Renditions() []manifest.RenditionInfo {
	var out []manifest.RenditionInfo
	for _, r := range c.renditions {
		if r.info.Name != "" {
			out = append(out, r.info)
		}
	}
	return out
}

// Push adds one access unit of a rendition. Units of a rendition must come in
// decode order; renditions may interleave freely. A unit that cannot be used is
// dropped with an error (ErrNeedKeyframe before the first usable keyframe,
// ErrTimestamp, ErrBadUnit) and the stream goes on.
func (c *Chunker) Push(name string, au media.AccessUnit) error {
	r, ok := c.byName[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownRendition, name)
	}
	if au.DTS < 0 || len(au.Data) == 0 {
		return fmt.Errorf("%w: dts %v, %d bytes", ErrBadUnit, au.DTS, len(au.Data))
	}
	if r.last != nil && au.DTS <= r.last.dts {
		return fmt.Errorf("%w: %s at %v after %v", ErrTimestamp, name, au.DTS, r.last.dts)
	}
	s, err := r.prepare(au)
	if err != nil {
		return err
	}
	if r.last != nil && c.complete(r, s.dts) {
		s.discontinuity = true
	}
	if s.newInit != nil {
		// A new init segment (first, or parameter sets changed) ends the chunk
		// cut against the old one. If that chunk shares the new unit's slot it
		// is dropped, so that one rendition never has two chunks of a slot.
		seq := c.slot(s.dts)
		if len(r.open) > 0 && r.openSeq == seq {
			r.open = r.open[:0]
		}
		c.closeOpen(r)
		c.publishInit(r, s.newInit, seq)
	}
	r.last = s
	c.publishReady()
	return nil
}

// Flush closes every open chunk (end of stream or publisher gone) and
// publishes all pending entries. The last sample of each rendition gets the duration of
// the one before it.
func (c *Chunker) Flush() {
	for _, r := range c.renditions {
		if r.last == nil {
			continue
		}
		c.complete(r, r.last.dts+r.lastDur())
		r.last = nil
		c.closeOpen(r)
	}
	c.publish(c.pending)
	c.pending = c.pending[:0]
}

// slot is the sequence number of the chunk covering decode time t.
func (c *Chunker) slot(t time.Duration) uint64 {
	return c.p.FirstSeq + uint64(t/c.p.ChunkDuration)
}

// chunkSeq is the chunk a sample goes to: its slot, or the next slot for a
// keyframe within KeyframeSnap of it. A chunk opened early by a snapped
// keyframe takes the rest of the previous slot too: sequence numbers never go
// back within a rendition.
//
// While a keyframe is expected (ExpectKeyframe), the open chunk also takes the
// frames past its boundary until the keyframe comes, up to the given time, so
// that the keyframe opens the next chunk.
func (c *Chunker) chunkSeq(s *sample, r *rendition) uint64 {
	seq := c.slot(s.dts)
	if s.keyframe && r.track.Codec == media.CodecH264 {
		next := time.Duration(seq+1-c.p.FirstSeq) * c.p.ChunkDuration
		if next-s.dts <= c.p.KeyframeSnap {
			seq++
		}
		r.holdUntil = 0
	}
	if len(r.open) > 0 && seq < r.openSeq {
		seq = r.openSeq
	}
	if len(r.open) > 0 && seq == r.openSeq+1 && !s.keyframe && s.dts < r.holdUntil {
		seq = r.openSeq
	}
	return seq
}

// ExpectKeyframe tells the chunker that a keyframe of rendition is on its way
// (ingest asked the publisher for one): a chunk boundary reached before media
// time until waits for it, so that the keyframe, not the frame that happens
// to cross the boundary, opens the next chunk. The wait adds latency to that
// one chunk only.
func (c *Chunker) ExpectKeyframe(rendition string, until time.Duration) {
	if r := c.byName[rendition]; r != nil && r.track.Codec == media.CodecH264 {
		r.holdUntil = until
	}
}

// complete gives r.last its duration now that the next decode time is known,
// closes r's open chunk when r.last starts a new slot, and appends r.last to
// the open chunk. It reports a gap: the next unit starts more than
// maxSampleGap later, so r.last gets a nominal duration and the next chunk is
// discontinuous.
func (c *Chunker) complete(r *rendition, next time.Duration) (gap bool) {
	s := r.last
	s.dur = next - s.dts
	if s.dur > maxSampleGap {
		s.dur, gap = r.lastDur(), true
	}
	seq := c.chunkSeq(s, r)
	if len(r.open) == 0 && r.hasClosed && seq <= r.closed {
		// The slot's chunk is already out (closed early by Flush or a new init
		// segment): a rendition never publishes a slot twice.
		r.prevDur = s.dur
		return gap
	}
	if len(r.open) > 0 && seq != r.openSeq {
		c.closeOpen(r)
	}
	if len(r.open) == 0 {
		r.openSeq = seq
		r.openDiscontinuity = false
	}
	if s.discontinuity {
		r.openDiscontinuity = true
	}
	r.open = append(r.open, *s)
	r.prevDur = s.dur
	return gap
}

// closeOpen muxes r's open chunk and queues its entry for a batch.
func (c *Chunker) closeOpen(r *rendition) {
	if len(r.open) == 0 {
		return
	}
	data, err := r.mux()
	if err != nil {
		// mux only fails on internal inconsistencies; drop the chunk, keep the stream.
		r.open = r.open[:0]
		return
	}
	var dur time.Duration
	for _, s := range r.open {
		dur += s.dur
	}
	first := r.open[0]
	if r.info.Kind == string(media.KindVideo) && r.info.FrameRate == 0 && len(r.open) >= 4 {
		// Measured from the first full chunk; published with the next batch.
		r.info.FrameRate = math.Round(float64(len(r.open))/dur.Seconds()*1000) / 1000
		c.infoDirty = true
	}
	e := manifest.Entry{
		Kind: manifest.KindChunk, Rendition: r.name, Seq: r.openSeq,
		MediaTime: first.dts, Duration: dur, IngestTime: c.p.Now(),
		Size: uint32(len(data)), Independent: first.keyframe,
		Discontinuity: r.openDiscontinuity, Hash: manifest.Sum(data),
	}
	r.open = r.open[:0]
	r.closed = e.Seq
	r.hasClosed = true
	c.pending = append(c.pending, pendingChunk{entry: e, data: data, order: r.order})
}

func (c *Chunker) publishInit(r *rendition, data []byte, seq uint64) {
	e := manifest.Entry{
		Kind: manifest.KindInit, Rendition: r.name, Seq: seq, IngestTime: c.p.Now(),
		Size: uint32(len(data)), Independent: true, Hash: manifest.Sum(data),
	}
	// Chunks already waiting were cut against the previous init: publish them
	// first. The init segment goes in a batch of its own.
	c.publish(c.pending)
	c.pending = c.pending[:0]
	c.infoDirty = true
	c.publish([]pendingChunk{{entry: e, data: data, order: r.order}})
}

// publishReady publishes the pending chunks of every slot that all renditions
// have closed, and of slots a lagging rendition holds back by two or more.
func (c *Chunker) publishReady() {
	if len(c.pending) == 0 {
		return
	}
	var minClosed, maxClosed uint64
	first := true
	for _, r := range c.renditions {
		if !r.hasClosed {
			continue
		}
		if first || r.closed < minClosed {
			minClosed = r.closed
		}
		if first || r.closed > maxClosed {
			maxClosed = r.closed
		}
		first = false
	}
	limit := minClosed
	if maxClosed >= 2 && maxClosed-2 > limit {
		limit = maxClosed - 2
	}
	var ready, rest []pendingChunk
	for _, p := range c.pending {
		if p.entry.Seq <= limit && c.allStartedOrLate(p.entry.Seq, maxClosed) {
			ready = append(ready, p)
		} else {
			rest = append(rest, p)
		}
	}
	if len(ready) == 0 {
		return
	}
	c.publish(ready)
	c.pending = append(c.pending[:0], rest...)
}

// allStartedOrLate keeps a slot back while a rendition has not produced its
// first chunk yet, unless that rendition is two slots late.
func (c *Chunker) allStartedOrLate(seq, maxClosed uint64) bool {
	for _, r := range c.renditions {
		if !r.hasClosed && maxClosed < seq+2 {
			return false
		}
	}
	return true
}

// publish hands ps to Params.Publish in unsigned batches of at most
// manifest.MaxBatchEntries, in slot and rendition order.
func (c *Chunker) publish(ps []pendingChunk) {
	if len(ps) == 0 {
		return
	}
	slices.SortStableFunc(ps, func(a, b pendingChunk) int {
		if a.entry.Seq != b.entry.Seq {
			if a.entry.Seq < b.entry.Seq {
				return -1
			}
			return 1
		}
		return a.order - b.order
	})
	for len(ps) > 0 {
		n := min(len(ps), manifest.MaxBatchEntries)
		out := Output{Batch: manifest.Batch{Stream: c.p.Stream, N: c.nextBatch}}
		for _, p := range ps[:n] {
			out.Batch.Entries = append(out.Batch.Entries, p.entry)
			out.Data = append(out.Data, p.data)
		}
		ps = ps[n:]
		c.nextBatch++
		if c.infoDirty {
			out.Renditions = c.Renditions()
			c.infoDirty = false
		}
		c.p.Publish(out)
	}
}

// rendition is one CMAF track being cut into chunks.
type rendition struct {
	name      string
	track     media.Track
	order     int
	timescale uint32
	info      manifest.RenditionInfo

	sps, pps  [][]byte // current H.264 parameter sets
	initDone  bool
	holdUntil time.Duration // see ExpectKeyframe

	last    *sample // newest unit; its duration is known when the next arrives
	prevDur time.Duration
	open    []sample // the chunk being built
	openSeq uint64

	openDiscontinuity bool

	closed    uint64 // newest closed slot
	hasClosed bool
	fragSeq   uint32
}

type sample struct {
	dts, pts      time.Duration
	dur           time.Duration
	data          []byte // AVCC or Opus
	keyframe      bool
	discontinuity bool
	newInit       []byte // set when this unit starts a new init segment
}

func (r *rendition) lastDur() time.Duration {
	if r.prevDur > 0 {
		return r.prevDur
	}
	if r.track.Codec == media.CodecOpus {
		return 20 * time.Millisecond
	}
	return time.Second / 30
}

// prepare converts an access unit into a sample, noting parameter-set changes.
func (r *rendition) prepare(au media.AccessUnit) (*sample, error) {
	s := &sample{dts: au.DTS, pts: au.PTS, keyframe: au.Keyframe, discontinuity: au.Discontinuity}
	if s.pts < s.dts {
		s.pts = s.dts
	}
	if r.track.Codec == media.CodecOpus {
		s.keyframe = true
		s.data = bytes.Clone(au.Data)
		if !r.initDone {
			init, err := r.opusInit()
			if err != nil {
				return nil, err
			}
			s.newInit = init
		}
		return s, nil
	}
	nalus, err := splitNALUs(au.Data, r.track.Format)
	if err != nil {
		return nil, err
	}
	var sps, pps [][]byte
	var out []byte
	idr := false
	for _, n := range nalus {
		switch avc.GetNaluType(n[0]) {
		case avc.NALU_SPS:
			sps = appendNew(sps, n)
		case avc.NALU_PPS:
			pps = appendNew(pps, n)
		case avc.NALU_AUD:
			// dropped: CMAF samples carry no access unit delimiters
		default:
			if avc.GetNaluType(n[0]) == avc.NALU_IDR {
				idr = true
			}
			out = appendAVCC(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no picture data", ErrBadUnit)
	}
	s.data = out
	s.keyframe = idr
	if len(sps) > 0 && len(pps) > 0 && (!equalAll(sps, r.sps) || !equalAll(pps, r.pps)) {
		if !idr {
			return nil, fmt.Errorf("%w: parameter sets changed on a non-IDR frame", ErrNeedKeyframe)
		}
		r.sps, r.pps, r.initDone = cloneAll(sps), cloneAll(pps), false
	}
	if !r.initDone {
		if !idr || len(r.sps) == 0 || len(r.pps) == 0 {
			return nil, ErrNeedKeyframe
		}
		init, err := r.avcInit()
		if err != nil {
			return nil, err
		}
		s.newInit = init
		if r.fragSeq > 0 {
			s.discontinuity = true // new parameter sets mid-stream
		}
	}
	return s, nil
}

func splitNALUs(data []byte, f media.PayloadFormat) ([][]byte, error) {
	if f == media.AnnexB {
		nalus := avc.ExtractNalusFromByteStream(data)
		nonEmpty := nalus[:0]
		for _, n := range nalus {
			if len(n) > 0 {
				nonEmpty = append(nonEmpty, n)
			}
		}
		if len(nonEmpty) == 0 {
			return nil, fmt.Errorf("%w: no NAL units in Annex-B data", ErrBadUnit)
		}
		return nonEmpty, nil
	}
	var nalus [][]byte
	for p := data; len(p) > 0; {
		if len(p) < 4 {
			return nil, fmt.Errorf("%w: truncated AVCC length", ErrBadUnit)
		}
		n := int(uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))
		if n == 0 || n > len(p)-4 {
			return nil, fmt.Errorf("%w: AVCC NAL unit of %d bytes in %d", ErrBadUnit, n, len(p)-4)
		}
		nalus = append(nalus, p[4:4+n])
		p = p[4+n:]
	}
	return nalus, nil
}

func appendAVCC(out, nalu []byte) []byte {
	n := len(nalu)
	out = append(out, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(out, nalu...)
}

func (r *rendition) avcInit() (data []byte, err error) {
	defer func() { // mp4ff may panic on parameter sets it cannot parse
		if p := recover(); p != nil {
			data, err = nil, fmt.Errorf("%w: parameter sets: %v", ErrBadUnit, p)
		}
	}()
	// Only up to the aspect ratio: the rest of the VUI (HRD parameters) lets a
	// few bytes of hostile SPS allocate megabytes in the parser, and the frame
	// rate is measured from the frames instead.
	sps, err := avc.ParseSPSNALUnit(r.sps[0], false)
	if err != nil {
		return nil, fmt.Errorf("%w: SPS: %v", ErrBadUnit, err)
	}
	init := mp4.CreateEmptyInit()
	trak := init.AddEmptyTrack(r.timescale, "video", "und")
	if err := trak.SetAVCDescriptor("avc1", r.sps, r.pps, true); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadUnit, err)
	}
	r.info = manifest.RenditionInfo{
		Name: r.name, Kind: string(media.KindVideo), Codec: avc.CodecString("avc1", sps),
		Width: int(sps.Width), Height: int(sps.Height),
	}
	return r.finishInit(init)
}

func (r *rendition) opusInit() ([]byte, error) {
	ch := r.track.Channels
	if ch == 0 {
		ch = 2
	}
	if ch > 2 {
		return nil, fmt.Errorf("%w: opus with %d channels", media.ErrUnsupportedCodec, ch)
	}
	init := mp4.CreateEmptyInit()
	trak := init.AddEmptyTrack(r.timescale, "audio", "und")
	dops := &mp4.DopsBox{OutputChannelCount: byte(ch), PreSkip: r.track.PreSkip, InputSampleRate: 48000}
	entry := mp4.CreateAudioSampleEntryBox("Opus", uint16(ch), 16, 48000, dops)
	trak.Mdia.Minf.Stbl.Stsd.AddChild(entry)
	r.info = manifest.RenditionInfo{Name: r.name, Kind: string(media.KindAudio), Codec: "opus", SampleRate: 48000, Channels: ch}
	return r.finishInit(init)
}

func (r *rendition) finishInit(init *mp4.InitSegment) ([]byte, error) {
	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		return nil, fmt.Errorf("chunker: encode init: %w", err)
	}
	r.initDone = true
	return buf.Bytes(), nil
}

// mux writes the open chunk as one CMAF fragment.
func (r *rendition) mux() ([]byte, error) {
	r.fragSeq++
	frag, err := mp4.CreateFragment(r.fragSeq, 1)
	if err != nil {
		return nil, err
	}
	size := 0
	for _, s := range r.open {
		dts := ticks(s.dts, r.timescale)
		end := ticks(s.dts+s.dur, r.timescale)
		flags := mp4.NonSyncSampleFlags
		if s.keyframe {
			flags = mp4.SyncSampleFlags
		}
		frag.AddFullSample(mp4.FullSample{
			Sample: mp4.Sample{
				Flags: flags, Dur: uint32(end - dts), Size: uint32(len(s.data)),
				CompositionTimeOffset: int32(ticks(s.pts, r.timescale) - dts),
			},
			DecodeTime: dts,
			Data:       s.data,
		})
		size += len(s.data)
	}
	var buf bytes.Buffer
	buf.Grow(size + 256)
	if err := frag.Encode(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ticks converts a media time to a timescale without overflowing for long
// streams, rounding to the nearest tick.
func ticks(d time.Duration, timescale uint32) uint64 {
	sec := uint64(d / time.Second)
	rem := uint64(d % time.Second)
	return sec*uint64(timescale) + (rem*uint64(timescale)+uint64(time.Second)/2)/uint64(time.Second)
}

func cloneAll(in [][]byte) [][]byte {
	out := make([][]byte, len(in))
	for i, b := range in {
		out[i] = bytes.Clone(b)
	}
	return out
}

// appendNew appends n unless list holds it already (encoders may repeat
// parameter sets within an access unit).
func appendNew(list [][]byte, n []byte) [][]byte {
	if slices.ContainsFunc(list, func(b []byte) bool { return bytes.Equal(b, n) }) {
		return list
	}
	return append(list, n)
}

func equalAll(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}
