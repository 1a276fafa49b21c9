// This browser's identity and address book, with no account anywhere.
//
// The identity is an Ed25519 key pair (it proves who we are to the
// presence server) and an X25519 key pair (end-to-end keys with each
// contact), generated on first use with WebCrypto as non-extractable keys:
// the private halves never leave the browser's key store, not even to this
// page's script. They live in IndexedDB, with the display name. Contacts
// (their two public keys and the name we gave them) and the call history
// stay in this browser too; the server never stores them.
//
// A contact link carries our public keys and name in its fragment, which
// browsers never send to the server:
//
//   https://host/contacts#add=v1.<ed25519 pub>.<x25519 pub>.<name, base64url UTF-8>

const DB = 'seedcast';
const STORE = 'kv';

export const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

export function fromB64url(s) {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new Error('not base64url');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

let dbp = null;
function db() {
  dbp ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return dbp;
}

async function get(key) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const r = d.transaction(STORE).objectStore(STORE).get(key);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function put(key, value) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

// changes fires 'identity' and 'contacts' when either changes, here or in
// another tab of this browser.
export const changes = new EventTarget();
const bc = 'BroadcastChannel' in self ? new BroadcastChannel('seedcast-identity') : null;
if (bc) bc.onmessage = (ev) => changes.dispatchEvent(new Event(ev.data));
function changed(what) {
  changes.dispatchEvent(new Event(what));
  bc?.postMessage(what);
}

export function supported() {
  return !!(self.crypto && crypto.subtle && self.indexedDB);
}

let idp = null;

// has reports whether this browser already holds an identity (without
// making one).
export async function has() {
  try { return !!(await get('identity')); } catch { return false; }
}

// identity returns this browser's identity, making it on first use.
export function identity() {
  idp ??= (async () => {
    let id = await get('identity');
    if (!id) {
      let sign, dh;
      try {
        sign = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
        dh = await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']);
      } catch (e) {
        throw new Error('This browser cannot make an identity key (it lacks Ed25519 or X25519 in WebCrypto): ' + e.message);
      }
      id = {
        sign, dh,
        key: b64url(await crypto.subtle.exportKey('raw', sign.publicKey)),
        dhPub: b64url(await crypto.subtle.exportKey('raw', dh.publicKey)),
        browser: b64url(crypto.getRandomValues(new Uint8Array(9))),
        name: '',
        created: Date.now(),
      };
      await put('identity', id);
      changed('identity');
    }
    return id;
  })().catch((e) => { idp = null; throw e; });
  return idp;
}

// device is this tab's device id: the browser's, and a per-tab part kept in
// sessionStorage (it survives reloads and navigation in the tab, so a call
// follows the tab from page to page; two tabs are two devices).
export async function device() {
  const id = await identity();
  let tab = sessionStorage.getItem('seedcast.tab');
  if (!tab) {
    tab = b64url(crypto.getRandomValues(new Uint8Array(6)));
    sessionStorage.setItem('seedcast.tab', tab);
  }
  return `${id.browser}-${tab}`;
}

export async function sign(bytes) {
  const id = await identity();
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, id.sign.privateKey, bytes));
}

export async function setName(name) {
  const id = await identity();
  id.name = String(name || '').trim().slice(0, 40);
  await put('identity', id);
  changed('identity');
}

// --- contacts ---

export async function contacts() {
  return (await get('contacts')) || [];
}

export async function contact(key) {
  return (await contacts()).find((c) => c.key === key) || null;
}

export async function addContact({ key, dh, name }) {
  checkKey(key, 'key');
  checkKey(dh, 'dh');
  const id = await identity();
  if (key === id.key) throw new Error('That is your own contact link.');
  const list = await contacts();
  const old = list.find((c) => c.key === key);
  if (old) {
    if (old.dh !== dh) throw new Error('You already have this contact with another encryption key: remove it first if they made a new one.');
    return old;
  }
  const c = { key, dh, name: String(name || 'Unnamed').trim().slice(0, 40) || 'Unnamed', added: Date.now() };
  list.push(c);
  await put('contacts', list);
  changed('contacts');
  return c;
}

export async function renameContact(key, name) {
  const list = await contacts();
  const c = list.find((x) => x.key === key);
  if (!c) return;
  c.name = String(name || '').trim().slice(0, 40) || c.name;
  await put('contacts', list);
  changed('contacts');
}

export async function removeContact(key) {
  const list = (await contacts()).filter((c) => c.key !== key);
  await put('contacts', list);
  changed('contacts');
}

function checkKey(k, what) {
  let b;
  try { b = fromB64url(k); } catch { b = null; }
  if (!b || b.length !== 32) throw new Error(`The link's ${what} is not a 32-byte public key.`);
}

export async function contactLink() {
  const id = await identity();
  const name = b64url(new TextEncoder().encode(id.name || ''));
  return `${location.origin}/contacts#add=v1.${id.key}.${id.dhPub}.${name}`;
}

// parseContactLink reads a contact link (or just its add=… part).
export function parseContactLink(s) {
  const m = /(?:^|[#&])add=(v1\.[A-Za-z0-9_.-]+)/.exec(String(s).trim());
  if (!m) throw new Error('That is not a Seedcast contact link.');
  const [, key, dh, name = ''] = m[1].split('.');
  checkKey(key, 'identity key');
  checkKey(dh, 'encryption key');
  let text = '';
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(fromB64url(name)); } catch { throw new Error("The link's name is garbled."); }
  return { key, dh, name: text.replace(/[\u0000-\u001f]/g, '').slice(0, 40) };
}

// fingerprint is a short, comparable form of a public key (for reading
// out loud: both sides see the same).
export async function fingerprint(keyB64) {
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', fromB64url(keyB64)));
  const hex = [...h.slice(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return hex.match(/.{4}/g).join(' ');
}

// --- settings and history (this browser) ---

export function autoAnswer() { return localStorage.getItem('seedcast.autoAnswer') === 'on'; }
export function setAutoAnswer(on) {
  localStorage.setItem('seedcast.autoAnswer', on ? 'on' : 'off');
  changed('identity');
}

const HISTORY = 'seedcast.history';
const HISTORY_MAX = 200;

export function history() {
  try { return JSON.parse(localStorage.getItem(HISTORY) || '[]'); } catch { return []; }
}

// recordCall keeps a call's last state in the history (one entry a call).
export function recordCall(info) {
  const list = history().filter((h) => h.id !== info.id);
  list.unshift({
    id: info.id, peer: info.peer, side: info.side, video: !!info.video, state: info.state,
    reason: info.reason || '', started: info.started || Date.now(), answered: info.answered || 0, ended: info.ended || 0,
  });
  localStorage.setItem(HISTORY, JSON.stringify(list.slice(0, HISTORY_MAX)));
  changed('history');
}

export function clearHistory() {
  localStorage.removeItem(HISTORY);
  changed('history');
}
