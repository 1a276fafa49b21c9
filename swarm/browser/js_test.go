//go:build js && wasm

package browser

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall/js"
	"testing"
	"time"

	"github.com/seedcast/seedcast/manifest"
	"github.com/seedcast/seedcast/tracker/protocol"
)

// These tests run under Node.js (TestWasm runs them in the normal test
// pass when node is installed): fetch, promises and the tracker's message
// handling. Peer links need a browser's RTCPeerConnection, which Node
// lacks.

// nodeServer starts Node's http server on 127.0.0.1; handle answers each
// request synchronously (it runs on a js.Func callback).
func nodeServer(t *testing.T, handle func(path string, res js.Value)) string {
	t.Helper()
	handler := js.FuncOf(func(_ js.Value, args []js.Value) any {
		handle(args[0].Get("url").String(), args[1])
		return nil
	})
	srv := js.Global().Call("require", "http").Call("createServer", handler)
	listening := make(chan struct{})
	cb := js.FuncOf(func(js.Value, []js.Value) any { close(listening); return nil })
	srv.Call("listen", 0, "127.0.0.1", cb)
	<-listening
	cb.Release()
	t.Cleanup(func() {
		srv.Call("closeAllConnections")
		srv.Call("close")
		handler.Release()
	})
	return "http://127.0.0.1:" + strconv.Itoa(srv.Call("address").Get("port").Int())
}

func bytesJS(s string) js.Value {
	a := js.Global().Get("Uint8Array").New(len(s))
	js.CopyBytesToJS(a, []byte(s))
	return a
}

func TestOrigin(t *testing.T) {
	big := strings.Repeat("x", 100)
	server := nodeServer(t, func(path string, res js.Value) {
		switch path {
		case "/ok":
			res.Call("end", bytesJS("hello"))
		case "/big-declared":
			res.Call("writeHead", 200, map[string]any{"Content-Length": len(big)})
			res.Call("end", bytesJS(big))
		case "/big-streamed": // chunked: no length declared
			for range 10 {
				res.Call("write", bytesJS(big[:10]))
			}
			res.Call("end")
		case "/live/s/manifest", "/live/s/manifest?after=3":
			res.Call("end", bytesJS("not a manifest"))
		case "/hang":
		default:
			res.Call("writeHead", 404)
			res.Call("end")
		}
	})
	o := &origin{server: server, stream: "s"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	data, err := o.get(ctx, "/ok", 16, "no-store")
	if err != nil || string(data) != "hello" {
		t.Fatalf("/ok: %q, %v", data, err)
	}
	for _, c := range []struct {
		path string
		want error
		msg  string
	}{
		{"/big-declared", ErrTooLarge, "declared"},
		{"/big-streamed", ErrTooLarge, "over 16 bytes"},
		{"/missing", ErrOrigin, "status 404"},
	} {
		_, err := o.get(ctx, c.path, 16, "no-store")
		if !errors.Is(err, c.want) || !errors.Is(err, ErrOrigin) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %v saying %q", c.path, err, c.want, c.msg)
		}
	}
	if _, err := o.Manifest(ctx, 3); !errors.Is(err, ErrOrigin) || !errors.Is(err, manifest.ErrBadManifest) {
		t.Errorf("garbage manifest: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := o.get(short, "/hang", 16, "no-store"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a request that hangs: %v, want the context's deadline", err)
	}
	down := &origin{server: "http://127.0.0.1:1", stream: "s"}
	if _, err := down.Chunk(ctx, manifest.ID{}); !errors.Is(err, ErrOrigin) || !errors.Is(err, ErrJS) {
		t.Errorf("no server: %v", err)
	}
	if rtt, err := o.Ping(ctx); err == nil || rtt <= 0 { // /healthz is a 404 here
		t.Errorf("ping of a 404: %v, %v", rtt, err)
	}
	o.close()
}

func TestAwait(t *testing.T) {
	ctx := context.Background()
	promise := js.Global().Get("Promise")
	if v, err := await(ctx, promise.Call("resolve", 7)); err != nil || v.Int() != 7 {
		t.Errorf("resolved: %v, %v", v, err)
	}
	_, err := await(ctx, promise.Call("reject", js.Global().Get("Error").New("boom")))
	if !errors.Is(err, ErrJS) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("rejected: %v", err)
	}
	if _, err := await(ctx, js.ValueOf(3)); !errors.Is(err, ErrJS) {
		t.Errorf("not a promise: %v", err)
	}
	never := promise.New(js.FuncOf(func(js.Value, []js.Value) any { return nil }))
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := await(short, never); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("never settles: %v", err)
	}
}

// fakeSocket is a tracker whose socket is a plain object that records
// close and send.
func fakeSocket(t *testing.T) (*tracker, func() bool) {
	tr := newTracker()
	ws := js.Global().Get("Object").New()
	closed := false
	noop := js.FuncOf(func(js.Value, []js.Value) any { return nil })
	cl := js.FuncOf(func(js.Value, []js.Value) any { closed = true; return nil })
	t.Cleanup(func() { noop.Release(); cl.Release(); tr.release() })
	ws.Set("send", noop)
	ws.Set("close", cl)
	ws.Set("readyState", 1)
	tr.ws = ws
	tr.on("onmessage", tr.onMessage)
	return tr, func() bool { return closed }
}

func message(data any) js.Value {
	return js.ValueOf(map[string]any{"data": data})
}

func TestTrackerMessages(t *testing.T) {
	welcome := `{"type":"welcome","v":1,"peer":"aaaaaaaaaaaaaaaaaaaaaaaaaa","publicKey":"00","manifest":"/live/s/manifest","substreams":2,"upstreams":[],"depth":1}`
	signal := `{"type":"signal","from":"bbbbbbbbbbbbbbbbbbbbbbbbbb","sdp":{"type":"offer","sdp":"v=0"}}`
	for _, c := range []struct {
		name  string
		first string // sent as the welcome before
		data  any
		want  string // in the error; "" = accepted
	}{
		{name: "binary", data: js.Global().Get("ArrayBuffer").New(4), want: "binary"},
		{name: "no data", data: nil, want: "binary"},
		{name: "too big", data: strings.Repeat(" ", protocol.MaxMessageBytes+1), want: "limit"},
		{name: "not json", data: "{", want: "bad message"},
		{name: "unknown type", data: `{"type":"nope"}`, want: "bad message"},
		{name: "bad signal", first: welcome, data: `{"type":"signal","from":"x","sdp":{"type":"offer","sdp":""}}`, want: "bad message"},
		{name: "welcome", data: welcome},
		{name: "signal", first: welcome, data: signal},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, closed := fakeSocket(t)
			on := tr.ws.Get("onmessage")
			if c.first != "" {
				on.Invoke(message(c.first))
				<-tr.first
			}
			on.Invoke(message(c.data))
			err := tr.Err()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
				select {
				case <-tr.first:
				case ev := <-tr.events:
					if _, ok := ev.(*protocol.Signal); !ok {
						t.Errorf("event %T", ev)
					}
				default:
					t.Error("nothing delivered")
				}
			case !errors.Is(err, ErrTrackerClosed) || !strings.Contains(err.Error(), c.want) || !closed():
				t.Errorf("got %v (socket closed: %v), want an ended connection saying %q", err, closed(), c.want)
			}
		})
	}
	t.Run("handler panics", func(t *testing.T) {
		tr, closed := fakeSocket(t)
		tr.ws.Get("onmessage").Invoke() // no event: ev.Get on undefined
		if err := tr.Err(); !errors.Is(err, ErrJS) || !closed() {
			t.Errorf("got %v (socket closed: %v), want the connection ended", err, closed())
		}
	})
	t.Run("too many events", func(t *testing.T) {
		tr, closed := fakeSocket(t)
		on := tr.ws.Get("onmessage")
		on.Invoke(message(welcome))
		for range maxTrackerEvents + 1 {
			on.Invoke(message(signal))
		}
		if err := tr.Err(); !errors.Is(err, ErrTrackerClosed) || !closed() {
			t.Errorf("got %v (socket closed: %v), want the connection ended", err, closed())
		}
	})
}

func TestStartParams(t *testing.T) {
	for _, p := range []Params{
		{Server: "ftp://x", Stream: "s"},
		{Server: "http://x", Stream: "bad name"},
		{Server: "http://x", Stream: "s", BudgetKbps: -1},
	} {
		if _, err := Start(context.Background(), p); !errors.Is(err, ErrParams) {
			t.Errorf("%+v: %v, want ErrParams", p, err)
		}
	}
}
