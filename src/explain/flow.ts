// From "--from net --to asterisk --proto udp --port 5060" to a packet, its route through the host
// (port forward first, then input or forward), the verdict, and the path of chains and rules
// with their YAML places. Pure: the model says where zones, guests and addresses are.
import { HOST_ZONE, type HostModel, type ZoneModel } from '../model/host.js';
import type { Origin, Ruleset } from '../nft/ruleset.js';
import { contains, formatAddress, parseHostAddress } from '../policy/addr.js';
import { type EvalEnv, type Evaluation, type NatEvaluation, type Packet, type Path, evaluate, evaluateBridge, evaluateNat } from './evaluate.js';

export type Proto = Packet['proto'];

export interface FlowQuery {
  from: string;
  to: string;
  proto: Proto;
  port?: number;
  /** Which IP version when the endpoints do not say (default 4). */
  family?: 4 | 6;
  /**
   * Whether br_netfilter passes bridged IPv4/IPv6 through the inet hooks too (default true: it
   * is loaded wherever Docker or Kubernetes run, and then a packet must pass both tables; where
   * it is not loaded the bridge table alone decides).
   */
  brNetfilter?: boolean;
}

export interface FlowExplanation {
  /** The packet as it arrives (or as the host sends it). */
  packet: Packet;
  fromZone: string;
  toZone: string;
  /** The prerouting NAT step, when the packet came in from outside the host. */
  nat?: NatEvaluation;
  path: Path;
  /** The bridge, when the packet goes between two of its ports (bridge forward, not routed). */
  bridge?: string;
  evaluation: Evaluation;
  story: string[];
}

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

interface Side {
  zone: string;
  ifname?: string;
  /** The bridge port it is behind, when it is a bridged guest or a host interface enslaved to a bridge. */
  port?: string;
  addr?: string;
  what: string;
}

export function explainFlow(model: HostModel, ruleset: Ruleset, q: FlowQuery): Result<FlowExplanation> {
  const toParts = splitHostPort(q.to);
  const port = toParts.port ?? q.port;
  const family = familyOf(q.from) ?? familyOf(toParts.host) ?? q.family ?? 4;
  if ((q.proto === 'tcp' || q.proto === 'udp') && port === undefined) return { ok: false, error: `--port is needed for ${q.proto}` };
  if (q.proto === 'icmp' && family === 6) return { ok: false, error: 'icmp is IPv4; use --proto icmpv6 for IPv6' };
  if (q.proto === 'icmpv6' && family === 4) return { ok: false, error: 'icmpv6 is IPv6; use --proto icmp for IPv4' };

  const src = resolve(model, q.from, family, 'from');
  if (!src.ok) return src;
  const dst = resolve(model, toParts.host, family, 'to');
  if (!dst.ok) return dst;
  const s = src.value;
  let d = dst.value;
  const hostAddrs = hostAddresses(model);
  const env: EvalEnv = { isLocal: (a) => hostAddrs.has(canonical(a) ?? a) };

  const fromHost = s.zone === HOST_ZONE;
  const saddr = s.addr ?? (fromHost ? hostAddressIn(model, d.zone, family) : undefined);
  const daddr = d.addr ?? (d.zone === HOST_ZONE ? hostAddressIn(model, s.zone, family) : undefined);
  if (saddr === undefined) return { ok: false, error: `no ${family === 4 ? 'IPv4' : 'IPv6'} address to send from in ${s.what}; name an address with --from` };
  if (daddr === undefined) return { ok: false, error: `no ${family === 4 ? 'IPv4' : 'IPv6'} address to send to in ${d.what}; name an address with --to` };

  const packet: Packet = {
    family, saddr, daddr, proto: q.proto, ct: { state: 'new' },
    ...(fromHost ? {} : { iifname: s.ifname! }),
    ...(q.proto === 'tcp' || q.proto === 'udp' ? { sport: 40000, dport: port! } : { icmpType: 'echo-request' }),
  };
  const story: string[] = [`packet: ${describePacket(packet)}, a new connection, ${fromHost ? 'sent by the host' : `arriving from zone ${s.zone} on ${s.ifname}${s.port ? ` (port ${s.port})` : ''}`}`];

  if (s.port !== undefined && d.port !== undefined && s.ifname === d.ifname && model.bridges.some((b) => b.name === s.ifname)) {
    return { ok: true, value: bridgedFlow(ruleset, packet, s, d, env, q.brNetfilter ?? true, story) };
  }

  let nat: NatEvaluation | undefined;
  let routed = packet;
  if (!fromHost) {
    nat = evaluateNat(ruleset, 'prerouting', packet, env);
    if (nat.verdict === 'drop') {
      story.push(`prerouting NAT drops it${nat.decidedBy ? `: ${originText(nat.decidedBy)}` : ''}`);
      return { ok: true, value: { packet, fromZone: s.zone, toZone: d.zone, nat, path: 'forward', evaluation: { verdict: 'drop', ...(nat.decidedBy ? { decidedBy: nat.decidedBy } : {}), steps: nat.steps, notes: nat.notes }, story } };
    }
    if (nat.translation?.kind === 'dnat') {
      routed = nat.packet;
      story.push(`prerouting: ${originText(nat.translation.origin)} sends it to ${routed.daddr}${routed.dport !== undefined ? ` port ${routed.dport}` : ''}`);
      const after = resolve(model, routed.daddr, family, 'to');
      if (!after.ok) return after;
      d = after.value;
    } else story.push('prerouting: no port forward matches; the destination stays');
  }

  const toHost = hostAddrs.has(canonical(routed.daddr) ?? routed.daddr) || d.zone === HOST_ZONE;
  const path: Path = fromHost ? 'output' : toHost ? 'input' : 'forward';
  if (path === 'forward' && d.ifname === undefined) return { ok: false, error: `${d.what} has no interface to route to` };
  const final: Packet = { ...routed, ...(path !== 'input' ? { oifname: d.ifname! } : {}) };
  if (path === 'output' && toHost) return { ok: false, error: 'the host talking to itself goes over lo, which guestwall always accepts' };
  story.push(path === 'input' ? 'the destination is the host itself: input path' : `routed to zone ${d.zone} through ${d.ifname}: ${path} path`);

  const evaluation = evaluate(ruleset, path, final, env);
  for (const step of evaluation.steps) storyStep(story, step, step.chain);
  story.push(`verdict: ${evaluation.verdict.toUpperCase()}${evaluation.decidedBy ? ` by ${originText(evaluation.decidedBy)}` : ' by the chain policy'}`);
  for (const n of evaluation.notes) story.push(`note: ${n}`);
  return { ok: true, value: { packet, fromZone: s.zone, toZone: d.zone, ...(nat ? { nat } : {}), path, evaluation, story } };
}

/** Between two ports of one bridge: the bridge table decides, and with br_netfilter the inet forward pass too. */
function bridgedFlow(ruleset: Ruleset, packet: Packet, s: Side, d: Side, env: EvalEnv, brNetfilter: boolean, story: string[]): FlowExplanation {
  const bridge = s.ifname!;
  const frame: Packet = { ...packet, iifname: s.port!, oifname: d.port! };
  story.push(`both ends are on bridge ${bridge}: the frame goes from port ${s.port} to port ${d.port} without routing (bridge prerouting, then bridge forward)`);
  if (brNetfilter) story.push(`with br_netfilter (bridge-nf-call-iptables=1) it also passes the inet forward hook, with ${bridge} as input and output interface`);
  const evaluation = evaluateBridge(ruleset, bridge, frame, { ...env, brNetfilter });
  for (const step of evaluation.steps) storyStep(story, step, `${step.family === 'bridge' ? 'bridge ' : ''}${step.chain}`);
  story.push(`verdict: ${evaluation.verdict.toUpperCase()}${evaluation.decidedBy ? ` by ${originText(evaluation.decidedBy)}` : ' by the chain policy'}`);
  for (const n of evaluation.notes) story.push(`note: ${n}`);
  return { packet: frame, fromZone: s.zone, toZone: d.zone, path: 'forward', bridge, evaluation, story };
}

function storyStep(story: string[], step: Evaluation['steps'][number], chain: string): void {
  if (step.outcome === 'jump' || step.outcome === 'goto') story.push(`  ${chain}: ${step.text} -> ${step.outcome}`);
  else if (step.outcome === 'verdict' || step.outcome === 'policy') {
    // A verdict by a set element (a port forward's DNATed tuple) names the element's origin.
    const why = step.element ?? step.origin;
    story.push(`  ${chain}: ${step.text}${why ? `  [${originText(why)}]` : ''}`);
  } else if (step.outcome === 'map miss') story.push(`  ${chain}: ${step.text}: no element for this ${step.text.includes('vmap') ? 'interface' : 'key'}`);
}

export function originText(o: Origin): string {
  return o.line > 0 ? `${o.what} (${o.file.split('/').pop()}:${o.line})` : o.what;
}

function describePacket(p: Packet): string {
  const ports = p.dport !== undefined ? ` port ${p.dport}` : p.icmpType ? ` ${p.icmpType}` : '';
  return `${p.proto} ${p.saddr} -> ${p.daddr}${ports}`;
}

function splitHostPort(text: string): { host: string; port?: number } {
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  if (v6) return { host: v6[1]!, port: Number(v6[2]) };
  const v4 = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text);
  if (v4) return { host: v4[1]!, port: Number(v4[2]) };
  return { host: text };
}

function familyOf(text: string): 4 | 6 | undefined {
  const r = parseHostAddress(text);
  return r.ok ? r.value.family : undefined;
}

function canonical(addr: string): string | undefined {
  const r = parseHostAddress(addr);
  return r.ok ? r.value.addr : undefined;
}

function hostAddresses(model: HostModel): Set<string> {
  return new Set([...model.hostInterfaces, ...model.bridges].flatMap((i) => i.addresses.map((a) => a.addr)));
}

/** The host's own address on an interface of `zone` (or any), for packets to or from the host. */
function hostAddressIn(model: HostModel, zone: string, family: 4 | 6): string | undefined {
  const all = [...model.hostInterfaces, ...model.bridges];
  const inZone = all.filter((i) => i.zone === zone).flatMap((i) => i.addresses).find((a) => a.family === family);
  return (inZone ?? all.flatMap((i) => i.addresses).find((a) => a.family === family))?.addr;
}

// Representative addresses, worked out once per model, zone and family: the matrix asks for
// them hundreds of times, and a model never changes once built.
const representatives = new WeakMap<HostModel, Map<string, string | undefined>>();
function representative(model: HostModel, z: ZoneModel, family: 4 | 6): string | undefined {
  let known = representatives.get(model);
  if (!known) representatives.set(model, (known = new Map()));
  const key = `${z.name}/${family}`;
  if (!known.has(key)) known.set(key, findRepresentative(model, z, family));
  return known.get(key);
}

/** An address that stands for "some machine in this zone": inside its first network, not a declared one. */
function findRepresentative(model: HostModel, z: ZoneModel, family: 4 | 6): string | undefined {
  const net = z.networks.find((n) => n.family === family);
  if (!net) return z.public ? (family === 4 ? '198.51.100.1' : '2001:db8:ffff::1') : undefined;
  const used = new Set([...model.hostInterfaces, ...model.bridges, ...model.guests.flatMap((g) => g.interfaces)].flatMap((i) => i.addresses.map((a) => a.value)));
  // Round numbers first (.100, .200, .50) for readable output, then the first free host address.
  const candidates = [100n, 200n, 50n, ...Array.from({ length: 1024 }, (_, i) => BigInt(i + 1))];
  for (const offset of candidates) {
    const v = net.start + offset;
    if (v < net.end && !used.has(v)) return formatAddress(v, family);
  }
  return undefined;
}

function resolve(model: HostModel, text: string, family: 4 | 6, side: 'from' | 'to'): Result<Side> {
  if (text === HOST_ZONE) return { ok: true, value: { zone: HOST_ZONE, what: 'the host' } };
  const zone = model.zones.find((z) => z.name === text);
  if (zone) {
    const ifname = zone.interfaces[0];
    if (ifname === undefined) return { ok: false, error: `zone '${text}' has no interfaces` };
    const addr = representative(model, zone, family);
    return { ok: true, value: { zone: zone.name, ifname, ...(addr ? { addr } : {}), what: `zone '${text}'` } };
  }
  const guest = model.guests.find((g) => g.name === text);
  if (guest) {
    const iface = guest.interfaces.find((i) => i.addresses.some((a) => a.family === family));
    if (!iface) return { ok: false, error: `guest '${text}' has no IPv${family} address` };
    return { ok: true, value: { zone: iface.zone, ifname: iface.mode === 'bridged' ? iface.bridge : iface.name, ...(iface.mode === 'bridged' ? { port: iface.name } : {}), addr: iface.addresses.find((a) => a.family === family)!.addr, what: `guest '${text}'` } };
  }
  const enslaved = model.bridges.find((b) => b.ports.includes(text));
  if (enslaved) {
    const z = model.zones.find((x) => x.name === enslaved.zone)!;
    const addr = representative(model, z, family);
    return { ok: true, value: { zone: z.name, ifname: enslaved.name, port: text, ...(addr ? { addr } : {}), what: `interface ${text} (a port of ${enslaved.name})` } };
  }
  const ifzone = model.zones.find((z) => z.interfaces.includes(text));
  if (ifzone) {
    const addr = representative(model, ifzone, family);
    return { ok: true, value: { zone: ifzone.name, ifname: text, ...(addr ? { addr } : {}), what: `interface ${text}` } };
  }
  const a = parseHostAddress(text);
  if (!a.ok) return { ok: false, error: `--${side} '${text}' is not a zone, guest, interface, "host" or address` };
  if (a.value.family !== family) return { ok: false, error: '--from and --to must be the same IP version' };
  const host = [...model.hostInterfaces, ...model.bridges].find((i) => i.addresses.some((x) => x.value === a.value.value && x.family === family));
  if (host) return { ok: true, value: { zone: side === 'to' ? HOST_ZONE : host.zone, ifname: host.name, addr: a.value.addr, what: `the host's address ${a.value.addr}` } };
  const owner = model.guests.flatMap((g) => g.interfaces).find((i) => i.addresses.some((x) => x.value === a.value.value && x.family === family));
  if (owner) return { ok: true, value: { zone: owner.zone, ifname: owner.mode === 'bridged' ? owner.bridge : owner.name, ...(owner.mode === 'bridged' ? { port: owner.name } : {}), addr: a.value.addr, what: `guest '${owner.guest}'` } };
  const z = model.zones.find((zz) => zz.networks.some((n) => contains(n, a.value.value, family))) ?? model.zones.find((zz) => zz.public);
  if (!z || z.interfaces[0] === undefined) return { ok: false, error: `no zone holds ${a.value.addr}, and no internet-facing zone takes it` };
  return { ok: true, value: { zone: z.name, ifname: z.interfaces[0], addr: a.value.addr, what: `${a.value.addr} in zone '${z.name}'` } };
}
