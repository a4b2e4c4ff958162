// What `nft -c` misses: some statements are only valid in some hooks or chain types, and the
// kernel checks that at commit time, after `nft -c` has already said yes (mechanics.md 5.3).
// Every chain is checked against every base chain that can reach it by jump, goto or vmap, and,
// given the kernel's features, for bridge-family statements the kernel cannot load.
import type { Chain, Ruleset, Table } from '../nft/ruleset.js';
import type { BaseChainSpec, Expr, Hook, Stmt } from '../nft/types.js';
import type { KernelFeatures } from './features.js';

export interface HookProblem {
  table: string;
  chain: string;
  rule: number;
  message: string;
}

/** Which base chains (hook and type) reach each chain of a table. */
function reachers(table: Table): Map<string, BaseChainSpec[]> {
  const byName = new Map<string, Chain>();
  for (const c of table.chains) byName.set(c.name, c);
  // Each verdict map's targets, once: some maps hold an element per guest port, all going to a
  // handful of chains, and several rules use the same map. Walk order is unchanged (first
  // occurrences, and a repeated target is never walked twice anyway).
  const mapTargets = new Map<string, string[]>();
  for (const s of table.sets) {
    if (s.kind !== 'map') continue;
    const targets = new Set<string>();
    for (const [, v] of s.elements) {
      if ('jump' in v) targets.add(v.jump.target);
      else if ('goto' in v) targets.add(v.goto.target);
    }
    mapTargets.set(s.name, [...targets]);
  }
  const targets = (c: Chain): string[] => {
    const out: string[] = [];
    for (const r of c.rules) {
      for (const s of r.stmts) {
        if ('jump' in s) out.push(s.jump.target);
        else if ('goto' in s) out.push(s.goto.target);
        else if ('vmap' in s) for (const t of mapTargets.get(s.vmap.data.setRef) ?? []) out.push(t);
      }
    }
    return out;
  };
  const out = new Map<string, BaseChainSpec[]>();
  for (const base of table.chains.filter((c) => c.base)) {
    const seen = new Set<string>();
    const walk = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const list = out.get(name);
      if (list) list.push(base.base!);
      else out.set(name, [base.base!]);
      const c = byName.get(name);
      if (c) targets(c).forEach(walk);
    };
    walk(base.name);
  }
  return out;
}

/** Every expression a statement reads, nested ones included. */
function exprsOf(s: Stmt): Expr[] {
  const out: Expr[] = [];
  const walk = (e: Expr) => {
    out.push(e);
    if (typeof e === 'object' && e !== null && !Array.isArray(e)) {
      if ('concat' in e) e.concat.forEach(walk);
      if ('&' in e) walk(e['&'][0]);
    }
  };
  if ('match' in s) walk(s.match.left);
  if ('vmap' in s) walk(s.vmap.key);
  return out;
}

/** What a bridge-family statement needs that the kernel may not have. */
function featureProblem(s: Stmt, family: string, features: KernelFeatures): string | undefined {
  if (family !== 'bridge') return undefined;
  if ('reject' in s && !features.bridgeReject) return 'reject in the bridge family needs nft_reject_bridge, which the kernel lacks';
  if (!('match' in s) && !('vmap' in s)) return undefined; // no expressions to read (counter, verdicts)
  for (const e of exprsOf(s)) {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) continue;
    if ('ct' in e && !features.bridgeConntrack) return 'ct in the bridge family needs nf_conntrack_bridge, which the kernel lacks';
    if ('meta' in e && (e.meta.key === 'ibrname' || e.meta.key === 'obrname') && !features.bridgeMeta) return `meta ${e.meta.key} needs nft_meta_bridge, which the kernel lacks`;
  }
  return undefined;
}

function stmtProblem(s: Stmt, b: BaseChainSpec, family: string): string | undefined {
  const hookIn = (hooks: Hook[]) => hooks.includes(b.hook);
  if ('dnat' in s && !(b.type === 'nat' && hookIn(['prerouting', 'output']))) return `dnat is only valid in nat prerouting/output chains, not ${b.type} ${b.hook}`;
  if (('snat' in s || 'masquerade' in s) && !(b.type === 'nat' && hookIn(['postrouting', 'input']))) {
    return `snat/masquerade is only valid in nat postrouting/input chains, not ${b.type} ${b.hook}`;
  }
  if ('reject' in s) {
    const ok = family === 'bridge' ? hookIn(['prerouting', 'input']) : hookIn(['input', 'forward', 'output']);
    if (!ok) return `reject is not valid in ${family} ${b.hook}`;
  }
  if ('match' in s) {
    const left = s.match.left;
    if (typeof left === 'object' && left !== null && !Array.isArray(left) && 'fib' in left && left.fib.flags.includes('iif') && !hookIn(['prerouting', 'input', 'forward'])) {
      return `fib with iif is only valid in prerouting, input and forward, not ${b.hook}`;
    }
  }
  // A nat chain sees a connection's first packet only, before conntrack confirms it: where a helper is set.
  if ('ct helper' in s && b.type !== 'filter' && !(b.type === 'nat' && b.hook === 'prerouting')) return `ct helper set belongs in a filter chain or nat prerouting, not ${b.type} ${b.hook}`;
  return undefined;
}

export function hookProblems(ruleset: Ruleset, features?: KernelFeatures): HookProblem[] {
  const problems: HookProblem[] = [];
  for (const table of ruleset.tables) {
    const reach = reachers(table);
    for (const c of table.chains) {
      for (const b of reach.get(c.name) ?? []) {
        for (let i = 0; i < c.rules.length; i++) {
          for (const s of c.rules[i]!.stmts) {
            const message = stmtProblem(s, b, table.family) ?? (features ? featureProblem(s, table.family, features) : undefined);
            if (message) problems.push({ table: table.name, chain: c.name, rule: i, message });
          }
        }
      }
    }
  }
  return problems;
}

/** Throws on the first problem: the compiler wrote something the kernel would refuse. */
export function checkHooks(ruleset: Ruleset, features?: KernelFeatures): void {
  const p = hookProblems(ruleset, features)[0];
  if (p) throw new Error(`compiler bug: ${p.table}/${p.chain} rule ${p.rule}: ${p.message}`);
}
