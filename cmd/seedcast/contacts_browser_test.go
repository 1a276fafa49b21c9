package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// fakeContactLink is a contact link of a person who is never online: two
// random 32-byte keys and a name.
func fakeContactLink(base, name string) string {
	k, dh := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(k)
	_, _ = rand.Read(dh)
	enc := base64.RawURLEncoding
	return fmt.Sprintf("%s/contacts#add=v1.%s.%s.%s", base, enc.EncodeToString(k), enc.EncodeToString(dh), enc.EncodeToString([]byte(name)))
}

// contactsPage drives one browser's /contacts page.
type contactsPage struct{ *callTab }

func (p contactsPage) text(id string) string {
	var s string
	p.eval(fmt.Sprintf(`document.getElementById(%q).textContent.trim()`, id), &s)
	return s
}

func (p contactsPage) value(id string) string {
	var s string
	p.eval(fmt.Sprintf(`document.getElementById(%q).value`, id), &s)
	return s
}

func (p contactsPage) click(selector string) {
	p.t.Helper()
	var ok bool
	p.eval(fmt.Sprintf(`(() => { const b = document.querySelector(%q); if (!b || b.disabled || b.offsetParent === null) return false; b.click(); return true; })()`, selector), &ok)
	if !ok {
		p.t.Fatalf("%s: no enabled, visible %s to click (page errors %v)", p.name, selector, p.pageErrors())
	}
}

// row is a JS expression for the contact list's row of a name (or undefined).
func row(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#contact-list li')].find(li => li.querySelector('.name').textContent === %q)`, name)
}

// names lists the contact list's names, in order.
func (p contactsPage) names() []string {
	var ns []string
	p.eval(`[...document.querySelectorAll('#contact-list li .name')].map(n => n.textContent)`, &ns)
	return ns
}

// paste puts a link in the add form and submits it.
func (p contactsPage) paste(link string) {
	p.eval(fmt.Sprintf(`(() => { document.getElementById('add-link').value = %q; document.getElementById('add-form').requestSubmit(); return true; })()`, link), nil)
}

// addError waits for the add form's error and returns it.
func (p contactsPage) addError(ctx context.Context) string {
	p.until(ctx, "an error under the add form", `!document.getElementById('add-error').hidden && document.getElementById('add-error').textContent`)
	return p.text("add-error")
}

// firstRun fills the first-run card.
func (p contactsPage) firstRun(ctx context.Context, name string) {
	p.until(ctx, "the first-run card", `!document.getElementById('first-run').hidden`)
	p.eval(fmt.Sprintf(`(() => { document.getElementById('first-name').value = %q; document.getElementById('first-form').requestSubmit(); return true; })()`, name), nil)
	p.until(ctx, "the address book", `!document.getElementById('book').hidden && document.getElementById('my-link').value && document.getElementById('me-fp').textContent`)
}

// TestBrowserContacts runs the contacts page in two Chromium browsers of
// their own (two profiles, two identities): Alice names herself on the
// first-run card; Bob opens her contact link, sees her name and the
// fingerprint her page shows, and adds her; she adds his link; both then
// list each other as reachable, through presence. Renaming persists across
// a reload; bad, own and duplicate links are refused with clear errors; a
// ring shows in both histories in plain words; removing a contact takes
// them off the list, and the other side sees them become unreachable.
func TestBrowserContacts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	base := startServer(t, "--webrtc-loopback-only")

	// Alice's first visit: the first-run card, no account.
	alice := contactsPage{openTab(t, chromium(t, ctx), "alice", base+"/contacts")}
	alice.until(ctx, "the first-run card", `!document.getElementById('first-run').hidden`)
	if txt := alice.text("first-run"); !strings.Contains(txt, "no account") || !strings.Contains(txt, "this browser") {
		t.Errorf("the first-run card does not say there is no account and the identity stays in the browser: %q", txt)
	}
	screenshot(t, alice.ctx, "contacts-first-run", 1280, 800)
	alice.firstRun(ctx, "Alice")
	aliceLink, aliceFP := alice.value("my-link"), alice.text("me-fp")
	if !strings.HasPrefix(aliceLink, base+"/contacts#add=v1.") || alice.text("me-name") != "Alice" || len(aliceFP) != 19 {
		t.Fatalf("Alice's page: link %q, name %q, fingerprint %q", aliceLink, alice.text("me-name"), aliceFP)
	}
	alice.until(ctx, "the QR code of her link", `document.getElementById('qr').complete && document.getElementById('qr').naturalWidth > 100 &&
		document.getElementById('qr').src.includes(encodeURIComponent(document.getElementById('my-link').value))`)
	alice.until(ctx, "the empty state and the presence connection", `!document.getElementById('contacts-empty').hidden && document.getElementById('net').dataset.state === 'online'`)
	screenshot(t, alice.ctx, "contacts-empty", 1280, 800)

	// Bob, in another browser, opens her link: the confirmation card.
	bob := contactsPage{openTab(t, chromium(t, ctx), "bob", aliceLink)}
	bob.until(ctx, "the confirmation card", `!document.getElementById('confirm').hidden && document.getElementById('confirm-fp').textContent`)
	if got := bob.text("confirm-title"); got != "Add Alice to your contacts?" {
		t.Errorf("confirmation card title %q", got)
	}
	if got := bob.text("confirm-fp"); got != aliceFP {
		t.Errorf("Bob's card shows fingerprint %q, Alice's page %q", got, aliceFP)
	}
	screenshot(t, bob.ctx, "contacts-add-confirm", 1280, 800)
	bob.click("#confirm-yes")
	bob.until(ctx, "the card closed and the fragment cleared", `document.getElementById('confirm').hidden && location.hash === '' && location.pathname === '/contacts'`)
	bob.firstRun(ctx, "Bob")
	if !strings.Contains(bob.text("added"), "Alice is in your contacts") || !strings.Contains(bob.text("added"), "Send them your link") {
		t.Errorf("no reminder to send the link back: %q", bob.text("added"))
	}
	// Alice has not added Bob: he cannot call her, and the page says why.
	bob.until(ctx, "Alice listed, not reachable", row("Alice")+`?.querySelector('.status').textContent === 'Not reachable'`)
	var disabled bool
	bob.eval(row("Alice")+`.querySelector('.call-btn.video').disabled && `+row("Alice")+`.querySelector('.call-btn.video').title.includes('not added you')`, &disabled)
	if !disabled {
		t.Error("Bob's video call button is enabled, or does not say why not, before Alice added him")
	}
	bobLink := bob.value("my-link")

	// Alice adds Bob's link (pasted): both are then reachable, live.
	alice.paste(bobLink)
	alice.until(ctx, "the confirmation card for Bob", `!document.getElementById('confirm').hidden && document.getElementById('confirm-name').textContent === 'Bob'`)
	alice.click("#confirm-yes")
	start := time.Now()
	for _, p := range []struct {
		page contactsPage
		peer string
	}{{alice, "Bob"}, {bob, "Alice"}} {
		p.page.until(ctx, p.peer+" reachable", row(p.peer)+`?.classList.contains('online') && !`+row(p.peer)+`.querySelector('.call-btn.video').disabled && !`+row(p.peer)+`.querySelector('.call-btn.voice').disabled`)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("mutual contacts took %v to show as reachable", d)
	}

	// Two more contacts for Alice, never online: sorted after Bob, by name.
	for _, n := range []string{"Dev Shah", "Cleo Park"} {
		alice.paste(fakeContactLink(base, n))
		alice.until(ctx, "the confirmation card for "+n, fmt.Sprintf(`!document.getElementById('confirm').hidden && document.getElementById('confirm-name').textContent === %q`, n))
		alice.click("#confirm-yes")
		alice.until(ctx, n+" listed", row(n))
	}
	if got := strings.Join(alice.names(), ", "); got != "Bob, Cleo Park, Dev Shah" {
		t.Errorf("Alice's list: %s; want the reachable first, then by name", got)
	}

	// Errors: not a link, a broken one, her own, a duplicate.
	for _, tc := range []struct{ link, want string }{
		{"hello there", "not a Seedcast contact link"},
		{base + "/contacts#add=v1.abc.def.ghi", "32-byte"},
		{aliceLink, "your own contact link"},
		{bobLink, "Bob is already in your contacts"},
	} {
		alice.paste(tc.link)
		if got := alice.addError(ctx); !strings.Contains(got, tc.want) {
			t.Errorf("pasting %q: error %q, want %q", tc.link, got, tc.want)
		}
		var shown bool
		alice.eval(`!document.getElementById('confirm').hidden`, &shown)
		if shown {
			t.Errorf("pasting %q opened the confirmation card", tc.link)
		}
	}
	alice.eval(`document.getElementById('add-link').value = ''; document.getElementById('add-error').hidden = true`, nil)

	// A ring from Alice's Video call button reaches Bob; she cancels it:
	// missed for him, cancelled for her, in their recent calls.
	alice.click(`#contact-list li.online .call-btn.video`)
	bob.until(ctx, "Alice's ring in Bob's recent calls", `[...document.querySelectorAll('#history .call-row.incoming')].some(r => r.querySelector('.name').textContent === 'Alice' && r.querySelector('.outcome').textContent === 'Ringing')`)
	alice.until(ctx, "the ringing call in Alice's recent calls", `[...document.querySelectorAll('#history .call-row.outgoing')].some(r => r.querySelector('.name').textContent === 'Bob' && r.querySelector('.outcome').textContent === 'Ringing')`)
	alice.eval(`(async () => { const { Presence } = await import('/assets/js/presence.js'); const p = await Presence.get();
		for (const c of p.calls.values()) if (c.state !== 'ended') p.cancel(c.id); return true; })()`, nil)
	bob.until(ctx, "a missed call from Alice", `[...document.querySelectorAll('#history .call-row.missed')].some(r => r.querySelector('.name').textContent === 'Alice' && r.querySelector('.outcome').textContent === 'Missed' && r.querySelector('.detail').textContent.startsWith('Missed video call'))`)
	alice.until(ctx, "a cancelled call to Bob", `[...document.querySelectorAll('#history .call-row.outgoing')].some(r => r.querySelector('.name').textContent === 'Bob' && r.querySelector('.outcome').textContent === 'Cancelled')`)

	// More history, as the ringer records it: a voice call with Cleo that
	// lasted 12:34, a call from a stranger she declined.
	alice.eval(`(async () => { const id = await import('/assets/js/identity.js'); const cs = await id.contacts(); const cleo = cs.find(c => c.name === 'Cleo Park');
		const now = Date.now();
		id.recordCall({ id: 'h1', peer: cleo.key, side: 'caller', video: false, state: 'ended', reason: 'hangup', started: now - 3 * 3600e3, answered: now - 3 * 3600e3 + 5000, ended: now - 3 * 3600e3 + 5000 + 754000 });
		id.recordCall({ id: 'h2', peer: 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY', side: 'callee', video: true, state: 'ended', reason: 'declined', started: now - 26 * 3600e3 });
		return true; })()`, nil)
	alice.until(ctx, "the history in plain words", `(() => { const rows = [...document.querySelectorAll('#history .call-row')];
		return rows.some(r => r.querySelector('.name').textContent === 'Cleo Park' && r.querySelector('.outcome').textContent === '12:34' && r.querySelector('.detail').textContent.startsWith('Outgoing voice call'))
			&& rows.some(r => r.querySelector('.name').textContent.startsWith('Unknown QUJDREVG') && r.querySelector('.outcome').textContent === 'Declined' && r.querySelector('.again').disabled); })()`)
	screenshot(t, alice.ctx, "contacts-list", 1280, 900)
	screenshot(t, alice.ctx, "contacts-list-phone", 390, 844)
	if err := chromedp.Do(alice.ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatal(err)
	}

	// Alice renames Bob "Bobby": it persists across a reload, sorted and
	// reachable still.
	alice.click(`#contact-list li.online .rename-btn`)
	alice.until(ctx, "the rename field", row("Bob")+`?.querySelector('.rename input') === document.activeElement`)
	alice.eval(row("Bob")+`.querySelector('.rename input').value = 'Bobby'; `+row("Bob")+`.querySelector('.rename').requestSubmit()`, nil)
	alice.until(ctx, "Bobby in the list", row("Bobby"))
	if err := chromedp.Do(alice.ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	alice.until(ctx, "Bobby after a reload, reachable", `document.body.dataset.ready && `+row("Bobby")+`?.classList.contains('online')`)
	if got := strings.Join(alice.names(), ", "); got != "Bobby, Cleo Park, Dev Shah" {
		t.Errorf("after the rename and a reload: %s", got)
	}

	// Removing asks first, then takes Dev off; removing Bobby breaks the
	// mutual pair, so Bob's page shows Alice unreachable.
	alice.eval(row("Dev Shah")+`.querySelector('.remove-btn').click()`, nil)
	alice.until(ctx, "the removal question", row("Dev Shah")+`?.querySelector('.remove-ask').hidden === false`)
	alice.click(`#contact-list li[data-mode="remove"] .remove-ask .yes`)
	alice.until(ctx, "Dev removed", `!`+row("Dev Shah"))
	alice.eval(row("Bobby")+`.querySelector('.remove-btn').click()`, nil)
	alice.until(ctx, "the removal question", row("Bobby")+`?.querySelector('.remove-ask').hidden === false`)
	alice.click(`#contact-list li[data-mode="remove"] .remove-ask .yes`)
	alice.until(ctx, "Bobby removed", `!`+row("Bobby"))
	bob.until(ctx, "Alice unreachable for Bob", row("Alice")+`?.querySelector('.status').textContent === 'Not reachable' && `+row("Alice")+`.querySelector('.call-btn.voice').disabled`)
	if err := chromedp.Do(alice.ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	alice.until(ctx, "the page after a reload", `document.body.dataset.ready`)
	if got := strings.Join(alice.names(), ", "); got != "Cleo Park" {
		t.Errorf("after removing two, a reload lists %q", got)
	}
	for _, p := range []contactsPage{alice, bob} {
		if errs := p.pageErrors(); len(errs) > 0 {
			t.Errorf("%s: page errors: %v", p.name, errs)
		}
	}
}
