// The stats overlay: what this browser gets from where, and what it gives.

import { StackChart } from './chart.js';
import { bytes, pct, rate, secs } from './format.js';

export class Overlay {
  constructor(root) {
    this.root = root;
    this.$ = (id) => root.querySelector('#' + id);
    this.chart = new StackChart(this.$('o-chart'), [{ color: '--peers' }, { color: '--seed' }, { color: '--http' }], 60);
    this.chart.label = (max) => 'max ' + rate(max);
    this.prev = null;
  }

  // update takes the player's stats object (once a second).
  update(s) {
    const now = performance.now();
    const http = Math.max(0, s.bytesFromOrigin - s.bytesFromSeed);
    let down = NaN, up = NaN, parts = [0, 0, 0];
    if (this.prev) {
      const dt = (now - this.prev.at) / 1000;
      if (dt > 0) {
        const p = this.prev.s;
        const kbps = (b) => (b * 8) / 1000 / dt;
        parts = [
          kbps(s.bytesFromPeers - p.bytesFromPeers),
          kbps(s.bytesFromSeed - p.bytesFromSeed),
          kbps(http - Math.max(0, p.bytesFromOrigin - p.bytesFromSeed)),
        ].map((x) => Math.max(0, x));
        down = parts[0] + parts[1] + parts[2];
        up = Math.max(0, kbps(s.bytesUploaded - p.bytesUploaded));
      }
    }
    this.prev = { at: now, s };
    this.rates = { down, up };
    this.chart.push(parts);
    if (this.root.hidden) return;
    const all = s.bytesFromPeers + s.bytesFromOrigin;
    this.$('o-peers').textContent = s.webrtc === false ? 'off (no WebRTC)' : String(s.peers);
    this.$('o-share').textContent = all > 0 ? pct(s.bytesFromPeers / all) : '–';
    this.$('o-buffer').textContent = secs(s.bufferMs);
    this.$('o-latency').textContent = secs(s.latencyToLiveMs);
    this.$('o-down').textContent = rate(down);
    this.$('o-up').textContent = rate(up) + ' of ' + rate(s.relayBudgetKbps);
    this.$('o-depth').textContent = s.maxDepth > 0 ? String(s.maxDepth) : '–';
    const judged = s.chunksOnTime + s.chunksLate;
    this.$('o-cont').textContent = judged > 0 ? ((100 * s.chunksOnTime) / judged).toFixed(1) + '%' : '–';
    this.$('o-b-peers').textContent = bytes(s.bytesFromPeers);
    this.$('o-b-seed').textContent = bytes(s.bytesFromSeed);
    this.$('o-b-http').textContent = bytes(http);
    this.chart.draw();
  }
}
