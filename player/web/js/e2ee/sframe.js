// SFrame (RFC 9605) and the seedcast SFrame profile v1, with WebCrypto:
// byte for byte what the Go package media/sframe does (docs/e2ee.md).
//
// A protected frame is clearPrefix || header || ciphertext || tag, with
// AAD = header || clearPrefix (the prefix is the RFC's "metadata"). A KID
// is senderId << 8 | epoch & 0xff, senderId a random 48-bit number each
// sender draws; a sender's SFrame base key is HKDF-SHA256(the call's key
// for the epoch, salt empty, info "seedcast sframe sender v1" || KID as 8
// bytes big-endian). KIDs and counters are BigInts.
//
// This module is self-contained: the e2ee worker imports it by its hashed
// URL (module workers do not see the page's import map).

export const AES_128_GCM_SHA256_128 = 0x0004;
export const AES_256_GCM_SHA512_128 = 0x0005;
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const SENDER_ID_BITS = 48;
export const MAX_SENDER_ID = (1n << 48n) - 1n;

const enc = new TextEncoder();

// SFrameError carries a code: 'short-frame', 'bad-header', 'unknown-key',
// 'auth', 'bad-suite', 'bad-key', 'no-key', 'bad-sender-id'
// (the Go package's ErrShortFrame … ErrBadSenderID).
export class SFrameError extends Error {
  constructor(code, message) {
    super('sframe: ' + message);
    this.name = 'SFrameError';
    this.code = code;
  }
}

function suiteParams(suite) {
  switch (suite) {
    case AES_128_GCM_SHA256_128: return { hash: 'SHA-256', nk: 16 };
    case AES_256_GCM_SHA512_128: return { hash: 'SHA-512', nk: 32 };
  }
  throw new SFrameError('bad-suite', 'unsupported cipher suite ' + suite);
}

function bytesOf(x, what) {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  throw new TypeError('sframe: ' + what + ' must be bytes');
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}

function byteLen(v) { // minimal big-endian length of v ≥ 8
  let n = 1;
  while (v > 0xffn) { v >>= 8n; n++; }
  return n;
}

function u64(v, what) {
  v = BigInt(v);
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError('sframe: ' + what + ' out of range');
  return v;
}

function be(v, n) {
  const out = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) { out[i] = Number(v & 0xffn); v >>= 8n; }
  return out;
}

// encodeHeader returns the SFrame header of kid and ctr (numbers or
// BigInts): values 0-7 in the config byte, larger ones in the fewest bytes.
export function encodeHeader(kid, ctr) {
  kid = u64(kid, 'KID');
  ctr = u64(ctr, 'CTR');
  let cfg = kid < 8n ? Number(kid) << 4 : 0x80 | (byteLen(kid) - 1) << 4;
  cfg |= ctr < 8n ? Number(ctr) : 0x08 | (byteLen(ctr) - 1);
  const parts = [Uint8Array.of(cfg)];
  if (kid >= 8n) parts.push(be(kid, byteLen(kid)));
  if (ctr >= 8n) parts.push(be(ctr, byteLen(ctr)));
  return concat(...parts);
}

// decodeHeader reads the header at the start of bytes: { kid, ctr,
// length }. Non-minimal encodings are refused, as in Go.
export function decodeHeader(bytes) {
  bytes = bytesOf(bytes, 'header');
  if (bytes.length < 1) throw new SFrameError('short-frame', 'frame too short: empty');
  const cfg = bytes[0];
  let n = 1;
  const read = (ext, field, what) => {
    if (!ext) return BigInt(field);
    const l = field + 1;
    if (bytes.length < n + l) throw new SFrameError('bad-header', `malformed header: ${what} of ${l} bytes, ${bytes.length - n} left`);
    if (bytes[n] === 0) throw new SFrameError('bad-header', `malformed header: ${what} not minimally encoded`);
    let v = 0n;
    for (let i = 0; i < l; i++) v = v << 8n | BigInt(bytes[n + i]);
    n += l;
    if (v < 8n) throw new SFrameError('bad-header', `malformed header: ${what} ${v} sent long`);
    return v;
  };
  const kid = read(cfg & 0x80, cfg >> 4 & 7, 'KID');
  const ctr = read(cfg & 0x08, cfg & 7, 'CTR');
  return { kid, ctr, length: n };
}

// makeKID is the profile's key id; splitKID undoes it (the epoch's low
// byte only).
export function makeKID(senderId, epoch) {
  return BigInt(senderId) << 8n | BigInt(epoch) & 0xffn;
}
export function splitKID(kid) {
  kid = BigInt(kid);
  return { senderId: kid >> 8n, epochByte: Number(kid & 0xffn) };
}

// clearPrefixLen: bytes left in the clear for codec (a WebRTC MIME type,
// case-insensitive): VP8 keyframe 10, other VP8 frame 3, Opus 1, else 0.
// It reads byte 0 only, which stays clear, so plaintext and protected
// frames give the same answer.
export function clearPrefixLen(codec, frame) {
  const c = String(codec).toLowerCase();
  if (c === 'video/vp8') return frame && frame.length > 0 && (frame[0] & 1) === 0 ? 10 : 3;
  if (c === 'audio/opus') return 1;
  return 0;
}

async function hkdf(hash, ikm, info, bytes) {
  const k = await crypto.subtle.importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: 'HKDF', hash, salt: new Uint8Array(0), info }, k, bytes * 8));
}

function label(prefix, kid, suite) {
  const l = new Uint8Array(prefix.length + 10);
  l.set(enc.encode(prefix));
  l.set(be(kid, 8), prefix.length);
  l[prefix.length + 8] = suite >> 8;
  l[prefix.length + 9] = suite & 0xff;
  return l;
}

// deriveKey is RFC 9605 §4.4.2's derive_key_salt: { suite, kid, key
// (AES-GCM CryptoKey), keyBytes, salt }.
export async function deriveKey(suite, kid, baseKey) {
  const { hash, nk } = suiteParams(suite);
  baseKey = bytesOf(baseKey, 'base key');
  if (baseKey.length === 0) throw new SFrameError('bad-key', 'unusable base key: empty');
  kid = u64(kid, 'KID');
  const keyBytes = await hkdf(hash, baseKey, label('SFrame 1.0 Secret key ', kid, suite), nk);
  const salt = await hkdf(hash, baseKey, label('SFrame 1.0 Secret salt ', kid, suite), NONCE_SIZE);
  const key = await crypto.subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
  return { suite, kid, key, keyBytes, salt };
}

// makeNonce is salt XOR the counter, big-endian.
export function makeNonce(salt, ctr) {
  const n = Uint8Array.from(salt);
  ctr = u64(ctr, 'CTR');
  for (let i = 0; i < 8; i++) n[NONCE_SIZE - 1 - i] ^= Number(ctr >> BigInt(8 * i) & 0xffn);
  return n;
}

// seal returns header || AEAD(plaintext) with AAD = header || metadata.
export async function seal(k, ctr, metadata, plaintext) {
  const header = encodeHeader(k.kid, ctr);
  const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv: makeNonce(k.salt, ctr), additionalData: concat(header, bytesOf(metadata, 'metadata')), tagLength: 128 },
    k.key, bytesOf(plaintext, 'plaintext'));
  return concat(header, new Uint8Array(ct));
}

async function openAt(k, ct, n, ctr, metadata) {
  if (ct.length < n + TAG_SIZE) throw new SFrameError('short-frame', `frame too short: ${ct.length - n} bytes after the header, the tag alone is ${TAG_SIZE}`);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: makeNonce(k.salt, ctr), additionalData: concat(ct.subarray(0, n), metadata), tagLength: 128 },
      k.key, ct.subarray(n)));
  } catch {
    throw new SFrameError('auth', `authentication failed (KID ${k.kid}, CTR ${ctr})`);
  }
}

// open authenticates and decrypts an SFrame ciphertext (header first) with
// metadata as the rest of the AAD; the KID must be k's.
export async function open(k, ct, metadata) {
  ct = bytesOf(ct, 'ciphertext');
  const h = decodeHeader(ct);
  if (h.kid !== k.kid) throw new SFrameError('unknown-key', `no key for this key id: KID ${h.kid}, key is for ${k.kid}`);
  return openAt(k, ct, h.length, h.ctr, bytesOf(metadata, 'metadata'));
}

// senderBaseKey is the SFrame base key of kid under the call's key.
export async function senderBaseKey(base, kid) {
  base = bytesOf(base, 'base key');
  if (base.length === 0) throw new SFrameError('bad-key', 'unusable base key: empty');
  return hkdf('SHA-256', base, concat(enc.encode('seedcast sframe sender v1'), be(u64(kid, 'KID'), 8)), 32);
}

// randomSenderId draws a non-zero 48-bit id.
export function randomSenderId() {
  for (;;) {
    const b = crypto.getRandomValues(new Uint8Array(6));
    let v = 0n;
    for (const c of b) v = v << 8n | BigInt(c);
    if (v !== 0n) return v;
  }
}

function suiteOf(suite) {
  suite = suite ?? AES_128_GCM_SHA256_128;
  suiteParams(suite);
  return suite;
}

// Sender protects one sender's frames. encrypt may be called again before
// an earlier call settles: the counter is taken synchronously.
export class Sender {
  constructor({ suite, senderId } = {}) {
    this.suite = suiteOf(suite);
    this.senderId = senderId == null ? randomSenderId() : BigInt(senderId);
    if (this.senderId <= 0n || this.senderId > MAX_SENDER_ID) throw new SFrameError('bad-sender-id', 'sender id out of range: ' + this.senderId);
    this.epoch = 0;
    this._key = null;
    this._ctr = 0n;
  }

  get kid() { return makeKID(this.senderId, this.epoch); }

  // setKey makes base (the call's key for epoch) the key of new frames.
  async setKey(base, epoch) {
    const kid = makeKID(this.senderId, epoch);
    const k = await deriveKey(this.suite, kid, await senderBaseKey(base, kid));
    this._key = k;
    this.epoch = epoch;
  }

  // encrypt returns frame[:clearLen] || header || ciphertext || tag.
  async encrypt(frame, clearLen) {
    frame = bytesOf(frame, 'frame');
    if (!(clearLen >= 0) || frame.length < clearLen) throw new SFrameError('short-frame', `frame too short: ${frame.length} bytes, clear prefix ${clearLen}`);
    const k = this._key;
    if (!k) throw new SFrameError('no-key', 'no key set');
    const ctr = this._ctr++;
    const prefix = frame.subarray(0, clearLen);
    return concat(prefix, await seal(k, ctr, prefix, frame.subarray(clearLen)));
  }
}

// Receiver opens the frames of any sender of a call: the current epoch's
// key and the previous one's (until the next setKey or forgetPrevious),
// each KID's key derived when first seen and kept (at most maxKeys).
export class Receiver {
  constructor({ suite, maxKeys } = {}) {
    this.suite = suiteOf(suite);
    this.maxKeys = maxKeys > 0 ? maxKeys : 64;
    this._cur = null;
    this._prev = null;
    this._keys = new Map(); // `${epoch}/${kid}` → Promise<key>, in insertion order
  }

  setKey(base, epoch) {
    base = Uint8Array.from(bytesOf(base, 'base key'));
    if (base.length === 0) throw new SFrameError('bad-key', 'unusable base key: empty');
    if (this._cur && this._cur.epoch !== epoch) this._prev = this._cur;
    this._cur = { epoch, base };
    this._keys.clear();
  }

  forgetPrevious() {
    this._prev = null;
    this._keys.clear();
  }

  get epochs() { return [this._cur?.epoch, this._prev?.epoch].filter((e) => e != null); }

  _key(kid) {
    const { epochByte } = splitKID(kid);
    let e = null;
    if (!this._cur) throw new SFrameError('unknown-key', 'no key for this key id: no key set');
    if ((this._cur.epoch & 0xff) === epochByte) e = this._cur;
    else if (this._prev && (this._prev.epoch & 0xff) === epochByte) e = this._prev;
    else throw new SFrameError('unknown-key', `no key for this key id: epoch ${epochByte} (low byte) not held`);
    const id = e.epoch + '/' + kid;
    let p = this._keys.get(id);
    if (!p) {
      p = senderBaseKey(e.base, kid).then((sk) => deriveKey(this.suite, kid, sk));
      while (this._keys.size >= this.maxKeys) this._keys.delete(this._keys.keys().next().value);
      this._keys.set(id, p);
      p.catch(() => { if (this._keys.get(id) === p) this._keys.delete(id); });
    }
    return p;
  }

  // decrypt opens frame (its first clearLen bytes clear) and returns the
  // plain frame; it throws SFrameError.
  async decrypt(frame, clearLen) {
    frame = bytesOf(frame, 'frame');
    if (!(clearLen >= 0) || frame.length < clearLen) throw new SFrameError('short-frame', `frame too short: ${frame.length} bytes, clear prefix ${clearLen}`);
    const body = frame.subarray(clearLen);
    const h = decodeHeader(body);
    const k = await this._key(h.kid);
    const prefix = frame.subarray(0, clearLen);
    return concat(prefix, await openAt(k, body, h.length, h.ctr, prefix));
  }
}
