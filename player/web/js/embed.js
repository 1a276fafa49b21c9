// The embed page: the player alone, driven by its host page with
// postMessage, as the Vimeo and player.js embeds are (docs/embed.md).
//
// To the host: {event, data} for ready, play, playing, pause, bufferstart,
// bufferend, qualitychange, relaychange, stats (every second) and error.
// From the host: {method, value} for play, pause, setMuted, setVolume,
// setQuality, setRelay and getStats (answered with {method: "getStats",
// value}). Only hosts on the server's --embed-origins list are heard and
// told; "*" allows any.

import { loadNode } from './node.js';
import { mountPlayer } from './ui.js';

loadNode().catch(() => {});
const allowed = (document.body.dataset.embedOrigins || '*').split(/\s+/).filter(Boolean);
const anyHost = allowed.includes('*');

// The host's origin: the one that framed us, as far as the browser says.
function hostOrigin() {
  const anc = location.ancestorOrigins;
  if (anc && anc.length) return anc[0];
  try { return new URL(document.referrer).origin; } catch { return null; }
}
const host = hostOrigin();
const hostAllowed = window.parent !== window && host && (anyHost || allowed.includes(host));

const { player, settings } = mountPlayer(document.getElementById('player'), { embed: true });
const video = document.getElementById('video');

function post(event, data) {
  if (!hostAllowed) return;
  window.parent.postMessage({ event, data }, host);
}

for (const type of ['play', 'playing', 'pause', 'bufferstart', 'bufferend']) {
  player.addEventListener(type, () => post(type, { currentTime: video.currentTime }));
}
player.addEventListener('qualitychange', (e) => post('qualitychange', e.detail));
player.addEventListener('relaychange', (e) => post('relaychange', e.detail));
player.addEventListener('stats', (e) => post('stats', e.detail));
player.addEventListener('error', (e) => post('error', e.detail));

const relayLevels = ['off', 'low', 'medium', 'high'];
const methods = {
  play: () => player.play(),
  pause: () => video.pause(),
  setMuted: (v) => { video.muted = !!v; },
  setVolume: (v) => { video.volume = Math.min(1, Math.max(0, Number(v) || 0)); },
  setQuality: (v) => settings.set({ quality: String(v) }),
  // A level name, or a number of kbit/s.
  setRelay: (v) => (typeof v === 'number' ? settings.set({ relay: 'custom', relayCustomKbps: v })
    : relayLevels.includes(v) ? settings.set({ relay: v }) : post('error', { code: 'bad-value', message: 'setRelay: off, low, medium, high or kbit/s' })),
  getStats: () => window.parent.postMessage({ method: 'getStats', value: player.stats() }, host),
};

window.addEventListener('message', (e) => {
  if (e.source !== window.parent || !hostAllowed || e.origin !== host) return; // only our host
  const m = e.data;
  if (!m || typeof m !== 'object' || typeof m.method !== 'string' || !Object.hasOwn(methods, m.method)) {
    post('error', { code: 'bad-method', message: 'unknown method' });
    return;
  }
  try {
    methods[m.method](m.value);
  } catch (err) {
    post('error', { code: 'method-failed', message: String(err && err.message || err) });
  }
});

post('ready', { stream: document.getElementById('player').dataset.stream, methods: Object.keys(methods) });
