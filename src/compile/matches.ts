// Small builders for the statements every part of the compiler writes, so that a rule reads
// like its nft text: match(meta('iifname'), 'eth0'), accept().
import type { Place, TrafficPart } from '../model/host.js';
import type { PortRange } from '../policy/ports.js';
import type { Expr, MatchOp, MetaKey, SetElement, Stmt } from '../nft/types.js';

export const meta = (key: MetaKey): Expr => ({ meta: { key } });
export const payload = (protocol: string, field: string): Expr => ({ payload: { protocol, field } });
export const match = (left: Expr, right: Expr, op: MatchOp = '=='): Stmt => ({ match: { op, left, right } });
export const accept = (): Stmt => ({ accept: null });
export const drop = (): Stmt => ({ drop: null });
export const counter = (): Stmt => ({ counter: null });
export const goto = (target: string): Stmt => ({ goto: { target } });

/** One value as itself, several as an anonymous set. */
export function oneOrSet(values: readonly SetElement[]): Expr {
  return values.length === 1 ? (values[0] as Expr) : { set: [...values] };
}

/** "10.0.0.0/24" -> prefix, "10.0.0.5" -> the address. */
export function addrElement(text: string): SetElement {
  if (!text.includes('/')) return text; // most are plain addresses: no split
  const [addr, len] = text.split('/');
  return len === undefined ? addr! : { prefix: { addr: addr!, len: Number(len) } };
}

export function portElement([lo, hi]: PortRange): SetElement {
  return lo === hi ? lo : { range: [lo, hi] };
}

export const iifnames = (names: readonly string[]): Stmt => match(meta('iifname'), oneOrSet(names));
export const oifnames = (names: readonly string[]): Stmt => match(meta('oifname'), oneOrSet(names));

export function saddr(family: 4 | 6, addrs: readonly string[]): Stmt {
  return match(payload(family === 4 ? 'ip' : 'ip6', 'saddr'), oneOrSet(addrs.map(addrElement)));
}
export function daddr(family: 4 | 6, addrs: readonly string[]): Stmt {
  return match(payload(family === 4 ? 'ip' : 'ip6', 'daddr'), oneOrSet(addrs.map(addrElement)));
}


/** A rule's address matches for one family; undefined family = no address constraint at all. */
export interface AddressVariant {
  family?: 4 | 6;
  stmts: Stmt[];
}

/** The address matches of a rule from one place to another, split by family where needed. */
export function addressVariants(from: Place, to: Place): AddressVariant[] {
  const constrained = (p: Place) => p.v4 !== undefined || p.v6 !== undefined;
  if (!constrained(from) && !constrained(to)) return [{ stmts: [] }];
  const out: AddressVariant[] = [];
  for (const family of [4, 6] as const) {
    const src = family === 4 ? from.v4 : from.v6;
    const dst = family === 4 ? to.v4 : to.v6;
    if ((constrained(from) && (src ?? []).length === 0) || (constrained(to) && (dst ?? []).length === 0)) continue;
    const stmts: Stmt[] = [];
    if (src) stmts.push(saddr(family, src));
    if (dst) stmts.push(daddr(family, dst));
    out.push({ family, stmts });
  }
  return out;
}

/** The protocol matches of one traffic part; undefined when the part cannot occur in `family`. */
export function trafficStmts(part: TrafficPart, family: 4 | 6 | undefined): Stmt[] | undefined {
  switch (part.proto) {
    case 'tcp':
    case 'udp':
      return part.ports ? [match(payload(part.proto, 'dport'), oneOrSet(part.ports.map(portElement)))] : [match(meta('l4proto'), part.proto)];
    case 'icmp':
      if (family === 6) return undefined;
      return part.types ? [match(payload('icmp', 'type'), oneOrSet(part.types))] : [match(meta('l4proto'), 'icmp')];
    case 'icmpv6':
      if (family === 4) return undefined;
      return part.types ? [match(payload('icmpv6', 'type'), oneOrSet(part.types))] : [match(meta('l4proto'), 'ipv6-icmp')];
  }
}
