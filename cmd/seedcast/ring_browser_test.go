package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// identityOf makes the tab's browser identity (named name) and returns its
// key and contact link.
func identityOf(tab *callTab, name string) (key, link string) {
	var out struct{ Key, Link string }
	tab.eval(fmt.Sprintf(`(async () => {
		const id = await import('/assets/js/identity.js');
		const me = await id.identity();
		await id.setName(%q);
		return { key: me.key, link: await id.contactLink() };
	})()`, name), &out)
	return out.Key, out.Link
}

// addContact adds a contact link in the tab's browser.
func addContact(tab *callTab, link string) {
	tab.eval(fmt.Sprintf(`(async () => {
		const id = await import('/assets/js/identity.js');
		await id.addContact(id.parseContactLink(%q));
		return true;
	})()`, link), nil)
}

func (tab *callTab) reload(url string) {
	tab.t.Helper()
	if err := chromedp.Do(tab.ctx, chromedp.Navigate(url)); err != nil {
		tab.t.Fatalf("%s: open %s: %v", tab.name, url, err)
	}
}

// within checks that cond becomes true within d, and reports how long it
// took (a state both sides must see quickly).
func (tab *callTab) within(ctx context.Context, d time.Duration, what, cond string) {
	tab.t.Helper()
	took := tab.until(ctx, what, cond)
	if took > d {
		tab.t.Errorf("%s: %s took %v (want within %v)", tab.name, what, took.Round(time.Millisecond), d)
	}
}

const onCallPage = `location.pathname.startsWith('/call/') && window.__call && __call.client && !document.getElementById('room').hidden`

// TestBrowserRing: two people who exchanged contact links ring each other
// in Chromium. Bob has two devices (two tabs): both ring, one answers, the
// other stops. The call is end-to-end encrypted (SFrame in encoded
// transforms): both decode each other's video and the tiles say so; chat
// is sealed, and the server's history on disk holds no plaintext. Hold,
// resume and hang-up reach both sides within 1 s. A decline ends the next
// call as declined; a stranger cannot ring Bob at all.
func TestBrowserRing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	chats := t.TempDir()
	base := startServer(t, "--webrtc-loopback-only", "--chat-dir", chats, "--log-level", "debug")
	actx := chromium(t, ctx) // Alice's browser
	bctx := chromium(t, ctx) // Bob's browser (two tabs: two devices)
	mctx := chromium(t, ctx) // Mallory's

	alice := openTab(t, actx, "alice", base+"/")
	bob1 := openTab(t, bctx, "bob1", base+"/")
	mallory := openTab(t, mctx, "mallory", base+"/")
	aKey, aLink := identityOf(alice, "Alice")
	bKey, bLink := identityOf(bob1, "Bob")
	identityOf(mallory, "Mallory")
	addContact(alice, bLink)
	addContact(bob1, aLink)
	addContact(mallory, bLink) // Bob never adds Mallory
	// The pages hold presence once an identity exists: open them again.
	alice.reload(base + "/")
	bob1.reload(base + "/")
	mallory.reload(base + "/")
	bob2 := openTab(t, bctx, "bob2", base+"/")

	presence := `(await import('/assets/js/presence.js')).Presence.get()`
	alice.until(ctx, "Bob online for Alice", fmt.Sprintf(`(async () => (await %s)?.online.has(%q))()`, presence, bKey))
	bob2.until(ctx, "Alice online for Bob's second device", fmt.Sprintf(`(async () => (await %s)?.online.has(%q))()`, presence, aKey))

	mallory.until(ctx, "Mallory's presence", `(async () => (await (await import('/assets/js/presence.js')).Presence.get())?.state === 'online')()`)
	// The stranger rings Bob: refused as not reachable; Bob hears nothing.
	var refused string
	mallory.eval(fmt.Sprintf(`(async () => {
		try { await (await import('/assets/js/ringer.js')).startCall({ key: %q, name: 'Bob' }); return 'rang'; }
		catch (e) { return e.code || e.message; }
	})()`, bKey), &refused)
	if refused != "unavailable" {
		t.Fatalf("a stranger's ring: %q, want unavailable", refused)
	}

	// Alice rings Bob: both of Bob's devices ring.
	alice.eval(fmt.Sprintf(`(import('/assets/js/ringer.js').then((r) => { r.startCall({ key: %q, name: 'Bob' }, { video: true }); return true; }))`, bKey), nil)
	alice.until(ctx, "Alice's outgoing card", `document.querySelector('.ring-card.outgoing .ring-sub')?.textContent === 'Calling…'`)
	for _, b := range []*callTab{bob1, bob2} {
		b.until(ctx, "the incoming prompt", `document.querySelector('.ring-card.incoming .ring-name')?.textContent === 'Alice'`)
	}
	var n int
	mallory.eval(`document.querySelectorAll('.ring-card').length`, &n)
	if n != 1 { // the card saying Bob is not reachable
		t.Fatalf("the stranger's page shows %d ring cards", n)
	}
	screenshot(t, bob2.ctx, "ring-incoming", 1280, 800)
	screenshot(t, alice.ctx, "ring-outgoing", 1280, 800)

	// Bob answers on his first device; the second stops ringing within 1 s.
	bob1.eval(`document.querySelector('.ring-card.incoming .ring-btn.answer').click(), true`, nil)
	bob2.within(ctx, time.Second, "the other device stops ringing", `!document.querySelector('.ring-card.incoming:not(.leaving)')`)

	// Both land in the call page, in the call's room, encrypted.
	alice.until(ctx, "Alice in the call", onCallPage)
	bob1.until(ctx, "Bob in the call", onCallPage)
	both := []*callTab{alice, bob1}
	for _, tab := range both {
		tab.until(ctx, "the other's video decoding", `__call.stats().some((s) => s.key !== __call.client.me && s.frames > 20)`)
		tab.until(ctx, "the tiles say end-to-end encrypted", `[...document.querySelectorAll('#stage .tile')].length === 2 && [...document.querySelectorAll('#stage .tile')].every((el) => el.dataset.e2ee === 'decrypting' || el.dataset.e2ee === 'encrypting')`)
		var st struct{ Decrypted, Failed int }
		tab.eval(`__call.e2eeStats().then((s) => Object.values(s).filter((x) => x.role === 'receive').reduce((a, x) => ({ decrypted: a.decrypted + x.decrypted, failed: a.failed + x.failed }), { decrypted: 0, failed: 0 }))`, &st)
		if st.Decrypted < 20 || st.Failed > 0 {
			t.Fatalf("%s: frames decrypted %d, failed %d", tab.name, st.Decrypted, st.Failed)
		}
	}
	alice.until(ctx, "the 1:1 layout", `document.getElementById('stage').classList.contains('one-to-one')`)
	screenshot(t, alice.ctx, "ring-call-1to1", 1280, 800)

	// A blip: Bob's signalling connection drops for 2 s; he resumes and the
	// call goes on (the server's watchdog waits for him, nobody is told).
	bob1.eval(`__call.client.dropSignalling(2000), true`, nil)
	bob1.until(ctx, "Bob reconnecting", `!document.getElementById('conn-state').hidden`)
	bob1.until(ctx, "Bob resumed", `document.getElementById('conn-state').hidden && __call.client.ws?.readyState === 1`)
	var frames0 int
	alice.eval(`__call.stats().filter((s) => s.key !== __call.client.me).reduce((a, s) => a + s.frames, 0)`, &frames0)
	alice.until(ctx, "Bob's video still moving", fmt.Sprintf(`__call.stats().filter((s) => s.key !== __call.client.me).reduce((a, s) => a + s.frames, 0) > %d`, frames0+30))
	for _, tab := range both {
		var st string
		tab.eval(`__call.ring.state`, &st)
		if st != "active" {
			t.Fatalf("%s: after the blip the call is %q", tab.name, st)
		}
	}

	// Sealed chat: Bob reads it; the server's history has ciphertext only.
	const secret = "the eagle lands at noon"
	alice.eval(fmt.Sprintf(`__call.client.chat(%q).then(() => true)`, secret), nil)
	bob1.until(ctx, "Bob reads Alice's message", fmt.Sprintf(`[...document.querySelectorAll('#chat-log li p')].some((p) => p.textContent === %q)`, secret))
	files, _ := filepath.Glob(filepath.Join(chats, "*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("chat history files: %v", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "eagle") || !strings.Contains(string(raw), `"sealed"`) {
		t.Fatalf("the server's chat history: %s", raw)
	}

	// Hold and resume, seen on both sides within 1 s.
	for _, tab := range both {
		tab.until(ctx, "the call active", `__call.ring?.state === 'active'`)
	}
	alice.eval(`document.getElementById('hold').click(), true`, nil)
	alice.within(ctx, time.Second, "Alice sees the hold", `document.getElementById('ring-state').textContent.includes('On hold')`)
	bob1.within(ctx, time.Second, "Bob sees the hold", `document.getElementById('ring-state').textContent.includes('Alice put the call on hold') && document.getElementById('stage').classList.contains('held')`)
	screenshot(t, bob1.ctx, "ring-call-held", 1280, 800)
	alice.eval(`document.getElementById('hold').click(), true`, nil)
	for _, tab := range both {
		tab.within(ctx, time.Second, "the call resumed", `document.getElementById('ring-state').hidden && !document.getElementById('stage').classList.contains('held')`)
	}

	// Bob hangs up: Alice's page says so within 1 s.
	bob1.eval(`document.getElementById('leave').click(), true`, nil)
	alice.within(ctx, time.Second, "Alice told the call ended", `!document.getElementById('ended').hidden`)

	// Next call: Bob declines on his second device; Alice's card says so.
	alice.reload(base + "/")
	bob1.reload(base + "/")
	alice.until(ctx, "Bob online again", fmt.Sprintf(`(async () => (await %s)?.online.has(%q))()`, presence, bKey))
	alice.eval(fmt.Sprintf(`(import('/assets/js/ringer.js').then((r) => { r.startCall({ key: %q, name: 'Bob' }, { video: false }); return true; }))`, bKey), nil)
	bob2.until(ctx, "the second call rings", `!!document.querySelector('.ring-card.incoming')`)
	bob2.eval(`document.querySelector('.ring-card.incoming .ring-btn.decline').click(), true`, nil)
	alice.within(ctx, time.Second, "Alice told Bob declined", `document.querySelector('.ring-card.outgoing.done .ring-sub')?.textContent === 'Declined'`)
	bob1.within(ctx, time.Second, "Bob's other device stops", `!document.querySelector('.ring-card.incoming:not(.leaving)')`)

	// A third contact: Alice calls Bob again and adds Carol, who gets the
	// call's key in a box sealed for her and decodes both; when Bob hangs
	// up, the call goes on between Alice and Carol.
	cctx := chromium(t, ctx)
	carol := openTab(t, cctx, "carol", base+"/")
	cKey, cLink := identityOf(carol, "Carol")
	addContact(carol, aLink)
	addContact(alice, cLink)
	carol.reload(base + "/")
	alice.until(ctx, "Carol online for Alice", fmt.Sprintf(`(async () => (await %s)?.online.has(%q))()`, presence, cKey))
	alice.eval(`document.querySelector('.ring-card .ring-btn')?.click(), true`, nil) // close the declined card
	alice.eval(fmt.Sprintf(`(import('/assets/js/ringer.js').then((r) => { r.startCall({ key: %q, name: 'Bob' }, { video: true }); return true; }))`, bKey), nil)
	bob1.until(ctx, "the third call rings", `!!document.querySelector('.ring-card.incoming .ring-btn.answer')`)
	bob1.eval(`document.querySelector('.ring-card.incoming .ring-btn.answer').click(), true`, nil)
	alice.until(ctx, "Alice in the third call", onCallPage+` && __call.ring?.state === 'active'`)
	bob1.until(ctx, "Bob in the third call", onCallPage)
	alice.eval(`document.getElementById('add-person').click(), true`, nil)
	alice.until(ctx, "Carol in the add list", `[...document.querySelectorAll('#add-list button')].some((b) => b.textContent === 'Carol' && !b.disabled)`)
	alice.eval(`[...document.querySelectorAll('#add-list button')].find((b) => b.textContent === 'Carol').click(), true`, nil)
	carol.until(ctx, "Carol's prompt", `document.querySelector('.ring-card.incoming .ring-sub')?.textContent.includes('group call')`)
	carol.eval(`document.querySelector('.ring-card.incoming .ring-btn.answer').click(), true`, nil)
	carol.until(ctx, "Carol in the call", onCallPage)
	carol.until(ctx, "Carol decodes Alice and Bob", `__call.stats().filter((s) => s.key !== __call.client.me && s.frames > 20).length === 2`)
	carol.until(ctx, "Carol's tiles decrypt", `[...document.querySelectorAll('#stage .tile:not(.self)')].every((el) => el.dataset.e2ee === 'decrypting')`)
	screenshot(t, carol.ctx, "ring-call-group", 1280, 800)
	bob1.eval(`document.getElementById('leave').click(), true`, nil)
	alice.until(ctx, "Alice told Bob's call ended, the call going on", `[...document.querySelectorAll('.toast span')].some((s) => s.textContent.includes('the call goes on'))`)
	var aliceIn bool
	alice.eval(`document.getElementById('ended').hidden && !document.getElementById('room').hidden`, &aliceIn)
	if !aliceIn {
		t.Fatal("Alice was put out of the call when Bob hung up, with Carol still in it")
	}
	carol.until(ctx, "Carol still decodes Alice", `__call.stats().filter((s) => s.key !== __call.client.me && s.frames > 20).length === 1`)

	// The history remembers both calls.
	var hist []struct{ State, Reason string }
	alice.eval(`import('/assets/js/identity.js').then((id) => id.history())`, &hist)
	reasons := map[string]int{}
	for _, h := range hist {
		reasons[h.Reason]++
	}
	if len(hist) != 4 || reasons["declined"] != 1 || reasons["hangup"] != 2 {
		t.Fatalf("Alice's call history: %+v", hist)
	}
	for _, tab := range []*callTab{alice, bob1, bob2, mallory, carol} {
		if errs := tab.pageErrors(); len(errs) > 0 {
			t.Errorf("%s: page errors: %v", tab.name, errs)
		}
	}
}
