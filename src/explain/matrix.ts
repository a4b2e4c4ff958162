// The reachability matrix: for each source zone (the host, and every guest a rule names as a
// source) and each destination zone, the host, and every guest a rule or forward names, what happens to a new connection: the pair's
// default, and the services the policy names that fare otherwise. Every cell is computed by
// explainFlow over the compiled ruleset, never read off the YAML.
import type { HostModel } from '../model/host.js';
import type { Ruleset } from '../nft/ruleset.js';
import type { PortRange } from '../policy/ports.js';
import { type Proto, explainFlow } from './flow.js';

export interface Exception {
  label: string;
  verdict: 'accept' | 'drop' | 'reject';
  /** Reached through a port forward (the public address), not directly. */
  forwarded?: boolean;
}

export interface MatrixCell {
  from: string;
  to: string;
  /** What a connection to a port the policy never names gets; undefined when it cannot be tried. */
  verdict?: 'accept' | 'drop' | 'reject';
  exceptions: Exception[];
}

export interface Matrix {
  family: 4 | 6;
  rows: string[];
  cols: string[];
  cells: MatrixCell[];
}

interface Probe {
  label: string;
  proto: Proto;
  port?: number;
  /** "203.0.113.10:5060" for a forward's public side. */
  via?: string;
  guest?: string;
}

function probesOf(model: HostModel, family: 4 | 6): Probe[] {
  const out: Probe[] = [];
  const first = (ranges?: PortRange[]) => ranges?.[0]?.[0];
  for (const r of model.rules) {
    const label = r.labels.join(',') || 'all';
    for (const t of r.traffic) {
      if (t.proto === 'tcp' || t.proto === 'udp') {
        const port = first(t.ports);
        if (port !== undefined) out.push({ label, proto: t.proto, port });
      } else if ((t.proto === 'icmp' && family === 4) || (t.proto === 'icmpv6' && family === 6)) out.push({ label, proto: t.proto });
    }
  }
  for (const f of model.forwards) {
    for (const [proto, ranges] of [['tcp', f.tcp], ['udp', f.udp]] as const) {
      const port = first(ranges);
      if (port === undefined || f.guest === undefined) continue;
      const label = f.labels.join(',');
      if (family === 4 && f.publicV4[0]) out.push({ label, proto, port, via: `${f.publicV4[0]}:${port}`, guest: f.guest });
      out.push({ label, proto, port: f.toPort ?? port, guest: f.guest });
    }
  }
  return out;
}

/** A TCP port no rule or forward names: what a cell's default verdict is measured with. */
function unnamedPort(model: HostModel): number {
  const named = [...model.rules.flatMap((r) => r.traffic.flatMap((t) => ('ports' in t ? (t.ports ?? []) : []))), ...model.forwards.flatMap((f) => f.tcp)];
  for (let p = 65001; p > 1024; p--) if (!named.some(([lo, hi]) => lo <= p && p <= hi)) return p;
  return 65001;
}

export function reachabilityMatrix(model: HostModel, ruleset: Ruleset, family: 4 | 6 = 4): Matrix {
  const steps = matrixSteps(model, ruleset, family);
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/** How far a matrix being worked out in steps has come. */
export interface MatrixProgress {
  done: number;
  total: number;
}

/**
 * The same matrix worked out one cell per step, so that a caller (the preview) can spread the
 * work over several turns of the event loop and stay responsive; returns the matrix at the end.
 */
export function* matrixSteps(model: HostModel, ruleset: Ruleset, family: 4 | 6 = 4): Generator<MatrixProgress, Matrix, void> {
  const zones = model.zones.filter((z) => z.interfaces.length > 0).map((z) => z.name);
  const probes = probesOf(model, family);
  const named = (side: 'from' | 'to') => (g: HostModel['guests'][number]) =>
    model.rules.some((r) => r[side].some((pl) => g.interfaces.some((i) => i.addresses.some((a) => (family === 4 ? pl.v4 : pl.v6)?.includes(a.addr)))));
  const hasFamily = (g: HostModel['guests'][number]) => g.interfaces.some((i) => i.addresses.some((a) => a.family === family));
  // Guests get a row or a column of their own where a rule or forward names them.
  const targetGuests = model.guests.filter((g) => hasFamily(g) && (probes.some((p) => p.guest === g.name) || named('to')(g))).map((g) => g.name);
  const sourceGuests = model.guests.filter((g) => hasFamily(g) && named('from')(g)).map((g) => g.name);
  const rows = [...zones, 'host', ...sourceGuests];
  const cols = [...zones, 'host', ...targetGuests];
  const port = unnamedPort(model);
  const verdictOf = (from: string, to: string, proto: Proto, p?: number) => {
    const e = explainFlow(model, ruleset, { from, to, proto, family, ...(p !== undefined ? { port: p } : {}) });
    return e.ok ? e.value.evaluation.verdict : undefined;
  };

  const cells: MatrixCell[] = [];
  const total = rows.length * cols.length - 1; // the host to itself has no cell
  for (const from of rows) {
    for (const to of cols) {
      if (from === 'host' && to === 'host') continue;
      const verdict = verdictOf(from, to, 'tcp', port);
      const exceptions: Exception[] = [];
      const seen = new Set<string>();
      for (const p of probes) {
        if (from === 'host' && p.via) continue; // the host's own connections are not DNATed in prerouting
        if (p.guest !== undefined && p.guest !== to && p.via === undefined) continue;
        if (p.via !== undefined && p.guest !== to) continue;
        const v = verdictOf(from, p.via ?? to, p.proto, p.port);
        const key = `${p.label}|${p.via ? 'fwd' : ''}`;
        if (v === undefined || v === verdict || seen.has(key)) continue;
        seen.add(key);
        exceptions.push({ label: p.label, verdict: v, ...(p.via ? { forwarded: true } : {}) });
      }
      cells.push({ from, to, ...(verdict ? { verdict } : {}), exceptions });
      yield { done: cells.length, total };
    }
  }
  return { family, rows, cols, cells };
}

/** The matrix as a terminal table: rows are sources, columns destinations. */
export function formatMatrix(m: Matrix): string {
  const text = (c: MatrixCell | undefined) => {
    if (!c) return '-';
    const ex = c.exceptions.map((e) => `${e.verdict === 'accept' ? '+' : e.verdict === 'drop' ? '-' : '!'}${e.label}${e.forwarded ? '(fwd)' : ''}`);
    return [c.verdict ?? '?', ...ex].join(' ');
  };
  const header = ['from \\ to', ...m.cols];
  const body = m.rows.map((r) => [r, ...m.cols.map((c) => text(m.cells.find((x) => x.from === r && x.to === c)))]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...body.map(line),
    '',
    `IPv${m.family}. A cell is what a new connection gets by default, then the services that fare otherwise:`,
    '+ accepted, - dropped, ! rejected; (fwd) through a port forward on the public address.',
  ].join('\n');
}
