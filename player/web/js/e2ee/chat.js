// End-to-end encrypted chat messages, keyed like the call's media (the
// same base key and epochs; docs/e2ee.md):
//
//   CK_0 = HKDF(base, "seedcast chat chain v1" || senderId (6 bytes))
//   MK_i = HKDF(CK_i, "msg"),  CK_i+1 = HKDF(CK_i, "chain")
//
// (HKDF-SHA256, salt empty, 32 bytes), each sender's own chain from a
// random 48-bit sender id, message i sealed with AES-256-GCM under MK_i.
// The envelope is base64url (no padding) of
//
//   version 0x01 | senderId (6) | epoch (4) | index (4) | iv (12) | ciphertext+tag
//
// with the first 15 bytes as AAD. Receivers open out of order (skipped
// message keys are cached, at most maxSkipped), refuse a message they have
// already opened, and can open a chain's history from index 0 (chain keys
// are checkpointed every 64 messages), so a member who joins with the base
// key reads earlier messages of that epoch.

// (An absolute specifier: the import map names it, and player's TestAssets
// resolves './' against js/ only.)
import { b64url, hkdf, unb64url } from '/assets/js/e2ee/keys.js';

export const VERSION = 1;
const HEADER = 15;
const IV = 12;
const TAG = 16;
export const MAX_ENVELOPE = 96 * 1024; // characters
export const MAX_TEXT = 64 * 1024; // UTF-8 bytes

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const empty = new Uint8Array(0);

// ChatError carries a code: 'malformed', 'version', 'unknown-epoch',
// 'replay', 'too-far', 'auth', 'no-key', 'too-long'.
export class ChatError extends Error {
  constructor(code, message) {
    super('e2ee chat: ' + message);
    this.name = 'ChatError';
    this.code = code;
  }
}

function hex6(id) { return id.toString(16).padStart(12, '0'); }

function idBytes(id) {
  const b = new Uint8Array(6);
  for (let i = 5; i >= 0; i--) { b[i] = Number(id & 0xffn); id >>= 8n; }
  return b;
}

async function chain0(base, senderId) {
  const info = new Uint8Array(22 + 6);
  info.set(enc.encode('seedcast chat chain v1'));
  info.set(idBytes(senderId), 22);
  return hkdf(base, empty, info);
}
const msgKey = (ck) => hkdf(ck, empty, 'msg');
const nextChain = (ck) => hkdf(ck, empty, 'chain');

async function aesKey(mk) {
  return crypto.subtle.importKey('raw', mk, 'AES-GCM', false, ['encrypt', 'decrypt']);
}

// ChatCipher seals this member's messages and opens everyone's.
export class ChatCipher {
  constructor({ senderId, maxSkipped = 1000, maxJump = 10000, maxEpochs = 16 } = {}) {
    if (senderId == null) {
      do {
        senderId = crypto.getRandomValues(new Uint8Array(6)).reduce((v, b) => v << 8n | BigInt(b), 0n);
      } while (senderId === 0n);
    }
    this.senderId = BigInt(senderId);
    if (this.senderId <= 0n || this.senderId >= 1n << 48n) throw new ChatError('malformed', 'sender id out of range');
    this.maxSkipped = maxSkipped;
    this.maxJump = maxJump;
    this.maxEpochs = maxEpochs;
    this.checkpointEvery = 64;
    this.epoch = null;
    this._bases = new Map(); // epoch → base key
    this._send = null; // { epoch, index, ck }
    this._chains = new Map(); // `${epoch}/${sender}` → { head, ck, checkpoints, seen }
    this._skipped = new Map(); // `${epoch}/${sender}/${index}` → MK, in insertion order
    this._queue = Promise.resolve();
  }

  // serial runs f after every earlier seal/open/setKey has settled.
  _serial(f) {
    const p = this._queue.then(f);
    this._queue = p.catch(() => {});
    return p;
  }

  // setKey adds the key of epoch and makes it the one new messages are
  // sealed with (this sender's chain for it starts at index 0). Older
  // epochs stay readable, the newest maxEpochs of them.
  setKey(base, epoch) {
    if (!(base instanceof Uint8Array) || base.length !== 32) throw new ChatError('no-key', 'a key is 32 bytes');
    if (!Number.isInteger(epoch) || epoch < 0 || epoch > 0xffffffff) throw new ChatError('malformed', 'epoch out of range');
    base = Uint8Array.from(base);
    return this._serial(async () => {
      this._bases.set(epoch, base);
      while (this._bases.size > this.maxEpochs) {
        const oldest = Math.min(...this._bases.keys());
        this._bases.delete(oldest);
        for (const k of this._chains.keys()) if (k.startsWith(oldest + '/')) this._chains.delete(k);
        for (const k of this._skipped.keys()) if (k.startsWith(oldest + '/')) this._skipped.delete(k);
      }
      if (this.epoch === null || epoch >= this.epoch) {
        this.epoch = epoch;
        this._send = { epoch, index: 0, ck: await chain0(base, this.senderId) };
      }
    });
  }

  // seal encrypts text (a string) into an envelope string.
  seal(text) {
    const pt = enc.encode(String(text));
    if (pt.length > MAX_TEXT) return Promise.reject(new ChatError('too-long', `message of ${pt.length} bytes, the limit is ${MAX_TEXT}`));
    return this._serial(async () => {
      const s = this._send;
      if (!s) throw new ChatError('no-key', 'no key set');
      if (s.index > 0xffffffff) throw new ChatError('too-far', 'chain exhausted');
      const mk = await msgKey(s.ck);
      const header = new Uint8Array(HEADER);
      const dv = new DataView(header.buffer);
      header[0] = VERSION;
      header.set(idBytes(this.senderId), 1);
      dv.setUint32(7, s.epoch);
      dv.setUint32(11, s.index);
      const iv = crypto.getRandomValues(new Uint8Array(IV));
      const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: header, tagLength: 128 }, await aesKey(mk), pt));
      s.ck = await nextChain(s.ck);
      s.index++;
      const out = new Uint8Array(HEADER + IV + ct.length);
      out.set(header);
      out.set(iv, HEADER);
      out.set(ct, HEADER + IV);
      return b64url(out);
    });
  }

  // open decrypts an envelope: { text, senderId (12 hex digits), epoch,
  // index }. It throws ChatError.
  open(envelope) {
    let raw;
    try {
      if (typeof envelope !== 'string' || envelope.length > MAX_ENVELOPE) throw new Error();
      raw = unb64url(envelope);
    } catch {
      return Promise.reject(new ChatError('malformed', 'not an envelope'));
    }
    if (raw.length < 1 || raw[0] !== VERSION) return Promise.reject(new ChatError('version', `envelope version ${raw[0]}, this page reads ${VERSION}`));
    if (raw.length < HEADER + IV + TAG) return Promise.reject(new ChatError('malformed', `envelope of ${raw.length} bytes`));
    const header = raw.subarray(0, HEADER);
    const dv = new DataView(raw.buffer, raw.byteOffset);
    const sender = raw.subarray(1, 7).reduce((v, b) => v << 8n | BigInt(b), 0n);
    const epoch = dv.getUint32(7);
    const index = dv.getUint32(11);
    const iv = raw.subarray(HEADER, HEADER + IV);
    const ct = raw.subarray(HEADER + IV);
    return this._serial(async () => {
      const base = this._bases.get(epoch);
      if (!base) throw new ChatError('unknown-epoch', `no key for epoch ${epoch}`);
      const id = epoch + '/' + sender;
      let c = this._chains.get(id);
      if (!c) {
        const ck = await chain0(base, sender);
        c = { head: 0, ck, checkpoints: new Map([[0, ck]]), seen: new Uint8Array(64) };
        this._chains.set(id, c);
      }
      if (index < c.head && c.seen[index >> 3] & 1 << (index & 7)) throw new ChatError('replay', `message ${index} of ${hex6(sender)} already opened`);
      const skipKey = id + '/' + index;
      let mk = this._skipped.get(skipKey);
      let advance = null; // what to commit if the message opens
      if (!mk) {
        if (index >= c.head) {
          if (index - c.head > this.maxJump) throw new ChatError('too-far', `message ${index} is more than ${this.maxJump} past ${c.head}`);
          let ck = c.ck;
          const skipped = [];
          const checkpoints = [];
          for (let j = c.head; j < index; j++) {
            if (index - j <= this.maxSkipped) skipped.push([j, await msgKey(ck)]);
            ck = await nextChain(ck);
            if ((j + 1) % this.checkpointEvery === 0) checkpoints.push([j + 1, ck]);
          }
          mk = await msgKey(ck);
          advance = { skipped, checkpoints, ck: await nextChain(ck) };
          if ((index + 1) % this.checkpointEvery === 0) checkpoints.push([index + 1, advance.ck]);
        } else {
          // Older than the head and not cached: from the checkpoint below.
          const from = index - index % this.checkpointEvery;
          let ck = c.checkpoints.get(from);
          for (let j = from; j < index; j++) ck = await nextChain(ck);
          mk = await msgKey(ck);
        }
      }
      let pt;
      try {
        pt = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: header, tagLength: 128 }, await aesKey(mk), ct));
      } catch {
        throw new ChatError('auth', `message ${index} of ${hex6(sender)} does not authenticate (tampered, or another key)`);
      }
      let text;
      try {
        text = dec.decode(pt);
      } catch {
        throw new ChatError('malformed', 'message is not UTF-8');
      }
      if (advance) {
        for (const [j, k] of advance.skipped) {
          if (!(c.seen[j >> 3] & 1 << (j & 7))) this._skipped.set(id + '/' + j, k);
        }
        while (this._skipped.size > this.maxSkipped) this._skipped.delete(this._skipped.keys().next().value);
        for (const [j, k] of advance.checkpoints) c.checkpoints.set(j, k);
        c.head = index + 1;
        c.ck = advance.ck;
      }
      this._skipped.delete(skipKey);
      if (c.seen.length <= index >> 3) {
        const grown = new Uint8Array(Math.max(c.seen.length * 2, (index >> 3) + 1));
        grown.set(c.seen);
        c.seen = grown;
      }
      c.seen[index >> 3] |= 1 << (index & 7);
      return { text, senderId: hex6(sender), epoch, index };
    });
  }
}
