// A small dependency-free SVG line chart: what d2l's Animator draws after training (x = epoch,
// train loss / train acc / test acc on one y axis from 0).

export interface Series {
  name: string;
  /** [x, y] pairs; non-finite y values are left out */
  points: [number, number][];
  color: string;
  dashed?: boolean;
  /** draw a dot on each point (useful for a series with one point per epoch) */
  markers?: boolean;
}

export interface PlotOptions {
  title?: string;
  xlabel?: string;
  ylabel?: string;
  /** default [min x, max x] over all series */
  xlim?: [number, number];
  /** default [0, max(1, max y)] */
  ylim?: [number, number];
  width?: number;
  height?: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number): string => String(Math.round(v * 100) / 100);

/** "Nice" tick values (1, 2, 5 x 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    ticks.push(Number((k * step).toPrecision(12)) + 0); // + 0 turns -0 into 0
  }
  return ticks;
}

export function plotSvg(series: Series[], options: PlotOptions = {}): string {
  const width = options.width ?? 640;
  const height = options.height ?? 420;
  const m = { left: 56, right: 20, top: options.title ? 36 : 16, bottom: 62 };
  const all = series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = options.xlim ?? (xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 1]);
  const [y0, y1] = options.ylim ?? [0, Math.max(1, ...ys)];
  const xSpan = x1 > x0 ? x1 - x0 : 1;
  const ySpan = y1 > y0 ? y1 - y0 : 1;
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const X = (x: number): number => m.left + ((x - x0) / xSpan) * pw;
  const Y = (y: number): number => m.top + ph - ((y - y0) / ySpan) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  if (options.title) out.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(options.title)}</text>`);
  // grid and ticks
  for (const t of niceTicks(x0, x1, Math.min(10, Math.max(4, Math.round(xSpan))))) {
    out.push(`<line x1="${fmt(X(t))}" y1="${m.top}" x2="${fmt(X(t))}" y2="${m.top + ph}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${fmt(X(t))}" y="${m.top + ph + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(y0, y1, 5)) {
    out.push(`<line x1="${m.left}" y1="${fmt(Y(t))}" x2="${m.left + pw}" y2="${fmt(Y(t))}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${fmt(Y(t) + 4)}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  if (options.xlabel) out.push(`<text x="${m.left + pw / 2}" y="${m.top + ph + 32}" text-anchor="middle">${esc(options.xlabel)}</text>`);
  if (options.ylabel) {
    out.push(`<text x="14" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.top + ph / 2})">${esc(options.ylabel)}</text>`);
  }
  // lines
  for (const s of series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length === 0) continue;
    const d = pts.map(([x, y]) => `${fmt(X(x))},${fmt(Y(y))}`).join(' ');
    out.push(`<polyline class="series" data-name="${esc(s.name)}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${d}"/>`);
    if (s.markers || pts.length === 1) {
      for (const [x, y] of pts) out.push(`<circle cx="${fmt(X(x))}" cy="${fmt(Y(y))}" r="3" fill="${s.color}"/>`);
    }
  }
  // legend in one row under the axis, where it never hides a curve
  const itemWidth = (s: Series): number => 34 + 7 * s.name.length + 16;
  let lx = m.left + (pw - series.reduce((w, s) => w + itemWidth(s), 0)) / 2;
  const ly = height - 18;
  for (const s of series) {
    out.push(`<line x1="${fmt(lx)}" y1="${ly}" x2="${fmt(lx + 24)}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${fmt(lx + 30)}" y="${ly + 4}">${esc(s.name)}</text>`);
    lx += itemWidth(s);
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
