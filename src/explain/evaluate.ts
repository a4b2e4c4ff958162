// Evaluate one packet over the ruleset IR the way nf_tables does: which base chains see it, in
// which order, what every statement reads from it, and where jumps, gotos and map lookups lead.
// Pure: everything the kernel would look up elsewhere (routes, the host's addresses, rate-limit
// state) comes from EvalEnv. Anything the evaluator cannot read exactly throws: a guess here
// would tell a user that a packet passes when it does not.
import { printStmt } from '../nft/print.js';
import type { Chain, NamedSet, Origin, Rule, Ruleset, Table } from '../nft/ruleset.js';
import { type ChainType, type Expr, type Family, type Hook, type MapLookup, type MatchOp, type SetElement, type Stmt, type StmtKind, type Value, type Verdict, isSetRef } from '../nft/types.js';
import { type IpFamily, contains, formatAddress, parseHostAddress } from '../policy/addr.js';
import { CT_STATES, CT_STATUS, ETHER_TYPES, FIB_TYPES, ICMP_TYPE, ICMPV6_TYPE, L4PROTO, NFPROTO, TCP_FLAGS } from './symbols.js';

export interface Packet {
  family: 4 | 6;
  /** Input interface; absent for packets the host itself sends. */
  iifname?: string;
  /** Output interface; absent for packets delivered to the host. */
  oifname?: string;
  /** Canonical or any valid spelling of an address of `family`. */
  saddr: string;
  daddr: string;
  proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6';
  sport?: number;
  dport?: number;
  /** nft names, e.g. 'echo-request'. */
  icmpType?: string;
  /** TCP flags (nft names); default: `syn` for a new connection, `ack` otherwise. */
  tcpFlags?: string[];
  /** Source MAC; absent = the one declared for the port it comes from (what a legitimate guest sends). */
  smac?: string;
  /** The target address of a neighbour advertisement; default: saddr. */
  ndTarget?: string;
  ct: { state: 'new' | 'established' | 'related' | 'invalid'; status?: ('dnat' | 'snat')[] };
  /** The packet's mark (skb->mark); default 0: a frame from a guest's veth or tap arrives unmarked. */
  mark?: number;
}

/** Which filter hook the packet passes: delivered to the host, routed through it, or sent by it. */
export type Path = 'input' | 'forward' | 'output';
export type NatHook = 'prerouting' | 'postrouting';

export type Outcome = 'no match' | 'matched' | 'verdict' | 'policy' | 'jump' | 'goto' | 'return' | 'map miss' | 'nat';

export interface Step {
  family: Family;
  table: string;
  chain: string;
  /** Index of the rule in its chain (0-based); absent for a chain's policy or its end. */
  rule?: number;
  /** The rule as nft prints it (without the comment), or `policy drop` / `end of chain`. */
  text: string;
  origin?: Origin;
  outcome: Outcome;
  /** For 'no match': the statement that did not hold. */
  failed?: string;
  /** What the rule did without deciding anything: counter, log, ct helper set. */
  effects?: string[];
  /** The policy entry behind the set or map element the rule's lookup hit (a port forward), when it has one. */
  element?: Origin;
}

export interface Evaluation {
  verdict: 'accept' | 'drop' | 'reject';
  /** The rule that decided; absent when a chain policy did (or no base chain saw the packet). */
  decidedBy?: Origin;
  steps: Step[];
  notes: string[];
  /** The packet as the hook leaves it: with the bits a `meta mark set` rule set, which later hooks read. */
  packet?: Packet;
}

export interface EvalEnv {
  /**
   * br_netfilter with bridge-nf-call-iptables/ip6tables = 1: bridged IPv4/IPv6 also passes the
   * inet forward hook, with the bridge as input and output interface. Only `evaluateBridge`
   * reads it (default false: a stock Debian host does not load br_netfilter).
   */
  brNetfilter?: boolean;
  /** Answer for `fib saddr . iif oif missing`: does a route back to saddr exist via iifname? Default: yes. */
  routeBack?(p: Packet): boolean;
  /**
   * Answer for `fib saddr oifname`: the interface the host's best route to saddr leaves through,
   * '' when there is none (a link-local source: the interface it came in on). Default: iifname.
   */
  routeOut?(p: Packet): string;
  /** Whether `fib daddr type local` holds: is daddr one of the host's addresses? Default: no. */
  isLocal?(addr: string): boolean;
  /** Limits: treat every `limit` as under its rate (default true); false = over the limit. */
  underLimit?: boolean;
  /** The address `masquerade` picks on an interface; unknown by default (saddr is then kept). */
  interfaceAddress?(ifname: string, family: 4 | 6): string | undefined;
}

export interface NatTranslation {
  kind: 'dnat' | 'snat' | 'masquerade';
  origin: Origin;
  /** The new destination (dnat) or source (snat, masquerade) address; absent when masquerade's is unknown. */
  addr?: string;
  /** The new destination port (dnat only; source ports are kept). */
  port?: number;
}

export interface NatEvaluation {
  /** A nat chain can drop too (its policy or a drop rule). */
  verdict: 'accept' | 'drop';
  /** The packet after translation; the same packet when nothing translated it. */
  packet: Packet;
  translation?: NatTranslation;
  decidedBy?: Origin;
  steps: Step[];
  notes: string[];
}

/** The filter chains on prerouting alone (anti-spoofing, helpers), with every step the packet takes there. */
export function evaluatePrerouting(ruleset: Ruleset, packet: Packet, env: EvalEnv = {}): Evaluation {
  const { oifname: _, ...arriving } = packet;
  const pre = context(arriving, 'prerouting', env, { kind: 'filter' });
  const r = runHook(pre, baseChains(ruleset, 'filter', 'prerouting', packet.family, pre.notes), 'prerouting', false);
  return { ...r, steps: pre.steps, notes: pre.notes, packet: { ...packet, ...markOf(pre.packet) } };
}

/** The mark a hook left on the packet, to carry to the next hook. */
const markOf = (p: Packet | undefined) => (p?.mark !== undefined ? { mark: p.mark } : {});

/**
 * The filter verdict on `path`. Every table's filter base chains on the hook see the packet, in
 * priority order (lowest first). Coexistence hangs on this: a drop or reject in any base chain
 * is final, but an accept only ends that base chain, and the next base chain on the same hook
 * (another table's, e.g. Docker's forward drop policy) still judges the packet. So the packet
 * passes only if every base chain accepts it.
 */
export function evaluate(ruleset: Ruleset, path: Path, packet: Packet, env: EvalEnv = {}): Evaluation {
  // A packet that arrives (input, forward) first meets the filter chains on prerouting
  // (anti-spoofing, the hairpin mark). They are in the trace only when they stop it: passing them
  // is the rule (evaluatePrerouting has every step). What they set (the mark) goes on with the packet.
  let arrived = packet;
  if (path !== 'output') {
    const pre = evaluatePrerouting(ruleset, packet, env);
    if (pre.verdict !== 'accept') return pre;
    arrived = pre.packet ?? packet;
  }
  return evaluateHook(ruleset, path, arrived, env);
}

/** The filter base chains of one hook alone, the packet as it comes to them (prerouting already passed). */
function evaluateHook(ruleset: Ruleset, path: Path, packet: Packet, env: EvalEnv): Evaluation {
  const ctx = context(packet, path, env, { kind: 'filter' });
  const r = runHook(ctx, baseChains(ruleset, 'filter', path, packet.family, ctx.notes), path, true);
  return { ...r, steps: ctx.steps, notes: ctx.notes, packet: ctx.packet };
}

/**
 * A frame between two ports of one bridge (`packet.iifname` and `oifname` are the ports): the
 * bridge family's prerouting chains, then what `evaluateBridgeForward` says. It passes only if
 * every stage accepts.
 */
export function evaluateBridge(ruleset: Ruleset, bridge: string, packet: Packet, env: EvalEnv = {}): Evaluation {
  const { oifname: _, ...arriving } = packet;
  const pre = context(arriving, 'prerouting', env, { kind: 'filter' });
  const r = runHook(pre, bridgeChains(ruleset, 'prerouting'), 'bridge prerouting', false);
  if (r.verdict !== 'accept') return { ...r, steps: pre.steps, notes: pre.notes };
  const rest = evaluateBridgeForward(ruleset, bridge, packet, env);
  return { ...rest, steps: [...pre.steps, ...rest.steps], notes: [...pre.notes, ...rest.notes] };
}

/**
 * A frame past bridge prerouting on its way from port `packet.iifname` to port `oifname`. With
 * `env.brNetfilter`, br_netfilter first passes it through the inet prerouting hooks with the
 * bridge as input interface (a DNATed hairpin frame comes here translated, bridged straight to
 * the target by br_nf_pre_routing_finish_bridge): what they set, the hairpin mark, goes on with
 * it. Then the bridge family's forward chains, then, with br_netfilter, the inet forward hook
 * with the bridge as input and output interface.
 */
export function evaluateBridgeForward(ruleset: Ruleset, bridge: string, packet: Packet, env: EvalEnv = {}): Evaluation {
  const steps: Step[] = [];
  const notes: string[] = [];
  let frame = packet;
  if (env.brNetfilter) {
    notes.push(`br_netfilter: the frame also passes the inet hooks with ${bridge} as input and output interface`);
    const { oifname: _, ...arriving } = packet;
    const pre = evaluatePrerouting(ruleset, { ...arriving, iifname: bridge }, env);
    steps.push(...pre.steps.filter(marking));
    notes.push(...pre.notes);
    if (pre.verdict !== 'accept') return { ...pre, steps: pre.steps, notes };
    frame = { ...packet, ...markOf(pre.packet) };
  }
  const fwd = context(frame, 'forward', env, { kind: 'filter' });
  const r = runHook(fwd, bridgeChains(ruleset, 'forward'), 'bridge forward', false);
  steps.push(...fwd.steps);
  notes.push(...fwd.notes);
  if (r.verdict !== 'accept' || !env.brNetfilter) return { ...r, steps, notes, packet: fwd.packet };
  const e = evaluateHook(ruleset, 'forward', { ...fwd.packet, iifname: bridge, oifname: bridge }, env);
  return { ...e, steps: [...steps, ...e.steps], notes: [...notes, ...e.notes] };
}

/** A step that set something later hooks read (the hairpin mark): shown even where its hook passed the packet. */
const marking = (s: Step) => (s.effects ?? []).some((x) => x.startsWith('meta mark set'));

/** A frame from a bridge port (`packet.iifname`) at the bridge family's prerouting hook, every step kept. */
export function evaluateBridgePrerouting(ruleset: Ruleset, packet: Packet, env: EvalEnv = {}): Evaluation {
  const ctx = context(packet, 'prerouting', env, { kind: 'filter' });
  const r = runHook(ctx, bridgeChains(ruleset, 'prerouting'), 'bridge prerouting', false);
  return { ...r, steps: ctx.steps, notes: ctx.notes };
}

function bridgeChains(ruleset: Ruleset, hook: Hook): { table: Table; chain: Chain }[] {
  const found = ruleset.tables
    .filter((t) => t.family === 'bridge')
    .flatMap((table) => table.chains.filter((c) => c.base?.type === 'filter' && c.base.hook === hook).map((chain) => ({ table, chain })));
  return found.sort((a, b) => a.chain.base!.prio - b.chain.base!.prio);
}

/** Every base chain on one hook must accept; a drop or reject in any of them is final. */
function runHook(ctx: Ctx, bases: { table: Table; chain: Chain }[], hook: string, noteEmpty: boolean): Omit<Evaluation, 'steps' | 'notes'> {
  if (bases.length === 0 && noteEmpty) ctx.notes.push(`no filter base chain on hook ${hook}: the kernel accepts the packet`);
  let acceptedBy: Origin | undefined;
  for (const { table, chain } of bases) {
    const r = runBaseChain(ctx, table, chain);
    const where = `${table.family} ${table.name} ${chain.name}`;
    if (r.kind === 'nat') throw bug(`${where}: a nat statement in a filter chain`, r);
    if (r.kind !== 'accept') {
      if (bases.length > 1) ctx.notes.push(`${where} ${r.kind === 'reject' ? 'rejects' : 'drops'} the packet: final, whatever the other base chains on ${hook} say`);
      return { verdict: r.kind, ...(r.origin ? { decidedBy: r.origin } : {}) };
    }
    if (bases.length > 1) ctx.notes.push(`${where} accepts; that ends only this base chain, the next one on ${hook} still sees the packet`);
    // The rule the user will want to see is the one that accepted, not a foreign table's policy.
    acceptedBy ??= r.origin;
  }
  return { verdict: 'accept', ...(acceptedBy ? { decidedBy: acceptedBy } : {}) };
}

/**
 * The address translation the nat base chains on `hook` apply to a connection's first packet:
 * the chains run in priority order until one translates (then the rest are skipped) or drops.
 * Use it to follow a port forward: prerouting here, then `evaluate(..., 'forward', result.packet)`.
 */
export function evaluateNat(ruleset: Ruleset, hook: NatHook, packet: Packet, env: EvalEnv = {}): NatEvaluation {
  const ctx = context(packet, hook, env, { kind: 'nat', hook });
  if (packet.ct.state !== 'new') {
    // Later packets of a connection follow the binding its first packet got; nat chains never see them.
    ctx.notes.push(`nat chains see only the first packet of a connection (ct state new), not ${packet.ct.state} ones`);
    return { verdict: 'accept', packet, steps: [], notes: ctx.notes };
  }
  for (const { table, chain } of baseChains(ruleset, 'nat', hook, packet.family, ctx.notes)) {
    const r = runBaseChain(ctx, table, chain);
    if (r.kind === 'nat') {
      const translated = translate(ctx, r.stmt, r.origin);
      return { verdict: 'accept', packet: translated.packet, translation: translated.translation, decidedBy: r.origin, steps: ctx.steps, notes: ctx.notes };
    }
    if (r.kind !== 'accept') return { verdict: 'drop', packet, ...(r.origin ? { decidedBy: r.origin } : {}), steps: ctx.steps, notes: ctx.notes };
  }
  ctx.notes.push(`no nat rule on ${hook} translates this packet`);
  return { verdict: 'accept', packet, steps: ctx.steps, notes: ctx.notes };
}

// ---- Base chains and the chain walk ---------------------------------------------------------

interface Ctx {
  packet: Packet;
  saddr: bigint;
  daddr: bigint;
  env: EvalEnv;
  mode: { kind: 'filter' } | { kind: 'nat'; hook: NatHook };
  steps: Step[];
  notes: string[];
  /** The origin of the element the current rule's last lookup hit (see Step.element). */
  element?: Origin;
}

function context(packet: Packet, where: Path | NatHook, env: EvalEnv, mode: Ctx['mode']): Ctx {
  const { saddr, daddr } = checkPacket(packet, where);
  return { packet, saddr, daddr, env, mode, steps: [], notes: [] };
}

/** Which table families a packet of `family` meets on the IP hooks (bridge, netdev and arp have their own). */
function tableSeesFamily(t: Family, family: 4 | 6): boolean {
  return t === 'inet' || (t === 'ip' && family === 4) || (t === 'ip6' && family === 6);
}

function baseChains(ruleset: Ruleset, type: ChainType, hook: Hook, family: 4 | 6, notes: string[]): { table: Table; chain: Chain }[] {
  const found = ruleset.tables
    .filter((t) => tableSeesFamily(t.family, family))
    .flatMap((table) => table.chains.filter((c) => c.base?.type === type && c.base.hook === hook).map((chain) => ({ table, chain })));
  // Stable sort: equal priorities keep the IR's order.
  found.sort((a, b) => a.chain.base!.prio - b.chain.base!.prio);
  for (let i = 1; i < found.length; i++) {
    if (found[i]!.chain.base!.prio === found[i - 1]!.chain.base!.prio) {
      // The kernel runs the chain registered last first; the IR does not know which that is.
      const [a, b] = [found[i - 1]!, found[i]!].map((x) => `${x.table.family} ${x.table.name} ${x.chain.name}`);
      notes.push(`${a} and ${b} share priority ${found[i]!.chain.base!.prio} on ${hook}: the kernel orders them by load time; listed order assumed`);
    }
  }
  return found;
}

type NatStmt = Extract<Stmt, { dnat: unknown } | { snat: unknown } | { masquerade: unknown }>;

type ChainResult =
  | { kind: 'accept' | 'drop' | 'reject'; origin?: Origin }
  | { kind: 'nat'; stmt: NatStmt; origin: Origin };

type RuleResult =
  | { kind: 'continue'; outcome: 'no match' | 'matched' | 'map miss'; failed?: string }
  | { kind: 'accept' | 'drop' | 'reject' | 'return' }
  | { kind: 'jump' | 'goto'; target: string }
  | { kind: 'nat'; stmt: NatStmt };

/** The kernel refuses rulesets that jump deeper than this (NFT_JUMP_STACK_SIZE). */
const JUMP_STACK_SIZE = 16;
/** The kernel refuses chain loops at load time; a walk this long means the IR has one. */
const MAX_RULES_WALKED = 1_000_000;

function runBaseChain(ctx: Ctx, table: Table, base: Chain): ChainResult {
  const byName = new Map(table.chains.map((c) => [c.name, c]));
  // Where `return` (or the end of a chain) goes back to; goto pushes nothing, so the end of a
  // goto'd chain returns to the caller of the chain that did the goto, or to the base policy.
  const stack: { chain: Chain; next: number }[] = [];
  const step = (chain: Chain, s: Omit<Step, 'family' | 'table' | 'chain'>) =>
    ctx.steps.push({ family: table.family, table: table.name, chain: chain.name, ...s });
  let chain = base;
  let i = 0;
  let walked = 0;
  for (;;) {
    const rule = chain.rules[i];
    let r: RuleResult;
    if (rule === undefined) {
      r = { kind: 'return' };
      if (stack.length > 0) step(chain, { text: 'end of chain', outcome: 'return' });
    } else {
      if (++walked > MAX_RULES_WALKED) throw bug(`${table.name}: the walk from ${base.name} does not end (a chain loop the kernel would refuse)`, chain.name);
      const effects: string[] = [];
      ctx.element = undefined;
      r = evalRule(ctx, rule, table, effects);
      step(chain, {
        rule: i,
        text: rule.stmts.map(printStmt).join(' '),
        origin: rule.origin,
        outcome: outcomeOf(r),
        ...(r.kind === 'continue' && r.failed !== undefined ? { failed: r.failed } : {}),
        ...(effects.length > 0 ? { effects } : {}),
        ...(r.kind !== 'continue' && ctx.element ? { element: ctx.element } : {}),
      });
    }
    switch (r.kind) {
      case 'continue':
        i++;
        continue;
      case 'accept':
      case 'drop':
      case 'reject':
        // A verdict reached through a set element is that element's: the forward, not the map.
        return { kind: r.kind, origin: ctx.element ?? rule!.origin };
      case 'nat':
        return { kind: 'nat', stmt: r.stmt, origin: ctx.element ?? rule!.origin };
      case 'return': {
        const back = stack.pop();
        if (back === undefined) {
          const policy = base.base!.policy;
          step(base, { text: `policy ${policy}`, outcome: 'policy' });
          return { kind: policy };
        }
        chain = back.chain;
        i = back.next;
        continue;
      }
      case 'jump':
      case 'goto': {
        const target = byName.get(r.target);
        if (target === undefined) throw bug(`${table.name}/${chain.name}: ${r.kind} to a chain that does not exist`, r.target);
        if (target.base) throw bug(`${table.name}/${chain.name}: ${r.kind} to base chain ${r.target} (the kernel refuses it)`, r.target);
        if (r.kind === 'jump') {
          if (stack.length >= JUMP_STACK_SIZE) throw bug(`${table.name}: jumps nest deeper than ${JUMP_STACK_SIZE} (the kernel refuses it)`, r.target);
          stack.push({ chain, next: i + 1 });
        }
        chain = target;
        i = 0;
        continue;
      }
    }
  }
}

function outcomeOf(r: RuleResult): Outcome {
  switch (r.kind) {
    case 'continue':
      return r.outcome;
    case 'accept':
    case 'drop':
    case 'reject':
      return 'verdict';
    default:
      return r.kind;
  }
}

// ---- Statements ------------------------------------------------------------------------------

function evalRule(ctx: Ctx, rule: Rule, table: Table, effects: string[]): RuleResult {
  for (const s of rule.stmts) {
    const key = onlyKey(s, 'statement') as StmtKind;
    switch (key) {
      case 'match': {
        const m = (s as Extract<Stmt, { match: unknown }>).match;
        if (!evalMatch(ctx, table, m)) return { kind: 'continue', outcome: 'no match', failed: printStmt(s) };
        break;
      }
      case 'counter':
      case 'log':
        // Side effects only: the packet goes on to the next statement.
        effects.push(printStmt(s));
        break;
      case 'ct helper': {
        const h = (s as Extract<Stmt, { 'ct helper': unknown }>)['ct helper'];
        if (typeof h === 'string') {
          effects.push(printStmt(s));
          break;
        }
        // The helper looked up by the packet: a miss (or a failed dependency) ends the rule.
        const left = readLeft(ctx, h.map.key);
        if (left === undefined) return { kind: 'continue', outcome: 'no match', failed: printStmt(s) };
        const hit = h.map.data.set.find(([el]) => elementMatches(left, el));
        if (hit === undefined) return { kind: 'continue', outcome: 'map miss', failed: printStmt(s) };
        effects.push(printStmt({ 'ct helper': hit[1] }));
        break;
      }
      case 'limit':
        if (ctx.env.underLimit === false) {
          note(ctx, `${printStmt(s)}: taken as over the limit (env.underLimit = false), so its rule does not match`);
          return { kind: 'continue', outcome: 'no match', failed: printStmt(s) };
        }
        break;
      case 'accept':
      case 'drop':
      case 'return':
      case 'jump':
      case 'goto':
        return verdictResult(s as Verdict);
      case 'reject':
        return { kind: 'reject' };
      case 'vmap': {
        const { key: k, data } = (s as Extract<Stmt, { vmap: unknown }>).vmap;
        if (!isSetRef(data)) throw bug('vmap data must be a named map', s);
        const left = readLeft(ctx, k);
        // A failed protocol dependency ends the rule like a failed match.
        if (left === undefined) return { kind: 'continue', outcome: 'no match', failed: printStmt(s) };
        const map = table.sets.find((x) => x.name === data.setRef);
        if (map === undefined || map.kind !== 'map') throw bug(`${table.name}: no verdict map @${data.setRef}`, s);
        const hit = map.elements.find(([el]) => elementMatches(left, el));
        // A miss is no verdict at all: the rule ends and the next rule runs.
        if (hit === undefined) return { kind: 'continue', outcome: 'map miss', failed: printStmt(s) };
        return verdictResult(hit[1]);
      }
      case 'dnat':
      case 'snat':
      case 'masquerade': {
        if (ctx.mode.kind !== 'nat') throw bug('a nat statement outside a nat chain (the kernel refuses it)', s);
        const allowed = key === 'dnat' ? 'prerouting' : 'postrouting';
        if (ctx.mode.hook !== allowed) throw bug(`${key} on ${ctx.mode.hook} (guestwall only writes it on ${allowed})`, s);
        // Map lookups load the translation before the nat expression runs; a miss ends the rule.
        const resolved = key === 'dnat' ? resolveDnat(ctx, table, s as Extract<Stmt, { dnat: unknown }>) : (s as NatStmt);
        if (resolved === undefined) return { kind: 'continue', outcome: 'map miss', failed: printStmt(s) };
        if (resolved === 'no key') return { kind: 'continue', outcome: 'no match', failed: printStmt(s) };
        const natFamily = key === 'dnat' ? (s as Extract<Stmt, { dnat: unknown }>).dnat.family : key === 'snat' ? (s as Extract<Stmt, { snat: unknown }>).snat.family : undefined;
        if (natFamily !== undefined && (natFamily === 'ip') !== (ctx.packet.family === 4)) {
          // nft_nat in an inet table skips a translation of the other family and goes on.
          note(ctx, `${printStmt(s)} does not apply to an IPv${ctx.packet.family} packet`);
          break;
        }
        return { kind: 'nat', stmt: resolved };
      }
      case 'mangle': {
        // `meta nftrace set 1` (guestwall trace's own table) decides nothing; `meta mark set meta
        // mark | BITS` sets bits that later rules and hooks read.
        const m = (s as Extract<Stmt, { mangle: unknown }>).mangle;
        if (m.key.meta.key === 'nftrace') break;
        const v = m.value as { '|': [Expr, number] };
        const [from, bits] = v['|'];
        if (!isObj(from) || !('meta' in from) || from.meta.key !== 'mark') throw bug('meta mark set from something but meta mark', s);
        ctx.packet = { ...ctx.packet, mark: ((ctx.packet.mark ?? 0) | bits) >>> 0 };
        effects.push(printStmt(s));
        break;
      }
      default:
        // Every kind is handled above: a new one fails the build here.
        throw bug('a statement the evaluator does not know', key satisfies never);
    }
  }
  return { kind: 'continue', outcome: 'matched' };
}

function verdictResult(v: Verdict): RuleResult {
  const key = onlyKey(v, 'verdict');
  switch (key) {
    case 'accept':
    case 'drop':
    case 'return':
      return { kind: key };
    case 'jump':
    case 'goto': {
      const target = ((v as Record<string, unknown>)[key] as { target?: unknown } | null)?.target;
      if (typeof target !== 'string') throw bug(`${key} without a target chain`, v);
      return { kind: key, target };
    }
    default:
      throw bug('a verdict the evaluator does not know', v);
  }
}

// ---- Reading the packet ----------------------------------------------------------------------

/** A value read from the packet, typed by what the kernel compares it as. */
type Datum =
  | { kind: 'addr'; family: IpFamily; value: bigint }
  | { kind: 'ifname'; name: string }
  | { kind: 'number'; what: string; n: number; names?: Readonly<Record<string, number>> }
  /** A bitmask; `exact` when the packet description knows every bit (ct state, not ct status). */
  | { kind: 'flags'; what: string; bits: readonly string[]; known: readonly string[]; exact: boolean }
  | { kind: 'symbol'; what: string; s: string; known: readonly string[] }
  | { kind: 'bool'; b: boolean }
  /** A MAC address; absent = the one declared for the port (any element of the port matches). */
  | { kind: 'mac'; mac?: string }
  /** Raw payload bits, compared as one big integer. */
  | { kind: 'raw'; what: string; value: bigint }
  /** Bytes a packet description does not say (th dport of ICMP): comparing them is a bug. */
  | { kind: 'opaque'; what: string };

/** The packet fields an expression reads; undefined when its protocol dependency fails. */
function readLeft(ctx: Ctx, e: Expr): Datum[] | undefined {
  if (isObj(e) && 'concat' in e) {
    const parts = (e as { concat: Expr[] }).concat;
    if (parts.length < 2) throw bug('concatenation of fewer than two expressions', e);
    const out: Datum[] = [];
    for (const part of parts) {
      if (isObj(part) && 'concat' in part) throw bug('nested concatenation', e);
      const d = readOne(ctx, part);
      if (d === undefined) return undefined;
      out.push(d);
    }
    return out;
  }
  const d = readOne(ctx, e);
  return d === undefined ? undefined : [d];
}

function readOne(ctx: Ctx, e: Expr): Datum | undefined {
  if (!isObj(e)) throw bug('the left side of a match must read the packet, not be a value', e);
  const p = ctx.packet;
  const key = onlyKey(e, 'expression');
  switch (key) {
    case 'payload': {
      const pl = (e as Extract<Expr, { payload: unknown }>).payload;
      if ('base' in pl) {
        // Raw bits have no protocol dependency; guestwall reads only the ND target this way.
        if (pl.base === 'th' && pl.offset === 64 && pl.len === 128 && p.proto === 'icmpv6' && p.icmpType === 'nd-neighbor-advert') {
          const r = parseHostAddress(p.ndTarget ?? p.saddr);
          if (!r.ok || r.value.family !== 6) throw packetError(`ndTarget '${p.ndTarget}' is not an IPv6 address`);
          return { kind: 'raw', what: 'ND target', value: r.value.value };
        }
        throw bug('raw payload bits the evaluator cannot read from this packet', e);
      }
      const { protocol, field } = pl;
      // nft adds the dependency (meta nfproto / l4proto) itself: `tcp dport` never matches UDP.
      switch (protocol) {
        case 'ether': {
          if (field === 'saddr') return p.smac === undefined ? { kind: 'mac' } : { kind: 'mac', mac: p.smac.toLowerCase() };
          if (field === 'type') return { kind: 'symbol', what: 'ether type', s: p.family === 4 ? 'ip' : 'ip6', known: ETHER_TYPES };
          break;
        }
        // A packet description is always IP: ARP fields fail their dependency.
        case 'arp':
          return undefined;
        case 'ip':
        case 'ip6': {
          if (p.family !== (protocol === 'ip' ? 4 : 6)) return undefined;
          if (field === 'saddr') return { kind: 'addr', family: p.family, value: ctx.saddr };
          if (field === 'daddr') return { kind: 'addr', family: p.family, value: ctx.daddr };
          break;
        }
        case 'tcp':
        case 'udp': {
          if (p.proto !== protocol) return undefined;
          if (field === 'sport' || field === 'dport') {
            const n = p[field];
            if (n === undefined) throw packetError(`a rule reads ${protocol} ${field}, and the packet has no ${field}`);
            return { kind: 'number', what: `${protocol} ${field}`, n };
          }
          if (protocol === 'tcp' && field === 'flags') return { kind: 'flags', what: 'tcp flags', bits: tcpFlags(p), known: TCP_FLAGS, exact: true };
          break;
        }
        case 'th': {
          // The raw transport header: no dependency of its own. Only TCP and UDP ports are known;
          // guestwall reads it after `meta l4proto` in one key, so other protocols never compare it.
          if (field !== 'sport' && field !== 'dport') break;
          if (p.proto !== 'tcp' && p.proto !== 'udp') return { kind: 'opaque', what: `th ${field} of ${p.proto}` };
          const n = p[field];
          if (n === undefined) throw packetError(`a rule reads th ${field}, and the packet has no ${field}`);
          return { kind: 'number', what: `th ${field}`, n };
        }
        case 'icmp':
        case 'icmpv6': {
          if (p.proto !== protocol || p.family !== (protocol === 'icmp' ? 4 : 6)) return undefined;
          if (field === 'type') {
            const names = protocol === 'icmp' ? ICMP_TYPE : ICMPV6_TYPE;
            if (p.icmpType === undefined) throw packetError(`a rule reads ${protocol} type, and the packet has no icmpType`);
            return { kind: 'number', what: `${protocol} type`, n: symbolValue(names, p.icmpType, `${protocol} type`), names };
          }
          break;
        }
      }
      throw bug('a payload field the evaluator does not know', e);
    }
    case 'meta': {
      const k = (e as Extract<Expr, { meta: unknown }>).meta.key;
      switch (k) {
        // No device: the kernel compares an empty name (and `iif`/`oif` do not match at all).
        case 'iifname':
          return { kind: 'ifname', name: p.iifname ?? '' };
        case 'oifname':
          return { kind: 'ifname', name: p.oifname ?? '' };
        case 'iif':
          return p.iifname === undefined ? undefined : { kind: 'ifname', name: p.iifname };
        case 'oif':
          return p.oifname === undefined ? undefined : { kind: 'ifname', name: p.oifname };
        case 'l4proto':
          return { kind: 'number', what: 'meta l4proto', n: L4PROTO[p.proto === 'icmpv6' ? 'ipv6-icmp' : p.proto]!, names: L4PROTO };
        case 'nfproto':
          return { kind: 'number', what: 'meta nfproto', n: NFPROTO[p.family === 4 ? 'ipv4' : 'ipv6']!, names: NFPROTO };
        case 'mark':
          return { kind: 'number', what: 'meta mark', n: p.mark ?? 0 };
        default:
          throw bug(`meta ${k}: a packet description does not say`, e);
      }
    }
    case 'ct': {
      const { key: k, dir } = (e as Extract<Expr, { ct: unknown }>).ct;
      if (dir !== undefined) throw bug('ct with a direction: a packet description does not say', e);
      if (k === 'state') return { kind: 'flags', what: 'ct state', bits: [p.ct.state], known: CT_STATES, exact: true };
      if (k === 'status') {
        // An invalid packet has no conntrack entry: every ct key but state fails to read.
        if (p.ct.state === 'invalid') return undefined;
        return { kind: 'flags', what: 'ct status', bits: p.ct.status ?? [], known: CT_STATUS, exact: false };
      }
      throw bug(`ct ${k}: a packet description does not say`, e);
    }
    case '&': {
      const [inner, mask] = (e as Extract<Expr, { '&': unknown }>)['&'];
      const d = readOne(ctx, inner);
      if (d === undefined) return undefined;
      if (typeof mask === 'number') {
        if (d.kind !== 'number' || d.what !== 'meta mark') throw bug('& with a number on something but meta mark', e);
        return { kind: 'number', what: `meta mark & 0x${mask.toString(16)}`, n: (d.n & mask) >>> 0 };
      }
      if (d.kind !== 'flags' || !d.exact) throw bug('& on something that is not a fully known bitmask', e);
      for (const f of mask) if (!d.known.includes(f)) throw bug(`${d.what} has no flag ${f}`, e);
      return { ...d, what: `${d.what} & (${mask.join(' | ')})`, bits: d.bits.filter((b) => mask.includes(b)) };
    }
    case 'fib': {
      const { result, flags } = (e as Extract<Expr, { fib: unknown }>).fib;
      const f = [...flags].sort().join(' ');
      if (result === 'oif' && f === 'iif saddr') {
        if (p.iifname === undefined) throw bug('fib saddr . iif on a packet without an input interface (the kernel refuses it on output)', e);
        const back = ctx.env.routeBack ? ctx.env.routeBack(p) : true;
        if (!ctx.env.routeBack) note(ctx, `assumed a route back to ${p.saddr} via ${p.iifname} exists (fib saddr . iif; pass env.routeBack to say otherwise)`);
        return { kind: 'bool', b: back };
      }
      if (result === 'oifname' && f === 'saddr') {
        if (!ctx.env.routeOut) note(ctx, `assumed the best route to ${p.saddr} leaves through ${p.iifname ?? 'no interface'} (fib saddr oifname; pass env.routeOut to say otherwise)`);
        return { kind: 'ifname', name: ctx.env.routeOut ? ctx.env.routeOut(p) : p.iifname ?? '' };
      }
      if (result === 'type' && f === 'daddr') return { kind: 'symbol', what: 'fib daddr type', s: addressType(ctx), known: FIB_TYPES };
      throw bug('a fib lookup the evaluator does not know', e);
    }
    default:
      throw bug('an expression the evaluator does not know', e);
  }
}

/** `fib daddr type`: local per env.isLocal, else what the address itself says. */
function addressType(ctx: Ctx): string {
  const { packet: p, daddr } = ctx;
  if (ctx.env.isLocal ? ctx.env.isLocal(p.daddr) : false) return 'local';
  if (!ctx.env.isLocal) note(ctx, `assumed ${p.daddr} is not one of the host's addresses (fib daddr type; pass env.isLocal to say otherwise)`);
  if (p.family === 4) {
    if (daddr >> 28n === 0xen) return 'multicast';
    if (daddr === 0xffffffffn) return 'broadcast';
  } else if (daddr >> 120n === 0xffn) return 'multicast';
  return 'unicast';
}

// ---- Matching --------------------------------------------------------------------------------

function evalMatch(ctx: Ctx, table: Table, m: { op: MatchOp; left: Expr; right: Expr }): boolean {
  const left = readLeft(ctx, m.left);
  // The dependency is its own comparison in the kernel: `tcp dport != 22` does not match UDP either.
  if (left === undefined) return false;
  const { op, right } = m;
  const lookup = (elements: readonly SetElement[]) => {
    const found = elements.some((el) => elementMatches(left, el));
    if (op === '==' || op === 'in') return found;
    if (op === '!=') return !found;
    throw bug(`a set lookup with operator ${op}`, m);
  };
  if (isSetRef(right)) {
    const set = table.sets.find((s) => s.name === right.setRef);
    if (set === undefined) throw bug(`${table.name}: no set @${right.setRef}`, m);
    if (set.kind === 'set' && set.origins !== undefined && (op === '==' || op === 'in')) return setLookup(ctx, left, set);
    // A map's keys can be matched like a set's elements.
    return lookup(set.kind === 'set' ? set.elements : set.elements.map(([k]) => k));
  }
  if (isObj(right) && 'set' in right) {
    if (!Array.isArray(right.set) || right.set.length === 0) throw bug('empty anonymous set', m);
    return lookup(right.set);
  }
  if (left.length > 1) {
    if (op === '==' || op === 'in') return elementMatches(left, right);
    if (op === '!=') return !elementMatches(left, right);
    throw bug(`${op} on a concatenation`, m);
  }
  const d = left[0]!;
  if (Array.isArray(right) || (d.kind === 'flags' && typeof right === 'string')) return flagsMatch(d, op, Array.isArray(right) ? right : [right], m);
  if (typeof right === 'boolean') {
    if (d.kind !== 'bool' || (op !== '==' && op !== '!=')) throw bug('a boolean compares only with fib ... exists/missing', m);
    return (d.b === right) === (op === '==');
  }
  switch (op) {
    case '==':
    case 'in':
      return elementMatches(left, right as SetElement);
    case '!=':
      return !elementMatches(left, right as SetElement);
    case '<':
    case '>':
    case '<=':
    case '>=': {
      if (d.kind !== 'number' || isObj(right)) throw bug(`${op} compares numbers only`, m);
      const a = d.n;
      const b = numberValue(d, right as Value);
      return op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b;
    }
    default:
      throw bug('unknown match operator', m);
  }
}

function single(left: Datum[], shape: unknown): Datum {
  if (left.length !== 1) throw bug('a concatenation compares only with a set of concatenations', shape);
  return left[0]!;
}

/** `ct state established,related` (any bit set), `== x` (exactly these bits), `!= x` (not exactly). */
function flagsMatch(d: Datum, op: MatchOp, flags: readonly string[], shape: unknown): boolean {
  if (d.kind !== 'flags' || flags.length === 0) throw bug('a flag list needs a bitmask field such as ct state', shape);
  for (const f of flags) if (!d.known.includes(f)) throw bug(`${d.what} has no flag ${f}`, shape);
  if (op === 'in') return flags.some((f) => d.bits.includes(f));
  if (!d.exact) throw bug(`${d.what} ${op} compares every bit, and a packet description knows only dnat and snat`, shape);
  const same = flags.length === d.bits.length && flags.every((f) => d.bits.includes(f));
  if (op === '==') return same;
  if (op === '!=') return !same;
  throw bug(`${op} on a bitmask`, shape);
}

/** Whether the packet's value(s) equal, fall in or are covered by one constant or set element. */
function elementMatches(left: Datum[], el: SetElement | Expr): boolean {
  if (isObj(el) && 'concat' in el) {
    const parts = (el as { concat: SetElement[] }).concat;
    if (parts.length !== left.length) throw bug(`a concatenation of ${parts.length} values where ${left.length} are expected`, el);
    return parts.every((part, i) => valueMatches(left[i]!, part));
  }
  return valueMatches(single(left, el), el as SetElement);
}

function valueMatches(d: Datum, el: SetElement): boolean {
  if (isObj(el) && 'concat' in el) throw bug('nested concatenation', el);
  if (isObj(el) && 'prefix' in el) {
    if (d.kind !== 'addr') throw bug(`a prefix compared with ${d.kind}`, el);
    const net = parseAddr(`${el.prefix.addr}/${el.prefix.len}`, d.family, el).network;
    return contains(net, d.value, d.family);
  }
  if (isObj(el) && 'range' in el) {
    const [lo, hi] = el.range;
    if (d.kind === 'raw') return rawValue(lo, el) <= d.value && d.value <= rawValue(hi, el);
    if (d.kind === 'addr') return parseAddr(lo, d.family, el).value <= d.value && d.value <= parseAddr(hi, d.family, el).value;
    if (d.kind === 'number') return numberValue(d, lo) <= d.n && d.n <= numberValue(d, hi);
    throw bug(`a range compared with ${d.kind}`, el);
  }
  if (isObj(el)) throw bug('a constant the evaluator does not know', el);
  switch (d.kind) {
    case 'addr': {
      const a = parseAddr(el, d.family, el);
      return a.len === (d.family === 4 ? 32 : 128) ? a.value === d.value : contains(a.network, d.value, d.family);
    }
    case 'ifname':
      if (typeof el !== 'string') throw bug('an interface name must be a string', el);
      // nft reads a trailing * in an interface name as "any name starting with".
      return el.endsWith('*') ? d.name.startsWith(el.slice(0, -1)) : d.name === el;
    case 'number':
      return numberValue(d, el) === d.n;
    case 'flags':
      return flagsMatch(d, '==', [String(el)], el);
    case 'symbol':
      if (typeof el !== 'string' || !d.known.includes(el)) throw bug(`${d.what} has no value ${String(el)}`, el);
      return el === d.s;
    case 'bool':
      if (typeof el !== 'boolean') throw bug('fib exists/missing compares with a boolean', el);
      return el === d.b;
    case 'mac':
      if (typeof el !== 'string' || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(el)) throw bug('not a MAC address', el);
      // No MAC in the packet description: it is the declared one, which is the port's element.
      return d.mac === undefined || d.mac === el.toLowerCase();
    case 'raw':
      return rawValue(el, el) === d.value;
    case 'opaque':
      throw bug(`${d.what} is not known from a packet description`, el);
  }
}

function rawValue(v: Value, shape: unknown): bigint {
  if (typeof v === 'string' && /^0x[0-9a-f]+$/i.test(v)) return BigInt(v);
  if (typeof v === 'number') return BigInt(v);
  throw bug('raw payload compared with something that is not a number', shape);
}

/** The TCP flags a packet carries: a new connection's first packet is a bare SYN. */
function tcpFlags(p: Packet): string[] {
  return p.tcpFlags ?? (p.ct.state === 'new' ? ['syn'] : ['ack']);
}

function numberValue(d: Extract<Datum, { kind: 'number' }>, v: Value): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  if (typeof v === 'string' && d.names) return symbolValue(d.names, v, d.what);
  // Service names (`ssh`) depend on the host's /etc/services: guestwall writes numbers.
  throw bug(`${d.what} compared with ${JSON.stringify(v)}`, v);
}

function symbolValue(names: Readonly<Record<string, number>>, name: string, what: string): number {
  const n = names[name];
  if (n === undefined) throw new Error(`evaluate: ${what} has no value '${name}'; known: ${Object.keys(names).join(', ')}`);
  return n;
}

function parseAddr(text: Value, family: IpFamily, shape: unknown) {
  const r = typeof text === 'string' ? parseHostAddress(text) : undefined;
  if (!r?.ok) throw bug('not an address', shape);
  if (r.value.family !== family) throw bug(`an IPv${r.value.family} address compared with an IPv${family} field`, shape);
  return r.value;
}

// ---- Lookups in sets and maps that stand for policy entries (port forwards) ------------------

/** A set lookup that also records which policy entry the element it hit came from. */
function setLookup(ctx: Ctx, left: Datum[], set: NamedSet): boolean {
  const i = set.elements.findIndex((el) => elementMatches(left, el));
  if (i < 0) return false;
  ctx.element = set.origins?.[i];
  return true;
}

/** The value a data map holds for the packet's key; undefined on a miss, 'no key' when the key cannot be read (a failed protocol dependency). */
function dataMapLookup(ctx: Ctx, table: Table, lookup: MapLookup): Value | undefined | 'no key' {
  const { key, data } = lookup.map;
  if (!isSetRef(data)) throw bug('map lookup data must be a named map', lookup);
  const map = table.sets.find((x) => x.name === data.setRef);
  if (map === undefined || map.kind !== 'datamap') throw bug(`${table.name}: no data map @${data.setRef}`, lookup);
  const left = readLeft(ctx, key);
  if (left === undefined) return 'no key';
  const i = map.elements.findIndex(([el]) => elementMatches(left, el));
  if (i < 0) return undefined;
  ctx.element = map.origins?.[i] ?? ctx.element;
  return map.elements[i]![1];
}

/** A dnat whose address (and port) come from maps, with the looked-up values in place. */
function resolveDnat(ctx: Ctx, table: Table, s: Extract<Stmt, { dnat: unknown }>): NatStmt | undefined | 'no key' {
  const { family, addr, port } = s.dnat;
  if (typeof addr === 'string' && !(isObj(port) && 'map' in port)) return s;
  if (typeof addr === 'string') throw bug('a port looked up in a map needs its address looked up too', s);
  const a = dataMapLookup(ctx, table, addr);
  if (a === undefined || a === 'no key') return a;
  if (typeof a !== 'string') throw bug('a dnat address map holds addresses', s);
  if (!(isObj(port) && 'map' in port)) return { dnat: { family, addr: a, ...(port !== undefined ? { port } : {}) } };
  const p = dataMapLookup(ctx, table, port);
  if (p === undefined || p === 'no key') return p;
  if (typeof p !== 'number') throw bug('a dnat port map holds port numbers', s);
  return { dnat: { family, addr: a, port: p } };
}

// ---- NAT -------------------------------------------------------------------------------------

function translate(ctx: Ctx, s: NatStmt, origin: Origin): { packet: Packet; translation: NatTranslation } {
  const p = ctx.packet;
  const status = (flag: 'dnat' | 'snat') => ({ ...p.ct, status: [...new Set([...(p.ct.status ?? []), flag])] });
  if ('dnat' in s) {
    const { addr, port } = s.dnat;
    if (typeof addr !== 'string' || (isObj(port) && 'map' in port)) throw bug('dnat with a map lookup left in it', s);
    const to = formatAddress(parseAddr(addr, p.family, s).value, p.family);
    let dport = p.dport;
    if (dport !== undefined && typeof port === 'number') dport = port;
    else if (dport !== undefined && isObj(port) && 'range' in port) {
      const [lo, hi] = port.range;
      // The kernel keeps a port already in the range, else picks a free one from it.
      if (dport < lo || dport > hi) {
        note(ctx, `${printStmt(s)}: port ${dport} is outside the range; assumed the kernel picks ${lo}`);
        dport = lo;
      }
    }
    return {
      packet: { ...p, daddr: to, ...(dport !== undefined ? { dport } : {}), ct: status('dnat') },
      translation: { kind: 'dnat', origin, addr: to, ...(dport !== undefined ? { port: dport } : {}) },
    };
  }
  if ('snat' in s) {
    const to = formatAddress(parseAddr(s.snat.addr, p.family, s).value, p.family);
    return { packet: { ...p, saddr: to, ct: status('snat') }, translation: { kind: 'snat', origin, addr: to } };
  }
  const oif = p.oifname!;
  const picked = ctx.env.interfaceAddress?.(oif, p.family);
  if (picked === undefined) {
    note(ctx, `masquerade picks an address of ${oif}, which is not known here (pass env.interfaceAddress); saddr kept`);
    return { packet: { ...p, ct: status('snat') }, translation: { kind: 'masquerade', origin } };
  }
  const to = formatAddress(parseAddr(picked, p.family, picked).value, p.family);
  return { packet: { ...p, saddr: to, ct: status('snat') }, translation: { kind: 'masquerade', origin, addr: to } };
}

// ---- The packet itself -----------------------------------------------------------------------

/** Which interfaces a packet has at each hook: the kernel knows no input device for the host's own packets, and no output device before routing. */
const INTERFACES: Record<Path | NatHook, { iif: 'required' | 'absent' | 'either'; oif: 'required' | 'absent' }> = {
  prerouting: { iif: 'required', oif: 'absent' },
  input: { iif: 'required', oif: 'absent' },
  forward: { iif: 'required', oif: 'required' },
  output: { iif: 'absent', oif: 'required' },
  postrouting: { iif: 'either', oif: 'required' },
};

/** A packet the caller described inconsistently is a bug in the caller: say what is wrong. */
function checkPacket(p: Packet, where: Path | NatHook): { saddr: bigint; daddr: bigint } {
  const addr = (which: 'saddr' | 'daddr') => {
    const r = parseHostAddress(p[which]);
    if (!r.ok || r.value.len !== (r.value.family === 4 ? 32 : 128) || p[which].includes('/')) throw packetError(`${which} '${p[which]}' is not an address`);
    if (r.value.family !== p.family) throw packetError(`${which} '${p[which]}' is not an IPv${p.family} address`);
    return r.value.value;
  };
  const want = INTERFACES[where];
  for (const [field, rule] of [['iifname', want.iif], ['oifname', want.oif]] as const) {
    if (rule === 'required' && !p[field]) throw packetError(`a packet on ${where} needs an ${field}`);
    if (rule === 'absent' && p[field] !== undefined) throw packetError(`a packet on ${where} has no ${field} (the kernel has no such device yet)`);
  }
  const ports = p.proto === 'tcp' || p.proto === 'udp';
  for (const field of ['sport', 'dport'] as const) {
    const n = p[field];
    if (n === undefined) continue;
    if (!ports) throw packetError(`a ${p.proto} packet has no ${field}`);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw packetError(`${field} ${n} is not a port`);
  }
  if (p.icmpType !== undefined && ports) throw packetError(`a ${p.proto} packet has no icmpType`);
  if ((p.proto === 'icmp' && p.family !== 4) || (p.proto === 'icmpv6' && p.family !== 6)) {
    throw packetError(`${p.proto} goes with IPv${p.proto === 'icmp' ? 4 : 6}, not IPv${p.family}`);
  }
  return { saddr: addr('saddr'), daddr: addr('daddr') };
}

// ---- Small helpers ---------------------------------------------------------------------------

function note(ctx: Ctx, text: string): void {
  if (!ctx.notes.includes(text)) ctx.notes.push(text);
}

function isObj(x: unknown): x is object {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function onlyKey(x: unknown, what: string): string {
  if (!isObj(x)) throw bug(`${what} is not an object`, x);
  const keys = Object.keys(x);
  if (keys.length !== 1) throw bug(`${what} must have exactly one key`, x);
  return keys[0]!;
}

function packetError(what: string): Error {
  return new Error(`evaluate: ${what}`);
}

function bug(what: string, shape: unknown): Error {
  return new Error(`evaluate: ${what}: ${JSON.stringify(shape, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))} (a bug in the ruleset or the evaluator)`);
}
