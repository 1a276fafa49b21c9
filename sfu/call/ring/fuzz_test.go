package ring

import (
	"reflect"
	"testing"
	"time"
)

// fuzzDevices are the device ids events draw from; "d0" is the caller's
// device (and, in another user's call, also a callee device of that name).
var fuzzDevices = [...]string{"d0", "d1", "d2", "d3", "d4", ""}

// fuzzCall decodes data: two header bytes (callee devices, own call,
// busy, auto-answer; timeouts), then three bytes per step (what, who,
// time step), at most 200 steps.
type fuzzCall struct {
	p     Params
	steps []fuzzStep
}

type fuzzStep struct {
	tick   bool // a bare Tick, no event
	preTik bool // Tick at the step's time before the event
	ev     Event
	dt     time.Duration
}

func decodeFuzz(data []byte) fuzzCall {
	var h [2]byte
	copy(h[:], data)
	data = data[min(len(data), 2):]
	fc := fuzzCall{p: Params{ID: "f", Caller: "alice", Callee: "bob", CallerDevice: "d0"}}
	n := int(h[0] & 3)
	if h[0]&4 != 0 { // an own call: the calling device d0 is online too
		fc.p.Caller = "bob"
		fc.p.CalleeDevices = []string{"d0"}
		for i := range n {
			fc.p.CalleeDevices = append(fc.p.CalleeDevices, fuzzDevices[i+1])
		}
	} else {
		fc.p.CalleeDevices = fuzzDevices[:n:n]
	}
	fc.p.Busy = h[0]&8 != 0 && h[1]&0x80 != 0
	for i := range 4 {
		if h[0]&(16<<i) != 0 {
			fc.p.AutoAnswer = append(fc.p.AutoAnswer, fuzzDevices[i])
		}
	}
	if h[1]&1 != 0 {
		fc.p.Timeouts = Timeouts{
			NoAnswer: time.Duration(h[1]>>1&3+1) * time.Second,
			Connect:  time.Duration(h[1]>>3&3+1) * time.Second,
			Lost:     time.Duration(h[1]>>5&3+1) * time.Second,
		}
	}
	for ; len(data) >= 3 && len(fc.steps) < 200; data = data[3:] {
		what, who, dt := data[0], data[1], data[2]
		st := fuzzStep{preTik: who&0x40 != 0}
		switch k := what % 14; k {
		case 0:
			st.tick = true
		case 13: // malformed
			st.ev = Event{Kind: Kind(what >> 4), Side: Side(who & 3)}
		default:
			st.ev = Event{Kind: Kind(k), Side: Caller}
			if who&1 != 0 {
				st.ev.Side = Callee
			}
			if st.ev.Kind.deviceKind() {
				st.ev.Side = Callee
				if who&0x80 != 0 && who&1 != 0 {
					st.ev.Side = Caller
				}
			}
			if st.ev.Kind.deviceKind() || who&0x80 != 0 {
				st.ev.Device = fuzzDevices[int(who>>1)%len(fuzzDevices)]
			}
		}
		switch {
		case dt == 255:
			st.dt = -5 * time.Second // the clock going back
		case dt < 128:
			st.dt = time.Duration(dt) * 100 * time.Millisecond
		default:
			st.dt = time.Duration(dt-128) * time.Second
		}
		fc.steps = append(fc.steps, st)
	}
	return fc
}

// fuzzModel checks a call's notices against what the devices were told.
type fuzzModel struct {
	t      *testing.T
	c      *Call
	online map[string]bool   // the callee's online devices
	live   map[target]Notice // devices in the call: their last notice
	lost   [3]bool
}

func wantTone(n Notice) Tone {
	switch {
	case n.State == OutgoingRinging:
		return ToneRingback
	case n.State != ViewEnded, n.Reason == ReasonAnsweredElsewhere:
		return ToneNone
	case n.Reason == ReasonBusy && n.Side == Caller:
		return ToneBusy
	case n.Reason == ReasonBusy:
		return ToneNone
	}
	return ToneEnded
}

// check takes the notices of one step: wasEnded is whether the call had
// ended before it, gone a device that went offline in it.
func (m *fuzzModel) check(step string, wasEnded bool, gone string) {
	t, c := m.t, m.c
	before := map[target]bool{}
	for tg := range m.live {
		before[tg] = true
	}
	if gone != "" {
		delete(before, target{Callee, gone})
		delete(m.live, target{Callee, gone})
	}
	ended := map[target]int{}
	for {
		n, ok := c.Poll()
		if !ok {
			break
		}
		if wasEnded {
			t.Fatalf("%s: a notice after the end: %+v", step, n)
		}
		tg := target{n.Side, n.Device}
		switch {
		case n.Side == Caller && n.Device != c.callerDev,
			n.Side == Callee && !m.online[n.Device],
			n.Side != Caller && n.Side != Callee:
			t.Fatalf("%s: a notice to an unknown device: %+v", step, n)
		}
		if old, ok := m.live[tg]; ok && old.State == n.State && old.Reason == n.Reason && old.HeldBy == n.HeldBy {
			t.Fatalf("%s: a notice that changes nothing: %+v", step, n)
		}
		if n.Tone != wantTone(n) {
			t.Fatalf("%s: tone %q for %+v", step, n.Tone, n)
		}
		if (n.Reason != "") != (n.State == ViewEnded) || n.State == Idle {
			t.Fatalf("%s: %+v", step, n)
		}
		if n.Reason == ReasonAnsweredElsewhere {
			if !before[tg] || m.live[tg].State != IncomingRinging || n.Side != Callee || n.Device == c.AnsweredBy() {
				t.Fatalf("%s: answered elsewhere: %+v", step, n)
			}
			delete(m.live, tg)
			continue
		}
		if n.State != c.View(n.Side) || n.HeldBy != c.Holds() || n.Reason != c.Reason() {
			t.Fatalf("%s: %+v, call %s %s %+v", step, n, c.State(), c.Reason(), c.Holds())
		}
		if n.State == ViewEnded {
			ended[tg]++
			delete(m.live, tg)
			continue
		}
		m.live[tg] = n
	}
	if c.State() == Ended && !wasEnded {
		// Exactly one ending notice to each device that was in the call.
		if len(before) == 0 { // ended at New: only the caller is told
			before[target{Caller, c.callerDev}] = true
		}
		for tg := range before {
			if ended[tg] != 1 {
				t.Fatalf("%s: %d ending notices to %v", step, ended[tg], tg)
			}
		}
		for tg, k := range ended {
			if !before[tg] {
				t.Fatalf("%s: %d ending notices to %v, which was not in the call", step, k, tg)
			}
		}
	}
	if c.State() == Ended && len(m.live) > 0 {
		t.Fatalf("%s: devices not told of the end: %v", step, m.live)
	}
	// Every device in the call (the caller's; the ringing ones, or the one
	// answering device) was told what its side sees now, and no other.
	if c.State() != Ended {
		in := map[target]bool{{Caller, c.callerDev}: true}
		if c.State() == Ringing {
			for _, d := range c.Ringing() {
				in[target{Callee, d}] = true
			}
		} else {
			in[target{Callee, c.AnsweredBy()}] = true
		}
		if len(in) != len(m.live) {
			t.Fatalf("%s: in the call %v, told %v", step, in, m.live)
		}
		for tg := range in {
			n, ok := m.live[tg]
			if !ok || n.State != c.View(tg.side) || n.HeldBy != c.Holds() || tg.side == Callee && !m.online[tg.dev] {
				t.Fatalf("%s: %v in the call, told %+v (%v)", step, tg, n, ok)
			}
		}
	}
	m.invariants(step)
}

func (m *fuzzModel) invariants(step string) {
	t, c := m.t, m.c
	s := c.State()
	if (s == Held) != c.Holds().Any() {
		t.Fatalf("%s: %s with holds %+v", step, s, c.Holds())
	}
	if (s == Connecting || s == Active || s == Held) != (c.AnsweredBy() != "" && s != Ended) {
		t.Fatalf("%s: %s answered by %q", step, s, c.AnsweredBy())
	}
	if c.AnsweredBy() != "" && (c.Answered().Before(c.Started()) || c.Answered().IsZero()) {
		t.Fatalf("%s: answered %v, started %v", step, c.Answered(), c.Started())
	}
	if s == Ended {
		from := c.Started()
		if !c.Answered().IsZero() {
			from = c.Answered()
		}
		if c.Ended().Before(from) || c.Reason() == "" || c.Reason() == ReasonAnsweredElsewhere {
			t.Fatalf("%s: ended %v (%q), from %v", step, c.Ended(), c.Reason(), from)
		}
	} else if !c.Ended().IsZero() || c.Reason() != "" {
		t.Fatalf("%s: %s but ended %v %q", step, s, c.Ended(), c.Reason())
	}
	_, wake := c.NextWake()
	if wake != (s == Ringing || s == Connecting || (s == Active || s == Held) && (m.lost[Caller] || m.lost[Callee])) {
		t.Fatalf("%s: %s, lost %v: wake %v", step, s, m.lost, wake)
	}
	if s != Ringing && c.Ringing() != nil {
		t.Fatalf("%s: ringing %q", step, c.Ringing())
	}
}

func FuzzCallEvents(f *testing.F) {
	b := func(bs ...byte) []byte { return bs }
	f.Add(b(2, 0))
	f.Add(b(2, 0, 1, 3, 10, 8, 0, 10, 8, 1, 10, 6, 0, 10, 7, 0, 10, 5, 1, 10))                   // answer, join, hold, resume, hangup
	f.Add(b(3, 0, 11, 7, 10, 12, 3, 20, 12, 5, 20, 12, 7, 20))                                   // added, all gone
	f.Add(b(2, 0, 1, 3, 10, 8, 0, 10, 8, 1, 10, 9, 1, 10, 0, 0, 200))                            // lost, never back
	f.Add(b(2, 0, 1, 3, 10, 9, 0, 10, 10, 0, 10, 8, 0, 10, 8, 1, 10, 0, 0, 200))                 // lost and back
	f.Add(b(0x17, 0, 1, 3, 10))                                                                  // own call, auto-answer
	f.Add(b(0x32, 0, 11, 11, 10))                                                                // another's, auto list
	f.Add(b(0x0b, 0x7f))                                                                         // busy
	f.Add(b(2, 0x55, 2, 3, 10, 4, 0, 10))                                                        // decline
	f.Add(b(2, 0, 12, 3, 10, 11, 3, 10, 1, 3, 10))                                               // gone, back, answers
	f.Add(b(2, 0, 0, 0, 128+30, 1, 3, 10))                                                       // no-answer
	f.Add(b(2, 0, 1, 3, 10, 8, 0, 255, 1, 0, 10, 13, 0x21, 10, 6, 0xc1, 1, 6, 0x81, 1, 3, 3, 1)) // odd ones
	f.Fuzz(fuzzCallEvents)
}

func fuzzCallEvents(t *testing.T, data []byte) {
	{
		fc := decodeFuzz(data)
		now := t0
		c, err := New(now, fc.p)
		if err != nil {
			t.Fatalf("%+v: %v", fc.p, err)
		}
		m := &fuzzModel{t: t, c: c, online: map[string]bool{}, live: map[target]Notice{}}
		for _, d := range fc.p.CalleeDevices {
			m.online[d] = !(fc.p.Caller == fc.p.Callee && d == fc.p.CallerDevice)
		}
		m.check("new", false, "")
		answeredBy := c.AnsweredBy()
		for i, st := range fc.steps {
			now = now.Add(st.dt)
			step := st.ev.String()
			if st.tick {
				step = "tick"
			}
			if st.preTik || st.tick {
				was := c.State() == Ended
				c.Tick(now)
				m.check(step+" (tick)", was, "")
			}
			if st.tick {
				continue
			}
			wasEnded := c.State() == Ended
			var snap Call
			if st.preTik {
				snap = snapshot(c)
			}
			reason, ended := c.Reason(), c.Ended()
			err := c.Handle(now, st.ev)
			gone := ""
			if err == nil {
				switch st.ev.Kind {
				case KindDeviceAdded:
					m.online[st.ev.Device] = true
				case KindDeviceGone:
					gone = st.ev.Device
					m.online[gone] = false
				case KindLost:
					m.lost[st.ev.Side] = true
				case KindBack:
					m.lost[st.ev.Side] = false
				}
			}
			if c.State() == Ended {
				m.lost = [3]bool{}
			}
			if wasEnded && (err == nil || c.State() != Ended || c.Reason() != reason || !c.Ended().Equal(ended)) {
				t.Fatalf("step %d %s: ended call changed: err %v, %s %s %v", i, step, err, c.State(), c.Reason(), c.Ended())
			}
			if err != nil && st.preTik {
				// Deadlines due by now have fired: nothing may change.
				if after := snapshot(c); !reflect.DeepEqual(after, snap) {
					t.Fatalf("step %d %s: an invalid event (%v) changed the call", i, step, err)
				}
			}
			m.check(step, wasEnded, gone)
			if answeredBy != "" && c.AnsweredBy() != answeredBy {
				t.Fatalf("step %d %s: answered by %q, then %q", i, step, answeredBy, c.AnsweredBy())
			}
			answeredBy = c.AnsweredBy()
		}
		// The parties stop acting: every deadline fires in turn.
		for range 8 {
			w, ok := c.NextWake()
			if !ok {
				break
			}
			if w.Before(now) {
				t.Fatalf("wake %v before now %v", w, now)
			}
			now = w
			was := c.State() == Ended
			c.Tick(now)
			m.check("tick at wake", was, "")
			if c.State() == Ended {
				m.lost = [3]bool{}
			}
		}
		if _, ok := c.NextWake(); ok {
			t.Fatalf("%s: still a deadline after 8 wakes", c.State())
		}
		switch s := c.State(); {
		case s == Ended:
		case (s == Active || s == Held) && !m.lost[Caller] && !m.lost[Callee] && c.lost == [3]time.Time{}:
		default:
			t.Fatalf("the call never ends: %s, lost %v", s, m.lost)
		}
	}
}
