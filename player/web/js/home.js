// The home page: live streams, refreshed every few seconds.

import { since } from './format.js';

const list = document.getElementById('streams');
const empty = document.getElementById('empty');

function card(s, now) {
  const li = document.createElement('li');
  li.className = 'stream-card';
  const a = document.createElement('a');
  a.href = '/watch/' + encodeURIComponent(s.name);
  a.innerHTML = `<div class="thumb"><span class="badge">LIVE</span>
    <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M8 5.5v13l10.5-6.5z" fill="currentColor"/></svg>
    <span class="viewers"></span></div><div class="card-body"><h2></h2><p></p></div>`;
  a.querySelector('h2').textContent = s.name;
  const v = s.viewers === 1 ? '1 viewer' : `${s.viewers} viewers`;
  a.querySelector('.viewers').textContent = v;
  a.querySelector('p').textContent = s.liveSince ? `Live for ${since(new Date(s.liveSince), now)}` : 'Live';
  a.setAttribute('aria-label', `Watch ${s.name}, ${v}`);
  li.append(a);
  return li;
}

async function refresh() {
  try {
    const resp = await fetch('/api/streams', { cache: 'no-store' });
    const { streams, now } = await resp.json();
    const live = streams.filter((s) => s.live);
    list.replaceChildren(...live.map((s) => card(s, new Date(now))));
    empty.hidden = live.length > 0;
  } catch {
    empty.hidden = false;
    empty.textContent = 'The server cannot be reached. Retrying…';
  }
}

const channels = document.getElementById('channels');

async function refreshVoice() {
  try {
    const resp = await fetch('/api/voice', { cache: 'no-store' });
    if (!resp.ok) return;
    const { channels: list } = await resp.json();
    document.getElementById('talk').hidden = false;
    channels.replaceChildren(...list.map((c) => {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = '/voice/' + encodeURIComponent(c.name);
      a.innerHTML = '<span class="voice-icon"><svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 14v-2a8 8 0 0 1 16 0v2" fill="none" stroke="currentColor" stroke-width="1.8"/><rect x="3" y="13" width="4.5" height="7" rx="1.8" fill="currentColor"/><rect x="16.5" y="13" width="4.5" height="7" rx="1.8" fill="currentColor"/></svg></span><span><b></b><small></small></span>';
      a.querySelector('b').textContent = '#' + c.name;
      const n = c.members.length;
      a.querySelector('small').textContent = n === 0 ? 'Nobody here — jump in' :
        c.members.slice(0, 3).map((m) => m.name).join(', ') + (n > 3 ? ` and ${n - 3} more` : '');
      li.append(a);
      return li;
    }));
  } catch { /* next time */ }
}

refresh();
refreshVoice();
setInterval(refresh, 5000);
setInterval(refreshVoice, 5000);
