// Port forwards and source NAT. A forward is three things that must agree: the DNAT in
// `dstnat`, the accept in the zone-pair chains (only for connections that were DNATed, so the
// guest's private address is not open by itself), and, for hairpin, a masquerade so that a
// client on the guest's own segment gets the replies back through the host.
//
// Every new connection walks the nat chains (and the forward accepts of its zone pair), so rules
// that only some packets can match sit behind one rule that sends just those packets to them
// (`gated`): a connection that is not port-forwarded walks one rule per protocol in dstnat, not
// every DNAT rule; one that is not NATed walks one rule per group in srcnat.
import { HOST_ZONE, type ForwardModel, type HostModel } from '../model/host.js';
import { type DocPath, type Finding, warning } from '../policy/diagnostics.js';
import type { PortRange } from '../policy/ports.js';
import type { Chain, CtHelper, Origin, Rule } from '../nft/ruleset.js';
import type { Stmt } from '../nft/types.js';
import { accept, addressVariants, counter, daddr, iifnames, match, meta, oifnames, oneOrSet, payload, portElement, saddr } from './matches.js';
import { originOf, placed } from './origin.js';
import { fromChainName } from './dispatch.js';
import { pairChainName } from './zones.js';

const ctDnat: Stmt = match({ ct: { key: 'status' } }, ['dnat'], 'in');

function zoneInterfaces(model: HostModel, zones: readonly string[]): string[] {
  return model.zones.filter((z) => zones.includes(z.name)).flatMap((z) => z.interfaces);
}

function protoPorts(f: ForwardModel): [('tcp' | 'udp'), PortRange[]][] {
  return ([['tcp', f.tcp], ['udp', f.udp]] as [('tcp' | 'udp'), PortRange[]][]).filter(([, p]) => p.length > 0);
}

const dport = (proto: 'tcp' | 'udp', ports: PortRange[]): Stmt => match(payload(proto, 'dport'), oneOrSet(ports.map(portElement)));

/** Ranges sorted and merged where they overlap or touch: one interval set the kernel accepts. */
function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const out: [number, number][] = [];
  for (const [lo, hi] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/**
 * `rules` moved into a chain of their own, reached by one rule that matches what every one of
 * them matches (`gate`): the packets the gate turns away walk one rule instead of all of them,
 * and the others walk the same rules in the same order (at the end of the chain they come back).
 * Fewer than two rules stay where they are: a gate would save nothing.
 */
function gated(name: string, gate: Stmt[], rules: Rule[], origin: Origin, chains: Chain[]): Rule[] {
  if (rules.length < 2) return rules;
  chains.push({ name, rules });
  return [{ stmts: [...gate, { jump: { target: name } }], origin }];
}

export interface Nat {
  dstnat: Chain;
  srcnat: Chain;
  /** The chains behind the gates of dstnat, srcnat and the forward accepts. */
  chains: Chain[];
  /** Accept rules for forwarded connections, by zone-pair chain name. */
  forwardAccepts: Map<string, Rule[]>;
  findings: Finding[];
}

export function nat(model: HostModel): Nat {
  /** DNAT rules by protocol, with the ports they match: no packet is both TCP and UDP, so no packet meets two groups. */
  const dnats = { tcp: { ports: [] as PortRange[], rules: [] as Rule[] }, udp: { ports: [] as PortRange[], rules: [] as Rule[] } };
  const hairpins: Rule[] = [];
  /** Source NAT rules by the zone they leave to: zones have disjoint interfaces, so no packet meets two groups. */
  const sourceNats = new Map<string, { outIfs: string[]; rules: Rule[] }>();
  const chains: Chain[] = [];
  // The gates in front of forwards exist because of the forwards: section, source NAT's because of nat:.
  const fwd = (id: string, what: string) => placed(model.sections?.forwards, id, what, model.file);
  const forwardAccepts = new Map<string, Rule[]>();
  const findings: Finding[] = [];
  // Per zone-pair chain: the accepts of DNATed IPv4 connections and the IPv6 accepts. No packet
  // is both IPv4 and IPv6, and all of them accept, so the two lists may follow one another.
  const accepts = new Map<string, { dnat: Rule[]; ip6: Rule[] }>();
  const addAccept = (chain: string, kind: 'dnat' | 'ip6', r: Rule) => {
    const a = accepts.get(chain) ?? { dnat: [], ip6: [] };
    a[kind].push(r);
    accepts.set(chain, a);
  };

  for (const f of model.forwards) {
    const origin = originOf(f.src, `forward ${f.index + 1}: ${f.from.join(',')} -> ${f.guest ?? f.targetV4}`);
    const fromIfs = zoneInterfaces(model, f.from);
    const hairpin = f.hairpin && f.publicV4.length > 0;
    if (f.hairpin && f.publicV4.length === 0) {
      findings.push(warning('hairpin-needs-address', f.src.path as DocPath,
        `forward ${f.index + 1} cannot work by the public address from other zones: the host's address on ${f.from.join(', ')} is not declared`,
        "add the address under host.interfaces.<if>.addresses, or set address: on the forward (or hairpin: false)"));
    }
    // Where the connection is addressed: the public address, or any local address arriving from the from zones.
    const where: Stmt[] = f.publicV4.length > 0
      ? [...(hairpin ? [] : [iifnames(fromIfs)]), daddr(4, f.publicV4)]
      : [iifnames(fromIfs), match({ fib: { result: 'type', flags: ['daddr'] } }, 'local')];
    if (fromIfs.length === 0 && !hairpin) continue; // nothing can arrive; the empty-zone warning says why

    for (const [proto, ports] of protoPorts(f)) {
      const to = f.toPort !== undefined ? { port: f.toPort } : {};
      dnats[proto].rules.push({ stmts: [...where, dport(proto, ports), counter(), { dnat: { family: 'ip', addr: f.targetV4, ...to } }], origin });
      dnats[proto].ports.push(...ports);

      // Accept the DNATed connection in every pair chain it may arrive through.
      const translated: PortRange[] = f.toPort !== undefined ? [[f.toPort, f.toPort]] : ports;
      const sources = hairpin ? [...new Set([...f.from, ...model.zones.map((z) => z.name)])] : f.from;
      for (const src of sources) {
        addAccept(pairChainName(src, f.targetZone), 'dnat', { stmts: [ctDnat, daddr(4, [f.targetV4]), dport(proto, translated), counter(), accept()], origin });
      }
      // IPv6 needs no NAT: the guest's own addresses are opened to the from zones for the same ports.
      if (f.targetV6.length > 0) {
        for (const src of f.from) {
          addAccept(pairChainName(src, f.targetZone), 'ip6', { stmts: [daddr(6, f.targetV6), dport(proto, ports), counter(), accept()], origin });
        }
      }
      // Hairpin: a client on the guest's own segment must see replies come back through the host.
      if (hairpin && f.targetInterface !== undefined) {
        hairpins.push({
          stmts: [ctDnat, iifnames([f.targetInterface]), oifnames([f.targetInterface]), daddr(4, [f.targetV4]), dport(proto, translated), counter(), { masquerade: null }],
          origin,
        });
      }
    }
  }

  for (const s of model.sourceNat) {
    const origin = originOf(s.src, `${s.kind} ${s.index + 1}: -> ${s.to}`);
    const outIfs = zoneInterfaces(model, [s.to]);
    if (outIfs.length === 0) continue;
    for (const family of s.family === 'both' ? [4, 6] as const : s.family === 'ipv4' ? [4] as const : [6] as const) {
      for (const from of s.from) {
        const fromIfs = zoneInterfaces(model, [from.zone]);
        if (from.zone === HOST_ZONE || fromIfs.length === 0) continue;
        const addrs = family === 4 ? from.v4 : from.v6;
        if (addrs !== undefined && addrs.length === 0) continue;
        // The output interface first: one comparison, where the input interfaces may be a set of
        // every guest of a zone; a connection that leaves elsewhere stops at it.
        const stmts: Stmt[] = [oifnames(outIfs), iifnames(fromIfs)];
        stmts.push(addrs !== undefined ? saddr(family, addrs) : match(meta('nfproto'), family === 4 ? 'ipv4' : 'ipv6'));
        stmts.push(counter());
        stmts.push(s.kind === 'masquerade' ? { masquerade: null } : { snat: { family: family === 4 ? 'ip' : 'ip6', addr: s.address!.addr } });
        const group = sourceNats.get(s.to) ?? { outIfs, rules: [] };
        group.rules.push({ stmts, origin });
        sourceNats.set(s.to, group);
      }
    }
  }

  // A connection that was not DNATed walks one rule here, not one per forward to the zone.
  for (const [pair, a] of accepts) {
    forwardAccepts.set(pair, [
      ...gated(`${pair}_dnat`, [ctDnat], a.dnat, fwd('forward-dnat', 'only DNATed connections can be port forwards'), chains),
      ...gated(`${pair}_ip6`, [match(meta('nfproto'), 'ipv6')], a.ip6, fwd('forward-ip6', 'only IPv6 connections can reach a forwarded guest by its own address'), chains),
    ]);
  }

  // A connection to a port no forward names walks one rule per protocol here.
  const dstnat: Rule[] = (['tcp', 'udp'] as const).flatMap((proto) =>
    gated(`dstnat_${proto}`, [dport(proto, mergeRanges(dnats[proto].ports))], dnats[proto].rules, fwd('dstnat-ports', `only ${proto.toUpperCase()} connections to a forwarded port walk the port forwards`), chains));

  // Hairpin rules first (a DNATed connection back out of its own interface), then source NAT by
  // the zone a packet leaves to, each group in policy order.
  const srcnat: Rule[] = [
    ...gated('srcnat_hairpin', [ctDnat], hairpins, fwd('srcnat-hairpin', 'only port-forwarded connections can need hairpin masquerade'), chains),
    ...[...sourceNats].flatMap(([zone, g]) => gated(`srcnat_out_${zone}`, [oifnames(g.outIfs)], g.rules, placed(model.sections?.nat, 'srcnat-out', `source NAT of connections that leave to ${zone}`, model.file), chains)),
  ];

  return {
    dstnat: { name: 'dstnat', base: { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' }, rules: dstnat },
    srcnat: { name: 'srcnat', base: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' }, rules: srcnat },
    chains,
    forwardAccepts,
    findings,
  };
}

/**
 * Conntrack helpers, only where the policy asks for them: no SIP or FTP ALG runs otherwise.
 *
 * A helper must be attached to a connection before conntrack confirms it (on postrouting or
 * input), and after any DNAT (so that `to` addresses are the real ones): the filter chains of
 * the forward and input hooks qualify (checked on kernel 6.18: the FTP helper's expectations
 * appear with the rule in forward or input, DNAT included). So the rules go first in the chains
 * every packet from a helper's `from` zone reaches anyway, `from_<zone>` (forward) and
 * `<zone>_to_host` (input), where the zone is already known: no base chain of their own on
 * prerouting, which every packet of every connection would pay for.
 * `first`: the rules, by the chain they go first in.
 */
export function helpers(model: HostModel): { objects: CtHelper[]; first: Map<string, Rule[]> } {
  const objects = new Map<string, CtHelper>();
  const first = new Map<string, Rule[]>();
  const add = (chain: string, r: Rule) => {
    const rules = first.get(chain) ?? [];
    // The same rule twice (a helper to several zones, no addresses) would only attach it twice.
    if (!rules.some((x) => JSON.stringify(x.stmts) === JSON.stringify(r.stmts))) rules.push(r);
    first.set(chain, rules);
  };
  for (const h of model.helpers) {
    const origin = originOf(h.src, `helper ${h.index + 1}: ${h.helper}`);
    const protos: ('tcp' | 'udp')[] = h.helper === 'sip' ? ['udp', 'tcp'] : ['tcp'];
    for (const proto of protos) {
      const name = `${h.helper}_${proto}`;
      objects.set(name, { name, type: h.helper, protocol: proto });
      // The destination zone is not matched (as before routing): by address only, where given.
      for (const from of h.from) {
        for (const to of h.to) {
          if (zoneInterfaces(model, [from.zone]).length === 0) continue;
          for (const v of addressVariants(from, to)) {
            const rule: Rule = { stmts: [...v.stmts, dport(proto, h.ports), { 'ct helper': name }], origin };
            for (const chain of [fromChainName(from.zone), pairChainName(from.zone, HOST_ZONE)]) add(chain, rule);
          }
        }
      }
    }
  }
  return { objects: [...objects.values()], first };
}

/** `first` before `rest` in every chain either names. */
export function firstRules(first: ReadonlyMap<string, Rule[]>, rest: ReadonlyMap<string, Rule[]>): Map<string, Rule[]> {
  const out = new Map<string, Rule[]>();
  for (const k of new Set([...first.keys(), ...rest.keys()])) out.set(k, [...(first.get(k) ?? []), ...(rest.get(k) ?? [])]);
  return out;
}
