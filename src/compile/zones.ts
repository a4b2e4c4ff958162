// Zone-pair chains: one chain per (source zone, destination zone), named "<from>_to_<to>" with
// the zones' own names ("host" for the firewall itself). Each holds, in order, the accepts that
// port forwards need, the policy's rules for that pair, and the pair's policy verdict.
import { HOST_ZONE, type Action, type HostModel, type Place, type ZonePolicyModel } from '../model/host.js';
import type { Chain, Origin, Rule } from '../nft/ruleset.js';
import type { Stmt } from '../nft/types.js';
import { accept, addressVariants, counter, drop, trafficStmts } from './matches.js';
import { builtin, originOf } from './origin.js';

export function pairChainName(from: string, to: string): string {
  return `${from}_to_${to}`;
}

/** Every ordered pair of zones and the host, except host to host (that is lo). */
export function zonePairs(model: HostModel): [string, string][] {
  const names = [...model.zones.map((z) => z.name), HOST_ZONE];
  return names.flatMap((a) => names.filter((b) => !(a === HOST_ZONE && b === HOST_ZONE)).map((b): [string, string] => [a, b]));
}

export function verdict(action: Action): Stmt {
  if (action === 'accept') return accept();
  if (action === 'drop') return drop();
  return { reject: { type: 'icmpx', expr: 'admin-prohibited' } };
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
}

export function pairChains(model: HostModel, forwardAccepts: Map<string, Rule[]>): PairChains {
  const usedPolicies = new Set<number>();
  const byChain = new Map<string, Rule[]>();
  for (const [a, b] of zonePairs(model)) byChain.set(pairChainName(a, b), [...(forwardAccepts.get(pairChainName(a, b)) ?? [])]);

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
            stmts.push(counter(), verdict(r.action));
            rules.push({ stmts, origin });
          }
        }
      }
    }
  }

  const chains: Chain[] = [];
  for (const [a, b] of zonePairs(model)) {
    const name = pairChainName(a, b);
    const rules = byChain.get(name)!;
    const pol = pairPolicy(model, a, b);
    if (pol) {
      usedPolicies.add(pol.index);
      const origin = originOf(pol.src, `policy ${pol.index + 1}: ${a} -> ${b} ${pol.action}`);
      if (pol.log !== undefined) rules.push(rateLimitedLog(`gw ${a}->${b} ${pol.action}`, origin));
      rules.push({ stmts: [counter(), verdict(pol.action)], origin });
    } else if (a === HOST_ZONE) {
      rules.push({ stmts: [counter(), accept()], origin: builtin('host-default', `no policy names ${a} -> ${b}: the host's own traffic is accepted`, model.file) });
    } else {
      const origin = builtin('default-drop', `no policy names ${a} -> ${b}: dropped`, model.file);
      rules.push(rateLimitedLog(`gw ${a}->${b} drop`, origin), { stmts: [counter(), drop()], origin });
    }
    chains.push({ name, rules });
  }
  return { chains, usedPolicies };
}
