// Port forwards and source NAT. A forward is three things that must agree: the DNAT in
// `dstnat`, the accept in the zone-pair chains (only for connections that were DNATed, so the
// guest's private address is not open by itself), and, for hairpin, a masquerade so that a
// client on the guest's own segment gets the replies back through the host.
//
// Every new connection walks the nat chains (and the forward accepts of its zone pair). Forwards
// are map and set elements (forwards.ts): a few lookups whatever their number. Source NAT rules
// sit behind one rule per group that sends just the packets they can match to them (`gated`):
// a connection that is not NATed walks one rule per group in srcnat.
import { HOST_ZONE, type HostModel } from '../model/host.js';
import type { Finding } from '../policy/diagnostics.js';
import type { PortRange } from '../policy/ports.js';
import type { Chain, CtHelper, NamedDataMap, NamedSet, Origin, Rule } from '../nft/ruleset.js';
import type { Stmt } from '../nft/types.js';
import { addressVariants, counter, iifnames, match, meta, oifnames, oneOrSet, payload, portElement, saddr } from './matches.js';
import { forwards } from './forwards.js';
import { builtin, originOf } from './origin.js';
import { fromChainName } from './dispatch.js';
import { pairChainName } from './zones.js';

function zoneInterfaces(model: HostModel, zones: readonly string[]): string[] {
  return model.zones.filter((z) => zones.includes(z.name)).flatMap((z) => z.interfaces);
}

const dport = (proto: 'tcp' | 'udp', ports: PortRange[]): Stmt => match(payload(proto, 'dport'), oneOrSet(ports.map(portElement)));

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
  /** The chains behind the gates of srcnat. */
  chains: Chain[];
  /** The forwards' maps and sets, and the source NAT's. */
  sets: (NamedSet | NamedDataMap)[];
  /** Accept rules for forwarded connections, by zone-pair chain name. */
  forwardAccepts: Map<string, Rule[]>;
  findings: Finding[];
}

export function nat(model: HostModel): Nat {
  const fw = forwards(model);
  /** Source NAT rules by the zone they leave to: zones have disjoint interfaces, so no packet meets two groups. */
  const sourceNats = new Map<string, { outIfs: string[]; rules: Rule[] }>();
  const chains: Chain[] = [];
  const o = (id: string, what: string) => builtin(id, what, model.file);

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

  // Hairpin first (a DNATed connection back out of its own interface, one set lookup), then
  // source NAT by the zone a packet leaves to, each group in policy order.
  const srcnat: Rule[] = [
    ...fw.hairpin,
    ...[...sourceNats].flatMap(([zone, g]) => gated(`srcnat_out_${zone}`, [oifnames(g.outIfs)], g.rules, o('srcnat-out', `source NAT of connections that leave to ${zone}`), chains)),
  ];

  return {
    dstnat: { name: 'dstnat', base: { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' }, rules: fw.dstnat },
    srcnat: { name: 'srcnat', base: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' }, rules: srcnat },
    chains,
    sets: fw.sets,
    forwardAccepts: fw.accepts,
    findings: fw.findings,
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
