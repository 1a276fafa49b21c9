package ring

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

const ms = time.Millisecond

func params(devices ...string) Params {
	return Params{ID: "call-1", Caller: "alice-key", Callee: "bob-key", CallerDevice: "a1", CalleeDevices: devices}
}

// Notice shorthands: na for the caller's device a1, nb for a callee device.
func na(v ViewState, r Reason, tone Tone) Notice {
	return Notice{Side: Caller, Device: "a1", State: v, Reason: r, Tone: tone}
}

func nb(d string, v ViewState, r Reason, tone Tone) Notice {
	return Notice{Side: Callee, Device: d, State: v, Reason: r, Tone: tone}
}

func heldBy(h Holds, ns ...Notice) []Notice {
	for i := range ns {
		ns[i].HeldBy = h
	}
	return ns
}

func drain(c *Call) []Notice {
	var out []Notice
	for {
		n, ok := c.Poll()
		if !ok {
			return out
		}
		out = append(out, n)
	}
}

func mustNew(t testing.TB, now time.Time, p Params) *Call {
	t.Helper()
	c, err := New(now, p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t testing.TB, c *Call, now time.Time, ev Event) {
	t.Helper()
	if err := c.Handle(now, ev); err != nil {
		t.Fatalf("%s at %v: %v", ev, now.Sub(t0), err)
	}
}

// setups drive a call (b1 and b2 ring; b1 answers) to each starting
// state of the transition table, by t0+4s.
var setups = map[string][]Event{
	"ringing":                  nil,
	"ringing/one-device":       {DeviceGone("b2")},
	"ringing/caller-lost":      {Lost(Caller)},
	"connecting":               {Answer("b1")},
	"connecting/caller-joined": {Answer("b1"), Joined(Caller)},
	"connecting/callee-joined": {Answer("b1"), Joined(Callee)},
	"active":                   {Answer("b1"), Joined(Caller), Joined(Callee)},
	"active/caller-lost":       {Answer("b1"), Joined(Caller), Joined(Callee), Lost(Caller)},
	"held/caller":              {Answer("b1"), Joined(Caller), Joined(Callee), Hold(Caller)},
	"held/callee":              {Answer("b1"), Joined(Caller), Joined(Callee), Hold(Callee)},
	"held/both":                {Answer("b1"), Joined(Caller), Joined(Callee), Hold(Caller), Hold(Callee)},
	"ended":                    {Answer("b1"), Joined(Caller), Joined(Callee), Hangup(Caller)},
}

// setup returns a call in the named state, its notices drained: New at
// t0, then the setup's i-th event at t0+(i+1)s.
func setup(t testing.TB, name string) *Call {
	t.Helper()
	evs, ok := setups[name]
	if !ok {
		t.Fatalf("no setup %q", name)
	}
	c := mustNew(t, t0, params("b1", "b2"))
	for i, ev := range evs {
		must(t, c, at(time.Duration(i+1)*time.Second), ev)
	}
	drain(c)
	return c
}

type transition struct {
	from    string
	ev      Event
	state   State
	reason  Reason
	holds   Holds
	notices []Notice
	wake    time.Duration // NextWake after, from t0; 0: none
	err     error         // an invalid event: this error, nothing changed
}

// evAt is when each table event happens.
const evAt = 5 * time.Second

var (
	both    = Holds{Caller: true, Callee: true}
	byCaler = Holds{Caller: true}
	byCalee = Holds{Callee: true}
)

func endAll(r Reason, callerTone, calleeTone Tone, devices ...string) []Notice {
	out := []Notice{na(ViewEnded, r, callerTone)}
	for _, d := range devices {
		out = append(out, nb(d, ViewEnded, r, calleeTone))
	}
	return out
}

// transitions are all the valid transitions from the setups (any event
// not listed is checked to be invalid by TestInvalidEverywhere), and the
// notable invalid ones.
var transitions = []transition{
	// Ringing (b1, b2; no-answer at 30 s).
	{from: "ringing", ev: Answer("b1"), state: Connecting, wake: evAt + DefaultConnect, notices: []Notice{
		na(ViewConnecting, "", ToneNone), nb("b1", ViewConnecting, "", ToneNone), nb("b2", ViewEnded, ReasonAnsweredElsewhere, ToneNone)}},
	{from: "ringing", ev: Answer("b2"), state: Connecting, wake: evAt + DefaultConnect, notices: []Notice{
		na(ViewConnecting, "", ToneNone), nb("b2", ViewConnecting, "", ToneNone), nb("b1", ViewEnded, ReasonAnsweredElsewhere, ToneNone)}},
	{from: "ringing", ev: Decline("b1"), state: Ended, reason: ReasonDeclined, notices: endAll(ReasonDeclined, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing", ev: Decline("b2"), state: Ended, reason: ReasonDeclined, notices: endAll(ReasonDeclined, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing", ev: Busy("b1"), state: Ended, reason: ReasonBusy, notices: endAll(ReasonBusy, ToneBusy, ToneNone, "b1", "b2")},
	{from: "ringing", ev: Busy("b2"), state: Ended, reason: ReasonBusy, notices: endAll(ReasonBusy, ToneBusy, ToneNone, "b1", "b2")},
	{from: "ringing", ev: Cancel(), state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing", ev: Event{KindCancel, Caller, "a1"}, state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing", ev: Hangup(Caller), state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing", ev: DeviceAdded("b3"), state: Ringing, wake: DefaultNoAnswer, notices: []Notice{nb("b3", IncomingRinging, "", ToneNone)}},
	{from: "ringing", ev: DeviceGone("b1"), state: Ringing, wake: DefaultNoAnswer},
	{from: "ringing", ev: DeviceGone("b2"), state: Ringing, wake: DefaultNoAnswer},
	{from: "ringing", ev: Lost(Caller), state: Ringing, wake: evAt + DefaultLost},
	{from: "ringing", ev: Answer("b3"), state: Ringing, err: ErrUnknownDevice},
	{from: "ringing", ev: Decline("zz"), state: Ringing, err: ErrUnknownDevice},
	{from: "ringing", ev: DeviceGone("zz"), state: Ringing, err: ErrUnknownDevice},
	{from: "ringing", ev: Event{KindCancel, Caller, "zz"}, state: Ringing, err: ErrUnknownDevice},
	{from: "ringing", ev: Event{KindAnswer, Caller, "a1"}, state: Ringing, err: ErrInvalid},
	{from: "ringing", ev: Hold(Caller), state: Ringing, err: ErrInvalid},
	{from: "ringing", ev: Hangup(Callee), state: Ringing, err: ErrInvalid},
	{from: "ringing", ev: Lost(Callee), state: Ringing, err: ErrInvalid},
	{from: "ringing", ev: DeviceAdded("b1"), state: Ringing, err: ErrInvalid},
	{from: "ringing", ev: DeviceAdded("a1"), state: Ringing, wake: DefaultNoAnswer, notices: []Notice{nb("a1", IncomingRinging, "", ToneNone)}}, // another user's a1
	{from: "ringing/one-device", ev: DeviceGone("b1"), state: Ended, reason: ReasonUnavailable, notices: endAll(ReasonUnavailable, ToneEnded, ToneEnded)},
	{from: "ringing/one-device", ev: Answer("b1"), state: Connecting, wake: evAt + DefaultConnect, notices: []Notice{
		na(ViewConnecting, "", ToneNone), nb("b1", ViewConnecting, "", ToneNone)}},
	{from: "ringing/one-device", ev: Decline("b1"), state: Ended, reason: ReasonDeclined, notices: endAll(ReasonDeclined, ToneEnded, ToneEnded, "b1")},
	{from: "ringing/one-device", ev: Busy("b1"), state: Ended, reason: ReasonBusy, notices: endAll(ReasonBusy, ToneBusy, ToneNone, "b1")},
	{from: "ringing/one-device", ev: Cancel(), state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1")},
	{from: "ringing/one-device", ev: Event{KindCancel, Caller, "a1"}, state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1")},
	{from: "ringing/one-device", ev: Hangup(Caller), state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1")},
	{from: "ringing/one-device", ev: DeviceAdded("b2"), state: Ringing, wake: DefaultNoAnswer, notices: []Notice{nb("b2", IncomingRinging, "", ToneNone)}},
	{from: "ringing/one-device", ev: DeviceAdded("b3"), state: Ringing, wake: DefaultNoAnswer, notices: []Notice{nb("b3", IncomingRinging, "", ToneNone)}},
	{from: "ringing/one-device", ev: DeviceAdded("a1"), state: Ringing, wake: DefaultNoAnswer, notices: []Notice{nb("a1", IncomingRinging, "", ToneNone)}},
	{from: "ringing/one-device", ev: Lost(Caller), state: Ringing, wake: evAt + DefaultLost},
	{from: "ringing/one-device", ev: DeviceGone("b2"), state: Ringing, err: ErrUnknownDevice},

	// Ringing with the caller lost at 1 s (deadline 11 s).
	{from: "ringing/caller-lost", ev: Back(Caller), state: Ringing, wake: DefaultNoAnswer},
	{from: "ringing/caller-lost", ev: Event{KindBack, Caller, "a1"}, state: Ringing, wake: DefaultNoAnswer},
	{from: "ringing/caller-lost", ev: Lost(Caller), state: Ringing, err: ErrInvalid},
	{from: "ringing/caller-lost", ev: Answer("b1"), state: Connecting, wake: 11 * time.Second, notices: []Notice{
		na(ViewConnecting, "", ToneNone), nb("b1", ViewConnecting, "", ToneNone), nb("b2", ViewEnded, ReasonAnsweredElsewhere, ToneNone)}},
	{from: "ringing/caller-lost", ev: Answer("b2"), state: Connecting, wake: 11 * time.Second, notices: []Notice{
		na(ViewConnecting, "", ToneNone), nb("b2", ViewConnecting, "", ToneNone), nb("b1", ViewEnded, ReasonAnsweredElsewhere, ToneNone)}},
	{from: "ringing/caller-lost", ev: Decline("b1"), state: Ended, reason: ReasonDeclined, notices: endAll(ReasonDeclined, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing/caller-lost", ev: Decline("b2"), state: Ended, reason: ReasonDeclined, notices: endAll(ReasonDeclined, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing/caller-lost", ev: Busy("b1"), state: Ended, reason: ReasonBusy, notices: endAll(ReasonBusy, ToneBusy, ToneNone, "b1", "b2")},
	{from: "ringing/caller-lost", ev: Busy("b2"), state: Ended, reason: ReasonBusy, notices: endAll(ReasonBusy, ToneBusy, ToneNone, "b1", "b2")},
	{from: "ringing/caller-lost", ev: Cancel(), state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing/caller-lost", ev: Event{KindCancel, Caller, "a1"}, state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing/caller-lost", ev: Hangup(Caller), state: Ended, reason: ReasonCancelled, notices: endAll(ReasonCancelled, ToneEnded, ToneEnded, "b1", "b2")},
	{from: "ringing/caller-lost", ev: DeviceAdded("b3"), state: Ringing, wake: 11 * time.Second, notices: []Notice{nb("b3", IncomingRinging, "", ToneNone)}},
	{from: "ringing/caller-lost", ev: DeviceAdded("a1"), state: Ringing, wake: 11 * time.Second, notices: []Notice{nb("a1", IncomingRinging, "", ToneNone)}},
	{from: "ringing/caller-lost", ev: DeviceGone("b1"), state: Ringing, wake: 11 * time.Second},
	{from: "ringing/caller-lost", ev: DeviceGone("b2"), state: Ringing, wake: 11 * time.Second},

	// Connecting: b1 answered at 1 s (connect deadline 16 s).
	{from: "connecting", ev: Joined(Caller), state: Connecting, wake: 16 * time.Second},
	{from: "connecting", ev: Joined(Callee), state: Connecting, wake: 16 * time.Second},
	{from: "connecting", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting", ev: Event{KindHangup, Callee, "b2"}, state: Connecting, err: ErrUnknownDevice},
	{from: "connecting", ev: Lost(Caller), state: Connecting, wake: evAt + DefaultLost},
	{from: "connecting", ev: Lost(Callee), state: Connecting, wake: evAt + DefaultLost},
	{from: "connecting", ev: Answer("b1"), state: Connecting, err: ErrInvalid},
	{from: "connecting", ev: Answer("b2"), state: Connecting, err: ErrInvalid},
	{from: "connecting", ev: Cancel(), state: Connecting, err: ErrInvalid},
	{from: "connecting", ev: Hold(Caller), state: Connecting, err: ErrInvalid},
	{from: "connecting", ev: Back(Caller), state: Connecting, err: ErrInvalid},
	{from: "connecting/caller-joined", ev: Joined(Callee), state: Active, notices: []Notice{na(ViewActive, "", ToneNone), nb("b1", ViewActive, "", ToneNone)}},
	{from: "connecting/caller-joined", ev: Joined(Caller), state: Connecting, err: ErrInvalid},
	{from: "connecting/caller-joined", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting/caller-joined", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting/caller-joined", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting/caller-joined", ev: Lost(Caller), state: Connecting, wake: evAt + DefaultLost},
	{from: "connecting/caller-joined", ev: Lost(Callee), state: Connecting, wake: evAt + DefaultLost},
	{from: "connecting/callee-joined", ev: Joined(Caller), state: Active, notices: []Notice{na(ViewActive, "", ToneNone), nb("b1", ViewActive, "", ToneNone)}},
	{from: "connecting/callee-joined", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting/callee-joined", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting/callee-joined", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "connecting/callee-joined", ev: Lost(Caller), state: Connecting, wake: evAt + DefaultLost},
	{from: "connecting/callee-joined", ev: Lost(Callee), state: Connecting, wake: evAt + DefaultLost},

	// Active.
	{from: "active", ev: Hold(Caller), state: Held, holds: byCaler, notices: heldBy(byCaler, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "active", ev: Hold(Callee), state: Held, holds: byCalee, notices: heldBy(byCalee, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "active", ev: Event{KindHold, Callee, "b1"}, state: Held, holds: byCalee, notices: heldBy(byCalee, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "active", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "active", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "active", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "active", ev: Lost(Caller), state: Active, wake: evAt + DefaultLost},
	{from: "active", ev: Lost(Callee), state: Active, wake: evAt + DefaultLost},
	{from: "active", ev: Resume(Caller), state: Active, err: ErrInvalid},
	{from: "active", ev: Joined(Caller), state: Active, err: ErrInvalid},
	{from: "active", ev: Event{KindHold, Callee, "b2"}, state: Active, err: ErrUnknownDevice},
	{from: "active", ev: Event{KindHold, Caller, "b1"}, state: Active, err: ErrUnknownDevice},
	{from: "active/caller-lost", ev: Back(Caller), state: Active},
	{from: "active/caller-lost", ev: Event{KindBack, Caller, "a1"}, state: Active},
	{from: "active/caller-lost", ev: Lost(Caller), state: Active, err: ErrInvalid},
	{from: "active/caller-lost", ev: Lost(Callee), state: Active, wake: 14 * time.Second},
	{from: "active/caller-lost", ev: Hold(Caller), state: Held, holds: byCaler, wake: 14 * time.Second, notices: heldBy(byCaler, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "active/caller-lost", ev: Hold(Callee), state: Held, holds: byCalee, wake: 14 * time.Second, notices: heldBy(byCalee, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "active/caller-lost", ev: Event{KindHold, Callee, "b1"}, state: Held, holds: byCalee, wake: 14 * time.Second, notices: heldBy(byCalee, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "active/caller-lost", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "active/caller-lost", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "active/caller-lost", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},

	// Held.
	{from: "held/caller", ev: Resume(Caller), state: Active, notices: []Notice{na(ViewActive, "", ToneNone), nb("b1", ViewActive, "", ToneNone)}},
	{from: "held/caller", ev: Hold(Callee), state: Held, holds: both, notices: heldBy(both, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "held/caller", ev: Event{KindHold, Callee, "b1"}, state: Held, holds: both, notices: heldBy(both, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "held/caller", ev: Resume(Callee), state: Held, holds: byCaler, err: ErrInvalid},
	{from: "held/caller", ev: Hold(Caller), state: Held, holds: byCaler, err: ErrInvalid},
	{from: "held/caller", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/caller", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/caller", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/caller", ev: Lost(Caller), state: Held, holds: byCaler, wake: evAt + DefaultLost},
	{from: "held/caller", ev: Lost(Callee), state: Held, holds: byCaler, wake: evAt + DefaultLost},
	{from: "held/callee", ev: Resume(Callee), state: Active, notices: []Notice{na(ViewActive, "", ToneNone), nb("b1", ViewActive, "", ToneNone)}},
	{from: "held/callee", ev: Event{KindResume, Callee, "b1"}, state: Active, notices: []Notice{na(ViewActive, "", ToneNone), nb("b1", ViewActive, "", ToneNone)}},
	{from: "held/callee", ev: Hold(Caller), state: Held, holds: both, notices: heldBy(both, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "held/callee", ev: Resume(Caller), state: Held, holds: byCalee, err: ErrInvalid},
	{from: "held/callee", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/callee", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/callee", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/callee", ev: Lost(Caller), state: Held, holds: byCalee, wake: evAt + DefaultLost},
	{from: "held/callee", ev: Lost(Callee), state: Held, holds: byCalee, wake: evAt + DefaultLost},
	{from: "held/both", ev: Resume(Caller), state: Held, holds: byCalee, notices: heldBy(byCalee, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "held/both", ev: Resume(Callee), state: Held, holds: byCaler, notices: heldBy(byCaler, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "held/both", ev: Event{KindResume, Callee, "b1"}, state: Held, holds: byCaler, notices: heldBy(byCaler, na(ViewHeld, "", ToneNone), nb("b1", ViewHeld, "", ToneNone))},
	{from: "held/both", ev: Hold(Caller), state: Held, holds: both, err: ErrInvalid},
	{from: "held/both", ev: Hangup(Caller), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/both", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/both", ev: Event{KindHangup, Callee, "b1"}, state: Ended, reason: ReasonHangup, notices: endAll(ReasonHangup, ToneEnded, ToneEnded, "b1")},
	{from: "held/both", ev: Lost(Caller), state: Held, holds: both, wake: evAt + DefaultLost},
	{from: "held/both", ev: Lost(Callee), state: Held, holds: both, wake: evAt + DefaultLost},

	// Ended (hung up at 4 s) is terminal.
	{from: "ended", ev: Answer("b1"), state: Ended, reason: ReasonHangup, err: ErrInvalid},
	{from: "ended", ev: Hangup(Callee), state: Ended, reason: ReasonHangup, err: ErrInvalid},
	{from: "ended", ev: Back(Caller), state: Ended, reason: ReasonHangup, err: ErrInvalid},

	// Malformed events.
	{from: "active", ev: Event{}, state: Active, err: ErrInvalid},
	{from: "active", ev: Event{Kind: KindHold}, state: Active, err: ErrInvalid},
	{from: "active", ev: Event{Kind: 99, Side: Caller}, state: Active, err: ErrInvalid},
	{from: "ringing", ev: Event{KindAnswer, Callee, ""}, state: Ringing, err: ErrInvalid},
}

// A side event naming the side's device in the call does what the bare
// side event does.
func init() {
	for _, tr := range transitions {
		if tr.ev == Hangup(Caller) && tr.err == nil {
			tr.ev.Device = "a1"
			transitions = append(transitions, tr)
		}
	}
}

func (tr transition) name() string { return tr.from + "/" + tr.ev.String() }

// snapshot is everything a call holds but the latest time seen and the
// notices queued.
func snapshot(c *Call) Call {
	s := *c
	s.devices = slices.Clone(c.devices)
	s.sent = maps.Clone(c.sent)
	s.auto = maps.Clone(c.auto)
	s.last, s.out = time.Time{}, nil
	return s
}

func TestTransitions(t *testing.T) {
	for _, tr := range transitions {
		t.Run(tr.name(), func(t *testing.T) {
			c := setup(t, tr.from)
			before := snapshot(c)
			err := c.Handle(at(evAt), tr.ev)
			if tr.err != nil {
				if !errors.Is(err, tr.err) {
					t.Fatalf("err %v, want %v", err, tr.err)
				}
				if !strings.Contains(err.Error(), tr.ev.String()) {
					t.Errorf("err %q does not name the event", err)
				}
				if after := snapshot(c); !reflect.DeepEqual(after, before) {
					t.Errorf("an invalid event changed the call:\n%+v\n%+v", before, after)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if c.State() != tr.state || c.Reason() != tr.reason || c.Holds() != tr.holds {
				t.Errorf("state %s %q %+v, want %s %q %+v", c.State(), c.Reason(), c.Holds(), tr.state, tr.reason, tr.holds)
			}
			if got := drain(c); !reflect.DeepEqual(got, tr.notices) {
				t.Errorf("notices\n got %+v\nwant %+v", got, tr.notices)
			}
			if tr.err != nil {
				return
			}
			w, ok := c.NextWake()
			if want := at(tr.wake); ok != (tr.wake != 0) || ok && !w.Equal(want) {
				t.Errorf("NextWake %v %v, want %v", w.Sub(t0), ok, tr.wake)
			}
			if tr.state == Ended && !c.Ended().Equal(at(evAt)) {
				t.Errorf("Ended %v, want %v", c.Ended().Sub(t0), evAt)
			}
		})
	}
}

// TestInvalidEverywhere tries a wide set of events in every setup: each
// one the transition table does not list as valid there must return an
// error and change nothing.
func TestInvalidEverywhere(t *testing.T) {
	evs := []Event{
		Answer("b1"), Answer("b2"), Answer("b3"), Answer("zz"), {KindAnswer, Caller, "a1"}, {KindAnswer, Callee, ""},
		Decline("b1"), Decline("b2"), Decline("zz"), {KindDecline, Caller, "a1"},
		Busy("b1"), Busy("b2"), Busy("zz"), {KindBusy, Caller, "a1"},
		Cancel(), {KindCancel, Caller, "a1"}, {KindCancel, Caller, "zz"}, {KindCancel, Callee, ""}, {KindCancel, Callee, "b1"},
		Hangup(Caller), Hangup(Callee), {KindHangup, Caller, "a1"}, {KindHangup, Caller, "b1"}, {KindHangup, Callee, "b1"}, {KindHangup, Callee, "b2"},
		Hold(Caller), Hold(Callee), {KindHold, Callee, "b1"}, {KindHold, Callee, "b2"}, {KindHold, Caller, "b1"},
		Resume(Caller), Resume(Callee), {KindResume, Callee, "b1"}, {KindResume, Callee, "b2"},
		Joined(Caller), Joined(Callee), {KindJoined, Callee, "b2"},
		Lost(Caller), Lost(Callee), {KindLost, Callee, "b2"},
		Back(Caller), Back(Callee), {KindBack, Caller, "a1"}, {KindBack, Caller, "zz"},
		DeviceAdded("b1"), DeviceAdded("b2"), DeviceAdded("b3"), DeviceAdded("a1"), {KindDeviceAdded, Caller, "a2"}, {KindDeviceAdded, Callee, ""},
		DeviceGone("b1"), DeviceGone("b2"), DeviceGone("zz"), {KindDeviceGone, Caller, "a1"},
		{}, {Kind: KindHold}, {Kind: KindHold, Side: 3}, {Kind: kindEnd, Side: Caller}, {Kind: 200, Side: Callee},
	}
	valid := map[string]bool{}
	for _, tr := range transitions {
		if tr.err == nil {
			valid[tr.name()] = true
		}
	}
	seen := map[string]bool{}
	for _, from := range slices.Sorted(maps.Keys(setups)) {
		for _, ev := range evs {
			name := from + "/" + ev.String()
			if valid[name] {
				seen[name] = true
				continue
			}
			c := setup(t, from)
			before := snapshot(c)
			wake, wok := c.NextWake()
			err := c.Handle(at(evAt), ev)
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownDevice) {
				t.Errorf("%s: err %v, want ErrInvalid or ErrUnknownDevice", name, err)
				continue
			}
			if after := snapshot(c); !reflect.DeepEqual(after, before) {
				t.Errorf("%s: changed the call", name)
			}
			if n, ok := c.Poll(); ok {
				t.Errorf("%s: notice %+v", name, n)
			}
			if w, ok := c.NextWake(); ok != wok || !w.Equal(wake) {
				t.Errorf("%s: NextWake moved", name)
			}
		}
	}
	// Every valid row was among the events tried (the table and this list
	// agree).
	for name := range valid {
		if !seen[name] {
			t.Errorf("valid transition %s not in the event list", name)
		}
	}
}

func TestNew(t *testing.T) {
	self := Params{ID: "c", Caller: "me", Callee: "me", CallerDevice: "laptop"}
	for _, tc := range []struct {
		name    string
		p       Params
		state   State
		reason  Reason
		by      string
		ringing []string
		notices []Notice
		wake    time.Duration
	}{
		{"two devices ring", params("b1", "b2"), Ringing, "", "", []string{"b1", "b2"}, []Notice{
			na(OutgoingRinging, "", ToneRingback), nb("b1", IncomingRinging, "", ToneNone), nb("b2", IncomingRinging, "", ToneNone)}, DefaultNoAnswer},
		{"no device", params(), Ended, ReasonUnavailable, "", nil, []Notice{na(ViewEnded, ReasonUnavailable, ToneEnded)}, 0},
		{"busy", func() Params { p := params("b1"); p.Busy = true; return p }(), Ended, ReasonBusy, "", nil, []Notice{na(ViewEnded, ReasonBusy, ToneBusy)}, 0},
		{"another user's auto-answer is ignored", func() Params { p := params("b1", "b2"); p.AutoAnswer = []string{"b2"}; return p }(),
			Ringing, "", "", []string{"b1", "b2"}, []Notice{
				na(OutgoingRinging, "", ToneRingback), nb("b1", IncomingRinging, "", ToneNone), nb("b2", IncomingRinging, "", ToneNone)}, DefaultNoAnswer},
		{"own call: the calling device does not ring", func() Params { p := self; p.CalleeDevices = []string{"laptop", "phone"}; return p }(),
			Ringing, "", "", []string{"phone"}, []Notice{
				{Side: Caller, Device: "laptop", State: OutgoingRinging, Tone: ToneRingback}, nb("phone", IncomingRinging, "", ToneNone)}, DefaultNoAnswer},
		{"own call: only the calling device online", func() Params { p := self; p.CalleeDevices = []string{"laptop"}; return p }(),
			Ended, ReasonUnavailable, "", nil, []Notice{{Side: Caller, Device: "laptop", State: ViewEnded, Reason: ReasonUnavailable, Tone: ToneEnded}}, 0},
		{"own call: auto-answer", func() Params {
			p := self
			p.CalleeDevices = []string{"laptop", "phone", "homecam", "tablet"}
			p.AutoAnswer = []string{"tablet", "homecam", "laptop"}
			return p
		}(), Connecting, "", "homecam", nil, []Notice{
			{Side: Caller, Device: "laptop", State: ViewConnecting}, nb("homecam", ViewConnecting, "", ToneNone)}, DefaultConnect},
		{"own call: auto-answer device offline", func() Params {
			p := self
			p.CalleeDevices = []string{"phone"}
			p.AutoAnswer = []string{"homecam"}
			return p
		}(), Ringing, "", "", []string{"phone"}, []Notice{
			{Side: Caller, Device: "laptop", State: OutgoingRinging, Tone: ToneRingback}, nb("phone", IncomingRinging, "", ToneNone)}, DefaultNoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustNew(t, t0, tc.p)
			if c.State() != tc.state || c.Reason() != tc.reason || c.AnsweredBy() != tc.by {
				t.Errorf("%s %q %q, want %s %q %q", c.State(), c.Reason(), c.AnsweredBy(), tc.state, tc.reason, tc.by)
			}
			if got := c.Ringing(); !slices.Equal(got, tc.ringing) {
				t.Errorf("Ringing %q, want %q", got, tc.ringing)
			}
			if got := drain(c); !reflect.DeepEqual(got, tc.notices) {
				t.Errorf("notices\n got %+v\nwant %+v", got, tc.notices)
			}
			w, ok := c.NextWake()
			if ok != (tc.wake != 0) || ok && !w.Equal(at(tc.wake)) {
				t.Errorf("NextWake %v %v, want %v", w.Sub(t0), ok, tc.wake)
			}
			if !c.Started().Equal(t0) || c.ID() != tc.p.ID {
				t.Errorf("Started %v ID %q", c.Started(), c.ID())
			}
			if tc.state == Ended && !c.Ended().Equal(t0) {
				t.Errorf("Ended %v", c.Ended())
			}
			if tc.by != "" && !c.Answered().Equal(t0) {
				t.Errorf("Answered %v", c.Answered())
			}
		})
	}
}

func TestBadParams(t *testing.T) {
	for name, mod := range map[string]func(*Params){
		"no id":            func(p *Params) { p.ID = "" },
		"no caller":        func(p *Params) { p.Caller = "" },
		"no callee":        func(p *Params) { p.Callee = "" },
		"no caller device": func(p *Params) { p.CallerDevice = "" },
		"empty device":     func(p *Params) { p.CalleeDevices = []string{"b1", ""} },
		"device twice":     func(p *Params) { p.CalleeDevices = []string{"b1", "b2", "b1"} },
		"negative timeout": func(p *Params) { p.Timeouts.Lost = -time.Second },
	} {
		p := params("b1", "b2")
		mod(&p)
		if c, err := New(t0, p); !errors.Is(err, ErrBadParams) || c != nil {
			t.Errorf("%s: %v %v, want ErrBadParams", name, c, err)
		}
	}
}

func TestMultiDevice(t *testing.T) {
	c := mustNew(t, t0, params("phone", "laptop"))
	drain(c)
	if c.View(Caller) != OutgoingRinging || c.View(Callee) != IncomingRinging {
		t.Fatalf("views %s %s", c.View(Caller), c.View(Callee))
	}
	must(t, c, at(2*time.Second), DeviceAdded("tablet"))
	if got, want := drain(c), []Notice{nb("tablet", IncomingRinging, "", ToneNone)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("added: %+v", got)
	}
	must(t, c, at(3*time.Second), DeviceGone("laptop"))
	if got := drain(c); got != nil {
		t.Fatalf("gone: %+v", got)
	}
	if err := c.Handle(at(4*time.Second), Answer("laptop")); !errors.Is(err, ErrUnknownDevice) {
		t.Fatalf("answer from a gone device: %v", err)
	}
	must(t, c, at(5*time.Second), Answer("tablet"))
	want := []Notice{na(ViewConnecting, "", ToneNone), nb("tablet", ViewConnecting, "", ToneNone), nb("phone", ViewEnded, ReasonAnsweredElsewhere, ToneNone)}
	if got := drain(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("answer:\n got %+v\nwant %+v", got, want)
	}
	if c.View(Caller) != ViewConnecting || c.View(Callee) != ViewConnecting {
		t.Fatalf("views %s %s", c.View(Caller), c.View(Callee))
	}
	if c.AnsweredBy() != "tablet" || !c.Answered().Equal(at(5*time.Second)) || c.Ringing() != nil {
		t.Errorf("AnsweredBy %q at %v, ringing %q", c.AnsweredBy(), c.Answered(), c.Ringing())
	}
	for _, ev := range []Event{Answer("phone"), Decline("phone"), DeviceGone("phone"), DeviceAdded("laptop")} {
		if err := c.Handle(at(6*time.Second), ev); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s after the answer: %v", ev, err)
		}
	}
	must(t, c, at(7*time.Second), Joined(Callee))
	must(t, c, at(8*time.Second), Joined(Caller))
	must(t, c, at(68*time.Second), Hangup(Callee))
	want = []Notice{na(ViewActive, "", ToneNone), nb("tablet", ViewActive, "", ToneNone),
		na(ViewEnded, ReasonHangup, ToneEnded), nb("tablet", ViewEnded, ReasonHangup, ToneEnded)}
	if got := drain(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("call:\n got %+v\nwant %+v", got, want)
	}
	if c.Duration() != 63*time.Second {
		t.Errorf("Duration %v", c.Duration())
	}

	// Every ringing device goes: unavailable.
	c = mustNew(t, t0, params("phone", "laptop"))
	drain(c)
	must(t, c, at(time.Second), DeviceGone("phone"))
	must(t, c, at(2*time.Second), DeviceGone("laptop"))
	if c.State() != Ended || c.Reason() != ReasonUnavailable {
		t.Fatalf("%s %s", c.State(), c.Reason())
	}
	if got, want := drain(c), endAll(ReasonUnavailable, ToneEnded, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("unavailable: %+v", got)
	}
	if c.Duration() != 0 || !c.Answered().IsZero() {
		t.Errorf("unanswered call: Duration %v Answered %v", c.Duration(), c.Answered())
	}

	// A device that went and came back rings again.
	c = mustNew(t, t0, params("phone", "laptop"))
	drain(c)
	must(t, c, at(time.Second), DeviceGone("phone"))
	must(t, c, at(2*time.Second), DeviceAdded("phone"))
	if got, want := drain(c), []Notice{nb("phone", IncomingRinging, "", ToneNone)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("back: %+v", got)
	}
	if got := c.Ringing(); !slices.Equal(got, []string{"laptop", "phone"}) {
		t.Errorf("Ringing %q", got)
	}
}

func TestAutoAnswerOnDeviceAdded(t *testing.T) {
	p := Params{ID: "c", Caller: "me", Callee: "me", CallerDevice: "laptop", CalleeDevices: []string{"phone"}, AutoAnswer: []string{"homecam"}}
	c := mustNew(t, t0, p)
	drain(c)
	if err := c.Handle(at(time.Second), DeviceAdded("laptop")); !errors.Is(err, ErrInvalid) {
		t.Errorf("the calling device rings: %v", err)
	}
	must(t, c, at(2*time.Second), DeviceAdded("homecam"))
	want := []Notice{{Side: Caller, Device: "laptop", State: ViewConnecting}, nb("homecam", ViewConnecting, "", ToneNone), nb("phone", ViewEnded, ReasonAnsweredElsewhere, ToneNone)}
	if got := drain(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("\n got %+v\nwant %+v", got, want)
	}
	if c.AnsweredBy() != "homecam" || c.State() != Connecting {
		t.Errorf("%s by %q", c.State(), c.AnsweredBy())
	}

	// Another user's call: the same device just rings.
	p.Caller = "alice"
	c = mustNew(t, t0, p)
	drain(c)
	must(t, c, at(2*time.Second), DeviceAdded("homecam"))
	if got, want := drain(c), []Notice{nb("homecam", IncomingRinging, "", ToneNone)}; !reflect.DeepEqual(got, want) || c.State() != Ringing {
		t.Errorf("%s %+v", c.State(), got)
	}
}

func TestNoAnswer(t *testing.T) {
	c := mustNew(t, t0, params("b1", "b2"))
	drain(c)
	if w, ok := c.NextWake(); !ok || !w.Equal(at(30*time.Second)) {
		t.Fatalf("NextWake %v %v", w, ok)
	}
	c.Tick(at(30*time.Second - ms))
	if c.State() != Ringing || drain(c) != nil {
		t.Fatalf("ended at 29.999 s: %s", c.State())
	}
	c.Tick(at(30 * time.Second))
	if c.State() != Ended || c.Reason() != ReasonNoAnswer || !c.Ended().Equal(at(30*time.Second)) {
		t.Fatalf("%s %s %v", c.State(), c.Reason(), c.Ended())
	}
	if got, want := drain(c), endAll(ReasonNoAnswer, ToneEnded, ToneEnded, "b1", "b2"); !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v", got)
	}
	if _, ok := c.NextWake(); ok {
		t.Error("a wake after the end")
	}
	c.Tick(at(time.Hour))
	if drain(c) != nil {
		t.Error("notices from a tick after the end")
	}

	// A late Tick ends the call at its deadline.
	c = mustNew(t, t0, params("b1"))
	c.Tick(at(45 * time.Second))
	if c.Reason() != ReasonNoAnswer || !c.Ended().Equal(at(30*time.Second)) {
		t.Errorf("late tick: %s at %v", c.Reason(), c.Ended().Sub(t0))
	}

	// An answer at the deadline, before any Tick, finds the call ended.
	c = mustNew(t, t0, params("b1"))
	drain(c)
	if err := c.Handle(at(30*time.Second), Answer("b1")); !errors.Is(err, ErrInvalid) {
		t.Fatalf("answer at 30 s: %v", err)
	}
	if got, want := drain(c), endAll(ReasonNoAnswer, ToneEnded, ToneEnded, "b1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v", got)
	}
	// And one just before it wins.
	c = mustNew(t, t0, params("b1"))
	must(t, c, at(30*time.Second-ms), Answer("b1"))
	if w, _ := c.NextWake(); !w.Equal(at(45*time.Second - ms)) {
		t.Errorf("connect deadline %v", w.Sub(t0))
	}
}

func TestConnectTimeout(t *testing.T) {
	c := mustNew(t, t0, params("b1"))
	must(t, c, at(5*time.Second), Answer("b1"))
	must(t, c, at(6*time.Second), Joined(Caller))
	drain(c)
	if w, ok := c.NextWake(); !ok || !w.Equal(at(20*time.Second)) {
		t.Fatalf("NextWake %v %v", w.Sub(t0), ok)
	}
	c.Tick(at(20*time.Second - ms))
	if c.State() != Connecting {
		t.Fatalf("%s before the deadline", c.State())
	}
	c.Tick(at(20 * time.Second))
	if c.State() != Ended || c.Reason() != ReasonFailed {
		t.Fatalf("%s %s", c.State(), c.Reason())
	}
	if got, want := drain(c), endAll(ReasonFailed, ToneEnded, ToneEnded, "b1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v", got)
	}
	if c.Duration() != 15*time.Second {
		t.Errorf("Duration %v", c.Duration())
	}

	// Joined by both in time: no deadline left.
	c = mustNew(t, t0, params("b1"))
	must(t, c, at(5*time.Second), Answer("b1"))
	must(t, c, at(6*time.Second), Joined(Caller))
	must(t, c, at(20*time.Second-ms), Joined(Callee))
	if _, ok := c.NextWake(); ok || c.State() != Active {
		t.Fatalf("%s, wake %v", c.State(), ok)
	}
	c.Tick(at(time.Hour))
	if c.State() != Active {
		t.Fatalf("an active call ended by itself: %s", c.Reason())
	}
}

func TestLostWatchdog(t *testing.T) {
	active := func() *Call {
		c := mustNew(t, t0, params("b1"))
		must(t, c, at(time.Second), Answer("b1"))
		must(t, c, at(2*time.Second), Joined(Caller))
		must(t, c, at(2*time.Second), Joined(Callee))
		drain(c)
		return c
	}
	c := active()
	must(t, c, at(10*time.Second), Lost(Callee))
	if drain(c) != nil {
		t.Error("notices on Lost")
	}
	if w, ok := c.NextWake(); !ok || !w.Equal(at(20*time.Second)) {
		t.Fatalf("NextWake %v %v", w.Sub(t0), ok)
	}
	c.Tick(at(20*time.Second - ms))
	if c.State() != Active {
		t.Fatal("lost early")
	}
	c.Tick(at(20 * time.Second))
	if c.State() != Ended || c.Reason() != ReasonLost {
		t.Fatalf("%s %s", c.State(), c.Reason())
	}
	if got, want := drain(c), endAll(ReasonLost, ToneEnded, ToneEnded, "b1"); !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v", got)
	}

	// Back cancels the watchdog.
	c = active()
	must(t, c, at(10*time.Second), Lost(Callee))
	must(t, c, at(19*time.Second), Back(Callee))
	if _, ok := c.NextWake(); ok {
		t.Fatal("a wake after Back")
	}
	c.Tick(at(time.Hour))
	if c.State() != Active || drain(c) != nil {
		t.Fatalf("%s %s", c.State(), c.Reason())
	}

	// Both lost: the first deadline ends it.
	c = active()
	must(t, c, at(10*time.Second), Lost(Callee))
	must(t, c, at(12*time.Second), Lost(Caller))
	must(t, c, at(13*time.Second), Back(Callee))
	if w, _ := c.NextWake(); !w.Equal(at(22 * time.Second)) {
		t.Fatalf("NextWake %v", w.Sub(t0))
	}
	c.Tick(at(22 * time.Second))
	if c.Reason() != ReasonLost || !c.Ended().Equal(at(22*time.Second)) {
		t.Fatalf("%s %v", c.Reason(), c.Ended())
	}

	// The caller lost while ringing ends the call before the no-answer.
	c = mustNew(t, t0, params("b1"))
	must(t, c, at(5*time.Second), Lost(Caller))
	if w, _ := c.NextWake(); !w.Equal(at(15 * time.Second)) {
		t.Fatalf("NextWake %v", w.Sub(t0))
	}
	c.Tick(at(15 * time.Second))
	if c.Reason() != ReasonLost {
		t.Fatalf("%s", c.Reason())
	}

	// A tie between the lost and the no-answer deadline: no-answer.
	c = mustNew(t, t0, params("b1"))
	must(t, c, at(20*time.Second), Lost(Caller))
	c.Tick(at(30 * time.Second))
	if c.Reason() != ReasonNoAnswer {
		t.Fatalf("%s", c.Reason())
	}
}

func TestTimeouts(t *testing.T) {
	p := params("b1")
	p.Timeouts = Timeouts{NoAnswer: 5 * time.Second, Connect: 2 * time.Second, Lost: time.Second}
	c := mustNew(t, t0, p)
	if w, _ := c.NextWake(); !w.Equal(at(5 * time.Second)) {
		t.Errorf("no-answer %v", w.Sub(t0))
	}
	must(t, c, at(time.Second), Answer("b1"))
	if w, _ := c.NextWake(); !w.Equal(at(3 * time.Second)) {
		t.Errorf("connect %v", w.Sub(t0))
	}
	must(t, c, at(2*time.Second), Lost(Caller))
	if w, _ := c.NextWake(); !w.Equal(at(3 * time.Second)) {
		t.Errorf("lost/connect tie %v", w.Sub(t0))
	}
	c.Tick(at(3 * time.Second))
	if c.Reason() != ReasonFailed {
		t.Errorf("tie: %s", c.Reason())
	}
}

func TestTimeGoesBack(t *testing.T) {
	c := mustNew(t, t0, params("b1"))
	must(t, c, at(-5*time.Second), Answer("b1"))
	must(t, c, at(10*time.Second), Hangup(Caller))
	if !c.Answered().Equal(t0) || c.Duration() != 10*time.Second {
		t.Errorf("Answered %v Duration %v", c.Answered().Sub(t0), c.Duration())
	}
	// A now before the last one counts as the last one.
	c = mustNew(t, t0, params("b1"))
	must(t, c, at(29*time.Second), DeviceAdded("b2"))
	must(t, c, at(time.Second), Answer("b2"))
	if !c.Answered().Equal(at(29 * time.Second)) {
		t.Errorf("Answered %v", c.Answered().Sub(t0))
	}
}

func TestText(t *testing.T) {
	n := Notice{Side: Caller, Device: "a1", State: ViewHeld, HeldBy: Holds{Callee: true}}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"side":"caller","device":"a1","state":"held","heldBy":{"callee":true}}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
	b, _ = json.Marshal(nb("b1", ViewEnded, ReasonAnsweredElsewhere, ToneNone))
	if want := `{"side":"callee","device":"b1","state":"ended","reason":"answered-elsewhere","heldBy":{}}`; string(b) != want {
		t.Errorf("%s, want %s", b, want)
	}
	for v := Idle; v <= ViewEnded; v++ {
		var back ViewState = 99
		text, err := v.MarshalText()
		if err != nil || back.UnmarshalText(text) != nil || back != v {
			t.Errorf("%d: %s %v %d", v, text, err, back)
		}
	}
	if Idle.String() != "idle" || OutgoingRinging.String() != "outgoing-ringing" {
		t.Error(Idle, OutgoingRinging)
	}
	var v ViewState
	if v.UnmarshalText([]byte("ringing")) == nil {
		t.Error("unmarshalled a bad view state")
	}
	if _, err := Side(0).MarshalText(); err == nil {
		t.Error("marshalled Side(0)")
	}
	for s, want := range map[fmt.Stringer]string{
		Ringing: "ringing", Connecting: "connecting", Active: "active", Held: "held", Ended: "ended",
		Answer("b1"): "answer(b1)", Hold(Caller): "hold(caller)", Event{KindHangup, Callee, "b1"}: "hangup(callee b1)",
		KindDeviceGone: "device-gone", Caller.Other(): "callee", Callee.Other(): "caller",
	} {
		if s.String() != want {
			t.Errorf("%q, want %q", s, want)
		}
	}
}
