// The dataplane bench's results as data, a markdown table and an SVG chart. Pure: the caller
// writes the files. Ratios are taken per round (the shapes of one round ran back to back), then
// summarised like the figures: median with min and max.
import type { Walk } from './walk.js';

export const SHAPES = ['none', 'conntrack', 'conntrack-nat', 'guestwall', 'linear'] as const;
export type Shape = (typeof SHAPES)[number];

export const SHAPE_LABEL: Record<Shape, string> = {
  none: '(a) no ruleset',
  conntrack: '(b) conntrack only',
  'conntrack-nat': "(b') conntrack + nat chains",
  guestwall: '(c) guestwall',
  linear: '(d) linear dispatch',
};

export const MEASURES = ['newflow-routed', 'newflow-bridged', 'bulk-routed'] as const;
export type Measure = (typeof MEASURES)[number];

export const MEASURE_LABEL: Record<Measure, { title: string; unit: string; scale: number }> = {
  'newflow-routed': { title: 'New-flow rate, UDP from the WAN to a routed guest', unit: 'kpps', scale: 1e-3 },
  'newflow-bridged': { title: 'New-flow rate, UDP from the WAN to a bridged guest (through its bridge)', unit: 'kpps', scale: 1e-3 },
  'bulk-routed': { title: 'Bulk TCP throughput, one stream from the WAN to a routed guest', unit: 'Gbit/s', scale: 1e-9 },
};

export interface Round {
  round: number;
  order: Shape[];
  /** Packets per second (new-flow) or bits per second (bulk), per shape and measure. */
  values: Record<Shape, Partial<Record<Measure, number>>>;
  /** The sender's CPU time per new-flow packet (ns), per shape and new-flow measure: see FlowRun.cpuNsPerPacket. */
  cpuNs?: Record<Shape, Partial<Record<Measure, number>>>;
  /** Conntrack entries in the host namespace after the routed new-flow run, per shape. */
  conntrackEntries: Record<Shape, number>;
}

export interface SizeResult {
  guests: number;
  /** Rules and set/map elements of the loaded ruleset, per shape. */
  rules: Record<'guestwall' | 'linear', number>;
  elements: Record<'guestwall' | 'linear', number>;
  /** Rules the routed receiver's packets walk through in the linear dispatch (forward iifname list + oifname list). */
  linearDispatchRules: number;
  /** Rules the bench's new-flow packet walks, per shape and receiver (bench/dataplane/walk.ts). */
  walks: Record<Shape, Partial<Record<'routed' | 'bridged', Walk>>>;
  receivers: { guest: string; mode: string; addr: string; hostIfname: string }[];
  /** Sampled packets on which the linear shape was checked against the maps with explain. */
  verdictChecks: number;
  rounds: Round[];
  loadavg: { before: string; after: string };
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summary(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return { median: s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

export const RATIOS = [
  ['guestwall', 'none'],
  ['guestwall', 'conntrack'],
  ['guestwall', 'conntrack-nat'],
  ['linear', 'none'],
  ['linear', 'conntrack'],
] as const;
const LETTER: Record<Shape, string> = { none: 'a', conntrack: 'b', 'conntrack-nat': "b'", guestwall: 'c', linear: 'd' };

export function figure(r: SizeResult, shape: Shape, m: Measure): Summary | undefined {
  const xs = r.rounds.map((x) => x.values[shape][m]).filter((v): v is number => v !== undefined);
  return xs.length ? summary(xs) : undefined;
}

export function ratio(r: SizeResult, top: Shape, bottom: Shape, m: Measure): Summary | undefined {
  const xs = r.rounds.flatMap((x) => {
    const a = x.values[top][m];
    const b = x.values[bottom][m];
    return a !== undefined && b !== undefined && b > 0 ? [a / b] : [];
  });
  return xs.length ? summary(xs) : undefined;
}

export function cpuFigure(r: SizeResult, shape: Shape, m: Measure): Summary | undefined {
  const xs = r.rounds.map((x) => x.cpuNs?.[shape][m]).filter((v): v is number => v !== undefined);
  return xs.length ? summary(xs) : undefined;
}

/** CPU per packet of `top` over `bottom`, per round: >1 means `top` costs more. */
export function cpuRatio(r: SizeResult, top: Shape, bottom: Shape, m: Measure): Summary | undefined {
  const xs = r.rounds.flatMap((x) => {
    const a = x.cpuNs?.[top][m];
    const b = x.cpuNs?.[bottom][m];
    return a !== undefined && b !== undefined && b > 0 ? [a / b] : [];
  });
  return xs.length ? summary(xs) : undefined;
}

export interface Target {
  what: string;
  guests: number;
  measured?: Summary;
  met?: boolean;
  /** Every round on the same side of the tolerance: otherwise the noise decides, not the ruleset. */
  conclusive?: boolean;
}

/** The issue's dataplane targets, at the largest size measured (10,000 guests by default). */
export function targets(results: SizeResult[]): Target[] {
  const last = results[results.length - 1];
  if (last === undefined) return [];
  const rows: [string, Measure, number, Shape][] = [
    ['new-flow rate within 5% of the conntrack-only floor (b) (routed guest)', 'newflow-routed', 0.05, 'conntrack'],
    ['new-flow rate within 5% of the conntrack-only floor (b) (bridged guest)', 'newflow-bridged', 0.05, 'conntrack'],
    ['bulk TCP throughput within 2% of the conntrack-only floor (b)', 'bulk-routed', 0.02, 'conntrack'],
    ["(not in the issue) new-flow rate within 5% of the conntrack + nat floor (b') (routed guest)", 'newflow-routed', 0.05, 'conntrack-nat'],
    ["(not in the issue) new-flow rate within 5% of the conntrack + nat floor (b') (bridged guest)", 'newflow-bridged', 0.05, 'conntrack-nat'],
  ];
  const byRate = rows.map(([what, m, tol, floor]): Target => {
    const measured = ratio(last, 'guestwall', floor, m);
    return { what, guests: last.guests, ...(measured ? { measured, met: measured.median >= 1 - tol, conclusive: measured.min >= 1 - tol || measured.max < 1 - tol } : {}) };
  });
  // The same 5% on the sender's CPU time per packet (floor/c: 1 means guestwall costs nothing more).
  const cpuRows: [string, Measure, Shape][] = [
    ['new-flow CPU per packet within 5% of the conntrack-only floor (b) (routed guest; floor/c)', 'newflow-routed', 'conntrack'],
    ['new-flow CPU per packet within 5% of the conntrack-only floor (b) (bridged guest; floor/c)', 'newflow-bridged', 'conntrack'],
    ["(not in the issue) new-flow CPU per packet within 5% of the conntrack + nat floor (b') (routed guest; floor/c)", 'newflow-routed', 'conntrack-nat'],
  ];
  const byCpu = cpuRows.flatMap(([what, m, floor]): Target[] => {
    const inv = cpuRatio(last, floor, 'guestwall', m);
    if (!inv) return [];
    return [{ what, guests: last.guests, measured: inv, met: inv.median >= 0.95, conclusive: inv.min >= 0.95 || inv.max < 0.95 }];
  });
  return [...byRate, ...byCpu];
}

const fmt = (x: number, scale: number) => {
  const v = x * scale;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
};
const cell = (s: Summary | undefined, scale: number) => (s ? `${fmt(s.median, scale)} (${fmt(s.min, scale)}-${fmt(s.max, scale)})` : 'n/a');
const ratioCell = (s: Summary | undefined) => (s ? `${s.median.toFixed(3)} (${s.min.toFixed(2)}-${s.max.toFixed(2)})` : 'n/a');

const walkCell = (w: Walk | undefined) => (w ? `${w.prerouting} + ${w.forward} + ${w.postrouting} = **${w.total}**` : 'n/a');

/** One line per receiver: the rules its new-flow packet walks in each shape. */
export function walkLines(walks: SizeResult['walks']): string[] {
  return (['routed', 'bridged'] as const).map((mode) => `${mode}: ${SHAPES.map((s) => `${LETTER[s]} ${walkCell(walks[s][mode]).replaceAll('**', '')}`).join(', ')}`);
}

export function markdown(results: SizeResult[], meta: { runs: number; windows: string; machine: string; measures: readonly Measure[] }): string {
  const out: string[] = [];
  out.push(`## dataplane (median of ${meta.runs} rounds, min-max; ${meta.windows})`, '');
  out.push(meta.machine, '');
  for (const m of meta.measures) {
    const l = MEASURE_LABEL[m];
    out.push(`### ${l.title} (${l.unit})`, '');
    out.push(`| guests | ${SHAPES.map((s) => SHAPE_LABEL[s]).join(' | ')} | ${RATIOS.map(([a, b]) => `${LETTER[a]}/${LETTER[b]}`).join(' | ')} |`);
    out.push(`| ---: | ${SHAPES.map(() => '---:').join(' | ')} | ${RATIOS.map(() => '---:').join(' | ')} |`);
    for (const r of results) {
      out.push(`| ${r.guests} | ${SHAPES.map((s) => cell(figure(r, s, m), l.scale)).join(' | ')} | ${RATIOS.map(([a, b]) => ratioCell(ratio(r, a, b, m))).join(' | ')} |`);
    }
    out.push('');
  }
  for (const m of meta.measures.filter((x) => x.startsWith('newflow'))) {
    if (!results.some((r) => cpuFigure(r, 'guestwall', m))) continue;
    out.push(`### Sender CPU time per packet, ${MEASURE_LABEL[m].title.replace('New-flow rate, ', '').replace(/^UDP/, 'new UDP flows')} (ns; less hostage to load than the rate)`, '');
    out.push(`| guests | ${SHAPES.map((s) => SHAPE_LABEL[s]).join(' | ')} | c/b | c/b' | c-b' (ns) |`);
    out.push(`| ---: | ${SHAPES.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`);
    for (const r of results) {
      const c = cpuFigure(r, 'guestwall', m);
      const bp = cpuFigure(r, 'conntrack-nat', m);
      const diff = c && bp ? (c.median - bp.median).toFixed(0) : 'n/a';
      out.push(`| ${r.guests} | ${SHAPES.map((s) => cell(cpuFigure(r, s, m), 1)).join(' | ')} | ${ratioCell(cpuRatio(r, 'guestwall', 'conntrack', m))} | ${ratioCell(cpuRatio(r, 'guestwall', 'conntrack-nat', m))} | ${diff} |`);
    }
    out.push('');
  }
  out.push('### Rules evaluated per new flow (explain\'s count: prerouting + forward + postrouting = total; not a timing)', '');
  out.push(`| guests | receiver | ${SHAPES.map((s) => SHAPE_LABEL[s]).join(' | ')} |`);
  out.push(`| ---: | --- | ${SHAPES.map(() => '---:').join(' | ')} |`);
  for (const r of results) {
    for (const mode of ['routed', 'bridged'] as const) {
      if (!r.walks) continue;
      out.push(`| ${r.guests} | ${mode} | ${SHAPES.map((s) => walkCell(r.walks[s][mode])).join(' | ')} |`);
    }
  }
  out.push('');
  out.push('### The rulesets', '');
  out.push("| guests | guestwall rules | guestwall set/map elements | linear rules | linear set elements | linear: dispatch rules a routed-guest packet walks | explain checks (linear = maps) | conntrack entries after a new-flow run (a / b / b' / c / d, median) |");
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    const ct = r.rounds.length ? SHAPES.map((s) => summary(r.rounds.map((x) => x.conntrackEntries[s])).median.toFixed(0)).join(' / ') : 'n/a';
    out.push(`| ${r.guests} | ${r.rules.guestwall} | ${r.elements.guestwall} | ${r.rules.linear} | ${r.elements.linear} | ${r.linearDispatchRules} | ${r.verdictChecks} agree | ${ct} |`);
  }
  out.push('');
  const t = targets(results);
  if (t.length) {
    out.push('### Targets', '');
    for (const x of t) {
      const verdict = x.met ? 'met by the median' : 'NOT met by the median';
      const trust = x.conclusive ? 'every round agrees' : 'rounds on both sides of the tolerance: inconclusive on this machine';
      out.push(`- ${x.what}, at ${x.guests} guests: ${x.measured ? `${verdict} (c/floor median ${x.measured.median.toFixed(3)}, min ${x.measured.min.toFixed(3)}, max ${x.measured.max.toFixed(3)}; ${trust})` : 'not measured'}`);
    }
    out.push('');
  }
  return out.join('\n');
}

// ---- The chart ------------------------------------------------------------------------------

const COLOUR: Record<Shape, string> = { none: '#7f7f7f', conntrack: '#1f77b4', 'conntrack-nat': '#9467bd', guestwall: '#2ca02c', linear: '#d62728' };
const DASH: Record<Shape, string> = { none: '6 4', conntrack: '2 3', 'conntrack-nat': '8 3 2 3', guestwall: '', linear: '' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** New-flow rate against guests (log scale), one line per shape, min-max as error bars. */
export function chartSvg(results: SizeResult[], m: Measure, subtitle: string): string {
  const W = 760;
  const H = 460;
  const pad = { l: 70, r: 230, t: 56, b: 56 };
  const pw = W - pad.l - pad.r;
  const ph = H - pad.t - pad.b;
  const l = MEASURE_LABEL[m];
  const pts = results.flatMap((r) => SHAPES.map((s) => figure(r, s, m)).filter((x): x is Summary => x !== undefined));
  const yMax = niceCeil(Math.max(1, ...pts.map((p) => p.max * l.scale)));
  const guests = results.map((r) => r.guests);
  const gMin = Math.min(...guests);
  const gMax = Math.max(...guests);
  const span = Math.log10(gMax) - Math.log10(gMin) || 1;
  const inset = 28;
  const x = (g: number) => pad.l + (results.length === 1 ? pw / 2 : inset + ((Math.log10(g) - Math.log10(gMin)) / span) * (pw - 2 * inset));
  const y = (v: number) => pad.t + ph - (v * l.scale / yMax) * ph;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  o.push(`<text x="${pad.l}" y="22" font-size="15" font-weight="bold">${esc(l.title)}</text>`);
  o.push(`<text x="${pad.l}" y="40" fill="#555">${esc(subtitle)}</text>`);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax / 5) * k;
    const yy = pad.t + ph - (ph / 5) * k;
    o.push(`<line x1="${pad.l}" y1="${yy}" x2="${pad.l + pw}" y2="${yy}" stroke="#e5e5e5"/>`);
    o.push(`<text x="${pad.l - 8}" y="${yy + 4}" text-anchor="end">${+v.toFixed(2)}</text>`);
  }
  for (const g of guests) {
    o.push(`<line x1="${x(g)}" y1="${pad.t}" x2="${x(g)}" y2="${pad.t + ph}" stroke="#f0f0f0"/>`);
    o.push(`<text x="${x(g)}" y="${pad.t + ph + 18}" text-anchor="middle">${g.toLocaleString('en-US')}</text>`);
  }
  o.push(`<line x1="${pad.l}" y1="${pad.t + ph}" x2="${pad.l + pw}" y2="${pad.t + ph}" stroke="#333"/>`);
  o.push(`<line x1="${pad.l}" y1="${pad.t}" x2="${pad.l}" y2="${pad.t + ph}" stroke="#333"/>`);
  o.push(`<text x="${pad.l + pw / 2}" y="${H - 14}" text-anchor="middle">guests in the policy (log scale)</text>`);
  o.push(`<text transform="translate(18 ${pad.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(l.unit)} (median, bars: min-max)</text>`);
  SHAPES.forEach((s, k) => {
    const series = results.map((r) => ({ g: r.guests, f: figure(r, s, m) })).filter((p): p is { g: number; f: Summary } => p.f !== undefined);
    // Shapes that coincide would hide each other: nudge each a few pixels sideways.
    const dx = (k - (SHAPES.length - 1) / 2) * 4;
    if (series.length > 1) {
      o.push(`<polyline fill="none" stroke="${COLOUR[s]}" stroke-width="2"${DASH[s] ? ` stroke-dasharray="${DASH[s]}"` : ''} points="${series.map((p) => `${(x(p.g) + dx).toFixed(1)},${y(p.f.median).toFixed(1)}`).join(' ')}"/>`);
    }
    for (const p of series) {
      const cx = x(p.g) + dx;
      o.push(`<line x1="${cx.toFixed(1)}" y1="${y(p.f.min).toFixed(1)}" x2="${cx.toFixed(1)}" y2="${y(p.f.max).toFixed(1)}" stroke="${COLOUR[s]}" stroke-width="1.5"/>`);
      o.push(`<circle cx="${cx.toFixed(1)}" cy="${y(p.f.median).toFixed(1)}" r="3.5" fill="${COLOUR[s]}"/>`);
    }
    const ly = pad.t + 10 + k * 22;
    const lx = pad.l + pw + 16;
    o.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="${COLOUR[s]}" stroke-width="2"${DASH[s] ? ` stroke-dasharray="${DASH[s]}"` : ''}/>`);
    o.push(`<circle cx="${lx + 14}" cy="${ly}" r="3.5" fill="${COLOUR[s]}"/>`);
    o.push(`<text x="${lx + 36}" y="${ly + 4}">${esc(SHAPE_LABEL[s])}</text>`);
  });
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const k of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}
