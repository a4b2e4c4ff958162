// Port forwards as map elements, not rules: a new connection to the 1,000th forward walks the
// same few rules as one to the first. Three lookups carry every forward:
//
// - dstnat: `dnat ip to <key> map @dnat_<shape>`, keyed on where the connection is addressed
//   (`iifname . ip daddr . meta l4proto . th dport`, or without the interface for hairpin
//   forwards, or `iifname . meta l4proto . th dport` behind `fib daddr type local` for forwards
//   with no public address). Forwards with `to_port` also have the port in `dnat_<shape>_port`,
//   read by a rule before the address-only one (a key is in the port map only if its forward
//   translates the port).
// - the zone-pair chains: `ct status dnat ip daddr . meta l4proto . th dport @<pair>_dnat accept`
//   (the DNATed tuple), and the same for the guests' own IPv6 addresses (`@<pair>_ip6`).
// - srcnat: hairpin masquerade by `iifname . oifname . ip daddr . meta l4proto . th dport`,
//   reached only through the targets' output interfaces (nat.ts).
// - the bridge (bridge.ts): where the target is a guest on a bridge, its zone's bridge pair chain
//   accepts the DNATed tuple too (br_netfilter bridges a hairpin there), only for DNATed
//   connections: by `ct status dnat`, or, without bridge conntrack, by the hairpin mark bit an inet
//   prerouting chain sets on them.
//
// dstnat's lookups sit behind one gate on `meta l4proto . th dport` (`@dnat_ports`, every port a
// forward publishes, and the conntrack helpers' ports) when there are several (nat.ts): a
// connection to no forwarded or helper port walks one rule.
//
// A rule list let the first forward win where two claimed one packet; elements of one map cannot
// both hold a key, and the kernel does not order the lookups of different maps by policy order.
// So two forwards that may claim the same connection are a located error (GW031) when their
// keys share a map, and the dstnat rules are ordered so that, across maps, the earlier forward's
// lookup comes first (an error where no order serves every pair). Each element keeps the origin
// of its forward (`origins`), so explain names the forward, not the map.
import type { ForwardModel, HostModel } from '../model/host.js';
import type { NamedDataMap, NamedSet, Origin, Rule } from '../nft/ruleset.js';
import { type Expr, type SetElement, type Stmt, setRef } from '../nft/types.js';
import { type DocPath, type Finding, error, warning } from '../policy/diagnostics.js';
import type { PortRange } from '../policy/ports.js';
import { counter, match, meta, payload, portElement } from './matches.js';
import { originOf, placed } from './origin.js';
import { pairChainName } from './zones.js';

export type Proto = 'tcp' | 'udp';
/** Where a forward's connection is addressed: its interfaces and public address, the public address from anywhere (hairpin), or any local address on its interfaces. */
type Shape = 'if' | 'hairpin' | 'local';

const THDPORT = payload('th', 'dport');
const L4PROTO = meta('l4proto');
const SHAPES: Record<Shape, { key: Expr[]; type: string[]; before: Stmt[]; what: string }> = {
  if: {
    key: [meta('iifname'), payload('ip', 'daddr'), L4PROTO, THDPORT],
    type: ['ifname', 'ipv4_addr', 'inet_proto', 'inet_service'],
    before: [],
    what: 'port forwards to a public address, by input interface',
  },
  hairpin: {
    key: [payload('ip', 'daddr'), L4PROTO, THDPORT],
    type: ['ipv4_addr', 'inet_proto', 'inet_service'],
    before: [],
    what: 'port forwards to a public address from any interface (hairpin)',
  },
  local: {
    key: [meta('iifname'), L4PROTO, THDPORT],
    type: ['ifname', 'inet_proto', 'inet_service'],
    // An IPv6 packet has no IPv4 address to be sent to: stop it before the lookups.
    before: [match(meta('nfproto'), 'ipv4'), match({ fib: { result: 'type', flags: ['daddr'] } }, 'local')],
    what: "port forwards to any of the host's addresses, by input interface",
  },
};
const SHAPE_ORDER: Shape[] = ['if', 'hairpin', 'local'];

/** Every protocol and port some forward publishes: the gate in front of the dstnat lookups. */
export const DNAT_PORTS_SET = 'dnat_ports';

export const ctDnat: Stmt = match({ ct: { key: 'status' } }, ['dnat'], 'in');

/** One key a forward claims in its shape's map: a port range of one protocol, maybe one interface and one address. */
interface Claim {
  f: ForwardModel;
  shape: Shape;
  proto: Proto;
  range: PortRange;
  iif?: string;
  daddr?: string;
}

export interface Forwards {
  /** The dstnat rules, in the order the lookups must run (nat.ts puts the gate in front). */
  dstnat: Rule[];
  /** The ports some dstnat key holds, by protocol: what the gate lets through to the lookups. */
  published: Record<Proto, PortRange[]>;
  /** Accept rules of DNATed (and forwarded IPv6) connections, by zone-pair chain name. */
  accepts: Map<string, Rule[]>;
  /** The hairpin masquerade rule for srcnat, if any forward needs it. */
  hairpin: Rule[];
  /** The interfaces a hairpin forward's connections leave through (its target's). */
  hairpinInterfaces: string[];
  sets: (NamedSet | NamedDataMap)[];
  findings: Finding[];
}

function zoneInterfaces(model: HostModel, zones: readonly string[]): string[] {
  return model.zones.filter((z) => zones.includes(z.name)).flatMap((z) => z.interfaces);
}

/** Ranges sorted and merged where they overlap or touch. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const out: [number, number][] = [];
  for (const [lo, hi] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

const overlap = (a: PortRange, b: PortRange) => a[0] <= b[1] && b[0] <= a[1];
/** Whether one connection may match both claims (an absent interface or address matches any). */
function mayShare(a: Claim, b: Claim): boolean {
  return a.proto === b.proto && overlap(a.range, b.range)
    && (a.iif === undefined || b.iif === undefined || a.iif === b.iif)
    && (a.daddr === undefined || b.daddr === undefined || a.daddr === b.daddr);
}

/** Earlier claims, found by protocol and port without comparing every pair. */
class ClaimIndex {
  private byPort = new Map<string, Claim[]>();
  private ranged: Claim[] = [];
  add(c: Claim): void {
    if (c.range[0] !== c.range[1]) {
      this.ranged.push(c);
      return;
    }
    const k = `${c.proto}/${c.range[0]}`;
    const list = this.byPort.get(k);
    if (list) list.push(c);
    else this.byPort.set(k, [c]);
  }
  sharing(c: Claim): Claim[] {
    const out = this.ranged.filter((o) => mayShare(o, c));
    if (c.range[0] === c.range[1]) out.push(...(this.byPort.get(`${c.proto}/${c.range[0]}`) ?? []).filter((o) => mayShare(o, c)));
    else for (const list of this.byPort.values()) out.push(...list.filter((o) => mayShare(o, c)));
    return out;
  }
}

/** Elements of one accept set, merged where they overlap (the kernel refuses overlapping intervals); each keeps its first forward. */
export class AcceptSet {
  private byTarget = new Map<string, { addr: string; proto: Proto; ranges: { range: PortRange; origin: Origin }[] }>();
  add(addr: string, proto: Proto, ranges: readonly PortRange[], origin: Origin): void {
    const k = `${addr} ${proto}`;
    const t = this.byTarget.get(k) ?? { addr, proto, ranges: [] };
    for (const range of ranges) t.ranges.push({ range, origin });
    this.byTarget.set(k, t);
  }
  toSet(name: string, family: 4 | 6): NamedSet {
    const elements: SetElement[] = [];
    const origins: Origin[] = [];
    for (const t of this.byTarget.values()) {
      const merged: { range: [number, number]; origin: Origin }[] = [];
      for (const r of [...t.ranges].sort((a, b) => a.range[0] - b.range[0])) {
        const last = merged[merged.length - 1];
        if (last && r.range[0] <= last.range[1]) last.range[1] = Math.max(last.range[1], r.range[1]);
        else merged.push({ range: [r.range[0], r.range[1]], origin: r.origin });
      }
      for (const m of merged) {
        elements.push({ concat: [t.addr, t.proto, portElement(m.range)] });
        origins.push(m.origin);
      }
    }
    return { kind: 'set', name, type: [family === 4 ? 'ipv4_addr' : 'ipv6_addr', 'inet_proto', 'inet_service'], flags: ['interval'], elements, origins };
  }
}

/** The name of the set of DNATed tuples a zone-pair chain accepts. */
export const forwardAcceptSetName = (pair: string, family: 4 | 6) => `${pair}_${family === 4 ? 'dnat' : 'ip6'}`;

export function forwards(model: HostModel): Forwards {
  const findings: Finding[] = [];
  // The lookups exist because of the forwards: section; their elements name each forward.
  const o = (id: string, what: string) => placed(model.sections?.forwards, id, what, model.file);
  const index = new ClaimIndex();
  /** Per shape: address elements, port elements, and which forward each came from. */
  const maps = new Map<Shape, { addr: [SetElement, string][]; addrOrigins: Origin[]; port: [SetElement, number][]; portOrigins: Origin[]; first: number }>();
  /** Shape pairs that must run in this order (an earlier forward's lookup before a later one's). */
  const before = new Set<string>();
  const reported = new Set<string>();
  const accepts = new Map<string, { v4: AcceptSet; v6: AcceptSet }>();
  const acceptsOf = (pair: string) => {
    const a = accepts.get(pair) ?? { v4: new AcceptSet(), v6: new AcceptSet() };
    accepts.set(pair, a);
    return a;
  };
  const hairpinElements: SetElement[] = [];
  const hairpinOrigins: Origin[] = [];
  const hairpinInterfaces = new Set<string>();
  /** The ports some dstnat key holds, by protocol. */
  const published: Record<Proto, PortRange[]> = { tcp: [], udp: [] };

  model.forwards.forEach((f, order) => {
    const origin = originOf(f.src, `forward ${f.index + 1}: ${f.from.join(',')} -> ${f.guest ?? f.targetV4}`);
    const fromIfs = zoneInterfaces(model, f.from);
    const hairpin = f.hairpin && f.publicV4.length > 0;
    if (f.hairpin && f.publicV4.length === 0) {
      findings.push(warning('hairpin-needs-address', f.src.path as DocPath,
        `forward ${f.index + 1} cannot work by the public address from other zones: the host's address on ${f.from.join(', ')} is not declared`,
        "add the address under host.interfaces.<if>.addresses, or set address: on the forward (or hairpin: false)"));
    }
    if (fromIfs.length === 0 && !hairpin) return; // nothing can arrive; the empty-zone warning says why
    const shape: Shape = f.publicV4.length === 0 ? 'local' : hairpin ? 'hairpin' : 'if';
    const m = maps.get(shape) ?? { addr: [], addrOrigins: [], port: [], portOrigins: [], first: order };
    maps.set(shape, m);
    const iifs = shape === 'hairpin' ? [undefined] : fromIfs;
    const daddrs = shape === 'local' ? [undefined] : f.publicV4;

    for (const proto of ['tcp', 'udp'] as const) {
      const ports = mergeRanges(f[proto]);
      if (ports.length === 0) continue;
      if (iifs.length > 0 && daddrs.length > 0) published[proto].push(...ports);
      for (const iif of iifs) {
        for (const daddr of daddrs) {
          for (const range of ports) {
            const c: Claim = { f, shape, proto, range, ...(iif !== undefined ? { iif } : {}), ...(daddr !== undefined ? { daddr } : {}) };
            for (const other of index.sharing(c)) {
              if (other.f === f) continue;
              if (other.shape !== shape) {
                before.add(`${other.shape}<${shape}`);
                continue;
              }
              const key = `${other.f.index} ${f.index}`;
              if (reported.has(key)) continue;
              reported.add(key);
              findings.push({
                ...error('forward-conflict', f.src.path as DocPath,
                  `forward ${f.index + 1} claims ${proto.toUpperCase()} ${range[0] === range[1] ? `port ${range[0]}` : `ports ${range[0]}-${range[1]}`}${iif ? ` on ${iif}` : ''}${daddr ? ` to ${daddr}` : ''}, which forward ${other.f.index + 1} already forwards to ${other.f.guest ?? other.f.targetV4}`,
                  'publish it on another external port with to_port:, or remove one of the forwards'),
                related: [{ path: other.f.src.path as DocPath, message: `forward ${other.f.index + 1}` }],
              });
            }
            index.add(c);
            const key: SetElement = { concat: [...(iif !== undefined ? [iif] : []), ...(daddr !== undefined ? [daddr] : []), proto, portElement(range)] };
            m.addr.push([key, f.targetV4]);
            m.addrOrigins.push(origin);
            if (f.toPort !== undefined) {
              m.port.push([key, f.toPort]);
              m.portOrigins.push(origin);
            }
          }
        }
      }

      // Accept the DNATed connection in every pair chain it may arrive through.
      const translated: PortRange[] = f.toPort !== undefined ? [[f.toPort, f.toPort]] : ports;
      const sources = hairpin ? [...new Set([...f.from, ...model.zones.map((z) => z.name)])] : f.from;
      for (const src of sources) acceptsOf(pairChainName(src, f.targetZone)).v4.add(f.targetV4, proto, translated, origin);
      // IPv6 needs no NAT: the guest's own addresses are opened to the from zones for the same ports.
      for (const src of f.targetV6.length > 0 ? f.from : []) {
        for (const a of f.targetV6) acceptsOf(pairChainName(src, f.targetZone)).v6.add(a, proto, ports, origin);
      }
      // Hairpin: a client on the guest's own segment must see replies come back through the host.
      if (hairpin && f.targetInterface !== undefined) {
        hairpinInterfaces.add(f.targetInterface);
        for (const range of translated) {
          hairpinElements.push({ concat: [f.targetInterface, f.targetInterface, f.targetV4, proto, portElement(range)] });
          hairpinOrigins.push(origin);
        }
      }
    }
  });

  const sets: (NamedSet | NamedDataMap)[] = [];
  const dstnat: Rule[] = [];
  for (const shape of shapeOrder([...maps].sort((a, b) => a[1].first - b[1].first).map(([s]) => s), before, model, findings)) {
    const m = maps.get(shape)!;
    if (m.addr.length === 0) continue;
    const spec = SHAPES[shape];
    const key: Expr = { concat: spec.key };
    const name = `dnat_${shape}`;
    sets.push({ kind: 'datamap', name, type: spec.type, map: 'ipv4_addr', flags: ['interval'], elements: m.addr, origins: m.addrOrigins });
    if (m.port.length > 0) {
      sets.push({ kind: 'datamap', name: `${name}_port`, type: spec.type, map: 'inet_service', flags: ['interval'], elements: m.port, origins: m.portOrigins });
      // nft maps a port only after a transport protocol match.
      dstnat.push({
        stmts: [...spec.before, match(L4PROTO, { set: ['tcp', 'udp'] }), { dnat: { family: 'ip', addr: { map: { key, data: setRef(name) } }, port: { map: { key, data: setRef(`${name}_port`) } } } }],
        origin: o(`dnat-${shape}-port`, `${spec.what}, to another port`),
      });
    }
    // No counter: before the lookups it would count every new connection, and nothing runs after a translation.
    dstnat.push({ stmts: [...spec.before, { dnat: { family: 'ip', addr: { map: { key, data: setRef(name) } } } }], origin: o(`dnat-${shape}`, spec.what) });
  }

  const acceptRules = new Map<string, Rule[]>();
  for (const [pair, a] of accepts) {
    const rules: Rule[] = [];
    const v4 = a.v4.toSet(forwardAcceptSetName(pair, 4), 4);
    const v6 = a.v6.toSet(forwardAcceptSetName(pair, 6), 6);
    if (v4.elements.length > 0) {
      sets.push(v4);
      rules.push({ stmts: [ctDnat, match({ concat: [payload('ip', 'daddr'), L4PROTO, THDPORT] }, setRef(v4.name)), counter(), { accept: null }], origin: o('forward-dnat', 'connections a port forward DNATed to this zone') });
    }
    if (v6.elements.length > 0) {
      sets.push(v6);
      rules.push({ stmts: [match({ concat: [payload('ip6', 'daddr'), L4PROTO, THDPORT] }, setRef(v6.name)), counter(), { accept: null }], origin: o('forward-ip6', "IPv6 connections to a forwarded guest's own address") });
    }
    acceptRules.set(pair, rules);
  }

  const hairpinRule: Rule[] = [];
  if (hairpinElements.length > 0) {
    sets.push({ kind: 'set', name: 'hairpin', type: ['ifname', 'ifname', 'ipv4_addr', 'inet_proto', 'inet_service'], flags: ['interval'], elements: hairpinElements, origins: hairpinOrigins });
    hairpinRule.push({
      stmts: [ctDnat, match({ concat: [meta('iifname'), meta('oifname'), payload('ip', 'daddr'), L4PROTO, THDPORT] }, setRef('hairpin')), counter(), { masquerade: null }],
      origin: o('srcnat-hairpin', 'a port-forwarded connection back out of its own interface is masqueraded'),
    });
  }
  return { dstnat, published, accepts: acceptRules, hairpin: hairpinRule, hairpinInterfaces: [...hairpinInterfaces], sets, findings };
}

/**
 * The order of the shapes' lookups: the order the policy first uses them in, unless an earlier
 * forward of one shape may share a connection with a later forward of another; then that pair
 * decides. Where no order satisfies every pair, the policy is ambiguous as maps: an error.
 */
function shapeOrder(used: Shape[], before: Set<string>, model: HostModel, findings: Finding[]): Shape[] {
  const ok = (order: Shape[]) => [...before].every((p) => {
    const [a, b] = p.split('<') as [Shape, Shape];
    return order.indexOf(a) < order.indexOf(b);
  });
  if (ok(used)) return used;
  const perms = (xs: Shape[]): Shape[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
  const found = perms(used).find(ok);
  if (found) return found;
  const first = model.forwards[0]!;
  findings.push(error('forward-conflict', first.src.path as DocPath,
    'port forwards with and without a public address (or hairpin) claim the same ports in an order no lookup order keeps',
    'give overlapping forwards distinct ports, or the same kind of address'));
  return SHAPE_ORDER.filter((s) => used.includes(s));
}
