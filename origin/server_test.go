package origin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/chunker"
	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/media"
)

// demoFeed pushes the demo clip through a real chunker into the stream
// "demo" of a new server, a given number of seconds of media at a time.
type demoFeed struct {
	srv  *Server
	st   *Stream
	pub  ed25519.PublicKey
	key  ed25519.PrivateKey
	c    *chunker.Chunker
	clip *media.Clip
	now  time.Time
	next time.Duration // media time fed so far
}

func newDemoFeed(t testing.TB, window time.Duration) *demoFeed {
	t.Helper()
	return newDemoFeedD(t, window, manifest.DefaultChunkDuration)
}

// newDemoFeedD is newDemoFeed with chunks of d.
func newDemoFeedD(t testing.TB, window, d time.Duration) *demoFeed {
	t.Helper()
	clip, err := media.DemoClip()
	if err != nil {
		t.Fatal(err)
	}
	f := &demoFeed{clip: clip, now: time.Unix(1_800_000_000, 0)}
	clock := func() time.Time { return f.now }
	f.srv = New(Params{Registry: prometheus.NewRegistry(), Window: window, Now: clock})
	pub, key, _ := ed25519.GenerateKey(nil)
	f.pub, f.key = pub, key
	if f.st, err = f.srv.AddStream("demo", pub, d); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.AddStream("demo", pub, 0); err == nil {
		t.Error("stream registered twice")
	}
	// Signed here as ingest.Pipeline signs (this package cannot import ingest).
	f.c, _ = chunker.New(chunker.Params{Stream: "demo", ChunkDuration: d, Now: clock, Publish: func(o chunker.Output) {
		if err := o.Batch.Sign(key); err != nil {
			t.Error(err)
		}
		if err := f.st.Publish(o); err != nil {
			t.Error(err)
		}
	}})
	_ = f.c.AddRendition("v0", *clip.Video)
	_ = f.c.AddRendition("a0", *clip.Audio)
	return f
}

// feed pushes the units of media time [f.next, f.next+d).
func (f *demoFeed) feed(t testing.TB, d time.Duration) {
	t.Helper()
	end := f.next + d
	f.clip.Each(0, func(k media.Kind, au media.AccessUnit) bool {
		if au.DTS < f.next {
			return true
		}
		if au.DTS >= end {
			return false
		}
		name := "a0"
		if k == media.KindVideo {
			name = "v0"
		}
		f.now = time.Unix(1_800_000_000, 0).Add(au.DTS)
		if err := f.c.Push(name, au); err != nil {
			t.Fatal(err)
		}
		return true
	})
	f.next = end
}

func TestManifestWindow(t *testing.T) {
	f := newDemoFeed(t, 10*time.Second)
	f.feed(t, 30*time.Second)
	st, pub := f.st, f.pub
	m, err := manifest.DecodeManifest(bytes.NewReader(st.Manifest()))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := m.Verify(pub)
	if err != nil {
		t.Fatal(err)
	}
	// The init segments (signed at the start) stay; chunks cover the window.
	if len(m.InitSegments) != 2 {
		t.Errorf("%d init segments", len(m.InitSegments))
	}
	var first, last uint64 = 1 << 62, 0
	for _, e := range entries {
		if e.Kind == manifest.KindChunk {
			first, last = min(first, e.Seq), max(last, e.Seq)
		}
	}
	if span := time.Duration(last-first+1) * manifest.DefaultChunkDuration; span < 10*time.Second || span > 11*time.Second {
		t.Errorf("manifest spans slots %d–%d (%v), window 10 s", first, last, span)
	}
}

// TestManifestAfter: ?after=N gives only the newer batches' chunks, still
// verifiable, with the init segments; a bad N is a 400.
func TestManifestAfter(t *testing.T) {
	f := newDemoFeed(t, 10*time.Second)
	f.feed(t, 5*time.Second)
	full, err := manifest.DecodeManifest(bytes.NewReader(f.st.Manifest()))
	if err != nil {
		t.Fatal(err)
	}
	mid := full.Entries[len(full.Entries)/2].Batch
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/demo/manifest?after="+strconv.FormatUint(mid, 10), nil))
	part, err := manifest.DecodeManifest(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Verify(f.pub); err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, e := range full.Entries {
		if e.Batch > mid {
			want++
		}
	}
	if len(part.Entries) != want || want == 0 || len(part.InitSegments) != len(full.InitSegments) {
		t.Errorf("after %d: %d entries and %d init segments, want %d and %d", mid, len(part.Entries), len(part.InitSegments), want, len(full.InitSegments))
	}
	for _, e := range part.Entries {
		if e.Batch <= mid {
			t.Errorf("entry of batch %d", e.Batch)
		}
	}
	rec = httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/demo/manifest?after=x", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("after=x: %d", rec.Code)
	}
}

// TestManifestLast: ?last=N gives the chunks of the newest N batches only,
// still verifiable, with the init segments; N past the window gives it
// whole; a bad N is a 400.
func TestManifestLast(t *testing.T) {
	f := newDemoFeed(t, 10*time.Second)
	f.feed(t, 5*time.Second)
	full, err := manifest.DecodeManifest(bytes.NewReader(f.st.Manifest()))
	if err != nil {
		t.Fatal(err)
	}
	get := func(q string) (*manifest.Manifest, int) {
		rec := httptest.NewRecorder()
		f.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/live/demo/manifest?"+q, nil))
		if rec.Code != http.StatusOK {
			return nil, rec.Code
		}
		m, err := manifest.DecodeManifest(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Verify(f.pub); err != nil {
			t.Fatal(err)
		}
		return m, rec.Code
	}
	batches := map[uint64]bool{}
	for _, e := range full.Entries {
		batches[e.Batch] = true
	}
	part, _ := get("last=4")
	got := map[uint64]bool{}
	for _, e := range part.Entries {
		got[e.Batch] = true
	}
	newest := slices.Sorted(maps.Keys(batches))
	if len(got) != 4 || !got[newest[len(newest)-1]] || !got[newest[len(newest)-4]] || len(part.InitSegments) != len(full.InitSegments) {
		t.Errorf("last=4: chunk batches %v (of %d), %d init segments", slices.Sorted(maps.Keys(got)), len(newest), len(part.InitSegments))
	}
	if all, _ := get("last=100000"); len(all.Entries) != len(full.Entries) {
		t.Errorf("last past the window: %d entries, want %d", len(all.Entries), len(full.Entries))
	}
	if _, code := get("last=0"); code != http.StatusBadRequest {
		t.Errorf("last=0: %d", code)
	}
}

func TestBlockingReload(t *testing.T) {
	f := newDemoFeed(t, time.Minute)
	f.feed(t, 3*time.Second)
	h := f.srv.Handler()
	do := func(ctx context.Context, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil).WithContext(ctx))
		return rec
	}
	ctx := context.Background()
	if rec := do(ctx, "/live/demo/v0/index.m3u8?_HLS_msn=1"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "seg/1.m4s") {
		t.Errorf("held segment: %d", rec.Code)
	}
	next := strconv.FormatUint(f.st.playlist.NextMSN(), 10)
	// A client that goes away stops waiting with 503.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if rec := do(short, "/live/demo/v0/index.m3u8?_HLS_msn="+next+"&_HLS_part=3"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("abandoned blocking request: %d", rec.Code)
	}
	// A request for the open segment's last part is answered when it is published.
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- do(ctx, "/live/demo/v0/index.m3u8?_HLS_msn="+next+"&_HLS_part=3") }()
	// Wait until the request is parked on the stream's change channel.
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case rec := <-done:
			t.Fatalf("answered before the part existed: %d", rec.Code)
		default:
		}
		if waiting(f.st) || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	f.feed(t, time.Second)
	rec := <-done
	body := rec.Body.String()
	partsOfOpen := strings.Count(body[strings.LastIndex(body, "#EXTINF"):], "#EXT-X-PART:")
	if rec.Code != 200 || !strings.Contains(body, "seg/"+next+".m4s") && partsOfOpen < 4 {
		t.Errorf("after publishing: %d\n%s", rec.Code, rec.Body)
	}
	if rec := do(ctx, "/live/demo/v0/index.m3u8?_HLS_msn=99"); rec.Code != http.StatusBadRequest {
		t.Errorf("far-future segment: %d", rec.Code)
	}
}

func waiting(st *Stream) bool { return st.waiters.Load() > 0 }

// TestPartRoute: with 125 ms chunks the playlist lists parts of two chunks
// at part/{msn}.{i}.m4s, and each is served as its chunks' bytes, those of
// the open segment included; bad names are refused, unlisted parts not
// found.
func TestPartRoute(t *testing.T) {
	f := newDemoFeedD(t, time.Minute, 125*time.Millisecond)
	f.feed(t, 3*time.Second+500*time.Millisecond)
	h := f.srv.Handler()
	get := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec
	}
	rec := get("/live/demo/v0/index.m3u8")
	if rec.Code != 200 {
		t.Fatalf("playlist: %d", rec.Code)
	}
	var uris []string
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if _, rest, ok := strings.Cut(line, "#EXT-X-PART:"); ok {
			uri := attrList(rest)["URI"]
			uris = append(uris, strings.Trim(uri, `"`))
		}
	}
	if len(uris) < 8 {
		t.Fatalf("%d parts listed:\n%s", len(uris), rec.Body)
	}
	open := f.st.playlist.NextMSN()
	servedOpen := false
	for _, uri := range uris {
		var msn uint64
		var i int
		if _, err := fmt.Sscanf(uri, "part/%d.%d.m4s", &msn, &i); err != nil {
			t.Fatalf("part URI %q: %v", uri, err)
		}
		f.st.mu.Lock()
		es, err := f.st.playlist.PartChunks("v0", msn, i)
		f.st.mu.Unlock()
		if err != nil || len(es) != 2 {
			t.Fatalf("%s: %d chunks, %v", uri, len(es), err)
		}
		var want []byte
		for _, e := range es {
			data, _ := f.srv.store.Get(e.Hash)
			want = append(want, data...)
		}
		rec := get("/live/demo/v0/" + uri)
		if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), want) || rec.Header().Get("Cache-Control") != immutable {
			t.Errorf("%s: %d, %d bytes (want %d), Cache-Control %q", uri, rec.Code, rec.Body.Len(), len(want), rec.Header().Get("Cache-Control"))
		}
		servedOpen = servedOpen || msn == open
	}
	if !servedOpen {
		t.Error("no part of the open segment listed")
	}
	for target, code := range map[string]int{
		"/live/demo/v0/part/1.m4s":       http.StatusBadRequest,
		"/live/demo/v0/part/x.0.m4s":     http.StatusBadRequest,
		"/live/demo/v0/part/1.0":         http.StatusBadRequest,
		"/live/demo/v0/part/999.0.m4s":   http.StatusNotFound,
		"/live/demo/v0/part/1.99.m4s":    http.StatusNotFound,
		"/live/demo/zz/part/1.0.m4s":     http.StatusNotFound,
		"/live/nope/v0/part/1.0.m4s":     http.StatusNotFound,
		"/live/demo/v0/part/1.70000.m4s": http.StatusBadRequest,
	} {
		if rec := get(target); rec.Code != code {
			t.Errorf("%s: %d, want %d", target, rec.Code, code)
		}
	}
}

// TestPublishRefuses: the origin publishes only batches signed with the
// stream's key, whole and of that stream; what it refuses is counted and
// leaves the store, the manifest and the playlists as they were.
func TestPublishRefuses(t *testing.T) {
	f := newDemoFeed(t, time.Minute)
	f.feed(t, 2*time.Second)
	_, other, _ := ed25519.GenerateKey(nil)
	data := []byte("not a chunk")
	output := func(stream string) chunker.Output {
		return chunker.Output{
			Batch: manifest.Batch{Stream: stream, N: 1000, Entries: []manifest.Entry{{
				Kind: manifest.KindChunk, Rendition: "v0", Seq: 8, MediaTime: 2 * time.Second,
				Duration: manifest.DefaultChunkDuration, IngestTime: f.now, Size: uint32(len(data)),
				Independent: true, Hash: manifest.Sum(data),
			}}},
			Data: [][]byte{data},
		}
	}
	signed := func(o chunker.Output, key ed25519.PrivateKey) chunker.Output {
		if err := o.Batch.Sign(key); err != nil {
			t.Fatal(err)
		}
		return o
	}
	short := signed(output("demo"), f.key)
	short.Data = nil
	cases := []struct {
		name   string
		out    chunker.Output
		want   error
		reason string
	}{
		{"unsigned", output("demo"), ErrUnsigned, "unsigned"},
		{"other key", signed(output("demo"), other), manifest.ErrBadSignature, "bad_signature"},
		{"tampered", func() chunker.Output { o := signed(output("demo"), f.key); o.Batch.Entries[0].Seq++; return o }(), manifest.ErrBadSignature, "bad_signature"},
		{"other stream", signed(output("other"), f.key), manifest.ErrBadManifest, "malformed"},
		{"data missing", short, manifest.ErrBadManifest, "malformed"},
	}
	before := string(f.st.Manifest())
	f.st.mu.Lock()
	playlist, _ := f.st.playlist.Media("v0")
	f.st.mu.Unlock()
	for _, tc := range cases {
		changed := f.st.Changed()
		rejected := f.srv.metrics.rejected.WithLabelValues("demo", tc.reason)
		n := testutil.ToFloat64(rejected)
		if err := f.st.Publish(tc.out); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if got := testutil.ToFloat64(rejected); got != n+1 {
			t.Errorf("%s: rejected{reason=%q} went from %v to %v", tc.name, tc.reason, n, got)
		}
		select {
		case <-changed:
			t.Errorf("%s: waiters woken", tc.name)
		default:
		}
	}
	if _, ok := f.srv.Store().Get(manifest.Sum(data)); ok {
		t.Error("a refused chunk is in the store")
	}
	if string(f.st.Manifest()) != before {
		t.Error("a refused batch changed the manifest")
	}
	f.st.mu.Lock()
	after, _ := f.st.playlist.Media("v0")
	f.st.mu.Unlock()
	if !bytes.Equal(after, playlist) {
		t.Error("a refused batch changed the playlist")
	}
	// The same batch signed with the stream's key goes out.
	if err := f.st.Publish(signed(output("demo"), f.key)); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.srv.Store().Get(manifest.Sum(data)); !ok {
		t.Error("the signed chunk is not in the store")
	}
}
