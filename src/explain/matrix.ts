// The reachability matrix: for each source (every zone, the host, and every guest a rule names
// as a source) and each destination (every zone, the host, and every guest a rule or forward
// names), what happens to a new connection: the pair's default, then every service the policy
// names that fares otherwise, once per cell. A service is judged whole: every port range is cut
// at every port edge the compiled ruleset compares (and the policy names), each piece is probed
// at its first and last port, for every protocol of the service, and the service is listed as
// accepted only when all of it is; a service that passes in part says which parts. Every probe
// is explainFlow over the compiled ruleset, never read off the YAML.
import type { HostModel, TrafficPart } from '../model/host.js';
import type { Ruleset } from '../nft/ruleset.js';
import type { Expr, SetElement } from '../nft/types.js';
import { type Proto, explainFlow } from './flow.js';

type Verdict = 'accept' | 'drop' | 'reject';

/** One piece of a service probed: `tcp/5060-5061`, `icmp/echo-request`, and what it gets. */
export interface ExceptionPart {
  what: string;
  verdict: Verdict;
}

export interface Exception {
  label: string;
  /** What every part of the service gets; 'partial' when its parts fare differently (see parts). */
  verdict: Verdict | 'partial';
  /** For a partial service: each piece and its verdict, adjacent pieces of one verdict joined. */
  parts?: ExceptionPart[];
  /** Reached through a port forward (the public address), not directly. */
  forwarded?: boolean;
  /** In the host column: the guest the forward sends it on to. */
  forwardedTo?: string;
}

export interface MatrixCell {
  from: string;
  to: string;
  /** What a connection to a port the policy never names gets; undefined when it cannot be tried (see why). */
  verdict?: Verdict;
  /** Why the cell cannot be tried, when verdict is undefined. */
  why?: string;
  exceptions: Exception[];
}

export interface Matrix {
  family: 4 | 6;
  rows: string[];
  cols: string[];
  cells: MatrixCell[];
  /** Said once under the matrix, e.g. that the policy has no address of this family at all. */
  notes: string[];
}

/** One service to judge: its label, its traffic, and where it is aimed. */
interface Service {
  label: string;
  traffic: TrafficPart[];
  /** The guest whose column it belongs to (a forward's target); undefined = every column. */
  guest?: string;
  /** A forward's public side: probed at `${publicV4}:${port}`, and translated to toPort. */
  publicV4?: string;
  /** A forward's direct side (its target's own address), with the port it translates to. */
  toPort?: number;
}

/** One probe: a protocol and a port (or ICMP type), standing for the piece of a range up to `last`. */
interface Point {
  proto: Proto;
  port?: number;
  last?: number;
  icmpType?: string;
}

function servicesOf(model: HostModel): Service[] {
  const out: Service[] = [];
  for (const r of model.rules) for (const l of r.byLabel) out.push({ label: l.label, traffic: l.traffic });
  for (const f of model.forwards) {
    if (f.guest === undefined) continue;
    for (const l of f.byLabel) {
      const ports = l.traffic.filter((t) => t.proto === 'tcp' || t.proto === 'udp');
      if (ports.length === 0) continue;
      const pub = f.publicV4[0];
      if (pub !== undefined) out.push({ label: l.label, traffic: ports, guest: f.guest, publicV4: pub, ...(f.toPort !== undefined ? { toPort: f.toPort } : {}) });
      out.push({ label: l.label, traffic: ports, guest: f.guest, ...(f.toPort !== undefined ? { toPort: f.toPort } : {}) });
    }
  }
  return out;
}

/**
 * Every port where a verdict can change: the first port of every range and the one after its
 * last, for every destination port the compiled ruleset compares (matches, anonymous and named
 * sets and maps keyed on a service) and every range the policy names.
 */
export function portEdges(model: HostModel, ruleset: Ruleset): number[] {
  const edges = new Set<number>();
  const add = (lo: number, hi: number) => {
    edges.add(lo);
    if (hi < 65535) edges.add(hi + 1);
  };
  const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined);
  const element = (el: SetElement | Expr | undefined) => {
    if (el === undefined || el === null) return;
    if (typeof el === 'object' && !Array.isArray(el) && 'range' in el) {
      const [lo, hi] = el.range.map(num);
      if (lo !== undefined && hi !== undefined) add(lo, hi);
      return;
    }
    if (typeof el === 'object' && !Array.isArray(el) && 'set' in el) {
      for (const x of el.set) element(x);
      return;
    }
    const n = num(el);
    if (n !== undefined) add(n, n);
  };
  const isDport = (e: unknown) => typeof e === 'object' && e !== null && 'payload' in e && (e as { payload: { field?: string } }).payload.field === 'dport';
  for (const r of model.rules) for (const t of r.traffic) if ('ports' in t) for (const [lo, hi] of t.ports ?? []) add(lo, hi);
  for (const f of model.forwards) for (const [lo, hi] of [...f.tcp, ...f.udp]) add(lo, hi);
  for (const table of ruleset.tables) {
    for (const set of table.sets) {
      const types = Array.isArray(set.type) ? set.type : [set.type];
      const at = types.indexOf('inet_service');
      if (at < 0) continue;
      for (const e of set.elements) {
        const key = (set.kind === 'map' ? (e as [SetElement, unknown])[0] : e) as SetElement;
        element(types.length > 1 && typeof key === 'object' && key !== null && 'concat' in key ? key.concat[at] : key);
      }
    }
    for (const chain of table.chains) {
      for (const rule of chain.rules) {
        for (const s of rule.stmts) {
          if (!('match' in s)) continue;
          const { left, right } = s.match;
          if (isDport(left)) element(right as SetElement);
          else if (typeof left === 'object' && left !== null && 'concat' in left) {
            const at = (left as { concat: Expr[] }).concat.findIndex(isDport);
            if (at < 0) continue;
            const els = typeof right === 'object' && right !== null && 'set' in right ? right.set : [right as SetElement];
            for (const el of els) if (typeof el === 'object' && el !== null && 'concat' in el) element(el.concat[at]);
          }
        }
      }
    }
  }
  return [...edges].sort((a, b) => a - b);
}

/** The pieces of a service to probe in `family`: each port range cut at every edge, each ICMP type. */
function pointsOf(traffic: TrafficPart[], family: 4 | 6, edges: number[]): Point[] {
  const out: Point[] = [];
  for (const t of traffic) {
    if (t.proto === 'tcp' || t.proto === 'udp') {
      for (const [lo, hi] of t.ports ?? [[1, 65535] as const]) {
        const cuts = [lo, ...edges.filter((e) => e > lo && e <= hi)];
        cuts.forEach((start, i) => out.push({ proto: t.proto, port: start, last: (cuts[i + 1] ?? hi + 1) - 1 }));
      }
    } else if ((t.proto === 'icmp' && family === 4) || (t.proto === 'icmpv6' && family === 6)) {
      for (const type of t.types ?? ['echo-request']) out.push({ proto: t.proto, icmpType: type });
    }
  }
  return out;
}

/** A TCP port no rule or forward names and the ruleset never compares: what a cell's default verdict is measured with. */
function unnamedPort(model: HostModel, edges: number[]): number {
  const named = [...model.rules.flatMap((r) => r.traffic.flatMap((t) => ('ports' in t ? (t.ports ?? []) : []))), ...model.forwards.flatMap((f) => f.tcp)];
  for (let p = 65001; p > 1024; p--) if (!edges.includes(p) && !named.some(([lo, hi]) => lo <= p && p <= hi)) return p;
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
  const services = servicesOf(model);
  const edges = portEdges(model, ruleset);
  const named = (side: 'from' | 'to') => (g: HostModel['guests'][number]) =>
    model.rules.some((r) => r[side].some((pl) => g.interfaces.some((i) => i.addresses.some((a) => (family === 4 ? pl.v4 : pl.v6)?.includes(a.addr)))));
  const hasFamily = (g: HostModel['guests'][number]) => g.interfaces.some((i) => i.addresses.some((a) => a.family === family));
  // Guests get a row or a column of their own where a rule or forward names them.
  const targetGuests = model.guests.filter((g) => hasFamily(g) && (services.some((s) => s.guest === g.name) || named('to')(g))).map((g) => g.name);
  const sourceGuests = model.guests.filter((g) => hasFamily(g) && named('from')(g)).map((g) => g.name);
  const rows = [...zones, 'host', ...sourceGuests];
  const cols = [...zones, 'host', ...targetGuests];
  const port = unnamedPort(model, edges);
  const ask = (from: string, to: string, proto: Proto, p?: number, icmpType?: string) =>
    explainFlow(model, ruleset, { from, to, proto, family, direct: true, ...(p !== undefined ? { port: p } : {}), ...(icmpType !== undefined ? { icmpType } : {}) });
  // Services share ports (smtp and tcp/25, a forward's two sides): each packet is explained once.
  const known = new Map<string, Verdict | undefined>();
  const verdictOf = (from: string, to: string, pt: Point, at?: number): Verdict | undefined => {
    const key = `${from}|${to}|${pt.proto}|${at ?? pt.port ?? ''}|${pt.icmpType ?? ''}`;
    if (known.has(key)) return known.get(key);
    const e = ask(from, to, pt.proto, at ?? pt.port, pt.icmpType);
    const v = e.ok ? e.value.evaluation.verdict : undefined;
    known.set(key, v);
    return v;
  };
  const pointsByService = new Map<Service, Point[]>(services.map((s) => [s, pointsOf(s.traffic, family, edges)]));

  const cells: MatrixCell[] = [];
  const total = rows.length * cols.length - 1; // the host to itself has no cell
  for (const from of rows) {
    for (const to of cols) {
      if (from === 'host' && to === 'host') continue;
      const base = ask(from, to, 'tcp', port);
      const verdict = base.ok ? base.value.evaluation.verdict : undefined;
      const exceptions: Exception[] = [];
      const seen = new Set<string>();
      for (const s of services) {
        // The host's own connections are not DNATed in prerouting: its forwards are not its own.
        if (from === 'host' && s.publicV4 !== undefined) continue;
        // Forwards publish IPv4 addresses only; in IPv6 their target is opened directly.
        if (family === 6 && s.publicV4 !== undefined) continue;
        if (s.guest !== undefined && s.publicV4 === undefined && s.guest !== to) continue;
        if (s.publicV4 !== undefined && to !== s.guest && to !== 'host') continue;
        const forwardedTo = s.publicV4 !== undefined && to === 'host' ? s.guest : undefined;
        const key = `${s.label}|${s.publicV4 ? 'fwd' : ''}|${forwardedTo ?? ''}`;
        if (seen.has(key)) continue;
        const parts: (ExceptionPart & { proto: Proto; lo?: number; hi?: number })[] = [];
        let unknown = false;
        for (const pt of pointsByService.get(s)!) {
          const target = (p: number) => (s.publicV4 !== undefined ? `${s.publicV4}:${p}` : to);
          const at = (p: number) => (s.publicV4 === undefined && s.toPort !== undefined ? s.toPort : p);
          const probe = (p: number | undefined) => (p === undefined ? verdictOf(from, to, pt) : verdictOf(from, target(p), { ...pt, port: at(p) }, at(p)));
          const first = probe(pt.port);
          const last = pt.last !== undefined && pt.last !== pt.port ? probe(pt.last) : first;
          if (first === undefined || last === undefined) {
            unknown = true;
            break;
          }
          if (first !== last) {
            // The ruleset compares a port the edges missed: say so rather than guess.
            parts.push({ proto: pt.proto, what: `${pt.proto}/${pt.port}`, verdict: first, lo: pt.port!, hi: pt.port! });
            parts.push({ proto: pt.proto, what: `${pt.proto}/${pt.last}`, verdict: last, lo: pt.last!, hi: pt.last! });
          } else parts.push({ proto: pt.proto, what: pt.icmpType ? `${pt.proto}/${pt.icmpType}` : '', verdict: first, ...(pt.port !== undefined ? { lo: pt.port, hi: pt.last! } : {}) });
        }
        if (unknown || parts.length === 0) continue;
        seen.add(key);
        const verdicts = new Set(parts.map((p) => p.verdict));
        const fwd = { ...(s.publicV4 ? { forwarded: true } : {}), ...(forwardedTo ? { forwardedTo } : {}) };
        if (verdicts.size > 1) exceptions.push({ label: s.label, verdict: 'partial', parts: joinParts(parts), ...fwd });
        else if ([...verdicts][0] !== verdict) exceptions.push({ label: s.label, verdict: [...verdicts][0]!, ...fwd });
      }
      cells.push({ from, to, ...(verdict ? { verdict } : { why: base.ok ? 'no verdict' : base.error }), exceptions });
      yield { done: cells.length, total };
    }
  }
  const notes: string[] = [];
  const anyAddress = [...model.hostInterfaces, ...model.bridges, ...model.guests.flatMap((g) => g.interfaces)].some((i) => i.addresses.some((a) => a.family === family))
    || model.zones.some((z) => z.networks.some((n) => n.family === family));
  if (!anyAddress) notes.push(`the policy gives no IPv${family} address or network to the host, its zones or its guests: only an internet-facing zone, which stands for any address, can be tried; the other cells show ?`);
  return { family, rows, cols, cells, notes };
}

/** Adjacent pieces of one protocol and verdict joined: `tcp/25`, `udp/10000-15000`. */
function joinParts(parts: (ExceptionPart & { proto: Proto; lo?: number; hi?: number })[]): ExceptionPart[] {
  const out: (ExceptionPart & { proto: Proto; lo?: number; hi?: number })[] = [];
  for (const p of parts) {
    const last = out[out.length - 1];
    if (last && p.lo !== undefined && last.hi !== undefined && last.proto === p.proto && last.verdict === p.verdict && last.hi + 1 === p.lo) last.hi = p.hi!;
    else out.push({ ...p });
  }
  return out.map((p) => ({ what: p.lo !== undefined ? `${p.proto}/${p.lo === p.hi ? p.lo : `${p.lo}-${p.hi}`}` : p.what, verdict: p.verdict }));
}

const SIGN: Record<Verdict, string> = { accept: '+', drop: '-', reject: '!' };

/** One exception as the matrix prints it: `+smtp`, `~mail(+tcp/25 -tcp/587)`, `+sip(fwd)`. */
export function exceptionText(e: Exception): string {
  const fwd = e.forwardedTo ? `(fwd→${e.forwardedTo})` : e.forwarded ? '(fwd)' : '';
  if (e.verdict !== 'partial') return `${SIGN[e.verdict]}${e.label}${fwd}`;
  return `~${e.label}${fwd}(${(e.parts ?? []).map((p) => `${SIGN[p.verdict]}${p.what}`).join(' ')})`;
}

/** What every symbol of formatMatrix means, one line each. */
export function matrixLegend(family: 4 | 6): string[] {
  return [
    `IPv${family}. Rows send, columns receive. A cell is what a new connection to a port no rule names gets (accept, drop, reject),`,
    'then each service the policy names that fares otherwise, once; a service counts only as a whole (every port, range edge and protocol):',
    '  +svc   all of svc is accepted',
    '  -svc   all of svc is dropped',
    '  !svc   all of svc is rejected (an ICMP error goes back)',
    '  ~svc(+tcp/25 -tcp/587)   svc passes only in part: each piece with its own sign',
    '  (fwd)   through a port forward, addressed to the host\'s public address; (fwd→guest) in the host column names where it goes',
    `  ?   cannot be tried: no IPv${family} address to send from or to (--json says why)`,
    '  n/a   the host to itself (lo, always accepted)',
  ];
}

/** The matrix as a terminal table: rows are sources, columns destinations, legend underneath. */
export function formatMatrix(m: Matrix): string {
  const text = (c: MatrixCell | undefined) => (c ? [c.verdict ?? '?', ...c.exceptions.map(exceptionText)].join(' ') : 'n/a');
  const header = ['from \\ to', ...m.cols];
  const body = m.rows.map((r) => [r, ...m.cols.map((c) => text(m.cells.find((x) => x.from === r && x.to === c)))]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('-|-'),
    ...body.map(line),
    '',
    ...matrixLegend(m.family),
    ...m.notes.map((n) => `Note: ${n}`),
  ].join('\n');
}
