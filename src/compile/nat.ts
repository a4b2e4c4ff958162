// Port forwards and source NAT. A forward is three things that must agree: the DNAT in
// `dstnat`, the accept in the zone-pair chains (only for connections that were DNATed, so the
// guest's private address is not open by itself), and, for hairpin, a masquerade so that a
// client on the guest's own segment gets the replies back through the host.
import { HOST_ZONE, type ForwardModel, type HostModel } from '../model/host.js';
import { type DocPath, type Finding, warning } from '../policy/diagnostics.js';
import type { PortRange } from '../policy/ports.js';
import type { Chain, CtHelper, Rule } from '../nft/ruleset.js';
import type { Stmt } from '../nft/types.js';
import { accept, addressVariants, counter, daddr, iifnames, match, meta, oifnames, oneOrSet, payload, portElement, saddr } from './matches.js';
import { originOf } from './origin.js';
import { pairChainName } from './zones.js';

const ctDnat: Stmt = match({ ct: { key: 'status' } }, ['dnat'], 'in');

function zoneInterfaces(model: HostModel, zones: readonly string[]): string[] {
  return model.zones.filter((z) => zones.includes(z.name)).flatMap((z) => z.interfaces);
}

function protoPorts(f: ForwardModel): [('tcp' | 'udp'), PortRange[]][] {
  return ([['tcp', f.tcp], ['udp', f.udp]] as [('tcp' | 'udp'), PortRange[]][]).filter(([, p]) => p.length > 0);
}

const dport = (proto: 'tcp' | 'udp', ports: PortRange[]): Stmt => match(payload(proto, 'dport'), oneOrSet(ports.map(portElement)));

export interface Nat {
  dstnat: Chain;
  srcnat: Chain;
  /** Accept rules for forwarded connections, by zone-pair chain name. */
  forwardAccepts: Map<string, Rule[]>;
  findings: Finding[];
}

export function nat(model: HostModel): Nat {
  const dstnat: Rule[] = [];
  const srcnat: Rule[] = [];
  const forwardAccepts = new Map<string, Rule[]>();
  const findings: Finding[] = [];
  const addAccept = (chain: string, r: Rule) => forwardAccepts.set(chain, [...(forwardAccepts.get(chain) ?? []), r]);

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
      dstnat.push({ stmts: [...where, dport(proto, ports), counter(), { dnat: { family: 'ip', addr: f.targetV4, ...to } }], origin });

      // Accept the DNATed connection in every pair chain it may arrive through.
      const translated: PortRange[] = f.toPort !== undefined ? [[f.toPort, f.toPort]] : ports;
      const sources = hairpin ? [...new Set([...f.from, ...model.zones.map((z) => z.name)])] : f.from;
      for (const src of sources) {
        addAccept(pairChainName(src, f.targetZone), { stmts: [ctDnat, daddr(4, [f.targetV4]), dport(proto, translated), counter(), accept()], origin });
      }
      // IPv6 needs no NAT: the guest's own addresses are opened to the from zones for the same ports.
      if (f.targetV6.length > 0) {
        for (const src of f.from) {
          addAccept(pairChainName(src, f.targetZone), { stmts: [daddr(6, f.targetV6), dport(proto, ports), counter(), accept()], origin });
        }
      }
      // Hairpin: a client on the guest's own segment must see replies come back through the host.
      if (hairpin && f.targetInterface !== undefined) {
        srcnat.push({
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
        const stmts: Stmt[] = [iifnames(fromIfs), oifnames(outIfs)];
        stmts.push(addrs !== undefined ? saddr(family, addrs) : match(meta('nfproto'), family === 4 ? 'ipv4' : 'ipv6'));
        stmts.push(counter());
        stmts.push(s.kind === 'masquerade' ? { masquerade: null } : { snat: { family: family === 4 ? 'ip' : 'ip6', addr: s.address!.addr } });
        srcnat.push({ stmts, origin });
      }
    }
  }

  return {
    dstnat: { name: 'dstnat', base: { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' }, rules: dstnat },
    srcnat: { name: 'srcnat', base: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' }, rules: srcnat },
    forwardAccepts,
    findings,
  };
}

/** Conntrack helpers, only where the policy asks for them: no SIP or FTP ALG runs otherwise. */
export function helpers(model: HostModel): { objects: CtHelper[]; chain?: Chain } {
  if (model.helpers.length === 0) return { objects: [] };
  const objects = new Map<string, CtHelper>();
  const rules: Rule[] = [];
  for (const h of model.helpers) {
    const origin = originOf(h.src, `helper ${h.index + 1}: ${h.helper}`);
    const protos: ('tcp' | 'udp')[] = h.helper === 'sip' ? ['udp', 'tcp'] : ['tcp'];
    for (const proto of protos) {
      const name = `${h.helper}_${proto}`;
      objects.set(name, { name, type: h.helper, protocol: proto });
      // The destination zone is not known before routing: helpers match by interface and address.
      for (const from of h.from) {
        for (const to of h.to) {
          const fromIfs = zoneInterfaces(model, [from.zone]);
          if (fromIfs.length === 0) continue;
          for (const v of addressVariants(from, to)) {
            rules.push({ stmts: [iifnames(fromIfs), ...v.stmts, dport(proto, h.ports), { 'ct helper': name }], origin });
          }
        }
      }
    }
  }
  return {
    objects: [...objects.values()],
    chain: { name: 'helpers', base: { type: 'filter', hook: 'prerouting', prio: 0, policy: 'accept' }, rules },
  };
}
