//go:build js && wasm

package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall/js"
	"time"

	"github.com/seedcast/seedcast/tracker/protocol"
)

// Errors of the tracker connection.
var (
	// ErrTracker is returned when the tracker cannot be joined, or says
	// something that breaks the protocol.
	ErrTracker = errors.New("swarm/browser: tracker")
	// ErrTrackerClosed is returned once the tracker connection has ended;
	// the error says the close code and reason.
	ErrTrackerClosed = errors.New("swarm/browser: tracker connection closed")
)

// maxTrackerEvents bounds the signals and reassignments queued for the
// node. The browser's WebSocket cannot be told to stop reading, so a queue
// that fills ends the connection instead.
const maxTrackerEvents = 256

// trackerParams configures a tracker connection.
type trackerParams struct {
	URL  string        // ws(s)://host/tracker
	Join protocol.Join // Type and V are filled in
	// JoinTimeout bounds the connection and the wait for the welcome (10 s).
	JoinTimeout time.Duration
}

// tracker is the node's connection to the tracker over the browser's
// WebSocket (docs/protocol.md §4): it joins, then delivers signals and
// reassignments as events, and sends signals and reports. It is what
// swarm.TrackerClient is natively, without a WebSocket library: every
// message is one text frame of at most protocol.MaxMessageBytes, decoded by
// protocol.DecodeServer.
type tracker struct {
	ws      js.Value
	funcs   []js.Func
	names   []string // the handlers funcs are set as
	opened  chan struct{}
	first   chan any // the first message: the welcome, hopefully
	events  chan any
	done    chan struct{}
	welcome protocol.Welcome
	closing sync.Once

	mu       sync.Mutex
	err      error
	ended    bool
	welcomed bool
}

// dialTracker connects, joins and waits for the welcome.
func dialTracker(ctx context.Context, p trackerParams) (*tracker, error) {
	if p.JoinTimeout <= 0 {
		p.JoinTimeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, p.JoinTimeout)
	defer cancel()
	t := newTracker()
	err := try(func() {
		t.ws = js.Global().Get("WebSocket").New(p.URL)
		t.ws.Set("binaryType", "arraybuffer")
		t.on("onopen", func(js.Value) { close(t.opened) })
		t.on("onmessage", t.onMessage)
		t.on("onclose", func(ev js.Value) {
			t.end(fmt.Errorf("%w: %d %q", ErrTrackerClosed, ev.Get("code").Int(), ev.Get("reason").String()))
		})
	})
	if err != nil {
		t.release()
		return nil, fmt.Errorf("%w: %s: %w", ErrTracker, p.URL, err)
	}
	if err := t.join(ctx, p.Join); err != nil {
		_ = t.Close()
		return nil, fmt.Errorf("%w: join: %w", ErrTracker, err)
	}
	return t, nil
}

// join sends the join once the socket is open and waits for the welcome.
func (t *tracker) join(ctx context.Context, join protocol.Join) error {
	select {
	case <-t.opened:
	case <-t.done:
		return t.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
	join.Type, join.V = protocol.TypeJoin, protocol.ProtocolVersion
	if err := t.send(join); err != nil {
		return err
	}
	select {
	case msg := <-t.first:
		w, ok := msg.(*protocol.Welcome)
		if !ok {
			return fmt.Errorf("%w: the join was answered with %T", protocol.ErrBadMessage, msg)
		}
		t.welcome = *w
		return nil
	case <-t.done:
		return t.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newTracker() *tracker {
	return &tracker{
		opened: make(chan struct{}), first: make(chan any, 1),
		events: make(chan any, maxTrackerEvents), done: make(chan struct{}),
	}
}

// on sets the socket's handler for event. A panic in f (a bug, or a
// JavaScript value of an unexpected shape) ends the connection, not the
// program.
func (t *tracker) on(event string, f func(ev js.Value)) {
	fn := js.FuncOf(func(_ js.Value, args []js.Value) any {
		defer func() {
			if r := recover(); r != nil {
				t.fail(fmt.Errorf("%w: %s handler: %v", ErrJS, event, r))
			}
		}()
		f(arg0(args))
		return nil
	})
	t.funcs, t.names = append(t.funcs, fn), append(t.names, event)
	t.ws.Set(event, fn)
}

// onMessage decodes one message. It runs on a js.Func callback: it never
// blocks.
func (t *tracker) onMessage(ev js.Value) {
	data := ev.Get("data")
	if data.Type() != js.TypeString {
		t.fail(fmt.Errorf("%w: binary message", protocol.ErrBadMessage))
		return
	}
	// A UTF-16 length over the limit is a UTF-8 length over it too: refuse
	// before copying the text into Go. (A string primitive has no
	// properties for syscall/js; its String wrapper object has.)
	if n := js.Global().Get("Object").Invoke(data).Get("length").Int(); n > protocol.MaxMessageBytes {
		t.fail(fmt.Errorf("%w: %d characters, limit %d bytes", protocol.ErrBadMessage, n, protocol.MaxMessageBytes))
		return
	}
	msg, err := protocol.DecodeServer([]byte(data.String()))
	if err != nil {
		t.fail(err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.ended:
	case !t.welcomed:
		t.welcomed = true
		t.first <- msg
	default:
		switch msg.(type) {
		case *protocol.Signal, *protocol.Reassign:
			select {
			case t.events <- msg:
			default:
				t.endLocked(fmt.Errorf("%w: %d events unread", ErrTrackerClosed, maxTrackerEvents))
				t.closeSocket()
			}
		}
	}
}

// fail ends the connection for a protocol error of the tracker.
func (t *tracker) fail(err error) {
	t.end(fmt.Errorf("%w: %w", ErrTrackerClosed, err))
	t.closeSocket()
}

func (t *tracker) end(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endLocked(err)
}

func (t *tracker) endLocked(err error) {
	if t.ended {
		return
	}
	t.ended, t.err = true, err
	close(t.events)
	close(t.done)
}

func (t *tracker) closeSocket() { _ = try(func() { t.ws.Call("close", 1000) }) }

// release unhooks and frees the socket's callbacks.
func (t *tracker) release() {
	for i, f := range t.funcs {
		_ = try(func() { t.ws.Set(t.names[i], js.Null()) })
		f.Release()
	}
	t.funcs, t.names = nil, nil
}

// Welcome is the tracker's answer to the join.
func (t *tracker) Welcome() protocol.Welcome { return t.welcome }

// Events delivers *protocol.Signal and *protocol.Reassign in order; it is
// closed when the connection ends.
func (t *tracker) Events() <-chan any { return t.events }

// Err is why the connection ended (nil while it is up).
func (t *tracker) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Signal sends signaling to a linked peer.
func (t *tracker) Signal(_ context.Context, to protocol.PeerID, sdp *protocol.SDP, cand *protocol.Candidate) error {
	return t.send(protocol.Signal{Type: protocol.TypeSignal, To: to, SDP: sdp, Candidate: cand})
}

// Report sends a health report. The browser queues it: ctx is not needed.
func (t *tracker) Report(_ context.Context, r protocol.Report) error {
	r.Type = protocol.TypeReport
	return t.send(r)
}

// send writes one message. The browser queues it: it does not block.
func (t *tracker) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTracker, err)
	}
	if len(b) > protocol.MaxMessageBytes {
		return fmt.Errorf("%w: a message of %d bytes, limit %d", ErrTracker, len(b), protocol.MaxMessageBytes)
	}
	select {
	case <-t.done:
		return t.Err()
	default:
	}
	if err := try(func() { t.ws.Call("send", string(b)) }); err != nil {
		return fmt.Errorf("%w: %w", ErrTracker, err)
	}
	return nil
}

// Close leaves the swarm, closes the socket and waits (at most 5 s) for
// the browser to say it is closed. It must not run on a js.Func callback.
func (t *tracker) Close() error {
	t.closing.Do(t.leave)
	return nil
}

// leave is Close's work, once. (A method, not a closure in Close: Close is
// inlined, and a closure would be copied into each caller.)
func (t *tracker) leave() {
	var open bool
	_ = try(func() { open = t.ws.Get("readyState").Int() == 1 })
	if open {
		_ = t.send(protocol.Leave{Type: protocol.TypeLeave})
	}
	t.closeSocket()
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
		t.end(fmt.Errorf("%w: closed without an answer", ErrTrackerClosed))
	}
	t.release()
}
