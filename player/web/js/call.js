// The meeting page (/call/{room}): a lobby with a camera and microphone
// preview and device pickers, then a grid or spotlight of participants, a
// control bar, chat, and the people panel where the host lets people in.

import { CallClient, syncAudio } from './callclient.js';
import { Presence } from './presence.js';
import * as ident from './identity.js';
import { watch as watchRings, reasonText } from './ringer.js';
import { play } from './tones.js';
import { CallKeys, openBox, sealBox } from '/assets/js/e2ee/callkeys.js';
import { pairwiseBaseKey, fingerprint, newGroupKey } from '/assets/js/e2ee/keys.js';

const $ = (id) => document.getElementById(id);
const room = decodeURIComponent(location.pathname.split('/')[2] || '');
const params = new URLSearchParams(location.search);
const wsURL = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/call/${encodeURIComponent(room)}/ws`;

const state = {
  client: null,
  micOn: localStorage.getItem('seedcast.mic') !== 'off',
  camOn: localStorage.getItem('seedcast.cam') !== 'off',
  micId: localStorage.getItem('seedcast.micId') || '',
  camId: localStorage.getItem('seedcast.camId') || '',
  preview: null, // MediaStream of the lobby
  layout: 'auto', // auto | grid | spotlight
  pinned: '', // tile key pinned to the spotlight
  dominant: '',
  levels: {},
  unread: 0,
  knocks: new Map(),
  sizes: new ResizeObserver((entries) => { for (const e of entries) reportSize(e.target); }),
  keys: null, // CallKeys when the call is end-to-end encrypted
  e2ee: new Map(), // transform id (a track id, or a source of ours) → state
  ring: null, // a ringing call's CallInfo (ring mode: /call/{room}?ring={id})
  presence: null,
  held: false,
};
window.__call = state; // test hook

$('name').value = localStorage.getItem('seedcast.name') || '';
$('room-name').textContent = room.slice(0, 6).toLowerCase() + '…';

// --- devices ----------------------------------------------------------------

function audioConstraints() {
  return { deviceId: state.micId ? { exact: state.micId } : undefined, echoCancellation: true, noiseSuppression: true, autoGainControl: true };
}
function videoConstraints() {
  return { deviceId: state.camId ? { exact: state.camId } : undefined, width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
}
const getMic = async () => (await navigator.mediaDevices.getUserMedia({ audio: audioConstraints() })).getAudioTracks()[0];
const getCam = async () => (await navigator.mediaDevices.getUserMedia({ video: videoConstraints() })).getVideoTracks()[0];

async function fillDevices() {
  const devs = await navigator.mediaDevices.enumerateDevices();
  for (const [sel, kind, cur] of [[$('cam-select'), 'videoinput', state.camId], [$('mic-select'), 'audioinput', state.micId]]) {
    sel.replaceChildren(...devs.filter((d) => d.kind === kind).map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`;
      o.selected = d.deviceId === cur;
      return o;
    }));
  }
}

let meterStop = null;
async function startPreview() {
  stopPreview();
  const want = {};
  if (state.micOn) want.audio = audioConstraints();
  if (state.camOn) want.video = videoConstraints();
  $('preview-off').hidden = state.camOn;
  $('lobby-mic').setAttribute('aria-pressed', String(state.micOn));
  $('lobby-cam').setAttribute('aria-pressed', String(state.camOn));
  if (!want.audio && !want.video) return;
  try {
    state.preview = await navigator.mediaDevices.getUserMedia(want);
    $('preview').srcObject = state.preview;
    await fillDevices();
    const a = state.preview.getAudioTracks()[0];
    if (a) meterStop = meter(new MediaStream([a]), $('meter'));
    $('lobby-error').hidden = true;
  } catch (e) {
    $('lobby-error').textContent = `Cannot use your ${want.video ? 'camera' : 'microphone'}: ${e.message}. You can join without it.`;
    $('lobby-error').hidden = false;
  }
}

function stopPreview() {
  meterStop?.();
  meterStop = null;
  state.preview?.getTracks().forEach((t) => t.stop());
  state.preview = null;
  $('preview').srcObject = null;
}

// meter draws a microphone's level into a bar; it returns a stop function.
function meter(stream, bar) {
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(stream);
  const an = ctx.createAnalyser();
  an.fftSize = 512;
  src.connect(an);
  const buf = new Float32Array(an.fftSize);
  let raf = 0;
  const tick = () => {
    an.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    bar.style.width = `${Math.min(100, Math.sqrt(sum / buf.length) * 400)}%`;
    raf = requestAnimationFrame(tick);
  };
  tick();
  return () => { cancelAnimationFrame(raf); ctx.close(); };
}

$('lobby-mic').onclick = () => { state.micOn = !state.micOn; localStorage.setItem('seedcast.mic', state.micOn ? 'on' : 'off'); startPreview(); };
$('lobby-cam').onclick = () => { state.camOn = !state.camOn; localStorage.setItem('seedcast.cam', state.camOn ? 'on' : 'off'); startPreview(); };
$('cam-select').onchange = (e) => { state.camId = e.target.value; localStorage.setItem('seedcast.camId', state.camId); startPreview(); };
$('mic-select').onchange = (e) => { state.micId = e.target.value; localStorage.setItem('seedcast.micId', state.micId); startPreview(); };
$('name').oninput = () => { $('preview-avatar').textContent = initials($('name').value); };
$('preview-avatar').textContent = initials($('name').value);

// --- joining ------------------------------------------------------------------

function show(section) {
  for (const id of ['lobby', 'waiting', 'ended', 'room']) $(id).hidden = id !== section;
}

$('join').onclick = join;
$('name').onkeydown = (e) => { if (e.key === 'Enter') join(); };

async function join() {
  const name = $('name').value.trim() || 'Guest';
  localStorage.setItem('seedcast.name', name);
  $('join').disabled = true;
  const c = new CallClient({ url: wsURL, name, invite: state.invite ?? params.get('invite'), keys: state.keys });
  state.client = c;
  wire(c);
  try {
    const first = await c.join();
    if (first.type === 'waiting') show('waiting');
  } catch (e) {
    $('join').disabled = false;
    $('lobby-error').textContent = describe(e.code, e.message);
    $('lobby-error').hidden = false;
  }
}

function describe(code, message) {
  return ({
    locked: 'The host has locked this meeting.',
    'room-full': 'This meeting is full.',
    denied: 'The host did not let you in.',
    removed: 'The host removed you from the meeting.',
    'invite-used': 'This invite link has already been used. Ask for a new one.',
    'invite-invalid': 'This invite link is not valid for this meeting (or it expired).',
    'server-full': 'The server is busy. Try again in a moment.',
    'too-many-connections': 'Too many connections from your network. Try again in a moment.',
    network: 'The server cannot be reached.',
  })[code] || message || 'Something went wrong.';
}

async function enterRoom() {
  const c = state.client;
  show('room');
  if (params.has('invite')) history.replaceState(null, '', location.pathname);
  // Hand the lobby's tracks over to the call (no second capture prompt).
  const a = state.preview?.getAudioTracks()[0];
  const v = state.preview?.getVideoTracks()[0];
  meterStop?.();
  meterStop = null;
  state.preview = null;
  $('preview').srcObject = null;
  c.muted.microphone = !a;
  c.muted.camera = !v;
  if (a) await c.publish('microphone', a);
  if (v) await c.publish('camera', v);
  syncButtons();
  render();
}

function wire(c) {
  c.addEventListener('welcome', (e) => {
    if (!e.detail.resumed || $('room').hidden) enterRoom();
    $('lock-badge').hidden = !c.locked;
  });
  c.addEventListener('waiting', () => show('waiting'));
  c.addEventListener('members', () => {
    if (c.members.size > 2) state.group = true;
    if (state.rotateOnLeave && !c.members.has(state.rotateOnLeave)) {
      state.rotateOnLeave = '';
      c.rotateKey().catch((e) => toast(e.message));
    }
    render();
  });
  c.addEventListener('tracks', render);
  c.addEventListener('speaker', (e) => { state.dominant = e.detail.dominant || ''; render(); });
  c.addEventListener('levels', (e) => { state.levels = e.detail; paintLevels(); });
  c.addEventListener('chat', (e) => addChat(e.detail));
  c.addEventListener('knock', (e) => {
    state.knocks.set(e.detail.id, e.detail);
    renderKnocks();
    const t = toast(`${e.detail.name} wants to join`, 'Let in', () => c.hostAction('admit', e.detail.id));
    t.dataset.knock = e.detail.id;
  });
  c.addEventListener('knock-end', (e) => { // answered (here or elsewhere) or gone: the toast goes too
    state.knocks.delete(e.detail.participant);
    renderKnocks();
    $('toasts').querySelector(`[data-knock="${CSS.escape(e.detail.participant)}"]`)?.remove();
  });
  c.addEventListener('room', (e) => { c.locked = e.detail.locked; $('lock-badge').hidden = !c.locked; syncButtons(); });
  c.addEventListener('host', () => { syncButtons(); renderPeople(); });
  c.addEventListener('mute', (e) => {
    if (e.detail.participant === c.me && e.detail.by === 'host') { toast('The host muted your microphone'); syncButtons(); }
  });
  c.addEventListener('state', (e) => { $('conn-state').textContent = e.detail; $('conn-state').hidden = !e.detail; });
  c.addEventListener('error', (e) => {
    // A size or subscription racing a track that just ended is harmless.
    if (e.detail.code !== 'rate-limited' && e.detail.code !== 'unknown-track') toast(describe(e.detail.code, e.detail.message));
  });
  c.addEventListener('closed', (e) => end(e.detail.code, e.detail.message));
  c.addEventListener('e2ee', (e) => { state.e2ee.set(e.detail.id, e.detail.state); paintLocks(); });
  c.addEventListener('rotated', (e) => {
    if (state.keys && !state.ring) history.replaceState(null, '', location.pathname + location.search + '#' + state.keys.fragment());
    toast(e.detail.by === c.me ? 'New encryption key: links shared before no longer decrypt this meeting.' : 'The host changed the encryption key.');
    showFingerprint();
  });
}

function end(code, message) {
  const c = state.client;
  if (state.ring && state.ring.state !== 'ended' && (code === 'left')) state.presence?.hangup(state.ring.id);
  c?.leave();
  for (const el of $('stage').querySelectorAll('video')) el.srcObject = null;
  $('audio-sink').replaceChildren();
  $('ended-title').textContent = code === 'left' ? 'You left the meeting' : 'You are out of the meeting';
  $('ended-text').textContent = code === 'left' ? '' : describe(code, message);
  if (state.ring) {
    $('ended-title').textContent = code === 'left' ? 'Call ended' : reasonText(code === 'ring-ended' ? message : '');
    $('ended-text').textContent = state.ring.answered ? `Call with ${state.peerName} · ${duration(Date.now() - state.ring.answered)}` : '';
    $('rejoin').hidden = true;
  }
  show('ended');
}

$('leave').onclick = () => end('left');
$('cancel-wait').onclick = () => { state.client?.leave(); show('lobby'); $('join').disabled = false; startPreview(); };
$('rejoin').onclick = () => { show('lobby'); $('join').disabled = false; startPreview(); };

// --- controls -----------------------------------------------------------------

function syncButtons() {
  const c = state.client;
  if (!c) return;
  $('mic').setAttribute('aria-pressed', String(!c.muted.microphone));
  $('cam').setAttribute('aria-pressed', String(!c.muted.camera));
  $('screen').setAttribute('aria-pressed', String(!!c.local.screen));
  $('host-tools').hidden = !c.host;
  $('rotate').hidden = !(c.host && state.keys);
  $('lock').setAttribute('aria-pressed', String(!!c.locked));
  $('lock').textContent = c.locked ? 'Unlock meeting' : 'Lock meeting';
}

async function toggle(source) {
  const c = state.client;
  const muted = !c.muted[source];
  try {
    await c.setMuted(source, muted, true, source === 'microphone' ? getMic : getCam);
  } catch (e) {
    toast(`Cannot use your ${source}: ${e.message}`);
  }
  syncButtons();
  render();
}
$('mic').onclick = () => toggle('microphone');
$('cam').onclick = () => toggle('camera');
document.addEventListener('keydown', (e) => {
  if (!state.client || $('room').hidden || !(e.ctrlKey || e.metaKey)) return;
  if (e.key === 'd') { e.preventDefault(); toggle('microphone'); }
  if (e.key === 'e') { e.preventDefault(); toggle('camera'); }
});

$('screen').onclick = async () => {
  const c = state.client;
  if (c.local.screen) return stopShare();
  let s;
  try {
    s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15 } }, audio: true });
  } catch (e) {
    if (e.name !== 'NotAllowedError') toast(`Cannot share your screen: ${e.message}`);
    return;
  }
  const v = s.getVideoTracks()[0];
  v.onended = stopShare; // the browser's own "Stop sharing"
  await c.publish('screen', v);
  const a = s.getAudioTracks()[0];
  if (a) await c.publish('screen-audio', a);
  syncButtons();
  render();
};
async function stopShare() {
  const c = state.client;
  await c.publish('screen', null);
  if (c.local['screen-audio']) await c.publish('screen-audio', null);
  syncButtons();
  render();
}

$('layout').onclick = () => {
  state.layout = currentLayout() === 'spotlight' ? 'grid' : 'spotlight';
  if (state.layout === 'grid') state.pinned = '';
  render();
};

function openSide(which) {
  const open = $('side').hidden || $(which).hidden;
  $('side').hidden = !open;
  $('people').hidden = which !== 'people';
  $('chat').hidden = which !== 'chat';
  $('side-title').textContent = which === 'people' ? 'People' : 'Chat';
  $('open-people').setAttribute('aria-expanded', String(open && which === 'people'));
  $('open-chat').setAttribute('aria-expanded', String(open && which === 'chat'));
  if (open && which === 'chat') { state.unread = 0; $('chat-dot').hidden = true; $('chat-input').focus(); }
  if (open && which === 'people') renderPeople();
}
$('open-people').onclick = () => openSide('people');
$('open-chat').onclick = () => openSide('chat');
$('side-close').onclick = () => { $('side').hidden = true; $('open-people').setAttribute('aria-expanded', 'false'); $('open-chat').setAttribute('aria-expanded', 'false'); };

$('chat-form').onsubmit = (e) => {
  e.preventDefault();
  const t = $('chat-input').value.trim();
  if (t) state.client.chat(t);
  $('chat-input').value = '';
};

function addChat(line) {
  const li = document.createElement('li');
  const who = document.createElement('b');
  who.textContent = line.from === state.client.me ? 'You' : line.name;
  const at = document.createElement('time');
  at.textContent = new Date(line.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const p = document.createElement('p');
  p.textContent = line.text;
  li.append(who, at, p);
  if (line.locked) li.classList.add('locked');
  $('chat-log').append(li);
  $('chat-log').scrollTop = $('chat-log').scrollHeight;
  if ($('side').hidden || $('chat').hidden) { state.unread++; $('chat-dot').hidden = false; }
}

$('invite').onclick = async () => {
  try {
    const link = await state.client.inviteLink();
    await navigator.clipboard?.writeText(link).catch(() => {});
    toast('Invite link copied. It works once, for one person.');
    state.lastInvite = link;
  } catch (e) { toast(e.message); }
};
$('lock').onclick = () => state.client.hostAction(state.client.locked ? 'unlock' : 'lock');

function renderKnocks() {
  const c = state.client;
  const box = $('knocks');
  box.replaceChildren(...[...state.knocks.values()].map((k) => {
    const d = document.createElement('div');
    d.className = 'knock';
    const n = document.createElement('span');
    n.textContent = `${k.name} is waiting`;
    const yes = button('Let in', 'primary small', () => c.hostAction('admit', k.id));
    const no = button('Deny', 'secondary small', () => c.hostAction('deny', k.id));
    d.append(n, yes, no);
    return d;
  }));
  $('knock-dot').hidden = state.knocks.size === 0;
}

function renderPeople() {
  const c = state.client;
  if (!c) return;
  $('people-list').replaceChildren(...[...c.members.values()].map((m) => {
    const li = document.createElement('li');
    const av = document.createElement('span');
    av.className = 'avatar';
    av.textContent = initials(m.name);
    const n = document.createElement('span');
    n.className = 'pname';
    n.textContent = m.name + (m.id === c.me ? ' (you)' : '') + (m.host ? ' · host' : '');
    li.append(av, n);
    const mic = document.createElement('span');
    mic.className = 'state-icon' + (m.micMuted ? ' off' : '');
    mic.innerHTML = micSVG;
    li.append(mic);
    if (c.host && m.id !== c.me) {
      if (!m.micMuted) li.append(button('Mute', 'secondary small', () => c.hostAction('mute', m.id)));
      li.append(button('Remove', 'danger small', () => {
        c.hostAction('remove', m.id);
        // A removed person had the key: once they are out, a fresh one.
        if (state.keys) state.rotateOnLeave = m.id;
      }));
    }
    return li;
  }));
  renderKnocks();
}

function button(text, cls, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = cls;
  b.textContent = text;
  b.onclick = onclick;
  return b;
}

function toast(text, action, onAction) {
  const t = document.createElement('div');
  t.className = 'toast';
  const s = document.createElement('span');
  s.textContent = text;
  t.append(s);
  if (action) t.append(button(action, 'primary small', () => { onAction(); t.remove(); }));
  $('toasts').append(t);
  setTimeout(() => t.remove(), action ? 15000 : 5000);
  return t;
}

// --- the stage ----------------------------------------------------------------

const micSVG = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><rect x="9" y="3" width="6" height="11" rx="3" fill="currentColor"/><path d="M6 11a6 6 0 0 0 12 0M12 17v4" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round"/><path class="slash" d="M4 4l16 16" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';

function initials(name) {
  const p = (name || '?').trim().split(/\s+/);
  return ((p[0]?.[0] || '?') + (p.length > 1 ? p[p.length - 1][0] : '')).toUpperCase();
}

// tiles lists what the stage shows: one tile per participant (camera or
// avatar), and one per screen share.
function tiles() {
  const c = state.client;
  const out = [];
  for (const m of c.members.values()) {
    const self = m.id === c.me;
    const cam = m.tracks.find((t) => t.source === 'camera');
    const screen = m.tracks.find((t) => t.source === 'screen');
    out.push({ key: m.id, member: m, self, video: self ? c.local.camera : null, track: cam && !cam.muted ? cam.id : '', camOff: self ? c.muted.camera : (!cam || cam.muted) });
    if (self ? c.local.screen : screen) {
      out.push({ key: `${m.id}:screen`, member: m, self, screen: true, video: self ? c.local.screen : null, track: screen ? screen.id : '' });
    }
  }
  return out;
}

function currentLayout() {
  if (state.layout !== 'auto') return state.layout;
  const c = state.client;
  const anyScreen = [...c.members.values()].some((m) => m.tracks.some((t) => t.source === 'screen'));
  return anyScreen ? 'spotlight' : 'grid';
}

function render() {
  const c = state.client;
  if (!c || $('room').hidden) return;
  const ts = tiles();
  const stage = $('stage');
  const layout = currentLayout();
  stage.className = `stage ${layout}`;
  // The spotlight: a screen share first, then the dominant speaker, then
  // the first other participant.
  let spot = '';
  if (layout === 'spotlight') {
    spot = (state.pinned && ts.some((t) => t.key === state.pinned) ? state.pinned : '') ||
      ts.find((t) => t.screen && !t.self)?.key || ts.find((t) => t.screen)?.key ||
      (state.dominant && state.dominant !== c.me ? state.dominant : '') || ts.find((t) => !t.self)?.key || ts[0]?.key;
  }
  const keep = new Set(ts.map((t) => t.key));
  for (const el of [...stage.children]) if (!keep.has(el.dataset.key)) { state.sizes.unobserve(el); el.remove(); }
  ts.forEach((t, i) => {
    let el = stage.querySelector(`[data-key="${CSS.escape(t.key)}"]`);
    if (!el) {
      el = tileElement(t);
      el.onclick = () => { // pin to the spotlight, or unpin
        state.pinned = state.pinned === t.key ? '' : t.key;
        if (state.pinned) state.layout = 'spotlight';
        render();
      };
      el.title = 'Click to pin to the spotlight';
      stage.append(el);
      state.sizes.observe(el);
    }
    el.style.order = t.key === spot ? -1 : i;
    el.classList.toggle('spot', t.key === spot);
    el.classList.toggle('self', t.self && !t.screen);
    el.dataset.track = t.track;
    fillTile(el, t);
  });
  const n = ts.filter((t) => !t.screen).length;
  // A 1:1 call: the other person fills the stage, you are a small picture.
  stage.classList.toggle('one-to-one', n === 2 && ts.length === 2 && layout === 'grid' && !!state.ring);
  stage.classList.toggle('held', state.held);
  stage.style.setProperty('--cols', String(Math.ceil(Math.sqrt(n))));
  stage.style.setProperty('--rows', String(Math.ceil(n / Math.ceil(Math.sqrt(n)))));
  $('count').textContent = `${c.members.size} in the meeting`;
  renderAudio();
  renderPeople();
  syncButtons();
  paintLevels();
  paintLocks();
  for (const el of stage.children) reportSize(el);
}

function tileElement(t) {
  const el = document.createElement('div');
  el.className = 'tile' + (t.screen ? ' screen' : '');
  el.dataset.key = t.key;
  el.innerHTML = `<video autoplay playsinline muted></video>
    <div class="avatar-wrap"><span class="avatar big"></span></div>
    <div class="label"><span class="mic state-icon">${micSVG}</span><span class="who"></span></div>`;
  return el;
}

function fillTile(el, t) {
  if (!el.querySelector('.lock') && state.keys) {
    const l = document.createElement('span');
    l.className = 'lock';
    el.querySelector('.label').prepend(l);
  }
  const c = state.client;
  const v = el.querySelector('video');
  let stream = null;
  if (t.video) stream = v.srcObject?.getTracks?.()[0] === t.video ? v.srcObject : new MediaStream([t.video]);
  else if (t.track && c.streams.has(t.track)) stream = c.streams.get(t.track);
  if (v.srcObject !== stream) v.srcObject = stream;
  const off = t.screen ? !stream : (t.camOff || !stream);
  el.classList.toggle('cam-off', off);
  el.querySelector('.avatar').textContent = initials(t.member.name);
  el.querySelector('.who').textContent = t.screen ? `${t.member.name} · screen` : (t.self ? `${t.member.name} (you)` : t.member.name);
  el.querySelector('.mic').hidden = t.screen;
  el.querySelector('.mic').classList.toggle('off', !!t.member.micMuted);
}

function renderAudio() {
  const c = state.client;
  const want = new Set();
  for (const m of c.members.values()) {
    if (m.id === c.me) continue;
    for (const t of m.tracks) {
      if ((t.source === 'microphone' || t.source === 'screen-audio') && c.streams.has(t.id)) want.add(t.id);
    }
  }
  syncAudio($('audio-sink'), c, want);
  for (const a of $('audio-sink').children) a.muted = state.held;
}

function paintLevels() {
  for (const el of $('stage').children) {
    const id = el.dataset.key;
    const lvl = state.levels[id] || 0;
    el.classList.toggle('speaking', lvl > 0);
    el.style.setProperty('--level', String(lvl));
  }
}

// reportSize tells the server how large a remote video is shown, so that
// it forwards the layer that fits (0 × 0 when the tile is hidden).
function reportSize(el) {
  const id = el.dataset.track;
  if (!id || !state.client) return;
  const v = el.querySelector('video');
  const r = v.getBoundingClientRect();
  state.client.setSize(id, Math.round(r.width), Math.round(r.height));
}

// Test hook: what each tile plays.
state.stats = () => [...$('stage').children].map((el) => {
  const v = el.querySelector('video');
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
  return { key: el.dataset.key, track: el.dataset.track, frames: q.totalVideoFrames || 0, width: v.videoWidth, height: v.videoHeight,
    camOff: el.classList.contains('cam-off'), speaking: el.classList.contains('speaking'), spot: el.classList.contains('spot'),
    shown: `${Math.round(v.getBoundingClientRect().width)}x${Math.round(v.getBoundingClientRect().height)}` };
});
state.audioIn = async () => {
  const pc = state.client?.sub;
  if (!pc) return 0;
  let n = 0;
  (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') n += s.packetsReceived; });
  return n;
};

// --- end-to-end encryption -----------------------------------------------------

// lockState is what a tile's media says: 'decrypting'/'encrypting' (all
// good), 'failing', 'no-key', or '' (nothing flowing yet).
function lockState(t) {
  const c = state.client;
  if (t.self) return state.e2ee.get(t.screen ? 'screen' : 'camera') || state.e2ee.get('microphone') || '';
  const ids = t.screen ? [t.track] : t.member.tracks.filter((x) => x.source === 'camera' || x.source === 'microphone').map((x) => x.id);
  const st = ids.map((id) => state.e2ee.get(id)).filter(Boolean);
  if (st.includes('failing')) return 'failing';
  if (st.includes('decrypting')) return 'decrypting';
  return st[0] || (c && state.e2ee.get('*')) || '';
}

function paintLocks() {
  if (!state.keys) return;
  for (const el of $('stage').children) {
    const l = el.querySelector('.lock');
    if (!l) continue;
    const t = tiles().find((x) => x.key === el.dataset.key);
    if (!t) continue;
    const st = lockState(t);
    const ok = st === 'decrypting' || st === 'encrypting';
    l.className = 'lock' + (ok ? ' ok' : st === 'failing' || st === 'no-key' ? ' bad' : '');
    l.innerHTML = ok ? lockSVG : st === 'failing' || st === 'no-key' ? warnSVG : lockSVG;
    l.title = ok ? 'End-to-end encrypted: the server cannot see or hear this' : st === 'failing' ? 'Cannot decrypt: this person has another key' : st === 'no-key' ? 'No key for this call' : 'End-to-end encryption starting…';
    el.dataset.e2ee = st;
  }
  $('e2ee-badge').hidden = false;
  const bad = [...$('stage').children].some((el) => el.dataset.e2ee === 'failing' || el.dataset.e2ee === 'no-key');
  $('e2ee-badge').classList.toggle('bad', bad);
  $('e2ee-badge').lastChild.textContent = bad ? 'Some media cannot be decrypted' : 'End-to-end encrypted';
}

const lockSVG = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><rect x="5" y="10" width="14" height="10" rx="2" fill="currentColor"/><path d="M8 10V7a4 4 0 0 1 8 0v3" fill="none" stroke="currentColor" stroke-width="2"/></svg>';
const warnSVG = '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3l10 18H2z" fill="currentColor"/><path d="M12 10v5M12 17.5v.5" stroke="#111" stroke-width="2" stroke-linecap="round"/></svg>';

async function showFingerprint() {
  if (!state.keys) return;
  const k = await state.keys.at(state.client?.epoch || state.keys.from);
  if (k) $('e2ee-badge').title = `End-to-end encrypted. Key fingerprint ${await fingerprint(k)}: compare it with the others to be sure nobody is in the middle.`;
}

// A meeting link with #k=… is end-to-end encrypted.
try {
  state.keys = CallKeys.fromFragment(location.hash);
} catch (e) {
  $('lobby-error').textContent = e.message.replace(/^e2ee: /, '');
  $('lobby-error').hidden = false;
}
$('e2ee-toggle').checked = !!state.keys;
$('e2ee-toggle').onchange = () => {
  if ($('e2ee-toggle').checked) {
    state.keys = CallKeys.fromFragment('#k=' + newGroupKey());
    history.replaceState(null, '', location.pathname + location.search + '#' + state.keys.fragment());
  } else {
    state.keys = null;
    history.replaceState(null, '', location.pathname + location.search);
  }
  $('e2ee-hint').hidden = !state.keys;
};
$('e2ee-hint').hidden = !state.keys;
$('rotate').onclick = () => state.client?.rotateKey().catch((e) => toast(e.message));

// --- ringing calls (ring mode) -------------------------------------------------

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60 ? `${s % 60} s` : ''}`.trim();
}

// onRing applies a ringing call's state from the server.
function onRing(c) {
  const was = state.ring;
  state.ring = c;
  $('hold').setAttribute('aria-pressed', String(c.heldByMe));
  $('hold').title = c.heldByMe ? 'Resume the call' : 'Hold the call';
  const held = c.state === 'held';
  if (held !== state.held) setHeld(held);
  let text = '';
  if (c.state === 'connecting') text = 'Connecting…';
  if (held) text = c.heldByMe ? 'On hold · you put the call on hold' : `On hold · ${state.peerName} put the call on hold`;
  $('ring-state').textContent = text;
  $('ring-state').hidden = !text;
  if (c.state === 'ended' && was?.state !== 'ended') {
    if (c.tone === 'busy') play('busy'); else if (c.tone === 'ended') play('ended');
    if (!state.group) { end('ring-ended', c.reason); return; }
    // A group call (someone was added): the call goes on while anyone else
    // is in the room; this person's leg of it ended.
    setTimeout(() => {
      const others = state.client ? [...state.client.members.keys()].filter((id) => id !== state.client.me).length : 0;
      if (others === 0) { end('ring-ended', c.reason); return; }
      toast(`${state.peerName}'s call ended (${reasonText(c.reason).toLowerCase()}); the call goes on.`);
      state.ring = null;
      $('hold').hidden = true;
      $('ring-state').hidden = true;
      if (state.held) setHeld(false);
    }, 1200);
  }
}

// setHeld mutes both directions while the call is held: nothing of ours
// is sent (the tracks send black and silence), and nothing of theirs plays.
function setHeld(on) {
  state.held = on;
  const c = state.client;
  for (const t of Object.values(c?.local || {})) if (t) t.enabled = !on;
  render();
}

async function ringMode(id) {
  document.body.classList.add('ring-mode');
  $('hold').hidden = false;
  $('add-person').hidden = false;
  show('waiting');
  $('waiting-title').textContent = 'Connecting…';
  $('waiting-text').textContent = '';
  try {
    const p = await Presence.get({ create: true });
    state.presence = p;
    watchRings();
    const info = p.calls.get(id) || await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('This call has ended.')), 10000);
      const on = (e) => { if (e.detail.id === id) { clearTimeout(t); p.removeEventListener('call', on); resolve(e.detail); } };
      p.addEventListener('call', on);
    });
    if (info.state === 'ended') throw new Error(reasonText(info.reason));
    const me = await ident.identity();
    const contact = await ident.contact(info.peer);
    state.peerName = contact?.name || info.peerName || 'your contact';
    $('room-name').textContent = state.peerName;
    document.querySelector('.stream-title').textContent = info.video ? 'Video call' : 'Voice call';
    document.title = `${state.peerName} · Seedcast`;
    if (info.e2ee) {
      if (!contact) throw new Error('This call is from someone who is not in your contacts.');
      const pair = await pairwiseBaseKey(me.dh.privateKey, ident.fromB64url(contact.dh), ident.fromB64url(info.salt), me.key, info.peer);
      state.pairKey = pair;
      state.keys = new CallKeys(info.box ? await openBox(pair, info.box) : pair, 0);
    }
    p.addEventListener('call', (e) => { if (e.detail.id === id) onRing(e.detail); });
    p.addEventListener('error', (e) => {
      state.presenceError = e.detail;
      if (e.detail.code === 'call-refused') toast('The call cannot do that now.');
    });
    state.invite = info.invite || params.get('invite');
    $('name').value = me.name || 'Me';
    const video = info.video && (info.side === 'caller' || sessionStorage.getItem('seedcast.answerVideo') !== 'off');
    sessionStorage.removeItem('seedcast.answerVideo');
    state.micOn = true;
    state.camOn = video;
    await startPreview();
    onRing(info);
    await join();
    showFingerprint();
  } catch (e) {
    end('ring-ended', '');
    $('ended-title').textContent = 'This call is over';
    $('ended-text').textContent = e.message;
  }
}

$('hold').onclick = () => {
  const r = state.ring;
  if (!r) return;
  if (r.heldByMe) state.presence.resume(r.id); else state.presence.hold(r.id);
};

// Add someone: ring a third contact into this call's room. Their key for
// this call's media is sealed for them with your pairwise key.
$('add-person').onclick = async () => {
  const list = $('add-list');
  if (!list.hidden) { list.hidden = true; return; }
  const p = state.presence;
  const cs = (await ident.contacts()).filter((c) => c.key !== state.ring?.peer);
  list.replaceChildren(...(cs.length ? cs.map((c) => {
    const here = p.online.has(c.key);
    const b = button(`${c.name}${here ? '' : ' · not reachable'}`, 'secondary small', async () => {
      list.hidden = true;
      try {
        const me = await ident.identity();
        const salt = crypto.getRandomValues(new Uint8Array(16));
        let box = '';
        if (state.keys) {
          const pair = await pairwiseBaseKey(me.dh.privateKey, ident.fromB64url(c.dh), salt, me.key, c.key);
          box = await sealBox(pair, state.keys.base);
        }
        await p.ring(c.key, { video: true, e2ee: !!state.keys, room, box, salt: ident.b64url(salt) });
        toast(`Calling ${c.name}…`);
      } catch (e) { toast(e.code === 'unavailable' ? `${c.name} is not reachable.` : e.message); }
    });
    b.disabled = !here;
    return b;
  }) : [Object.assign(document.createElement('p'), { textContent: 'No other contacts yet.' })]));
  list.hidden = false;
};

state.e2eeStats = () => state.client?.media?.stats() || Promise.resolve({});

const ringID = params.get('ring');
if (ringID) ringMode(ringID);
else {
  startPreview();
  watchRings();
}
