// The e2ee worker: the RTCRtpScriptTransform side of transform.js. It
// encrypts outgoing and decrypts incoming encoded frames with sframe.js
// (which the page names by its hashed URL in 'init': a module worker does
// not see the page's import map), drops every frame it cannot protect or
// open, and counts frames per transform.
//
// Messages from the page (each with a seq, answered by
// { type: 'reply', seq, ok, value | error }):
//   { type: 'init', sframeURL }
//   { type: 'setKey', key: Uint8Array(32), epoch, overlapMs }
//   { type: 'stats' }                  → value: { [id]: stats }
//   { type: 'forget', id }
// Unprompted, to the page:
//   { type: 'status', id, state, stats } when a transform's state changes:
//   'no-key', 'encrypting' (send), 'decrypting' or 'failing' (receive).

let sf = null;
let markReady;
const ready = new Promise((resolve) => { markReady = resolve; });
let cur = null; // { epoch, key }
let prev = null;
let prevTimer = 0;
const transforms = new Map(); // id → state

function status(st, state) {
  if (st.stats.state === state) return;
  st.stats.state = state;
  self.postMessage({ type: 'status', id: st.stats.id, state, stats: { ...st.stats } });
}

async function applyKeys(st) {
  if (st.sender) {
    if (cur) await st.sender.setKey(cur.key, cur.epoch);
  } else {
    if (prev) st.receiver.setKey(prev.key, prev.epoch);
    if (cur) st.receiver.setKey(cur.key, cur.epoch);
  }
}

function codecOf(st, frame) {
  if (st.codec) return st.codec;
  const m = frame.getMetadata ? frame.getMetadata() : {};
  if (m.mimeType) return m.mimeType;
  return st.stats.kind === 'audio' ? 'audio/opus' : 'video/VP8';
}

async function encryptFrame(st, frame, ctl) {
  await st.keyed;
  const data = new Uint8Array(frame.data);
  if (data.length === 0) { st.stats.empty++; return; } // nothing to send
  const codec = codecOf(st, frame);
  st.stats.codec = codec;
  try {
    const out = await st.sender.encrypt(data, sf.clearPrefixLen(codec, data));
    frame.data = out.buffer;
    ctl.enqueue(frame);
    st.stats.encrypted++;
    st.stats.kid = st.sender.kid.toString(16);
    status(st, 'encrypting');
  } catch (e) {
    // Never send a frame in the clear.
    st.stats.dropped++;
    st.stats.lastError = e.code || String(e);
    if (e.code === 'no-key') status(st, 'no-key');
  }
}

async function decryptFrame(st, frame, ctl) {
  const data = new Uint8Array(frame.data);
  // An empty frame (Chromium delivers one for an RTP padding packet) holds
  // nothing to decode and is no sign of a wrong key: dropped, not counted
  // as a failure.
  if (data.length === 0) { st.stats.empty++; return; }
  const codec = codecOf(st, frame);
  st.stats.codec = codec;
  try {
    const out = await st.receiver.decrypt(data, sf.clearPrefixLen(codec, data));
    frame.data = out.buffer;
    ctl.enqueue(frame);
    st.stats.decrypted++;
    status(st, 'decrypting');
  } catch (e) {
    // Dropped: never passed to the decoder.
    st.stats.failed++;
    st.stats.lastError = e.code || String(e);
    status(st, cur ? 'failing' : 'no-key');
  }
}

async function setup(transformer) {
  await ready;
  const o = transformer.options || {};
  const send = o.role === 'send';
  const st = {
    codec: o.codec || null,
    sender: send ? new sf.Sender() : null,
    receiver: send ? null : new sf.Receiver(),
    stats: { id: String(o.id), role: send ? 'send' : 'receive', kind: o.kind || '', codec: '', state: '', encrypted: 0, decrypted: 0, failed: 0, dropped: 0, empty: 0, lastError: '' },
  };
  st.keyed = applyKeys(st).catch(() => {});
  transforms.set(st.stats.id, st);
  const work = send ? encryptFrame : decryptFrame;
  transformer.readable
    .pipeThrough(new TransformStream({ transform: (frame, ctl) => work(st, frame, ctl) }))
    .pipeTo(transformer.writable)
    .catch(() => {}); // the track ended
}

self.onrtctransform = (event) => { setup(event.transformer); };

async function handle(m) {
  switch (m.type) {
    case 'init':
      if (!sf) {
        sf = await import(m.sframeURL);
        markReady();
      }
      return true;
    case 'setKey': {
      await ready;
      if (!(m.key instanceof Uint8Array) || m.key.length !== 32) throw new Error('e2ee: a key is 32 bytes');
      if (!Number.isInteger(m.epoch) || m.epoch < 0) throw new Error('e2ee: bad epoch');
      if (cur && cur.epoch !== m.epoch) prev = cur;
      cur = { epoch: m.epoch, key: Uint8Array.from(m.key) };
      await Promise.all([...transforms.values()].map((st) => {
        st.keyed = (st.keyed || Promise.resolve()).then(() => applyKeys(st));
        return st.keyed;
      }));
      clearTimeout(prevTimer);
      prevTimer = setTimeout(() => {
        prev = null;
        for (const st of transforms.values()) if (st.receiver) st.receiver.forgetPrevious();
      }, m.overlapMs ?? 10000);
      return true;
    }
    case 'stats':
      return Object.fromEntries([...transforms].map(([id, st]) => [id, { ...st.stats }]));
    case 'forget':
      transforms.delete(String(m.id));
      return true;
  }
  throw new Error('e2ee worker: unknown message ' + m.type);
}

self.onmessage = async (e) => {
  const m = e.data;
  try {
    self.postMessage({ type: 'reply', seq: m.seq, ok: true, value: await handle(m) });
  } catch (err) {
    self.postMessage({ type: 'reply', seq: m.seq, ok: false, error: String(err && err.message || err) });
  }
};
