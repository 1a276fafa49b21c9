// The contacts page (/contacts): this browser's identity (name,
// fingerprint, contact link and its QR code, auto-answer), adding a
// contact from a link (pasted, or opened as /contacts#add=…), the contact
// list with presence and call buttons, and the local call history. All of
// it lives in this browser (identity.js); the page re-renders on every
// change, from this tab, another tab, or the presence connection.

import * as id from './identity.js';
import { Presence } from './presence.js';
import { startCall } from './ringer.js';

const $ = (s) => document.getElementById(s);

let me = null; // the identity, once there is one
let link = ''; // our contact link
let presence = null;
let pending = null; // a parsed contact link waiting for confirmation
const editing = new Map(); // contact key → 'rename' | 'remove'

// --- small helpers ---

function initials(name) {
  const words = String(name || '').trim().split(/\s+/).filter(Boolean);
  if (!words.length) return '?';
  const first = (w) => [...w][0] || '';
  return (first(words[0]) + (words.length > 1 ? first(words[words.length - 1]) : '')).toUpperCase();
}

// hue gives a contact a stable colour from their key.
function hue(key) {
  try { return Math.round(id.fromB64url(key)[0] * 360 / 256); } catch { return 200; }
}

function paintAvatar(el, name, key) {
  const ini = el.querySelector('.initials') || el;
  ini.textContent = initials(name);
  el.style.setProperty('--h', hue(key));
}

function shortKey(key) { return String(key || '').slice(0, 8); }

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

// when says when a call was, relative to now for the last week.
function when(ms, now = Date.now()) {
  const s = Math.round((now - ms) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return rtf.format(-Math.max(1, Math.round(s / 60)), 'minute');
  const d = new Date(ms);
  const today = new Date(now); today.setHours(0, 0, 0, 0);
  const time = d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (d >= today) return `today ${time}`;
  const days = Math.ceil((today - d) / 86400000);
  if (days === 1) return `yesterday ${time}`;
  if (days < 7) return `${d.toLocaleDateString(undefined, { weekday: 'long' })} ${time}`;
  return d.toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: d.getFullYear() === today.getFullYear() ? undefined : 'numeric' });
}

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

// outcome is how a call of the history ended, in plain words; bad says it
// is worth a red mark (missed, or it did not go through).
function outcome(h) {
  const callee = h.side === 'callee';
  const talked = h.answered && h.ended && h.ended > h.answered ? duration(h.ended - h.answered) : '';
  switch (h.state) {
    case 'ended': break;
    case 'active': case 'held': return { text: 'In progress', live: true };
    case 'connecting': return { text: 'Connecting', live: true };
    default: return { text: 'Ringing', live: true };
  }
  switch (h.reason) {
    case 'no-answer': case 'cancelled':
      return callee ? { text: 'Missed', bad: true, missed: true } : { text: h.reason === 'cancelled' ? 'Cancelled' : 'No answer' };
    case 'declined': return { text: 'Declined', bad: !callee };
    case 'busy': return { text: 'Busy', bad: !callee };
    case 'lost': return { text: talked ? `Lost connection · ${talked}` : 'Lost connection', bad: true };
    case 'failed': return { text: 'Failed to connect', bad: true };
    case 'unavailable': return { text: callee ? 'Missed' : 'Not reachable', bad: true, missed: callee };
    case 'answered-elsewhere': return { text: 'Answered on another device' };
    default: return { text: talked || 'Ended' };
  }
}

function show(which) {
  for (const s of ['loading', 'unsupported', 'first-run', 'book']) $(s).hidden = s !== which;
}

let toastTimer = 0;
function toast(text, bad = false) {
  const t = document.createElement('div');
  t.className = 'ct-toast' + (bad ? ' bad' : '');
  t.textContent = text;
  $('toasts').replaceChildren(t);
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.remove(), 4000);
}

async function copyLink(btn) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(link);
    ok = true;
  } catch {
    // No clipboard permission (an unfocused or embedded page): the old way.
    const input = $('my-link');
    input.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
  }
  if (ok) {
    toast('Your contact link is copied. Send it to the people you want to call.');
    const label = btn?.querySelector('span');
    if (label) {
      const was = label.textContent;
      label.textContent = 'Copied';
      btn.classList.add('done');
      setTimeout(() => { label.textContent = was; btn.classList.remove('done'); }, 1800);
    }
  } else {
    $('my-link').select();
    toast('Copying is blocked here: select the link and copy it yourself.', true);
  }
}

// --- presence ---

function reachable(key) {
  return !!presence && presence.state === 'online' && presence.online.has(key);
}

function renderNet() {
  const el = $('net');
  if (!presence) { el.hidden = true; return; }
  el.hidden = false;
  el.dataset.state = presence.state;
  $('net-text').textContent = { online: 'Online', connecting: 'Connecting…', offline: 'Offline' }[presence.state] || presence.state;
  el.title = presence.state === 'online' ? 'Your contacts can call you while this page is open.' :
    presence.fatal || 'Not connected to the server: calls cannot ring here for now.';
}

async function startPresence() {
  if (presence) return;
  presence = await Presence.get({ create: true });
  for (const ev of ['presence', 'state', 'ready']) presence.addEventListener(ev, () => { renderNet(); renderContacts(); renderHistory(); });
  renderNet();
}

// --- "You" ---

async function renderMe() {
  if (!me) return;
  $('me-name').textContent = me.name || 'Unnamed';
  paintAvatar($('me-avatar'), me.name, me.key);
  $('me-fp').textContent = await id.fingerprint(me.key);
  const l = await id.contactLink();
  if (l !== link) {
    link = l;
    $('my-link').value = link;
    $('qr').src = '/qr?text=' + encodeURIComponent(link);
  }
  $('auto-answer').checked = id.autoAnswer();
}

async function loadMe() {
  if (!(await id.has())) return null;
  me = await id.identity();
  return me;
}

// --- contacts ---

let contactList = [];

function statusText(key) {
  if (presence?.state === 'connecting') return { text: 'Connecting…', why: 'Connecting to the server: who is reachable shows in a moment.' };
  if (!presence || presence.state !== 'online') return { text: 'Unknown while you are offline', why: 'You are not connected to the server, so you cannot see who is reachable or call.' };
  if (reachable(key)) return { text: 'Reachable', why: '' };
  return { text: 'Not reachable', why: 'Not reachable: they are offline, or they have not added you to their contacts yet.' };
}

function contactRow(c, old) {
  const mode = editing.get(c.key) || '';
  // A row still being edited keeps its element (and what is typed in it).
  const keep = old && mode && old.dataset.mode === mode;
  const li = keep ? old : $('t-contact').content.firstElementChild.cloneNode(true);
  li.dataset.mode = mode;
  const on = reachable(c.key);
  li.dataset.key = c.key;
  li.classList.toggle('online', on);
  paintAvatar(li.querySelector('.ct-avatar'), c.name, c.key);
  li.querySelector('.name').textContent = c.name;
  const st = statusText(c.key);
  const status = li.querySelector('.status');
  status.textContent = st.text;
  status.title = st.why;
  li.querySelector('.dot').title = on ? 'Reachable now' : st.why;
  for (const [cls, video] of [['video', true], ['voice', false]]) {
    const b = li.querySelector('.call-btn.' + cls);
    b.disabled = !on;
    b.title = on ? `${video ? 'Video' : 'Voice'} call ${c.name}` : st.why;
    b.setAttribute('aria-label', `${video ? 'Video' : 'Voice'} call ${c.name}`);
    b.onclick = () => call(c, video);
  }
  li.querySelector('.rename-btn').setAttribute('aria-label', `Rename ${c.name}`);
  li.querySelector('.remove-btn').setAttribute('aria-label', `Remove ${c.name}`);
  const form = li.querySelector('.rename');
  const ask = li.querySelector('.remove-ask');
  if (keep) return li; // controls already wired, mode unchanged
  li.classList.toggle('editing', mode === 'rename');
  li.classList.toggle('asking', mode === 'remove');
  form.hidden = mode !== 'rename';
  ask.hidden = mode !== 'remove';
  ask.querySelector('b').textContent = c.name;
  li.querySelector('.rename-btn').onclick = async () => {
    editing.set(c.key, 'rename');
    await renderContacts();
    const input = $('contact-list').querySelector(`li[data-key="${CSS.escape(c.key)}"] .rename input`);
    input.value = c.name;
    input.focus();
    input.select();
  };
  li.querySelector('.remove-btn').onclick = async () => {
    editing.set(c.key, 'remove');
    await renderContacts();
    $('contact-list').querySelector(`li[data-key="${CSS.escape(c.key)}"] .remove-ask .no`).focus();
  };
  const done = () => { editing.delete(c.key); renderContacts(); };
  form.onsubmit = async (e) => {
    e.preventDefault();
    const name = form.querySelector('input').value.trim();
    editing.delete(c.key);
    if (name && name !== c.name) await id.renameContact(c.key, name); // fires 'contacts'
    renderContacts();
  };
  form.querySelector('.cancel').onclick = done;
  form.querySelector('input').onkeydown = (e) => { if (e.key === 'Escape') done(); };
  ask.querySelector('.no').onclick = done;
  ask.querySelector('.yes').onclick = async () => {
    editing.delete(c.key);
    await id.removeContact(c.key);
    toast(`${c.name} is no longer in your contacts.`);
  };
  return li;
}

async function renderContacts() {
  contactList = await id.contacts();
  const list = $('contact-list');
  const old = new Map([...list.children].map((li) => [li.dataset.key, li]));
  const sorted = [...contactList].sort((a, b) =>
    (reachable(b.key) - reachable(a.key)) || a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
  for (const k of editing.keys()) if (!contactList.some((c) => c.key === k)) editing.delete(k);
  list.replaceChildren(...sorted.map((c) => contactRow(c, old.get(c.key))));
  $('contacts-empty').hidden = sorted.length > 0;
  $('reach-note').hidden = !presence || presence.state !== 'online' || sorted.every((c) => reachable(c.key));
  const n = sorted.filter((c) => reachable(c.key)).length;
  $('count').textContent = sorted.length ? (n ? `${sorted.length} · ${n} reachable` : `${sorted.length}`) : '';
}

async function call(c, video) {
  try {
    await startCall(c, { video });
  } catch (e) {
    toast(e.message || 'The call could not start.', true);
  }
}

// --- history ---

function renderHistory() {
  const all = id.history().sort((a, b) => (b.started || 0) - (a.started || 0));
  const byKey = new Map(contactList.map((c) => [c.key, c]));
  const now = Date.now();
  $('history').replaceChildren(...all.slice(0, 40).map((h) => {
    const li = $('t-call').content.firstElementChild.cloneNode(true);
    const c = byKey.get(h.peer);
    const o = outcome(h);
    li.classList.add(h.side === 'callee' ? 'incoming' : 'outgoing');
    li.classList.toggle('bad', !!o.bad);
    li.classList.toggle('missed', !!o.missed);
    li.classList.toggle('live', !!o.live);
    const dir = o.missed ? 'Missed' : h.side === 'callee' ? 'Incoming' : 'Outgoing';
    li.querySelector('.dir').title = dir;
    const name = li.querySelector('.name');
    if (c) name.textContent = c.name;
    else {
      name.textContent = 'Unknown ';
      const k = document.createElement('code');
      k.textContent = shortKey(h.peer);
      name.append(k);
    }
    const kind = h.video ? 'video' : 'voice';
    const detail = li.querySelector('.detail');
    const t = document.createElement('time');
    t.dateTime = new Date(h.started).toISOString();
    t.title = new Date(h.started).toLocaleString();
    t.textContent = when(h.started, now);
    detail.append(`${dir} ${kind} call · `, t);
    li.querySelector('.outcome').textContent = o.text;
    const again = li.querySelector('.again');
    again.append($(h.video ? 't-icon-video' : 't-icon-voice').content.cloneNode(true));
    const on = c && reachable(c.key);
    again.disabled = !on;
    again.title = !c ? 'Not in your contacts: add them to call back' : on ? `Call ${c.name} back (${kind})` : statusText(c.key).why;
    again.setAttribute('aria-label', c ? `Call ${c.name} back` : 'Call back');
    if (c) again.onclick = () => call(c, h.video);
    return li;
  }));
  $('history-empty').hidden = all.length > 0;
  $('clear-history').hidden = all.length === 0;
}

// --- adding ---

// offer shows the confirmation card for a contact link (pasted, or from
// the page's #add=…), after the checks that need no click.
async function offer(text, where) {
  let c;
  try {
    c = id.parseContactLink(text);
  } catch (e) {
    return fail(where, e.message);
  }
  if (me && c.key === me.key) return fail(where, 'That is your own contact link. Send it to the people you want to call, and paste theirs here.');
  const old = contactList.find((x) => x.key === c.key);
  if (old && old.dh === c.dh) return fail(where, `${old.name} is already in your contacts.`);
  pending = c;
  paintAvatar($('confirm-avatar'), c.name, c.key);
  $('confirm-name').textContent = c.name || 'this person';
  $('confirm-fp').textContent = await id.fingerprint(c.key);
  $('confirm-error').hidden = true;
  $('confirm').hidden = false;
  $('confirm-yes').focus();
}

function fail(where, msg) {
  const e = $('add-error');
  e.textContent = msg;
  e.hidden = false;
  if (where === 'hash') {
    clearHash();
    if ($('book').hidden) toast(msg, true); // the add card is not shown yet
    else e.scrollIntoView({ block: 'center' });
  }
}

function clearHash() {
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
}

async function confirmAdd() {
  const c = pending;
  if (!c) return;
  try {
    await id.addContact(c); // makes the identity if this is a first visit
  } catch (e) {
    $('confirm-error').textContent = e.message;
    $('confirm-error').hidden = false;
    return;
  }
  pending = null;
  $('confirm').hidden = true;
  clearHash();
  $('add-link').value = '';
  $('add-error').hidden = true;
  $('added-name').textContent = c.name || 'They';
  $('added').hidden = false;
  if (!me) await begin();
}

function dismissConfirm() {
  pending = null;
  $('confirm').hidden = true;
  clearHash();
}

// --- wiring ---

async function begin() {
  await loadMe();
  if (!me || !me.name) {
    show('first-run');
    $('first-name').focus();
  } else {
    show('book');
    await startPresence();
  }
  await renderMe();
  await renderContacts();
  renderHistory();
}

function wire() {
  $('first-form').onsubmit = async (e) => {
    e.preventDefault();
    const name = $('first-name').value.trim();
    if (!name) return;
    await id.identity();
    await id.setName(name);
    await begin();
  };
  $('edit-name').onclick = () => {
    $('me-show').hidden = true;
    $('name-form').hidden = false;
    $('name-input').value = me?.name || '';
    $('name-input').focus();
    $('name-input').select();
  };
  const closeName = () => { $('me-show').hidden = false; $('name-form').hidden = true; };
  $('name-cancel').onclick = closeName;
  $('name-input').onkeydown = (e) => { if (e.key === 'Escape') closeName(); };
  $('name-form').onsubmit = async (e) => {
    e.preventDefault();
    const name = $('name-input').value.trim();
    if (name) await id.setName(name);
    closeName();
  };
  $('copy-link').onclick = (e) => copyLink(e.currentTarget);
  $('added-copy').onclick = (e) => copyLink(e.currentTarget);
  $('empty-copy').onclick = (e) => copyLink(e.currentTarget);
  $('added-close').onclick = () => { $('added').hidden = true; };
  $('my-link').onfocus = (e) => e.target.select();
  $('auto-answer').onchange = (e) => id.setAutoAnswer(e.target.checked);
  $('add-form').onsubmit = (e) => {
    e.preventDefault();
    $('add-error').hidden = true;
    const text = $('add-link').value.trim();
    if (!text) return fail('form', 'Paste the contact link they sent you.');
    offer(text, 'form');
  };
  $('add-link').oninput = () => { $('add-error').hidden = true; };
  $('confirm-yes').onclick = confirmAdd;
  $('confirm-no').onclick = dismissConfirm;
  $('confirm').onclick = (e) => { if (e.target === $('confirm')) dismissConfirm(); };
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('confirm').hidden) dismissConfirm(); });
  $('clear-history').onclick = () => {
    if (confirm('Clear the list of recent calls in this browser?')) id.clearHistory();
  };
  window.addEventListener('hashchange', () => { if (/[#&]add=/.test(location.hash)) offer(location.hash, 'hash'); });

  id.changes.addEventListener('identity', async () => {
    const had = !!(me && me.name);
    await loadMe();
    if (!had && me && me.name) return begin(); // named in another tab
    renderMe();
  });
  id.changes.addEventListener('contacts', async () => { await renderContacts(); renderHistory(); });
  id.changes.addEventListener('history', renderHistory);
  // Relative times age.
  setInterval(renderHistory, 30000);
}

async function main() {
  if (!id.supported()) {
    show('unsupported');
    return;
  }
  wire();
  try {
    await begin();
  } catch (e) {
    show('unsupported');
    $('unsupported-text').textContent = e.message;
    return;
  }
  if (/[#&]add=/.test(location.hash)) await offer(location.hash, 'hash');
  document.body.dataset.ready = '1';
}

main();
