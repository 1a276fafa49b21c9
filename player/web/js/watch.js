// The watch page: the player with its page around it.

import { loadNode } from './node.js';
import { mountPlayer } from './ui.js';

loadNode().catch(() => {}); // start fetching the .wasm at once
const { player } = mountPlayer(document.getElementById('player'));
const badge = document.getElementById('live-badge');
player.addEventListener('state', (e) => { badge.hidden = e.detail.state !== 'playing'; });
document.getElementById('player').focus({ preventScroll: true });
