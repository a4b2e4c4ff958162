// Zone-pair chains: one chain per (source zone, destination zone), named "<from>_to_<to>" with
// the zones' own names ("host" for the firewall itself). Each holds, in order, the accepts that
// port forwards need, the policy's rules for that pair, and the pair's policy verdict.
//
// The same chains serve the bridge table (traffic between two ports of one bridge), where the
// kernel may lack conntrack and reject: there a `reject` becomes a drop, and without conntrack
// every accept gets its reply-direction mirror (see `replyStmts`).
import { HOST_ZONE, type Action, type HostModel, type Place, type TrafficPart, type ZonePolicyModel } from '../model/host.js';
import type { Chain, Origin, Rule } from '../nft/ruleset.js';
import type { Stmt } from '../nft/types.js';
import { type DocPath, type Finding, warning } from '../policy/diagnostics.js';
import type { KernelFeatures } from './features.js';
import { accept, addressVariants, counter, drop, match, meta, oneOrSet, payload, portElement, trafficStmts } from './matches.js';
import { builtin, originOf } from './origin.js';

export function pairChainName(from: string, to: string): string {
  return `${from}_to_${to}`;
}

/** Every ordered pair of zones and the host, except host to host (that is lo). */
export function zonePairs(model: HostModel): [string, string][] {
  const names = [...model.zones.map((z) => z.name), HOST_ZONE];
  return names.flatMap((a) => names.filter((b) => !(a === HOST_ZONE && b === HOST_ZONE)).map((b): [string, string] => [a, b]));
}

export function verdict(action: Action, canReject = true): Stmt {
  if (action === 'accept') return accept();
  if (action === 'drop' || !canReject) return drop();
  return { reject: { type: 'icmpx', expr: 'admin-prohibited' } };
}

/** TCP that is not a bare SYN: any packet of a connection except the one that opens it. */
export const NOT_BARE_SYN: Stmt = match({ '&': [payload('tcp', 'flags'), ['syn', 'ack']] }, 'syn', '!=');

/**
 * The protocol matches of the replies to what `part` accepts, for stateless filtering: ports
 * swapped (TCP never a bare SYN, so the reply side cannot open connections), echo replies for
 * echo requests; undefined when the part has no replies (other ICMP types).
 */
export function replyStmts(part: TrafficPart, family: 4 | 6 | undefined): Stmt[] | undefined {
  switch (part.proto) {
    case 'tcp':
    case 'udp': {
      const ports = part.ports ? [match(payload(part.proto, 'sport'), oneOrSet(part.ports.map(portElement)))] : [match(meta('l4proto'), part.proto)];
      return part.proto === 'tcp' ? [...ports, NOT_BARE_SYN] : ports;
    }
    case 'icmp':
    case 'icmpv6': {
      if (family === (part.proto === 'icmp' ? 6 : 4)) return undefined;
      if (!part.types) return trafficStmts(part, family);
      if (!part.types.includes('echo-request')) return undefined;
      return [match(payload(part.proto, 'type'), 'echo-reply')];
    }
  }
}

/** Log at most 10 packets a minute per rule: enough to see a problem, never a flood. */
export function rateLimitedLog(prefix: string, origin: Origin): Rule {
  return { stmts: [{ limit: { rate: 10, per: 'minute', burst: 5 } }, { log: { prefix: `${prefix.slice(0, 100)} `, level: 'info' } }], origin };
}

/** The first policy that names the pair decides it; a pair no policy names drops, unless it starts at the host. */
export function pairPolicy(model: HostModel, from: string, to: string): ZonePolicyModel | undefined {
  const covers = (places: Place[], zone: string) => places.some((p) => p.zone === zone);
  return model.policies.find((p) => covers(p.from, from) && covers(p.to, to));
}

export interface PairChains {
  chains: Chain[];
  /** Policies that decide at least one pair; the others are reported as shadowed. */
  usedPolicies: Set<number>;
  /** What the bridge table cannot do as written (reject there is a drop). */
  findings: Finding[];
  /** Chains where, without conntrack, replies are accepted by their look alone (stateless mirrors). */
  stateless: Set<string>;
}

/** Which pairs, and what the kernel can do where they are filtered; default: every pair, in inet. */
export interface PairOptions {
  pairs?: [string, string][];
  /** For the bridge family: what the kernel has there (conntrack, reject). */
  bridge?: KernelFeatures;
}

export function pairChains(model: HostModel, forwardAccepts: Map<string, Rule[]>, opts: PairOptions = {}): PairChains {
  const pairs = opts.pairs ?? zonePairs(model);
  const canReject = opts.bridge === undefined;
  const stateless = opts.bridge !== undefined && !opts.bridge.bridgeConntrack;
  const findings: Finding[] = [];
  const rejectBecomesDrop = (path: DocPath, what: string) => {
    if (!canReject && !findings.some((f) => f.path === path)) {
      findings.push(warning('bridge-reject-drop', path,
        `${what} rejects, but between two ports of a bridge nftables can only drop: senders there wait for a timeout instead of a refusal`,
        'use action: drop to say what happens, or put the guests on separate bridges or routed interfaces'));
    }
  };
  const usedPolicies = new Set<number>();
  const statelessChains = new Set<string>();
  const byChain = new Map<string, Rule[]>();
  for (const [a, b] of pairs) byChain.set(pairChainName(a, b), [...(forwardAccepts.get(pairChainName(a, b)) ?? [])]);

  for (const r of model.rules) {
    const origin = originOf(r.src, `rule ${r.index + 1}${r.description ? `: ${r.description}` : ''}`);
    for (const f of r.from) {
      for (const t of r.to) {
        const rules = byChain.get(pairChainName(f.zone, t.zone));
        if (!rules) continue; // host to host
        for (const v of addressVariants(f, t)) {
          for (const part of r.traffic.length ? r.traffic : [undefined]) {
            const proto = part === undefined ? [] : trafficStmts(part, v.family);
            if (proto === undefined) continue;
            const stmts: Stmt[] = [...v.stmts, ...proto];
            if (r.limit) stmts.push({ limit: { rate: r.limit.rate, per: r.limit.per, ...(r.limit.burst !== undefined ? { burst: r.limit.burst } : {}) } });
            if (r.log !== undefined) stmts.push({ log: { prefix: `gw ${r.log} `, level: 'info' } });
            stmts.push(counter(), verdict(r.action, canReject));
            if (r.action === 'reject') rejectBecomesDrop(r.src.path, `rule ${r.index + 1}`);
            rules.push({ stmts, origin });
            // Stateless: the replies of what this rule accepts need a rule of their own.
            const reply = part === undefined ? [] : replyStmts(part, v.family);
            if (stateless && r.action === 'accept' && reply !== undefined) {
              const back = addressVariants(t, f).find((x) => x.family === v.family) ?? { stmts: [] };
              rules.push({ stmts: [...back.stmts, ...reply, counter(), accept()], origin: { ...origin, what: `${origin.what} (replies)` } });
              statelessChains.add(pairChainName(f.zone, t.zone));
            }
          }
        }
      }
    }
  }

  const chains: Chain[] = [];
  for (const [a, b] of pairs) {
    const name = pairChainName(a, b);
    const rules = byChain.get(name)!;
    const pol = pairPolicy(model, a, b);
    if (pol) {
      usedPolicies.add(pol.index);
      const origin = originOf(pol.src, `policy ${pol.index + 1}: ${a} -> ${b} ${pol.action}`);
      // A prefix the user wrote is kept, as a rule's is; `log: true` names the zone pair.
      if (pol.log !== undefined) rules.push(rateLimitedLog(typeof pol.log === 'string' ? `gw ${pol.log}` : `gw ${a}->${b} ${pol.action}`, origin));
      rules.push({ stmts: [counter(), verdict(pol.action, canReject)], origin });
      if (pol.action === 'reject') rejectBecomesDrop(pol.src.path, `policy ${pol.index + 1} (${a} -> ${b})`);
    } else if (a === HOST_ZONE) {
      rules.push({ stmts: [counter(), accept()], origin: builtin('host-default', `no policy names ${a} -> ${b}: the host's own traffic is accepted`, model.file) });
    } else {
      const origin = builtin('default-drop', `no policy names ${a} -> ${b}: dropped`, model.file);
      rules.push(rateLimitedLog(`gw ${a}->${b} drop`, origin), { stmts: [counter(), drop()], origin });
    }
    chains.push({ name, rules });
  }
  return { chains, usedPolicies, findings, stateless: statelessChains };
}
