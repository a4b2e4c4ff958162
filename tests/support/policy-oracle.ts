// What the policy says about one packet, read from the policy model alone: first matching rule,
// else the first policy naming the zone pair, with port forwards (and their IPv6 openings) first.
// It never looks at the compiled ruleset, so a test that checks the kernel against it checks the
// compiler against the policy's meaning, not against itself. The semantics are the ones the
// README documents for users; keep them in words a reviewer can check against it.
import { HOST_ZONE, type ForwardModel, type HostModel, type Place, type TrafficPart } from '../../src/model/host.js';
import { parseHostAddress } from '../../src/policy/addr.js';

export type Proto = 'tcp' | 'udp' | 'icmp';

/** One new connection (or echo request) as the sender addresses it. */
export interface OracleFlow {
  family: 4 | 6;
  proto: Proto;
  /** TCP/UDP destination port. */
  port?: number;
  /** The zone the packet enters the host from (HOST_ZONE for the host's own). */
  fromZone: string;
  src: string;
  /** The zone of the receiver (HOST_ZONE for the host), when the packet is not port-forwarded. */
  toZone: string;
  dst: string;
  /** The host interface the packet comes in on (for hairpin NAT); absent for the host's own. */
  inInterface?: string;
}

export interface OracleVerdict {
  action: 'accept' | 'drop' | 'reject';
  /** Why, in the policy's words: "rule 3", "policy 4", "forward 1", "no policy". */
  because: string;
  /** Where an accepted packet arrives when a forward rewrote it. */
  deliveredTo?: { addr: string; port?: number; zone: string; guest?: string };
  /** The source address the receiver sees, when NAT rewrites it; absent = unchanged. */
  seenFrom?: string;
  /**
   * A hairpin between two hosts on one bridge. The host masquerades it when it routes it; with
   * br_netfilter on, the kernel bridges the DNATed frame instead (br_nf_pre_routing_finish_bridge)
   * and conntrack un-DNATs the reply on the bridge, so the receiver may see the real source.
   */
  hairpin?: boolean;
}

const inAny = (addr: string, list: readonly string[]) => list.some((t) => contains(t, addr));

function contains(net: string, addr: string): boolean {
  const n = parseHostAddress(net);
  const a = parseHostAddress(addr);
  if (!n.ok || !a.ok || n.value.family !== a.value.family) return false;
  const v = a.value.network.start;
  return n.value.network.start <= v && v <= n.value.network.end;
}

function placeMatches(places: Place[], zone: string, addr: string, family: 4 | 6): boolean {
  return places.some((p) => {
    if (p.zone !== zone) return false;
    const list = family === 4 ? p.v4 : p.v6;
    return list === undefined || inAny(addr, list);
  });
}

function trafficMatches(traffic: TrafficPart[], f: OracleFlow): boolean {
  if (traffic.length === 0) return true;
  return traffic.some((t) => {
    if (f.proto === 'icmp') {
      if (t.proto !== (f.family === 4 ? 'icmp' : 'icmpv6')) return false;
      return t.types === undefined || t.types.includes('echo-request');
    }
    if (t.proto !== f.proto) return false;
    return t.ports === undefined || t.ports.some(([lo, hi]) => lo <= f.port! && f.port! <= hi);
  });
}

const portIn = (ranges: readonly (readonly [number, number])[], port: number | undefined) =>
  port !== undefined && ranges.some(([lo, hi]) => lo <= port && port <= hi);

/** The forward that takes this packet, if any: DNAT for IPv4 by the public address, an opening for IPv6. */
function forwardFor(model: HostModel, f: OracleFlow, hostAddresses: Map<string, string>): ForwardModel | undefined {
  if (f.proto === 'icmp') return undefined;
  return model.forwards.find((fw) => {
    if (!portIn(fw[f.proto as 'tcp' | 'udp'], f.port)) return false;
    if (f.family === 6) return fw.from.includes(f.fromZone) && fw.targetV6.includes(f.dst);
    const publicHit = fw.publicV4.length > 0
      ? fw.publicV4.includes(f.dst)
      : hostAddresses.has(f.dst) && model.zones.some((z) => fw.from.includes(z.name) && z.interfaces.includes(f.inInterface ?? ''));
    if (!publicHit) return false;
    if (fw.from.includes(f.fromZone)) return true;
    // Hairpin: from any zone, by the public address.
    return fw.hairpin && fw.publicV4.length > 0 && f.fromZone !== HOST_ZONE;
  });
}

/**
 * @param hostAddresses every address of the host -> the interface that holds it
 */
export function oracle(model: HostModel, f: OracleFlow, hostAddresses: Map<string, string>): OracleVerdict {
  const fw = forwardFor(model, f, hostAddresses);
  if (fw !== undefined) {
    const zone = fw.targetZone;
    if (f.family === 6) return { action: 'accept', because: `forward ${fw.index + 1}`, deliveredTo: { addr: f.dst, ...(f.port !== undefined ? { port: f.port } : {}), zone, ...(fw.guest ? { guest: fw.guest } : {}) } };
    const deliveredTo = { addr: fw.targetV4, port: fw.toPort ?? f.port!, zone, ...(fw.guest ? { guest: fw.guest } : {}) };
    // Hairpin masquerade: a client on the target's own interface sees replies from the host's address there.
    let seenFrom: string | undefined;
    if (fw.hairpin && fw.targetInterface !== undefined && f.inInterface === fw.targetInterface) {
      seenFrom = [...hostAddresses].find(([a, dev]) => dev === fw.targetInterface && !a.includes(':'))?.[0];
    }
    return { action: 'accept', because: `forward ${fw.index + 1}`, deliveredTo, ...(seenFrom ? { seenFrom, hairpin: true } : {}) };
  }

  const toZone = hostAddresses.has(f.dst) ? HOST_ZONE : f.toZone;
  const seenFrom = sourceNat(model, f, toZone, hostAddresses);
  const nat = seenFrom !== undefined ? { seenFrom } : {};
  for (const r of model.rules) {
    if (!placeMatches(r.from, f.fromZone, f.src, f.family) || !placeMatches(r.to, toZone, f.dst, f.family)) continue;
    if (!trafficMatches(r.traffic, f)) continue;
    return { action: r.action, because: `rule ${r.index + 1}`, ...nat };
  }
  const pol = model.policies.find((p) => p.from.some((x) => x.zone === f.fromZone) && p.to.some((x) => x.zone === toZone));
  if (pol) return { action: pol.action, because: `policy ${pol.index + 1}`, ...nat };
  if (f.fromZone === HOST_ZONE) return { action: 'accept', because: "no policy: the host's own traffic", ...nat };
  return { action: 'drop', because: 'no policy', ...nat };
}

/** Masquerade and SNAT: the address the receiver sees, when the policy rewrites the source. */
function sourceNat(model: HostModel, f: OracleFlow, toZone: string, hostAddresses: Map<string, string>): string | undefined {
  if (f.fromZone === HOST_ZONE || toZone === HOST_ZONE) return undefined;
  for (const s of model.sourceNat) {
    if (s.to !== toZone) continue;
    const fam = s.family === 'both' || (s.family === 'ipv4' ? 4 : 6) === f.family;
    if (!fam || !placeMatches(s.from, f.fromZone, f.src, f.family)) continue;
    if (s.kind === 'snat') return s.address!.addr;
    // Masquerade: the host's address of that family on the interface facing the destination zone.
    const out = model.zones.find((z) => z.name === toZone)?.interfaces ?? [];
    return [...hostAddresses].find(([a, dev]) => out.includes(dev) && (a.includes(':') ? 6 : 4) === f.family)?.[0];
  }
  return undefined;
}
