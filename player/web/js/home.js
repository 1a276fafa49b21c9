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

refresh();
setInterval(refresh, 5000);
