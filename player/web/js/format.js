// Small formatting helpers shared by the pages.

export function rate(kbps) {
  if (!isFinite(kbps) || kbps < 0) return '–';
  if (kbps >= 1000) return (kbps / 1000).toFixed(kbps >= 10000 ? 0 : 1) + ' Mbit/s';
  return Math.round(kbps) + ' kbit/s';
}

export function bytes(n) {
  if (!isFinite(n) || n < 0) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(n >= 100 ? 0 : 1)) + ' ' + units[i];
}

export function pct(x) {
  return isFinite(x) ? Math.round(x * 100) + '%' : '–';
}

export function secs(ms) {
  return isFinite(ms) ? (ms / 1000).toFixed(1) + ' s' : '–';
}

export function since(date, now = new Date()) {
  const s = Math.max(0, Math.round((now - date) / 1000));
  if (s < 60) return s + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min';
  const h = Math.floor(m / 60);
  return h + ' h ' + (m % 60) + ' min';
}
