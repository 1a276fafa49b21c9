// Key derivations for end-to-end encrypted calls (docs/e2ee.md): the 1:1
// call key from X25519, the group key of a room link, its ratchet, and a
// fingerprint people can compare. WebCrypto only; keys are Uint8Arrays of
// 32 bytes (the base keys of sframe.js and chat.js).

const enc = new TextEncoder();

export const KEY_SIZE = 32;

// b64url encodes bytes as base64url without padding.
export function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

// unb64url decodes base64url without padding; it throws on anything else.
export function unb64url(str) {
  if (typeof str !== 'string' || !/^[A-Za-z0-9_-]*$/.test(str) || str.length % 4 === 1) {
    throw new Error('e2ee: not base64url');
  }
  const s = atob(str.replaceAll('-', '+').replaceAll('_', '/') + '='.repeat((4 - str.length % 4) % 4));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  if (b64url(out) !== str) throw new Error('e2ee: not canonical base64url');
  return out;
}

export async function hkdf(ikm, salt, info, bytes = KEY_SIZE) {
  const k = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info: typeof info === 'string' ? enc.encode(info) : info }, k, bytes * 8));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}

function checkKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) throw new Error(`e2ee: a key is ${KEY_SIZE} bytes`);
}

// pairwiseBaseKey is a 1:1 call's base key: X25519(myPrivateKey,
// theirPublicRaw), then HKDF-SHA256 with the call's salt and info
// "seedcast e2ee 1:1 v1" || the two identity keys (strings), sorted, each
// as a 2-byte big-endian length and its UTF-8 bytes. Both ends get the
// same key whichever of them is idA.
export async function pairwiseBaseKey(myPrivateKey, theirPublicRaw, salt, idA, idB) {
  if (!(theirPublicRaw instanceof Uint8Array) || theirPublicRaw.length !== 32) throw new Error('e2ee: the peer\'s X25519 public key is 32 bytes');
  if (!(salt instanceof Uint8Array) || salt.length < 16) throw new Error('e2ee: the call salt is at least 16 bytes');
  if (typeof idA !== 'string' || typeof idB !== 'string' || !idA || !idB) throw new Error('e2ee: the identities are non-empty strings');
  if (idA === idB) throw new Error('e2ee: a 1:1 call needs two identities');
  const theirs = await crypto.subtle.importKey('raw', theirPublicRaw, { name: 'X25519' }, false, []);
  let shared;
  try {
    shared = new Uint8Array(await crypto.subtle.deriveBits({ name: 'X25519', public: theirs }, myPrivateKey, 256));
  } catch (e) {
    throw new Error('e2ee: X25519 failed (a bad public key?): ' + e.message);
  }
  if (shared.every((b) => b === 0)) throw new Error('e2ee: X25519 gave the all-zero secret (a low-order public key)');
  const ids = [idA, idB].sort().map((id) => {
    const b = enc.encode(id);
    if (b.length > 0xffff) throw new Error('e2ee: identity too long');
    return concat(Uint8Array.of(b.length >> 8, b.length & 0xff), b);
  });
  return hkdf(shared, salt, concat(enc.encode('seedcast e2ee 1:1 v1'), ...ids));
}

// newGroupKey is a fresh room key, as base64url (43 characters) for the
// link's fragment: the fragment never reaches the server.
export function newGroupKey() {
  return b64url(crypto.getRandomValues(new Uint8Array(KEY_SIZE)));
}

// groupKeyFromFragment reads a key written by newGroupKey (a leading '#'
// is allowed, as in location.hash).
export function groupKeyFromFragment(str) {
  if (typeof str !== 'string') throw new Error('e2ee: no key in the link');
  if (str.startsWith('#')) str = str.slice(1);
  if (str === '') throw new Error('e2ee: no key in the link (its part after #)');
  let key;
  try {
    key = unb64url(str);
  } catch {
    throw new Error('e2ee: the key in the link is damaged (not base64url); ask for the link again');
  }
  if (key.length !== KEY_SIZE) throw new Error(`e2ee: the key in the link is ${key.length} bytes, not ${KEY_SIZE}; ask for the link again`);
  return key;
}

// ratchet is the next epoch's key: HKDF-SHA256(key, salt empty, info
// "seedcast ratchet v1"), as Go's sframe.Ratchet.
export async function ratchet(key) {
  checkKey(key);
  return hkdf(key, new Uint8Array(0), 'seedcast ratchet v1');
}

// fingerprint is a short string two people can compare to know they hold
// the same key: the first 8 bytes of SHA-256("seedcast fingerprint v1" ||
// key) as 4 groups of 4 hex digits.
export async function fingerprint(key) {
  checkKey(key);
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', concat(enc.encode('seedcast fingerprint v1'), key)));
  const hex = Array.from(h.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join('');
  return hex.match(/.{4}/g).join(' ');
}
