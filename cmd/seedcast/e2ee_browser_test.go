package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seedcast/seedcast/media/sframe"
)

// e2eePage opens the real server's home page in Chromium: its import map
// maps /assets/js/e2ee/*.js to the embedded, content-hashed modules.
func e2eePage(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	base := startServer(t, "--webrtc-loopback-only")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	bctx := chromium(t, ctx)
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/")); err != nil {
		t.Fatal(err)
	}
	return bctx
}

// e2eeEval runs an async function body in the page with arg (JSON) as
// `arg` and decodes its JSON result into a T.
func e2eeEval[T any](t *testing.T, tab context.Context, arg any, body string) T {
	t.Helper()
	a, err := json.Marshal(arg)
	if err != nil {
		t.Fatal(err)
	}
	js := fmt.Sprintf("(async (arg) => { %s })(%s).then((v) => JSON.stringify(v))", body, a)
	s, err := chromedp.Run(tab, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("page: %v", err)
	}
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

type rfc9605 struct {
	Header []struct {
		KID     uint64 `json:"kid"`
		CTR     uint64 `json:"ctr"`
		Encoded string `json:"encoded"`
	} `json:"header"`
	SFrame []struct {
		CipherSuite uint16 `json:"cipher_suite"`
		KID         uint64 `json:"kid"`
		CTR         uint64 `json:"ctr"`
		BaseKey     string `json:"base_key"`
		Key         string `json:"sframe_key"`
		Salt        string `json:"sframe_salt"`
		Metadata    string `json:"metadata"`
		Nonce       string `json:"nonce"`
		PT          string `json:"pt"`
		CT          string `json:"ct"`
	} `json:"sframe"`
}

// TestE2EEVectors: sframe.js, in Chromium, encodes and decodes every
// header of RFC 9605 Appendix C.1 and derives, seals and opens C.3's
// AES_128_GCM_SHA256_128 and AES_256_GCM_SHA512_128 vectors exactly.
func TestE2EEVectors(t *testing.T) {
	raw, err := os.ReadFile("../../media/sframe/testdata/rfc9605.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfc9605
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	// KIDs and counters go to the page as decimal strings (BigInts there).
	type hv struct{ KID, CTR, Encoded string }
	var headers []hv
	for _, h := range v.Header {
		headers = append(headers, hv{strconv.FormatUint(h.KID, 10), strconv.FormatUint(h.CTR, 10), h.Encoded})
	}
	type sv struct {
		Suite                         uint16
		KID, CTR                      string
		Base, Metadata, PT, CT, Nonce string
	}
	var frames []sv
	for _, s := range v.SFrame {
		frames = append(frames, sv{s.CipherSuite, strconv.FormatUint(s.KID, 10), strconv.FormatUint(s.CTR, 10), s.BaseKey, s.Metadata, s.PT, s.CT, s.Nonce})
	}
	tab := e2eePage(t, 60*time.Second)
	type out struct {
		Headers []struct {
			Encoded, KID, CTR string
			Length            int
		}
		Frames []struct{ Key, Salt, Nonce, CT, PT string }
	}
	got := e2eeEval[out](t, tab, map[string]any{"headers": headers, "frames": frames}, `
		const sf = await import('/assets/js/e2ee/sframe.js');
		const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
		const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (x) => parseInt(x, 16));
		const Headers = arg.headers.map((h) => {
			const d = sf.decodeHeader(unhex(h.Encoded + 'aabb'));
			return { Encoded: hex(sf.encodeHeader(BigInt(h.KID), BigInt(h.CTR))), KID: String(d.kid), CTR: String(d.ctr), Length: d.length };
		});
		const Frames = [];
		for (const f of arg.frames) {
			const k = await sf.deriveKey(f.Suite, BigInt(f.KID), unhex(f.Base));
			const ct = await sf.seal(k, BigInt(f.CTR), unhex(f.Metadata), unhex(f.PT));
			const pt = await sf.open(k, unhex(f.CT), unhex(f.Metadata));
			Frames.push({ Key: hex(k.keyBytes), Salt: hex(k.salt), Nonce: hex(sf.makeNonce(k.salt, BigInt(f.CTR))), CT: hex(ct), PT: hex(pt) });
		}
		return { Headers, Frames };`)
	if len(got.Headers) != len(v.Header) || len(got.Frames) != len(v.SFrame) {
		t.Fatalf("%d headers, %d frames back", len(got.Headers), len(got.Frames))
	}
	for i, h := range v.Header {
		g := got.Headers[i]
		if g.Encoded != h.Encoded || g.KID != strconv.FormatUint(h.KID, 10) || g.CTR != strconv.FormatUint(h.CTR, 10) || g.Length != len(h.Encoded)/2 {
			t.Errorf("header KID %d CTR %d: JS %+v, want %s", h.KID, h.CTR, g, h.Encoded)
		}
	}
	for i, s := range v.SFrame {
		g := got.Frames[i]
		if g.Key != s.Key || g.Salt != s.Salt || g.Nonce != s.Nonce || g.CT != s.CT || g.PT != s.PT {
			t.Errorf("suite %d: JS %+v", s.CipherSuite, g)
		}
	}
	t.Logf("sframe.js in Chromium: %d header vectors, %d encryption vectors", len(got.Headers), len(got.Frames))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2EECrossImplementation: frames media/sframe protects open in
// sframe.js and frames sframe.js protects open in Go (VP8 keyframe and
// delta frames, Opus, both suites); the sender keys, the ratchet and the
// fingerprint agree; a frame tampered in the page fails in Go.
func TestE2EECrossImplementation(t *testing.T) {
	tab := e2eePage(t, 60*time.Second)
	key := bytes.Repeat([]byte{0x5a}, 32)
	for i := range key {
		key[i] ^= byte(i)
	}
	vp8Key := append([]byte{0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}, bytes.Repeat([]byte("keyframe "), 130)...)
	vp8Delta := append([]byte{0x31, 0x05, 0x00}, bytes.Repeat([]byte("delta "), 40)...)
	opus := []byte{0xfc, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02}
	type frame struct{ Codec, Data string }
	plain := []frame{{"video/VP8", b64(vp8Key)}, {"video/VP8", b64(vp8Delta)}, {"audio/opus", b64(opus)}}

	for _, suite := range []sframe.Suite{sframe.AES128GCMSHA256, sframe.AES256GCMSHA512} {
		t.Run(suite.String(), func(t *testing.T) {
			const epoch = 261 // low byte 5
			gs, err := sframe.NewSender(sframe.SenderParams{Suite: suite})
			if err != nil {
				t.Fatal(err)
			}
			if err := gs.SetKey(key, epoch); err != nil {
				t.Fatal(err)
			}
			var fromGo []frame
			for _, f := range plain {
				p := unb64(t, f.Data)
				enc, err := gs.Encrypt(nil, p, sframe.ClearPrefixLen(f.Codec, p))
				if err != nil {
					t.Fatal(err)
				}
				fromGo = append(fromGo, frame{f.Codec, b64(enc)})
			}
			type out struct {
				Opened    []string
				FromJS    []string
				SenderKey string
				Ratchet   string
				Finger    string
				Errors    []string
			}
			got := e2eeEval[out](t, tab, map[string]any{"suite": suite, "key": b64(key), "epoch": epoch, "fromGo": fromGo, "plain": plain, "kid": strconv.FormatUint(gs.KID(), 10)}, `
				const sf = await import('/assets/js/e2ee/sframe.js');
				const keys = await import('/assets/js/e2ee/keys.js');
				const from64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
				const to64 = (b) => btoa(String.fromCharCode(...b));
				const key = from64(arg.key);
				const r = new sf.Receiver({ suite: arg.suite });
				r.setKey(key, arg.epoch);
				const Opened = [];
				for (const f of arg.fromGo) {
					const d = from64(f.Data);
					Opened.push(to64(await r.decrypt(d, sf.clearPrefixLen(f.Codec, d))));
				}
				const s = new sf.Sender({ suite: arg.suite });
				await s.setKey(key, arg.epoch);
				const FromJS = [];
				for (const f of arg.plain) {
					const d = from64(f.Data);
					FromJS.push(to64(await s.encrypt(d, sf.clearPrefixLen(f.Codec, d))));
				}
				// Tampered in the page: one bit of the last frame's tag.
				const bad = from64(FromJS[2]); bad[bad.length - 1] ^= 1;
				FromJS.push(to64(bad));
				const Errors = [];
				for (const [what, f] of [['tampered', () => r.decrypt(bad, 1)], ['unkeyed', () => new sf.Receiver().decrypt(from64(arg.fromGo[0].Data), 10)]]) {
					try { await f(); Errors.push(what + ': opened'); } catch (e) { Errors.push(what + ': ' + e.code); }
				}
				return { Opened, FromJS, Errors,
					SenderKey: to64(await sf.senderBaseKey(key, BigInt(arg.kid))),
					Ratchet: to64(await keys.ratchet(key)),
					Finger: await keys.fingerprint(key) };`)
			for i, f := range plain {
				if got.Opened[i] != f.Data {
					t.Errorf("%s frame %d: Go → JS opened as %s", f.Codec, i, got.Opened[i])
				}
			}
			gr, _ := sframe.NewReceiver(sframe.ReceiverParams{Suite: suite})
			_ = gr.SetKey(key, epoch)
			for i, f := range plain {
				enc := unb64(t, got.FromJS[i])
				p := unb64(t, f.Data)
				n := sframe.ClearPrefixLen(f.Codec, enc)
				if !bytes.Equal(enc[:n], p[:n]) {
					t.Errorf("%s frame %d: JS left %x in the clear, want %x", f.Codec, i, enc[:n], p[:n])
				}
				h, _, err := sframe.ParseHeader(enc[n:])
				if _, eb := sframe.SplitKID(h.KID); err != nil || eb != 5 || h.CTR != uint64(i) {
					t.Errorf("%s frame %d: JS header %+v %v", f.Codec, i, h, err)
				}
				dec, err := gr.Decrypt(nil, enc, n)
				if err != nil || !bytes.Equal(dec, p) {
					t.Errorf("%s frame %d: JS → Go: %v", f.Codec, i, err)
				}
			}
			if _, err := gr.Decrypt(nil, unb64(t, got.FromJS[3]), 1); err == nil {
				t.Error("a frame tampered in the page opened in Go")
			}
			if want := []string{"tampered: auth", "unkeyed: unknown-key"}; fmt.Sprint(got.Errors) != fmt.Sprint(want) {
				t.Errorf("JS errors %v, want %v", got.Errors, want)
			}
			sk, _ := sframe.SenderBaseKey(key, gs.KID())
			rk, _ := sframe.Ratchet(key)
			if got.SenderKey != b64(sk) || got.Ratchet != b64(rk) {
				t.Errorf("sender key %s (Go %s), ratchet %s (Go %s)", got.SenderKey, b64(sk), got.Ratchet, b64(rk))
			}
			fp := sha256.Sum256(append([]byte("seedcast fingerprint v1"), key...))
			h := hex.EncodeToString(fp[:8])
			if want := h[0:4] + " " + h[4:8] + " " + h[8:12] + " " + h[12:16]; got.Finger != want {
				t.Errorf("fingerprint %q, want %q", got.Finger, want)
			}
		})
	}
}

// TestE2EEProfileVector: sframe.js produces media/sframe's pinned
// profile vector (TestProfileVector, docs/e2ee.md) bit for bit.
func TestE2EEProfileVector(t *testing.T) {
	tab := e2eePage(t, 60*time.Second)
	got := e2eeEval[[]string](t, tab, nil, `
		const sf = await import('/assets/js/e2ee/sframe.js');
		const keys = await import('/assets/js/e2ee/keys.js');
		const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
		const base = Uint8Array.from({ length: 32 }, (_, i) => i);
		const s = new sf.Sender({ senderId: 0x123456789abcn });
		await s.setKey(base, 1);
		s._ctr = 300n;
		const frame = Uint8Array.of(0x31, 0x02, 0x00, ...new TextEncoder().encode('seedcast'));
		return [s.kid.toString(16), hex(await sf.senderBaseKey(base, s.kid)), hex(await s.encrypt(frame, sf.clearPrefixLen('video/VP8', frame))), hex(await keys.ratchet(base))];`)
	want := []string{"123456789abc01", "ba92ba5f8fdb2855e5faf1be318d54b8c932e7a872c16dc02594a49f45127a7e",
		"310200e9123456789abc01012caf029c7c4c582eaa391f92afd84e93a2798a30f1f3b90a21", "8ac1975f3ebf9ca3cc3c7719beeb68cfa66a442b52f7fab38cc54ebc0502e38c"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sframe.js: %q, want %q", got, want)
	}
}

// TestE2EEChat: chat.js seals and opens: out of order, history read from
// index 0 by a member who joins later, a replay refused, a tampered
// envelope refused (and the genuine one still opens), another key, an
// unknown epoch and garbage refused with their codes.
func TestE2EEChat(t *testing.T) {
	tab := e2eePage(t, 60*time.Second)
	type out struct {
		Envelope string
		Opened   []string
		Late     []string
		Errors   map[string]string
		Senders  int
	}
	got := e2eeEval[out](t, tab, nil, `
		const { ChatCipher } = await import('/assets/js/e2ee/chat.js');
		const keys = await import('/assets/js/e2ee/keys.js');
		const base = keys.groupKeyFromFragment('#' + keys.newGroupKey());
		const alice = new ChatCipher(), bob = new ChatCipher();
		await alice.setKey(base, 2); await bob.setKey(base, 2);
		const env = [];
		for (let i = 0; i < 140; i++) env.push(await alice.seal('message ' + i + ' ✓'));
		const Opened = [];
		for (const i of [3, 0, 2, 1, 139, 70, 4]) {
			const m = await bob.open(env[i]);
			Opened.push(m.text + '|' + m.index + '|' + m.epoch + '|' + (m.senderId === alice.senderId.toString(16).padStart(12, '0')));
		}
		const Errors = {};
		const expect = async (name, f) => { try { await f(); Errors[name] = 'opened'; } catch (e) { Errors[name] = e.code || e.message; } };
		await expect('replay', () => bob.open(env[2]));
		await expect('replay-far', () => bob.open(env[139]));
		const t = keys.unb64url(env[5]); t[20] ^= 1;
		await expect('tampered-iv', () => bob.open(keys.b64url(t)));
		const u = keys.unb64url(env[5]); u[14] ^= 8; // index 5 → 13, in the AAD
		await expect('tampered-index', () => bob.open(keys.b64url(u)));
		const w = keys.unb64url(env[5]); w[w.length - 3] ^= 1;
		await expect('tampered-ciphertext', () => bob.open(keys.b64url(w)));
		const genuine = (await bob.open(env[5])).text;
		const eve = new ChatCipher(); await eve.setKey(keys.groupKeyFromFragment(keys.newGroupKey()), 2);
		await expect('other-key', () => eve.open(env[6]));
		const carol = new ChatCipher(); await carol.setKey(base, 3);
		await expect('unknown-epoch', () => carol.open(env[6]));
		await expect('garbage', () => bob.open('not an envelope!'));
		await expect('short', () => bob.open(keys.b64url(Uint8Array.of(1, 2, 3))));
		const v = keys.unb64url(env[7]); v[0] = 2;
		await expect('version', () => bob.open(keys.b64url(v)));
		await expect('no-key', () => new ChatCipher().seal('hi'));
		// A member who joins later with the base key reads the history.
		const late = new ChatCipher(); await late.setKey(base, 2);
		const Late = [];
		for (const i of [0, 1, 130, 64, 63, 10]) Late.push((await late.open(env[i])).text);
		// Bob's own messages open for Alice: a second chain.
		const fromBob = await bob.seal('hi alice');
		Late.push((await alice.open(fromBob)).text);
		return { Envelope: env[0], Opened, Late, Errors: { ...Errors, genuine } };`)
	if want := []string{"message 3 ✓|3|2|true", "message 0 ✓|0|2|true", "message 2 ✓|2|2|true", "message 1 ✓|1|2|true", "message 139 ✓|139|2|true", "message 70 ✓|70|2|true", "message 4 ✓|4|2|true"}; fmt.Sprint(got.Opened) != fmt.Sprint(want) {
		t.Errorf("opened %q, want %q", got.Opened, want)
	}
	if want := []string{"message 0 ✓", "message 1 ✓", "message 130 ✓", "message 64 ✓", "message 63 ✓", "message 10 ✓", "hi alice"}; fmt.Sprint(got.Late) != fmt.Sprint(want) {
		t.Errorf("history %q, want %q", got.Late, want)
	}
	want := map[string]string{
		"replay": "replay", "replay-far": "replay", "tampered-iv": "auth", "tampered-index": "auth", "tampered-ciphertext": "auth",
		"genuine": "message 5 ✓", "other-key": "auth", "unknown-epoch": "unknown-epoch", "garbage": "malformed", "short": "malformed",
		"version": "version", "no-key": "no-key",
	}
	for k, w := range want {
		if got.Errors[k] != w {
			t.Errorf("%s: %q, want %q", k, got.Errors[k], w)
		}
	}
	// The envelope: base64url of version 1, sender id, epoch 2, index 0,
	// a 12-byte iv and the ciphertext ("message 0 ✓", 13 bytes) with its tag.
	env, err := base64.RawURLEncoding.DecodeString(got.Envelope)
	if err != nil || len(env) != 15+12+13+16 || env[0] != 1 || !bytes.Equal(env[7:15], []byte{0, 0, 0, 2, 0, 0, 0, 0}) {
		t.Errorf("envelope %x (%v)", env, err)
	}
}

// TestE2EEKeys: keys.js's 1:1 key is the same at both ends (whichever
// identity is idA, with a non-extractable private key) and differs for
// another salt or a third party; room keys round-trip through the link
// fragment and bad fragments are refused; fingerprints are 4 groups of 4
// hex digits.
func TestE2EEKeys(t *testing.T) {
	tab := e2eePage(t, 60*time.Second)
	type out struct {
		Same, OtherSalt, ThirdParty, RoundTrip bool
		KeyLen                                 int
		Fragment                               string
		Finger                                 string
		Bad                                    map[string]string
	}
	got := e2eeEval[out](t, tab, nil, `
		const keys = await import('/assets/js/e2ee/keys.js');
		const gen = (extractable) => crypto.subtle.generateKey({ name: 'X25519' }, extractable, ['deriveBits']);
		const a = await gen(false), b = await gen(false), c = await gen(false);
		const raw = async (k) => new Uint8Array(await crypto.subtle.exportKey('raw', k.publicKey));
		const salt = crypto.getRandomValues(new Uint8Array(16));
		const ka = await keys.pairwiseBaseKey(a.privateKey, await raw(b), salt, 'id-alice', 'id-bob');
		const kb = await keys.pairwiseBaseKey(b.privateKey, await raw(a), salt, 'id-bob', 'id-alice');
		const k2 = await keys.pairwiseBaseKey(a.privateKey, await raw(b), crypto.getRandomValues(new Uint8Array(16)), 'id-alice', 'id-bob');
		const kc = await keys.pairwiseBaseKey(c.privateKey, await raw(b), salt, 'id-alice', 'id-bob');
		const eq = (x, y) => x.length === y.length && x.every((v, i) => v === y[i]);
		const frag = keys.newGroupKey();
		const Bad = {};
		for (const [name, s] of [['empty', '#'], ['short', frag.slice(0, 40)], ['long', frag + 'AAAA'], ['chars', frag.slice(0, 42) + '+'], ['padded', frag + '=']]) {
			try { keys.groupKeyFromFragment(s); Bad[name] = 'accepted'; } catch (e) { Bad[name] = e.message; }
		}
		try { await keys.pairwiseBaseKey(a.privateKey, await raw(b), salt, 'same', 'same'); Bad.sameIds = 'accepted'; } catch (e) { Bad.sameIds = e.message; }
		try { await keys.pairwiseBaseKey(a.privateKey, new Uint8Array(32), salt, 'x', 'y'); Bad.lowOrder = 'accepted'; } catch (e) { Bad.lowOrder = e.message; }
		const k = keys.groupKeyFromFragment('#' + frag);
		return { Same: eq(ka, kb), OtherSalt: eq(ka, k2), ThirdParty: eq(ka, kc), KeyLen: ka.length,
			RoundTrip: keys.b64url(k) === frag, Fragment: frag, Finger: await keys.fingerprint(k), Bad };`)
	if !got.Same || got.OtherSalt || got.ThirdParty || got.KeyLen != 32 {
		t.Errorf("1:1 keys: same at both ends %v, same with another salt %v, same for a third party %v, %d bytes", got.Same, got.OtherSalt, got.ThirdParty, got.KeyLen)
	}
	if k, err := base64.RawURLEncoding.DecodeString(got.Fragment); err != nil || len(k) != 32 || !got.RoundTrip {
		t.Errorf("fragment %q: %v, round trip %v", got.Fragment, err, got.RoundTrip)
	}
	if !regexp.MustCompile(`^[0-9a-f]{4}( [0-9a-f]{4}){3}$`).MatchString(got.Finger) {
		t.Errorf("fingerprint %q", got.Finger)
	}
	for _, name := range []string{"empty", "short", "long", "chars", "padded", "sameIds", "lowOrder"} {
		if m := got.Bad[name]; m == "" || m == "accepted" || !regexp.MustCompile(`^e2ee: `).MatchString(m) {
			t.Errorf("%s: %q, want a clear e2ee: error", name, m)
		}
	}
	t.Logf("refusals: %v", got.Bad)
}

// loopbackState is what the page reports of its two peer connections.
type loopbackState struct {
	FramesDecoded, VideoPackets, AudioPackets int
	VideoCodec                                string
	States                                    []string
	SenderKID                                 string
	Tx, Rx                                    map[string]struct {
		Codec, State, LastError               string
		Encrypted, Decrypted, Failed, Dropped int
	}
}

// TestE2EELoopback: two RTCPeerConnections in one page (no server),
// Chromium's fake camera and microphone sent as VP8 and Opus through the
// encrypt transform and received through the decrypt transform, each side
// with its own E2EE worker. With the sender's key the receiver decodes
// frames and its worker counts them decrypted; with another key, or none,
// packets arrive but not one frame reaches the decoder and the worker
// counts failures. "ratchet": the receiver moves to the ratcheted key of
// epoch 8 first and still opens the sender's epoch-7 frames (the
// overlap), then the sender moves too and frames keep decrypting.
func TestE2EELoopback(t *testing.T) {
	tab := e2eePage(t, 240*time.Second)
	for _, mode := range []string{"same", "other", "none", "ratchet"} {
		t.Run(mode+"-key", func(t *testing.T) {
			e2eeEval[bool](t, tab, mode, `
				const { E2EE, supported } = await import('/assets/js/e2ee/transform.js');
				if (!supported()) throw new Error('no RTCRtpScriptTransform');
				if (window.__e2ee) { const o = window.__e2ee; o.pc1.close(); o.pc2.close(); o.tx.close(); o.rx.close(); o.stream.getTracks().forEach((t) => t.stop()); }
				const key = crypto.getRandomValues(new Uint8Array(32));
				const tx = new E2EE(), rx = new E2EE();
				await tx.setKey(key, 7);
				if (arg === 'same') await rx.setKey(key, 7);
				if (arg === 'ratchet') {
					const { ratchet } = await import('/assets/js/e2ee/keys.js');
					await rx.setKey(key, 7);
					await rx.setKey(await ratchet(key), 8, { overlapMs: 60000 });
					window.__rotate = async () => tx.setKey(await ratchet(key), 8);
				}
				if (arg === 'other') await rx.setKey(crypto.getRandomValues(new Uint8Array(32)), 7);
				const states = [];
				rx.addEventListener('status', (e) => states.push(e.detail.id + ':' + e.detail.state));
				const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: true });
				const pc1 = new RTCPeerConnection(), pc2 = new RTCPeerConnection();
				pc1.onicecandidate = (e) => e.candidate && pc2.addIceCandidate(e.candidate);
				pc2.onicecandidate = (e) => e.candidate && pc1.addIceCandidate(e.candidate);
				pc2.ontrack = (e) => rx.attachReceiver(e.receiver, { id: 'recv-' + e.track.kind });
				for (const track of stream.getTracks()) {
					const tr = pc1.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
					if (track.kind === 'video') tr.setCodecPreferences(RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/VP8'));
					tx.attachSender(tr.sender, { id: 'send-' + track.kind });
				}
				await pc1.setLocalDescription();
				await pc2.setRemoteDescription(pc1.localDescription);
				await pc2.setLocalDescription();
				await pc1.setRemoteDescription(pc2.localDescription);
				window.__e2ee = { pc1, pc2, tx, rx, stream, states };
				return true;`)
			deadline := time.Now().Add(45 * time.Second)
			var st loopbackState
			rotatedAt := -1 // video frames decrypted when the sender moved to epoch 8
			for {
				st = e2eeEval[loopbackState](t, tab, nil, `
					const o = window.__e2ee;
					const r = { FramesDecoded: 0, VideoPackets: 0, AudioPackets: 0, VideoCodec: '', States: o.states };
					const s = await o.pc2.getStats();
					s.forEach((x) => {
						if (x.type !== 'inbound-rtp') return;
						if (x.kind === 'video') { r.FramesDecoded = x.framesDecoded || 0; r.VideoPackets = x.packetsReceived || 0; }
						if (x.kind === 'audio') r.AudioPackets = x.packetsReceived || 0;
					});
					const pick = (m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, { Codec: v.codec, State: v.state, LastError: v.lastError, Encrypted: v.encrypted, Decrypted: v.decrypted, Failed: v.failed, Dropped: v.dropped }]));
					r.VideoCodec = o.pc2.getTransceivers().filter((t) => t.receiver.track.kind === 'video').flatMap((t) => t.receiver.getParameters().codecs.map((c) => c.mimeType)).join(' ');
					const ts = await o.tx.stats();
					r.Tx = pick(ts); r.Rx = pick(await o.rx.stats()); r.SenderKID = ts['send-video']?.kid || '';
					return r;`)
				rv, ra := st.Rx["recv-video"], st.Rx["recv-audio"]
				done := false
				switch mode {
				case "same":
					done = st.FramesDecoded >= 30 && rv.Decrypted >= 30 && ra.Decrypted >= 30
				case "ratchet":
					if rotatedAt < 0 && rv.Decrypted >= 30 && ra.Decrypted >= 30 {
						if !strings.HasSuffix(st.SenderKID, "07") {
							t.Fatalf("sender KID %s before the rotation, want epoch 7", st.SenderKID)
						}
						e2eeEval[bool](t, tab, nil, `await window.__rotate(); return true;`)
						rotatedAt = rv.Decrypted
					}
					done = rotatedAt >= 0 && strings.HasSuffix(st.SenderKID, "08") && rv.Decrypted >= rotatedAt+30
				default:
					// Frames keep arriving and failing: 60 video frames are two
					// seconds of the fake camera (more on a loaded machine),
					// 100 audio frames two seconds of Opus.
					done = rv.Failed >= 60 && ra.Failed >= 100 && st.VideoPackets > 0
				}
				if done {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s key: not there in 45 s: %+v", mode, st)
				}
				select {
				case <-time.After(250 * time.Millisecond):
				case <-tab.Done():
					t.Fatal(tab.Err())
				}
			}
			t.Logf("%s key: %+v", mode, st)
			tv, ta := st.Tx["send-video"], st.Tx["send-audio"]
			if tv.Encrypted == 0 || ta.Encrypted == 0 || tv.Codec != "video/VP8" || ta.Codec != "audio/opus" || tv.State != "encrypting" {
				t.Errorf("sender: %+v %+v", tv, ta)
			}
			if st.VideoCodec != "video/VP8" { // the receiver's negotiated codecs
				t.Errorf("negotiated %q, want video/VP8", st.VideoCodec)
			}
			rv, ra := st.Rx["recv-video"], st.Rx["recv-audio"]
			switch mode {
			case "same", "ratchet":
				if rv.Failed != 0 || ra.Failed != 0 || rv.State != "decrypting" || ra.State != "decrypting" || rv.Codec != "video/VP8" {
					t.Errorf("receiver: %+v %+v", rv, ra)
				}
			default:
				want, wantErr := "failing", "auth"
				if mode == "none" {
					want, wantErr = "no-key", "unknown-key"
				}
				if st.FramesDecoded != 0 || rv.Decrypted != 0 || ra.Decrypted != 0 {
					t.Errorf("%d frames decoded, %d video and %d audio frames decrypted under another key", st.FramesDecoded, rv.Decrypted, ra.Decrypted)
				}
				if rv.State != want || ra.State != want || rv.LastError != wantErr {
					t.Errorf("receiver states %q %q (last error %q), want %q (%q)", rv.State, ra.State, rv.LastError, want, wantErr)
				}
			}
		})
	}
}
