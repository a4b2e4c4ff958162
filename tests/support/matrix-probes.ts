// The reachability matrix of a lab, probed with real packets: for every ordered pair of
// endpoints, both families, ICMP echo, an unnamed TCP and UDP port, and every port the policy
// names for that pair; plus every port forward from every endpoint by the public address. What
// each probe should do comes from the policy oracle, never from the compiled ruleset.
import type { Exception, Matrix } from '../../src/explain/matrix.js';
import { HOST_ZONE, type HostModel, type TrafficPart } from '../../src/model/host.js';
import type { Endpoint, Lab } from './lab.js';
import { type OracleFlow, type OracleVerdict, type Proto, oracle } from './policy-oracle.js';

export const UNNAMED_PORT = 4444;

export interface Probe {
  from: Endpoint;
  /** Who should receive it if it is delivered (a forward's target, or the addressed endpoint). */
  to: Endpoint;
  family: 4 | 6;
  proto: Proto;
  port?: number;
  src: string;
  dst: string;
  expect: OracleVerdict;
  /** Where an accepted packet arrives: address and port as the receiver sees them. */
  arrive: { addr: string; port?: number };
}

export interface ProbeResult {
  probe: Probe;
  delivered: boolean;
  /** What the receiver saw: destination address and port, and the source address. */
  got?: { to: string; port: number; from: string };
  ms: number;
}

const PRIVATE = [/^10\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^f[cd]/i];
const isPrivate = (a: string) => PRIVATE.some((r) => r.test(a));

/** The host's address (of a family) on an interface, else on any interface of that family. */
function hostAddressOn(lab: Lab, iface: string | undefined, family: 4 | 6): string | undefined {
  const fam = (a: string) => (a.includes(':') ? 6 : 4) === family;
  const all = [...lab.hostAddresses];
  return all.find(([a, dev]) => dev === iface && fam(a))?.[0] ?? all.find(([a, dev]) => dev === 'eth0' && fam(a))?.[0];
}

/** Ports the policy names for traffic from zone a to zone b (rules and the IPv6 side of forwards). */
function namedPorts(lab: Lab, a: Endpoint, b: Endpoint, proto: 'tcp' | 'udp', family: 4 | 6): number[] {
  const out = new Set<number>();
  const covers = (places: { zone: string }[], z: string) => places.some((p) => p.zone === z);
  for (const r of lab.model.rules) {
    if (!covers(r.from, a.zone) || !covers(r.to, b.zone)) continue;
    for (const t of r.traffic) if (t.proto === proto) for (const [lo] of t.ports ?? []) out.add(lo);
  }
  if (family === 6) for (const f of lab.model.forwards) if (f.guest === b.guest && f.from.includes(a.zone)) for (const [lo] of f[proto]) out.add(lo);
  return [...out];
}

export function matrixProbes(lab: Lab): Probe[] {
  const probes: Probe[] = [];
  const eps = lab.endpoints;
  const flowOf = (a: Endpoint, b: Endpoint, family: 4 | 6, proto: Proto, port: number | undefined, src: string, dst: string): OracleFlow => ({
    family, proto, ...(port !== undefined ? { port } : {}), fromZone: a.zone === 'host' ? HOST_ZONE : a.zone, src,
    toZone: b.zone === 'host' ? HOST_ZONE : b.zone, dst, ...(a.inInterface ? { inInterface: a.inInterface } : {}),
  });
  const add = (a: Endpoint, b: Endpoint, family: 4 | 6, proto: Proto, port: number | undefined, src: string, dst: string) => {
    const expect = oracle(lab.model, flowOf(a, b, family, proto, port, src, dst), lab.hostAddresses);
    // The internet cannot answer a private source that leaves without NAT (IPv6 ULA here): only a
    // one-way UDP datagram shows what the firewall did with it.
    if (b.name === 'internet' && proto !== 'udp' && isPrivate(expect.seenFrom ?? src)) return;
    const target = expect.deliveredTo?.guest !== undefined ? eps.find((e) => e.guest === expect.deliveredTo!.guest) ?? b : b;
    const arrive = expect.deliveredTo ? { addr: expect.deliveredTo.addr, ...(expect.deliveredTo.port !== undefined ? { port: expect.deliveredTo.port } : {}) } : { addr: dst, ...(port !== undefined ? { port } : {}) };
    probes.push({ from: a, to: target, family, proto, ...(port !== undefined ? { port } : {}), src, dst, expect, arrive });
  };

  for (const a of eps) {
    for (const b of eps) {
      if (a === b || (a.name === 'host' && b.name === 'host')) continue;
      for (const family of [4, 6] as const) {
        const v = family === 4 ? 'v4' : 'v6';
        const src = a.name === 'host' ? hostAddressOn(lab, b.inInterface, family) : a[v];
        const dst = b.name === 'host' ? hostAddressOn(lab, a.inInterface, family) : b[v];
        if (src === undefined || dst === undefined) continue;
        // The internet does not route private space; nothing there can address it.
        if (a.name === 'internet' && isPrivate(dst)) continue;
        add(a, b, family, 'icmp', undefined, src, dst);
        for (const proto of ['tcp', 'udp'] as const) {
          for (const port of new Set([UNNAMED_PORT, ...namedPorts(lab, a, b, proto, family)])) add(a, b, family, proto, port, src, dst);
        }
      }
    }
  }
  // Port forwards, by the public address, from everywhere but the target itself and the host.
  for (const f of lab.model.forwards) {
    const pub = f.publicV4[0];
    if (pub === undefined) continue;
    const host = eps.find((e) => e.name === 'host')!;
    for (const a of eps) {
      if (a.name === 'host' || a.guest === f.guest || a.v4 === undefined) continue;
      for (const proto of ['tcp', 'udp'] as const) for (const [lo] of f[proto]) add(a, host, 4, proto, lo, a.v4, pub);
    }
  }
  return probes;
}

/** A probe's verdict against the oracle's, as a line for the failure report; undefined when it agrees. */
export function mismatch(r: ProbeResult): string | undefined {
  const p = r.probe;
  const what = `${p.from.name} -> ${p.to.name} ${p.proto}${p.port !== undefined ? `/${p.port}` : ''} IPv${p.family} ${p.src} -> ${p.dst}`;
  const want = p.expect.action === 'accept';
  if (want !== r.delivered) return `${what}: policy says ${p.expect.action} (${p.expect.because}), the kernel ${r.delivered ? 'delivered it' : 'did not deliver it'}`;
  if (r.got && p.proto !== 'icmp') {
    if (r.got.to !== p.arrive.addr || (p.arrive.port !== undefined && r.got.port !== p.arrive.port)) {
      return `${what}: should arrive at ${p.arrive.addr}:${p.arrive.port}, arrived at ${r.got.to}:${r.got.port}`;
    }
    const from = p.expect.seenFrom ?? p.src;
    const either = p.expect.hairpin === true && r.got.from === p.src;
    if (r.got.from !== from && !either) return `${what}: receiver should see it from ${from}, saw ${r.got.from}`;
  }
  return undefined;
}

let nextId = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Send every probe for real: probes to one receiving socket in turn, different sockets at once. */
export async function runProbes(lab: Lab, probes: Probe[], opts: { acceptMs?: number; dropMs?: number; parallel?: number } = {}): Promise<ProbeResult[]> {
  const acceptMs = opts.acceptMs ?? 3_000;
  const dropMs = opts.dropMs ?? 800;
  const groups = new Map<string, Probe[]>();
  for (const p of probes) {
    const key = p.proto === 'icmp' ? `icmp ${nextId++}` : `${p.to.ns} ${p.proto} ${p.family} ${p.arrive.port}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const results: ProbeResult[] = [];
  const queue = [...groups.values()];
  const worker = async () => {
    for (let g = queue.shift(); g !== undefined; g = queue.shift()) {
      const first = g[0]!;
      const receiver = first.proto === 'icmp' ? undefined : await lab.agent(first.to.ns);
      const lid = nextId++;
      if (receiver) {
        receiver.request({ op: 'listen', id: lid, proto: first.proto as 'tcp' | 'udp', family: first.family, port: first.arrive.port! });
        const e = await receiver.waitFor(lid, ['ready', 'error'], 5_000);
        if (e?.ev !== 'ready') throw new Error(`cannot listen on ${first.proto}/${first.arrive.port} in ${first.to.ns}: ${e?.error ?? 'no answer'}`);
      }
      try {
        for (const p of g) {
          const sender = await lab.agent(p.from.ns);
          const sid = nextId++;
          const seen = receiver ? receiver.eventsOf(lid).filter((e) => e.ev === 'got').length : 0;
          const t0 = Date.now();
          sender.request({ op: 'send', id: sid, proto: p.proto, family: p.family, src: p.src, dst: p.dst, ...(p.port !== undefined ? { port: p.port } : { ident: sid & 0xffff }) });
          const limit = p.expect.action === 'accept' ? acceptMs : dropMs;
          let result: ProbeResult | undefined;
          while (result === undefined) {
            const got = receiver?.eventsOf(lid).filter((e) => e.ev === 'got')[seen];
            const replied = sender.eventsOf(sid).some((e) => e.ev === 'reply');
            if (got !== undefined) result = { probe: p, delivered: true, got: { to: got.to![0], port: got.to![1], from: got.peer![0] }, ms: Date.now() - t0 };
            else if (replied) result = { probe: p, delivered: true, ms: Date.now() - t0 };
            else if (Date.now() - t0 > limit) result = { probe: p, delivered: false, ms: Date.now() - t0 };
            else await sleep(5);
          }
          sender.request({ op: 'close', id: sid });
          results.push(result);
        }
      } finally {
        receiver?.request({ op: 'close', id: lid });
      }
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 24 }, worker));
  return results;
}

// ---- The matrix, cell by cell ------------------------------------------------------------------

/** Where a matrix row or column stands in the lab: a zone's non-guest machine, the host, a guest. */
function endpointOf(lab: Lab, name: string): Endpoint | undefined {
  if (name === 'host') return lab.endpoints.find((e) => e.name === 'host');
  return lab.endpoints.find((e) => e.guest === name) ?? lab.endpoints.find((e) => e.guest === undefined && e.name !== 'host' && e.zone === name);
}

/** The traffic behind a matrix label: the first rule or forward that names it. */
function trafficOfLabel(model: HostModel, label: string): TrafficPart[] {
  for (const x of [...model.rules, ...model.forwards]) for (const l of x.byLabel) if (l.label === label) return l.traffic;
  throw new Error(`no rule or forward names ${label}`);
}

/** The verdict a matrix exception claims for one probed port (or ICMP), reading its parts when partial. */
function claimed(e: Exception, proto: string, port: number | undefined): Exception['verdict'] {
  if (e.verdict !== 'partial') return e.verdict;
  for (const p of e.parts ?? []) {
    const [pp, what] = p.what.split('/') as [string, string];
    if (pp !== proto && !(proto === 'icmp' && pp === 'icmpv6')) continue;
    if (port === undefined) return p.verdict;
    const [lo, hi = lo] = what.split('-').map(Number) as [number, number?];
    if (lo <= port && port <= hi!) return p.verdict;
  }
  throw new Error(`matrix part for ${proto}/${port} of ${e.label} not found`);
}

/**
 * Every claim of a matrix, as packets: per cell whose row and column stand somewhere in the lab,
 * the default (an unnamed port) and every listed service at both ends of every range and for its
 * ICMP types, to the column's address, or by the forward's public address for (fwd). What each
 * probe should do is what the matrix says; the oracle supplies only where an accepted packet
 * arrives and the source the receiver sees.
 */
export function matrixCellProbes(lab: Lab, m: Matrix): { probes: Probe[]; skipped: string[] } {
  const probes: Probe[] = [];
  const skipped = new Set<string>();
  const v = m.family === 4 ? 'v4' : 'v6';
  for (const cell of m.cells) {
    const a = endpointOf(lab, cell.from);
    const b = endpointOf(lab, cell.to);
    if (a === undefined || b === undefined) {
      skipped.add(`${a === undefined ? cell.from : cell.to} (no machine of its own in the lab)`);
      continue;
    }
    if (a === b || cell.verdict === undefined) continue;
    const src = a.name === 'host' ? hostAddressOn(lab, b.inInterface, m.family) : a[v];
    const dst = b.name === 'host' ? hostAddressOn(lab, a.inInterface, m.family) : b[v];
    if (src === undefined || dst === undefined) continue;
    if (a.name === 'internet' && isPrivate(dst)) continue;
    const add = (proto: Proto, port: number | undefined, target: string, receiver: Endpoint, action: Exception['verdict'], what: string) => {
      // The internet cannot answer a private source that leaves without NAT: one-way UDP only.
      if (b.name === 'internet' && proto !== 'udp' && isPrivate(src) && m.family === 6) return;
      if (action === 'partial') throw new Error('a partial claim reached a single probe');
      const o = oracle(lab.model, {
        family: m.family, proto, ...(port !== undefined ? { port } : {}), fromZone: a.zone === 'host' ? HOST_ZONE : a.zone, src,
        toZone: b.zone === 'host' ? HOST_ZONE : b.zone, dst: target, ...(a.inInterface ? { inInterface: a.inInterface } : {}),
      }, lab.hostAddresses);
      const expect: OracleVerdict = { ...o, action, because: `matrix IPv${m.family} ${cell.from} -> ${cell.to}: ${what}` };
      const arrive = o.deliveredTo ? { addr: o.deliveredTo.addr, ...(o.deliveredTo.port !== undefined ? { port: o.deliveredTo.port } : {}) } : { addr: target, ...(port !== undefined ? { port } : {}) };
      probes.push({ from: a, to: receiver, family: m.family, proto, ...(port !== undefined ? { port } : {}), src, dst: target, expect, arrive });
    };
    add(b.name === 'internet' ? 'udp' : 'tcp', UNNAMED_PORT, dst, b, cell.verdict, `default ${cell.verdict}`);
    for (const e of cell.exceptions) {
      const fwdGuest = e.forwardedTo ?? (e.forwarded ? cell.to : undefined);
      const fwd = fwdGuest === undefined ? undefined : lab.model.forwards.find((f) => f.guest === fwdGuest && f.byLabel.some((l) => l.label === e.label));
      const receiver = fwdGuest === undefined ? b : lab.endpoints.find((x) => x.guest === fwdGuest)!;
      const target = fwd ? fwd.publicV4[0]! : dst;
      for (const t of trafficOfLabel(lab.model, e.label)) {
        if (t.proto === 'tcp' || t.proto === 'udp') {
          const ends = new Set((t.ports ?? [[1, 65535] as const]).flatMap(([lo, hi]) => [lo, hi]));
          for (const port of ends) add(t.proto, port, target, receiver, claimed(e, t.proto, port), `${e.label} ${t.proto}/${port}`);
        } else if (t.proto === (m.family === 4 ? 'icmp' : 'icmpv6') && (t.types ?? ['echo-request']).includes('echo-request') && fwd === undefined) {
          add('icmp', undefined, target, receiver, claimed(e, t.proto, undefined), `${e.label} echo-request`);
        }
      }
    }
  }
  return { probes, skipped: [...skipped] };
}

// ---- Spoofed sources ---------------------------------------------------------------------------

/** A packet from a guest's port with a source it does not own (or its own, for contrast), and what explain says of it. */
export interface SpoofCase {
  from: Endpoint;
  /** The guest's host-side port name, as explain --from takes it. */
  port: string;
  to: Endpoint;
  family: 4 | 6;
  src: string;
  dport: number;
}

/** A spoof case as a probe whose expectation is explain's verdict (with --from PORT --src ADDRESS). */
export function spoofProbe(lab: Lab, c: SpoofCase, explained: { verdict: 'accept' | 'drop' | 'reject'; because: string }): Probe {
  const dst = c.to.name === 'host' ? hostAddressOn(lab, c.from.inInterface, c.family)! : c.family === 4 ? c.to.v4! : c.to.v6!;
  // Only the source the receiver sees comes from the oracle (masquerade); the verdict is explain's.
  const o = oracle(lab.model, {
    family: c.family, proto: 'udp', port: c.dport, fromZone: c.from.zone, src: c.src, toZone: c.to.zone === 'host' ? HOST_ZONE : c.to.zone, dst,
    ...(c.from.inInterface ? { inInterface: c.from.inInterface } : {}),
  }, lab.hostAddresses);
  return {
    from: c.from, to: c.to, family: c.family, proto: 'udp', port: c.dport, src: c.src, dst,
    expect: { action: explained.verdict, because: explained.because, ...(o.seenFrom ? { seenFrom: o.seenFrom } : {}) },
    arrive: { addr: dst, port: c.dport },
  };
}
