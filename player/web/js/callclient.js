// The call client: the signalling WebSocket (docs/protocol.md §6) and the
// two peer connections of a participant. The page sends camera, microphone
// and screen on the publish connection, which this side offers; the server
// forwards others' tracks on the subscribe connection, which it offers.
//
// Events (on the client, an EventTarget): welcome, waiting, members,
// tracks (a remote track arrived or left), speaker, levels, chat, knock,
// knock-end, room, mute, state (connection state text), closed, error;
// with end-to-end encryption also e2ee (a transform's state: { id, state })
// and rotated (the host gave the call a new key).
//
// End-to-end encryption (docs/e2ee.md): given keys (a CallKeys), every
// track sent is encrypted in SFrame by an encoded transform, everything
// received is decrypted (what does not decrypt is dropped, never shown),
// video is VP8 only, and chat lines are sealed. The key moves to the next
// epoch each time someone leaves (the server counts), and the host can
// replace it.

import { E2EE } from '/assets/js/e2ee/transform.js';
import { ChatCipher } from '/assets/js/e2ee/chat.js';
import { sealRotation, openRotation } from '/assets/js/e2ee/callkeys.js';

const RESUME_FOR_MS = 6000; // the server's resume window
const LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

// Opus with DTX: the server's answer does not ask for it, so add it here
// (it tells this browser's encoder to stop sending during silence).
function withDTX(sdp) {
  return sdp.replace(/a=fmtp:(\d+) (.*useinbandfec=1.*)/g, (line, pt, params) =>
    params.includes('usedtx') ? line : `a=fmtp:${pt} ${params};usedtx=1`);
}

// syncAudio keeps one playing <audio> element in sink per track id of
// want (a Set), taking the streams from client.streams.
export function syncAudio(sink, client, want) {
  for (const a of [...sink.children]) if (!want.has(a.dataset.id)) { a.srcObject = null; a.remove(); }
  for (const id of want) {
    if (sink.querySelector(`[data-id="${CSS.escape(id)}"]`)) continue;
    const a = document.createElement('audio');
    a.autoplay = true;
    a.dataset.id = id;
    a.srcObject = client.streams.get(id);
    sink.append(a);
  }
}

export class CallClient extends EventTarget {
  constructor({ url, name, invite, keys }) {
    super();
    this.keys = keys || null; // CallKeys: end-to-end encrypted
    this.epoch = 0;
    this.keyReady = Promise.resolve();
    this.chatChain = Promise.resolve();
    if (this.keys) {
      this.media = new E2EE();
      this.media.addEventListener('status', (e) => this.emit('e2ee', e.detail));
      this.chatCipher = new ChatCipher();
    }
    this.url = url;
    this.name = name;
    this.invite = invite || '';
    this.me = null; // participant id
    this.token = null;
    this.host = false;
    this.kind = 'call';
    this.members = new Map(); // id → member
    this.streams = new Map(); // track id → MediaStream (remote)
    this.local = { microphone: null, camera: null, screen: null, 'screen-audio': null }; // MediaStreamTrack
    this.senders = {}; // source → RTCRtpTransceiver
    this.muted = { microphone: true, camera: true };
    this.pub = null;
    this.sub = null;
    this.ws = null;
    this.refs = 0;
    this.pending = new Map(); // ref → {resolve, reject}
    this.iceServers = [];
    this.closed = false;
    this.lost = 0; // when the socket was lost (ms), 0 while up
    this.sizes = new Map(); // track id → "w×h" last sent
    this.subscribed = new Set();
    this.pubChain = Promise.resolve(); // publish negotiations, one at a time
    this.rejoins = 0;
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // join opens the socket and joins (or knocks). Resolves on welcome or waiting.
  join() {
    return this.open({ type: 'join', name: this.name, invite: this.invite });
  }

  open(first) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let settled = false;
      ws.onopen = () => this.send(first);
      ws.onmessage = (ev) => {
        let m;
        try { m = JSON.parse(ev.data); } catch { return; }
        if (!settled && (m.type === 'welcome' || m.type === 'waiting')) { settled = true; resolve(m); }
        if (!settled && m.type === 'closed') { settled = true; reject(Object.assign(new Error(m.message), { code: m.code })); }
        this.onMessage(m);
      };
      ws.onclose = () => {
        if (!settled) { settled = true; reject(Object.assign(new Error('cannot reach the server'), { code: 'network' })); }
        if (this.ws === ws) this.onSocketLost();
      };
    });
  }

  send(m) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ v: 1, ...m }));
  }

  request(m) {
    const ref = String(++this.refs);
    return new Promise((resolve, reject) => {
      this.pending.set(ref, { resolve, reject });
      this.send({ ...m, ref });
      setTimeout(() => { if (this.pending.delete(ref)) reject(new Error('no answer from the server')); }, 15000);
    });
  }

  onMessage(m) {
    if (m.ref && this.pending.has(m.ref) && (m.type === 'answer' || m.type === 'error' || m.type === 'invite' || m.type === 'pong')) {
      const p = this.pending.get(m.ref);
      this.pending.delete(m.ref);
      if (m.type === 'error') p.reject(Object.assign(new Error(m.message), { code: m.code }));
      else p.resolve(m);
    }
    switch (m.type) {
      case 'welcome': this.onWelcome(m); break;
      case 'answer': // our own tracks and mute states, as the others see them
        if (m.member && this.me) { this.members.set(this.me, m.member); this.emit('members'); }
        break;
      case 'waiting': this.emit('waiting', m); break;
      case 'joined': this.members.set(m.member.id, m.member); this.emit('members'); break;
      case 'left':
        this.members.delete(m.participant);
        if (m.epoch) this.setEpoch(m.epoch);
        this.emit('members');
        break;
      case 'e2ee': this.onRotation(m); break;
      case 'tracks': {
        const old = this.members.get(m.participant);
        this.members.set(m.participant, m.member);
        this.subscribeNew(old ? old.tracks : [], m.member.tracks);
        this.emit('members');
        break;
      }
      case 'host-changed':
        for (const mem of this.members.values()) mem.host = mem.id === m.member.id;
        this.host = m.member.id === this.me;
        this.emit('members');
        this.emit('host', m);
        break;
      case 'offer': this.onOffer(m.sdp); break;
      case 'mute': {
        const mem = this.members.get(m.participant);
        if (mem) {
          if (m.source === 'microphone') mem.micMuted = m.muted;
          if (m.source === 'camera') mem.cameraMuted = m.muted;
          for (const t of mem.tracks) if (t.source === m.source) t.muted = m.muted;
        }
        if (m.participant === this.me && m.by === 'host' && m.muted && m.source === 'microphone') {
          this.setMuted('microphone', true, false); // the host muted us: stop the microphone
        }
        this.emit('members');
        this.emit('mute', m);
        break;
      }
      case 'speaker': this.emit('speaker', m); break;
      case 'levels': this.emit('levels', m.levels || {}); break;
      case 'chat': this.deliverChat(m.line); break;
      case 'knock': this.emit('knock', m.member); break;
      case 'knock-end': this.emit('knock-end', m); break;
      case 'room': this.emit('room', m); break;
      case 'layers': this.onLayers(m); break;
      case 'error': this.emit('error', m); break;
      case 'closed':
        if ((m.code === 'media' || m.code === 'timeout') && this.me && this.rejoins < 3) {
          // Our media connection failed, or we were away too long: join
          // again as a new participant rather than drop out of the call.
          this.rejoins++;
          this.ws = null;
          setTimeout(() => this.rejoin(), 300);
          break;
        }
        this.closed = true;
        this.emit('closed', m);
        break;
    }
  }

  onWelcome(m) {
    const resumed = m.resumed && this.me === m.participant;
    this.me = m.participant;
    this.token = m.token;
    this.host = m.host;
    this.kind = m.kind;
    this.locked = m.locked;
    if (m.iceServers) this.iceServers = m.iceServers;
    const before = new Map(this.members);
    this.members = new Map((m.members || []).map((x) => [x.id, x]));
    this.lost = 0;
    if (this.keys && (!resumed || (m.epoch || 0) !== this.epoch)) this.setEpoch(m.epoch || 0, !resumed);
    this.emit('state', '');
    if (!resumed) {
      for (const x of this.members.values()) if (x.id !== this.me) this.subscribeNew([], x.tracks);
    } else {
      for (const x of this.members.values()) if (x.id !== this.me) this.subscribeNew(before.get(x.id)?.tracks || [], x.tracks);
      // Media that rode out the blip is left alone; a connection that did
      // not (a new network) restarts ICE: new credentials, a new offer.
      if (this.pub && this.pub.connectionState !== 'connected') this.pub.restartIce();
    }
    this.emit('welcome', m);
    this.emit('members');
    for (const line of m.chat || []) if (!resumed) this.deliverChat(line);
  }

  // --- end-to-end encryption ---

  // setEpoch moves the media and chat keys to epoch (history: also the
  // earlier epochs' chat keys, to read the chat history).
  setEpoch(epoch, history = false) {
    if (!this.keys) return;
    this.epoch = Math.max(this.epoch, epoch);
    const e = this.epoch;
    this.keyReady = this.keyReady.then(async () => {
      const key = await this.keys.at(e);
      if (!key) { this.emit('e2ee', { id: '*', state: 'no-key' }); return; }
      if (history) {
        for (let x = Math.max(this.keys.from, e - 15); x < e; x++) await this.chatCipher.setKey(await this.keys.at(x), x);
      }
      await this.chatCipher.setKey(key, e);
      await this.media.setKey(key, e);
    }).catch((err) => this.emit('error', { code: 'e2ee', message: err.message }));
    return this.keyReady;
  }

  // rotateKey (the host) gives the call a fresh key from this epoch on;
  // who is still in the call gets it sealed with the key they hold now.
  async rotateKey() {
    if (!this.keys) return null;
    await this.keyReady;
    const cur = await this.keys.at(this.epoch);
    const fresh = crypto.getRandomValues(new Uint8Array(32));
    this.send({ type: 'e2ee', sealed: await sealRotation(cur, this.epoch, fresh) });
    this.keys.rotate(fresh, this.epoch);
    this.keys.cache.delete(this.epoch - 1);
    await this.setEpoch(this.epoch);
    this.emit('rotated', { by: this.me });
    return this.keys;
  }

  async onRotation(m) {
    if (!this.keys) return;
    await this.keyReady;
    for (const e of [this.epoch, this.epoch - 1]) {
      const cur = await this.keys.at(e);
      if (!cur) continue;
      try {
        const r = await openRotation(cur, m.sealed);
        this.keys.rotate(r.key, r.epoch);
        await this.setEpoch(Math.max(r.epoch, this.epoch));
        this.emit('rotated', { by: m.participant });
        return;
      } catch { /* try the previous epoch's key */ }
    }
    this.emit('e2ee', { id: '*', state: 'failing', message: 'a key rotation this page cannot open' });
  }

  // deliverChat emits chat lines in order, opening sealed ones.
  deliverChat(line) {
    this.chatChain = this.chatChain.then(async () => {
      if (!line.sealed) { this.emit('chat', line); return; }
      if (!this.chatCipher) { this.emit('chat', { ...line, text: 'An end-to-end encrypted message (this link has no key).', locked: true }); return; }
      try {
        await this.keyReady;
        const o = await this.chatCipher.open(line.sealed);
        this.emit('chat', { ...line, text: o.text, e2ee: true });
      } catch {
        this.emit('chat', { ...line, text: 'This message cannot be decrypted with your key.', locked: true });
      }
    });
  }

  subscribeNew(oldTracks, tracks) {
    const known = new Set(oldTracks.map((t) => t.id));
    const ids = tracks.map((t) => t.id).filter((id) => !known.has(id) && !this.subscribed.has(id));
    for (const id of ids) this.subscribed.add(id);
    const live = new Set(tracks.map((t) => t.id));
    for (const t of oldTracks) if (!live.has(t.id)) { this.subscribed.delete(t.id); this.sizes.delete(t.id); }
    if (ids.length) this.send({ type: 'subscribe', ids });
  }

  // A tile shows track id at width × height CSS pixels (0 × 0: hidden).
  setSize(id, width, height) {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(width * dpr), h = Math.round(height * dpr);
    const key = `${w}x${h}`;
    if (this.sizes.get(id) === key) return;
    this.sizes.set(id, key);
    this.send({ type: 'size', track: id, width: w, height: h });
  }

  // --- subscribe connection (the server offers) ---

  makeSub() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.ontrack = (ev) => {
      const stream = ev.streams[0];
      if (!stream) return;
      if (this.media) this.media.attachReceiver(ev.receiver, { id: stream.id, kind: ev.track.kind });
      this.streams.set(stream.id, stream);
      ev.track.onended = () => this.emit('tracks');
      this.emit('tracks', { id: stream.id, stream });
    };
    pc.onicecandidate = (ev) => {
      if (ev.candidate) this.send({ type: 'trickle', target: 'subscribe', candidate: ev.candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => this.emit('pcstate', { which: 'subscribe', state: pc.connectionState });
    return pc;
  }

  async onOffer(sdp) {
    if (!this.sub) this.sub = this.makeSub();
    const pc = this.sub;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    // Forget streams whose transceivers stopped receiving.
    const live = new Set();
    for (const tr of pc.getTransceivers()) {
      if (tr.currentDirection !== 'inactive' && tr.receiver.track && tr.direction !== 'inactive') {
        for (const [id, s] of this.streams) if (s.getTracks().includes(tr.receiver.track)) live.add(id);
      }
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.send({ type: 'answer', sdp: pc.localDescription.sdp });
    for (const t of pc.getTransceivers()) {
      if (t.currentDirection === 'inactive' || t.currentDirection === 'sendonly') {
        for (const [id, s] of this.streams) if (s.getTracks().includes(t.receiver.track)) this.streams.delete(id);
      }
    }
    this.emit('tracks');
  }

  // --- publish connection (this side offers) ---

  makePub() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    pc.onicecandidate = (ev) => {
      if (ev.candidate) this.send({ type: 'trickle', target: 'publish', candidate: ev.candidate.toJSON() });
    };
    pc.onnegotiationneeded = () => this.negotiate();
    pc.onconnectionstatechange = () => this.emit('pcstate', { which: 'publish', state: pc.connectionState });
    return pc;
  }

  negotiate() {
    this.pubChain = this.pubChain.then(() => this.doNegotiate()).catch((e) => this.emit('error', { code: e.code || 'media', message: e.message }));
    return this.pubChain;
  }

  async doNegotiate() {
    const pc = this.pub;
    if (!pc || this.closed || pc.signalingState !== 'stable') return;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    const tracks = [];
    for (const [source, tr] of Object.entries(this.senders)) {
      if (!tr.mid || tr.currentDirection === 'stopped' || tr.direction === 'inactive') continue;
      const t = this.local[source];
      const s = t ? t.getSettings() : {};
      tracks.push({ mid: tr.mid, source, width: s.width || 0, height: s.height || 0,
        muted: source === 'microphone' || source === 'camera' ? this.muted[source] : false });
    }
    const m = await this.request({ type: 'publish', sdp: pc.localDescription.sdp, tracks });
    if (pc.signalingState === 'have-local-offer') await pc.setRemoteDescription({ type: 'answer', sdp: withDTX(m.sdp) });
  }

  // publish sends a source's track; a null track stops the source.
  async publish(source, track) {
    if (this.closed) { track?.stop(); return; }
    if (!this.pub) this.pub = this.makePub();
    const pc = this.pub;
    let tr = this.senders[source];
    if (tr && tr.direction !== 'inactive') {
      if (!track) { // stop: the server ends the track for everyone
        const old = this.local[source];
        this.local[source] = null;
        tr.direction = 'inactive';
        await tr.sender.replaceTrack(null);
        old?.stop();
        return this.negotiate();
      }
      this.local[source]?.stop();
      this.local[source] = track;
      return tr.sender.replaceTrack(track);
    }
    if (!track) return;
    this.local[source] = track;
    const init = { direction: 'sendonly', streams: [] };
    if (source === 'camera') init.sendEncodings = LAYERS.map((l) => ({ ...l }));
    if (tr) { // reuse an inactive transceiver of this source
      tr.direction = 'sendonly';
      await tr.sender.replaceTrack(track);
      if (source === 'camera') {
        const p = tr.sender.getParameters();
        p.encodings.forEach((e) => { e.active = true; });
        await tr.sender.setParameters(p).catch(() => {});
      }
      return; // negotiationneeded fires
    }
    tr = pc.addTransceiver(track, init);
    this.senders[source] = tr;
    if (this.media) this.media.attachSender(tr.sender, { id: source, kind: track.kind });
    if (track.kind === 'video' && RTCRtpSender.getCapabilities) {
      // VP8 first: the most dependable simulcast in browsers. Encrypted
      // calls send VP8 only: its packetizer does not read the payload
      // (H.264's does), and the server finds keyframes in its clear bytes.
      const codecs = RTCRtpSender.getCapabilities('video').codecs;
      const vp8 = codecs.filter((c) => c.mimeType === 'video/VP8');
      const pref = this.media ? [...vp8, ...codecs.filter((c) => c.mimeType === 'video/rtx')] : [...vp8, ...codecs.filter((c) => c.mimeType !== 'video/VP8')];
      try { tr.setCodecPreferences(pref); } catch { /* keep the default order */ }
    }
    if (source === 'screen' && 'contentHint' in track) track.contentHint = 'detail';
  }

  // setMuted turns a microphone or camera off (the device is released: no
  // recording light stays on) or on again (a new capture). get() returns
  // the new track.
  async setMuted(source, muted, tell = true, get) {
    if (this.closed) return;
    this.muted[source] = muted;
    const tr = this.senders[source];
    if (muted) {
      this.local[source]?.stop();
      this.local[source] = null;
      if (tr) await tr.sender.replaceTrack(null);
    } else if (get) {
      const track = await get();
      if (tr && tr.direction !== 'inactive') {
        this.local[source] = track;
        await tr.sender.replaceTrack(track);
      } else {
        await this.publish(source, track);
      }
    }
    if (tell) this.send({ type: 'mute', source, muted });
    const me = this.members.get(this.me);
    if (me) {
      if (source === 'microphone') me.micMuted = muted;
      if (source === 'camera') me.cameraMuted = muted;
      this.emit('members');
    }
  }

  // Dynacast: the server says which camera layers anyone watches.
  async onLayers(m) {
    const tr = this.senders.camera;
    if (!tr || tr.mid !== m.mid) return;
    const p = tr.sender.getParameters();
    if (!p.encodings) return;
    let changed = false;
    for (const e of p.encodings) {
      const on = (m.active || []).includes(e.rid);
      if (e.rid && e.active !== on) { e.active = on; changed = true; }
    }
    if (changed) await tr.sender.setParameters(p).catch(() => {});
    this.activeLayers = m.active;
  }

  async chat(text) {
    if (!this.chatCipher) { this.send({ type: 'chat', text }); return; }
    await this.keyReady;
    this.send({ type: 'chat', sealed: await this.chatCipher.seal(text) });
  }
  hostAction(action, participant) { this.send({ type: 'host', action, participant }); }
  async inviteLink() {
    const m = await this.request({ type: 'invite' });
    const u = new URL(location.href);
    u.search = '';
    u.searchParams.set('invite', m.invite);
    if (this.keys) u.hash = this.keys.fragment(); // the key travels in the link, never to the server
    return u.toString();
  }

  // --- losing and resuming the signalling connection ---

  onSocketLost() {
    if (this.closed || !this.me) {
      if (!this.closed && !this.me) this.emit('closed', { code: 'network', message: 'The connection to the server was lost.' });
      return;
    }
    if (!this.lost) this.lost = Date.now();
    this.emit('state', 'Reconnecting…');
    setTimeout(() => this.resume(), 500);
  }

  async resume() {
    if (this.closed) return;
    try {
      await this.open({ type: 'resume', participant: this.me, token: this.token });
    } catch (e) {
      if (e.code === 'unknown-participant' || Date.now() - this.lost > RESUME_FOR_MS + 4000) {
        return this.rejoin();
      }
      // onclose of the failed socket schedules the next try
    }
  }

  // rejoin starts over after a loss too long to resume: a new participant
  // with the same name, sending the same sources again.
  async rejoin() {
    this.emit('state', 'Rejoining…');
    this.me = null;
    this.members.clear();
    this.subscribed.clear();
    this.sizes.clear();
    this.streams.clear();
    this.pub?.close();
    this.sub?.close();
    this.pub = null;
    this.sub = null;
    const keep = { ...this.local };
    this.senders = {};
    this.local = { microphone: null, camera: null, screen: null, 'screen-audio': null };
    try {
      await this.join();
    } catch (e) {
      this.emit('closed', { code: e.code || 'network', message: e.message });
      return;
    }
    for (const [source, t] of Object.entries(keep)) if (t && t.readyState === 'live') await this.publish(source, t);
    this.emit('tracks');
  }

  // Test hook: kill the socket, and refuse to reconnect for ms.
  dropSignalling(ms = 0) {
    const ws = this.ws;
    if (ms > 0) {
      const realOpen = this.open.bind(this);
      this.open = (first) => new Promise((_, reject) => setTimeout(() => reject(Object.assign(new Error('offline'), { code: 'network' })), 10))
        .catch((e) => { this.onSocketLost(); throw e; });
      setTimeout(() => { this.open = realOpen; }, ms);
    }
    ws?.close();
  }

  leave() {
    this.closed = true;
    this.send({ type: 'leave' });
    for (const t of Object.values(this.local)) t?.stop();
    this.pub?.close();
    this.sub?.close();
    this.ws?.close();
    this.media?.close();
  }
}
