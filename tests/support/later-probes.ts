// Packets that are not a connection's first, sent for real in a lab and compared with explain
// (src/explain/state.ts): for one flow A -> B (by B's address or a forward's public address),
//  UDP: the first datagram (B listens), crafted ICMP errors about it from B back to A and from
//       A to B (port unreachable, packet too big, time exceeded, each with the inner header the
//       sender saw), then B's reply datagram, then a datagram to B's closed port whose port
//       unreachable B's kernel sends itself (A's socket reports ECONNREFUSED);
//  TCP: a connection whose SYN-ACK is a reply, then a few bytes A sends (a later packet the same
//       way) that B echoes (a reply).
// The errors come before the reply datagram on purpose: a reply that passes as a connection of
// its own (the first packet was dropped) makes conntrack an entry that would place the errors.
// Each observation is compared with what explain says of that packet, never with the policy.
import type { HostModel } from '../../src/model/host.js';
import type { Ruleset } from '../../src/nft/ruleset.js';
import { ICMP_ERRORS, type IcmpError, type PacketQuery, explainPacket } from '../../src/explain/state.js';
import type { Endpoint, Lab } from './lab.js';
import type { Agent, AgentEvent } from './topology.js';

export interface LaterFlow {
  from: Endpoint;
  /** Who receives: the addressed endpoint, or a forward's guest. */
  to: Endpoint;
  family: 4 | 6;
  proto: 'udp' | 'tcp';
  /** The addresses and ports A uses, and where B receives (after DNAT). */
  src: string;
  dst: string;
  port: number;
  sport: number;
  arrive: { addr: string; port: number };
  /** How explain names the flow (the real source goes in src). */
  query: Pick<PacketQuery, 'from' | 'to' | 'src' | 'direct' | 'brNetfilter'>;
}

export interface LaterResult {
  flow: LaterFlow;
  /** What was observed: the name of the packet, explain's verdict, and whether it arrived. */
  checks: { what: string; explain: boolean; kernel: boolean; because: string }[];
  /** Every event the agents reported for the flow's requests, for a failure report. */
  trace?: string;
}

function traceOf(ids: [Agent, number][]): string {
  return ids.map(([ag, n]) => `${ag.ns.split('-').pop()}#${n}: ${ag.eventsOf(n).map((e) => `${e.ev}${e.error ? `(${e.error})` : ''}${e.icmp ? `(${e.icmp.join('/')})` : ''}`).join(',')}`).join('; ');
}

const ERRORS = Object.keys(ICMP_ERRORS) as IcmpError[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let nextId = 2_000_000;

function verdictOf(model: HostModel, ruleset: Ruleset, f: LaterFlow, more: Partial<PacketQuery>): { ok: boolean; because: string } {
  const r = explainPacket(model, ruleset, { ...f.query, proto: f.proto, port: f.port, family: f.family, ...more });
  if (!r.ok) throw new Error(`explain ${JSON.stringify({ ...f.query, ...more })}: ${r.error}`);
  const e = r.value.evaluation;
  return { ok: e.verdict === 'accept', because: `${r.value.filtered.ct.state}: ${e.decidedBy?.id ?? 'chain policy'}` };
}

/** Wait until `agent` has reported an event for `id` that `pred` accepts (true), or `ms` passed (false). */
async function seen(agent: Agent, id: number, pred: (e: AgentEvent) => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (agent.eventsOf(id).some(pred)) return true;
    if (Date.now() > until) return false;
    await sleep(5);
  }
}

/** Run one flow's packets in order and compare each with explain. */
export async function runLaterFlow(lab: Lab, ruleset: Ruleset, f: LaterFlow, opts: { acceptMs?: number; dropMs?: number } = {}): Promise<LaterResult> {
  const acceptMs = opts.acceptMs ?? 3_000;
  const dropMs = opts.dropMs ?? 800;
  const checks: LaterResult['checks'] = [];
  const a = await lab.agent(f.from.ns);
  const b = await lab.agent(f.to.ns);
  const ids: [Agent, number][] = [];
  const id = (agent: Agent) => {
    const n = nextId++;
    ids.push([agent, n]);
    return n;
  };
  const wait = (agent: Agent, n: number, expect: boolean, pred: (e: AgentEvent) => boolean) => seen(agent, n, pred, expect ? acceptMs : dropMs);
  const check = async (what: string, more: Partial<PacketQuery>, observe: (expect: boolean) => Promise<boolean>, also?: boolean) => {
    const v = verdictOf(lab.model, ruleset, f, more);
    const expect = (also ?? true) && v.ok;
    checks.push({ what, explain: expect, kernel: await observe(expect), because: v.because });
    return expect;
  };
  try {
    const lid = id(b);
    b.request({ op: 'listen', id: lid, proto: f.proto, family: f.family, port: f.arrive.port, ...(f.proto === 'tcp' ? { talk: true } : {}) });
    if ((await b.waitFor(lid, ['ready', 'error'], 5_000))?.ev !== 'ready') throw new Error(`cannot listen in ${f.to.ns}`);
    const sid = id(a);
    if (f.proto === 'tcp') {
      a.request({ op: 'send', id: sid, proto: 'tcp', family: f.family, src: f.src, dst: f.dst, port: f.port, sport: f.sport, talk: true });
      const first = verdictOf(lab.model, ruleset, f, {});
      // The SYN-ACK is the connection's first reply: connected means the SYN and the SYN-ACK passed.
      const connected = await check('SYN-ACK (reply)', { reply: true }, (x) => wait(a, sid, x, (e) => e.ev === 'connected'), first.ok);
      const data = await check('data the same way (established)', { state: 'established' }, (x) => wait(b, lid, x, (e) => e.ev === 'data'), connected);
      await check('data back (established reply)', { reply: true }, (x) => wait(a, sid, x, (e) => e.ev === 'reply'), data);
      return { flow: f, checks, trace: traceOf(ids) };
    }

    a.request({ op: 'send', id: sid, proto: 'udp', family: f.family, src: f.src, dst: f.dst, port: f.port, sport: f.sport });
    let got: AgentEvent | undefined;
    await check('first datagram (new)', {}, async (x) => {
      const ok = await wait(b, lid, x, (e) => e.ev === 'got');
      got = b.eventsOf(lid).find((e) => e.ev === 'got');
      return ok;
    });
    // As B saw A (masquerade may have changed the source) and where B received it.
    const peer = got?.peer ?? [f.src, f.sport];
    const bAddr = got?.to?.[0] ?? f.arrive.addr;
    const type = (e: IcmpError) => {
      const t = ICMP_ERRORS[e];
      const name = t[f.family];
      const numbers: Record<string, number> = f.family === 4 ? { 'destination-unreachable': 3, 'time-exceeded': 11 } : { 'destination-unreachable': 1, 'packet-too-big': 2, 'time-exceeded': 3 };
      return { type: numbers[name]!, code: t.code[f.family] };
    };
    // Errors from B about the datagram it received, back to A.
    const aSniff = id(a);
    a.request({ op: 'sniff', id: aSniff, family: f.family, sport: f.sport, dport: f.port });
    await a.waitFor(aSniff, ['ready', 'error'], 5_000);
    for (const e of ERRORS) {
      const t = type(e);
      const before = a.eventsOf(aSniff).filter((x) => x.ev === 'got' && x.icmp?.[0] === t.type).length;
      b.request({ op: 'icmperr', id: id(b), family: f.family, src: bAddr, dst: peer[0], ...t, inner: { proto: 'udp', src: peer[0], dst: bAddr, sport: peer[1], dport: f.arrive.port } });
      await check(`${e} from B (related, reply direction)`, { state: 'related', reply: true, icmpError: e }, (x) =>
        seen(a, aSniff, () => a.eventsOf(aSniff).filter((y) => y.ev === 'got' && y.icmp?.[0] === t.type).length > before, x ? acceptMs : dropMs));
    }
    // Errors from A about (B's replies of) the connection, to B.
    const bSniff = id(b);
    b.request({ op: 'sniff', id: bSniff, family: f.family, sport: f.arrive.port, dport: peer[1] });
    await b.waitFor(bSniff, ['ready', 'error'], 5_000);
    for (const e of ERRORS) {
      const t = type(e);
      const before = b.eventsOf(bSniff).filter((x) => x.ev === 'got' && x.icmp?.[0] === t.type).length;
      a.request({ op: 'icmperr', id: id(a), family: f.family, src: f.src, dst: f.dst, ...t, inner: { proto: 'udp', src: f.dst, dst: f.src, sport: f.port, dport: f.sport } });
      await check(`${e} from A (related, original direction)`, { state: 'related', icmpError: e }, (x) =>
        seen(b, bSniff, () => b.eventsOf(bSniff).filter((y) => y.ev === 'got' && y.icmp?.[0] === t.type).length > before, x ? acceptMs : dropMs));
    }
    // B's reply datagram, from where it received to whom it saw.
    b.request({ op: 'send', id: id(b), proto: 'udp', family: f.family, src: bAddr, dst: peer[0], port: peer[1], sport: f.arrive.port });
    await check('reply datagram', { reply: true }, (x) => wait(a, sid, x, (e) => e.ev === 'reply'));
    // A datagram of a new connection to B's closed port: B's own kernel answers port unreachable.
    b.request({ op: 'close', id: lid });
    await sleep(50);
    const sid2 = id(a);
    const first = verdictOf(lab.model, ruleset, { ...f, sport: f.sport + 1 }, {});
    a.request({ op: 'send', id: sid2, proto: 'udp', family: f.family, src: f.src, dst: f.dst, port: f.port, sport: f.sport + 1 });
    await check('port unreachable from B\'s kernel (related, reply direction)', { state: 'related', reply: true, icmpError: 'port-unreachable' }, (x) =>
      wait(a, sid2, x, (e) => e.ev === 'error' && e.error === 'ECONNREFUSED'), first.ok);
    return { flow: f, checks, trace: traceOf(ids) };
  } finally {
    for (const [agent, n] of ids) agent.request({ op: 'close', id: n });
  }
}

/** The disagreements of a result, one line each. */
export function laterMismatches(r: LaterResult): string[] {
  const f = r.flow;
  const what = `${f.from.name} -> ${f.to.name} ${f.proto}/${f.port} IPv${f.family} ${f.src}:${f.sport} -> ${f.dst}`;
  const bad = r.checks.filter((c) => c.explain !== c.kernel).map((c) => `${what}: ${c.what}: explain says ${c.explain ? 'it arrives' : 'it does not'} (${c.because}), the kernel ${c.kernel ? 'delivered it' : 'did not'}`);
  return bad.length > 0 && r.trace ? [...bad, `${what}: agents saw ${r.trace}`] : bad;
}

/**
 * A TCP connection whose SYN is refused, then segments without SYN (no conntrack entry): an ACK
 * the same way and an ACK back (crafted with raw sockets, seen by raw sockets), each compared
 * with explain --state established / --reply under the given nf_conntrack_tcp_loose.
 */
export async function runBareAckFlow(lab: Lab, ruleset: Ruleset, f: LaterFlow, tcpLoose: boolean, opts: { acceptMs?: number; dropMs?: number } = {}): Promise<LaterResult> {
  const acceptMs = opts.acceptMs ?? 3_000;
  const dropMs = opts.dropMs ?? 800;
  const a = await lab.agent(f.from.ns);
  const b = await lab.agent(f.to.ns);
  const checks: LaterResult['checks'] = [];
  const ids: [Agent, number][] = [];
  const id = (agent: Agent) => {
    const n = nextId++;
    ids.push([agent, n]);
    return n;
  };
  const check = async (what: string, more: Partial<PacketQuery>, sniffer: Agent, sid: number) => {
    const v = verdictOf(lab.model, ruleset, f, { ...more, tcpLoose });
    checks.push({ what, explain: v.ok, kernel: await seen(sniffer, sid, (e) => e.ev === 'got' && e.icmp?.[0] === 0x10, v.ok ? acceptMs : dropMs), because: v.because });
  };
  try {
    const first = verdictOf(lab.model, ruleset, f, {});
    if (first.ok) throw new Error(`runBareAckFlow wants a refused connection; explain accepts ${JSON.stringify(f.query)}`);
    const syn = id(a);
    a.request({ op: 'send', id: syn, proto: 'tcp', family: f.family, src: f.src, dst: f.dst, port: f.port, sport: f.sport });
    await sleep(300);
    const bSniff = id(b);
    b.request({ op: 'sniff-tcp', id: bSniff, family: f.family, sport: f.sport, dport: f.arrive.port });
    const aSniff = id(a);
    a.request({ op: 'sniff-tcp', id: aSniff, family: f.family, sport: f.arrive.port, dport: f.sport });
    await b.waitFor(bSniff, ['ready', 'error'], 5_000);
    await a.waitFor(aSniff, ['ready', 'error'], 5_000);
    // The same way first: an ACK back that passes as new would make an entry this one matches.
    a.request({ op: 'tcpraw', id: id(a), family: f.family, src: f.src, dst: f.dst, sport: f.sport, dport: f.port, flags: 'A' });
    await check(`ACK the same way, no entry (loose=${tcpLoose ? 1 : 0})`, { state: 'established' }, b, bSniff);
    b.request({ op: 'tcpraw', id: id(b), family: f.family, src: f.arrive.addr, dst: f.src, sport: f.arrive.port, dport: f.sport, flags: 'A' });
    await check(`ACK back, no entry (loose=${tcpLoose ? 1 : 0})`, { reply: true }, a, aSniff);
    return { flow: f, checks, trace: traceOf(ids) };
  } finally {
    for (const [agent, n] of ids) agent.request({ op: 'close', id: n });
  }
}

/**
 * Run flows a few at a time (the packets of one flow are sequential; many flows at once load a
 * shared 2-core machine past the waits). A flow that disagrees with explain runs once more from a
 * fresh source port, and its second result stands: a wrong model disagrees both times, a packet
 * lost to a loaded machine does not. The second runs come after all the first ones, one at a
 * time: flows run side by side share the peers' agents and sniffers, and a second run beside
 * the same crowd can meet the same squeeze (a CI run once saw four lan-peer flows fail twice).
 * `reruns` says which flows needed it.
 */
export async function runFlows(flows: LaterFlow[], run: (f: LaterFlow) => Promise<LaterResult>, parallel = 8): Promise<{ results: LaterResult[]; reruns: string[] }> {
  const results: LaterResult[] = [];
  const reruns: string[] = [];
  const again: LaterFlow[] = [];
  const queue = [...flows];
  const worker = async () => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) {
      const r = await run(f);
      if (laterMismatches(r).length > 0) {
        reruns.push(laterMismatches(r)[0]!);
        again.push(f);
      } else results.push(r);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  for (const f of again) results.push(await run({ ...f, sport: f.sport + 10_000 }));
  return { results, reruns };
}
