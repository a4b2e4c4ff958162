// Names and what they refer to. The same resolution serves checks.ts (to report a bad name
// with "did you mean") and model/ (to build the host), so a name means one thing everywhere.
import { type HostAddress, type Network, parseHostAddress, parseNetwork } from './addr.js';
import { suggestion } from './diagnostics.js';
import type { Policy } from './schema.js';
import { BUILTIN_SERVICES } from './services.js';

/** Endpoint words with a fixed meaning; no zone or guest may take them. */
export const HOST = 'host';
export const ALL = 'all';
export const RESERVED_NAMES = [HOST, ALL, 'any'] as const;

export type Endpoint =
  | { kind: 'zone'; zone: string }
  | { kind: 'guest'; guest: string }
  | { kind: 'host' }
  | { kind: 'all' }
  | { kind: 'address'; network: Network };

export interface NameIndex {
  zones: Set<string>;
  guests: Set<string>;
  bridges: Set<string>;
  services: Set<string>;
}

export function nameIndex(p: Policy): NameIndex {
  return {
    zones: new Set(Object.keys(p.zones)),
    guests: new Set(Object.keys(p.guests ?? {})),
    bridges: new Set(Object.keys(p.bridges ?? {})),
    services: new Set([...Object.keys(BUILTIN_SERVICES), ...Object.keys(p.services ?? {})]),
  };
}

export type Resolved<T> = { ok: true; value: T } | { ok: false; message: string; kind: 'unknown-endpoint' | 'unknown-zone' | 'unknown-guest' | 'invalid-address' };

const EVERY_KIND: readonly Endpoint['kind'][] = ['zone', 'guest', 'host', 'all', 'address'];

/**
 * A zone, a guest, "host", "all", or an address/CIDR. `allowed` (what the place takes) only
 * shapes the message for an unknown name: "unknown zone 'dmx'" where only zones fit.
 */
export function resolveEndpoint(text: string, idx: NameIndex, allowed: readonly Endpoint['kind'][] = EVERY_KIND): Resolved<Endpoint> {
  if (text === HOST) return { ok: true, value: { kind: 'host' } };
  if (text === ALL) return { ok: true, value: { kind: 'all' } };
  if (idx.zones.has(text)) return { ok: true, value: { kind: 'zone', zone: text } };
  if (idx.guests.has(text)) return { ok: true, value: { kind: 'guest', guest: text } };
  if (/^[0-9a-fA-F:.]+(\/\d+)?$/.test(text) && /[.:]/.test(text)) {
    const net = parseNetwork(text);
    if (net.ok) return { ok: true, value: { kind: 'address', network: net.value } };
    return { ok: false, kind: 'invalid-address', message: net.reason };
  }
  if (text === 'any') return { ok: false, kind: 'unknown-endpoint', message: `unknown endpoint 'any'; write 'all'` };
  const zones = allowed.includes('zone');
  const guests = allowed.includes('guest');
  const candidates = [...(zones ? idx.zones : []), ...(guests ? idx.guests : []), ...(allowed.includes('host') ? [HOST] : []), ...(allowed.includes('all') ? [ALL] : [])];
  const [kind, noun] = zones === guests ? (['unknown-endpoint', 'zone or guest'] as const) : zones ? (['unknown-zone', 'zone'] as const) : (['unknown-guest', 'guest'] as const);
  return { ok: false, kind, message: `unknown ${noun} '${text}'${suggestion(text, candidates)}` };
}

export function endpointList(v: string | string[]): string[] {
  return Array.isArray(v) ? v : [v];
}

export function resolveZone(text: string, idx: NameIndex): Resolved<string> {
  if (idx.zones.has(text)) return { ok: true, value: text };
  return { ok: false, kind: 'unknown-zone', message: `unknown zone '${text}'${suggestion(text, idx.zones)}` };
}

/** Host address (with optional prefix) or undefined when it does not parse (reported by checks). */
export function hostAddresses(list: readonly string[] | undefined): HostAddress[] {
  const out: HostAddress[] = [];
  for (const a of list ?? []) {
    const r = parseHostAddress(a);
    if (r.ok) out.push(r.value);
  }
  return out;
}
