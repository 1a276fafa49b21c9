//go:build js && wasm

package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"syscall/js"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/swarm/browser"
)

// startTimeout bounds seedcast.start: the manifest, the tracker's welcome,
// and the wait for a stream that is not live yet.
const startTimeout = 30 * time.Second

var (
	mu      sync.Mutex
	node    *browser.Node
	stopped chan struct{} // closed when the running node stops
	busy    bool          // a start is under way
)

func main() {
	api := js.Global().Get("Object").New()
	api.Set("start", js.FuncOf(start))
	api.Set("setRelay", js.FuncOf(setRelay))
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
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	}))
}

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
		mu.Unlock()
		p := browser.Params{
			Server: optString(opts, "server"), Stream: optString(opts, "stream"), Token: optString(opts, "token"),
			BudgetKbps: optInt(opts, "relayKbps"), Quality: optString(opts, "quality"),
			Buffer: time.Duration(optInt(opts, "bufferMs")) * time.Millisecond,
		}
		if onReady.Type() == js.TypeFunction {
			p.OnReady = func(e manifest.Entry, deadline time.Time, data []byte) {
				bytes := js.Global().Get("Uint8Array").New(len(data))
				js.CopyBytesToJS(bytes, data)
				invoke(onReady, entryObject(e, deadline), bytes)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		n, err := browser.Start(ctx, p)
		cancel()
		mu.Lock()
		defer mu.Unlock()
		busy = false
		if err != nil {
			return nil, err
		}
		node, stopped = n, make(chan struct{})
		if onStats.Type() == js.TypeFunction {
			go statsLoop(n, stopped, onStats)
		}
		return nil, nil
	})
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
		mu.Unlock()
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
		"deadline": dl, "hash": e.Hash.String(),
	}
}

// statsObject is what onStats gets: browser.Stats with byte counts as
// numbers, durations in milliseconds, and offload (bytes from peers ÷ all
// media bytes received).
func statsObject(s browser.Stats) map[string]any {
	offload := 0.0
	if all := s.BytesFromPeers + s.BytesFromOrigin; all > 0 {
		offload = float64(s.BytesFromPeers) / float64(all)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return map[string]any{
		"bytesFromPeers": float64(s.BytesFromPeers), "bytesFromOrigin": float64(s.BytesFromOrigin),
		"bytesFromSeed": float64(s.BytesFromSeed), "bytesUploaded": float64(s.BytesUploaded),
		"chunks": s.Chunks, "rejected": s.Rejected, "peers": s.Peers, "depth": s.Depth,
		"chunksOnTime": s.ChunksOnTime, "chunksLate": s.ChunksLate,
		"latencyP50Ms": ms(s.LatencyP50), "latencyP95Ms": ms(s.LatencyP95),
		"relayKbps": float64(s.RelayKbps), "throttled": s.Throttled, "rttMs": ms(s.RTT),
		"offload": offload,
	}
}
