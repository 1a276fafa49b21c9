package player

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/seedcast/seedcast/player/internal/wasmbuild"
)

func newTest(t *testing.T, p Params) (*Player, *httptest.Server) {
	t.Helper()
	if p.Streams == nil {
		p.Streams = func() []StreamInfo {
			return []StreamInfo{{Name: "demo", Live: true, Viewers: 3, Browsers: 2, Natives: 1}}
		}
	}
	pl, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(pl.Handler())
	t.Cleanup(ts.Close)
	return pl, ts
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gzip
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// TestWasmFresh fails when the committed .wasm (web/seedcast.wasm.br) or
// wasm_exec.js no longer matches what the code builds: run
// `go generate ./player`.
func TestWasmFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the .wasm")
	}
	raw, glue, err := wasmbuild.Build()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	want, _ := webFS.ReadFile("web/seedcast.wasm.sha256")
	if hex.EncodeToString(sum[:]) != strings.TrimSpace(string(want)) {
		t.Fatalf("web/seedcast.wasm.br is stale (built %x, committed %s): run `go generate ./player` and commit web/", sum[:6], want[:12])
	}
	br, _ := webFS.ReadFile("web/seedcast.wasm.br")
	got, err := io.ReadAll(brotli.NewReader(bytes.NewReader(br)))
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("web/seedcast.wasm.br does not decode to the build (%v): run `go generate ./player`", err)
	}
	if committed, _ := webFS.ReadFile("web/wasm_exec.js"); !bytes.Equal(committed, glue) {
		t.Fatal("web/wasm_exec.js is not this toolchain's: run `go generate ./player`")
	}
	t.Logf("seedcast.wasm: %d bytes raw, %d brotli", len(raw), len(br))
}

// TestAssets: every asset is served at its content-hashed URL, immutable,
// in the encoding asked for; pages name them through an import map the
// CSP allows by hash; every module a module imports is in the map.
func TestAssets(t *testing.T) {
	pl, ts := newTest(t, Params{})
	resp, page := get(t, ts.URL+"/watch/demo")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("watch page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	m := regexp.MustCompile(`<script type="importmap">([^<]*)</script>`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no import map in the page")
	}
	sum := sha256.Sum256(m[1])
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") ||
		!strings.Contains(csp, "frame-ancestors 'self'") {
		t.Errorf("CSP %q does not allow the import map by its hash, or lets anyone frame the page", csp)
	}
	var im struct{ Imports map[string]string }
	if err := json.Unmarshal(m[1], &im); err != nil {
		t.Fatal(err)
	}
	// Every static import in every module names a mapped module.
	importRE := regexp.MustCompile(`(?m)(?:^import .* from|^import|await import\() ?['"]([^'"]+)['"]`)
	err := fs.WalkDir(webFS, "web/js", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := webFS.ReadFile(p)
		for _, imp := range importRE.FindAllSubmatch(src, -1) {
			target := string(imp[1])
			if strings.HasPrefix(target, "./") {
				target = "/assets/js/" + strings.TrimPrefix(target, "./")
			}
			if im.Imports[target] == "" {
				t.Errorf("%s imports %s, which the import map does not name", p, imp[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{pl.assets.URL("js/player.js"), pl.assets.URL("css/app.css"), pl.assets.URL(wasmName)} {
		for _, enc := range []string{"br", "gzip", ""} {
			resp, body := get(t, ts.URL+u, "Accept-Encoding", enc)
			if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || resp.Header.Get("Content-Encoding") != enc {
				t.Fatalf("%s (%q): %d, %q, %q", u, enc, resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Encoding"))
			}
			raw := body
			switch enc {
			case "br":
				raw, _ = io.ReadAll(brotli.NewReader(bytes.NewReader(body)))
			case "gzip":
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				raw, _ = io.ReadAll(zr)
			}
			if u == pl.assets.URL(wasmName) && !bytes.HasPrefix(raw, []byte("\x00asm")) {
				t.Fatalf("%s (%q) is not a wasm module", u, enc)
			}
			if u == pl.assets.URL(wasmName) {
				t.Logf("seedcast.wasm as %q: %d bytes", enc, len(body))
			}
		}
	}
	if resp, _ := get(t, ts.URL+"/assets/js/player.js"); resp.StatusCode != 404 {
		t.Errorf("an unhashed asset URL: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, ts.URL+"/watch/..%2fetc"); resp.StatusCode != 404 {
		t.Errorf("a bad stream name: %d, want 404", resp.StatusCode)
	}
	if acceptsEncoding("gzip;q=0, br;q=0", "br") || !acceptsEncoding("deflate, br;q=0.5", "br") {
		t.Error("Accept-Encoding parsing")
	}
}

// TestEmbedOrigins: the embed page may be framed by the configured origins
// only, and tells its script which; a bad origin is refused at start.
func TestEmbedOrigins(t *testing.T) {
	_, ts := newTest(t, Params{EmbedOrigins: []string{"https://blog.example", "http://127.0.0.1:9"}})
	resp, page := get(t, ts.URL+"/embed/demo")
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors http://127.0.0.1:9 https://blog.example") {
		t.Errorf("embed CSP %q", csp)
	}
	if !bytes.Contains(page, []byte(`data-embed-origins="http://127.0.0.1:9 https://blog.example"`)) {
		t.Error("the embed page does not name its allowed hosts")
	}
	_, any := newTest(t, Params{})
	if resp, _ := get(t, any.URL+"/embed/demo"); !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors *") {
		t.Errorf("default embed CSP %q, want any host", resp.Header.Get("Content-Security-Policy"))
	}
	if _, err := New(Params{Streams: func() []StreamInfo { return nil }, EmbedOrigins: []string{"javascript:alert(1)"}}); err == nil {
		t.Error("a bad embed origin was taken")
	}
}

// TestUplink: the upload test reads at most MaxBytes, paces each address,
// caps tests at once, and says how fast it read.
func TestUplink(t *testing.T) {
	now := time.Unix(1000, 0)
	_, ts := newTest(t, Params{
		Uplink: UplinkParams{MaxBytes: 1 << 20, Every: 10 * time.Second, Burst: 2, Concurrent: 1},
		Now:    func() time.Time { return now },
		ClientIP: func(r *http.Request) netip.Addr {
			a, _ := netip.ParseAddr(r.Header.Get("X-Test-Client"))
			return a
		},
	})
	post := func(client string, n int) (*http.Response, UplinkResult) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/uplink", bytes.NewReader(make([]byte, n)))
		req.Header.Set("X-Test-Client", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res UplinkResult
		_ = json.NewDecoder(resp.Body).Decode(&res)
		return resp, res
	}
	resp, res := post("192.0.2.1", 512<<10)
	if resp.StatusCode != 200 || res.Bytes != 512<<10 || res.Kbps <= 0 {
		t.Fatalf("upload test: %d %+v", resp.StatusCode, res)
	}
	if resp, _ := post("192.0.2.1", 2<<20); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d, want 413", resp.StatusCode)
	}
	if resp, _ := post("192.0.2.1", 1000); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third test in a burst of 2: %d, want 429 with Retry-After", resp.StatusCode)
	}
	if resp, _ := post("192.0.2.2", 1000); resp.StatusCode != 200 {
		t.Errorf("another address: %d", resp.StatusCode)
	}
	now = now.Add(10 * time.Second)
	if resp, _ := post("192.0.2.1", 1000); resp.StatusCode != 200 {
		t.Errorf("after Every: %d, want 200", resp.StatusCode)
	}
}

// TestStreamsAPI: the home page's list.
func TestStreamsAPI(t *testing.T) {
	_, ts := newTest(t, Params{})
	resp, body := get(t, ts.URL+"/api/streams")
	var got struct{ Streams []StreamInfo }
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || len(got.Streams) != 1 || got.Streams[0].Viewers != 3 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, ts.URL+"/live/demo/dashboard"); resp.StatusCode != 404 {
		t.Errorf("dashboard without a source: %d, want 404", resp.StatusCode)
	}
}
