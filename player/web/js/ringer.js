// Ringing calls on every page: a STUB until the real ringer lands (it shows
// the outgoing-call overlay and incoming calls). startCall only rings.

import { Presence } from './presence.js';

// startCall rings a contact ({key, dh, name}) for a video or voice call.
export async function startCall(contact, { video = true } = {}) {
  const p = await Presence.get({ create: true });
  return p.ring(contact.key, { video });
}
