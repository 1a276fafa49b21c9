// End-to-end encryption of a call's media in the page: installs the
// standard encoded transform (RTCRtpScriptTransform) on RTCRtpSenders and
// RTCRtpReceivers, run by a dedicated module worker (worker.js) with
// sframe.js; docs/e2ee.md describes the format.
//
//   const e2ee = new E2EE();          // or the shared one: defaultE2EE()
//   await e2ee.setKey(key, epoch);    // key: Uint8Array(32)
//   e2ee.attachSender(pc.getSenders()[0], { id: 'cam' });
//   e2ee.attachReceiver(transceiver.receiver, { id: 'peer-7/video' });
//   e2ee.addEventListener('status', (e) => e.detail); // { id, state, stats }
//   await e2ee.stats();              // { [id]: { encrypted, decrypted, failed, … } }
//
// A receiver shows "end-to-end encrypted" only while frames decrypt
// (state 'decrypting'); 'failing' means frames arrive that do not (wrong
// key, tampered, not SFrame) — they are dropped, never decoded in the
// clear; 'no-key': no key yet, everything dropped. With E2EE, calls must
// send VP8 (and Opus): see sframe.js's clearPrefixLen.

export function supported() {
  return typeof RTCRtpScriptTransform === 'function';
}

let ids = 0;

export class E2EE extends EventTarget {
  constructor() {
    super();
    if (!supported()) throw new Error('e2ee: this browser has no RTCRtpScriptTransform');
    this._seq = 0;
    this._pending = new Map();
    this.worker = new Worker(import.meta.resolve('/assets/js/e2ee/worker.js'), { type: 'module', name: 'seedcast-e2ee' });
    this.worker.onmessage = (e) => {
      const m = e.data;
      if (m.type === 'reply') {
        const p = this._pending.get(m.seq);
        this._pending.delete(m.seq);
        if (p) m.ok ? p.resolve(m.value) : p.reject(new Error(m.error));
      } else if (m.type === 'status') {
        this.dispatchEvent(new CustomEvent('status', { detail: { id: m.id, state: m.state, stats: m.stats } }));
      }
    };
    this.worker.onerror = (e) => {
      const err = new Error('e2ee worker: ' + (e.message || 'failed to start'));
      for (const p of this._pending.values()) p.reject(err);
      this._pending.clear();
    };
    this.ready = this._request({ type: 'init', sframeURL: import.meta.resolve('/assets/js/e2ee/sframe.js') });
  }

  _request(m) {
    const seq = ++this._seq;
    return new Promise((resolve, reject) => {
      this._pending.set(seq, { resolve, reject });
      this.worker.postMessage({ ...m, seq });
    });
  }

  // attachSender encrypts everything rtpSender sends; opts: { id, kind,
  // codec } (codec overrides the frames' own MIME type). Returns the id.
  attachSender(rtpSender, opts = {}) {
    return this._attach(rtpSender, 'send', opts, rtpSender.track);
  }

  // attachReceiver decrypts what rtpReceiver gets and drops what does not
  // decrypt.
  attachReceiver(rtpReceiver, opts = {}) {
    return this._attach(rtpReceiver, 'receive', opts, rtpReceiver.track);
  }

  _attach(target, role, opts, track) {
    const id = String(opts.id ?? `${role}-${++ids}`);
    target.transform = new RTCRtpScriptTransform(this.worker, { role, id, kind: opts.kind || track?.kind || '', codec: opts.codec || '' });
    return id;
  }

  // setKey sets the call's key for epoch (a 32-byte Uint8Array): senders
  // switch to it; receivers accept it and the previous epoch's for
  // overlapMs.
  async setKey(key, epoch, { overlapMs = 10000 } = {}) {
    await this.ready;
    return this._request({ type: 'setKey', key, epoch, overlapMs });
  }

  // stats: { [id]: { id, role, kind, codec, state, encrypted, decrypted,
  // failed, dropped (could not encrypt), empty (0-byte frames dropped),
  // lastError, kid (the sender's current KID, hex) } }.
  async stats() {
    await this.ready;
    return this._request({ type: 'stats' });
  }

  // detach forgets a transform's counters (its track has ended).
  detach(id) {
    this.worker.postMessage({ type: 'forget', id: String(id), seq: 0 });
  }

  close() {
    this.worker.terminate();
  }
}

let shared = null;

// defaultE2EE is the page's one E2EE (one call, one key).
export function defaultE2EE() {
  shared ??= new E2EE();
  return shared;
}

export const attachSender = (rtpSender, opts) => defaultE2EE().attachSender(rtpSender, opts);
export const attachReceiver = (rtpReceiver, opts) => defaultE2EE().attachReceiver(rtpReceiver, opts);
export const setKey = (key, epoch, opts) => defaultE2EE().setKey(key, epoch, opts);
export const e2eeStats = () => defaultE2EE().stats();
