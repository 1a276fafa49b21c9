package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/seedcast/seedcast/sfu"
	"github.com/seedcast/seedcast/sfu/call"
	"github.com/seedcast/seedcast/sfu/call/client"
)

// callTab is one participant's tab on a meeting page.
type callTab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu     sync.Mutex
	errors []string // uncaught exceptions and console errors
}

func openTab(t *testing.T, bctx context.Context, name, url string) *callTab {
	t.Helper()
	tab := &callTab{t: t, name: name}
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			tab.mu.Lock()
			tab.errors = append(tab.errors, fmt.Sprintf("%s %v", ev.ExceptionDetails.Text, ev.ExceptionDetails.Exception))
			tab.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				tab.mu.Lock()
				tab.errors = append(tab.errors, strings.Join(parts, " "))
				tab.mu.Unlock()
			}
		}
	}))
	t.Cleanup(cancel)
	tab.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: open %s: %v", name, url, err)
	}
	return tab
}

// eval runs js in the tab and decodes its result into out (nil: ignore).
func (tab *callTab) eval(js string, out any) {
	tab.t.Helper()
	raw, err := chromedp.Run(tab.ctx, chromedp.Evaluate[json.RawMessage](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tab.t.Fatalf("%s: %s: %v (page errors: %v)", tab.name, js, err, tab.pageErrors())
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			tab.t.Fatalf("%s: %s: decode %s: %v", tab.name, js, raw, err)
		}
	}
}

func (tab *callTab) pageErrors() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.errors...)
}

// until evaluates cond (a JS boolean expression) every 100 ms until true.
func (tab *callTab) until(ctx context.Context, what, cond string) time.Duration {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second) // a step, not the test
	defer cancel()
	start := time.Now()
	for {
		var ok bool
		raw, err := chromedp.Run(tab.ctx, chromedp.Evaluate[json.RawMessage]("!!("+cond+")", chromedp.EvalAwaitPromise))
		switch {
		case err == nil:
			_ = json.Unmarshal(raw, &ok)
		case strings.Contains(err.Error(), "navigated") || strings.Contains(err.Error(), "context"):
			// The page is changing (a call moves to its call page): ask again.
		default:
			tab.t.Fatalf("%s: %s: %v (page errors: %v)", tab.name, cond, err, tab.pageErrors())
		}
		if ok {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			var dump any
			tab.eval("window.__call ? {me: __call.client && __call.client.me, stats: __call.stats ? __call.stats() : null, ring: __call.ring && __call.ring.state, held: __call.held, presenceError: __call.presenceError} : null", &dump)
			tab.t.Fatalf("%s: timed out waiting for %s (state %v; page errors %v)", tab.name, what, dump, tab.pageErrors())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type tileStat struct {
	Key      string `json:"key"`
	Track    string `json:"track"`
	Frames   int    `json:"frames"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	CamOff   bool   `json:"camOff"`
	Speaking bool   `json:"speaking"`
	Spot     bool   `json:"spot"`
	Shown    string `json:"shown"`
}

func (tab *callTab) tiles() map[string]tileStat {
	tab.t.Helper()
	var ts []tileStat
	tab.eval("__call.stats()", &ts)
	out := map[string]tileStat{}
	for _, x := range ts {
		out[x.Key] = x
	}
	return out
}

func (tab *callTab) id() string {
	var id string
	tab.eval("__call.client.me", &id)
	return id
}

// join fills the lobby and clicks Join.
func (tab *callTab) join(name string) {
	tab.eval(fmt.Sprintf(`(() => { document.getElementById('name').value = %q; document.getElementById('join').click(); return true; })()`, name), nil)
}

// TestBrowserCall runs a meeting of four Chromium tabs (fake camera and
// microphone) and a Go participant on `seedcast serve`: the lobby, the
// waiting room, video and audio both ways, mute, camera off, screen share,
// tile size and layers, the dominant speaker, and a resume after the
// signalling connection is killed; then a voice channel with push-to-talk.
func TestBrowserCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	base := startServer(t, "--webrtc-loopback-only", "--voice-channels", "lounge", "--log-level", "debug") // debug: the layer allocations, when a step fails
	bctx := chromium(t, ctx)

	// Ann opens /call: a new room, and its lobby with her camera preview.
	ann := openTab(t, bctx, "ann", base+"/call")
	var url string
	ann.eval("location.href", &url)
	room := url[strings.LastIndex(url, "/")+1:]
	if !call.ValidRoomID(room) {
		t.Fatalf("/call led to %s, not a fresh room", url)
	}
	ann.until(ctx, "the lobby's camera preview", "document.getElementById('preview').videoWidth > 0")
	screenshot(t, ann.ctx, "call-lobby", 1280, 800)
	ann.join("Ann Host")
	ann.until(ctx, "Ann in the room", "!document.getElementById('room').hidden && __call.client.host")

	// Bob, Cleo and Dev knock; Ann lets them in. Eve knocks and is denied.
	others := map[string]*callTab{}
	for _, name := range []string{"Bob", "Cleo", "Dev"} {
		tab := openTab(t, bctx, strings.ToLower(name), url)
		tab.until(ctx, name+"'s lobby", "document.getElementById('preview').videoWidth > 0")
		tab.join(name)
		tab.until(ctx, name+" waiting", "!document.getElementById('waiting').hidden")
		ann.until(ctx, "a knock from "+name, fmt.Sprintf("[...__call.knocks.values()].some(k => k.name === %q)", name))
		ann.eval(fmt.Sprintf("[...__call.knocks.values()].filter(k => k.name === %q).forEach(k => __call.client.hostAction('admit', k.id))", name), nil)
		tab.until(ctx, name+" in the room", "!document.getElementById('room').hidden")
		others[name] = tab
	}
	eve := openTab(t, bctx, "eve", url)
	eve.until(ctx, "Eve's lobby", "document.getElementById('preview').videoWidth > 0")
	eve.join("Eve")
	ann.until(ctx, "Eve's knock", "[...__call.knocks.values()].some(k => k.name === 'Eve')")
	// Eve's Deny button (not another knock's that has not gone yet).
	ann.eval("[...document.querySelectorAll('#knocks .knock')].find((k) => k.textContent.startsWith('Eve')).querySelector('.secondary').click()", nil)
	eve.until(ctx, "Eve told she was denied", "!document.getElementById('ended').hidden && document.getElementById('ended-text').textContent.includes('did not let you in')")
	_ = chromedp.Do(eve.ctx, chromedp.Navigate("about:blank"))

	bob, cleo, dev := others["Bob"], others["Cleo"], others["Dev"]
	tabs := []*callTab{ann, bob, cleo, dev}

	// Everyone decodes everyone else's video, and hears audio.
	for _, tab := range tabs {
		tab.until(ctx, "three remote videos playing", `__call.stats().filter(s => !s.key.includes(':') && s.key !== __call.client.me && s.frames > 15).length === 3`)
	}
	before := map[*callTab]map[string]tileStat{}
	audio := map[*callTab]int{}
	for _, tab := range tabs {
		before[tab] = tab.tiles()
		var n int
		tab.eval("__call.audioIn()", &n)
		audio[tab] = n
	}
	// Frames and packets accumulate. Four tabs encoding and decoding on
	// two cores (and the race detector in CI) get a few frames a second
	// on some tiles. A publisher's browser short of CPU drops its upper
	// layers for seconds; a subscriber left on such a layer froze 3 to
	// 8 s until the server moved it to one that flows (it now does within
	// about 1.5 s; TestCallLayerDropped in package sfu checks that
	// exactly). The checks: every tile moves, and no tile stalls more
	// than 5 s. Beside two CPU hogs the longest stall was 0-1 s in most
	// runs and 2.2 and 3.6 s in two, with no layer switch or stopped layer
	// on the server then: a starved tab.
	stalls, every := watchTiles(t, ctx, tabs, 8*time.Second)
	worst, worstAt := time.Duration(0), ""
	for k, d := range stalls {
		if d > worst {
			worst, worstAt = d, k
		}
	}
	t.Logf("longest tile stall in 8 s: %v (%s; sampled every %v)", worst.Round(10*time.Millisecond), worstAt, every.Round(10*time.Millisecond))
	if worst > 5*time.Second+every {
		t.Errorf("tile %s stalled %v (want ≤ 5 s)", worstAt, worst.Round(10*time.Millisecond))
	}
	for _, tab := range tabs {
		after := tab.tiles()
		me := tab.id()
		for k, s := range after {
			if k == me {
				continue
			}
			if s.Frames < before[tab][k].Frames+4 {
				t.Errorf("%s: tile %s decoded %d → %d frames in 8 s", tab.name, k, before[tab][k].Frames, s.Frames)
			}
		}
		var n int
		tab.eval("__call.audioIn()", &n)
		if n <= audio[tab]+50 {
			t.Errorf("%s: inbound audio packets %d → %d in 8 s", tab.name, audio[tab], n)
		}
	}
	screenshot(t, ann.ctx, "call-grid-4", 1280, 800)

	// Bob mutes: every other tab shows it within a second.
	bobID := bob.id()
	bob.eval("document.getElementById('mic').click()", nil)
	for _, tab := range []*callTab{ann, cleo, dev} {
		d := tab.until(ctx, "Bob muted", fmt.Sprintf("__call.client.members.get(%q).micMuted === true", bobID))
		if d > time.Second {
			t.Errorf("%s saw Bob's mute after %v (want ≤ 1 s)", tab.name, d)
		}
	}
	bob.until(ctx, "Bob's microphone released", "__call.client.local.microphone === null")

	// Cleo turns her camera off: her capture stops, others show her avatar.
	cleoID := cleo.id()
	cleo.eval("window.__camTrack = __call.client.local.camera; document.getElementById('cam').click()", nil)
	cleo.until(ctx, "Cleo's camera released", "__camTrack.readyState === 'ended' && __call.client.local.camera === null")
	ann.until(ctx, "Cleo's avatar", fmt.Sprintf("__call.stats().some(s => s.key === %q && s.camOff)", cleoID))

	// Dev shares his screen: a tile on every participant; stopping it
	// removes the tile everywhere.
	devID := dev.id()
	dev.eval("document.getElementById('screen').click()", nil)
	for _, tab := range []*callTab{ann, bob, cleo} {
		tab.until(ctx, "Dev's screen share", fmt.Sprintf("__call.stats().some(s => s.key === %q && s.frames > 5)", devID+":screen"))
	}
	ann.until(ctx, "the spotlight on the share", fmt.Sprintf("__call.stats().some(s => s.key === %q && s.spot)", devID+":screen"))
	screenshot(t, ann.ctx, "call-spotlight-screen", 1280, 800)
	dev.eval("document.getElementById('screen').click()", nil)
	for _, tab := range []*callTab{ann, bob, cleo} {
		tab.until(ctx, "the share's tile gone", fmt.Sprintf("!__call.stats().some(s => s.key === %q)", devID+":screen"))
	}

	// Cleo and Dev leave: their tiles go from every page, and their
	// tracks from the server.
	for _, tab := range []*callTab{cleo, dev} {
		tab.eval("document.getElementById('leave').click(); true", nil)
		tab.until(ctx, tab.name+" out", "!document.getElementById('ended').hidden")
	}
	for _, tab := range []*callTab{ann, bob} {
		tab.until(ctx, "two left in the call", "__call.client.members.size === 2 && __call.stats().length === 2")
	}

	// Tile size: in the grid Ann gets Bob's video large; in the spotlight
	// on Ann herself, Bob's tile is a thumbnail and his video drops to a lower
	// layer; back in the grid it grows again.
	ann.eval("__call.layout = 'grid'; __call.client.dispatchEvent(new CustomEvent('members')); true", nil)
	ann.until(ctx, "Bob's video at a large layer", fmt.Sprintf("__call.stats().some(s => s.key === %q && s.width >= 640)", bobID))
	large := ann.tiles()[bobID].Width
	ann.eval("document.querySelector(`.tile[data-key=\"${__call.client.me}\"]`).click(); true", nil) // pin herself
	d := ann.until(ctx, "Bob's thumbnail at a lower layer", fmt.Sprintf("__call.stats().some(s => s.key === %q && s.width > 0 && s.width < %d)", bobID, large))
	small := ann.tiles()[bobID]
	t.Logf("Bob's video on Ann's side: %d px wide in the grid, %d px (shown at %s) %v after his tile shrank", large, small.Width, small.Shown, d.Round(100*time.Millisecond))
	ann.eval("document.getElementById('layout').click(); true", nil) // back to the grid
	d = ann.until(ctx, "Bob's video large again", fmt.Sprintf("__call.stats().some(s => s.key === %q && s.width >= %d)", bobID, large))
	t.Logf("back to %d px %v after the tile grew", large, d.Round(100*time.Millisecond))

	// The dominant speaker: a Go participant whose audio is loud.
	var invite string
	ann.eval("__call.client.inviteLink().then(l => new URL(l).searchParams.get('invite'))", &invite)
	level := &atomic.Int32{}
	level.Store(127)
	wsBase := "ws" + strings.TrimPrefix(base, "http")
	gc, err := client.Dial(ctx, client.Params{URL: wsBase + "/call/" + room + "/ws", Name: "Loud Bot", Invite: invite,
		API: client.NewAPI(sfu.LoopbackICE(4 * time.Second).SettingEngine())})
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Close()
	if err := gc.Publish(ctx, client.PublishOptions{Audio: true, Level: func() uint8 { return uint8(level.Load()) }}); err != nil {
		t.Fatal(err)
	}
	ann.eval("__call.layout = 'auto'; true", nil)
	level.Store(5)
	ann.until(ctx, "the bot as dominant speaker", fmt.Sprintf("__call.dominant === %q && __call.stats().some(s => s.key === %q && s.speaking)", gc.ID(), gc.ID()))
	ann.eval("__call.layout = 'spotlight'; __call.client.dispatchEvent(new CustomEvent('members')); true", nil)
	ann.until(ctx, "the bot in the spotlight", fmt.Sprintf("__call.stats().some(s => s.key === %q && s.spot)", gc.ID()))
	level.Store(127)
	ann.eval("__call.layout = 'auto'; __call.client.dispatchEvent(new CustomEvent('members')); true", nil)

	// Bob's signalling is killed and stays down 2 s: he resumes with the
	// same id, and nobody sees him leave.
	ann.eval(`(() => { window.__lefts = []; const c = __call.client; const orig = c.onMessage.bind(c); c.onMessage = (m) => { if (m.type === 'left') __lefts.push(m.participant); orig(m); }; return true; })()`, nil)
	bob.eval("__call.client.dropSignalling(2000); true", nil)
	back := time.Now().Add(2 * time.Second) // when the network comes back
	bob.until(ctx, "Bob reconnecting", "document.getElementById('conn-state').textContent !== ''")
	bob.until(ctx, "Bob resumed", fmt.Sprintf("__call.client.me === %q && __call.client.lost === 0", bobID))
	resumed := time.Since(back)
	annID := ann.id()
	var bobFrames int
	bob.eval(fmt.Sprintf("__call.stats().find(s => s.key === %q).frames", annID), &bobFrames)
	bob.until(ctx, "Bob receiving after the resume", fmt.Sprintf("__call.stats().find(s => s.key === %q).frames > %d", annID, bobFrames+10))
	t.Logf("Bob resumed %v after the network came back (ICE restarted; 10 more frames decoded %v after that)",
		resumed.Round(100*time.Millisecond), (time.Since(back) - resumed).Round(100*time.Millisecond))
	if resumed > 3*time.Second {
		t.Errorf("resumed %v after the network came back, want ≤ 3 s", resumed)
	}
	var lefts []string
	ann.eval("__lefts", &lefts)
	for _, id := range lefts {
		if id == bobID {
			t.Errorf("Ann saw Bob leave during his resume")
		}
	}

	for _, tab := range tabs {
		if errs := tab.pageErrors(); len(errs) > 0 {
			t.Errorf("%s: page errors: %v", tab.name, errs)
		}
	}

	// A voice channel: two people, one on push-to-talk.
	v1 := openTab(t, bctx, "v1", base+"/voice/lounge")
	v2 := openTab(t, bctx, "v2", base+"/voice/lounge")
	v1.eval("document.getElementById('name').value = 'Vera'; document.getElementById('join').click(); true", nil)
	v1.until(ctx, "Vera in the channel", "window.__voice.client && __voice.client.me && document.querySelectorAll('#voice-members li').length === 1")
	v2.until(ctx, "Vera listed from outside", "document.querySelectorAll('#voice-members li').length === 1")
	v2.eval("document.querySelector('input[value=ptt]').click(); document.getElementById('name').value = 'Walt'; document.getElementById('join').click(); true", nil)
	v2.until(ctx, "Walt in, muted by push-to-talk", "__voice.client && __voice.client.me && __voice.client.local.microphone && __voice.client.local.microphone.enabled === false")
	v1.until(ctx, "two in the channel", "document.querySelectorAll('#voice-members li').length === 2")
	// A Go participant talks loudly: both pages show it speaking.
	bot, err := client.Dial(ctx, client.Params{URL: wsBase + "/voice/lounge/ws", Name: "Talker",
		API: client.NewAPI(sfu.LoopbackICE(4 * time.Second).SettingEngine())})
	if err != nil {
		t.Fatal(err)
	}
	defer bot.Close()
	if err := bot.Publish(ctx, client.PublishOptions{Audio: true, Level: func() uint8 { return 5 }}); err != nil {
		t.Fatal(err)
	}
	for _, tab := range []*callTab{v1, v2} {
		tab.until(ctx, "the talker speaking", fmt.Sprintf("document.querySelector('#voice-members li.speaking[data-id=%q]') !== null", bot.ID()))
	}
	// Walt holds Space: his microphone opens.
	v2.eval("document.dispatchEvent(new KeyboardEvent('keydown', {code: 'Space', key: ' '})); true", nil)
	v2.until(ctx, "Walt's microphone open while Space is held", "__voice.client.local.microphone.enabled === true")
	screenshot(t, v2.ctx, "voice-channel", 1000, 700)
	v2.eval("document.dispatchEvent(new KeyboardEvent('keyup', {code: 'Space', key: ' '})); true", nil)
	v2.until(ctx, "Walt's microphone closed on release", "__voice.client.local.microphone.enabled === false")
	for _, tab := range []*callTab{v1, v2} {
		if errs := tab.pageErrors(); len(errs) > 0 {
			t.Errorf("%s: page errors: %v", tab.name, errs)
		}
	}
}

// watchTiles samples every remote tile's decoded frame count on every tab
// for d and returns, per tab and tile ("tab/tile"), the longest time its
// count did not grow (a stall, measured to within the time between two
// samples), and that time on average.
func watchTiles(t *testing.T, ctx context.Context, tabs []*callTab, d time.Duration) (map[string]time.Duration, time.Duration) {
	t.Helper()
	type seen struct {
		frames int
		at     time.Time
	}
	last := map[string]seen{}
	out := map[string]time.Duration{}
	me := map[*callTab]string{}
	for _, tab := range tabs {
		me[tab] = tab.id()
	}
	start := time.Now()
	rounds := 0
	for ; time.Since(start) < d; rounds++ {
		for _, tab := range tabs {
			for k, s := range tab.tiles() {
				if k == me[tab] || strings.Contains(k, ":") {
					continue
				}
				key := tab.name + "/" + k
				now := time.Now()
				prev, ok := last[key]
				if !ok || s.Frames != prev.frames {
					last[key] = seen{s.Frames, now}
					continue
				}
				out[key] = max(out[key], now.Sub(prev.at))
			}
		}
		select {
		case <-ctx.Done():
			return out, d
		case <-time.After(100 * time.Millisecond):
		}
	}
	return out, time.Since(start) / time.Duration(max(rounds, 1))
}
