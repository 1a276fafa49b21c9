// Ringing, on every page of the app: the incoming-call prompt (answer with
// video or voice, or decline), the outgoing-call card (ringback, cancel),
// their tones, and the move to the call page once a call connects.
//
// startCall(contact, { video }) rings a contact from any page.

import { Presence, callURL } from './presence.js';
import * as id from './identity.js';
import { play, stopAll } from './tones.js';

const REASONS = {
  declined: 'Declined',
  busy: 'Busy: they are in another call',
  'no-answer': 'No answer',
  cancelled: 'Cancelled',
  hangup: 'Call ended',
  failed: 'The call could not connect',
  lost: 'The connection was lost',
  unavailable: 'Not reachable',
  'answered-elsewhere': 'Answered on another device',
};

export function reasonText(r) { return REASONS[r] || 'Call ended'; }

let root = null;
const cards = new Map(); // call id → { el, stop }

function ensureRoot() {
  if (!root) {
    root = document.createElement('div');
    root.className = 'ring-stack';
    root.setAttribute('aria-live', 'assertive');
    document.body.append(root);
  }
  return root;
}

function initials(name) {
  return (name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join('') || '?';
}

async function nameOf(c) {
  const k = await id.contact(c.peer);
  return k ? k.name : (c.peerName || 'Someone');
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

// inThisCall reports whether this page is the call page of call c.
function inThisCall(c) {
  if (!location.pathname.startsWith('/call/')) return false;
  // This call's page, or the page of the room it rang someone into.
  return new URLSearchParams(location.search).get('ring') === c.id || (c.group && c.side === 'caller' && location.pathname === `/call/${c.room}`);
}

function drop(callID) {
  const card = cards.get(callID);
  if (!card) return;
  card.stop?.();
  card.el.classList.add('leaving');
  setTimeout(() => card.el.remove(), 200);
  cards.delete(callID);
}

async function incoming(p, c) {
  if (cards.has(c.id)) return;
  const name = await nameOf(c);
  const card = el('section', 'ring-card incoming');
  card.setAttribute('role', 'alertdialog');
  card.setAttribute('aria-label', `${name} is calling`);
  card.dataset.call = c.id;
  const who = el('div', 'ring-who');
  const av = el('span', 'avatar ring-avatar pulse', initials(name));
  const txt = el('div', 'ring-text');
  txt.append(el('strong', 'ring-name', name), el('span', 'ring-sub', `${c.video ? 'Video call' : 'Voice call'}${c.group ? ' · join a group call' : ''}${c.e2ee ? ' · end-to-end encrypted' : ''}`));
  who.append(av, txt);
  const btns = el('div', 'ring-actions');
  const decline = el('button', 'ring-btn decline', 'Decline');
  decline.type = 'button';
  decline.onclick = () => { p.decline(c.id); drop(c.id); };
  const voice = el('button', 'ring-btn answer-voice', 'Voice');
  voice.type = 'button';
  voice.title = 'Answer without your camera';
  voice.onclick = () => { sessionStorage.setItem('seedcast.answerVideo', 'off'); p.answer(c.id); };
  const video = el('button', 'ring-btn answer', 'Answer');
  video.type = 'button';
  video.onclick = () => { sessionStorage.setItem('seedcast.answerVideo', c.video ? 'on' : 'off'); p.answer(c.id); };
  btns.append(decline, voice, video);
  card.append(who, btns);
  ensureRoot().append(card);
  cards.set(c.id, { el: card, stop: play('ringtone') });
  video.focus({ preventScroll: true });
}

async function outgoing(p, c) {
  const name = await nameOf(c);
  let card = cards.get(c.id);
  if (!card) {
    const e = el('section', 'ring-card outgoing');
    e.setAttribute('role', 'status');
    e.dataset.call = c.id;
    const who = el('div', 'ring-who');
    who.append(el('span', 'avatar ring-avatar pulse', initials(name)));
    const txt = el('div', 'ring-text');
    txt.append(el('strong', 'ring-name', name), el('span', 'ring-sub', 'Calling…'));
    who.append(txt);
    const btns = el('div', 'ring-actions');
    const cancel = el('button', 'ring-btn decline', 'Cancel');
    cancel.type = 'button';
    cancel.onclick = () => p.cancel(c.id);
    btns.append(cancel);
    e.append(who, btns);
    ensureRoot().append(e);
    card = { el: e, stop: null };
    cards.set(c.id, card);
  }
  if (c.tone === 'ringback' && !card.stop) card.stop = play('ringback');
}

function ended(c) {
  const card = cards.get(c.id);
  if (!card) return;
  card.stop?.();
  card.stop = null;
  if (c.reason === 'answered-elsewhere' || c.side === 'callee') {
    drop(c.id);
    return;
  }
  if (c.tone === 'busy') card.stop = play('busy'); else if (c.tone === 'ended') play('ended');
  card.el.classList.add('done');
  card.el.querySelector('.ring-sub').textContent = reasonText(c.reason);
  card.el.querySelector('.ring-avatar')?.classList.remove('pulse');
  const act = card.el.querySelector('.ring-actions');
  act.replaceChildren();
  const ok = el('button', 'ring-btn', 'Close');
  ok.type = 'button';
  ok.onclick = () => drop(c.id);
  act.append(ok);
  setTimeout(() => drop(c.id), 4000);
}

function onCall(p, c) {
  switch (c.state) {
    case 'incoming-ringing': incoming(p, c); break;
    case 'outgoing-ringing': outgoing(p, c); break;
    case 'connecting': case 'active': case 'held':
      if (cards.has(c.id)) { drop(c.id); stopAll(); }
      if (c.room && c.invite && c.state === 'connecting' && !inThisCall(c)) location.assign(callURL(c));
      break;
    case 'ended': ended(c); break;
  }
}

let started = null;

// watch makes this page ring: it needs an identity (made by the contacts
// page); without one, nobody can ring this browser and nothing connects.
export function watch({ create = false } = {}) {
  started ??= Presence.get({ create }).then((p) => {
    if (!p) { started = null; return null; }
    p.addEventListener('call', (ev) => onCall(p, ev.detail));
    for (const c of p.calls.values()) onCall(p, c);
    return p;
  });
  return started;
}

// startCall rings a contact ({key, name}) and shows the outgoing card.
export async function startCall(contact, { video = true } = {}) {
  const p = await watch({ create: true });
  try {
    await p.ring(contact.key, { video });
  } catch (e) {
    const card = el('section', 'ring-card outgoing done');
    card.setAttribute('role', 'alert');
    const who = el('div', 'ring-who');
    const txt = el('div', 'ring-text');
    txt.append(el('strong', 'ring-name', contact.name), el('span', 'ring-sub', e.code === 'unavailable'
      ? 'Not reachable: offline, or they have not added you yet'
      : e.code === 'busy' ? 'You are already in a call' : e.message));
    who.append(el('span', 'avatar ring-avatar', initials(contact.name)), txt);
    card.append(who);
    ensureRoot().append(card);
    setTimeout(() => card.remove(), 4000);
    throw e;
  }
}

watch();
