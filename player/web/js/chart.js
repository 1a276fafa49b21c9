// A small stacked-area chart on a canvas, sized for the device's pixels.

export class StackChart {
  // series: [{color}] drawn bottom to top; points: how many samples kept.
  constructor(canvas, series, points = 60) {
    this.canvas = canvas;
    this.series = series;
    this.points = points;
    this.data = []; // [[v0, v1, ...], ...]
  }

  push(values) {
    this.data.push(values);
    if (this.data.length > this.points) this.data.shift();
  }

  set(rows) {
    this.data = rows.slice(-this.points);
  }

  draw() {
    const c = this.canvas;
    const dpr = globalThis.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(c.clientWidth * dpr));
    const h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const g = c.getContext('2d');
    g.clearRect(0, 0, w, h);
    const style = getComputedStyle(c);
    g.strokeStyle = 'rgba(255,255,255,0.08)';
    g.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      const y = Math.round((h * i) / 4) + 0.5;
      g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
    }
    const n = this.data.length;
    if (n < 2) return;
    const max = Math.max(1e-9, ...this.data.map((r) => r.reduce((a, b) => a + b, 0))) * 1.1;
    const x = (i) => (w * (i + this.points - n)) / (this.points - 1);
    const base = new Array(n).fill(0);
    this.series.forEach((s, k) => {
      const top = this.data.map((r, i) => base[i] + (r[k] || 0));
      g.beginPath();
      g.moveTo(x(0), h - (top[0] / max) * h);
      for (let i = 1; i < n; i++) g.lineTo(x(i), h - (top[i] / max) * h);
      for (let i = n - 1; i >= 0; i--) g.lineTo(x(i), h - (base[i] / max) * h);
      g.closePath();
      const color = style.getPropertyValue(s.color).trim() || s.color;
      g.fillStyle = color;
      g.globalAlpha = 0.75;
      g.fill();
      g.globalAlpha = 1;
      g.strokeStyle = color;
      g.beginPath();
      g.moveTo(x(0), h - (top[0] / max) * h);
      for (let i = 1; i < n; i++) g.lineTo(x(i), h - (top[i] / max) * h);
      g.stroke();
      for (let i = 0; i < n; i++) base[i] = top[i];
    });
    g.fillStyle = 'rgba(230,235,245,0.7)';
    g.font = `${11 * dpr}px system-ui, sans-serif`;
    g.fillText(this.label ? this.label(max / 1.1) : '', 4 * dpr, 12 * dpr);
  }
}
