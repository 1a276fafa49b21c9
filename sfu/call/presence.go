package call

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// Presence: every open page of a user (a "device") holds one WebSocket on
// GET /presence/ws and proves its Ed25519 key by signing the server's
// challenge. The server keeps, per key, its online devices and the contact
// list each device sent; it routes a ring only to the devices of the callee
// whose contact list holds the caller, when the caller's list holds the
// callee (mutual contacts), and tells a device which of its mutual contacts
// are online. Nothing here is stored: a restart forgets every device.

// MaxDevices is how many devices one key may have online at once.
const MaxDevices = 8

// device is one page or native device of a user.
type device struct {
	key, id    string
	name       string
	contacts   map[string]bool
	autoAnswer bool
	pc         *pconn // nil while away (its calls wait for it to come back)
	calls      map[string]*ringCall
	rings      *rate.Limiter // a ring a second, bursts of 5: no ring storms
}

// pconn is one presence WebSocket.
type pconn struct {
	pump
	s     *Server
	addr  netip.Addr
	host  string
	nonce []byte
	lim   *rate.Limiter
	over  int
	dev   *device // set by hello
}

func (c *pconn) send(o POut) {
	o.V = Version
	c.queue(o, POut{V: Version, Type: PTypeClosed, Code: CodeTimeout, Message: "too slow to read"})
}

func (c *pconn) closeWith(code, reason string) {
	c.close(POut{V: Version, Type: PTypeClosed, Code: code, Message: reason})
}

func (s *Server) servePresence(w http.ResponseWriter, r *http.Request) {
	ws, release, ok := s.accept(w, r, MaxPresenceBytes)
	if !ok {
		return
	}
	defer release()
	addr := s.p.ClientIP(r)
	c := &pconn{
		pump: newPump(s, ws), s: s, addr: addr, host: r.Host,
		nonce: make([]byte, 32),
		lim:   rate.NewLimiter(rate.Limit(s.lim.MsgRate), s.lim.MsgBurst),
	}
	_, _ = rand.Read(c.nonce)
	c.send(POut{Type: PTypeChallenge, Nonce: base64.RawURLEncoding.EncodeToString(c.nonce)})
	c.run(r.Context(), c.readLoop)
	if c.dev != nil {
		s.deviceLost(c.dev, c)
	}
}

func (c *pconn) readLoop(ctx context.Context) {
	helloBy := time.Now().Add(joinTimeout)
	for {
		rctx := ctx
		var cancel context.CancelFunc = func() {}
		if c.dev == nil {
			rctx, cancel = context.WithDeadline(ctx, helloBy)
		}
		typ, b, err := c.ws.Read(rctx)
		cancel()
		if err != nil {
			if c.dev == nil && errors.Is(err, context.DeadlineExceeded) {
				c.s.m.refused.WithLabelValues("hello-timeout").Inc()
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.StatusMessageTooBig {
				c.s.m.badMessages.Inc()
			}
			return
		}
		if c.closing.Load() {
			continue
		}
		if !c.lim.Allow() {
			c.over++
			c.s.m.refused.WithLabelValues(CodeRateLimited).Inc()
			if c.over > c.s.lim.MsgBurst {
				c.closeWith(CodeRateLimited, "too many messages")
				continue
			}
			c.send(POut{Type: PTypeError, Code: CodeRateLimited, Message: "slow down"})
			continue
		}
		if typ != websocket.MessageText {
			c.s.m.badMessages.Inc()
			c.send(POut{Type: PTypeError, Code: CodeBadMessage, Message: "messages are JSON text"})
			continue
		}
		msg, err := DecodePresence(b)
		if err != nil {
			c.s.m.badMessages.Inc()
			c.send(POut{Type: PTypeError, Code: CodeBadMessage, Message: err.Error()})
			continue
		}
		c.s.m.messages.WithLabelValues("presence-" + msg.Type).Inc()
		switch {
		case msg.Type == PTypePing:
			c.send(POut{Type: PTypePong, Ref: msg.Ref})
		case c.dev == nil && msg.Type != PTypeHello:
			c.send(POut{Type: PTypeError, Code: CodeNotReady, Message: "answer the challenge with hello first", Ref: msg.Ref})
		case msg.Type == PTypeHello:
			if c.dev != nil {
				c.send(POut{Type: PTypeError, Code: CodeBadMessage, Message: "hello was already said", Ref: msg.Ref})
				continue
			}
			c.hello(msg)
		default:
			c.s.presenceMsg(c, msg)
		}
	}
}

// hello checks the challenge's signature and registers the device.
func (c *pconn) hello(msg PMsg) {
	pub, _ := base64.RawURLEncoding.DecodeString(msg.Key) // checked by DecodePresence
	sig, _ := base64.RawURLEncoding.DecodeString(msg.Sig)
	if !ed25519.Verify(pub, PresenceSigned(c.host, c.nonce, msg.Device), sig) {
		c.s.m.refused.WithLabelValues(CodeBadSignature).Inc()
		c.closeWith(CodeBadSignature, "the signature does not prove this key")
		return
	}
	if code, text := c.s.deviceHello(c, msg); code != "" {
		c.s.m.refused.WithLabelValues(code).Inc()
		c.closeWith(code, text)
	}
}

// deviceHello registers (or brings back) a device and sends it ready.
func (s *Server) deviceHello(c *pconn, msg PMsg) (code, text string) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	devs := s.devices[msg.Key]
	d := devs[msg.Device]
	if d == nil {
		if len(devs) >= MaxDevices {
			return CodeTooManyDev, "this key has too many devices online"
		}
		if devs == nil {
			devs = map[string]*device{}
			s.devices[msg.Key] = devs
		}
		d = &device{key: msg.Key, id: msg.Device, calls: map[string]*ringCall{}, rings: rate.NewLimiter(1, 5)}
		devs[msg.Device] = d
	}
	wasHere := s.onlineLocked(msg.Key)
	old := d.pc
	d.pc = c
	c.dev = d
	d.name = msg.Name
	d.autoAnswer = msg.AutoAnswer
	d.contacts = keySet(msg.Contacts)
	if old != nil {
		old.dev = nil // its end must not take the device away
		old.closeWith(CodeReplaced, "this device connected again")
	}
	ready := POut{Type: PTypeReady, Online: s.mutualOnlineLocked(d)}
	for _, id := range slices.Sorted(maps.Keys(d.calls)) {
		rc := d.calls[id]
		rc.back(d)
		ready.Calls = append(ready.Calls, rc.infoLocked(d))
	}
	c.send(ready)
	s.ringAgainLocked(d)
	if !wasHere {
		s.tellPresenceLocked(msg.Key, true)
	}
	s.m.devices.Set(float64(s.countDevicesLocked()))
	return "", ""
}

func keySet(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// onlineLocked reports whether key has a connected device.
func (s *Server) onlineLocked(key string) bool {
	for _, d := range s.devices[key] {
		if d.pc != nil {
			return true
		}
	}
	return false
}

// listsLocked reports whether some connected device of key lists other as
// a contact.
func (s *Server) listsLocked(key, other string) bool {
	for _, d := range s.devices[key] {
		if d.pc != nil && d.contacts[other] {
			return true
		}
	}
	return false
}

// mutualOnlineLocked returns the online keys that d lists and that list d.
func (s *Server) mutualOnlineLocked(d *device) []string {
	out := []string{}
	for k := range d.contacts {
		if k != d.key && s.listsLocked(k, d.key) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// tellPresenceLocked tells the mutual contacts of key that it came or went.
func (s *Server) tellPresenceLocked(key string, here bool) {
	for k, devs := range s.devices {
		if k == key {
			continue
		}
		for _, d := range devs {
			if d.pc != nil && d.contacts[key] && s.listsLocked(key, k) {
				d.pc.send(POut{Type: PTypePresence, Key: key, Here: here})
			}
		}
	}
}

func (s *Server) countDevicesLocked() int {
	n := 0
	for _, devs := range s.devices {
		for _, d := range devs {
			if d.pc != nil {
				n++
			}
		}
	}
	return n
}

// deviceLost handles the end of a device's presence connection: its calls
// hear that it is lost (it may come back), and it goes when it has none.
func (s *Server) deviceLost(d *device, c *pconn) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if d.pc != c {
		return // replaced by a newer connection
	}
	d.pc = nil
	for _, id := range slices.Sorted(maps.Keys(d.calls)) {
		d.calls[id].lost(d)
	}
	s.forgetDeviceLocked(d)
	if !s.onlineLocked(d.key) {
		s.tellPresenceLocked(d.key, false)
	}
	s.m.devices.Set(float64(s.countDevicesLocked()))
}

// forgetDeviceLocked drops a device that is away and in no call.
func (s *Server) forgetDeviceLocked(d *device) {
	if d.pc != nil || len(d.calls) > 0 {
		return
	}
	devs := s.devices[d.key]
	if devs[d.id] == d {
		delete(devs, d.id)
		if len(devs) == 0 {
			delete(s.devices, d.key)
		}
	}
}

// presenceMsg handles a message of a device that said hello.
func (s *Server) presenceMsg(c *pconn, msg PMsg) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	d := c.dev
	if d == nil || d.pc != c {
		return
	}
	fail := func(code, text string) {
		s.m.refused.WithLabelValues(code).Inc()
		c.send(POut{Type: PTypeError, Code: code, Message: text, Ref: msg.Ref})
	}
	switch msg.Type {
	case PTypeContacts:
		before := s.mutualOnlineLocked(d)
		d.contacts = keySet(msg.Contacts)
		after := s.mutualOnlineLocked(d)
		// Tell both sides of every mutual pair that formed or broke.
		for _, k := range symmetricDiff(before, after) {
			here := slices.Contains(after, k)
			c.send(POut{Type: PTypePresence, Key: k, Here: here})
			for _, od := range s.devices[k] {
				if od.pc != nil && od.contacts[d.key] {
					od.pc.send(POut{Type: PTypePresence, Key: d.key, Here: here})
				}
			}
		}
	case PTypeSettings:
		d.name = msg.Name
		d.autoAnswer = msg.AutoAnswer
	case PTypeRing:
		if !d.rings.Allow() {
			fail(CodeRateLimited, "ringing too often: wait a moment")
			return
		}
		if code, text := s.ringLocked(d, msg); code != "" {
			fail(code, text)
		}
	default:
		if code, text := s.callEventLocked(d, msg); code != "" {
			fail(code, text)
		}
	}
}

func symmetricDiff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			out = append(out, x)
		}
	}
	return out
}
