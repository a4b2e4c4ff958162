// The benchmark's reference shape (d): the same compiled ruleset, with every verdict-map lookup
// (`iifname vmap @zone_src`, `oifname vmap @lan_dst`, ...) rewritten into the rule list that
// list-based firewalls use: one `iifname "X" goto chain` rule per map element, in the map's
// element order. A packet then walks the list until its interface matches, so classifying it
// costs a number of rules that grows with the number of interfaces (routed guests are map
// elements). Everything else (sets, nat, rule order) stays as compiled.
//
// For the benchmark only: it must decide every packet exactly as the map dispatch does, which
// `compareVerdicts` checks with the explain evaluator on sampled packets.
import { type Evaluation, type NatEvaluation, type Packet, type Path, evaluate, evaluateNat } from '../src/explain/evaluate.js';
import type { HostModel } from '../src/model/host.js';
import type { Chain, Rule, Ruleset, Table } from '../src/nft/ruleset.js';
import type { Expr, SetElement, Stmt } from '../src/nft/types.js';

type VmapStmt = Extract<Stmt, { vmap: unknown }>;
const isVmap = (s: Stmt): s is VmapStmt => typeof s === 'object' && s !== null && 'vmap' in s;

/** The ruleset with each verdict-map dispatch rule replaced by one rule per map element. */
export function linearDispatch(ruleset: Ruleset): Ruleset {
  return { tables: ruleset.tables.map(linearTable) };
}

function linearTable(table: Table): Table {
  const expanded = new Set<string>();
  const chains: Chain[] = table.chains.map((c) => ({ ...c, rules: c.rules.flatMap((r) => linearRule(table, r, expanded)) }));
  // A map no rule looks up any more would still be loaded (memory, not per-packet cost): drop it.
  const stillUsed = new Set(chains.flatMap((c) => c.rules.flatMap((r) => r.stmts.filter(isVmap).map((s) => s.vmap.data.setRef))));
  const sets = table.sets.filter((s) => s.kind !== 'map' || !expanded.has(s.name) || stillUsed.has(s.name));
  return { ...table, chains, sets };
}

function linearRule(table: Table, rule: Rule, expanded: Set<string>): Rule[] {
  const at = rule.stmts.findIndex(isVmap);
  if (at < 0) return [rule];
  const vmap = rule.stmts[at] as VmapStmt;
  if (at !== rule.stmts.length - 1) throw new Error(`linearDispatch: statements after a vmap (@${vmap.vmap.data.setRef}) are not expected`);
  // Conntrack's own verdict (`ct state vmap @ct_state`) is not dispatch: both shapes keep it.
  const key = vmap.vmap.key;
  if (typeof key === 'object' && key !== null && !Array.isArray(key) && 'ct' in key) return [rule];
  const name = vmap.vmap.data.setRef;
  const map = table.sets.find((s) => s.name === name);
  if (map === undefined || map.kind !== 'map') throw new Error(`linearDispatch: ${table.name} has no verdict map ${vmap.vmap.data}`);
  expanded.add(name);
  const before = rule.stmts.slice(0, at);
  // A miss in the map falls through to the next rule; so does a packet that matches no element of the list.
  return map.elements.map(([el, verdict]) => ({ stmts: [...before, ...keyMatches(vmap.vmap.key, el), verdict], origin: rule.origin }));
}

/** `key == element` as plain matches; a concatenation becomes one match per component. */
function keyMatches(key: Expr, el: SetElement): Stmt[] {
  if (typeof key === 'object' && key !== null && !Array.isArray(key) && 'concat' in key) {
    if (typeof el !== 'object' || !('concat' in el) || el.concat.length !== key.concat.length) throw new Error('linearDispatch: a concatenated key with a non-concatenated element');
    return key.concat.flatMap((k, i) => keyMatches(k, el.concat[i]!));
  }
  return [{ match: { op: '==', left: key, right: el as Expr } }];
}

// ---- Checking that both shapes decide alike ---------------------------------------------------

/** Where a packet meets the ruleset: a filter hook, or the nat chains of prerouting/postrouting. */
export type Hook = Path | 'prerouting' | 'postrouting';

export interface SampledPacket {
  hook: Hook;
  packet: Packet;
}

export interface Disagreement {
  sample: SampledPacket;
  mapped: string;
  linear: string;
}

/** What decides a packet: the verdict and the rule (by origin and text), or the nat translation. */
function decision(r: Evaluation | NatEvaluation): string {
  const last = [...r.steps].reverse().find((s) => s.outcome === 'verdict' || s.outcome === 'policy' || s.outcome === 'nat');
  const by = r.decidedBy ? `${r.decidedBy.id}@${r.decidedBy.line}` : 'policy';
  const nat = 'translation' in r && r.translation ? ` ${r.translation.kind} ${r.translation.addr ?? ''}:${r.translation.port ?? ''}` : '';
  return `${r.verdict} by ${by} in ${last?.chain ?? '-'}: ${last?.text ?? '-'}${nat}`;
}

function decide(ruleset: Ruleset, s: SampledPacket): string {
  return s.hook === 'prerouting' || s.hook === 'postrouting' ? decision(evaluateNat(ruleset, s.hook, s.packet)) : decision(evaluate(ruleset, s.hook, s.packet));
}

/** Every sample decided differently by the two rulesets (the verdict, the deciding rule, the nat translation). */
export function compareVerdicts(mapped: Ruleset, linear: Ruleset, samples: readonly SampledPacket[]): Disagreement[] {
  const out: Disagreement[] = [];
  for (const sample of samples) {
    const a = decide(mapped, sample);
    const b = decide(linear, sample);
    if (a !== b) out.push({ sample, mapped: a, linear: b });
  }
  return out;
}

/** A small deterministic generator (mulberry32), so a sample can be repeated from its seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` packets over the host's interfaces and addresses: every hook, new and established
 * connections, TCP/UDP to ports the policy names and others, ICMP; interfaces drawn from every
 * zone (and one no zone knows), addresses from guests, bridges, host interfaces and outside.
 */
export function samplePackets(model: HostModel, count: number, seed: number): SampledPacket[] {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const ifaces = [...model.hostInterfaces.map((i) => i.name), ...model.bridges.map((b) => b.name), ...model.guests.flatMap((g) => g.interfaces.filter((i) => i.mode === 'routed').map((i) => i.name)), 'unknown0'];
  const addrs = {
    4: [...model.guests.flatMap((g) => g.interfaces.flatMap((i) => i.addresses)), ...model.hostInterfaces.flatMap((i) => i.addresses), ...model.bridges.flatMap((b) => b.addresses)]
      .map((a) => a.addr)
      .filter((a) => !a.includes(':'))
      .concat(['198.51.100.7', '198.18.0.1', '192.0.2.55']),
    6: [...model.guests.flatMap((g) => g.interfaces.flatMap((i) => i.addresses)), ...model.hostInterfaces.flatMap((i) => i.addresses)]
      .map((a) => a.addr)
      .filter((a) => a.includes(':'))
      .concat(['2001:db8:ffff::7']),
  };
  const ports = [...new Set([22, 25, 53, 80, 443, 873, 2222, 3389, 5060, 5900, 9000, 12000, 51820, 1234, ...model.forwards.flatMap((f) => [...f.tcp, ...f.udp].map((r) => r[0]))])];
  const hooks: Hook[] = ['forward', 'forward', 'forward', 'input', 'output', 'prerouting', 'postrouting'];
  const out: SampledPacket[] = [];
  for (let i = 0; i < count; i++) {
    const hook = pick(hooks);
    const family: 4 | 6 = rnd() < 0.7 ? 4 : 6;
    const proto = pick(['tcp', 'tcp', 'udp', 'udp', family === 4 ? 'icmp' : 'icmpv6'] as const);
    const state = rnd() < 0.8 ? 'new' : pick(['established', 'related', 'invalid'] as const);
    const packet: Packet = {
      family,
      saddr: pick(addrs[family]),
      daddr: pick(addrs[family]),
      proto,
      ct: { state, ...(rnd() < 0.2 ? { status: ['dnat' as const] } : {}) },
      ...(proto === 'tcp' || proto === 'udp' ? { sport: 1024 + Math.floor(rnd() * 60000), dport: pick(ports) } : { icmpType: 'echo-request' }),
      ...(hook !== 'output' && hook !== 'postrouting' ? { iifname: pick(ifaces) } : {}),
      ...(hook === 'forward' || hook === 'output' || hook === 'postrouting' ? { oifname: pick(ifaces) } : {}),
    };
    // Postrouting of a routed packet knows both interfaces; of the host's own packets, only the output.
    if (hook === 'postrouting' && rnd() < 0.7) packet.iifname = pick(ifaces);
    out.push({ hook, packet });
  }
  return out;
}
