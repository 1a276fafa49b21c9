package ring

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors of the package, wrapped with %w.
var (
	// ErrInvalid means an event that is not valid in the call's state (or
	// from that side): it changed nothing.
	ErrInvalid = errors.New("ring: invalid event")
	// ErrUnknownDevice means an event names a device that is not ringing
	// or not in the call: it changed nothing.
	ErrUnknownDevice = errors.New("ring: unknown device")
	// ErrBadParams means Params that cannot work.
	ErrBadParams = errors.New("ring: bad params")
)

// Default timeouts (Timeouts' zero values).
const (
	DefaultNoAnswer = 30 * time.Second
	DefaultConnect  = 15 * time.Second
	DefaultLost     = 10 * time.Second
)

// Side is one party of a call.
type Side uint8

// The two sides. The zero Side is neither, and invalid in events.
const (
	Caller Side = iota + 1
	Callee
)

func (s Side) valid() bool { return s == Caller || s == Callee }

// Other returns the other side.
func (s Side) Other() Side {
	if s == Caller {
		return Callee
	}
	return Caller
}

func (s Side) String() string {
	switch s {
	case Caller:
		return "caller"
	case Callee:
		return "callee"
	}
	return fmt.Sprintf("Side(%d)", uint8(s))
}

// MarshalText returns "caller" or "callee".
func (s Side) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("ring: no such side %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// State is the server's view of a call.
type State uint8

// The states of a call; Ended is terminal.
const (
	Ringing    State = iota + 1 // the callee's devices ring
	Connecting                  // answered; both sides must join the media room
	Active                      // both sides joined
	Held                        // Active, and at least one side holds
	Ended                       // over; see Call.Reason
)

func (s State) String() string {
	switch s {
	case Ringing:
		return "ringing"
	case Connecting:
		return "connecting"
	case Active:
		return "active"
	case Held:
		return "held"
	case Ended:
		return "ended"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ViewState is the call as one side's devices show it. Its text form
// ("idle", "outgoing-ringing", ...) is the one used on the wire.
type ViewState uint8

// The view states. Idle (no call) is the zero value, for the client's
// own use: no Notice carries it.
const (
	Idle            ViewState = iota
	OutgoingRinging           // the caller, while Ringing
	IncomingRinging           // a callee device, while Ringing
	ViewConnecting
	ViewActive
	ViewHeld
	ViewEnded
)

var viewNames = [...]string{"idle", "outgoing-ringing", "incoming-ringing", "connecting", "active", "held", "ended"}

func (v ViewState) String() string {
	if int(v) < len(viewNames) {
		return viewNames[v]
	}
	return fmt.Sprintf("ViewState(%d)", uint8(v))
}

// MarshalText returns the view state's wire name.
func (v ViewState) MarshalText() ([]byte, error) {
	if int(v) >= len(viewNames) {
		return nil, fmt.Errorf("ring: no such view state %d", uint8(v))
	}
	return []byte(viewNames[v]), nil
}

// UnmarshalText parses a wire name.
func (v *ViewState) UnmarshalText(b []byte) error {
	i := slices.Index(viewNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("ring: no such view state %q", b)
	}
	*v = ViewState(i)
	return nil
}

// Reason says why a call ended, or (answered-elsewhere only) why one
// device stopped ringing. The values are the wire's.
type Reason string

// The reasons.
const (
	ReasonDeclined    Reason = "declined"    // a ringing callee device declined
	ReasonBusy        Reason = "busy"        // the callee is in another call
	ReasonNoAnswer    Reason = "no-answer"   // rang for Timeouts.NoAnswer
	ReasonCancelled   Reason = "cancelled"   // the caller hung up while ringing
	ReasonHangup      Reason = "hangup"      // a side hung up after the answer
	ReasonFailed      Reason = "failed"      // not both joined within Timeouts.Connect
	ReasonLost        Reason = "lost"        // a side lost for Timeouts.Lost
	ReasonUnavailable Reason = "unavailable" // no callee device (left) to ring
	// ReasonAnsweredElsewhere is only ever a device's stop-ringing
	// notice: another device of the callee answered. Never a call's reason.
	ReasonAnsweredElsewhere Reason = "answered-elsewhere"
)

// Tone is the comfort tone a device should play. The values are the
// wire's; ToneNone is the empty string.
type Tone string

// The tones.
const (
	ToneNone     Tone = ""
	ToneRingback Tone = "ringback" // the caller, while outgoing ringing
	ToneBusy     Tone = "busy"     // the caller, when the call ended busy
	ToneEnded    Tone = "ended"    // any device told the call ended otherwise
)

// Holds says which sides hold the call.
type Holds struct {
	Caller bool `json:"caller,omitempty"`
	Callee bool `json:"callee,omitempty"`
}

// By reports whether side s holds.
func (h Holds) By(s Side) bool {
	if s == Caller {
		return h.Caller
	}
	return s == Callee && h.Callee
}

// Any reports whether either side holds.
func (h Holds) Any() bool { return h.Caller || h.Callee }

func (h *Holds) set(s Side, on bool) {
	if s == Caller {
		h.Caller = on
	} else {
		h.Callee = on
	}
}

// Notice is a message for one device: the call's state as its side sees
// it, and the tone to play. Every Notice names exactly one device: the
// caller's device, one ringing callee device, or the answering device.
type Notice struct {
	Side   Side      `json:"side"`
	Device string    `json:"device"`
	State  ViewState `json:"state"`
	Reason Reason    `json:"reason,omitempty"` // with State ViewEnded only
	HeldBy Holds     `json:"heldBy"`
	Tone   Tone      `json:"tone,omitempty"`
}

// Kind is the kind of an Event.
type Kind uint8

// The kinds of events. See the package doc for when each is valid.
const (
	KindAnswer      Kind = iota + 1 // a callee device answers
	KindDecline                     // a callee device declines
	KindBusy                        // a callee device is in another call
	KindCancel                      // the caller gives up while ringing
	KindHangup                      // a side hangs up
	KindHold                        // a side holds
	KindResume                      // a side ends its own hold
	KindJoined                      // a side entered the media room
	KindLost                        // a side's connection dropped
	KindBack                        // a lost side's connection is back
	KindDeviceAdded                 // a callee device came online while ringing
	KindDeviceGone                  // a ringing callee device went offline
	kindEnd
)

var kindNames = [...]string{"", "answer", "decline", "busy", "cancel", "hangup", "hold", "resume", "joined", "lost", "back", "device-added", "device-gone"}

func (k Kind) String() string {
	if k > 0 && k < kindEnd {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// deviceKind reports whether k names a callee device (not a side).
func (k Kind) deviceKind() bool {
	switch k {
	case KindAnswer, KindDecline, KindBusy, KindDeviceAdded, KindDeviceGone:
		return true
	}
	return false
}

// Event is an input from a party or the server. Build one with the
// functions named after its kind (Answer, Hold, ...), or fill it from a
// signalling message: Side is who sent it; Device is required for the
// device kinds (Answer, Decline, Busy, DeviceAdded, DeviceGone, which
// are the callee's) and optional for the others, where, if set, it must
// be the side's device in the call (the caller's device, or the
// answering device).
type Event struct {
	Kind   Kind
	Side   Side
	Device string
}

// Answer is callee device d answering.
func Answer(d string) Event { return Event{KindAnswer, Callee, d} }

// Decline is callee device d declining.
func Decline(d string) Event { return Event{KindDecline, Callee, d} }

// Busy is callee device d reporting it is in another call.
func Busy(d string) Event { return Event{KindBusy, Callee, d} }

// Cancel is the caller giving up while ringing.
func Cancel() Event { return Event{Kind: KindCancel, Side: Caller} }

// Hangup is side s hanging up.
func Hangup(s Side) Event { return Event{Kind: KindHangup, Side: s} }

// Hold is side s holding the call.
func Hold(s Side) Event { return Event{Kind: KindHold, Side: s} }

// Resume is side s ending its hold.
func Resume(s Side) Event { return Event{Kind: KindResume, Side: s} }

// Joined is side s entering the call's media room.
func Joined(s Side) Event { return Event{Kind: KindJoined, Side: s} }

// Lost is side s's connection dropping.
func Lost(s Side) Event { return Event{Kind: KindLost, Side: s} }

// Back is side s's connection returning (resumed) after Lost.
func Back(s Side) Event { return Event{Kind: KindBack, Side: s} }

// DeviceAdded is callee device d coming online.
func DeviceAdded(d string) Event { return Event{KindDeviceAdded, Callee, d} }

// DeviceGone is callee device d going offline.
func DeviceGone(d string) Event { return Event{KindDeviceGone, Callee, d} }

func (e Event) String() string {
	if e.Kind.deviceKind() && e.Side == Callee {
		return fmt.Sprintf("%s(%s)", e.Kind, e.Device)
	}
	if e.Device != "" {
		return fmt.Sprintf("%s(%s %s)", e.Kind, e.Side, e.Device)
	}
	return fmt.Sprintf("%s(%s)", e.Kind, e.Side)
}

// Timeouts bounds each wait; a zero value means the default.
type Timeouts struct {
	// NoAnswer is how long a call rings (default 30 s): ReasonNoAnswer.
	NoAnswer time.Duration
	// Connect is how long after the answer both sides have to join the
	// media room (default 15 s): ReasonFailed.
	Connect time.Duration
	// Lost is how long a lost side has to come back (default 10 s):
	// ReasonLost.
	Lost time.Duration
}

// Params describes a call as it starts ringing.
type Params struct {
	ID string // the call's id, for the server's use (required)
	// Caller and Callee are the users (Ed25519 public keys, as strings).
	Caller, Callee string
	// CallerDevice is the device the caller rings from (required).
	CallerDevice string
	// CalleeDevices are the callee's online devices: they all ring. When
	// the caller calls their own user, CallerDevice is left out. None
	// ends the call at once as ReasonUnavailable.
	CalleeDevices []string
	// AutoAnswer lists callee devices with auto-answer on. It applies
	// only when Caller == Callee: see the package doc.
	AutoAnswer []string
	// Busy says the server already knows the callee is in another call:
	// the call starts Ended with ReasonBusy (no device rings).
	Busy     bool
	Timeouts Timeouts
}

// target is one device of one side.
type target struct {
	side Side
	dev  string
}

// view is what a device was last told.
type view struct {
	state  ViewState
	reason Reason
	holds  Holds
}

// Call is one 1:1 call from ringing to its end. It does no I/O and reads
// no clock: each input brings the time, Poll returns what to tell whom,
// and NextWake says when Tick is next due. It is not safe for concurrent
// use.
type Call struct {
	id        string
	callerDev string
	self      bool            // the caller calls their own user
	auto      map[string]bool // auto-answer devices (self calls only)
	t         Timeouts

	state      State
	reason     Reason
	devices    []string // the callee's devices in the call: ringing, or the answering one
	answeredBy string
	holds      Holds
	joined     [3]bool      // by Side
	lost       [3]time.Time // by Side: the lost deadline (zero: present)
	noAnswer   time.Time    // deadlines; zero: none
	connect    time.Time

	started, answered, ended time.Time
	last                     time.Time // the latest now seen

	sent map[target]view // what each device in the call was last told
	out  []Notice
}

// New starts a call at now: the callee's devices ring (Poll returns the
// first notices), unless Params.Busy, no callee device, or auto-answer
// settle it at once.
func New(now time.Time, p Params) (*Call, error) {
	switch {
	case p.ID == "":
		return nil, fmt.Errorf("%w: no call id", ErrBadParams)
	case p.Caller == "" || p.Callee == "":
		return nil, fmt.Errorf("%w: caller and callee are required", ErrBadParams)
	case p.CallerDevice == "":
		return nil, fmt.Errorf("%w: no caller device", ErrBadParams)
	case p.Timeouts.NoAnswer < 0 || p.Timeouts.Connect < 0 || p.Timeouts.Lost < 0:
		return nil, fmt.Errorf("%w: negative timeout", ErrBadParams)
	}
	c := &Call{
		id: p.ID, callerDev: p.CallerDevice, self: p.Caller == p.Callee, t: p.Timeouts,
		state: Ringing, started: now, last: now, sent: map[target]view{},
	}
	if c.t.NoAnswer == 0 {
		c.t.NoAnswer = DefaultNoAnswer
	}
	if c.t.Connect == 0 {
		c.t.Connect = DefaultConnect
	}
	if c.t.Lost == 0 {
		c.t.Lost = DefaultLost
	}
	seen := map[string]bool{}
	for _, d := range p.CalleeDevices {
		if d == "" {
			return nil, fmt.Errorf("%w: empty callee device id", ErrBadParams)
		}
		if seen[d] {
			return nil, fmt.Errorf("%w: callee device %q twice", ErrBadParams, d)
		}
		seen[d] = true
		if c.self && d == c.callerDev {
			continue
		}
		c.devices = append(c.devices, d)
	}
	if c.self {
		c.auto = map[string]bool{}
		for _, d := range p.AutoAnswer {
			c.auto[d] = true
		}
	}
	switch {
	case p.Busy:
		c.devices = nil
		c.end(now, ReasonBusy)
	case len(c.devices) == 0:
		c.end(now, ReasonUnavailable)
	default:
		for _, d := range c.devices {
			if c.auto[d] {
				c.devices = []string{d} // the others never ring
				c.answer(now, d)
				return c, nil
			}
		}
		c.noAnswer = now.Add(c.t.NoAnswer)
		c.sync()
	}
	return c, nil
}

// ID returns Params.ID.
func (c *Call) ID() string { return c.id }

// State returns the call's state.
func (c *Call) State() State { return c.state }

// Reason returns why the call ended ("" before it ends).
func (c *Call) Reason() Reason { return c.reason }

// View returns the call's state as side s's devices see it.
func (c *Call) View(s Side) ViewState { return c.view(s).state }

// AnsweredBy returns the callee device that answered ("" if none did).
func (c *Call) AnsweredBy() string { return c.answeredBy }

// Holds returns which sides hold the call.
func (c *Call) Holds() Holds { return c.holds }

// Ringing returns the callee devices ringing now (none unless Ringing).
func (c *Call) Ringing() []string {
	if c.state != Ringing {
		return nil
	}
	return slices.Clone(c.devices)
}

// Started returns when the call started ringing (New's now).
func (c *Call) Started() time.Time { return c.started }

// Answered returns when a callee device answered (zero if none did).
func (c *Call) Answered() time.Time { return c.answered }

// Ended returns when the call ended (zero while it goes on). A call that
// timed out ended at its deadline, however late Tick came.
func (c *Call) Ended() time.Time { return c.ended }

// Duration returns how long the call lasted from its answer to its end:
// zero if it was not answered or has not ended.
func (c *Call) Duration() time.Duration {
	if c.answered.IsZero() || c.ended.IsZero() {
		return 0
	}
	return c.ended.Sub(c.answered)
}

// Poll returns the next notice to deliver, oldest first.
func (c *Call) Poll() (Notice, bool) {
	if len(c.out) == 0 {
		return Notice{}, false
	}
	n := c.out[0]
	c.out = c.out[1:]
	if len(c.out) == 0 {
		c.out = nil
	}
	return n, true
}

// NextWake returns the earliest pending deadline (no-answer, connect or
// lost), when Tick is due; false when none is pending (an Active or Held
// call with both sides present, or an ended one).
func (c *Call) NextWake() (time.Time, bool) {
	d, _ := c.due()
	return d, !d.IsZero()
}

// Tick fires the deadlines due at now.
func (c *Call) Tick(now time.Time) { c.advance(now) }

// due returns the earliest deadline and the reason the call ends for when
// it fires (zero time: none). On a tie the call's own deadline wins.
func (c *Call) due() (time.Time, Reason) {
	if c.state == Ended {
		return time.Time{}, ""
	}
	var at time.Time
	var why Reason
	for _, d := range [...]struct {
		at  time.Time
		why Reason
	}{{c.noAnswer, ReasonNoAnswer}, {c.connect, ReasonFailed}, {c.lost[Caller], ReasonLost}, {c.lost[Callee], ReasonLost}} {
		if !d.at.IsZero() && (at.IsZero() || d.at.Before(at)) {
			at, why = d.at, d.why
		}
	}
	return at, why
}

// advance takes now (never earlier than a now seen before) and fires the
// deadline due by then, if any: every deadline ends the call.
func (c *Call) advance(now time.Time) time.Time {
	if now.Before(c.last) {
		now = c.last
	}
	c.last = now
	if at, why := c.due(); !at.IsZero() && !at.After(now) {
		c.end(at, why)
	}
	return now
}

// Handle applies ev at now, after firing the deadlines due by then (so an
// answer that comes after the no-answer deadline finds the call ended,
// Tick or no Tick). An event not valid in the call's state returns an
// error wrapping ErrInvalid or ErrUnknownDevice and changes nothing
// (deadlines due by now have fired, as by Tick).
func (c *Call) Handle(now time.Time, ev Event) error {
	now = c.advance(now)
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, ev, fmt.Sprintf(format, a...))
	}
	switch {
	case ev.Kind == 0 || ev.Kind >= kindEnd:
		return bad("no such kind of event")
	case !ev.Side.valid():
		return bad("no such side")
	case c.state == Ended:
		return bad("the call has ended (%s)", c.reason)
	}
	if ev.Kind.deviceKind() {
		switch {
		case ev.Side != Callee:
			return bad("only a callee device can %s", ev.Kind)
		case ev.Device == "":
			return bad("no device")
		case c.state != Ringing:
			return bad("not valid while %s", c.state)
		}
		i := slices.Index(c.devices, ev.Device)
		if ev.Kind == KindDeviceAdded {
			if i >= 0 {
				return bad("already ringing")
			}
			if c.self && ev.Device == c.callerDev {
				return bad("the calling device cannot ring")
			}
			c.devices = append(c.devices, ev.Device)
			if c.auto[ev.Device] {
				c.answer(now, ev.Device)
			} else {
				c.sync()
			}
			return nil
		}
		if i < 0 {
			return fmt.Errorf("%w: %s: %q is not ringing", ErrUnknownDevice, ev, ev.Device)
		}
		switch ev.Kind {
		case KindAnswer:
			c.answer(now, ev.Device)
		case KindDecline:
			c.end(now, ReasonDeclined)
		case KindBusy:
			c.end(now, ReasonBusy)
		case KindDeviceGone:
			c.devices = slices.Delete(c.devices, i, i+1)
			delete(c.sent, target{Callee, ev.Device})
			if len(c.devices) == 0 {
				c.end(now, ReasonUnavailable)
			}
		}
		return nil
	}

	// Side events: first the state, then the device, then the side's own
	// condition.
	s := ev.Side
	valid := false
	switch ev.Kind {
	case KindCancel:
		valid = c.state == Ringing && s == Caller
	case KindHangup, KindLost:
		valid = c.state != Ringing || s == Caller
	case KindBack:
		valid = true
	case KindHold, KindResume:
		valid = c.state == Active || c.state == Held
	case KindJoined:
		valid = c.state == Connecting
	}
	if !valid {
		return bad("not valid while %s", c.state)
	}
	if ev.Device != "" && ev.Device != c.device(s) {
		return fmt.Errorf("%w: %s: %q is not the %s's device in the call", ErrUnknownDevice, ev, ev.Device, s)
	}
	switch ev.Kind {
	case KindCancel:
		c.end(now, ReasonCancelled)
	case KindHangup:
		if c.state == Ringing {
			c.end(now, ReasonCancelled)
		} else {
			c.end(now, ReasonHangup)
		}
	case KindHold:
		if c.holds.By(s) {
			return bad("the %s holds already", s)
		}
		c.holds.set(s, true)
		c.state = Held
		c.sync()
	case KindResume:
		if !c.holds.By(s) {
			return bad("the %s does not hold", s)
		}
		c.holds.set(s, false)
		if !c.holds.Any() {
			c.state = Active
		}
		c.sync()
	case KindJoined:
		if c.joined[s] {
			return bad("the %s joined already", s)
		}
		c.joined[s] = true
		if c.joined[s.Other()] {
			c.state = Active
			c.connect = time.Time{}
			c.sync()
		}
	case KindLost:
		if !c.lost[s].IsZero() {
			return bad("the %s is lost already", s)
		}
		c.lost[s] = now.Add(c.t.Lost)
	case KindBack:
		if c.lost[s].IsZero() {
			return bad("the %s is not lost", s)
		}
		c.lost[s] = time.Time{}
	}
	return nil
}

// device returns side s's device in the call ("" for the callee before
// the answer).
func (c *Call) device(s Side) string {
	if s == Caller {
		return c.callerDev
	}
	return c.answeredBy
}

// answer makes device d (one of c.devices) the answering one; the other
// ringing devices stop as answered elsewhere.
func (c *Call) answer(now time.Time, d string) {
	others := slices.DeleteFunc(slices.Clone(c.devices), func(o string) bool { return o == d })
	c.state = Connecting
	c.answeredBy = d
	c.answered = now
	c.devices = []string{d}
	c.noAnswer = time.Time{}
	c.connect = now.Add(c.t.Connect)
	c.sync()
	for _, o := range others {
		delete(c.sent, target{Callee, o})
		c.out = append(c.out, Notice{Side: Callee, Device: o, State: ViewEnded, Reason: ReasonAnsweredElsewhere})
	}
}

// end ends the call at at (a deadline, or now) and tells every device
// still in it.
func (c *Call) end(at time.Time, why Reason) {
	c.state = Ended
	c.reason = why
	c.ended = at
	c.holds = Holds{}
	c.noAnswer, c.connect, c.lost = time.Time{}, time.Time{}, [3]time.Time{}
	c.sync()
}

func (c *Call) view(s Side) view {
	v := view{holds: c.holds}
	switch c.state {
	case Ringing:
		v.state = IncomingRinging
		if s == Caller {
			v.state = OutgoingRinging
		}
	case Connecting:
		v.state = ViewConnecting
	case Active:
		v.state = ViewActive
	case Held:
		v.state = ViewHeld
	case Ended:
		v.state, v.reason = ViewEnded, c.reason
	}
	return v
}

// sync tells each device in the call its side's view, if that changed
// since it was last told: the caller's device first, then the callee's in
// the order they rang.
func (c *Call) sync() {
	ts := []target{{Caller, c.callerDev}}
	for _, d := range c.devices {
		ts = append(ts, target{Callee, d})
	}
	for _, t := range ts {
		v := c.view(t.side)
		if old, ok := c.sent[t]; ok && old == v {
			continue
		}
		c.sent[t] = v
		c.out = append(c.out, Notice{Side: t.side, Device: t.dev, State: v.state, Reason: v.reason, HeldBy: v.holds, Tone: tone(t.side, v)})
	}
}

// tone is the comfort tone for a device of side s shown v. A callee
// device told the call ended busy plays none: it is busy in another call,
// which a tone would disturb.
func tone(s Side, v view) Tone {
	switch v.state {
	case OutgoingRinging:
		return ToneRingback
	case ViewEnded:
		switch {
		case v.reason == ReasonBusy && s == Caller:
			return ToneBusy
		case v.reason == ReasonBusy, v.reason == ReasonAnsweredElsewhere:
			return ToneNone
		}
		return ToneEnded
	}
	return ToneNone
}
