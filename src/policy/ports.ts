// Ports and port ranges as the policy writes them ("5060", "10000-20000").
import type { PortSpec } from './schema.js';

export type PortRange = readonly [number, number];

export type PortResult = { ok: true; range: PortRange } | { ok: false; kind: 'port-out-of-range' | 'inverted-range'; message: string };

export function parsePort(spec: PortSpec): PortResult {
  const [loText, hiText] = typeof spec === 'number' ? [String(spec), undefined] : spec.split('-').map((s) => s.trim());
  const lo = Number(loText);
  const hi = hiText === undefined ? lo : Number(hiText);
  for (const p of [lo, hi]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) {
      const where = hiText === undefined ? '' : ` (in ${loText}-${hiText})`;
      return { ok: false, kind: 'port-out-of-range', message: `port ${p}${where} is out of range; ports are 1 to 65535` };
    }
  }
  if (hi < lo) return { ok: false, kind: 'inverted-range', message: `port range ${lo}-${hi} is inverted; write ${hi}-${lo}` };
  return { ok: true, range: [lo, hi] };
}

export function portList(spec: PortSpec | PortSpec[] | undefined): PortSpec[] {
  if (spec === undefined) return [];
  return Array.isArray(spec) ? spec : [spec];
}

/** Parsed ranges, silently skipping bad ones (checks.ts reports those). */
export function portRanges(spec: PortSpec | PortSpec[] | undefined): PortRange[] {
  return portList(spec).flatMap((s) => {
    const r = parsePort(s);
    return r.ok ? [r.range] : [];
  });
}

export function rangesOverlap(a: readonly PortRange[], b: readonly PortRange[]): boolean {
  return a.some(([alo, ahi]) => b.some(([blo, bhi]) => alo <= bhi && blo <= ahi));
}
