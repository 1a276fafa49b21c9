// A voice channel (/voice/{channel}): who is in and who is talking, one
// click to join or leave, voice activity or push-to-talk (hold Space).

import { CallClient, syncAudio } from './callclient.js';

const $ = (id) => document.getElementById(id);
const channel = decodeURIComponent(location.pathname.split('/')[2] || '');
const wsURL = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/voice/${encodeURIComponent(channel)}/ws`;
const state = { client: null, mode: localStorage.getItem('seedcast.voiceMode') || 'vad', talking: false, levels: {}, outside: null };
window.__voice = state; // test hook

$('name').value = localStorage.getItem('seedcast.name') || '';
for (const r of document.querySelectorAll('input[name=mode]')) {
  r.checked = r.value === state.mode;
  r.onchange = () => { state.mode = r.value; localStorage.setItem('seedcast.voiceMode', r.value); applyMode(); };
}

function initials(name) {
  const p = (name || '?').trim().split(/\s+/);
  return ((p[0]?.[0] || '?') + (p.length > 1 ? p[p.length - 1][0] : '')).toUpperCase();
}

function renderMembers(members, speaking, me) {
  const ul = $('voice-members');
  ul.replaceChildren(...members.map((m) => {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    li.classList.toggle('speaking', speaking.has(m.id));
    const av = document.createElement('span');
    av.className = 'avatar';
    av.textContent = initials(m.name);
    const n = document.createElement('span');
    n.className = 'pname';
    n.textContent = m.name + (m.id === me ? ' (you)' : '');
    const mic = document.createElement('span');
    mic.className = 'state-icon' + (m.micMuted ? ' off' : '');
    mic.innerHTML = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><rect x="9" y="3" width="6" height="11" rx="3" fill="currentColor"/><path d="M6 11a6 6 0 0 0 12 0M12 17v4" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round"/><path class="slash" d="M4 4l16 16" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';
    li.append(av, n, mic);
    return li;
  }));
  $('voice-sub').textContent = members.length === 0 ? 'Nobody is here yet.' :
    `${members.length} ${members.length === 1 ? 'person' : 'people'} in the channel`;
}

// Outside the channel: who is in, polled.
async function peek() {
  if (state.client) return;
  try {
    const r = await fetch(`/voice/${encodeURIComponent(channel)}/members`, { cache: 'no-store' });
    const ci = await r.json();
    renderMembers(ci.members, new Set(ci.speaking), '');
  } catch { /* next time */ }
}
state.outside = setInterval(peek, 3000);
peek();

function render() {
  const c = state.client;
  if (!c) return;
  const speaking = new Set(Object.keys(state.levels));
  if (state.mode === 'ptt' && state.talking) speaking.add(c.me);
  renderMembers([...c.members.values()], speaking, c.me);
  $('mic').setAttribute('aria-pressed', String(!c.muted.microphone));
}

const getMic = async () => (await navigator.mediaDevices.getUserMedia({
  audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } })).getAudioTracks()[0];

$('join').onclick = async () => {
  const name = $('name').value.trim() || 'Guest';
  localStorage.setItem('seedcast.name', name);
  $('join').disabled = true;
  const c = new CallClient({ url: wsURL, name });
  state.client = c;
  c.addEventListener('members', render);
  c.addEventListener('tracks', renderAudio);
  c.addEventListener('levels', (e) => { state.levels = e.detail; render(); });
  c.addEventListener('state', (e) => { $('conn-state').textContent = e.detail; $('conn-state').hidden = !e.detail; });
  c.addEventListener('closed', (e) => leave(e.detail.message));
  try {
    await c.join();
  } catch (e) {
    state.client = null;
    $('join').disabled = false;
    $('voice-error').textContent = e.message;
    $('voice-error').hidden = false;
    return;
  }
  clearInterval(state.outside);
  $('voice-join').hidden = true;
  $('voice-controls').hidden = false;
  try {
    c.muted.microphone = false;
    await c.publish('microphone', await getMic());
    applyMode();
  } catch (e) {
    c.muted.microphone = true;
    $('voice-error').textContent = `Cannot use your microphone (${e.message}); you can listen.`;
    $('voice-error').hidden = false;
  }
  render();
};

function leave(message) {
  state.client?.leave();
  state.client = null;
  $('audio-sink').replaceChildren();
  $('voice-join').hidden = false;
  $('voice-controls').hidden = true;
  $('join').disabled = false;
  if (message) { $('voice-error').textContent = message; $('voice-error').hidden = false; }
  state.outside = setInterval(peek, 3000);
  peek();
}
$('leave').onclick = () => leave();

$('mic').onclick = async () => {
  const c = state.client;
  await c.setMuted('microphone', !c.muted.microphone, true, getMic);
  applyMode();
  render();
};

// Push-to-talk: the microphone stays captured but sends only while Space
// is held (a disabled track sends silence, which Opus DTX turns into
// almost nothing).
function applyMode() {
  const c = state.client;
  const t = c?.local.microphone;
  $('ptt-state').hidden = state.mode !== 'ptt';
  if (t) t.enabled = state.mode !== 'ptt' || state.talking;
}
function talk(on) {
  if (state.mode !== 'ptt' || !state.client || state.talking === on) return;
  state.talking = on;
  $('ptt-state').textContent = on ? 'Talking…' : 'Hold Space to talk';
  $('ptt-state').classList.toggle('live', on);
  applyMode();
  render();
}
document.addEventListener('keydown', (e) => { if (e.code === 'Space' && e.target.tagName !== 'INPUT') { e.preventDefault(); talk(true); } });
document.addEventListener('keyup', (e) => { if (e.code === 'Space') talk(false); });
window.addEventListener('blur', () => talk(false));

function renderAudio() {
  const c = state.client;
  syncAudio($('audio-sink'), c, new Set([...c.streams.keys()].filter((id) => !id.startsWith(c.me + '-'))));
}
