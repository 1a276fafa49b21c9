package call_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/sfu/call"
	"github.com/seedcast/seedcast/sfu/call/client"
	"github.com/seedcast/seedcast/sfu/call/ring"
)

// user is an identity with its public key.
type user struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newUser(t *testing.T) user {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	return user{priv, pub}
}

func (u user) key() string { return client.KeyString(u.pub) }

// device connects u's device dev, accepting calls from contacts.
func (e *env) device(ctx context.Context, u user, dev, name string, contacts ...user) *client.Device {
	e.t.Helper()
	var cs []ed25519.PublicKey
	for _, c := range contacts {
		cs = append(cs, c.pub)
	}
	d, err := client.DialDevice(ctx, client.DeviceParams{URL: e.url("/presence/ws"), Key: u.priv, Device: dev, Name: name, Contacts: cs})
	if err != nil {
		e.t.Fatalf("device %s: %v", dev, err)
	}
	e.t.Cleanup(d.Close)
	return d
}

func salt() []byte { b := make([]byte, 16); _, _ = rand.Read(b); return b }

func waitErr(ctx context.Context, t *testing.T, d *client.Device, code string) {
	t.Helper()
	if _, err := d.WaitFor(ctx, func(o call.POut) bool { return o.Type == call.PTypeError && o.Code == code }); err != nil {
		t.Fatalf("waiting for error %s: %v", code, err)
	}
}

// joinCall enters a call's room with the invite of its connecting state.
func (e *env) joinCall(ctx context.Context, ci call.CallInfo, name string) *client.Client {
	e.t.Helper()
	if ci.Room == "" || ci.Invite == "" {
		e.t.Fatalf("%s: call %s has no room or invite: %+v", name, ci.ID, ci)
	}
	p := client.Params{URL: e.url("/call/" + ci.Room + "/ws"), Name: name, Invite: ci.Invite, API: e.api, AutoSubscribe: true}
	return e.dial(ctx, p)
}

// TestRingCall: mutual contacts find each other online; a ring reaches
// every device of the callee, the first answer wins and the other device
// stops; both sides enter the call's media room and hear each other; hold,
// resume and hang-up reach both sides. A stranger cannot ring, and learns
// nothing from trying.
func TestRingCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{})
	alice, bob, mallory := newUser(t), newUser(t), newUser(t)

	a := e.device(ctx, alice, "alice-laptop", "Alice", bob)
	b1 := e.device(ctx, bob, "bob-phone-1", "Bob", alice)
	b2 := e.device(ctx, bob, "bob-desk-22", "Bob", alice)
	m := e.device(ctx, mallory, "mallory-000", "Mallory", bob)

	if _, err := a.WaitFor(ctx, func(o call.POut) bool { return o.Type == call.PTypePresence && o.Key == bob.key() && o.Here }); err != nil {
		t.Fatalf("alice never saw bob online: %v", err)
	}
	if got := b2.Ready().Online; len(got) != 1 || got[0] != alice.key() {
		t.Fatalf("bob's second device: online %v, want alice's key only", got)
	}
	if got := m.Ready().Online; len(got) != 0 {
		t.Fatalf("a stranger learned who is online: %v", got)
	}

	// The stranger rings Bob: refused as unavailable, and Bob hears nothing.
	must(t, m.Ring(bob.pub, salt()))
	waitErr(ctx, t, m, call.CodeUnavailable)
	// Alice rings someone she has not added.
	must(t, a.Ring(mallory.pub, salt()))
	waitErr(ctx, t, a, call.CodeNotContact)

	s := salt()
	must(t, a.Ring(bob.pub, s))
	out, err := a.WaitCall(ctx, "", "outgoing-ringing")
	must(t, err)
	if out.Tone != "ringback" || out.Peer != bob.key() || out.Side != "caller" {
		t.Fatalf("caller's ringing: %+v", out)
	}
	in1, err := b1.WaitCall(ctx, out.ID, "incoming-ringing")
	must(t, err)
	_, err = b2.WaitCall(ctx, out.ID, "incoming-ringing")
	must(t, err)
	if in1.Peer != alice.key() || in1.PeerName != "Alice" || in1.Salt != base64.RawURLEncoding.EncodeToString(s) || !in1.E2EE {
		t.Fatalf("callee's ring: %+v", in1)
	}
	for _, ev := range m.Events() {
		if ev.Type == call.PTypeCall {
			t.Fatalf("the stranger heard of the call: %+v", ev.Call)
		}
	}

	must(t, b1.Act(call.PTypeAnswer, out.ID))
	stopped, err := b2.WaitCall(ctx, out.ID, "ended")
	must(t, err)
	if stopped.Reason != "answered-elsewhere" || stopped.Tone != "" {
		t.Fatalf("the other device: %+v, want ended answered-elsewhere without a tone", stopped)
	}
	ac, err := a.WaitCall(ctx, out.ID, "connecting")
	must(t, err)
	bc, err := b1.WaitCall(ctx, out.ID, "connecting")
	must(t, err)
	if ac.Room != bc.Room || ac.Invite == bc.Invite {
		t.Fatalf("both sides must get the same room and their own invites: %+v %+v", ac, bc)
	}
	// A second answer (the other device, late) is refused.
	must(t, b2.Act(call.PTypeAnswer, out.ID))
	waitErr(ctx, t, b2, call.CodeNoCall)

	ca := e.joinCall(ctx, ac, "Alice")
	cb := e.joinCall(ctx, bc, "Bob")
	_, err = a.WaitCall(ctx, out.ID, "active")
	must(t, err)
	_, err = b1.WaitCall(ctx, out.ID, "active")
	must(t, err)
	// Media both ways through the call's room.
	must(t, ca.Publish(ctx, client.PublishOptions{Audio: true, Video: true}))
	must(t, cb.Publish(ctx, client.PublishOptions{Audio: true, Video: true}))
	if err := ca.Until(ctx, func() bool { return rxPackets(ca) > 50 }); err != nil {
		for _, ev := range ca.Events() {
			if ev.Type != call.TypeLevels {
				t.Logf("alice got %s %s %v %s %s", ev.Type, ev.Participant, ev.Tracks, ev.Code, ev.Message)
			}
		}
		t.Fatal(err)
	}
	must(t, cb.Until(ctx, func() bool { return rxPackets(cb) > 50 }))

	// Hold and resume: both sides are told who holds.
	must(t, a.Act(call.PTypeHold, out.ID))
	h, err := b1.WaitCall(ctx, out.ID, "held")
	must(t, err)
	if !h.HeldByPeer || h.HeldByMe {
		t.Fatalf("bob's view of alice's hold: %+v", h)
	}
	h, err = a.WaitCall(ctx, out.ID, "held")
	must(t, err)
	if !h.HeldByMe {
		t.Fatalf("alice's view of her hold: %+v", h)
	}
	must(t, b1.Act(call.PTypeResume, out.ID)) // Bob cannot lift Alice's hold
	waitErr(ctx, t, b1, call.CodeCallRefused)
	must(t, a.Act(call.PTypeResume, out.ID))
	t0 := time.Now()
	for _, d := range []*client.Device{a, b1} {
		_, err := d.WaitFor(ctx, func(o call.POut) bool {
			return o.Type == call.PTypeCall && o.Call.ID == out.ID && o.Call.State == "active" && o.Call.Answered > 0 && !o.Call.HeldByMe && !o.Call.HeldByPeer
		})
		must(t, err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("resume reached both sides in %v (want within 1 s)", d)
	}

	must(t, b1.Act(call.PTypeHangup, out.ID))
	for _, d := range []*client.Device{a, b1} {
		end, err := d.WaitCall(ctx, out.ID, "ended")
		must(t, err)
		if end.Reason != "hangup" || end.Tone != "ended" || end.Ended == 0 {
			t.Fatalf("hang-up: %+v", end)
		}
	}
	if v := testutil.ToFloat64(counter(t, e.reg, "seedcast_call_rings_total", "outcome", "hangup")); v != 1 {
		t.Fatalf("rings_total{hangup} = %v", v)
	}
}

func rxPackets(c *client.Client) int {
	n := 0
	for _, s := range c.RxAll() {
		n += int(s.Packets.Load())
	}
	return n
}

// TestRingEndings: decline, busy, no answer and cancel end a call as the
// table says, on both sides; the watchdog ends a call whose other side
// vanished.
func TestRingEndings(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{
		ResumeWindow: 300 * time.Millisecond,
		Ring:         ring.Timeouts{NoAnswer: 500 * time.Millisecond, Lost: 500 * time.Millisecond},
	})
	alice, bob, carol := newUser(t), newUser(t), newUser(t)
	a := e.device(ctx, alice, "alice-laptop", "Alice", bob, carol)
	b := e.device(ctx, bob, "bob-phone-1", "Bob", alice, carol)
	c := e.device(ctx, carol, "carol-phone", "Carol", alice, bob)

	seen := map[string]bool{}
	// next waits for a's next new call.
	next := func() call.CallInfo {
		t.Helper()
		o, err := a.WaitFor(ctx, func(o call.POut) bool {
			return o.Type == call.PTypeCall && o.Call.State == "outgoing-ringing" && !seen[o.Call.ID]
		})
		must(t, err)
		seen[o.Call.ID] = true
		return *o.Call
	}
	ringAndEnd := func(act func(id string), want string) call.CallInfo {
		t.Helper()
		must(t, a.Ring(bob.pub, salt()))
		out := next()
		_, err := b.WaitCall(ctx, out.ID, "incoming-ringing")
		must(t, err)
		act(out.ID)
		end, err := a.WaitCall(ctx, out.ID, "ended")
		must(t, err)
		if end.Reason != want {
			t.Fatalf("caller: ended %q, want %q", end.Reason, want)
		}
		bend, err := b.WaitCall(ctx, out.ID, "ended")
		must(t, err)
		if bend.Reason != want {
			t.Fatalf("callee: ended %q, want %q", bend.Reason, want)
		}
		return end
	}
	if end := ringAndEnd(func(id string) { must(t, b.Act(call.PTypeDecline, id)) }, "declined"); end.Tone != "ended" {
		t.Fatalf("declined: tone %q", end.Tone)
	}
	if end := ringAndEnd(func(id string) { must(t, b.Act(call.PTypeBusy, id)) }, "busy"); end.Tone != "busy" {
		t.Fatalf("busy: tone %q", end.Tone)
	}
	ringAndEnd(func(string) {}, "no-answer")
	ringAndEnd(func(id string) { must(t, a.Act(call.PTypeCancel, id)) }, "cancelled")

	// Carol calls Bob while Bob is in a call with Alice: busy at once.
	must(t, a.Ring(bob.pub, salt()))
	out := next()
	_, err := b.WaitCall(ctx, out.ID, "incoming-ringing")
	must(t, err)
	must(t, b.Act(call.PTypeAnswer, out.ID))
	ac, err := a.WaitCall(ctx, out.ID, "connecting")
	must(t, err)
	bc, err := b.WaitCall(ctx, out.ID, "connecting")
	must(t, err)
	ca := e.joinCall(ctx, ac, "Alice")
	e.joinCall(ctx, bc, "Bob")
	_, err = a.WaitCall(ctx, out.ID, "active")
	must(t, err)
	must(t, c.Ring(bob.pub, salt()))
	busy, err := c.WaitFor(ctx, func(o call.POut) bool { return o.Type == call.PTypeCall && o.Call.State == "ended" })
	must(t, err)
	if busy.Call.Reason != "busy" || busy.Call.Tone != "busy" {
		t.Fatalf("ringing someone in a call: %+v", busy.Call)
	}

	// The watchdog: Alice's media room connection vanishes and does not
	// come back; Bob is told the call was lost instead of waiting forever.
	t0 := time.Now()
	ca.Drop()
	lost, err := b.WaitCall(ctx, out.ID, "ended")
	must(t, err)
	if lost.Reason != "lost" {
		t.Fatalf("watchdog: %+v", lost)
	}
	t.Logf("the watchdog ended the call %v after the drop", time.Since(t0).Round(time.Millisecond))
}

// TestPresenceBadInput: a forged signature, a challenge signed for another
// host, a message before hello and malformed messages are refused with a
// clear code, counted, and nothing else changes.
func TestPresenceBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{})
	alice, bob := newUser(t), newUser(t)

	// Bob's key, Alice's signature.
	_, err := client.DialDevice(ctx, client.DeviceParams{URL: e.url("/presence/ws"), Key: alice.priv, Device: "forger-0001", Host: "evil.example"})
	if err == nil || !strings.Contains(err.Error(), call.CodeBadSignature) {
		t.Fatalf("a signature for another host: %v", err)
	}
	ws, _, err := websocket.Dial(ctx, e.url("/presence/ws"), nil)
	must(t, err)
	defer ws.CloseNow()
	read := func() call.POut {
		t.Helper()
		_, b, err := ws.Read(ctx)
		must(t, err)
		var o call.POut
		must(t, json.Unmarshal(b, &o))
		return o
	}
	ch := read()
	nonce, _ := base64.RawURLEncoding.DecodeString(ch.Nonce)
	write := func(v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		must(t, ws.Write(ctx, websocket.MessageText, b))
	}
	write(call.PMsg{Type: call.PTypeRing, To: bob.key(), Salt: base64.RawURLEncoding.EncodeToString(salt())})
	if o := read(); o.Code != call.CodeNotReady {
		t.Fatalf("ring before hello: %+v", o)
	}
	must(t, ws.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","key":"short"}`)))
	if o := read(); o.Code != call.CodeBadMessage {
		t.Fatalf("malformed hello: %+v", o)
	}
	sig := ed25519.Sign(alice.priv, call.PresenceSigned(strings.TrimPrefix(e.ts.URL, "http://"), nonce, "forger-0001"))
	write(call.PMsg{Type: call.PTypeHello, Key: bob.key(), Device: "forger-0001", Sig: base64.RawURLEncoding.EncodeToString(sig)})
	if o := read(); o.Type != call.PTypeClosed || o.Code != call.CodeBadSignature {
		t.Fatalf("forged hello: %+v", o)
	}
	if v := testutil.ToFloat64(counter(t, e.reg, "seedcast_call_refused_total", "reason", call.CodeBadSignature)); v != 2 {
		t.Fatalf("refused{bad-signature} = %v, want 2", v)
	}
	// The forger is not online as Bob: Alice, who lists Bob, sees nobody.
	a := e.device(ctx, alice, "alice-laptop", "Alice", bob)
	if got := a.Ready().Online; len(got) != 0 {
		t.Fatalf("online after a forged hello: %v", got)
	}
	// Ringing in a storm: the sixth ring in a row is refused for rate.
	for range 6 {
		must(t, a.Ring(bob.pub, salt()))
	}
	waitErr(ctx, t, a, call.CodeRateLimited)
}

// TestSealedChatHistory: sealed chat lines are kept on disk as they came
// (the server cannot read them), plain lines never are, and a new server
// on the same directory gives the history back.
func TestSealedChatHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	e := newEnvDir(t, call.Limits{}, dir)
	c := e.dial(ctx, e.params("Ann"))
	const sealed = "v1.AAECAwQFBgcICQoLDA0ODw.c2VjcmV0LWNpcGhlcnRleHQ"
	must(t, c.Send(call.Msg{Type: call.TypeChat, Sealed: sealed}))
	must(t, c.Send(call.Msg{Type: call.TypeChat, Text: "plain words"}))
	_, err := c.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeChat && o.Line.Text == "plain words" })
	must(t, err)
	must(t, c.Send(call.Msg{Type: call.TypeChat, Sealed: "not base64!"}))
	_, err = c.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeError && o.Code == call.CodeBadMessage })
	must(t, err)
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("history files: %v", files)
	}
	raw, err := os.ReadFile(files[0])
	must(t, err)
	if !strings.Contains(string(raw), sealed) || strings.Contains(string(raw), "plain words") {
		t.Fatalf("stored history: %s", raw)
	}
	// A torn last line (a crash mid-write) is skipped, not fatal.
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, _ = f.WriteString(`{"from":"x","sea`)
	_ = f.Close()

	c.Close()
	e.close()
	e2 := newEnvDir(t, call.Limits{}, dir)
	e2.room = e.room
	c2 := e2.dial(ctx, e2.params("Ann again"))
	w := c2.Welcome()
	if len(w.Chat) != 1 || w.Chat[0].Sealed != sealed || w.Chat[0].Text != "" {
		t.Fatalf("history after a restart: %+v", w.Chat)
	}
	if v := testutil.ToFloat64(counterPlain(t, e2.reg, "seedcast_call_chat_store_corrupt_lines_total")); v != 1 {
		t.Fatalf("corrupt lines counted: %v", v)
	}
}

// TestRingAutoAnswerAndUpgrade: a device with auto-answer on picks up a
// call from its own user at once, and never one from anybody else; a call
// grows into a group call when one side rings a third contact into its
// room, who gets the box (a sealed key) as it was sent.
func TestRingAutoAnswerAndUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{})
	alice, bob, carol := newUser(t), newUser(t), newUser(t)

	// Alice's always-on tablet answers her own calls by itself.
	tablet, err := client.DialDevice(ctx, client.DeviceParams{URL: e.url("/presence/ws"), Key: alice.priv, Device: "alice-tablet",
		Name: "Alice's tablet", Contacts: []ed25519.PublicKey{bob.pub}, AutoAnswer: true})
	must(t, err)
	t.Cleanup(tablet.Close)
	phone := e.device(ctx, alice, "alice-phone", "Alice", bob, carol)
	b := e.device(ctx, bob, "bob-laptop", "Bob", alice, carol)
	c := e.device(ctx, carol, "carol-phone", "Carol", alice, bob)

	must(t, phone.Ring(alice.pub, salt()))
	self, err := phone.WaitCall(ctx, "", "connecting")
	must(t, err)
	if _, err := tablet.WaitCall(ctx, self.ID, "connecting"); err != nil {
		t.Fatalf("the tablet did not pick up its own user's call: %v", err)
	}
	for _, ev := range tablet.Events() {
		if ev.Type == call.PTypeCall && ev.Call.State == "incoming-ringing" {
			t.Fatal("an auto-answer device rang instead of answering")
		}
	}
	must(t, phone.Act(call.PTypeHangup, self.ID))
	_, err = tablet.WaitCall(ctx, self.ID, "ended")
	must(t, err)

	// Bob calls Alice: the tablet rings like any device; nobody answers for her.
	must(t, b.Ring(alice.pub, salt()))
	out, err := b.WaitCall(ctx, "", "outgoing-ringing")
	must(t, err)
	if _, err := tablet.WaitCall(ctx, out.ID, "incoming-ringing"); err != nil {
		t.Fatalf("the tablet should ring for Bob: %v", err)
	}
	must(t, phone.Act(call.PTypeAnswer, out.ID))
	bc, err := b.WaitCall(ctx, out.ID, "connecting")
	must(t, err)
	ac, err := phone.WaitCall(ctx, out.ID, "connecting")
	must(t, err)

	// Alice rings Carol into the call's room, with a box for her.
	must(t, phone.Send(call.PMsg{Type: call.PTypeRing, To: carol.key(), Video: true, E2EE: true,
		Salt: base64.RawURLEncoding.EncodeToString(salt()), Room: ac.Room, Box: "c2VhbGVkLWtleQ"}))
	in, err := c.WaitCall(ctx, "", "incoming-ringing")
	must(t, err)
	if !in.Group || in.Box != "c2VhbGVkLWtleQ" || in.Peer != alice.key() {
		t.Fatalf("the third contact's ring: %+v", in)
	}
	must(t, c.Act(call.PTypeAnswer, in.ID))
	cc, err := c.WaitCall(ctx, in.ID, "connecting")
	must(t, err)
	if cc.Room != bc.Room {
		t.Fatalf("Carol was rung into room %s, the call is in %s", cc.Room, bc.Room)
	}
	// Ringing into a room you are not in is refused.
	must(t, b.Send(call.PMsg{Type: call.PTypeRing, To: carol.key(), Salt: base64.RawURLEncoding.EncodeToString(salt()), Room: call.NewRoomID()}))
	waitErr(ctx, t, b, call.CodeNoCall)
}
