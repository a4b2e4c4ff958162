// Port forwards and source NAT. A forward is three things that must agree: the DNAT in
// `dstnat`, the accept in the zone-pair chains (only for connections that were DNATed, so the
// guest's private address is not open by itself), and, for hairpin, a masquerade so that a
// client on the guest's own segment gets the replies back through the host.
//
// Every new connection walks the nat chains (and the forward accepts of its zone pair). Forwards
// are map and set elements (forwards.ts): a few lookups whatever their number. srcnat is one
// lookup on the output interface (`oifname vmap @srcnat_out`) to the chain of the zone the
// connection leaves to: a connection that leaves where nothing is NATed walks that one rule.
import { type ForwardModel, HOST_ZONE, type HostModel } from '../model/host.js';
import type { Finding } from '../policy/diagnostics.js';
import type { PortRange } from '../policy/ports.js';
import type { Chain, CtHelper, NamedDataMap, NamedMap, NamedSet, Origin, Rule } from '../nft/ruleset.js';
import { type SetElement, type Stmt, type Verdict, setRef } from '../nft/types.js';
import { addressVariants, counter, iifnames, match, meta, oneOrSet, payload, portElement, saddr } from './matches.js';
import { DNAT_PORTS_SET, type Proto, forwards, mergeRanges } from './forwards.js';
import { originOf, placed } from './origin.js';
import { fromChainName } from './dispatch.js';
import { pairChainName } from './zones.js';

function zoneInterfaces(model: HostModel, zones: readonly string[]): string[] {
  return model.zones.filter((z) => zones.includes(z.name)).flatMap((z) => z.interfaces);
}

const dport = (proto: 'tcp' | 'udp', ports: PortRange[]): Stmt => match(payload(proto, 'dport'), oneOrSet(ports.map(portElement)));

/** The output interfaces whose connections may be source-NATed, to their zone's chain. */
export const SRCNAT_OUT_MAP = 'srcnat_out';
/** The hairpin masquerade alone, for forward targets in a zone nothing is NATed to. */
export const SRCNAT_HAIRPIN_CHAIN = 'srcnat_hairpin';

export interface Nat {
  dstnat: Chain;
  srcnat: Chain;
  /** The chains behind the gates of srcnat. */
  chains: Chain[];
  /** The forwards' maps and sets, and the source NAT's. */
  sets: (NamedSet | NamedDataMap | NamedMap)[];
  /** Accept rules for forwarded connections, by zone-pair chain name. */
  forwardAccepts: Map<string, Rule[]>;
  findings: Finding[];
}

/** `h`: the conntrack helpers (helpers()), whose prerouting rules go in dstnat before the forwards' lookups. */
export function nat(model: HostModel, h: { prerouting: Rule[]; sets: NamedSet[]; ports: Record<Proto, PortRange[]> } = { prerouting: [], sets: [], ports: { tcp: [], udp: [] } }): Nat {
  const fw = forwards(model);
  /** Source NAT rules by the zone they leave to: zones have disjoint interfaces, so no packet meets two groups. */
  const sourceNats = new Map<string, { outIfs: string[]; rules: Rule[] }>();
  const chains: Chain[] = [];
  // srcnat exists because of the nat: section, or of hairpin forwards alone.
  const o = (id: string, what: string) => placed(model.sections?.nat ?? model.sections?.forwards, id, what, model.file);

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
        // The output interface is the srcnat_out lookup's: only the input interfaces are left.
        const stmts: Stmt[] = [iifnames(fromIfs)];
        stmts.push(addrs !== undefined ? saddr(family, addrs) : match(meta('nfproto'), family === 4 ? 'ipv4' : 'ipv6'));
        stmts.push(counter());
        stmts.push(s.kind === 'masquerade' ? { masquerade: null } : { snat: { family: family === 4 ? 'ip' : 'ip6', addr: s.address!.addr } });
        const group = sourceNats.get(s.to) ?? { outIfs, rules: [] };
        group.rules.push({ stmts, origin });
        sourceNats.set(s.to, group);
      }
    }
  }

  // One lookup on the output interface sends a connection to the source NAT of the zone it
  // leaves to, the hairpin masquerade first where a forward's target is in that zone (a DNATed
  // connection back out of its own interface); a connection that leaves where nothing is NATed
  // walks that one rule. Each group keeps policy order.
  const hairpinIfs = new Set(fw.hairpinInterfaces);
  const outMap: [SetElement, Verdict][] = [];
  for (const [zone, g] of sourceNats) {
    const name = `srcnat_out_${zone}`;
    chains.push({ name, rules: [...(g.outIfs.some((i) => hairpinIfs.has(i)) ? fw.hairpin : []), ...g.rules] });
    for (const i of g.outIfs) outMap.push([i, { goto: { target: name } }]);
  }
  const natted = new Set([...sourceNats.values()].flatMap((g) => g.outIfs));
  const hairpinOnly = [...hairpinIfs].filter((i) => !natted.has(i));
  if (hairpinOnly.length > 0) {
    chains.push({ name: SRCNAT_HAIRPIN_CHAIN, rules: fw.hairpin });
    for (const i of hairpinOnly) outMap.push([i, { goto: { target: SRCNAT_HAIRPIN_CHAIN } }]);
  }
  const sets: (NamedSet | NamedDataMap | NamedMap)[] = [...fw.sets, ...h.sets];
  const dstnat: Rule[] = [...h.prerouting, ...fw.dstnat];
  // Most new connections go to no forwarded or helper port: one lookup on the protocol and port
  // every rule above looks at sends them past all of them (accept ends only this nat chain, as
  // its policy would). Not in front of a single forward's lookup: a forwarded connection would
  // walk one rule more than without it, and the others no fewer than the helpers' and that one.
  if (fw.dstnat.length >= 2 || (fw.dstnat.length === 0 && h.prerouting.length >= 2)) {
    const ports: SetElement[] = [];
    for (const proto of ['tcp', 'udp'] as const) {
      for (const r of mergeRanges([...fw.published[proto], ...h.ports[proto]])) ports.push({ concat: [proto, portElement(r)] });
    }
    sets.push({ kind: 'set', name: DNAT_PORTS_SET, type: ['inet_proto', 'inet_service'], flags: ['interval'], elements: ports });
    const gateSection = model.sections?.forwards ?? model.helpers[0]?.src;
    dstnat.unshift({
      stmts: [match({ concat: [meta('l4proto'), payload('th', 'dport')] }, setRef(DNAT_PORTS_SET), '!='), { accept: null }],
      origin: placed(gateSection, 'dnat-gate', 'connections to no forwarded or helper port skip the lookups', model.file),
    });
  }
  const srcnat: Rule[] = [];
  if (outMap.length > 0) {
    sets.push({ kind: 'map', name: SRCNAT_OUT_MAP, type: 'ifname', map: 'verdict', elements: outMap });
    srcnat.push({ stmts: [{ vmap: { key: meta('oifname'), data: setRef(SRCNAT_OUT_MAP) } }], origin: o('srcnat-out', 'to the source NAT of the zone the connection leaves to') });
  }

  return {
    dstnat: { name: 'dstnat', base: { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' }, rules: dstnat },
    srcnat: { name: 'srcnat', base: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' }, rules: srcnat },
    chains,
    sets,
    forwardAccepts: fw.accepts,
    findings: fw.findings,
  };
}

/**
 * Conntrack helpers, only where the policy asks for them: no SIP or FTP ALG runs otherwise.
 *
 * A helper must be attached to a connection before conntrack confirms it (on postrouting or
 * input). The rules go in the nat prerouting chain (`dstnat`), behind its port gate, keyed on the
 * `from` zone's input interfaces and `ct state new`: a nat chain sees a connection's first packet,
 * exactly when a helper is set, and the gate keeps every connection to no helper (or forwarded)
 * port from walking them. That chain sees every connection that goes on to forward or input, as
 * the `from_<zone>` and `<zone>_to_host` chains did, but before the port forwards' DNAT. So a
 * zone's helpers go there only when no forward can change what they match (a `to` address, or a
 * port a forward translates into or out of the helper's ports); otherwise they stay first in
 * `from_<zone>` (forward) and `<zone>_to_host` (input), after any DNAT (checked on kernel 6.18: the
 * FTP helper's expectations appear with the rules in either place, DNAT included).
 * `prerouting`: the rules for dstnat; `ports`: their ports, for its gate; `first`: the rules that
 * stay, by the chain they go first in.
 */
export function helpers(model: HostModel): { objects: CtHelper[]; prerouting: Rule[]; sets: NamedSet[]; ports: Record<Proto, PortRange[]>; first: Map<string, Rule[]> } {
  const objects = new Map<string, CtHelper>();
  /** Per zone, in order: what one rule would attach (address matches, protocol, ports, helper). */
  const byZone = new Map<string, HelperEntry[]>();
  const seen = new Set<string>();
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
          const toAddress = to.v4 !== undefined || to.v6 !== undefined;
          for (const v of addressVariants(from, to)) {
            // The same rule twice (a helper to several zones, no addresses) would only attach it twice.
            const key = JSON.stringify([from.zone, v.stmts, proto, h.ports, name]);
            if (seen.has(key)) continue;
            seen.add(key);
            const list = byZone.get(from.zone) ?? [];
            list.push({ addrs: v.stmts, toAddress, proto, ports: h.ports, name, origin, helper: h.index });
            byZone.set(from.zone, list);
          }
        }
      }
    }
  }
  const prerouting: Rule[] = [];
  const sets: NamedSet[] = [];
  const ports: Record<Proto, PortRange[]> = { tcp: [], udp: [] };
  const first = new Map<string, Rule[]>();
  for (const [zone, entries] of byZone) {
    if (entries.every((e) => sameBeforeDnat(e, model.forwards))) {
      // A zone of many guest ports is one named set, not an anonymous copy in each helper rule.
      const ifs = zoneInterfaces(model, [zone]);
      const named = ifs.length > HELPER_IFS_INLINE;
      if (named) sets.push({ kind: 'set', name: helperSourceSetName(zone), type: 'ifname', elements: ifs });
      const from: Stmt[] = [named ? match(meta('iifname'), setRef(helperSourceSetName(zone))) : iifnames(ifs), ctNew];
      prerouting.push(...helperRules(entries).map((r) => ({ ...r, stmts: [...from, ...r.stmts] })));
      for (const e of entries) ports[e.proto].push(...e.ports);
      continue;
    }
    const rules = helperRules(entries);
    first.set(fromChainName(zone), rules);
    first.set(pairChainName(zone, HOST_ZONE), rules);
  }
  return { objects: [...objects.values()], prerouting, sets, ports, first };
}

/** Up to this many input interfaces are written into each helper rule; more go in a named set. */
const HELPER_IFS_INLINE = 8;
/** The input interfaces of a zone whose helpers are attached in dstnat. */
export const helperSourceSetName = (zone: string) => `helper_from_${zone}`;

interface HelperEntry {
  addrs: Stmt[];
  /** Whether `addrs` match the destination (the helper's `to` has addresses). */
  toAddress: boolean;
  proto: Proto;
  ports: PortRange[];
  name: string;
  origin: Origin;
  helper: number;
}

const ctNew: Stmt = match({ ct: { key: 'state' } }, ['new'], 'in');

/**
 * One helper entry without addresses (SIP's UDP and TCP, or FTP) is one rule: the helper looked
 * up by protocol and port, so a connection walks one rule per entry, not one per protocol.
 */
function helperRules(entries: HelperEntry[]): Rule[] {
  const rules: Rule[] = [];
  for (let i = 0; i < entries.length;) {
    const e = entries[i]!;
    let j = i + 1;
    if (e.addrs.length === 0) while (j < entries.length && entries[j]!.addrs.length === 0 && entries[j]!.helper === e.helper) j++;
    const run = entries.slice(i, j);
    if (run.length >= 2) {
      const set: [SetElement, string][] = run.flatMap((x) => mergeRanges(x.ports).map((r): [SetElement, string] => [{ concat: [x.proto, portElement(r)] }, x.name]));
      rules.push({ stmts: [{ 'ct helper': { map: { key: { concat: [meta('l4proto'), payload('th', 'dport')] }, data: { set } } } }], origin: e.origin });
    } else {
      rules.push({ stmts: [...e.addrs, dport(e.proto, e.ports), { 'ct helper': e.name }], origin: e.origin });
    }
    i = j;
  }
  return rules;
}

const overlaps = (a: readonly PortRange[], b: readonly PortRange[]) => a.some((x) => b.some((y) => x[0] <= y[1] && y[0] <= x[1]));
const within = (a: readonly PortRange[], b: readonly PortRange[]) => a.every((x) => b.some((y) => y[0] <= x[0] && x[1] <= y[1]));

/**
 * Whether the entry matches a connection before the forwards' DNAT exactly when it matches it
 * after: a DNAT changes the destination address, and with `to_port` the port. So no forward of
 * the protocol may publish or translate into the entry's ports if it matches a destination
 * address, and a `to_port` forward must map helper ports to a helper port and others to others.
 */
function sameBeforeDnat(e: HelperEntry, forwards: readonly ForwardModel[]): boolean {
  return forwards.every((f) => {
    const published = f[e.proto];
    if (published.length === 0) return true;
    const translated: PortRange[] = f.toPort !== undefined ? [[f.toPort, f.toPort]] : published;
    if (e.toAddress) return !overlaps(e.ports, published) && !overlaps(e.ports, translated);
    if (f.toPort === undefined) return true;
    const toHelper = overlaps(e.ports, translated);
    return toHelper ? within(published, mergeRanges(e.ports)) : !overlaps(e.ports, published);
  });
}

/** `first` before `rest` in every chain either names. */
export function firstRules(first: ReadonlyMap<string, Rule[]>, rest: ReadonlyMap<string, Rule[]>): Map<string, Rule[]> {
  const out = new Map<string, Rule[]>();
  for (const k of new Set([...first.keys(), ...rest.keys()])) out.set(k, [...(first.get(k) ?? []), ...(rest.get(k) ?? [])]);
  return out;
}
