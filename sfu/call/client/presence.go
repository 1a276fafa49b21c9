package client

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/seedcast/seedcast/sfu/call"
)

// DeviceParams configures a presence connection (docs/protocol.md §7).
type DeviceParams struct {
	URL      string             // ws(s)://host/presence/ws
	Key      ed25519.PrivateKey // the user's identity
	Device   string             // this device's id (call.ValidDevice)
	Name     string
	Contacts []ed25519.PublicKey
	// AutoAnswer answers calls from this same key (your own always-on
	// device) at once.
	AutoAnswer bool
	Header     http.Header
	// Host is what the challenge's signature names; default the URL's host.
	Host string
}

// Device is one device's presence connection: it proves its key, hears
// which contacts are online, rings and is rung.
type Device struct {
	p      DeviceParams
	ws     *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	events []call.POut
	notify chan struct{}
	gone   error
	ready  call.POut
}

// KeyString is a public key as the protocol writes it (base64url).
func KeyString(k ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(k) }

// DialDevice connects, answers the challenge and waits for ready.
func DialDevice(ctx context.Context, p DeviceParams) (*Device, error) {
	if p.Host == "" {
		u, err := url.Parse(p.URL)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		p.Host = u.Host
	}
	ws, _, err := websocket.Dial(ctx, p.URL, &websocket.DialOptions{HTTPHeader: p.Header})
	if err != nil {
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	cctx, cancel := context.WithCancel(context.Background())
	d := &Device{p: p, ws: ws, ctx: cctx, cancel: cancel, notify: make(chan struct{})}
	d.wg.Add(1)
	go d.readLoop()
	ch, err := d.WaitFor(ctx, func(o call.POut) bool { return o.Type == call.PTypeChallenge })
	if err != nil {
		d.Close()
		return nil, err
	}
	nonce, err := base64.RawURLEncoding.DecodeString(ch.Nonce)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("client: bad challenge: %w", err)
	}
	sig := ed25519.Sign(p.Key, call.PresenceSigned(p.Host, nonce, p.Device))
	hello := call.PMsg{
		Type: call.PTypeHello, Key: KeyString(p.Key.Public().(ed25519.PublicKey)), Device: p.Device,
		Name: p.Name, Sig: base64.RawURLEncoding.EncodeToString(sig), Contacts: keyStrings(p.Contacts),
		AutoAnswer: p.AutoAnswer,
	}
	if err := d.Send(hello); err != nil {
		d.Close()
		return nil, err
	}
	o, err := d.WaitFor(ctx, func(o call.POut) bool { return o.Type == call.PTypeReady || o.Type == call.PTypeClosed })
	if err != nil {
		d.Close()
		return nil, err
	}
	if o.Type == call.PTypeClosed {
		d.Close()
		return nil, fmt.Errorf("%w: %s: %s", ErrClosed, o.Code, o.Message)
	}
	d.mu.Lock()
	d.ready = o
	d.mu.Unlock()
	return d, nil
}

func keyStrings(ks []ed25519.PublicKey) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = KeyString(k)
	}
	return out
}

// Ready returns the server's ready message.
func (d *Device) Ready() call.POut {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ready
}

// Send sends a message.
func (d *Device) Send(m call.PMsg) error {
	m.V = call.Version
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return d.SendRaw(b)
}

// SendRaw sends bytes as they are (tests of bad input).
func (d *Device) SendRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
	defer cancel()
	if err := d.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return nil
}

func (d *Device) readLoop() {
	defer d.wg.Done()
	for {
		_, b, err := d.ws.Read(d.ctx)
		d.mu.Lock()
		if err != nil {
			d.gone = err
			close(d.notify)
			d.notify = make(chan struct{})
			d.mu.Unlock()
			return
		}
		var o call.POut
		if json.Unmarshal(b, &o) == nil {
			d.events = append(d.events, o)
			if len(d.events) > 4096 {
				d.events = d.events[1:]
			}
		}
		close(d.notify)
		d.notify = make(chan struct{})
		d.mu.Unlock()
	}
}

// WaitFor returns the first message since the device connected for which
// match is true, waiting for it if needed.
func (d *Device) WaitFor(ctx context.Context, match func(call.POut) bool) (call.POut, error) {
	seen := 0
	for {
		d.mu.Lock()
		evs := d.events[min(seen, len(d.events)):]
		ch, gone := d.notify, d.gone
		d.mu.Unlock()
		for _, o := range evs {
			seen++
			if match(o) {
				return o, nil
			}
		}
		if gone != nil {
			return call.POut{}, fmt.Errorf("%w: %v", ErrClosed, gone)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return call.POut{}, ctx.Err()
		}
	}
}

// Next waits for messages after the first seen ones and returns them all
// (seen counts from the connection's start; at most the last 4096 are kept).
func (d *Device) Next(ctx context.Context, seen int) ([]call.POut, error) {
	for {
		d.mu.Lock()
		evs, ch, gone := d.events, d.notify, d.gone
		d.mu.Unlock()
		if len(evs) > seen {
			return append([]call.POut(nil), evs[seen:]...), nil
		}
		if gone != nil {
			return nil, fmt.Errorf("%w: %v", ErrClosed, gone)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// WaitCall waits for a call message of call id (any call when id is "")
// in state.
func (d *Device) WaitCall(ctx context.Context, id, state string) (call.CallInfo, error) {
	o, err := d.WaitFor(ctx, func(o call.POut) bool {
		return o.Type == call.PTypeCall && o.Call != nil && (id == "" || o.Call.ID == id) && o.Call.State == state
	})
	if err != nil {
		return call.CallInfo{}, fmt.Errorf("waiting for call %s %s: %w", id, state, err)
	}
	return *o.Call, nil
}

// Events returns the messages received so far.
func (d *Device) Events() []call.POut {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]call.POut(nil), d.events...)
}

// Ring rings key to.
func (d *Device) Ring(to ed25519.PublicKey, salt []byte) error {
	return d.Send(call.PMsg{Type: call.PTypeRing, To: KeyString(to), Video: true, E2EE: true,
		Salt: base64.RawURLEncoding.EncodeToString(salt)})
}

// Act sends a call event (answer, decline, hangup, hold, ...).
func (d *Device) Act(typ, callID string) error { return d.Send(call.PMsg{Type: typ, Call: callID}) }

// Close ends the connection and waits for its reader.
func (d *Device) Close() {
	d.cancel()
	_ = d.ws.CloseNow()
	d.wg.Wait()
}
