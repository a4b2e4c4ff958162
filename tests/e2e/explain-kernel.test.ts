// explain against the kernel: generated policies and packets, each packet predicted by
// evaluateNat + evaluate and then sent for real through the compiled ruleset in a throwaway
// namespace topology built from the policy (tests/support/topology.ts). Every disagreement is a
// bug in one of them; fast-check shrinks it and the failure prints the policy, the packet,
// explain's steps and what the kernel did.
//
// Packets come from the far side of a zone interface (prerouting, then input or forward) or,
// one in eight, from the host itself (output); they go to other far sides, guests, the host's
// addresses and the public addresses and ports of forwards, TCP and UDP on ports the policy
// names or any port, ICMP echo, IPv4 and IPv6.
//
// What is compared, per packet: delivered or not (TCP: a connection accepted; UDP: a datagram
// received; ICMP: an echo reply, sent with a raw socket since ping is not always installed), the
// destination address and port the receiver saw (the NAT'd destination), and the rules that
// decided: the kernel's rule counters (filter, dstnat, srcnat) must move on exactly the rules whose
// counter explain says the packet reaches. The counters are also how a drop is known at once.
//
// What the topology cannot express, and so is skipped (and counted in the summary):
//  - packets between two addresses on one far side, e.g. guests on one bridge talking to each
//    other: the far side of a bridge is one veth here, not a bridge with a port per guest, so
//    they never cross the host (tests/e2e/bridge-packets.test.ts sends those on a real bridge);
//  - packets to an address nothing in the topology owns (a public forward address not taken
//    by DNAT is owned by the host, so those still run): the kernel has no route for them;
//  - packets whose path meets a rate-limited rule that earlier packets may have spent.
// Packets from a host interface or bridge come from its far side, which also holds the guests
// bridged onto it; a routed guest's far side has only the guest's own addresses.
//
// Knobs: GW_DIFF_POLICIES (default 50) x GW_DIFF_PACKETS (default 20), GW_DIFF_SEED to replay
// another seed, GW_DIFF_SHRINK_S (default 300) to bound the time spent shrinking a failure.
// Everything runs in namespaces named gw-x-*, deleted after each policy and again in afterAll.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TABLE } from '../../src/compile/index.js';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { type EvalEnv, type Evaluation, type NatEvaluation, type Packet, type Step, evaluate, evaluateNat } from '../../src/explain/evaluate.js';
import { HOST_ZONE, type HostModel } from '../../src/model/host.js';
import { toNftJson } from '../../src/nft/json.js';
import { printStmt } from '../../src/nft/print.js';
import type { Rule, Ruleset } from '../../src/nft/ruleset.js';
import { formatDiagnostic } from '../../src/policy/diagnostics.js';
import { parseHostAddress } from '../../src/policy/addr.js';
import { policyArb, policyYaml } from '../support/gen-policy.js';
import { kernelTestUnavailable } from '../support/kernel.js';
import { type Agent, type Link, type Topology, type TopologyPlan, buildTopology, disposeAllTopologies, familyOf, topologyId, topologyPlan } from '../support/topology.js';

const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));
const skipReason = kernelTestUnavailable() ?? (onPath('python3') ? undefined : 'needs python3 on PATH to send and receive packets');
const skipped = skipReason ? ` (skipped: ${skipReason})` : '';

const POLICIES = Number(process.env.GW_DIFF_POLICIES ?? 50);
const PACKETS = Number(process.env.GW_DIFF_PACKETS ?? 20);
const SEED = Number(process.env.GW_DIFF_SEED ?? 0x6578706c);
const SHRINK_MS = Number(process.env.GW_DIFF_SHRINK_S ?? 300) * 1000;

/** A source port from the kernel's ephemeral range, for the packets the agents send. */
const EPHEMERAL_PORT = 40000;

/** Nothing counted and nothing arrived for this long after sending: dropped outside the counted rules. */
const QUIET_MS = 1_000;
/** The sender's agent has not even reported sending after this long: give up on it. */
const SEND_MS = 10_000;
/** Counted as accepted: this long for the receiver to see it before calling it lost. */
const DELIVERY_MS = 2_000;

// ---- Packets: planned by fast-check, resolved against the policy's topology ---------------------

type Aim = 'far side' | 'guest' | 'host' | 'forward';

interface PacketPlan {
  /** The host itself sends (the output path), else the far side of link `from`. */
  fromHost: boolean;
  from: number;
  src: number;
  family: 4 | 6;
  aim: Aim;
  ix: number;
  addr: number;
  proto: 'tcp' | 'udp' | 'icmp';
  namedPort: boolean;
  portIx: number;
  randomPort: number;
}

const packetPlanArb: fc.Arbitrary<PacketPlan> = fc.record({
  fromHost: fc.nat(7).map((n) => n === 7),
  from: fc.nat(63),
  src: fc.nat(15),
  family: fc.constantFrom(4 as const, 6 as const),
  aim: fc.constantFrom<Aim>('far side', 'host', 'forward', 'guest'),
  ix: fc.nat(63),
  addr: fc.nat(15),
  proto: fc.oneof({ weight: 4, arbitrary: fc.constant('tcp' as const) }, { weight: 4, arbitrary: fc.constant('udp' as const) }, { weight: 1, arbitrary: fc.constant('icmp' as const) }),
  namedPort: fc.boolean(),
  portIx: fc.nat(255),
  randomPort: fc.integer({ min: 1, max: 65535 }),
});

/** Who sends: the far side of a link (its packets come in on `ifname`), or the host itself. */
interface Sender {
  ns: string;
  ifname?: string;
  zone: string;
  what: string;
  addresses: string[];
}

const linkSender = (l: Link): Sender => ({ ns: l.ns, ifname: l.ifname, zone: l.zone, what: `the far side of ${l.ifname}`, addresses: l.addresses });
const hostSender = (topo: TopologyPlan): Sender => ({ ns: topo.host, zone: HOST_ZONE, what: 'the host', addresses: [...topo.local].sort() });

/** One packet, resolved: who sends it from where, to what. */
interface Probe {
  from: Sender;
  family: 4 | 6;
  saddr: string;
  daddr: string;
  proto: 'tcp' | 'udp' | 'icmp';
  dport?: number;
  /** What the plan aimed at, for the report. */
  aim: string;
}

const pick = <T>(list: readonly T[], ix: number): T | undefined => (list.length === 0 ? undefined : list[ix % list.length]);
const canonical = (a: string): string => {
  const r = parseHostAddress(a);
  if (!r.ok) throw new Error(`not an address: ${a}`);
  return r.value.addr;
};
const ofFamily = (list: readonly string[], family: 4 | 6) => list.filter((a) => familyOf(a) === family);

/** Ports the policy names for a protocol (ends of ranges), and a few everybody uses. */
function namedPorts(model: HostModel, proto: 'tcp' | 'udp'): number[] {
  const ranges = [
    ...model.rules.flatMap((r) => r.traffic.flatMap((t) => (t.proto === proto ? (t.ports ?? []) : []))),
    ...model.forwards.flatMap((f) => f[proto]),
    ...model.helpers.flatMap((h) => h.ports),
  ];
  const ports = [22, 53, 80, 443, ...ranges.flatMap(([lo, hi]) => [lo, hi]), ...model.forwards.flatMap((f) => (f.toPort !== undefined ? [f.toPort] : []))];
  return [...new Set(ports)].sort((a, b) => a - b);
}

function resolvePacket(plan: PacketPlan, topo: TopologyPlan, model: HostModel): Probe | string {
  const link = pick(topo.links.filter((l) => l.addresses.length > 0), plan.from);
  if (link === undefined) return 'no far side to send from';
  const from = plan.fromHost ? hostSender(topo) : linkSender(link);
  const family = ofFamily(from.addresses, plan.family).length > 0 ? plan.family : plan.family === 4 ? 6 : 4;
  const saddr = pick(ofFamily(from.addresses, family), plan.src)!;
  let proto = plan.proto;
  let port = plan.randomPort;

  const others = topo.links.filter((l) => l.ns !== from.ns && ofFamily(l.addresses, family).length > 0);
  const local = ofFamily([...topo.local].sort(), family);
  const targets: Record<Aim, () => [string, string] | undefined> = {
    'far side': () => {
      const l = pick(others, plan.ix);
      return l && [pick(ofFamily(l.addresses, family), plan.addr)!, `the far side of ${l.ifname}`];
    },
    guest: () => {
      const addrs = model.guests.flatMap((g) => g.interfaces.flatMap((i) => ofFamily(i.addresses.map((a) => a.addr), family).map((a) => [a, `guest ${g.name}`] as [string, string])));
      return pick(addrs.filter(([a]) => topo.owners.get(a)?.ns !== from.ns), plan.ix);
    },
    host: () => {
      const a = pick(local, plan.ix);
      return a === undefined ? undefined : [a, 'the host'];
    },
    forward: () => {
      const f = pick(model.forwards, plan.ix);
      if (f === undefined) return undefined;
      const protos = (['tcp', 'udp'] as const).filter((p) => f[p].length > 0);
      proto = protos.find((p) => p === plan.proto) ?? protos[0]!;
      const ranges = f[proto as 'tcp' | 'udp'];
      const r = ranges[plan.portIx % ranges.length]!;
      if (plan.namedPort) port = [r[0], r[1], Math.floor((r[0] + r[1]) / 2)][Math.floor(plan.portIx / ranges.length) % 3]!;
      const what = `forward ${f.index + 1}`;
      if (family === 6) {
        const a = pick(f.targetV6.map(canonical), plan.addr);
        return a === undefined ? undefined : [a, `${what} (the guest's IPv6 address)`];
      }
      const fromZones = topo.links.filter((l) => f.from.includes(l.zone)).flatMap((l) => ofFamily(l.hostAddresses, 4));
      const a = pick(f.publicV4.length > 0 ? f.publicV4.map(canonical) : fromZones, plan.addr);
      return a === undefined ? undefined : [a, `${what} (a public address)`];
    },
  };
  // The host's packets to itself go over lo, and forwards are DNATed on prerouting only: both
  // are about other hooks, so the host aims at far sides.
  const aim: Aim = plan.fromHost && (plan.aim === 'host' || plan.aim === 'forward') ? 'far side' : plan.aim;
  const target = targets[aim]() ?? targets['far side']() ?? (plan.fromHost ? undefined : targets.host());
  if (target === undefined) return 'nothing to send to';
  if (aim !== 'forward' && plan.namedPort && proto !== 'icmp') port = pick(namedPorts(model, proto), plan.portIx)!;
  return { from, family, saddr, daddr: target[0], proto, ...(proto !== 'icmp' ? { dport: port } : {}), aim: target[1] };
}

function probeText(p: Probe): string {
  const to = p.dport !== undefined ? `${p.daddr} port ${p.dport}` : p.daddr;
  return `${p.proto} ${p.saddr} -> ${to} (IPv${p.family}), from ${p.from.what} (zone ${p.from.zone}), aimed at ${p.aim}`;
}

// ---- What explain predicts -------------------------------------------------------------------

/** Where a packet would be received: a namespace, the address it carries, the port. */
interface Place {
  ns: string;
  addr: string;
  port?: number;
  what: string;
}

interface Prediction {
  nat: NatEvaluation;
  path: 'input' | 'forward' | 'output';
  filter: Evaluation;
  /** Postrouting NAT, for packets the filter lets through the forward path. */
  post?: NatEvaluation;
  delivered: boolean;
  at: Place;
  /** Why delivery differs from the filter verdict, when it does. */
  because?: string;
}

function envFor(topo: TopologyPlan): EvalEnv {
  return {
    isLocal: (a) => topo.local.has(canonical(a)),
    routeBack: () => true,
    interfaceAddress: (ifname, family) => topo.links.find((l) => l.ifname === ifname)?.hostAddresses.find((a) => familyOf(a) === family),
  };
}

function placeOf(topo: TopologyPlan, addr: string, port: number | undefined): Place | undefined {
  const a = canonical(addr);
  if (topo.local.has(a)) return { ns: topo.host, addr: a, ...(port !== undefined ? { port } : {}), what: 'the host' };
  const l = topo.owners.get(a);
  return l && { ns: l.ns, addr: a, ...(port !== undefined ? { port } : {}), what: `the far side of ${l.ifname}` };
}

function predict(ruleset: Ruleset, topo: TopologyPlan, probe: Probe): Prediction | string {
  const env = envFor(topo);
  if (probe.from.ifname === undefined) return predictOutput(ruleset, topo, probe, env);
  const p0: Packet = {
    family: probe.family,
    iifname: probe.from.ifname,
    saddr: probe.saddr,
    daddr: probe.daddr,
    proto: probe.proto === 'icmp' ? (probe.family === 4 ? 'icmp' : 'icmpv6') : probe.proto,
    // The agent's sockets take an ephemeral source port (ip_local_port_range, 32768-60999): any
    // one of them fares alike against the rules, which compare source ports with service ports.
    ...(probe.dport !== undefined ? { sport: EPHEMERAL_PORT, dport: probe.dport } : { icmpType: 'echo-request' }),
    ct: { state: 'new' },
  };
  const nat = evaluateNat(ruleset, 'prerouting', p0, env);
  const p1 = nat.packet;
  const at = placeOf(topo, p1.daddr, p1.dport);
  if (at === undefined) return 'no route: nothing in the topology owns the destination';
  const link = topo.owners.get(at.addr);
  const sameSide = link?.ns === probe.from.ns;
  if (sameSide && nat.translation === undefined) return 'both ends on one far side: never crosses the host';
  if (nat.verdict === 'drop') {
    // Not produced by guestwall today; the filter would not see the packet at all.
    return { nat, path: 'forward', filter: { verdict: 'drop', steps: [], notes: [] }, delivered: false, at, because: 'the nat chain drops it' };
  }
  if (link === undefined) {
    const filter = evaluate(ruleset, 'input', p1, env);
    return { nat, path: 'input', filter, delivered: filter.verdict === 'accept', at };
  }
  const fwd: Packet = { ...p1, oifname: link.ifname };
  const filter = evaluate(ruleset, 'forward', fwd, env);
  if (filter.verdict !== 'accept') return { nat, path: 'forward', filter, delivered: false, at };
  const post = evaluateNat(ruleset, 'postrouting', fwd, env);
  if (sameSide && post.translation === undefined) {
    // Hairpin back onto the sender's own segment: without a source NAT the far side sees a
    // packet from its own address, and the kernel drops that as a martian source.
    return { nat, path: 'forward', filter, post, delivered: false, at, because: 'hairpin without source NAT: the far side drops a packet from its own address' };
  }
  return { nat, path: 'forward', filter, post, delivered: true, at };
}

/** The host's own packet: output, then postrouting; no prerouting NAT, no routing decision but the route to daddr. */
function predictOutput(ruleset: Ruleset, topo: TopologyPlan, probe: Probe, env: EvalEnv): Prediction | string {
  const at = placeOf(topo, probe.daddr, probe.dport);
  const link = at && topo.owners.get(at.addr);
  if (at === undefined || link === undefined) return 'the host to itself: over lo';
  const p: Packet = {
    family: probe.family,
    oifname: link.ifname,
    saddr: probe.saddr,
    daddr: probe.daddr,
    proto: probe.proto === 'icmp' ? (probe.family === 4 ? 'icmp' : 'icmpv6') : probe.proto,
    // The agent's sockets take an ephemeral source port (ip_local_port_range, 32768-60999): any
    // one of them fares alike against the rules, which compare source ports with service ports.
    ...(probe.dport !== undefined ? { sport: EPHEMERAL_PORT, dport: probe.dport } : { icmpType: 'echo-request' }),
    ct: { state: 'new' },
  };
  const nat: NatEvaluation = { verdict: 'accept', packet: p, steps: [], notes: ['the host sends it: no prerouting'] };
  const filter = evaluate(ruleset, 'output', p, env);
  if (filter.verdict !== 'accept') return { nat, path: 'output', filter, delivered: false, at };
  return { nat, path: 'output', filter, post: evaluateNat(ruleset, 'postrouting', p, env), delivered: true, at };
}

/** `chain#index` of the rule a step ran. */
const stepKey = (s: Step) => `${s.chain}#${s.rule}`;

/** The rules whose counter explain says the packet reaches: every statement before the counter held. */
const counted = (steps: Step[]): string[] => steps.filter((s) => s.rule !== undefined && (s.effects ?? []).includes('counter')).map(stepKey);

function ruleAt(ruleset: Ruleset, key: string): Rule | undefined {
  const [chain, i] = key.split('#');
  return ruleset.tables[0]!.chains.find((c) => c.name === chain)?.rules[Number(i)];
}

/** Rules whose rate limit explain passed: they spend the kernel's tokens. */
function limitedSteps(ruleset: Ruleset, steps: Step[]): string[] {
  return steps
    .filter((s) => s.rule !== undefined && s.outcome !== 'no match' && ruleAt(ruleset, stepKey(s))?.stmts.some((x) => 'limit' in x))
    .map(stepKey)
    .filter((k) => ruleAt(ruleset, k)!.stmts.some((x) => 'accept' in x || 'drop' in x || 'reject' in x));
}

function burstOf(ruleset: Ruleset, key: string): number {
  for (const s of ruleAt(ruleset, key)!.stmts) if ('limit' in s) return s.limit.burst ?? 5; // nft's default burst for packet limits
  return Infinity;
}

/** 'dstnat' or 'srcnat' for those base chains and the chains they reach (by jump, goto or a verdict map: srcnat's per-zone chains); else the chain itself. */
function natChainOf(ruleset: Ruleset, chain: string): string {
  const { chains, sets } = ruleset.tables[0]!;
  for (const base of ['dstnat', 'srcnat']) {
    const seen = new Set<string>();
    const walk = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      for (const r of chains.find((c) => c.name === name)?.rules ?? []) {
        for (const st of r.stmts) {
          if ('jump' in st) walk(st.jump.target);
          if ('goto' in st) walk(st.goto.target);
          if ('vmap' in st) {
            const map = sets.find((m) => m.name === st.vmap.data.setRef);
            for (const [, v] of map?.kind === 'map' ? map.elements : []) walk('jump' in v ? v.jump.target : 'goto' in v ? v.goto.target : '');
          }
        }
      }
    };
    walk(base);
    if (seen.has(chain)) return base;
  }
  return chain;
}

// ---- What the kernel does --------------------------------------------------------------------

type Counters = Map<string, number>;

interface ListedRule {
  rule?: { chain: string; expr: Record<string, unknown>[] };
}

async function counters(topo: Topology): Promise<Counters> {
  const listing = JSON.parse(await topo.nftJson(`list table inet ${TABLE}`)) as { nftables: ListedRule[] };
  const seen = new Map<string, number>();
  const out: Counters = new Map();
  for (const { rule } of listing.nftables) {
    if (!rule) continue;
    const i = seen.get(rule.chain) ?? 0;
    seen.set(rule.chain, i + 1);
    const c = rule.expr.find((e) => 'counter' in e) as { counter: { packets: number } } | undefined;
    if (c) out.set(`${rule.chain}#${i}`, c.counter.packets);
  }
  return out;
}

interface KernelOutcome {
  delivered: boolean;
  /** Where a receiver saw it (TCP and UDP). */
  got?: { ns: string; to: string; port: number; from: string };
  /** Counted rules the packet hit, `chain#index`, invalid-state drops left out (leftovers of earlier connections). */
  hits: string[];
  sender: string[];
  ms: number;
  /** Known only by waiting: no counted rule decided and nothing arrived in time. */
  timedOut: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let nextId = 1;

/** Listen where the packet may land, send it, and watch counters and receivers until its fate is known. */
async function sendForReal(topo: Topology, ruleset: Ruleset, probe: Probe, places: Place[]): Promise<KernelOutcome> {
  const t0 = Date.now();
  const opened: { agent: Agent; id: number; place: Place }[] = [];
  const sender = await topo.agent(probe.from.ns);
  const sid = nextId++;
  try {
    if (probe.proto !== 'icmp') {
      for (const place of places) {
        const agent = await topo.agent(place.ns);
        const id = nextId++;
        agent.request({ op: 'listen', id, proto: probe.proto, family: probe.family, port: place.port! });
        opened.push({ agent, id, place });
      }
      for (const o of opened) {
        const e = await o.agent.waitFor(o.id, ['ready', 'error'], 5_000);
        if (e?.ev !== 'ready') throw new Error(`cannot listen on port ${o.place.port} in ${o.place.ns}: ${e?.error ?? 'no answer'}`);
      }
    }
    const before = await counters(topo);
    let sentAt: number | undefined;
    sender.request({ op: 'send', id: sid, proto: probe.proto, family: probe.family, src: probe.saddr, dst: probe.daddr, ...(probe.dport !== undefined ? { port: probe.dport } : { ident: sid & 0xffff }) });
    for (;;) {
      const got = opened.flatMap((o) => o.agent.eventsOf(o.id).filter((e) => e.ev === 'got').map((e) => ({ ns: o.place.ns, to: e.to![0], port: e.to![1], from: e.peer![0] })))[0];
      const replied = sender.eventsOf(sid).some((e) => e.ev === 'reply');
      const after = await counters(topo);
      const hits = [...after].filter(([k, n]) => n !== (before.get(k) ?? 0)).map(([k]) => k).filter((k) => ruleAt(ruleset, k)?.origin.id !== 'builtin:ct-invalid');
      const verdicts = hits.filter((k) => !['dstnat', 'srcnat'].includes(natChainOf(ruleset, k.split('#')[0]!))).map((k) => ruleAt(ruleset, k)!.stmts.at(-1)!);
      const elapsed = Date.now() - t0;
      // The quiet time starts when the sender has sent: on a loaded machine its agent may take a while to get to it.
      if (sentAt === undefined && sender.eventsOf(sid).length > 0) sentAt = Date.now();
      const quiet = sentAt === undefined ? (elapsed > SEND_MS ? elapsed : 0) : Date.now() - sentAt;
      const known = got !== undefined || replied || verdicts.some((v) => 'drop' in v || 'reject' in v);
      const timedOut = !known && quiet > (verdicts.some((v) => 'accept' in v) ? DELIVERY_MS : QUIET_MS);
      if (known || timedOut) {
        const sent = sender.eventsOf(sid).map((e) => (e.ev === 'error' ? `error ${e.error}` : e.ev));
        return { delivered: got !== undefined || replied, ...(got ? { got } : {}), hits, sender: sent, ms: elapsed, timedOut };
      }
      await sleep(5);
    }
  } finally {
    sender.request({ op: 'close', id: sid });
    for (const o of opened) o.agent.request({ op: 'close', id: o.id });
  }
}

/** Where to listen: where explain says it lands, where it would without NAT, and every forward target it could be sent to. */
function listenPlaces(topo: TopologyPlan, model: HostModel, probe: Probe, pred: Prediction): Place[] {
  if (probe.proto === 'icmp') return [];
  const out: Place[] = [pred.at];
  const direct = placeOf(topo, probe.daddr, probe.dport);
  if (direct) out.push(direct);
  if (probe.family === 4) {
    for (const f of model.forwards) {
      if (!f[probe.proto].some(([lo, hi]) => lo <= probe.dport! && probe.dport! <= hi)) continue;
      const t = placeOf(topo, f.targetV4, f.toPort ?? probe.dport);
      if (t) out.push(t);
    }
  }
  return out.filter((p, i) => out.findIndex((q) => q.ns === p.ns && q.port === p.port) === i);
}

// ---- Comparing -------------------------------------------------------------------------------

/** What disagrees between the prediction and the kernel; empty when they agree. */
function disagreements(ruleset: Ruleset, pred: Prediction, k: KernelOutcome): string[] {
  const out: string[] = [];
  if (pred.delivered !== k.delivered) out.push(pred.delivered ? 'explain says delivered, the kernel did not deliver it' : 'explain says not delivered, the kernel delivered it');
  if (pred.delivered && k.got) {
    const { at } = pred;
    if (k.got.ns !== at.ns || canonical(k.got.to) !== at.addr || k.got.port !== at.port) {
      out.push(`explain says it arrives at ${at.addr} port ${at.port} on ${at.what}, the kernel delivered it to ${k.got.to} port ${k.got.port} in ${k.got.ns}`);
    }
  }
  const chainOf = (key: string) => natChainOf(ruleset, key.split('#')[0]!);
  const compare = (what: string, expected: string[], actual: string[]) => {
    const [want, got] = [[...expected].sort(), [...actual].sort()];
    if (JSON.stringify(want) !== JSON.stringify(got)) {
      const list = (keys: string[]) => (keys.length ? keys.map((x) => ruleName(ruleset, x)).join(', ') : 'none');
      out.push(`${what} counters: explain says the packet reaches ${list(want)}; the kernel counted ${list(got)}`);
    }
  };
  compare('dstnat', counted(pred.nat.steps), k.hits.filter((h) => chainOf(h) === 'dstnat'));
  compare(`filter (${pred.path})`, counted(pred.filter.steps), k.hits.filter((h) => !['dstnat', 'srcnat'].includes(chainOf(h))));
  // The kernel reaches postrouting only with packets the filter passed.
  if (pred.post && k.delivered === pred.delivered) compare('srcnat', counted(pred.post.steps), k.hits.filter((h) => chainOf(h) === 'srcnat'));
  return out;
}

function ruleName(ruleset: Ruleset, key: string): string {
  const r = ruleAt(ruleset, key);
  if (!r) return key;
  const where = r.origin.line > 0 ? ` (line ${r.origin.line})` : '';
  return `${key} [${r.origin.id}${where}: ${r.stmts.map(printStmt).join(' ')}]`;
}

function stepsText(title: string, e: { steps: Step[]; notes: string[] }): string[] {
  return [
    title,
    ...e.steps.map((s) => `    ${s.chain}${s.rule !== undefined ? `#${s.rule}` : ''}: ${s.text} -> ${s.outcome}${s.failed ? ` (failed: ${s.failed})` : ''}${s.origin && s.outcome !== 'no match' ? `  [${s.origin.id}]` : ''}`),
    ...e.notes.map((n) => `    note: ${n}`),
  ];
}

function predictionText(pred: Prediction): string[] {
  const t = pred.nat.translation;
  return [
    `prerouting: ${t ? `${t.kind} to ${t.addr}${t.port !== undefined ? ` port ${t.port}` : ''} by ${t.origin.id}` : 'no translation'}`,
    ...stepsText('  nat steps:', pred.nat),
    `${pred.path}: ${pred.filter.verdict}${pred.filter.decidedBy ? ` by ${pred.filter.decidedBy.id} (${pred.filter.decidedBy.what})` : ' by a chain policy'}`,
    ...stepsText('  filter steps:', pred.filter),
    ...(pred.post ? stepsText(`postrouting: ${pred.post.translation ? `${pred.post.translation.kind} by ${pred.post.translation.origin.id}` : 'no translation'}`, pred.post) : []),
    `predicted: ${pred.delivered ? `delivered to ${pred.at.addr}${pred.at.port !== undefined ? ` port ${pred.at.port}` : ''} on ${pred.at.what}` : `not delivered${pred.because ? ` (${pred.because})` : ''}`}`,
  ];
}

function kernelText(ruleset: Ruleset, k: KernelOutcome): string[] {
  return [
    k.delivered ? `delivered${k.got ? ` to ${k.got.to} port ${k.got.port} in ${k.got.ns}, from ${k.got.from}` : ' (echo reply)'}` : 'not delivered',
    `counted rules: ${k.hits.length ? '' : 'none'}`,
    ...k.hits.map((h) => `    ${ruleName(ruleset, h)}`),
    `sender: ${k.sender.join(', ') || 'nothing'}; decided after ${k.ms} ms`,
  ];
}

// ---- One policy, many packets -----------------------------------------------------------------

interface Stats {
  policies: number;
  policiesWithoutLinks: number;
  compared: Map<string, number>;
  skipped: Map<string, number>;
  delivered: number;
  dropped: number;
  timedOut: number;
}
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

interface RunResult {
  /** The disagreement report, ending with the policy. */
  failure?: string;
  /** The policy and the packet that disagreed, to try again alone. */
  yaml?: string;
  packet?: PacketPlan;
}

let python = 'python3';
let dir = '';

async function withTopology<T>(model: HostModel, ruleset: Ruleset, fn: (topo: Topology) => Promise<T>): Promise<T> {
  const topo = await buildTopology(topologyPlan(model, topologyId()), python);
  try {
    const file = join(dir, `${topo.host}.json`);
    await writeFile(file, JSON.stringify(toNftJson(ruleset)));
    await topo.nft(['-j', '-f', file]);
    return await fn(topo);
  } finally {
    await topo.dispose();
  }
}

/** Predict, send, compare; returns the disagreement report, or undefined. */
async function runPacket(topo: Topology, model: HostModel, ruleset: Ruleset, probe: Probe, spent: Map<string, number>, stats?: Stats): Promise<string | undefined> {
  const pred = predict(ruleset, topo, probe);
  if (typeof pred === 'string') {
    if (stats) bump(stats.skipped, pred);
    return undefined;
  }
  // The kernel follows explain's path while every rate limit on it is under its rate; a limit
  // earlier packets may have spent sends it elsewhere (EvalEnv.underLimit is one flag for all).
  const limited = limitedSteps(ruleset, pred.filter.steps);
  if (limited.some((key) => (spent.get(key) ?? 0) >= burstOf(ruleset, key))) {
    if (stats) bump(stats.skipped, 'a rate limit on its path may be spent');
    return undefined;
  }
  for (const key of limited) spent.set(key, (spent.get(key) ?? 0) + 1);

  const k = await sendForReal(topo, ruleset, probe, listenPlaces(topo, model, probe, pred));
  const problems = disagreements(ruleset, pred, k);
  if (stats) {
    const hairpin = pred.nat.translation && topo.owners.get(pred.at.addr)?.zone === probe.from.zone ? ' (hairpin)' : '';
    bump(stats.compared, `${probe.proto}/IPv${probe.family} ${pred.path}${pred.nat.translation ? ` dnat${hairpin}` : ''}${pred.post?.translation ? ` ${pred.post.translation.kind}` : ''}`);
    if (k.delivered) stats.delivered++;
    else stats.dropped++;
    if (k.timedOut) stats.timedOut++;
  }
  if (problems.length === 0) return undefined;
  return [
    `explain and the kernel disagree:`,
    ...problems.map((p) => `  - ${p}`),
    '--- packet ---',
    probeText(probe),
    '--- explain ---',
    ...predictionText(pred),
    '--- kernel ---',
    ...kernelText(ruleset, k),
  ].join('\n');
}

async function runPolicy(yaml: string, plans: PacketPlan[], stats?: Stats): Promise<RunResult> {
  const r = compilePolicyText('generated.yaml', yaml);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !r.compiled || !r.model) return { failure: `the validator refuses a generated policy:\n${errors.map(formatDiagnostic).join('\n')}` };
  const model = r.model;
  const ruleset = r.compiled.ruleset;
  if (stats) stats.policies++;
  if (model.zones.every((z) => z.interfaces.length === 0)) {
    if (stats) stats.policiesWithoutLinks++;
    return {};
  }
  return withTopology(model, ruleset, async (topo) => {
    const spent = new Map<string, number>();
    for (const [i, plan] of plans.entries()) {
      const probe = resolvePacket(plan, topo, model);
      if (typeof probe === 'string') {
        if (stats) bump(stats.skipped, probe);
        continue;
      }
      let report: string | undefined;
      try {
        report = await runPacket(topo, model, ruleset, probe, spent, stats);
      } catch (e) {
        report = `packet ${i + 1} (${probeText(probe)}) throws: ${(e as Error).stack ?? String(e)}`;
      }
      if (report !== undefined) return { failure: `${report}\n--- packet ${i + 1} of ${plans.length}; the policy (generated.yaml) ---\n${yaml}`, yaml, packet: plan };
    }
    return {};
  });
}

/** Earlier packets can leave state behind (rate limits, conntrack): does the packet disagree on its own? */
async function aloneCheck(yaml: string, plan: PacketPlan): Promise<string> {
  const r = compilePolicyText('generated.yaml', yaml);
  const model = r.model!;
  const ruleset = r.compiled!.ruleset;
  return withTopology(model, ruleset, async (topo) => {
    const probe = resolvePacket(plan, topo, model);
    if (typeof probe === 'string') return `cannot tell (${probe})`;
    const report = await runPacket(topo, model, ruleset, probe, new Map()).catch((e: unknown) => `throws: ${(e as Error).message}`);
    return report === undefined ? 'no: on its own it agrees' : 'yes';
  }).catch((e: unknown) => `cannot tell: ${(e as Error).message}`);
}

// ---- The tests -------------------------------------------------------------------------------

describe.skipIf(skipReason !== undefined)(`explain agrees with the kernel${skipped}`, () => {
  beforeAll(async () => {
    python = (await execa('python3', ['-c', 'import sys; print(sys.executable)'])).stdout.trim();
    dir = await mkdtemp(join(tmpdir(), 'gw-x-'));
  });
  // The backstop: whatever happened, no namespace outlives the file.
  afterAll(async () => {
    await disposeAllTopologies();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the harness sees what a known policy does (homelab-dmz.yaml)', async () => {
    const yaml = readFileSync('policies/homelab-dmz.yaml', 'utf8');
    const r = compilePolicyText('policies/homelab-dmz.yaml', yaml);
    const model = r.model!;
    const ruleset = r.compiled!.ruleset;
    await withTopology(model, ruleset, async (topo) => {
      const link = (ifname: string) => topo.links.find((l) => l.ifname === ifname)!;
      const netV4 = ofFamily(link('eth0').addresses, 4)[0]!;
      const netV6 = ofFamily(link('eth0').addresses, 6)[0]!;
      const cases: [Omit<Probe, 'aim'>, boolean, string?][] = [
        [{ from: linkSender(link('eth0')), family: 4, saddr: netV4, daddr: '203.0.113.10', proto: 'tcp', dport: 22 }, false],
        [{ from: linkSender(link('eth0')), family: 4, saddr: netV4, daddr: '203.0.113.10', proto: 'udp', dport: 64738 }, true, '10.0.10.11'],
        [{ from: linkSender(link('eth0')), family: 4, saddr: netV4, daddr: '203.0.113.20', proto: 'tcp', dport: 25 }, true, '203.0.113.20'],
        [{ from: linkSender(link('eth0')), family: 4, saddr: netV4, daddr: '203.0.113.20', proto: 'tcp', dport: 22 }, false],
        [{ from: linkSender(link('eth0')), family: 6, saddr: netV6, daddr: '2001:db8:10::20', proto: 'tcp', dport: 587 }, true, '2001:db8:10::20'],
        [{ from: linkSender(link('br-lan')), family: 4, saddr: '192.168.1.20', daddr: netV4, proto: 'tcp', dport: 443 }, true, netV4],
        [{ from: linkSender(link('br-dmz')), family: 4, saddr: '10.0.10.10', daddr: '192.168.1.20', proto: 'udp', dport: 53 }, false],
        // Hairpin: a DMZ guest reaches another one on its own bridge by the public address.
        [{ from: linkSender(link('br-dmz')), family: 4, saddr: '10.0.10.11', daddr: '203.0.113.10', proto: 'tcp', dport: 5061 }, true, '10.0.10.10'],
        // From another zone by the public address: DNATed (TCP is forwarded, UDP is the host's own).
        [{ from: linkSender(link('br-lan')), family: 4, saddr: '192.168.1.20', daddr: '203.0.113.10', proto: 'tcp', dport: 25565 }, true, '10.0.10.13'],
        [{ from: linkSender(link('br-lan')), family: 4, saddr: '192.168.1.20', daddr: '203.0.113.10', proto: 'udp', dport: 25565 }, true, '203.0.113.10'],
        [{ from: linkSender(link('eth0')), family: 4, saddr: netV4, daddr: '203.0.113.10', proto: 'icmp' }, true],
        [{ from: hostSender(topo), family: 4, saddr: '203.0.113.10', daddr: netV4, proto: 'tcp', dport: 443 }, true, netV4],
        [{ from: hostSender(topo), family: 6, saddr: 'fd00:10::1', daddr: 'fd00:10::11', proto: 'udp', dport: 64738 }, true, 'fd00:10::11'],
        [{ from: linkSender(link('br-dmz')), family: 6, saddr: 'fd00:10::10', daddr: 'fd00:1::20', proto: 'icmp' }, false],
      ];
      for (const [c, delivered, at] of cases) {
        const probe = { ...c, aim: 'a case written by hand' };
        const pred = predict(ruleset, topo, probe);
        if (typeof pred === 'string') throw new Error(`${probeText(probe)}: ${pred}`);
        const k = await sendForReal(topo, ruleset, probe, listenPlaces(topo, model, probe, pred));
        const text = [probeText(probe), ...predictionText(pred), ...kernelText(ruleset, k)].join('\n');
        expect(k.delivered, text).toBe(delivered);
        if (at !== undefined && k.got) expect(k.got.to, text).toBe(at);
        expect(disagreements(ruleset, pred, k), text).toEqual([]);
      }
    });
  }, 120_000);

  it(
    `${POLICIES} generated policies x ${PACKETS} packets (seed ${SEED}): explain predicts what the kernel does`,
    async () => {
      const stats: Stats = { policies: 0, policiesWithoutLinks: 0, compared: new Map(), skipped: new Map(), delivered: 0, dropped: 0, timedOut: 0 };
      const t0 = Date.now();
      let failingSince: number | undefined;
      let lastFailure: RunResult | undefined;
      let shrinkCut = false;
      try {
        await fc.assert(
          fc.asyncProperty(policyArb, fc.array(packetPlanArb, { minLength: PACKETS, maxLength: PACKETS }), async (policy, plans) => {
            if (failingSince !== undefined && Date.now() - failingSince > SHRINK_MS) {
              // Shrinking has had its time: stop here and report the smallest failure so far.
              shrinkCut = true;
              return;
            }
            const result = await runPolicy(policyYaml(policy), plans, failingSince === undefined ? stats : undefined);
            if (result.failure !== undefined) {
              failingSince ??= Date.now();
              lastFailure = result;
              throw new Error(result.failure);
            }
          }),
          { numRuns: POLICIES, seed: SEED },
        );
      } finally {
        const seconds = (((failingSince ?? Date.now()) - t0) / 1000).toFixed(1);
        const lines = [
          `explain vs kernel: ${stats.policies} policies (${stats.policiesWithoutLinks} without interfaces), ${stats.delivered + stats.dropped} packets compared (${stats.delivered} delivered, ${stats.dropped} not, ${stats.timedOut} known only by waiting) in ${seconds} s${failingSince ? ' (until the first failure)' : ''}`,
          ...[...stats.compared].sort().map(([k, n]) => `  compared ${n} x ${k}`),
          ...[...stats.skipped].sort().map(([k, n]) => `  skipped ${n} x ${k}`),
        ];
        if (lastFailure?.failure !== undefined) {
          const shrunk = `${((Date.now() - failingSince!) / 1000).toFixed(0)} s of shrinking${shrinkCut ? ', stopped at GW_DIFF_SHRINK_S' : ''}`;
          const alone = lastFailure.yaml && lastFailure.packet ? await aloneCheck(lastFailure.yaml, lastFailure.packet) : 'not a packet';
          lines.push(`smallest failure found (${shrunk}); the packet disagrees on its own, on a fresh topology: ${alone}`, lastFailure.failure);
        }
        console.log(lines.join('\n'));
      }
      // Not vacuous: both outcomes occur.
      expect(stats.delivered).toBeGreaterThan(0);
      expect(stats.dropped).toBeGreaterThan(0);
    },
    Math.max(600_000, POLICIES * PACKETS * 3_000) + SHRINK_MS * 2,
  );
});
