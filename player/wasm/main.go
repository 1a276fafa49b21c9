//go:build js && wasm

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall/js"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/scheduler"
	"github.com/seedcast/seedcast/swarm/browser"
	"github.com/seedcast/seedcast/swarm/core"
)

// joinTimeout bounds each exchange of seedcast.start with the server: the
// manifest, the tracker's welcome. The wait for a stream that is not live
// yet is bounded by stop only.
const joinTimeout = 20 * time.Second

var (
	mu       sync.Mutex
	abrState *abrRun // the running node's adaptive quality
	node     *browser.Node
	stopped  chan struct{}           // closed when the running node stops
	busy     bool                    // a start is under way
	abort    context.CancelCauseFunc // ends the start under way
	started  chan struct{}           // closed when the start under way returns
)

func main() {
	api := js.Global().Get("Object").New()
	api.Set("start", js.FuncOf(start))
	api.Set("setRelay", js.FuncOf(setRelay))
	api.Set("setQuality", js.FuncOf(setQuality))
	api.Set("stop", js.FuncOf(stop))
	js.Global().Set("seedcast", api)
	select {} // serve JavaScript until the page goes
}

// promise runs f on a new goroutine (a js.Func callback must not block)
// and returns a Promise of its outcome.
func promise(f func() (any, error)) js.Value {
	return js.Global().Get("Promise").New(js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			v, err := f()
			if err != nil {
				e := js.Global().Get("Error").New(err.Error())
				e.Set("code", errorCode(err))
				reject.Invoke(e)
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	}))
}

// errorCode names the kind of a failed start for the page: "stopped" (stop
// was called), "not-found" (no stream of that name), "unsupported" (no
// rendition this page can take), "params", or "unreachable" (the server
// did not answer, or not in time).
func errorCode(err error) string {
	switch {
	case errors.Is(err, errStopped):
		return "stopped"
	case errors.Is(err, browser.ErrNoStream):
		return "not-found"
	case errors.Is(err, core.ErrRenditions), errors.Is(err, core.ErrBadQuality):
		return "unsupported"
	case errors.Is(err, browser.ErrParams):
		return "params"
	}
	return "unreachable"
}

// errStopped ends a start that stop cancelled.
var errStopped = errors.New("seedcast: stopped")

// invoke calls a JavaScript callback; an exception it throws is logged,
// not raised in Go.
func invoke(f js.Value, args ...any) {
	defer func() {
		if r := recover(); r != nil {
			slog.Warn("seedcast: a callback threw", "err", r)
		}
	}()
	f.Invoke(args...)
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

func optString(o js.Value, key string) string {
	if o.Type() != js.TypeObject || o.Get(key).Type() != js.TypeString {
		return ""
	}
	return o.Get(key).String()
}

func optInt(o js.Value, key string) int {
	if o.Type() != js.TypeObject || o.Get(key).Type() != js.TypeNumber {
		return 0
	}
	return o.Get(key).Int()
}

// start is seedcast.start(options, onReady, onStats).
func start(_ js.Value, args []js.Value) any {
	opts, onReady, onStats := arg(args, 0), arg(args, 1), arg(args, 2)
	return promise(func() (any, error) {
		if opts.Type() != js.TypeObject {
			return nil, errors.New("seedcast.start: options object required")
		}
		mu.Lock()
		if node != nil || busy {
			mu.Unlock()
			return nil, errors.New("seedcast.start: a node is running; stop it first")
		}
		busy = true
		ctx, cancel := context.WithCancelCause(context.Background())
		abort, started = cancel, make(chan struct{})
		done := started
		defer close(done)
		mu.Unlock()
		p := browser.Params{
			Server: optString(opts, "server"), Stream: optString(opts, "stream"), Token: optString(opts, "token"),
			BudgetKbps: optInt(opts, "relayKbps"), Quality: optString(opts, "quality"),
			Buffer:      time.Duration(optInt(opts, "bufferMs")) * time.Millisecond,
			Startup:     time.Duration(optInt(opts, "startupMs")) * time.Millisecond,
			JoinTimeout: joinTimeout,
		}
		// The manifest the page fetched while the node loaded.
		if b := opts.Get("manifest"); b.Type() == js.TypeObject && b.InstanceOf(js.Global().Get("Uint8Array")) {
			if n := b.Length(); n > 0 && n <= manifest.MaxManifestBytes {
				p.Manifest = make([]byte, n)
				js.CopyBytesToGo(p.Manifest, b)
				p.ManifestAt = time.Now().Add(-time.Duration(optInt(opts, "manifestAgeMs")) * time.Millisecond)
			}
		}
		if f := opts.Get("onWaiting"); f.Type() == js.TypeFunction {
			p.OnWaiting = func() { invoke(f) }
		}
		var play *playout
		if onReady.Type() == js.TypeFunction {
			play = newPlayout(onReady)
			p.OnReady = play.push
		}
		n, err := browser.Start(ctx, p)
		mu.Lock()
		defer mu.Unlock()
		busy, abort, started = false, nil, nil
		if ctx.Err() != nil {
			cancel(nil)
			if n != nil {
				go n.Close()
			}
			return nil, context.Cause(ctx)
		}
		cancel(nil)
		if err != nil {
			return nil, err
		}
		node, stopped = n, make(chan struct{})
		if play != nil {
			go play.run(stopped)
		}
		abrState = &abrRun{n: n, buffered: opts.Get("bufferedMs"), onQuality: opts.Get("onQuality"), auto: p.Quality == "" || p.Quality == "auto"}
		go abrState.run(stopped)
		if onStats.Type() == js.TypeFunction {
			go statsLoop(n, stopped, onStats)
		}
		return startInfo(n), nil
	})
}

// startInfo is what start's promise resolves with: the stream's renditions
// (name, kind, codec, width, height, frameRate, sampleRate, channels) and
// the names of those the node carries.
func startInfo(n *browser.Node) map[string]any {
	var rends []any
	for _, r := range n.RenditionInfos() {
		rends = append(rends, map[string]any{
			"name": r.Name, "kind": r.Kind, "codec": r.Codec, "width": r.Width, "height": r.Height,
			"frameRate": r.FrameRate, "sampleRate": r.SampleRate, "channels": r.Channels,
		})
	}
	var sel []any
	for _, r := range n.Renditions() {
		sel = append(sel, r)
	}
	return map[string]any{"renditions": rends, "selected": sel}
}

// setQuality is seedcast.setQuality(quality): "auto", "audio-only",
// "720p", ... Its promise resolves with the renditions carried now (init
// segments of new ones come through onReady first), or rejects with why
// the stream cannot meet it.
func setQuality(_ js.Value, args []js.Value) any {
	q := arg(args, 0)
	return promise(func() (any, error) {
		if q.Type() != js.TypeString {
			return nil, errors.New("seedcast.setQuality: a quality string is required")
		}
		mu.Lock()
		n := node
		mu.Unlock()
		if n == nil {
			return nil, errors.New("seedcast.setQuality: no node is running")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.SetQuality(ctx, q.String()); err != nil {
			return nil, err
		}
		mu.Lock()
		if abrState != nil && abrState.n == n {
			abrState.setAuto(q.String() == "auto")
		}
		mu.Unlock()
		return startInfo(n)["selected"], nil
	})
}

// playout hands verified chunks to onReady in sequence order per
// rendition (scheduler.Playout): an MSE buffer drops what follows a gap in
// decode order until the next independent chunk.
type playout struct {
	mu      sync.Mutex
	pl      *scheduler.Playout
	onReady js.Value
}

type readyItem struct {
	e        manifest.Entry
	deadline time.Time
	data     []byte
}

func newPlayout(onReady js.Value) *playout {
	return &playout{pl: scheduler.NewPlayout(scheduler.PlayoutParams{}), onReady: onReady}
}

// push is the node's OnReady.
func (p *playout) push(e manifest.Entry, deadline time.Time, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.give(p.pl.Push(time.Now(), scheduler.PlayoutItem{
		Rendition: e.Rendition, Init: e.Kind == manifest.KindInit, Seq: e.Seq, Independent: e.Independent,
		Deadline: deadline, Data: readyItem{e, deadline, data},
	}))
}

// run gives up missing chunks as deadlines near, until stopped.
func (p *playout) run(stopped <-chan struct{}) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stopped:
			return
		case <-t.C:
			p.mu.Lock()
			p.give(p.pl.Release(time.Now()))
			p.mu.Unlock()
		}
	}
}

func (p *playout) give(items []scheduler.PlayoutItem) {
	for _, it := range items {
		r := it.Data.(readyItem)
		bytes := js.Global().Get("Uint8Array").New(len(r.data))
		js.CopyBytesToJS(bytes, r.data)
		invoke(p.onReady, entryObject(r.e, r.deadline), bytes)
	}
}

// abrRun is adaptive quality (scheduler.ABR) while the quality setting is
// "auto": every 2 s it looks at the chunks judged since and the buffer the
// player has ahead (options.bufferedMs(), a function), and steps the video
// rendition down or up; options.onQuality(selected) hears of each step.
type abrRun struct {
	n         *browser.Node
	buffered  js.Value
	onQuality js.Value

	mu   sync.Mutex
	auto bool
	abr  *scheduler.ABR
}

func (a *abrRun) setAuto(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.auto, a.abr = on, nil // a fresh start at the top when auto comes back
}

func (a *abrRun) run(stopped <-chan struct{}) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	last := a.n.Stats()
	for {
		select {
		case <-stopped:
			return
		case <-t.C:
		}
		st := a.n.Stats()
		in := scheduler.ABRInput{OnTime: st.ChunksOnTime - last.ChunksOnTime, Late: st.ChunksLate - last.ChunksLate, Buffer: 10 * time.Second}
		last = st
		if ms, ok := callNumber(a.buffered); ok {
			in.Buffer = time.Duration(ms * float64(time.Millisecond))
		}
		a.mu.Lock()
		if !a.auto {
			a.mu.Unlock()
			continue
		}
		if a.abr == nil {
			var hs []int
			for _, r := range a.n.RenditionInfos() {
				if r.Kind == "video" && r.Height > 0 {
					hs = append(hs, r.Height)
				}
			}
			a.abr = scheduler.NewABR(scheduler.ABRParams{}, hs)
		}
		h, changed := a.abr.Decide(time.Now(), in)
		a.mu.Unlock()
		if !changed {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.n.SetQuality(ctx, fmt.Sprintf("%dp", h))
		cancel()
		if err == nil && a.onQuality.Type() == js.TypeFunction {
			var sel []any
			for _, r := range a.n.Renditions() {
				sel = append(sel, r)
			}
			invoke(a.onQuality, sel)
		}
	}
}

// callNumber calls a JavaScript function that returns a number; ok is
// false when f is not a function, throws, or returns something else.
func callNumber(f js.Value) (v float64, ok bool) {
	if f.Type() != js.TypeFunction {
		return 0, false
	}
	defer func() {
		if recover() != nil {
			v, ok = 0, false
		}
	}()
	r := f.Invoke()
	if r.Type() != js.TypeNumber {
		return 0, false
	}
	return r.Float(), true
}

// statsLoop gives onStats the node's counters once a second until it stops.
func statsLoop(n *browser.Node, stopped <-chan struct{}, onStats js.Value) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stopped:
			return
		case <-t.C:
			invoke(onStats, statsObject(n.Stats()))
		}
	}
}

// setRelay is seedcast.setRelay(kbps): the relay budget, 0 for off.
func setRelay(_ js.Value, args []js.Value) any {
	kbps := arg(args, 0)
	if kbps.Type() != js.TypeNumber {
		return js.Global().Get("Error").New("seedcast.setRelay: a number of kbps is required")
	}
	mu.Lock()
	n := node
	mu.Unlock()
	if n != nil {
		go n.SetBudget(kbps.Int())
	}
	return nil
}

// stop is seedcast.stop(): leaves the swarm; its promise resolves once the
// node has stopped.
func stop(js.Value, []js.Value) any {
	return promise(func() (any, error) {
		mu.Lock()
		n, done := node, stopped
		node, stopped = nil, nil
		pending := started
		if abort != nil {
			abort(errStopped) // a start still waiting for the stream gives up
		}
		mu.Unlock()
		if pending != nil {
			<-pending // so that a start right after stop finds no start under way
		}
		if n != nil {
			close(done)
			n.Close()
		}
		return nil, nil
	})
}

func entryObject(e manifest.Entry, deadline time.Time) map[string]any {
	kind, dl := "chunk", 0.0
	if e.Kind == manifest.KindInit {
		kind = "init"
	}
	if !deadline.IsZero() {
		dl = float64(deadline.UnixMicro()) / 1000
	}
	return map[string]any{
		"kind": kind, "rendition": e.Rendition, "seq": float64(e.Seq),
		"mediaTimeUs": float64(e.MediaTime.Microseconds()), "durationUs": float64(e.Duration.Microseconds()),
		"independent": e.Independent, "discontinuity": e.Discontinuity,
		"deadline": dl, "hash": e.Hash.String(), "ingestMs": float64(e.IngestTime.UnixMicro()) / 1000,
	}
}

// statsObject is what onStats gets: the object `seedcast viewer
// --stats-json` writes, with its field names (t, peers, bytesFromPeers,
// bytesFromOrigin, bytesFromSeed, bytesUploaded, chunksOnTime, chunksLate,
// latencyP50Ms, latencyP95Ms, maxDepth, relayBudgetKbps, throttled,
// rejected), plus chunks, rttMs and offload (bytes from peers ÷ all media
// bytes received). The player adds bufferMs and latencyToLiveMs.
func statsObject(s browser.Stats) map[string]any {
	offload := 0.0
	if all := s.BytesFromPeers + s.BytesFromOrigin; all > 0 {
		offload = float64(s.BytesFromPeers) / float64(all)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return map[string]any{
		"t":              time.Now().UTC().Format(time.RFC3339Nano),
		"bytesFromPeers": float64(s.BytesFromPeers), "bytesFromOrigin": float64(s.BytesFromOrigin),
		"bytesFromSeed": float64(s.BytesFromSeed), "bytesUploaded": float64(s.BytesUploaded),
		"chunks": s.Chunks, "rejected": s.Rejected, "peers": s.Peers, "maxDepth": s.Depth,
		"chunksOnTime": s.ChunksOnTime, "chunksLate": s.ChunksLate,
		"latencyP50Ms": ms(s.LatencyP50), "latencyP95Ms": ms(s.LatencyP95),
		"relayBudgetKbps": float64(s.RelayKbps), "throttled": s.Throttled, "rttMs": ms(s.RTT),
		"offload": offload,
	}
}
