// Player plays one stream: the swarm node (Go, in WebAssembly) fetches and
// verifies chunks from peers and the origin; this module only appends them
// to Media Source Extensions and steers the playhead. It holds no swarm
// logic.
//
// Events (CustomEvent, detail in parentheses): state ({state, message}),
// play, pause, playing, bufferstart, bufferend, stats (the stats object),
// qualitychange ({quality, renditions}), relaychange ({relayKbps,
// throttled}), error ({code, message}).
//
// Playback follows the node's clock: every chunk comes with the wall-clock
// time (deadline) its media time should play at, and the player holds the
// playhead there by nudging playbackRate within 0.95–1.5×, seeking only
// when more than 3 s off. The node asks the origin for any chunk no peer
// delivered as its deadline nears, so playing on that clock does not stall
// while the origin has the chunk.

import { loadNode } from './node.js';
import { MediaSourceImpl, Track, supported } from './mse.js';

const SEEK_OFF = 3; // seconds off the clock before a seek instead of a rate change
const DEAD_BAND = 0.12; // seconds within which the rate is 1
const MIN_RATE = 0.95;
const MAX_RATE = 1.5;
const GAP_JUMP = 2; // seconds of gap the playhead jumps
const START_AHEAD = 0.25; // seconds buffered past the clock before playback starts
const RETRY_MAX = 15000; // ms between tries to reach a server that does not answer
const QUIET_MS = 4000; // no chunk for this long while playing: ask the server why
const RESTART_MS = 8000; // no chunk for this long while the server says live: start afresh

export const codes = {
  offline: 'offline',
  notFound: 'not-found',
  unreachable: 'unreachable',
  mse: 'mse-unsupported',
  codec: 'unsupported-codec',
  decode: 'decode',
  autoplay: 'autoplay-blocked',
  node: 'node',
};

export class Player extends EventTarget {
  // bufferMs is the playback delay behind live; 0 keeps the swarm's, which
  // the tracker gives every viewer (the hops of the push tree share it).
  constructor(video, { stream, server = '', bufferMs = 0, startupMs = 250 }) {
    super();
    this.video = video;
    this.stream = stream;
    this.server = server;
    this.bufferMs = bufferMs;
    this.startupMs = startupMs;
    this.webrtc = typeof globalThis.RTCPeerConnection === 'function';
    this.relayKbps = 0;
    this.quality = 'auto';
    this.state = 'idle';
    this.lastStats = null;
    this.throttled = false;
    this.info = null; // {renditions, selected}
    this.gen = 0; // bumps at every (re)start: callbacks of older runs are ignored
    this.ref = null; // {offset, ingestMs, end}: the clock's offset, and the newest chunk's end and ingest time
    this.waiting = false;
    this.started = false; // playback began
    this.timer = null;
    this.stopping = null;
    this.bindVideo();
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // offline says the stream is not live; the player waits for it.
  offline() {
    if (this.state === 'offline') return;
    this.setState('offline', 'The stream is offline. It will start here by itself when it goes live.');
    this.emit('error', { code: codes.offline, message: 'stream offline' });
  }

  setState(state, message = '') {
    this.state = state;
    this.emit('state', { state, message });
  }

  fail(code, message) {
    this.setState('error', message);
    this.emit('error', { code, message });
  }

  bindVideo() {
    const v = this.video;
    v.addEventListener('play', () => this.emit('play'));
    v.addEventListener('pause', () => this.emit('pause'));
    v.addEventListener('playing', () => {
      if (this.waiting) { this.waiting = false; this.emit('bufferend'); }
      // What is left of the buffer plays on while the stream is away: it
      // stays offline (or unreachable) until chunks come again.
      if (this.state === 'offline' || this.state === 'unreachable') return;
      this.setState('playing');
      this.emit('playing');
    });
    v.addEventListener('waiting', () => {
      if (!this.waiting && this.started) { this.waiting = true; this.emit('bufferstart'); }
    });
    v.addEventListener('error', () => {
      const e = v.error;
      this.fail(codes.decode, 'The browser could not play this stream' + (e && e.message ? ': ' + e.message : '.'));
    });
    document.addEventListener('visibilitychange', () => {
      // A background tab keeps relaying (its peer connections keep the
      // timers alive) but may fall behind: back to live on return.
      if (document.visibilityState === 'visible') this.resync(1);
    });
  }

  // start begins playing with settings {relayKbps, quality}; it retries by
  // itself while the stream is offline or the server unreachable.
  async start({ relayKbps = 0, quality = 'auto' } = {}) {
    this.relayKbps = this.webrtc ? relayKbps : 0;
    this.quality = quality;
    if (!MediaSourceImpl) {
      this.fail(codes.mse, 'This browser cannot play live streams here (no Media Source Extensions).');
      return;
    }
    const gen = ++this.gen;
    this.setState('connecting', 'Connecting…');
    // The manifest comes while the node compiles and starts: the node
    // takes it from here, its clock set by when it came.
    let pre = prefetchManifest(this.server, this.stream);
    let node;
    try {
      node = await loadNode();
    } catch (e) {
      this.fail(codes.node, 'The player could not start: ' + e.message);
      return;
    }
    performance.mark('seedcast:wasm');
    node.stats = () => this.stats();
    let backoff = 1000;
    while (gen === this.gen) {
      const attempt = this.attach(gen);
      const got = pre ? await pre : null;
      pre = null; // later attempts fetch afresh
      try {
        this.info = await node.start(
          { server: this.server, stream: this.stream, relayKbps: this.relayKbps, quality: this.quality,
            bufferMs: this.bufferMs, startupMs: this.startupMs,
            onWaiting: () => { if (gen === this.gen) this.offline(); },
            ...(got && { manifest: got.bytes, manifestAgeMs: Math.round(performance.now() - got.at) }),
            // Adaptive quality (auto) steps on the buffer ahead and on late chunks.
            bufferedMs: () => this.bufferMsAhead(),
            onQuality: (selected) => {
              if (gen !== this.gen || !this.info) return;
              this.info.selected = selected;
              this.emit('qualitychange', { quality: this.quality, renditions: selected });
            } },
          (info, bytes) => { if (gen === this.gen) this.onChunk(info, bytes); },
          (s) => { if (gen === this.gen) this.onStats(s); });
      } catch (e) {
        if (gen !== this.gen || (e && e.code === 'stopped')) return;
        const msg = String(e && e.message || e);
        const code = e && e.code;
        if (code === 'unsupported' || code === 'params') {
          this.fail(codes.codec, 'This stream cannot be played at this quality: ' + msg);
          return;
        }
        if (code === 'not-found') {
          this.setState('offline', `There is no stream called “${this.stream}” here. This page will play it if it starts.`);
          this.emit('error', { code: codes.notFound, message: msg });
        } else {
          this.setState('unreachable', `The server cannot be reached. Trying again in ${Math.round(backoff / 1000)} s…`);
          this.emit('error', { code: codes.unreachable, message: msg });
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, RETRY_MAX);
        continue;
      }
      if (gen !== this.gen) return;
      performance.mark('seedcast:joined');
      try {
        await attempt.setUp(this.info);
      } catch (e) {
        this.fail(codes.codec, e.message);
        await node.stop();
        return;
      }
      this.setState('buffering', 'Starting…');
      this.emit('qualitychange', { quality: this.quality, renditions: this.info.selected });
      this.tick();
      return;
    }
  }

  // attach makes a fresh MediaSource for run gen and returns its set-up,
  // which creates the SourceBuffers once the node says what it carries.
  // Chunks that arrive before are held.
  attach(gen) {
    this.teardown();
    const ms = new MediaSourceImpl();
    this.ms = ms;
    this.tracks = {};
    this.pending = [];
    this.ref = null;
    this.started = false;
    if (globalThis.ManagedMediaSource && ms instanceof globalThis.ManagedMediaSource) {
      this.video.disableRemotePlayback = true;
    }
    const opened = new Promise((resolve) => ms.addEventListener('sourceopen', resolve, { once: true }));
    this.objectURL = URL.createObjectURL(ms);
    this.video.src = this.objectURL;
    return {
      setUp: async (info) => {
        await opened;
        if (gen !== this.gen) return;
        this.byName = {};
        for (const r of info.renditions) this.byName[r.name] = r;
        for (const name of info.selected) {
          const r = this.byName[name];
          if (!r || this.tracks[r.kind]) continue;
          if (!supported(r)) throw new Error(`This browser cannot play ${r.kind} in ${r.codec}.`);
          const track = new Track(ms, this.video, r, (what, msg) => this.emit('error', { code: codes.decode, message: msg }));
          // Until playback starts, every append may complete what it waits
          // for: look at once, not at the next tick.
          track.sb.addEventListener('updateend', () => { if (!this.started && gen === this.gen) this.tryStart(); });
          this.tracks[r.kind] = track;
        }
        const held = this.pending;
        this.pending = null;
        for (const [info, bytes] of held) this.onChunk(info, bytes);
      },
    };
  }

  teardown() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.objectURL) {
      this.video.removeAttribute('src');
      this.video.load();
      URL.revokeObjectURL(this.objectURL);
      this.objectURL = null;
    }
  }

  onChunk(info, bytes) {
    if (this.pending) { this.pending.push([info, bytes]); return; }
    const r = this.byName[info.rendition];
    if (!r) return;
    const track = this.tracks[r.kind];
    if (!track) return;
    if (info.kind === 'chunk') {
      if (!this.ref) performance.mark('seedcast:first-chunk');
      this.lastChunkAt = Date.now();
      if (this.started && (this.state === 'offline' || this.state === 'unreachable')) this.setState('buffering', 'Resuming…');
      const mediaTime = info.mediaTimeUs / 1e6;
      const end = mediaTime + info.durationUs / 1e6;
      // The clock: media time = wall time + offset. Chunks before the
      // clock's start carry the start as their deadline, which gives a
      // smaller offset: the largest one is the clock's.
      const offset = mediaTime - info.deadline / 1000;
      if (!this.ref) this.ref = { offset, ingestMs: info.ingestMs, end };
      this.ref.offset = Math.max(this.ref.offset, offset);
      if (end > this.ref.end) Object.assign(this.ref, { ingestMs: info.ingestMs, end });
    }
    track.push(bytes, r, info.kind === 'init');
  }

  // tryStart starts playback once the clock's position is buffered in
  // every track, a little ahead.
  tryStart() {
    const v = this.video;
    if (this.started || !this.ref) return;
    const t = Math.max(this.clock(), firstStart(v.buffered));
    if (covered(v.buffered, t, START_AHEAD)) {
      this.started = true;
      performance.mark('seedcast:start');
      v.currentTime = t;
      this.play();
    }
  }

  // clock returns the media time the node's clock says is playing now.
  clock(now = Date.now()) {
    return this.ref ? now / 1000 + this.ref.offset : NaN;
  }

  latencyToLiveMs() {
    if (!this.ref || !this.started) return NaN;
    return Date.now() - (this.ref.ingestMs - (this.ref.end - this.video.currentTime) * 1000);
  }

  bufferMsAhead() {
    const b = this.video.buffered;
    const t = this.video.currentTime;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= t + 0.05 && t < b.end(i)) return (b.end(i) - t) * 1000;
    }
    return 0;
  }

  // tick steers playback four times a second.
  tick() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), 250);
    const v = this.video;
    if (!this.ref) return;
    const target = this.clock();
    if (!this.started) {
      this.tryStart();
      return;
    }
    this.watch();
    if (v.paused) return;
    // Resumed without a stall (so no 'playing' event): the playhead moves.
    if (this.state === 'buffering' && v.currentTime > (this.lastTime || 0) + 0.1 &&
        Date.now() - this.lastChunkAt < QUIET_MS) this.setState('playing');
    this.lastTime = v.currentTime;
    // Jump a small gap the playhead is stuck at.
    if (v.readyState < 3) {
      const next = nextStart(v.buffered, v.currentTime);
      if (next > v.currentTime && next - v.currentTime <= GAP_JUMP) {
        v.currentTime = next + 0.01;
        return;
      }
    }
    const off = v.currentTime - target;
    if (Math.abs(off) > SEEK_OFF) {
      this.resync(0);
      return;
    }
    let rate = 1;
    if (off < -DEAD_BAND) rate = Math.min(MAX_RATE, 1 + (-off - DEAD_BAND) * 0.5 + 0.05);
    else if (off > DEAD_BAND) rate = MIN_RATE;
    if (Math.abs(v.playbackRate - rate) > 0.01) v.playbackRate = rate;
    for (const t of Object.values(this.tracks)) t.evict();
  }

  // watch looks after a stream that went quiet while playing: it asks the
  // server whether the stream is live, says so (offline, or the server
  // unreachable), and starts afresh when chunks do not come back on their
  // own once it is live again (a restarted server signs with a new key).
  watch() {
    const quiet = Date.now() - (this.lastChunkAt || Date.now());
    if (quiet < QUIET_MS || this.probing || Date.now() < (this.nextProbe || 0)) return;
    const gen = this.gen;
    this.probing = true;
    probeLive(this.server, this.stream).then((live) => {
      this.probing = false;
      if (gen !== this.gen) return;
      this.nextProbe = Date.now() + 2000;
      if (live === null) {
        this.setState('unreachable', 'The server cannot be reached. Trying again…');
        this.emit('error', { code: codes.unreachable, message: 'server unreachable' });
        this.wasDown = true;
      } else if (!live) {
        this.offline();
        this.wasDown = true;
      } else {
        if (this.wasDown) {
          // Live again: chunks should follow within a few seconds.
          this.wasDown = false;
          this.liveAgainAt = Date.now();
          this.setState('buffering', 'Resuming…');
        }
        if (quiet >= RESTART_MS && Date.now() - (this.liveAgainAt || 0) >= 3000) this.restart();
      }
    });
  }

  // resync seeks to the clock when more than tolerance seconds off it and
  // that point is buffered.
  resync(tolerance) {
    const v = this.video;
    const target = this.clock();
    if (!this.started || !isFinite(target) || Math.abs(v.currentTime - target) <= tolerance) return;
    if (covered(v.buffered, target, 0.1)) {
      v.currentTime = target;
    } else {
      // Behind, and the clock's point is not buffered (yet): to near the
      // newest media, once (not again while playing towards it).
      const end = lastEnd(v.buffered);
      if (end > 0 && target > end && v.currentTime < end - 0.6) v.currentTime = Math.max(firstStart(v.buffered), end - 0.5);
    }
    v.playbackRate = 1;
  }

  async play() {
    const v = this.video;
    try {
      await v.play();
      return true;
    } catch (e) {
      if (e.name !== 'NotAllowedError') return false;
    }
    // Autoplay with sound was blocked: muted autoplay first, then a click.
    v.muted = true;
    try {
      await v.play();
      this.emit('autoplaymuted');
      return true;
    } catch {
      this.setState('paused', 'Click to play');
      this.emit('error', { code: codes.autoplay, message: 'autoplay blocked' });
      return false;
    }
  }

  onStats(s) {
    s.bufferMs = Math.round(this.bufferMsAhead());
    s.latencyToLiveMs = Math.round(this.latencyToLiveMs());
    s.webrtc = this.webrtc;
    s.quality = this.quality;
    this.lastStats = s;
    if (s.throttled !== this.throttled) {
      this.throttled = s.throttled;
      this.emit('relaychange', { relayKbps: this.relayKbps, throttled: s.throttled });
    }
    this.emit('stats', s);
  }

  stats() {
    return this.lastStats ? { ...this.lastStats } : null;
  }

  async setRelay(kbps) {
    kbps = this.webrtc ? Math.max(0, Math.round(kbps)) : 0;
    if (kbps === this.relayKbps) return;
    this.relayKbps = kbps;
    const node = await loadNode();
    const err = node.setRelay(kbps);
    if (err) throw err;
    this.emit('relaychange', { relayKbps: kbps, throttled: this.throttled });
  }

  // setQuality switches renditions in place, except to or from audio-only,
  // which needs another set of SourceBuffers: then the player restarts.
  async setQuality(q) {
    if (q === this.quality) return;
    const hadVideo = !!(this.tracks && this.tracks.video);
    const wantsVideo = q !== 'audio-only';
    this.quality = q;
    if (this.state === 'error' || !this.info || hadVideo !== wantsVideo) {
      await this.restart();
      return;
    }
    const node = await loadNode();
    const selected = await node.setQuality(q);
    this.info.selected = selected;
    this.emit('qualitychange', { quality: q, renditions: selected });
  }

  async restart() {
    await this.stop();
    await this.start({ relayKbps: this.relayKbps, quality: this.quality });
  }

  async stop() {
    this.gen++;
    this.teardown();
    const node = await loadNode().catch(() => null);
    if (node) await node.stop();
  }

  // selectedRendition returns the video rendition playing (or audio).
  selectedRendition() {
    if (!this.info) return null;
    const rs = this.info.selected.map((n) => this.byName && this.byName[n]).filter(Boolean);
    return rs.find((r) => r.kind === 'video') || rs[0] || null;
  }
}

// prefetchManifest fetches the newest manifest batches, as the node would
// at its start: {bytes, at} (at on performance.now()), or null.
async function prefetchManifest(server, stream) {
  try {
    // The page preloads this URL (same server), so that it is on its way
    // before any module runs; the response says no-cache, and a later
    // start fetches afresh.
    const url = new URL(`${server}/live/${encodeURIComponent(stream)}/manifest?last=32`, location.href).href;
    const res = await fetch(url);
    if (!res.ok) return null;
    const bytes = new Uint8Array(await res.arrayBuffer());
    performance.mark('seedcast:manifest-prefetched');
    // Its age counts from when the server answered, which for the preload
    // may be long before this module ran (Resource Timing says when).
    const timing = performance.getEntriesByName(url, 'resource');
    const answered = timing.length ? timing[timing.length - 1].responseStart : 0;
    return { bytes, at: answered > 0 ? answered : performance.now() };
  } catch {
    return null;
  }
}

// probeLive asks the server whether stream is live: true or false, or null
// when the server does not answer.
async function probeLive(server, stream) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 3000);
  try {
    const res = await fetch(server + '/api/streams', { cache: 'no-store', signal: ctl.signal });
    if (!res.ok) return null;
    const { streams } = await res.json();
    const s = (streams || []).find((x) => x.name === stream);
    return !!(s && s.live);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function firstStart(b) {
  return b.length ? b.start(0) : 0;
}

function lastEnd(b) {
  return b.length ? b.end(b.length - 1) : 0;
}

function covered(b, t, ahead) {
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) <= t + 0.01 && b.end(i) >= t + ahead) return true;
  }
  return false;
}

function nextStart(b, t) {
  for (let i = 0; i < b.length; i++) {
    if (b.start(i) > t) return b.start(i);
  }
  return -1;
}
