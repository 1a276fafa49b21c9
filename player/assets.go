package player

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
)

//go:embed web
var webFS embed.FS

// asset is one file served under /assets/, in every encoding it is served
// in (computed once, on first use for the .wasm's raw and gzip forms).
type asset struct {
	name  string // path under web/, e.g. js/player.js
	url   string // /assets/js/player.<hash>.js
	ctype string

	once        sync.Once
	raw, gz, br []byte
	load        func() (raw, gz, br []byte)
}

func (a *asset) bodies() (raw, gz, br []byte) {
	a.once.Do(func() { a.raw, a.gz, a.br = a.load() })
	return a.raw, a.gz, a.br
}

// assets is the hashed file table.
type assets struct {
	byName map[string]*asset
	byURL  map[string]*asset
}

// wasmName is the .wasm's name in the table; on disk it is only brotli.
const wasmName = "seedcast.wasm"

func loadAssets() (*assets, error) {
	as := &assets{byName: map[string]*asset{}, byURL: map[string]*asset{}}
	err := fs.WalkDir(webFS, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimPrefix(p, "web/")
		switch {
		case strings.HasSuffix(name, ".html"), name == "seedcast.wasm.sha256", name == "seedcast.wasm.br":
			return nil // templates; the .wasm is added below
		}
		data, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		as.add(&asset{name: name, ctype: contentType(name), load: func() ([]byte, []byte, []byte) {
			return data, compressGzip(data), compressBrotli(data)
		}}, hex.EncodeToString(sum[:])[:10])
		return nil
	})
	if err != nil {
		return nil, err
	}
	sum, err := webFS.ReadFile("web/seedcast.wasm.sha256")
	if err != nil {
		return nil, fmt.Errorf("player: %w (run go generate ./player)", err)
	}
	br, err := webFS.ReadFile("web/seedcast.wasm.br")
	if err != nil {
		return nil, fmt.Errorf("player: %w (run go generate ./player)", err)
	}
	as.add(&asset{name: wasmName, ctype: "application/wasm", load: func() ([]byte, []byte, []byte) {
		raw, err := io.ReadAll(brotli.NewReader(bytes.NewReader(br)))
		if err != nil {
			panic(fmt.Sprintf("player: the embedded seedcast.wasm.br does not decode: %v", err))
		}
		return raw, compressGzip(raw), br
	}}, strings.TrimSpace(string(sum))[:10])
	return as, nil
}

func (as *assets) add(a *asset, hash string) {
	ext := path.Ext(a.name)
	a.url = "/assets/" + strings.TrimSuffix(a.name, ext) + "." + hash + ext
	as.byName[a.name] = a
	as.byURL[a.url] = a
}

// URL returns an asset's hashed URL; it panics on a name that is not
// embedded (a template naming a missing file is a bug the tests catch).
func (as *assets) URL(name string) string {
	a, ok := as.byName[name]
	if !ok {
		panic("player: no asset " + name)
	}
	return a.url
}

// importMap maps every module's plain URL (/assets/js/x.js) to its hashed
// one, for the pages' <script type="importmap">.
func (as *assets) importMap() map[string]string {
	m := map[string]string{}
	for name, a := range as.byName {
		if strings.HasSuffix(name, ".js") {
			m["/assets/"+name] = a.url
		}
	}
	return m
}

func contentType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// serve writes an asset in the best encoding the request accepts.
func (as *assets) serve(w http.ResponseWriter, r *http.Request) {
	a, ok := as.byURL[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	raw, gz, br := a.bodies()
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	body := raw
	switch enc := r.Header.Get("Accept-Encoding"); {
	case acceptsEncoding(enc, "br") && len(br) < len(raw):
		h.Set("Content-Encoding", "br")
		body = br
	case acceptsEncoding(enc, "gzip") && len(gz) < len(raw):
		h.Set("Content-Encoding", "gzip")
		body = gz
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// acceptsEncoding reports whether an Accept-Encoding value allows enc
// (listed without q=0).
func acceptsEncoding(header, enc string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), enc) {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

func compressGzip(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}

func compressBrotli(data []byte) []byte {
	var b bytes.Buffer
	w := brotli.NewWriterLevel(&b, 9)
	_, _ = w.Write(data)
	_ = w.Close()
	return b.Bytes()
}
