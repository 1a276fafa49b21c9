//go:build js && wasm

package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"syscall/js"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/core"
	"github.com/seedcast/seedcast/swarm/wire"
)

// Errors of the origin.
var (
	// ErrOrigin is returned when the origin cannot give a manifest, a chunk
	// or a ping answer.
	ErrOrigin = errors.New("swarm/browser: origin")
	// ErrTooLarge is returned (wrapped with ErrOrigin) for a body over its
	// bound: manifest.MaxManifestBytes for a manifest, wire.MaxChunk for a
	// chunk.
	ErrTooLarge = errors.New("body over its limit")
	// ErrNoStream is returned (wrapped with ErrOrigin) when the origin has
	// no stream of that name (404 for its manifest).
	ErrNoStream = errors.New("no such stream")
)

// origin reads the origin with the browser's fetch: the signed manifest
// window (GET /live/{stream}/manifest), chunks and init segments (GET
// /c/{hash}) and the RTT probe (GET /healthz). Bodies are read as a stream
// and refused as soon as they pass their bound.
type origin struct {
	server string // e.g. https://example.org, no trailing slash
	stream string

	mu      sync.Mutex
	pings   uint64
	waiting map[string]chan time.Duration // ping URL → its network RTT
	obs     js.Value                      // a PerformanceObserver of resources
	obsFn   js.Func
}

// Manifest fetches the signed manifest window; with after ≥ 0, only what
// follows batch after.
func (o *origin) Manifest(ctx context.Context, after int64) (*manifest.Manifest, error) {
	path := "/live/" + o.stream + "/manifest"
	if after >= 0 {
		path += "?after=" + strconv.FormatInt(after, 10)
	} else {
		// Only the newest batches: a browser starting to play needs a few
		// seconds of them, and decoding and checking a minute's worth in
		// WebAssembly was a third of its start-up.
		path += "?last=" + strconv.Itoa(startBatches)
	}
	data, err := o.get(ctx, path, manifest.MaxManifestBytes, "no-store")
	if err != nil {
		return nil, err
	}
	m, err := manifest.DecodeManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrOrigin, path, err)
	}
	return m, nil
}

// startBatches is how many of the newest manifest batches a browser node
// asks for when it has none: 8 s of 250 ms chunks, more than the playback
// delay and the start-up's look back at the last independent chunk.
const startBatches = 32

// Chunk fetches one chunk or init segment by id. Chunk URLs are immutable:
// the browser's cache (or a CDN's) may answer.
func (o *origin) Chunk(ctx context.Context, id manifest.ID) ([]byte, error) {
	return o.get(ctx, "/c/"+id.String(), wire.MaxChunk, "default")
}

// Ping times GET /healthz, uncached. The time is the browser's Resource
// Timing of the request (from sending it to the first byte of the answer)
// when the page may read it (same origin, or Timing-Allow-Origin): timed
// from Go, a round trip also counts the time the page's main thread was
// busy, which is no congestion of the user's link but would trip the RTT
// guard. Otherwise it is the time fetch took, as natively.
func (o *origin) Ping(ctx context.Context) (time.Duration, error) {
	o.mu.Lock()
	o.pings++
	path := "/healthz?ping=" + strconv.FormatUint(o.pings, 10)
	o.mu.Unlock()
	ch := o.watch(o.server + path)
	defer o.unwatch(o.server + path)
	start := time.Now()
	_, err := o.get(ctx, path, 4096, "no-store")
	wall := time.Since(start)
	if err != nil || ch == nil {
		return wall, err
	}
	// The observer hears of the request once it has ended; its callback
	// comes as a task of its own.
	select {
	case rtt := <-ch:
		if rtt > 0 {
			return rtt, nil
		}
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	return wall, nil
}

// watch asks the resource observer for url's network time; nil when the
// browser has no PerformanceObserver.
func (o *origin) watch(url string) chan time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.waiting == nil {
		o.waiting = map[string]chan time.Duration{}
		err := try(func() {
			o.obsFn = js.FuncOf(o.observed)
			o.obs = js.Global().Get("PerformanceObserver").New(o.obsFn)
			o.obs.Call("observe", map[string]any{"type": "resource"})
		})
		if err != nil {
			o.obsFn.Release()
			o.obs = js.Undefined()
		}
	}
	if o.obs.Type() != js.TypeObject {
		return nil
	}
	var href string
	if err := try(func() { href = js.Global().Get("URL").New(url).Get("href").String() }); err != nil {
		return nil
	}
	ch := make(chan time.Duration, 1)
	o.waiting[href] = ch
	return ch
}

func (o *origin) unwatch(url string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = try(func() { url = js.Global().Get("URL").New(url).Get("href").String() })
	delete(o.waiting, url)
}

// observed is the PerformanceObserver's callback: it hands the pings'
// network times to their waiters. It runs on a js.Func callback and never
// blocks.
func (o *origin) observed(_ js.Value, args []js.Value) any {
	_ = try(func() {
		entries := arg0(args).Call("getEntries")
		for i := range entries.Length() {
			e := entries.Index(i)
			o.mu.Lock()
			ch := o.waiting[e.Get("name").String()]
			o.mu.Unlock()
			if ch == nil {
				continue
			}
			// Both are 0 for a cross-origin request without Timing-Allow-Origin.
			req, first := e.Get("requestStart").Float(), e.Get("responseStart").Float()
			var rtt time.Duration
			if req > 0 && first >= req {
				rtt = max(time.Duration((first-req)*float64(time.Millisecond)), time.Microsecond)
			}
			select {
			case ch <- rtt:
			default:
			}
		}
	})
	return nil
}

// close stops the resource observer.
func (o *origin) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.obs.Type() == js.TypeObject {
		_ = try(func() { o.obs.Call("disconnect") })
		o.obsFn.Release()
		o.obs = js.Undefined()
	}
}

// get fetches path and returns its body, of at most limit bytes.
func (o *origin) get(ctx context.Context, path string, limit int64, cache string) ([]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var promise, abort js.Value
	err := try(func() {
		abort = js.Global().Get("AbortController").New()
		promise = js.Global().Call("fetch", o.server+path, map[string]any{
			"cache": cache, "credentials": "same-origin", "signal": abort.Get("signal"),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrOrigin, path, err)
	}
	// Ending ctx aborts the request and any body read in progress.
	defer context.AfterFunc(ctx, func() { _ = try(func() { abort.Call("abort") }) })()
	resp, err := await(ctx, promise)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrOrigin, path, err)
	}
	data, err := readBody(ctx, resp, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrOrigin, path, err)
	}
	return data, nil
}

// readBody reads a fetch Response's body, refusing a status other than 200
// and a body over limit bytes (declared or read).
func readBody(ctx context.Context, resp js.Value, limit int64) ([]byte, error) {
	var data []byte
	var status int
	var length string
	var body js.Value
	if err := try(func() {
		status = resp.Get("status").Int()
		length = resp.Get("headers").Call("get", "content-length").String() // "<null>" when absent
		body = resp.Get("body")
	}); err != nil {
		return nil, err
	}
	cancelBody := func() {
		if body.Type() == js.TypeObject {
			_ = try(func() { body.Call("cancel") })
		}
	}
	if status != 200 {
		cancelBody()
		switch status {
		case 404:
			return nil, fmt.Errorf("%w (status 404)", ErrNoStream)
		case 429, 503: // the origin's egress cap: the core waits, and asks peers
			return nil, fmt.Errorf("status %d: %w", status, core.ErrOriginBusy)
		}
		return nil, fmt.Errorf("status %d", status)
	}
	if n, perr := strconv.ParseInt(strings.TrimSpace(length), 10, 64); perr == nil {
		if n > limit {
			cancelBody()
			return nil, fmt.Errorf("%w: %d bytes declared, limit %d", ErrTooLarge, n, limit)
		}
		data = make([]byte, 0, n)
	}
	if body.Type() != js.TypeObject { // no body
		return data, nil
	}
	var reader js.Value
	if err := try(func() { reader = body.Call("getReader") }); err != nil {
		return nil, err
	}
	for {
		var read js.Value
		if err := try(func() { read = reader.Call("read") }); err != nil {
			return nil, err
		}
		r, err := await(ctx, read)
		if err != nil {
			return nil, err
		}
		var done bool
		var piece js.Value
		var n int
		if err := try(func() {
			done = r.Get("done").Truthy()
			if !done {
				piece = r.Get("value")
				n = piece.Get("length").Int()
			}
		}); err != nil {
			return nil, err
		}
		if done {
			return data, nil
		}
		if int64(len(data))+int64(n) > limit {
			_ = try(func() { reader.Call("cancel") })
			return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, limit)
		}
		data = append(data, make([]byte, n)...)
		if err := try(func() { js.CopyBytesToGo(data[len(data)-n:], piece) }); err != nil {
			return nil, err
		}
	}
}
