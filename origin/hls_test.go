package origin

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
)

// mediaLines is a parsed media playlist: its tags in order.
type mediaLines struct {
	tags     map[string]string // first value of each tag
	parts    []partLine
	segments []segLine
	discont  int
	maps     []string
}

type partLine struct {
	dur         float64
	uri         string
	independent bool
	segment     int // index of the segment it belongs to
}

type segLine struct {
	dur float64
	uri string
}

func parseMedia(t *testing.T, body []byte) mediaLines {
	t.Helper()
	m := mediaLines{tags: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(body))
	var pendingDur float64
	for sc.Scan() {
		line := sc.Text()
		tag, val, _ := strings.Cut(line, ":")
		switch {
		case tag == "#EXT-X-PART":
			attrs := attrList(val)
			d, _ := strconv.ParseFloat(attrs["DURATION"], 64)
			m.parts = append(m.parts, partLine{d, strings.Trim(attrs["URI"], `"`), attrs["INDEPENDENT"] == "YES", len(m.segments)})
		case tag == "#EXTINF":
			pendingDur, _ = strconv.ParseFloat(strings.TrimSuffix(val, ","), 64)
		case tag == "#EXT-X-DISCONTINUITY":
			m.discont++
		case tag == "#EXT-X-MAP":
			m.maps = append(m.maps, strings.Trim(attrList(val)["URI"], `"`))
		case strings.HasPrefix(line, "#"):
			if _, ok := m.tags[tag]; !ok {
				m.tags[tag] = val
			}
		case line != "":
			m.segments = append(m.segments, segLine{pendingDur, line})
		}
	}
	return m
}

func attrList(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// demoOutputs chunks loops of the demo clip (renditions v0 and a0) as ingest
// would, with a clock that advances one millisecond per call.
func demoOutputs(t *testing.T, loops int) []chunker.Output {
	t.Helper()
	return demoOutputsD(t, loops, 0)
}

// demoOutputsD is demoOutputs with chunks of d (0: the default).
func demoOutputsD(t *testing.T, loops int, d time.Duration) []chunker.Output {
	t.Helper()
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var outs []chunker.Output
	c, err := chunker.New(chunker.Params{
		Stream:        "demo",
		ChunkDuration: d,
		Now:           func() time.Time { now = now.Add(time.Millisecond); return now },
		Publish:       func(o chunker.Output) { outs = append(outs, o) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddRendition("v0", *clip.Video); err != nil {
		t.Fatal(err)
	}
	if err := c.AddRendition("a0", *clip.Audio); err != nil {
		t.Fatal(err)
	}
	clip.Each(loops, func(k media.Kind, au media.AccessUnit) bool {
		name := "a0"
		if k == media.KindVideo {
			name = "v0"
		}
		if err := c.Push(name, au); err != nil {
			t.Fatalf("push %s %v: %v", name, au.DTS, err)
		}
		return true
	})
	c.Flush()
	return outs
}

// demoPlaylist is a playlist of loops of the demo clip, and the chunker's
// outputs it was fed.
func demoPlaylist(t *testing.T, loops int, p PlaylistParams) (*Playlist, []chunker.Output) {
	t.Helper()
	outs := demoOutputsD(t, loops, p.ChunkDuration)
	pl := NewPlaylist(p)
	for _, o := range outs {
		if o.Renditions != nil {
			pl.SetRenditions(o.Renditions)
		}
		pl.Add(o.Batch.Entries)
	}
	return pl, outs
}

// firstInit is the id of rendition's first init segment in outs.
func firstInit(outs []chunker.Output, rendition string) manifest.ID {
	for _, o := range outs {
		for _, e := range o.Batch.Entries {
			if e.Kind == manifest.KindInit && e.Rendition == rendition {
				return e.Hash
			}
		}
	}
	return manifest.ID{}
}

// TestMediaPlaylistLayout checks the playlists of the demo clip (30 fps,
// 1 s GOPs) cut into chunks of 250 ms (each chunk a part), 125 ms and
// 100 ms (two chunks to a part, at part/{msn}.{i}.m4s).
func TestMediaPlaylistLayout(t *testing.T) {
	for _, d := range []time.Duration{250 * time.Millisecond, 125 * time.Millisecond, 100 * time.Millisecond} {
		t.Run(d.String(), func(t *testing.T) { testMediaPlaylistLayout(t, d) })
	}
}

func testMediaPlaylistLayout(t *testing.T, d time.Duration) {
	pl, outs := demoPlaylist(t, 1, PlaylistParams{ChunkDuration: d})
	v, err := pl.Media("v0")
	if err != nil {
		t.Fatal(err)
	}
	m := parseMedia(t, v)
	pt, _ := strconv.ParseFloat(attrList(m.tags["#EXT-X-PART-INF"])["PART-TARGET"], 64)
	hold, _ := strconv.ParseFloat(attrList(m.tags["#EXT-X-SERVER-CONTROL"])["PART-HOLD-BACK"], 64)
	if pt <= 0 || hold < 3*pt-1e-9 {
		t.Errorf("PART-TARGET %v, PART-HOLD-BACK %v", pt, hold)
	}
	if m.tags["#EXT-X-MEDIA-SEQUENCE"] != "0" || m.tags["#EXT-X-TARGETDURATION"] != "1" {
		t.Errorf("tags %v", m.tags)
	}
	// 10 s of 1 s GOPs: nine closed segments and the open tenth (its last
	// keyframe has no successor to close it).
	if len(m.segments) != 9 {
		t.Fatalf("%d segments:\n%s", len(m.segments), v)
	}
	for i, s := range m.segments {
		if s.uri != fmt.Sprintf("seg/%d.m4s", i) || s.dur < 0.99 || s.dur > 1.01 {
			t.Errorf("segment %d: %+v", i, s)
		}
	}
	if len(m.maps) != 1 || m.maps[0] != "../../../c/"+firstInit(outs, "v0").String() {
		t.Errorf("maps %v", m.maps)
	}
	// Parts: the last three target durations, each ≤ PART-TARGET, ≥ 85% of it
	// unless last in its segment, the first of each segment independent.
	if len(m.parts) == 0 {
		t.Fatal("no parts")
	}
	for i, p := range m.parts {
		first := i == 0 || m.parts[i-1].segment != p.segment
		last := i == len(m.parts)-1 || m.parts[i+1].segment != p.segment
		if p.dur > pt+1e-9 || !last && p.dur < 0.85*pt {
			t.Errorf("part %d lasts %v with PART-TARGET %v", i, p.dur, pt)
		}
		if first && !p.independent {
			t.Errorf("part %d opens segment %d but is not independent", i, p.segment)
		}
	}
	// The audio playlist has the same segments.
	a, _ := pl.Media("a0")
	ma := parseMedia(t, a)
	if len(ma.segments) != len(m.segments) {
		t.Errorf("audio has %d segments, video %d", len(ma.segments), len(m.segments))
	}
	for i := range ma.segments {
		if d := ma.segments[i].dur - m.segments[i].dur; d > 0.021 || d < -0.034 {
			t.Errorf("segment %d: audio %v s, video %v s", i, ma.segments[i].dur, m.segments[i].dur)
		}
	}
	// Segment bytes are the chunks of its slots, in order.
	perSeg := int(time.Second / d)
	chunks, err := pl.SegmentChunks("v0", 2)
	if err != nil || len(chunks) != perSeg || chunks[0].Seq != uint64(2*perSeg) || !chunks[0].Independent {
		t.Errorf("segment 2: %v %+v", err, chunks)
	}
	// A part's URI: the chunk's own, or part/{msn}.{i}.m4s for the chunks
	// that PartChunks gives, lasting what the playlist says.
	for _, p := range m.parts {
		if d >= MinPart {
			if !strings.HasPrefix(p.uri, "../../../c/") {
				t.Fatalf("part %+v: not a chunk URL", p)
			}
			continue
		}
		var msn uint64
		var i int
		if _, err := fmt.Sscanf(p.uri, "part/%d.%d.m4s", &msn, &i); err != nil {
			t.Fatalf("part URI %q: %v", p.uri, err)
		}
		es, err := pl.PartChunks("v0", msn, i)
		var sum time.Duration
		for _, e := range es {
			sum += e.Duration
		}
		if err != nil || len(es) == 0 || len(es) > 2 || math.Abs(sum.Seconds()-p.dur) > 1e-5 || es[0].Independent != p.independent {
			t.Errorf("part %q: %d chunks lasting %v (%v), playlist says %v", p.uri, len(es), sum, err, p.dur)
		}
	}
	if _, err := pl.SegmentChunks("v0", 9); err == nil {
		t.Error("open segment served as a whole")
	}
	if _, err := pl.SegmentChunks("nope", 1); err == nil {
		t.Error("unknown rendition")
	}
}

func TestMultivariant(t *testing.T) {
	pl, _ := demoPlaylist(t, 1, PlaylistParams{})
	b, err := pl.Multivariant()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="a0",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a0/index.m3u8"`,
		`CODECS="avc1.42C01E,opus"`, "RESOLUTION=640x360", "FRAME-RATE=30.000", `AUDIO="audio"`, "\nv0/index.m3u8\n",
	} {
		if !strings.Contains(strings.ToUpper(s), strings.ToUpper(want)) {
			t.Errorf("multivariant lacks %q:\n%s", want, s)
		}
	}
	bw := attrList(strings.SplitN(s[strings.Index(s, "#EXT-X-STREAM-INF:")+18:], "\n", 2)[0])["BANDWIDTH"]
	if n, _ := strconv.Atoi(bw); n < 300_000 || n > 2_000_000 {
		t.Errorf("BANDWIDTH %s for a ~500 kbit/s stream", bw)
	}
}

func TestPlaylistReady(t *testing.T) {
	type ready struct {
		msn  uint64
		part int
		want bool
	}
	for _, tc := range []struct {
		d     time.Duration
		slots int // v0 chunks added
		cases []ready
	}{
		// Slots 0–5: segment 0 closed, segment 1 has parts 0 and 1.
		{250 * time.Millisecond, 6, []ready{{0, -1, true}, {0, 3, true}, {1, 0, true}, {1, 1, true}, {1, 2, false}, {1, -1, false}, {2, 0, false}}},
		// Slots 0–12: segment 0 closed (four parts of two chunks), segment
		// 1 has parts (8, 9) and (10, 11); (12, 13) is not over.
		{125 * time.Millisecond, 13, []ready{{0, -1, true}, {0, 3, true}, {1, 0, true}, {1, 1, true}, {1, 2, false}, {1, -1, false}, {2, 0, false}}},
	} {
		pl := NewPlaylist(PlaylistParams{ChunkDuration: tc.d})
		if pl.Ready("v0", 0, 0) {
			t.Error("empty playlist ready")
		}
		_, outs := demoPlaylist(t, 1, PlaylistParams{ChunkDuration: tc.d})
		pl.SetRenditions([]manifest.RenditionInfo{{Name: "v0", Kind: "video"}, {Name: "a0", Kind: "audio"}})
		var added int
		for _, o := range outs {
			pl.Add(o.Batch.Entries)
			for _, e := range o.Batch.Entries {
				if e.Rendition == "v0" && e.Kind == manifest.KindChunk {
					added++
				}
			}
			if added == tc.slots {
				break
			}
		}
		for _, c := range tc.cases {
			if got := pl.Ready("v0", c.msn, c.part); got != c.want {
				t.Errorf("%v: Ready(v0, %d, %d) = %v", tc.d, c.msn, c.part, got)
			}
		}
		if pl.NextMSN() != 1 || pl.Ready("zz", 0, -1) {
			t.Errorf("%v: NextMSN %d", tc.d, pl.NextMSN())
		}
	}
}

func TestPlaylistWindow(t *testing.T) {
	pl, _ := demoPlaylist(t, 3, PlaylistParams{Window: 5 * time.Second})
	m := parseMedia(t, must(pl.Media("v0")))
	seq, _ := strconv.Atoi(m.tags["#EXT-X-MEDIA-SEQUENCE"])
	if seq == 0 || len(m.segments) > 7 || len(m.segments) < 4 {
		t.Errorf("media sequence %d with %d segments", seq, len(m.segments))
	}
	if m.segments[0].uri != fmt.Sprintf("seg/%d.m4s", seq) {
		t.Errorf("first segment %s at media sequence %d", m.segments[0].uri, seq)
	}
	if _, err := pl.SegmentChunks("v0", uint64(seq-1)); err == nil {
		t.Error("pruned segment still served")
	}
}

// A new init segment of the primary rendition starts a new segment with a
// discontinuity and a new map.
func TestPlaylistInitChange(t *testing.T) {
	d := 250 * time.Millisecond
	pl := NewPlaylist(PlaylistParams{ChunkDuration: d})
	pl.SetRenditions([]manifest.RenditionInfo{{Name: "v0", Kind: "video"}})
	at := time.Unix(0, 0)
	chunk := func(seq uint64, indep bool) manifest.Entry {
		return manifest.Entry{Kind: manifest.KindChunk, Rendition: "v0", Seq: seq, MediaTime: time.Duration(seq) * d, Duration: d,
			IngestTime: at.Add(time.Duration(seq) * d), Size: 1000, Independent: indep, Hash: manifest.Sum([]byte{byte(seq)})}
	}
	pl.Add([]manifest.Entry{{Kind: manifest.KindInit, Rendition: "v0", Seq: 0, Hash: manifest.Sum([]byte("init1"))}})
	for seq := uint64(0); seq < 6; seq++ {
		pl.Add([]manifest.Entry{chunk(seq, seq%4 == 0)})
	}
	pl.Add([]manifest.Entry{{Kind: manifest.KindInit, Rendition: "v0", Seq: 6, Hash: manifest.Sum([]byte("init2"))}})
	for seq := uint64(6); seq < 12; seq++ {
		pl.Add([]manifest.Entry{chunk(seq, seq == 6 || seq == 10)})
	}
	m := parseMedia(t, must(pl.Media("v0")))
	if m.discont != 1 || len(m.maps) != 2 || m.maps[1] != "../../../c/"+manifest.Sum([]byte("init2")).String() {
		t.Errorf("discontinuities %d, maps %v", m.discont, m.maps)
	}
	// Segments: [0,4) [4,6) (cut by the new init) [6,10) and the open [10,12).
	if len(m.segments) != 3 || m.segments[1].dur != 0.5 {
		t.Errorf("segments %+v", m.segments)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestBandwidth(t *testing.T) {
	pl, _ := demoPlaylist(t, 1, PlaylistParams{})
	// The demo clip is ~450 kbit/s of video and 64 kbit/s of Opus (plus
	// container overhead); segment peaks run somewhat higher.
	bw, avg := pl.Bandwidth(), pl.AverageBandwidth()
	if bw < 450_000 || bw > 900_000 {
		t.Errorf("Bandwidth() = %d", bw)
	}
	// The clip's own size over its length: 680 KB in 10 s is ~550 kbit/s.
	if avg < 480_000 || avg > 620_000 || avg > bw {
		t.Errorf("AverageBandwidth() = %d (peak %d)", avg, bw)
	}
}
