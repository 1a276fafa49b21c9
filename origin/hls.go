package origin

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/seedcast/seedcast/manifest"
)

// LL-HLS layout. A segment is a run of whole chunks that starts with an
// independent chunk of the primary rendition (the first video rendition, or
// audio when there is no video) once the running segment has reached
// SegmentTarget. Partial segments are runs of chunks too: each chunk, at its
// immutable /c/{hash} URL, when chunks last MinPart or more; else
// ⌈MinPart / chunk duration⌉ chunks at part/{msn}.{i}.m4s, so that a part
// holds enough frames for the rule that every part but a segment's last
// last at least 85% of PART-TARGET (RFC 8216bis §4.4.4.9: at 30 fps, 125 ms
// chunks are 3 or 4 frames, 100 or 133 ms; two of them, 233 or 267 ms).
// Segments of all renditions share boundaries
// (chunk slots), so the media sequence number names the same media time in
// every media playlist.

// PlaylistParams configures a Playlist.
type PlaylistParams struct {
	ChunkDuration time.Duration // the chunker's target; parts are chunks
	SegmentTarget time.Duration // default 1 s
	MaxSegment    time.Duration // a segment is cut here even without a keyframe; default 4× SegmentTarget
	Window        time.Duration // how much media the playlists list; default 60 s
	// ChunkURI is the prefix of chunk and init URIs relative to a media
	// playlist at /live/{stream}/{rendition}/index.m3u8; default "../../../c/".
	ChunkURI string
}

// MinPart is the shortest part duration aimed for: shorter chunks are
// grouped into parts of at least this much (see the LL-HLS layout above).
const MinPart = 200 * time.Millisecond

// ErrNoSuchSegment is returned for a rendition or segment the playlist does
// not hold.
var ErrNoSuchSegment = errors.New("origin: no such rendition or segment")

// Playlist keeps the signed window of one stream and renders its LL-HLS
// playlists. It is pure (no I/O, no clock) and not safe for concurrent use.
type Playlist struct {
	p          PlaylistParams
	infos      []manifest.RenditionInfo
	rends      map[string]*hlsRendition
	primary    string
	segs       []segment // oldest first; the last one is open
	edge       uint64    // newest primary slot seen
	hasEdge    bool
	partTarget time.Duration
	group      int // chunks per part
	targetDur  int // seconds
	discSeq    int // discontinuities pruned from the front
}

type segment struct {
	msn        uint64
	first, end uint64 // slots [first, end); end is 0 while open
	primaryDur time.Duration
	discont    bool // starts with a new init segment
	lastIngest time.Time
	closed     bool
}

type hlsRendition struct {
	chunks map[uint64]manifest.Entry
	inits  []manifest.Entry // sorted by Seq
}

// NewPlaylist returns an empty playlist.
func NewPlaylist(p PlaylistParams) *Playlist {
	if p.ChunkDuration == 0 {
		p.ChunkDuration = manifest.DefaultChunkDuration
	}
	if p.SegmentTarget == 0 {
		p.SegmentTarget = time.Second
	}
	if p.MaxSegment == 0 {
		p.MaxSegment = 4 * p.SegmentTarget
	}
	if p.Window == 0 {
		p.Window = time.Minute
	}
	if p.ChunkURI == "" {
		p.ChunkURI = "../../../c/"
	}
	group := max(1, int((MinPart+p.ChunkDuration-1)/p.ChunkDuration))
	return &Playlist{
		p: p, rends: map[string]*hlsRendition{}, partTarget: time.Duration(group) * p.ChunkDuration, group: group,
		targetDur: int(math.Ceil(p.SegmentTarget.Seconds())),
	}
}

// SetRenditions records the renditions' descriptions (Output.Renditions).
func (pl *Playlist) SetRenditions(infos []manifest.RenditionInfo) {
	pl.infos = slices.Clone(infos)
	for _, in := range infos {
		if pl.rends[in.Name] == nil {
			pl.rends[in.Name] = &hlsRendition{chunks: map[uint64]manifest.Entry{}}
		}
	}
}

// Add records the entries of a signed batch.
func (pl *Playlist) Add(entries []manifest.Entry) {
	for _, e := range entries {
		r := pl.rends[e.Rendition]
		if r == nil {
			r = &hlsRendition{chunks: map[uint64]manifest.Entry{}}
			pl.rends[e.Rendition] = r
		}
		if e.Kind == manifest.KindInit {
			r.inits = append(r.inits, e)
			slices.SortStableFunc(r.inits, func(a, b manifest.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
			if e.Rendition == pl.primary && len(pl.segs) > 0 {
				pl.cut(e.Seq, true)
			}
			continue
		}
		r.chunks[e.Seq] = e
		if pl.primary == "" {
			pl.primary = pl.pickPrimary(e.Rendition)
		}
		if e.Rendition == pl.primary {
			pl.addPrimary(e)
		}
		pl.growPartTarget(r, e.Seq)
	}
	pl.prune()
}

func (pl *Playlist) pickPrimary(fallback string) string {
	for _, in := range pl.infos {
		if in.Kind == "video" {
			return in.Name
		}
	}
	return fallback
}

func (pl *Playlist) addPrimary(e manifest.Entry) {
	if !pl.hasEdge || e.Seq > pl.edge {
		pl.edge, pl.hasEdge = e.Seq, true
	}
	if len(pl.segs) == 0 {
		pl.segs = append(pl.segs, segment{first: e.Seq})
	}
	open := &pl.segs[len(pl.segs)-1]
	long := open.primaryDur >= pl.p.SegmentTarget-pl.p.ChunkDuration/2
	if e.Seq > open.first && (e.Independent && long || time.Duration(e.Seq-open.first)*pl.p.ChunkDuration >= pl.p.MaxSegment) {
		pl.cut(e.Seq, false)
		open = &pl.segs[len(pl.segs)-1]
	}
	open.primaryDur += e.Duration
}

// growPartTarget raises PART-TARGET to the duration of the part that holds
// slot seq in r, when it is longer (rounded up to the millisecond).
func (pl *Playlist) growPartTarget(r *hlsRendition, seq uint64) {
	first := seq
	for i := len(pl.segs) - 1; i >= 0; i-- {
		if pl.segs[i].first <= seq {
			first = pl.segs[i].first
			break
		}
	}
	start := first + (seq-first)/uint64(pl.group)*uint64(pl.group)
	var d time.Duration
	for s := start; s < start+uint64(pl.group); s++ {
		d += r.chunks[s].Duration
	}
	if d > pl.partTarget {
		pl.partTarget = d.Round(time.Millisecond)
		if pl.partTarget < d {
			pl.partTarget += time.Millisecond
		}
	}
}

// cut closes the open segment before slot seq and opens the next one there.
func (pl *Playlist) cut(seq uint64, discont bool) {
	open := &pl.segs[len(pl.segs)-1]
	if seq <= open.first {
		open.discont = open.discont || discont
		return
	}
	open.end, open.closed = seq, true
	if d := int(math.Round(open.primaryDur.Seconds())); d > pl.targetDur {
		pl.targetDur = d
	}
	pl.segs = append(pl.segs, segment{msn: open.msn + 1, first: seq, discont: discont})
}

// prune drops the oldest closed segments while the segments after them
// still hold Window of media.
func (pl *Playlist) prune() {
	var total time.Duration
	for i := range pl.segs {
		total += pl.segs[i].primaryDur
	}
	drop := 0
	for drop < len(pl.segs)-1 && total-pl.segs[drop].primaryDur >= pl.p.Window {
		total -= pl.segs[drop].primaryDur
		if pl.segs[drop].discont {
			pl.discSeq++
		}
		drop++
	}
	if drop == 0 {
		return
	}
	pl.segs = slices.Delete(pl.segs, 0, drop)
	first := pl.segs[0].first
	for _, r := range pl.rends {
		for seq := range r.chunks {
			if seq < first {
				delete(r.chunks, seq)
			}
		}
		// keep the init in force at first and every later one
		keep := 0
		for i, in := range r.inits {
			if in.Seq <= first {
				keep = i
			}
		}
		r.inits = r.inits[keep:]
	}
}

// PartTarget is the longest part duration seen (EXT-X-PART-INF).
func (pl *Playlist) PartTarget() time.Duration { return pl.partTarget }

// TargetDuration is EXT-X-TARGETDURATION in seconds.
func (pl *Playlist) TargetDuration() int { return pl.targetDur }

// Primary names the rendition whose keyframes place segment boundaries.
func (pl *Playlist) Primary() string { return pl.primary }

// parts lists rendition r's chunks in segment s, in slot order. Chunks of
// other renditions past the primary's newest slot are held back so that every
// rendition's open segment grows in step.
func (pl *Playlist) parts(r *hlsRendition, s *segment) []manifest.Entry {
	end := s.end
	if !s.closed {
		end = pl.edge + 1
	}
	var out []manifest.Entry
	for seq := s.first; seq < end; seq++ {
		if e, ok := r.chunks[seq]; ok {
			out = append(out, e)
		}
	}
	return out
}

// part is one partial segment: chunks of one run of group slots.
type part struct {
	index   int // the run's place in its segment (its URI's second number)
	entries []manifest.Entry
	dur     time.Duration
}

// partList groups rendition r's chunks in segment s into parts: runs of
// group slots from the segment's first, the last of a closed segment
// possibly shorter. A run of the open segment is listed once its last slot
// has passed (the primary's newest); a run with no chunk is not listed.
func (pl *Playlist) partList(r *hlsRendition, s *segment) []part {
	var out []part
	g := uint64(pl.group)
	for _, e := range pl.parts(r, s) {
		i := int((e.Seq - s.first) / g)
		if !s.closed && s.first+uint64(i+1)*g-1 > pl.edge {
			break // the run is not over yet
		}
		if len(out) == 0 || out[len(out)-1].index != i {
			out = append(out, part{index: i})
		}
		p := &out[len(out)-1]
		p.entries = append(p.entries, e)
		p.dur += e.Duration
	}
	return out
}

func (pl *Playlist) initFor(r *hlsRendition, seq uint64) (manifest.Entry, bool) {
	var in manifest.Entry
	found := false
	for _, e := range r.inits {
		if e.Seq <= seq || !found {
			in, found = e, true
		}
	}
	return in, found
}

// Ready reports whether rendition's playlist holds segment msn, or part
// (≥ 0) of it: the condition an LL-HLS blocking playlist reload waits for.
func (pl *Playlist) Ready(rendition string, msn uint64, part int) bool {
	r := pl.rends[rendition]
	if r == nil || len(pl.segs) == 0 {
		return false
	}
	last := &pl.segs[len(pl.segs)-1]
	if msn < last.msn {
		return true
	}
	if msn > last.msn || part < 0 {
		return false
	}
	return len(pl.partList(r, last)) > part
}

// NextMSN is the media sequence number of the open segment.
func (pl *Playlist) NextMSN() uint64 {
	if len(pl.segs) == 0 {
		return 0
	}
	return pl.segs[len(pl.segs)-1].msn
}

// SegmentChunks returns, in order, the chunks of rendition's closed segment msn.
func (pl *Playlist) SegmentChunks(rendition string, msn uint64) ([]manifest.Entry, error) {
	r := pl.rends[rendition]
	if r == nil || len(pl.segs) == 0 || msn < pl.segs[0].msn {
		return nil, ErrNoSuchSegment
	}
	if msn-pl.segs[0].msn >= uint64(len(pl.segs)) {
		return nil, ErrNoSuchSegment
	}
	i := int(msn - pl.segs[0].msn)
	if !pl.segs[i].closed {
		return nil, ErrNoSuchSegment
	}
	parts := pl.parts(r, &pl.segs[i])
	if len(parts) == 0 {
		return nil, ErrNoSuchSegment
	}
	return parts, nil
}

// PartChunks returns, in order, the chunks of part index (the URI's second
// number) of rendition's segment msn, once the part is listed.
func (pl *Playlist) PartChunks(rendition string, msn uint64, index int) ([]manifest.Entry, error) {
	r := pl.rends[rendition]
	if r == nil || len(pl.segs) == 0 || msn < pl.segs[0].msn || msn-pl.segs[0].msn >= uint64(len(pl.segs)) || pl.group == 1 {
		return nil, ErrNoSuchSegment
	}
	for _, p := range pl.partList(r, &pl.segs[msn-pl.segs[0].msn]) {
		if p.index == index {
			return p.entries, nil
		}
	}
	return nil, ErrNoSuchSegment
}

// Media renders rendition's media playlist.
func (pl *Playlist) Media(rendition string) ([]byte, error) {
	r := pl.rends[rendition]
	if r == nil || len(pl.segs) == 0 || len(r.inits) == 0 {
		return nil, ErrNoSuchSegment
	}
	var b strings.Builder
	pt := pl.partTarget.Seconds()
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:%d\n", pl.targetDur)
	fmt.Fprintf(&b, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%.3f\n", 3*pt)
	fmt.Fprintf(&b, "#EXT-X-PART-INF:PART-TARGET=%.3f\n", pt)
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", pl.segs[0].msn)
	if pl.discSeq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", pl.discSeq)
	}
	// Parts are listed for the segments of the last three target durations.
	partsFrom := time.Duration(0)
	var tail time.Duration
	for i := len(pl.segs) - 1; i >= 0; i-- {
		tail += pl.segs[i].primaryDur
		if tail > 3*time.Duration(pl.targetDur)*time.Second {
			partsFrom = time.Duration(i + 1)
			break
		}
	}
	var curInit manifest.ID
	for i := range pl.segs {
		s := &pl.segs[i]
		parts := pl.parts(r, s)
		in, _ := pl.initFor(r, s.first)
		if in.Hash != curInit {
			if i > 0 {
				b.WriteString("#EXT-X-DISCONTINUITY\n")
			}
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"%s%s\"\n", pl.p.ChunkURI, in.Hash)
			curInit = in.Hash
		}
		if len(parts) > 0 {
			start := parts[0].IngestTime.Add(-parts[0].Duration).UTC()
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", start.Format("2006-01-02T15:04:05.000Z"))
		}
		if time.Duration(i) >= partsFrom {
			for _, p := range pl.partList(r, s) {
				uri := pl.p.ChunkURI + p.entries[0].Hash.String()
				if pl.group > 1 {
					uri = fmt.Sprintf("part/%d.%d.m4s", s.msn, p.index)
				}
				fmt.Fprintf(&b, "#EXT-X-PART:DURATION=%.5f,URI=\"%s\"", p.dur.Seconds(), uri)
				if p.entries[0].Independent {
					b.WriteString(",INDEPENDENT=YES")
				}
				b.WriteByte('\n')
			}
		}
		if !s.closed {
			continue
		}
		var dur time.Duration
		for _, e := range parts {
			dur += e.Duration
		}
		if len(parts) == 0 {
			dur = s.primaryDur
			b.WriteString("#EXT-X-GAP\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%.5f,\nseg/%d.m4s\n", dur.Seconds(), s.msn)
	}
	return []byte(b.String()), nil
}

// Multivariant renders the multivariant playlist: each video rendition as a
// variant, audio as one EXT-X-MEDIA group (demuxed renditions).
func (pl *Playlist) Multivariant() ([]byte, error) {
	var video, audio []manifest.RenditionInfo
	for _, in := range pl.infos {
		if in.Kind == "video" {
			video = append(video, in)
		} else {
			audio = append(audio, in)
		}
	}
	if len(video)+len(audio) == 0 || len(pl.segs) == 0 {
		return nil, ErrNoSuchSegment
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n")
	var audioBW int
	var audioCodec string
	for i, a := range audio {
		def := "NO"
		if i == 0 {
			def = "YES"
			audioBW, audioCodec = pl.peakBandwidth(a.Name), a.Codec
		}
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"%s\",DEFAULT=%s,AUTOSELECT=YES", a.Name, def)
		if a.Channels > 0 {
			fmt.Fprintf(&b, ",CHANNELS=\"%d\"", a.Channels)
		}
		fmt.Fprintf(&b, ",URI=\"%s/index.m3u8\"\n", a.Name)
	}
	if len(video) == 0 {
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"\n%s/index.m3u8\n", max(audioBW, 1), audioCodec, audio[0].Name)
		return []byte(b.String()), nil
	}
	for _, v := range video {
		codecs := v.Codec
		if audioCodec != "" {
			codecs += "," + audioCodec
		}
		fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"", max(pl.peakBandwidth(v.Name)+audioBW, 1), codecs)
		if v.Width > 0 && v.Height > 0 {
			fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.Width, v.Height)
		}
		if v.FrameRate > 0 {
			fmt.Fprintf(&b, ",FRAME-RATE=%.3f", v.FrameRate)
		}
		if len(audio) > 0 {
			b.WriteString(",AUDIO=\"audio\"")
		}
		fmt.Fprintf(&b, "\n%s/index.m3u8\n", v.Name)
	}
	return []byte(b.String()), nil
}

// Bandwidth is the peak bit rate of a viewer's download, in bits per second:
// the highest video rendition plus the first audio rendition.
func (pl *Playlist) Bandwidth() int {
	video, audio := 0, 0
	for _, in := range pl.infos {
		if in.Kind == "video" {
			video = max(video, pl.peakBandwidth(in.Name))
		} else if audio == 0 {
			audio = pl.peakBandwidth(in.Name)
		}
	}
	return video + audio
}

// AverageBandwidth is the mean bit rate of the highest video rendition plus
// the first audio one over the window, in bits per second (0 before media):
// what one viewer takes on average, where Bandwidth is the peak a player
// must budget for.
func (pl *Playlist) AverageBandwidth() int {
	video, audio := 0, 0
	for _, in := range pl.infos {
		if in.Kind == "video" {
			video = max(video, pl.meanBandwidth(in.Name))
		} else if audio == 0 {
			audio = pl.meanBandwidth(in.Name)
		}
	}
	return video + audio
}

// meanBandwidth is a rendition's bytes over its duration in the window.
func (pl *Playlist) meanBandwidth(rendition string) int {
	r := pl.rends[rendition]
	if r == nil {
		return 0
	}
	var bytes int
	var dur time.Duration
	for i := range pl.segs {
		for _, e := range pl.parts(r, &pl.segs[i]) {
			bytes += int(e.Size)
			dur += e.Duration
		}
	}
	if dur <= 0 {
		return 0
	}
	return int(math.Ceil(float64(bytes*8) / dur.Seconds()))
}

// peakBandwidth is the highest bit rate of any segment (or, before one is
// closed, of any chunk) of a rendition in the window, in bits per second.
func (pl *Playlist) peakBandwidth(rendition string) int {
	r := pl.rends[rendition]
	if r == nil {
		return 0
	}
	peak := 0.0
	for i := range pl.segs {
		var bytes int
		var dur time.Duration
		for _, e := range pl.parts(r, &pl.segs[i]) {
			bytes += int(e.Size)
			dur += e.Duration
		}
		if dur > 0 {
			peak = max(peak, float64(bytes*8)/dur.Seconds())
		}
	}
	return int(math.Ceil(peak))
}
