// Bandwidth settings: what the user chose, kept in localStorage, and the
// relay budget it comes to:
//
//   available = total upload − reserved for other apps
//   relay     = off 0 | low 10% | medium 25% | high 50% of available | custom kbit/s
//
// Total upload is measured (auto) with a short upload test against the
// server (POST /api/uplink, bounded and rate-limited there), or typed in.

const KEY = 'seedcast.settings.v1';
const RETEST_MS = 30 * 60 * 1000; // a measurement older than this is taken again, in the background

export const relayShares = { off: 0, low: 0.1, medium: 0.25, high: 0.5 };

export const defaults = Object.freeze({
  upMode: 'auto', // or 'manual'
  upManualKbps: 10000,
  upMeasuredKbps: 0, // 0: not measured yet
  upMeasuredAt: 0,
  reservePct: 50, // of total upload, for other apps
  relay: 'medium', // off | low | medium | high | custom
  relayCustomKbps: 1000,
  quality: 'auto',
});

// When nothing was measured yet: assume a modest line rather than nothing,
// so that a new viewer relays a little from the start.
const ASSUMED_UP_KBPS = 5000;

export class Settings extends EventTarget {
  constructor(storage = globalThis.localStorage) {
    super();
    this.storage = storage;
    this.v = { ...defaults };
    try {
      const saved = JSON.parse(storage.getItem(KEY) || '{}');
      for (const k of Object.keys(defaults)) {
        if (typeof saved[k] === typeof defaults[k]) this.v[k] = saved[k];
      }
    } catch { /* a corrupt entry: defaults */ }
    this.sanitize();
  }

  sanitize() {
    const v = this.v;
    if (!['auto', 'manual'].includes(v.upMode)) v.upMode = 'auto';
    if (!(v.relay in relayShares) && v.relay !== 'custom') v.relay = 'medium';
    v.reservePct = clamp(Math.round(v.reservePct), 0, 100);
    v.upManualKbps = clamp(Math.round(v.upManualKbps), 100, 10_000_000);
    v.relayCustomKbps = clamp(Math.round(v.relayCustomKbps), 0, 10_000_000);
    if (!['auto', '1080p', '720p', '480p', 'audio-only'].includes(v.quality)) v.quality = 'auto';
  }

  set(changes) {
    Object.assign(this.v, changes);
    this.sanitize();
    try { this.storage.setItem(KEY, JSON.stringify(this.v)); } catch { /* private mode: not kept */ }
    this.dispatchEvent(new CustomEvent('change', { detail: { ...this.v } }));
  }

  totalKbps() {
    const v = this.v;
    if (v.upMode === 'manual') return v.upManualKbps;
    return v.upMeasuredKbps > 0 ? v.upMeasuredKbps : ASSUMED_UP_KBPS;
  }

  availableKbps() {
    return Math.round(this.totalKbps() * (1 - this.v.reservePct / 100));
  }

  relayKbps() {
    const v = this.v;
    if (v.relay === 'custom') return v.relayCustomKbps;
    return Math.round(this.availableKbps() * relayShares[v.relay]);
  }

  needsTest(now = Date.now()) {
    return this.v.upMode === 'auto' && (this.v.upMeasuredKbps <= 0 || now - this.v.upMeasuredAt > RETEST_MS);
  }
}

// measureUpload posts random bytes to the server's upload test and returns
// the upload rate in kbit/s: a small probe first, then a body sized to take
// about a second at the probe's rate (at most what the server reads).
export async function measureUpload(server = '', { maxBytes = 4 << 20, signal } = {}) {
  const probe = await postBytes(server, 128 << 10, signal);
  const size = clamp(Math.round((probe * 1000 / 8) * 1.0), 256 << 10, maxBytes);
  if (size <= (128 << 10) * 2) return probe;
  const second = await postBytes(server, size, signal);
  return Math.max(probe, second);
}

async function postBytes(server, n, signal) {
  const body = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(body.subarray(off, Math.min(n, off + 65536)));
  const t0 = performance.now();
  const resp = await fetch(server + '/api/uplink', {
    method: 'POST', body, signal, cache: 'no-store',
    headers: { 'Content-Type': 'application/octet-stream' },
  });
  const t1 = performance.now();
  if (!resp.ok) throw new Error(`upload test: ${resp.status} ${await resp.text()}`);
  const res = await resp.json();
  // The client's time includes a round trip; the server's misses what the
  // first read already held. Take the rate from the longer of the two that
  // is plausible.
  const ms = Math.max(res.ms || 0, (t1 - t0) * 0.8);
  return ms > 0 ? Math.round(res.bytes * 8 / ms) : 0;
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, isFinite(x) ? x : lo));
}
