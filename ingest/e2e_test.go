package ingest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
	"github.com/seedcast/seedcast/origin"
	"github.com/seedcast/seedcast/publish"
	"github.com/seedcast/seedcast/sfu"
)

type staticKeys map[string]string

func (k staticKeys) CheckPublish(stream, token string) error {
	if k[stream] == "" || k[stream] != token {
		return sfu.ErrUnauthorized
	}
	return nil
}

// liveServer is an SFU and an origin on one loopback HTTP server, wired as
// `seedcast serve` wires them: a Manager taps the broadcast room "live"
// whenever the SFU opens it.
type liveServer struct {
	url    string
	sfu    *sfu.Server
	origin *origin.Server
	stream *origin.Stream
	mgr    *Manager
}

func startLive(t *testing.T, ctx context.Context) *liveServer {
	t.Helper()
	o := origin.New(origin.Params{Registry: prometheus.NewRegistry()})
	mgr := NewManager(ManagerParams{Origin: o})
	t.Cleanup(mgr.Close)
	s, err := sfu.NewServer(sfu.ServerParams{
		ICE: sfu.LoopbackICE(3 * time.Second), PublishAuth: staticKeys{"live": "secret"},
		Registerer: prometheus.NewRegistry(), OnRoomCreated: mgr.Attach,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	st, err := mgr.AddStream(ctx, "live")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/whip/", s.Handler())
	mux.Handle("/whep/", s.Handler())
	mux.Handle("/", o.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &liveServer{url: ts.URL, sfu: s, origin: o, stream: st, mgr: mgr}
}

// waitChunks waits until the stream's manifest holds n chunks of rendition.
func waitChunks(t *testing.T, ctx context.Context, st *origin.Stream, rendition string, n int) *manifest.Manifest {
	t.Helper()
	for {
		changed := st.Changed()
		m, err := manifest.DecodeManifest(bytes.NewReader(st.Manifest()))
		if err != nil {
			t.Fatal(err)
		}
		count := 0
		for _, e := range m.Entries {
			if e.Rendition == rendition {
				count++
			}
		}
		if count >= n {
			return m
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("only %d chunks of %s before the deadline", count, rendition)
		}
	}
}

func publishDemo(t *testing.T, ctx context.Context, url string) <-chan error {
	t.Helper()
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- publish.Run(ctx, publish.Params{
			Endpoint: url + "/whip/live", Token: "secret", Clip: clip,
			SettingEngine: sfu.LoopbackICE(3 * time.Second).SettingEngine(),
		})
	}()
	return errc
}

// TestWHIPToChunks publishes the demo clip with the WHIP client through the
// SFU into ingest: every frame from the first keyframe on reaches the chunks
// intact, on the clip's 1/30 s grid, with audio in sync.
func TestWHIPToChunks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	live := startLive(t, ctx)
	pubCtx, stopPub := context.WithCancel(ctx)
	errc := publishDemo(t, pubCtx, live.url)
	m := waitChunks(t, ctx, live.stream, "v0", int(4*time.Second/manifest.DefaultChunkDuration)) // 4 s
	stopPub()
	if err := <-errc; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	entries, err := m.Verify(live.stream.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	clip, _ := media.DemoClip()
	byRend := map[string][]mp4.FullSample{}
	inits := map[string][]byte{}
	for _, e := range entries {
		data, ok := live.origin.Store().Get(e.Hash)
		if !ok || manifest.Sum(data) != e.Hash {
			t.Fatalf("%s/%d not in the store or wrong bytes", e.Rendition, e.Seq)
		}
		if e.Kind == manifest.KindInit {
			inits[e.Rendition] = data
			continue
		}
		f, err := mp4.DecodeFile(bytes.NewReader(append(bytes.Clone(inits[e.Rendition]), data...)))
		if err != nil {
			t.Fatal(err)
		}
		fs, _ := f.Segments[0].Fragments[0].GetFullSamples(f.Init.Moov.Mvex.Trex)
		byRend[e.Rendition] = append(byRend[e.Rendition], fs...)
	}
	video := byRend["v0"]
	if len(video) < 90 {
		t.Fatalf("%d video frames in chunks", len(video))
	}
	// The first frame is the clip's first keyframe; find its index in the clip.
	start := -1
	for i, au := range clip.VideoUnits {
		if au.Keyframe && sameFrame(au.Data, video[0].Data) {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatal("first chunked frame is not a keyframe of the clip")
	}
	for i, s := range video {
		au := clip.VideoUnits[(start+i)%len(clip.VideoUnits)]
		if !sameFrame(au.Data, s.Data) {
			t.Fatalf("frame %d (clip frame %d) differs", i, (start+i)%len(clip.VideoUnits))
		}
		if i > 0 {
			if d := int64(s.DecodeTime) - int64(video[i-1].DecodeTime); d < 2990 || d > 3010 {
				t.Errorf("frame %d comes %d ticks after the previous", i, d)
			}
		}
	}
	// A/V sync: the clip's audio packet at the media time of the first video
	// frame lies within one audio packet of it.
	audio := byRend["a0"]
	if len(audio) < 100 {
		t.Fatalf("%d audio packets", len(audio))
	}
	vStart := time.Duration(video[0].DecodeTime) * time.Second / 90000
	aStart := time.Duration(audio[0].DecodeTime) * time.Second / 48000
	clipV := clip.VideoUnits[start].DTS
	for i, s := range audio {
		at := aStart + time.Duration(i)*20*time.Millisecond
		if at < vStart {
			continue
		}
		want := clip.AudioUnits[int((clipV+at-vStart)/(20*time.Millisecond))%len(clip.AudioUnits)]
		if !bytes.Equal(want.Data, s.Data) {
			found := false
			for _, d := range []int{-1, 1} {
				k := (int((clipV+at-vStart)/(20*time.Millisecond)) + d + len(clip.AudioUnits)) % len(clip.AudioUnits)
				found = found || bytes.Equal(clip.AudioUnits[k].Data, s.Data)
			}
			if !found {
				t.Errorf("audio at %v is not the clip's packet for that time (A/V out of sync by more than 20 ms)", at)
			}
		}
		break
	}
	for name, mg := range live.mgr.bc {
		if n := mg.bc.Dropped(); n != 0 {
			t.Errorf("%s: %d tap events dropped", name, n)
		}
	}
}

// TestPublisherReconnect: a publisher leaves (DELETE) and comes back; the
// stream goes on with the same key, increasing sequence numbers, media time
// that advanced by the time away, and a discontinuity mark.
func TestPublisherReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	live := startLive(t, ctx)
	for round, want := range []int{6, 14} {
		pubCtx, stopPub := context.WithCancel(ctx)
		errc := publishDemo(t, pubCtx, live.url)
		waitChunks(t, ctx, live.stream, "v0", want)
		stopPub()
		if err := <-errc; err != nil {
			t.Fatalf("round %d: publisher: %v", round, err)
		}
	}
	m, err := manifest.DecodeManifest(bytes.NewReader(live.stream.Manifest()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(live.stream.PublicKey()); err != nil {
		t.Fatal(err)
	}
	for _, rend := range []string{"v0", "a0"} {
		var prev *manifest.JSONEntry
		discont := 0
		lags := [2][]time.Duration{} // ingest time − media time, before and after the reconnect
		for i := range m.Entries {
			e := &m.Entries[i]
			if e.Rendition != rend {
				continue
			}
			if prev != nil && e.Seq <= prev.Seq {
				t.Fatalf("%s: seq %d after %d", rend, e.Seq, prev.Seq)
			}
			if e.Discontinuity {
				discont++
				if prev == nil || e.MediaTimeUs < prev.MediaTimeUs+prev.DurationUs {
					t.Fatalf("%s/%d: discontinuity does not move media time forward", rend, e.Seq)
				}

			}
			lag := time.Duration(e.IngestTime-e.MediaTimeUs) * time.Microsecond
			lags[discont] = append(lags[discont], lag)
			prev = e
		}
		if discont != 1 {
			t.Fatalf("%s: %d discontinuities, want 1 (the reconnect)", rend, discont)
		}
		// Media time kept pace with the wall clock across the time away,
		// connecting again included: a chunk is ingested as long after its
		// media time as before (medians: the first chunks of a session wait
		// for sender reports), so viewers' playback clocks hold across it.
		before, after := median(lags[0]), median(lags[1])
		t.Logf("%s: ingest time − media time, median: %v before the reconnect, %v after", rend, before%time.Hour, after%time.Hour)
		if d := (after - before).Abs(); d > 300*time.Millisecond {
			t.Errorf("%s: media time fell %v behind the wall clock across the reconnect", rend, after-before)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// sameFrame compares two H.264 frames by their picture NAL units (parameter
// sets and delimiters may come and go on the way).
func sameFrame(a, b []byte) bool {
	pa, pb := pictureNALUs(a), pictureNALUs(b)
	if len(pa) != len(pb) {
		return false
	}
	for i := range pa {
		if !bytes.Equal(pa[i], pb[i]) {
			return false
		}
	}
	return true
}

func pictureNALUs(avcc []byte) [][]byte {
	ns, _ := avc.GetNalusFromSample(avcc)
	var out [][]byte
	for _, n := range ns {
		if t := avc.GetNaluType(n[0]); t == avc.NALU_IDR || t == avc.NALU_NON_IDR {
			out = append(out, n)
		}
	}
	return out
}
