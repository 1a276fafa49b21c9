// A call's keys over time (docs/e2ee.md): a base key that holds from a
// starting epoch, ratcheted forward once per epoch (the server counts the
// members that left: every remaining member moves to the next key in
// step), and replaced when the host rotates it.
//
// A group room's link carries its key and starting epoch in the fragment,
// which never reaches the server: /call/{room}#k=<key>&g=<epoch>.

import { b64url, unb64url, groupKeyFromFragment, ratchet, hkdf, KEY_SIZE } from '/assets/js/e2ee/keys.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export class CallKeys {
  // base: Uint8Array(32), the key at epoch from (and, ratcheted, after).
  constructor(base, from = 0) {
    if (!(base instanceof Uint8Array) || base.length !== KEY_SIZE) throw new Error('e2ee: a call key is 32 bytes');
    this.base = base;
    this.from = from;
    this.cache = new Map([[from, Promise.resolve(base)]]);
  }

  // fromFragment reads "#k=…&g=…" (g optional); null when the fragment
  // has no key.
  static fromFragment(hash) {
    const p = new URLSearchParams(String(hash || '').replace(/^#/, ''));
    if (!p.has('k')) return null;
    const g = Number(p.get('g') || 0);
    if (!Number.isInteger(g) || g < 0 || g > 0xffffffff) throw new Error('e2ee: the link\'s key epoch is damaged; ask for the link again');
    return new CallKeys(groupKeyFromFragment(p.get('k')), g);
  }

  fragment() { return `k=${b64url(this.base)}&g=${this.from}`; }

  // at returns the key of epoch (null before the base's epoch: those keys
  // are gone).
  at(epoch) {
    if (epoch < this.from) return Promise.resolve(null);
    if (!this.cache.has(epoch)) {
      this.cache.set(epoch, this.at(epoch - 1).then((k) => ratchet(k)));
      // Keep the cache small: the newest 32 epochs.
      if (this.cache.size > 32) this.cache.delete(Math.min(...this.cache.keys()));
    }
    return this.cache.get(epoch);
  }

  rotate(base, from) {
    this.base = base;
    this.from = from;
    this.cache = new Map([[from, Promise.resolve(base)]]);
  }
}

async function wrapKey(key) {
  const raw = await hkdf(key, new Uint8Array(0), 'seedcast rotate v1');
  return crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
}

// sealRotation is the host's key rotation message: a new base key from
// epoch on, sealed with the key of that epoch the members hold now.
// Envelope: "r1.<iv>.<ciphertext>" (base64url).
export async function sealRotation(current, epoch, newBase) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const body = enc.encode(JSON.stringify({ epoch, key: b64url(newBase) }));
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode('seedcast rotation v1') }, await wrapKey(current), body);
  return `r1.${b64url(iv)}.${b64url(new Uint8Array(ct))}`;
}

// openRotation opens a rotation message with the current key; it throws
// when the message is not one or the key differs.
export async function openRotation(current, sealed) {
  const [v, iv, ct] = String(sealed).split('.');
  if (v !== 'r1' || !iv || !ct) throw new Error('e2ee: not a key rotation');
  const body = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64url(iv), additionalData: enc.encode('seedcast rotation v1') }, await wrapKey(current), unb64url(ct));
  const m = JSON.parse(dec.decode(body));
  const key = unb64url(m.key);
  if (key.length !== KEY_SIZE || !Number.isInteger(m.epoch) || m.epoch < 0) throw new Error('e2ee: a malformed key rotation');
  return { epoch: m.epoch, key };
}

// sealBox and openBox carry a call's base key to a third contact rung into
// a 1:1 call (its key from the caller's pairwise key with them).
export async function sealBox(pairwise, key) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const k = await crypto.subtle.importKey('raw', await hkdf(pairwise, new Uint8Array(0), 'seedcast box v1'), 'AES-GCM', false, ['encrypt']);
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, k, key);
  return b64url(new Uint8Array([...iv, ...new Uint8Array(ct)]));
}

export async function openBox(pairwise, box) {
  const b = unb64url(box);
  const k = await crypto.subtle.importKey('raw', await hkdf(pairwise, new Uint8Array(0), 'seedcast box v1'), 'AES-GCM', false, ['decrypt']);
  const key = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: b.subarray(0, 12) }, k, b.subarray(12)));
  if (key.length !== KEY_SIZE) throw new Error('e2ee: a malformed key box');
  return key;
}
