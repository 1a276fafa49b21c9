// Comfort tones, made with WebAudio (no audio files): the ringtone of an
// incoming call, the ringback a caller hears while it rings, the busy
// signal, and the three falling notes of a call that ended.
//
//   const stop = play('ringback'); … stop();
//
// Browsers start audio only after the user touched the page; until then a
// tone is silent and the page shows the call anyway.

let ctx = null;
function audio() {
  ctx ??= new (self.AudioContext || self.webkitAudioContext)();
  if (ctx.state === 'suspended') ctx.resume().catch(() => {});
  return ctx;
}
addEventListener('pointerdown', () => { if (ctx?.state === 'suspended') ctx.resume(); }, { capture: true });

// A pattern is [frequencies, on s, off s] steps, repeated every period s
// (0: once).
const PATTERNS = {
  ringtone: { steps: [[[659, 988], 0.18, 0.07], [[784, 1175], 0.18, 0.07], [[659, 988], 0.18, 1.6]], period: 2.35, gain: 0.12 },
  ringback: { steps: [[[440, 480], 2, 4]], period: 6, gain: 0.08 },
  busy: { steps: [[[480, 620], 0.5, 0.5]], period: 1, gain: 0.08, times: 4 },
  ended: { steps: [[[880], 0.12, 0.05], [[660], 0.12, 0.05], [[440], 0.22, 0]], period: 0, gain: 0.1 },
};

let playing = null; // only one tone at a time

// play starts a tone; it returns stop().
export function play(name) {
  const p = PATTERNS[name];
  if (!p) return () => {};
  playing?.();
  let c;
  try { c = audio(); } catch { return () => {}; }
  const out = c.createGain();
  out.gain.value = p.gain;
  out.connect(c.destination);
  const oscs = [];
  let stopped = false;
  let timer = 0;
  let round = 0;
  const schedule = () => {
    if (stopped) return;
    let t = c.currentTime + 0.02;
    for (const [freqs, on, off] of p.steps) {
      for (const f of freqs) {
        const o = c.createOscillator();
        const g = c.createGain();
        o.frequency.value = f;
        g.gain.setValueAtTime(0, t);
        g.gain.linearRampToValueAtTime(1 / freqs.length, t + 0.01);
        g.gain.setValueAtTime(1 / freqs.length, t + on - 0.01);
        g.gain.linearRampToValueAtTime(0, t + on);
        o.connect(g).connect(out);
        o.start(t);
        o.stop(t + on + 0.02);
        oscs.push(o);
        o.onended = () => oscs.splice(oscs.indexOf(o), 1);
      }
      t += on + off;
    }
    round++;
    if (p.period > 0 && (!p.times || round < p.times)) timer = setTimeout(schedule, p.period * 1000);
  };
  schedule();
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    for (const o of [...oscs]) { try { o.stop(); } catch { /* already stopped */ } }
    out.disconnect();
    if (playing === stop) playing = null;
  };
  playing = stop;
  return stop;
}

// stopAll stops the current tone.
export function stopAll() { playing?.(); }
