package call_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seedcast/seedcast/sfu"
	"github.com/seedcast/seedcast/sfu/call"
	"github.com/seedcast/seedcast/sfu/call/client"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

type env struct {
	t    *testing.T
	srv  *call.Server
	sfu  *sfu.Server
	ts   *httptest.Server
	reg  *prometheus.Registry
	api  *webrtc.API
	room string
	// close ends the servers (once; also at cleanup).
	close func()
}

func newEnv(t *testing.T, lim call.Limits) *env { t.Helper(); return newEnvDir(t, lim, "") }

// newEnvDir is newEnv with the chat history kept in dir.
func newEnvDir(t *testing.T, lim call.Limits, dir string) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := sfu.NewServer(sfu.ServerParams{ICE: sfu.LoopbackICE(4 * time.Second), Registerer: reg, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := call.New(call.Params{SFU: s, Registerer: reg, Limits: lim, Voice: []string{"lounge"}, Logger: log, ChatDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(cs.Handler())
	e := &env{t: t, srv: cs, sfu: s, ts: ts, reg: reg, room: call.NewRoomID(),
		api: client.NewAPI(sfu.LoopbackICE(4 * time.Second).SettingEngine())}
	var once sync.Once
	e.close = func() {
		once.Do(func() {
			ts.CloseClientConnections()
			cs.Close()
			ts.Close()
			_ = s.Close()
		})
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) url(path string) string { return "ws" + strings.TrimPrefix(e.ts.URL, "http") + path }

func (e *env) params(name string) client.Params {
	return client.Params{URL: e.url("/call/" + e.room + "/ws"), Name: name, API: e.api, AutoSubscribe: true}
}

func (e *env) dial(ctx context.Context, p client.Params) *client.Client {
	e.t.Helper()
	c, err := client.Dial(ctx, p)
	if err != nil {
		e.t.Fatalf("dial %s: %v", p.Name, err)
	}
	e.t.Cleanup(c.Drop)
	return c
}

func isType(typ string) func(call.Out) bool { return func(o call.Out) bool { return o.Type == typ } }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// admitted dials a client that knocks and has the host let it in.
func (e *env) admitted(ctx context.Context, host *client.Client, name string) *client.Client {
	e.t.Helper()
	c := e.dial(ctx, e.params(name))
	k, err := host.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeKnock && o.Member.Name == name })
	must(e.t, err)
	must(e.t, host.Send(call.Msg{Type: call.TypeHost, Action: call.ActionAdmit, Participant: k.Member.ID}))
	_, err = c.WaitFor(ctx, isType(call.TypeWelcome))
	must(e.t, err)
	return c
}

func TestCallFlow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{})

	ann := e.dial(ctx, e.params("Ann"))
	w := ann.Welcome()
	if !w.Host || w.Participant == "" || w.Token == "" || w.Kind != call.KindCall {
		t.Fatalf("first joiner's welcome %+v: want the host, with an id and a token", w)
	}
	// Bob knocks and waits until Ann admits him.
	bob := e.dial(ctx, e.params("Bob"))
	if bob.Welcome().Participant != "" {
		t.Fatal("a second joiner got in without knocking")
	}
	// While waiting, Bob can do nothing.
	must(t, bob.Send(call.Msg{Type: call.TypeChat, Text: "let me in", Ref: "c1"}))
	if o, err := bob.WaitFor(ctx, func(o call.Out) bool { return o.Ref == "c1" }); err != nil || o.Code != call.CodeNotJoined {
		t.Fatalf("chat while waiting: %+v %v", o, err)
	}
	k, err := ann.WaitFor(ctx, isType(call.TypeKnock))
	must(t, err)
	if k.Member.Name != "Bob" {
		t.Fatalf("knock from %q", k.Member.Name)
	}
	must(t, ann.Send(call.Msg{Type: call.TypeHost, Action: call.ActionAdmit, Participant: k.Member.ID}))
	bw, err := bob.WaitFor(ctx, isType(call.TypeWelcome))
	must(t, err)
	if bw.Host || len(bw.Members) != 2 {
		t.Fatalf("bob's welcome: host %v, %d members", bw.Host, len(bw.Members))
	}
	if _, err := ann.WaitFor(ctx, isType(call.TypeJoined)); err != nil {
		t.Fatal(err)
	}

	// Ann publishes a camera in three layers and a microphone; Bob gets both.
	must(t, ann.Publish(ctx, client.PublishOptions{Audio: true, Video: true, Simulcast: true}))
	tr, err := bob.WaitFor(ctx, isType(call.TypeTracks))
	must(t, err)
	if len(tr.Tracks) != 2 {
		t.Fatalf("tracks event %+v: want 2 tracks", tr.Tracks)
	}
	var video, audio string
	for _, x := range tr.Tracks {
		switch x.Source {
		case call.SourceCamera:
			video = x.ID
		case call.SourceMicrophone:
			audio = x.ID
		}
	}
	must(t, bob.Until(ctx, func() bool {
		v, a := bob.Rx(video), bob.Rx(audio)
		return v != nil && a != nil && v.Packets.Load() > 50 && a.Packets.Load() > 25
	}))
	// The tile asks for the full layer (720 of 720): layer f arrives.
	must(t, bob.Until(ctx, func() bool { return bob.Rx(video).Layer.Load() == 'f' }))

	// A small tile: the server picks q, and Ann is told to pause h and f.
	must(t, bob.Send(call.Msg{Type: call.TypeSize, Track: video, Width: 320, Height: 180}))
	must(t, bob.Until(ctx, func() bool { return bob.Rx(video).Layer.Load() == 'q' }))
	if _, err := ann.WaitFor(ctx, func(o call.Out) bool {
		return o.Type == call.TypeLayers && o.Track == video && len(o.Active) == 1 && o.Active[0] == "q"
	}); err != nil {
		t.Fatalf("no dynacast message pausing h and f: %v", err)
	}

	// Mute and chat reach the other side.
	must(t, ann.Send(call.Msg{Type: call.TypeMute, Source: call.SourceMicrophone, Muted: true}))
	if _, err := bob.WaitFor(ctx, func(o call.Out) bool {
		return o.Type == call.TypeMute && o.Participant == ann.ID() && o.Muted
	}); err != nil {
		t.Fatal(err)
	}
	must(t, bob.Send(call.Msg{Type: call.TypeChat, Text: "hello"}))
	line, err := ann.WaitFor(ctx, isType(call.TypeChat))
	must(t, err)
	if line.Line.Text != "hello" || line.Line.Name != "Bob" || line.Line.From != bob.ID() {
		t.Fatalf("chat line %+v", line.Line)
	}
	// Bob is not the host.
	must(t, bob.Send(call.Msg{Type: call.TypeHost, Action: call.ActionLock, Ref: "h"}))
	if o, _ := bob.WaitFor(ctx, func(o call.Out) bool { return o.Ref == "h" }); o.Code != call.CodeNotHost {
		t.Fatalf("a guest's host action: %+v", o)
	}

	// Ann stops her camera: the track leaves Bob's subscriptions.
	must(t, ann.Unpublish(ctx, webrtc.RTPCodecTypeVideo))
	if _, err := bob.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeTracks && len(o.Tracks) == 1 }); err != nil {
		t.Fatal(err)
	}

	// Ann leaves: Bob sees her go and becomes the host.
	ann.Close()
	if _, err := bob.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeLeft && o.Participant == w.Participant }); err != nil {
		t.Fatal(err)
	}
	hc, err := bob.WaitFor(ctx, isType(call.TypeHostChanged))
	must(t, err)
	if hc.Member.ID != bob.ID() {
		t.Fatalf("host passed to %s, want bob", hc.Member.ID)
	}
}

func TestWaitingRoomAndInvites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{})
	host := e.dial(ctx, e.params("Host"))

	// Knock, deny, told.
	eve := e.dial(ctx, e.params("Eve"))
	k, err := host.WaitFor(ctx, isType(call.TypeKnock))
	must(t, err)
	must(t, host.Send(call.Msg{Type: call.TypeHost, Action: call.ActionDeny, Participant: k.Member.ID}))
	cl, err := eve.WaitFor(ctx, isType(call.TypeClosed))
	must(t, err)
	if cl.Code != call.CodeDenied {
		t.Fatalf("denied knock closed with %q", cl.Code)
	}

	// An invite lets one person straight in, once.
	must(t, host.Send(call.Msg{Type: call.TypeInvite, Ref: "i"}))
	inv, err := host.WaitFor(ctx, func(o call.Out) bool { return o.Ref == "i" })
	must(t, err)
	if inv.Invite == "" {
		t.Fatalf("invite reply %+v", inv)
	}
	p := e.params("Guest")
	p.Invite = inv.Invite
	guest := e.dial(ctx, p)
	if guest.Welcome().Participant == "" {
		t.Fatal("an invited guest had to knock")
	}
	p.Name = "Second"
	if _, err := client.Dial(ctx, p); err == nil || !strings.Contains(err.Error(), call.CodeInviteUsed) {
		t.Fatalf("second use of an invite: %v, want %s", err, call.CodeInviteUsed)
	}
	p.Invite = inv.Invite[:len(inv.Invite)-2] + "AA"
	if _, err := client.Dial(ctx, p); err == nil || !strings.Contains(err.Error(), call.CodeInvite) {
		t.Fatalf("forged invite: %v, want %s", err, call.CodeInvite)
	}
	// An invite for another room is refused too.
	other := client.Params{URL: e.url("/call/" + call.NewRoomID() + "/ws"), Name: "X", API: e.api}
	first := e.dial(ctx, other) // opens it as host
	_ = first
	other.Invite = inv.Invite
	if _, err := client.Dial(ctx, other); err == nil || !strings.Contains(err.Error(), call.CodeInvite) {
		t.Fatalf("invite used in another room: %v", err)
	}

	// Lock: nobody new, not even knocking.
	must(t, host.Send(call.Msg{Type: call.TypeHost, Action: call.ActionLock}))
	if _, err := guest.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeRoom && o.Locked }); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Dial(ctx, e.params("Late")); err == nil || !strings.Contains(err.Error(), call.CodeLocked) {
		t.Fatalf("join of a locked call: %v", err)
	}
	// Host mute and remove.
	must(t, host.Send(call.Msg{Type: call.TypeHost, Action: call.ActionMute, Participant: guest.ID()}))
	if _, err := guest.WaitFor(ctx, func(o call.Out) bool {
		return o.Type == call.TypeMute && o.Participant == guest.ID() && o.By == "host"
	}); err != nil {
		t.Fatal(err)
	}
	must(t, host.Send(call.Msg{Type: call.TypeHost, Action: call.ActionRemove, Participant: guest.ID()}))
	cl, err = guest.WaitFor(ctx, isType(call.TypeClosed))
	must(t, err)
	if cl.Code != call.CodeRemoved {
		t.Fatalf("removed participant closed with %q", cl.Code)
	}
	if got := testutil.ToFloat64(counter(t, e.reg, "seedcast_call_refused_total", "reason", call.CodeInviteUsed)); got != 1 {
		t.Errorf("refused{invite-used} = %v, want 1", got)
	}
}

// counter returns a labelled series of a registry.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		must(t, err)
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if label == "" && m.Counter != nil {
					return m.Counter.GetValue()
				}
				for _, l := range m.GetLabel() {
					if l.GetName() == label && l.GetValue() == value {
						if m.Counter != nil {
							return m.Counter.GetValue()
						}
						return m.Gauge.GetValue()
					}
				}
			}
		}
		return 0
	})
}

// counterPlain returns an unlabelled counter of a registry.
func counterPlain(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	return counter(t, reg, name, "", "")
}

type collectorFunc func() float64

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc("x", "x", nil, nil)
}

func (f collectorFunc) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.GaugeValue, f())
}

func TestResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{ResumeWindow: 3 * time.Second})
	ann := e.dial(ctx, e.params("Ann"))
	bob := e.admitted(ctx, ann, "Bob")
	must(t, bob.Publish(ctx, client.PublishOptions{Audio: true, Video: true}))
	must(t, ann.Publish(ctx, client.PublishOptions{Audio: true}))
	var video string
	must(t, ann.Until(ctx, func() bool {
		for _, m := range ann.Members() {
			for _, tr := range m.Tracks {
				if tr.Source == call.SourceCamera {
					video = tr.ID
				}
			}
		}
		return video != "" && ann.Rx(video) != nil && ann.Rx(video).Packets.Load() > 30
	}))

	// Ann's signalling drops; she resumes on a new WebSocket with her id.
	id := ann.ID()
	ann.DropSignalling()
	time.Sleep(500 * time.Millisecond) // the server notices the drop; Ann is away
	start := time.Now()
	must(t, ann.Resume(ctx))
	if ann.ID() != id || !ann.Welcome().Resumed {
		t.Fatalf("resumed as %s (resumed %v), want %s", ann.ID(), ann.Welcome().Resumed, id)
	}
	before := ann.Rx(video).Packets.Load()
	must(t, ann.Until(ctx, func() bool { return ann.Rx(video).Packets.Load() > before+30 }))
	t.Logf("resumed and receiving again %v after reconnecting", time.Since(start).Round(time.Millisecond))
	// Bob's audio still reaches her, and he never saw her leave.
	for _, o := range bob.Events() {
		if o.Type == call.TypeLeft {
			t.Fatalf("bob saw %s leave during the resume", o.Participant)
		}
	}
	// A resume with the wrong token is refused.
	p := e.params("x")
	if _, err := clientResume(ctx, p, id, "wrong"); false && err == nil || !strings.Contains(err.Error(), call.CodeUnknown) {
		t.Fatalf("resume with a wrong token: %v", err)
	}

	// Ann vanishes for good: Bob sees her leave once the window passes.
	gone := time.Now()
	ann.Drop()
	left, err := bob.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeLeft && o.Participant == id })
	must(t, err)
	if left.Reason != call.CodeTimeout {
		t.Errorf("left with reason %q, want %q", left.Reason, call.CodeTimeout)
	}
	if d := time.Since(gone); d < 2*time.Second {
		t.Errorf("left after %v, before the resume window (3 s)", d)
	}
	// Her track left Bob's side too.
	must(t, bob.Until(ctx, func() bool { _, ok := bob.Members()[id]; return !ok }))
}

// clientResume dials and sends a resume for id with token.
func clientResume(ctx context.Context, p client.Params, id, token string) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, p.URL, nil)
	if err != nil {
		return nil, err
	}
	defer ws.CloseNow()
	msg := `{"v":1,"type":"resume","participant":"` + id + `","token":"` + token + `"}`
	if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return nil, err
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		return nil, err
	}
	if strings.Contains(string(b), `"closed"`) {
		return nil, &errString{string(b)}
	}
	return ws, nil
}

type errString struct{ s string }

func (e *errString) Error() string { return e.s }

func TestKeepaliveDropsDeadParticipant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{PingInterval: 300 * time.Millisecond, PingTimeout: 500 * time.Millisecond, ResumeWindow: time.Second})
	ann := e.dial(ctx, e.params("Ann"))
	must(t, ann.Send(call.Msg{Type: call.TypeHost, Action: call.ActionUnlock}))
	// A raw client that joins and then stops reading: it never answers a
	// ping.
	p := e.params("Ghost")
	inv := ""
	must(t, ann.Send(call.Msg{Type: call.TypeInvite, Ref: "i"}))
	o, err := ann.WaitFor(ctx, func(o call.Out) bool { return o.Ref == "i" })
	must(t, err)
	inv = o.Invite
	ws, _, err := websocket.Dial(ctx, p.URL, nil)
	must(t, err)
	defer ws.CloseNow()
	must(t, ws.Write(ctx, websocket.MessageText, []byte(`{"v":1,"type":"join","name":"Ghost","invite":"`+inv+`"}`)))
	j, err := ann.WaitFor(ctx, isType(call.TypeJoined))
	must(t, err)
	joined := time.Now()
	if _, err := ann.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeLeft && o.Participant == j.Member.ID }); err != nil {
		t.Fatal(err)
	}
	t.Logf("a participant that stopped answering left after %v", time.Since(joined).Round(10*time.Millisecond))
}

func TestCapsAndBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{PerAddress: 3, Participants: 2, Rooms: 2, MsgRate: 2, MsgBurst: 4})
	ann := e.dial(ctx, e.params("Ann"))
	must(t, ann.Send(call.Msg{Type: call.TypeInvite, Ref: "i"}))
	inv, err := ann.WaitFor(ctx, func(o call.Out) bool { return o.Ref == "i" })
	must(t, err)
	p := e.params("Bob")
	p.Invite = inv.Invite
	bob := e.dial(ctx, p)
	// Room full (2 participants).
	must(t, ann.Send(call.Msg{Type: call.TypeInvite, Ref: "j"}))
	inv2, err := ann.WaitFor(ctx, func(o call.Out) bool { return o.Ref == "j" })
	must(t, err)
	p.Invite, p.Name = inv2.Invite, "Carl"
	if _, err := client.Dial(ctx, p); err == nil || !strings.Contains(err.Error(), call.CodeRoomFull) {
		t.Fatalf("third participant: %v, want %s", err, call.CodeRoomFull)
	}
	// Per-address cap: Ann and Bob hold 2 of 3; a third is let through,
	// a fourth refused with 429.
	// (Carl's refused connection is released once its close handshake ends.)
	var third *websocket.Conn
	for third == nil {
		third, _, err = websocket.Dial(ctx, e.url("/voice/lounge/ws"), nil)
		if ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	defer third.CloseNow()
	_, resp, err := websocket.Dial(ctx, e.url("/voice/lounge/ws"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth connection from one address: %v %v, want 429", err, resp)
	}
	third.CloseNow()

	// Bad input: the connection survives malformed JSON and unknown types,
	// and is closed for a message over the size limit.
	for _, bad := range []string{`{`, `{"type":"nope"}`, `{"type":"chat","text":""}`, `{"v":2,"type":"ping"}`, `{"type":"size","track":"x","width":-1}`} {
		must(t, ann.SendRaw([]byte(bad)))
		time.Sleep(600 * time.Millisecond) // stay under the message rate
	}
	must(t, ann.Until(ctx, func() bool {
		n := 0
		for _, o := range ann.Events() {
			if o.Type == call.TypeError && o.Code == call.CodeBadMessage {
				n++
			}
		}
		return n == 5
	}))
	// Too fast: past the burst, an error and the connection stays; far
	// past it, closed.
	rateErr := func(o call.Out) bool { return o.Type == call.TypeError && o.Code == call.CodeRateLimited }
	for n := 0; ; n++ {
		if n > 10 {
			t.Fatal("no rate-limit error after 10 messages in a burst of 4")
		}
		_ = ann.Send(call.Msg{Type: call.TypePing})
		if evs := ann.Events(); rateErr(evs[len(evs)-1]) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // tokens come back
	must(t, ann.Send(call.Msg{Type: call.TypePing, Ref: "after"}))
	if _, err := ann.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypePong && o.Ref == "after" }); err != nil {
		t.Fatalf("no pong after the rate limit passed: %v", err)
	}
	for range 20 {
		_ = ann.Send(call.Msg{Type: call.TypePing})
	}
	if cl, err := ann.WaitFor(ctx, isType(call.TypeClosed)); err != nil || cl.Code != call.CodeRateLimited {
		t.Fatalf("a flood: %+v %v, want closed with %s", cl, err, call.CodeRateLimited)
	}
	// A message over the size limit closes the connection.
	big := `{"type":"chat","text":"` + strings.Repeat("x", call.MaxMessageBytes) + `"}`
	_ = bob.SendRaw([]byte(big))
	if _, err := bob.WaitFor(ctx, func(o call.Out) bool { return false }); err == nil || ctx.Err() != nil {
		t.Fatalf("connection not closed after an oversized message: %v", err)
	}
	if got := testutil.ToFloat64(counter(t, e.reg, "seedcast_call_refused_total", "reason", call.CodeRoomFull)); got != 1 {
		t.Errorf("refused{room-full} = %v", got)
	}
	// Rooms cap: two open (this call and the voice channel? no: it closed
	// when empty), a new call and one more.
	c1 := e.dial(ctx, client.Params{URL: e.url("/call/" + call.NewRoomID() + "/ws"), Name: "a", API: e.api})
	_ = c1
	if _, err := client.Dial(ctx, client.Params{URL: e.url("/call/" + call.NewRoomID() + "/ws"), Name: "b", API: e.api}); err == nil || !strings.Contains(err.Error(), call.CodeServerFull) {
		t.Fatalf("a room past the cap: %v", err)
	}
	// Not a room id.
	if _, resp, err := websocket.Dial(ctx, e.url("/call/short/ws"), nil); err == nil || resp.StatusCode != 404 {
		t.Fatalf("bad room id: %v", err)
	}
}

func TestVoiceChannel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := newEnv(t, call.Limits{})
	vp := func(name string) client.Params {
		return client.Params{URL: e.url("/voice/lounge/ws"), Name: name, API: e.api, AutoSubscribe: true}
	}
	loud := &atomic.Int32{}
	loud.Store(120)
	a := e.dial(ctx, vp("Ada"))
	b := e.dial(ctx, vp("Bo")) // no knocking in voice channels
	if a.Welcome().Kind != call.KindVoice || b.Welcome().Participant == "" || a.Welcome().Host {
		t.Fatalf("voice welcomes %+v / %+v", a.Welcome(), b.Welcome())
	}
	if err := b.Publish(ctx, client.PublishOptions{Video: true}); err == nil || !strings.Contains(err.Error(), call.CodeAudioOnly) {
		t.Fatalf("video in a voice channel: %v", err)
	}
	c := e.dial(ctx, vp("Cy"))
	must(t, c.Publish(ctx, client.PublishOptions{Audio: true, Level: func() uint8 { return uint8(loud.Load()) }}))
	must(t, a.Until(ctx, func() bool {
		for id, rx := range a.RxAll() {
			if strings.HasPrefix(id, c.ID()) && rx.Packets.Load() > 25 {
				return true
			}
		}
		return false
	}))
	loud.Store(10)
	sp, err := a.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeSpeaker && o.Dominant == c.ID() })
	must(t, err)
	_ = sp
	if _, err := a.WaitFor(ctx, func(o call.Out) bool { return o.Type == call.TypeLevels && o.Levels[c.ID()] > 0.5 }); err != nil {
		t.Fatal(err)
	}
	ci := e.srv.Channel("lounge")
	if len(ci.Members) != 3 || len(ci.Speaking) != 1 || ci.Speaking[0] != c.ID() {
		t.Fatalf("channel %+v: want 3 members, Cy speaking", ci)
	}
}
