// The operator dashboard: what the server sends against what the viewers
// carry, from GET /live/{stream}/dashboard.json every two seconds.

import { StackChart } from './chart.js';
import { pct, rate, secs } from './format.js';

const stream = document.body.dataset.stream;
const $ = (id) => document.getElementById(id);
// big shows a figure with its unit set smaller beside it ("1.1" "Mbit/s"),
// so that a card's figure stays on one line.
function big(id, text) {
  const m = /^(\S+) (.+)$/.exec(text);
  if (!m) {
    $(id).textContent = text;
    return;
  }
  const unit = document.createElement('small');
  unit.textContent = m[2];
  $(id).replaceChildren(m[1], unit);
}
const chart = new StackChart($('d-chart'), [{ color: '--http' }, { color: '--peers' }], 300);
chart.label = (max) => 'max ' + rate(max);

async function refresh() {
  let d;
  try {
    const resp = await fetch(`/live/${encodeURIComponent(stream)}/dashboard.json`, { cache: 'no-store' });
    if (!resp.ok) throw new Error(String(resp.status));
    d = await resp.json();
  } catch {
    return;
  }
  $('d-viewers').textContent = String(d.viewers);
  $('d-kinds').textContent = `${d.browsers} in browsers · ${d.natives} native`;
  big('d-egress', rate(d.serverKbps));
  $('d-copies').textContent = d.bitrateKbps > 0 ? `${(d.serverKbps / d.bitrateKbps).toFixed(1)} copies of the stream` : '–';
  big('d-peers', rate(d.peerKbps));
  $('d-offload').textContent = `offload ${pct(d.offload)}`;
  const cdn = d.viewers * d.bitrateKbps;
  $('d-saved').textContent = cdn > 0 ? pct(Math.max(0, 1 - d.serverKbps / cdn)) : '–';
  // The last minute's, big: the figure since the stream began carries
  // every viewer's start-up.
  const cont = (x) => (x * 100).toFixed(2) + '%';
  const recent = d.recentContinuity >= 0 ? d.recentContinuity : d.continuity;
  $('d-cont').textContent = recent >= 0 ? cont(recent) : '–';
  $('d-cont-all').textContent = d.continuity >= 0
    ? `on time, last minute · ${cont(d.continuity)} overall`
    : 'chunks before their deadline';
  big('d-lat', secs(d.latencyP50Ms));
  $('d-lat95').textContent = `median · p95 ${secs(d.latencyP95Ms)}`;
  $('d-depth').textContent = d.depthMean > 0 ? d.depthMean.toFixed(1) : '–';
  $('d-depthmax').textContent = d.depthMax > 0 ? `deepest ${d.depthMax} hops` : 'hops from the origin';
  chart.set((d.history || []).map((h) => [h.serverKbps, h.peerKbps]));
  chart.draw();
}

refresh();
setInterval(refresh, 2000);
