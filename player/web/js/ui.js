// The player's interface: controls, state messages, the settings panel
// and the stats overlay, around a Player. Shared by the watch and embed
// pages; it returns the Player and Settings so a page can add to them.

import { Player } from './player.js';
import { Overlay } from './overlay.js';
import { Settings, measureUpload } from './settings.js';
import { pct, rate, secs } from './format.js';

const IDLE_MS = 3000;

export function mountPlayer(root, { embed = false } = {}) {
  const $ = (id) => root.querySelector('#' + id);
  const video = $('video');
  const settings = new Settings();
  const player = new Player(video, { stream: root.dataset.stream });
  const overlay = new Overlay($('overlay'));
  window.seedcastPlayer = player; // for the console and tests
  // Startup, as the benchmarks measure it: page load to the first frame.
  if (video.requestVideoFrameCallback) {
    video.requestVideoFrameCallback(() => { window.seedcastFirstFrameMs = performance.now(); });
  } else {
    video.addEventListener('playing', () => { window.seedcastFirstFrameMs ??= performance.now(); }, { once: true });
  }

  // --- state: spinner, messages, click to play --------------------------
  const state = $('state');
  player.addEventListener('state', (e) => {
    const { state: st, message } = e.detail;
    state.className = 'state ' + st;
    state.classList.toggle('ok', st === 'playing');
    $('state-text').textContent = message || '';
    $('big-play').hidden = st !== 'paused';
    root.classList.toggle('at-live', st === 'playing');
    $('live-label').textContent = st === 'offline' ? 'OFFLINE' : 'LIVE';
  });
  player.addEventListener('autoplaymuted', () => { $('unmute').hidden = false; syncMute(); });
  $('unmute').addEventListener('click', () => { video.muted = false; $('unmute').hidden = true; syncMute(); });
  $('big-play').addEventListener('click', async () => {
    video.muted = false;
    if (await player.play()) player.setState('playing');
  });

  // --- controls ------------------------------------------------------------
  const syncPlay = () => {
    root.classList.toggle('paused', video.paused);
    $('play').setAttribute('aria-label', video.paused ? 'Play' : 'Pause');
  };
  video.addEventListener('play', syncPlay);
  video.addEventListener('pause', syncPlay);
  player.addEventListener('state', syncPlay); // a refused play() fires no event
  syncPlay();
  $('play').addEventListener('click', () => {
    if (video.paused) { player.play(); player.resync(1); } else video.pause();
  });
  const syncMute = () => {
    const muted = video.muted || video.volume === 0;
    $('mute').classList.toggle('muted', muted);
    $('mute').setAttribute('aria-label', muted ? 'Unmute' : 'Mute');
    $('volume').value = video.muted ? 0 : video.volume;
  };
  video.addEventListener('volumechange', syncMute);
  $('mute').addEventListener('click', () => { video.muted = !video.muted; if (!video.muted) $('unmute').hidden = true; });
  $('volume').addEventListener('input', (e) => {
    video.volume = Number(e.target.value);
    video.muted = video.volume === 0;
  });
  $('golive').addEventListener('click', () => { player.resync(0.3); if (video.paused) player.play(); });
  $('fullscreen').addEventListener('click', () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else (root.requestFullscreen ? root.requestFullscreen() : video.webkitEnterFullscreen && video.webkitEnterFullscreen());
  });

  // Keyboard: space/k play-pause, m mute, f full screen, s stats, l live.
  root.addEventListener('keydown', (e) => {
    if (e.target.closest('input, select, textarea, .settings')) return;
    const k = e.key.toLowerCase();
    const act = { ' ': 'play', k: 'play', m: 'mute', f: 'fullscreen', s: 'stats-btn', l: 'golive' }[k];
    if (act) { e.preventDefault(); $(act).click(); }
  });

  // Hide the controls when the pointer rests.
  let idle;
  const wake = () => {
    root.classList.remove('idle');
    clearTimeout(idle);
    idle = setTimeout(() => { if (!video.paused) root.classList.add('idle'); }, IDLE_MS);
  };
  root.addEventListener('pointermove', wake);
  root.addEventListener('pointerdown', wake);
  wake();

  // --- panels --------------------------------------------------------------
  const phone = () => matchMedia('(max-width: 640px)').matches;
  const openPanel = (which, open) => {
    const panel = $(which), btn = $(which === 'overlay' ? 'stats-btn' : 'settings-btn');
    panel.hidden = !open;
    btn.setAttribute(which === 'overlay' ? 'aria-pressed' : 'aria-expanded', String(open));
    if (open && phone()) openPanel(which === 'overlay' ? 'settings' : 'overlay', false);
    if (open && which === 'overlay' && player.lastStats) overlay.update(player.lastStats);
  };
  $('stats-btn').addEventListener('click', () => openPanel('overlay', $('overlay').hidden));
  document.querySelectorAll('[data-open-settings]').forEach((b) =>
    b.addEventListener('click', () => openPanel('settings', $('settings').hidden)));
  $('settings-close').addEventListener('click', () => openPanel('settings', false));
  root.addEventListener('keydown', (e) => { if (e.key === 'Escape') { openPanel('settings', false); openPanel('overlay', false); } });

  // --- settings ------------------------------------------------------------
  const form = $('settings');
  const showSettings = () => {
    const v = settings.v;
    form.querySelector(`input[name=upmode][value=${v.upMode}]`).checked = true;
    form.querySelector(`input[name=relay][value=${v.relay}]`).checked = true;
    $('up-auto').hidden = v.upMode !== 'auto';
    $('up-manual').hidden = v.upMode !== 'manual';
    if (document.activeElement !== $('up-kbps')) $('up-kbps').value = v.upManualKbps;
    $('up-measured').textContent = v.upMeasuredKbps > 0 ? 'Measured: ' + rate(v.upMeasuredKbps) : 'Not measured yet (assuming ' + rate(settings.totalKbps()) + ')';
    $('reserve').value = v.reservePct;
    $('reserve-out').textContent = `${v.reservePct}% · ${rate(settings.totalKbps() * v.reservePct / 100)}`;
    $('available').textContent = rate(settings.availableKbps());
    $('relay-custom-row').hidden = v.relay !== 'custom';
    if (document.activeElement !== $('relay-custom')) $('relay-custom').value = v.relayCustomKbps;
    $('quality').value = v.quality;
    showRelay();
  };
  const showRelay = () => {
    const s = player.lastStats;
    const want = player.webrtc ? settings.relayKbps() : 0;
    let text = want > 0 ? rate(want) : 'off';
    if (!player.webrtc) text = 'off: WebRTC is not available in this browser';
    else if (s && s.throttled) text = rate(s.relayBudgetKbps) + ' (reduced from ' + rate(want) + ')';
    $('relay-now').textContent = text;
  };
  form.addEventListener('change', (e) => {
    const t = e.target;
    if (t.name === 'upmode') settings.set({ upMode: t.value });
    else if (t.name === 'relay') settings.set({ relay: t.value });
    else if (t.id === 'up-kbps') settings.set({ upManualKbps: Number(t.value) });
    else if (t.id === 'relay-custom') settings.set({ relayCustomKbps: Number(t.value) });
    else if (t.id === 'quality') settings.set({ quality: t.value });
  });
  $('reserve').addEventListener('input', (e) => settings.set({ reservePct: Number(e.target.value) }));
  let testing = false;
  const runTest = async () => {
    if (testing) return;
    testing = true;
    $('up-test').disabled = true;
    $('up-measured').textContent = 'Measuring…';
    try {
      const kbps = await measureUpload();
      settings.set({ upMeasuredKbps: kbps, upMeasuredAt: Date.now() });
    } catch (e) {
      $('up-measured').textContent = 'Could not measure: ' + e.message;
    } finally {
      testing = false;
      $('up-test').disabled = false;
    }
  };
  $('up-test').addEventListener('click', runTest);
  settings.addEventListener('change', () => {
    showSettings();
    player.setRelay(settings.relayKbps()).catch(() => {});
    if (settings.v.quality !== player.quality) player.setQuality(settings.v.quality).catch((e) => notice(e.message, 6000));
  });
  showSettings();

  // --- notices -------------------------------------------------------------
  let noticeTimer;
  const notice = (text, ms = 0) => {
    $('notice').textContent = text;
    $('notice').hidden = !text;
    clearTimeout(noticeTimer);
    if (ms) noticeTimer = setTimeout(() => { $('notice').hidden = true; }, ms);
  };
  player.addEventListener('relaychange', (e) => {
    if (e.detail.throttled) notice('Reduced relay to protect your connection');
    else if ($('notice').textContent.startsWith('Reduced relay')) notice('');
    showRelay();
  });
  if (!player.webrtc) notice('Peer-to-peer is not available in this browser: playing over HTTP only.', 8000);

  // --- stats ---------------------------------------------------------------
  player.addEventListener('stats', (e) => {
    const s = e.detail;
    overlay.update(s);
    const all = s.bytesFromPeers + s.bytesFromOrigin;
    $('p2p-share').textContent = all > 0 ? pct(s.bytesFromPeers / all) : '–';
    $('latency').textContent = isFinite(s.latencyToLiveMs) && s.latencyToLiveMs > 0 ? secs(s.latencyToLiveMs) : '';
    if (!form.hidden) showRelay();
  });

  player.start({ relayKbps: settings.relayKbps(), quality: settings.v.quality });
  if (settings.needsTest()) setTimeout(runTest, embed ? 8000 : 3000); // after start-up, briefly
  setInterval(() => { if (settings.needsTest() && document.visibilityState === 'visible') runTest(); }, 60_000);
  return { player, settings, overlay };
}
