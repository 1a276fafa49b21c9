// Presence: this tab's WebSocket to /presence/ws (docs/protocol.md §7). It
// proves the browser's identity key with the server's challenge, sends the
// contact list (the keys it accepts calls from), learns which mutual
// contacts are online, and carries ringing calls: ring, answer, decline,
// hold, hang-up, and the server's call states.
//
// One Presence a page: Presence.get(). It reconnects by itself, with
// backoff and jitter; a call survives the page changing (the tab keeps its
// device id).

import * as id from './identity.js';

const enc = new TextEncoder();

export class Presence extends EventTarget {
  static #one = null;
  static #making = null;

  // get returns the page's Presence, started; create makes the identity
  // if the browser has none yet (otherwise nobody can ring this browser
  // and there is nothing to connect).
  static async get({ create = false } = {}) {
    if (this.#one) return this.#one;
    if (create) return this.#make();
    if (!this.#making && !(await id.has())) return this.#one; // made meanwhile, or nothing
    return this.#make();
  }

  static #make() {
    this.#making ??= (async () => {
      const p = new Presence();
      this.#one = p;
      p.start();
      return p;
    })();
    return this.#making;
  }

  constructor() {
    super();
    this.ws = null;
    this.state = 'connecting'; // connecting | online | offline
    this.online = new Set(); // mutual contacts online
    this.calls = new Map(); // call id → latest CallInfo
    this.refs = 0;
    this.pending = new Map(); // ref → {resolve, reject}
    this.tries = 0;
    this.stopped = false;
    this.fatal = null;
    id.changes.addEventListener('contacts', () => this.sendContacts());
    id.changes.addEventListener('identity', () => this.sendSettings());
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  async start() {
    if (this.stopped) return;
    let me, device;
    try {
      me = await id.identity();
      device = await id.device();
    } catch (e) {
      this.fatal = e.message;
      this.setState('offline');
      this.emit('error', { code: 'identity', message: e.message });
      return;
    }
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/presence/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = async (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'challenge') {
        const nonce = id.fromB64url(m.nonce);
        const signed = concat(enc.encode('seedcast presence v1'), [0], enc.encode(location.host), [0], nonce, [0], enc.encode(device));
        const sig = await id.sign(signed);
        const contacts = (await id.contacts()).map((c) => c.key);
        this.send({ type: 'hello', key: me.key, device, name: me.name || '', sig: id.b64url(sig), contacts, autoAnswer: id.autoAnswer() });
        return;
      }
      this.onMessage(m);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const p of this.pending.values()) p.reject(Object.assign(new Error('The connection to the server was lost.'), { code: 'network' }));
      this.pending.clear();
      if (this.stopped || this.fatal) { this.setState('offline'); return; }
      this.setState('connecting');
      // Backoff with jitter: a server restart is not met by every tab at once.
      const base = Math.min(15000, 500 * 2 ** Math.min(this.tries++, 5));
      setTimeout(() => this.start(), base / 2 + Math.random() * base / 2);
    };
  }

  onMessage(m) {
    switch (m.type) {
      case 'ready':
        this.tries = 0;
        this.online = new Set(m.online || []);
        for (const c of m.calls || []) this.onCall(c);
        this.setState('online');
        this.emit('ready', m);
        this.emit('presence');
        break;
      case 'presence':
        if (m.here) this.online.add(m.key); else this.online.delete(m.key);
        this.emit('presence', { key: m.key, here: !!m.here });
        break;
      case 'call':
        this.onCall(m.call);
        break;
      case 'error':
        if (m.ref && this.pending.has(m.ref)) {
          this.pending.get(m.ref).reject(Object.assign(new Error(m.message), { code: m.code }));
          this.pending.delete(m.ref);
        }
        this.emit('error', m);
        break;
      case 'closed':
        // Another page of this tab took over (it should not happen), or
        // the server refuses us for good: do not fight it.
        if (m.code === 'bad-signature' || m.code === 'too-many-devices' || m.code === 'replaced') this.fatal = m.message;
        this.emit('error', m);
        break;
    }
  }

  onCall(c) {
    const prev = this.calls.get(c.id);
    this.calls.set(c.id, c);
    if (c.state === 'ended') setTimeout(() => { if (this.calls.get(c.id) === c) this.calls.delete(c.id); }, 60000);
    id.recordCall(c);
    // A ring this tab started resolves on its first state.
    if (c.side === 'caller' && !prev && this.ringing) {
      const r = this.ringing;
      this.ringing = null;
      r.resolve(c);
    }
    this.emit('call', c);
  }

  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ v: 1, ...m }));
      return true;
    }
    return false;
  }

  async sendContacts() {
    this.send({ type: 'contacts', contacts: (await id.contacts()).map((c) => c.key) });
  }

  async sendSettings() {
    const me = await id.identity();
    this.send({ type: 'settings', name: me.name || '', autoAnswer: id.autoAnswer() });
  }

  // whenOnline resolves once the server said ready (at most ms later:
  // then it rejects).
  whenOnline(ms = 8000) {
    if (this.state === 'online') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.removeEventListener('ready', on); reject(Object.assign(new Error(this.fatal || 'Not connected to the server.'), { code: 'network' })); }, ms);
      const on = () => { clearTimeout(t); this.removeEventListener('ready', on); resolve(); };
      this.addEventListener('ready', on);
    });
  }

  // ring calls a contact. It resolves with the call (outgoing-ringing, or
  // already ended: busy) or rejects with the server's error (code
  // unavailable, not-contact, busy).
  async ring(key, { video = true, e2ee = true, room = '', box = '', salt } = {}) {
    await this.whenOnline();
    return new Promise((resolve, reject) => {
      const ref = String(++this.refs);
      salt ||= id.b64url(crypto.getRandomValues(new Uint8Array(16)));
      this.ringing = { resolve, reject };
      this.pending.set(ref, { resolve, reject: (e) => { this.ringing = null; reject(e); } });
      if (!this.send({ type: 'ring', ref, to: key, video, e2ee, salt, room, box })) {
        this.pending.delete(ref);
        this.ringing = null;
        reject(Object.assign(new Error('Not connected to the server.'), { code: 'network' }));
        return;
      }
      setTimeout(() => {
        if (this.pending.delete(ref) && this.ringing) { this.ringing = null; reject(new Error('No answer from the server.')); }
      }, 10000);
    });
  }

  act(type, call) { return this.send({ type, call }); }
  answer(call) { return this.act('answer', call); }
  decline(call) { return this.act('decline', call); }
  cancel(call) { return this.act('cancel', call); }
  hangup(call) { return this.act('hangup', call); }
  hold(call) { return this.act('hold', call); }
  resume(call) { return this.act('resume', call); }
}

function concat(...parts) {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(n);
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}

// callURL is the meeting page of a call that has its room (connecting on).
export function callURL(c) {
  const u = new URL(`/call/${encodeURIComponent(c.room)}`, location.origin);
  u.searchParams.set('ring', c.id);
  u.searchParams.set('invite', c.invite);
  return u.pathname + u.search;
}
