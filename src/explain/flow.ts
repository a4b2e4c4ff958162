// From "--from net --to asterisk --proto udp --port 5060" to a packet, its route through the host
// (the bridge port's checks, port forward, then input or forward), the verdict, and the path of
// chains and rules with their YAML places. Pure: the model says where zones, guests and addresses
// are; prerouting.ts says what the routes the policy installs answer to the fib check.
//
// explainFlow is the one entry point, for the CLI's explain, the matrix and the preview's what-if:
// give it any name the policy defines (zone, guest, guest port such as gw-asterisk, host
// interface, bridge port, "host") or an address, and optionally the packet's own source address
// and MAC (a spoofed source is dropped where the kernel drops it, and the guest declaration that
// made the check is named).
import { HOST_ZONE, type ForwardModel, type HostModel, type ZoneModel } from '../model/host.js';
import type { Origin, Ruleset } from '../nft/ruleset.js';
import { contains, formatAddress, parseHostAddress } from '../policy/addr.js';
import { type EvalEnv, type Evaluation, type NatEvaluation, type Packet, type Path, evaluate, evaluateBridge, evaluateBridgeForward, evaluateNat } from './evaluate.js';
import { bridgeArrival, declarationBehind, guestPortNamed, routeBackOf } from './prerouting.js';

export type Proto = Packet['proto'];

export interface FlowQuery {
  from: string;
  to: string;
  proto: Proto;
  port?: number;
  /** The ICMP type for icmp/icmpv6 (nft names; default echo-request). */
  icmpType?: string;
  /** Which IP version when the endpoints do not say (default 4). */
  family?: 4 | 6;
  /** The packet's source address, e.g. a spoofed one; default: the sender's own (a zone's stand-in address). */
  src?: string;
  /** The packet's source MAC; default: the one the sending port declares. */
  srcMac?: string;
  /**
   * Address a guest's own address even where a port forward publishes the service to the sender's
   * zone (default false: `--to asterisk` on a forwarded service goes to the public address, as
   * clients do, and the story says so).
   */
  direct?: boolean;
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
  /** The port forward followed, when --to named a guest a forward publishes to the sender's zone. */
  forward?: { addressed: string; port: number };
  /** When a built-in anti-spoofing rule decided: the guest interface declaration (mac:, addresses:) it checks against. */
  declaration?: Origin;
  evaluation: Evaluation;
  /** The packet as the deciding filter hook saw it (after DNAT, with its output interface). */
  filtered: Packet;
  story: string[];
}

/**
 * A packet that is not a connection's first, as state.ts describes it from conntrack's facts:
 * its ct state and status, its own ports and addresses, and the binding conntrack applies on
 * arrival in place of the nat chains (which see first packets only).
 */
export interface PacketAs {
  ct: Packet['ct'];
  /** The story's words for the packet, e.g. "a reply of an accepted connection (ct state established)". */
  what: string;
  saddr?: string;
  daddr?: string;
  sport?: number;
  dport?: number;
  tcpFlags?: string[];
  /** The destination conntrack restores or translates on arrival (prerouting), from the connection's first packet. */
  binding?: { daddr: string; dport?: number; why: string };
}

type Result<T> = { ok: true; value: T } | { ok: false; error: string };

interface Side {
  zone: string;
  ifname?: string;
  /** The bridge port it is behind, when it is a bridged guest or a host interface enslaved to a bridge. */
  port?: string;
  addr?: string;
  /** The MAC the sender's port declares, if a guest port. */
  mac?: string;
  /** The guest, when it is one (by name or by port). */
  guest?: string;
  what: string;
}

/** A connection's first packet (`as` absent), or a later one as state.ts describes it (see explainPacket there). */
export function explainFlow(model: HostModel, ruleset: Ruleset, q: FlowQuery, as?: PacketAs): Result<FlowExplanation> {
  const toParts = splitHostPort(q.to);
  const port = toParts.port ?? q.port;
  const family = familyOf(q.src ?? '') ?? familyOf(q.from) ?? familyOf(toParts.host) ?? q.family ?? 4;
  if (q.src !== undefined && familyOf(q.src) === undefined) return { ok: false, error: `--src '${q.src}' is not an address` };
  if (q.srcMac !== undefined && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(q.srcMac)) return { ok: false, error: `--src-mac '${q.srcMac}' is not a MAC address (write six hex pairs: 02:00:0a:00:0a:0a)` };
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
  const fib = routeBackOf(model);
  const env: EvalEnv = { isLocal: (a) => hostAddrs.has(canonical(a) ?? a), ...fib.env };

  const fromHost = s.zone === HOST_ZONE;
  const saddr = as?.saddr ?? q.src ?? s.addr ?? (fromHost ? hostAddressIn(model, d.zone, family) : undefined);
  let daddr = as?.daddr ?? d.addr ?? (d.zone === HOST_ZONE ? hostAddressIn(model, s.zone, family) : undefined);
  if (saddr === undefined) return { ok: false, error: `no ${family === 4 ? 'IPv4' : 'IPv6'} address to send from in ${s.what}; name an address with --from` };
  if (daddr === undefined) return { ok: false, error: `no ${family === 4 ? 'IPv4' : 'IPv6'} address to send to in ${d.what}; name an address with --to` };

  const published = as !== undefined || q.direct || fromHost || family !== 4 || (q.proto !== 'tcp' && q.proto !== 'udp') ? undefined : publishedBy(model, s.zone, d.guest, q.proto, port!);
  let dport = port;
  if (published) {
    daddr = published.addressed;
    dport = published.port;
  }
  const packet: Packet = {
    family, saddr, daddr, proto: q.proto, ct: as?.ct ?? { state: 'new' },
    ...(fromHost ? {} : { iifname: s.ifname! }),
    ...(q.srcMac !== undefined ? { smac: q.srcMac.toLowerCase() } : {}),
    ...(q.proto === 'tcp' || q.proto === 'udp' ? { sport: as?.sport ?? 40000, dport: as?.dport ?? dport! } : { icmpType: q.icmpType ?? 'echo-request' }),
    ...(as?.tcpFlags !== undefined && q.proto === 'tcp' ? { tcpFlags: as.tcpFlags } : {}),
  };
  const story: string[] = [`packet: ${describePacket(packet)}, ${as?.what ?? 'a new connection'}, ${fromHost ? 'sent by the host' : `arriving from zone ${s.zone} on ${s.ifname}${s.port ? ` (port ${s.port})` : ''}`}`];
  if (q.src !== undefined && s.addr !== undefined && canonical(q.src) !== canonical(s.addr)) story.push(`source ${q.src} given with --src (${s.what} uses ${s.addr})`);
  if (q.srcMac !== undefined) story.push(`source MAC ${q.srcMac} given with --src-mac${s.mac ? ` (${s.what} declares ${s.mac})` : ''}`);
  if (published) story.push(`${d.what} is published to zone ${s.zone} by ${published.what}: clients address ${published.addressed}:${published.port}, so this packet does too (--direct asks about ${d.addr} itself)`);

  if (!published && as?.binding === undefined && s.port !== undefined && d.port !== undefined && s.ifname === d.ifname && model.bridges.some((b) => b.name === s.ifname)) {
    const value = bridgedFlow(ruleset, packet, s, d, env, q.brNetfilter ?? true, story);
    return { ok: true, value: withDeclaration(model, value, s.port) };
  }

  // A frame from a bridge port meets the bridge family's port checks before the host's IP layer sees it.
  if (!fromHost && s.port !== undefined) {
    const arrival = bridgeArrival(ruleset, packet, s.port, env);
    if (arrival.verdict !== 'accept') {
      for (const step of arrival.steps) storyStep(story, step, `bridge ${step.chain}`);
      story.push(`verdict: ${arrival.verdict.toUpperCase()} at bridge prerouting${arrival.decidedBy ? ` by ${originText(arrival.decidedBy)}` : ''}`);
      const value: FlowExplanation = { packet: { ...packet, iifname: s.port }, filtered: { ...packet, iifname: s.port }, fromZone: s.zone, toZone: d.zone, path: path0(fromHost, d), evaluation: arrival, story, ...(published ? { forward: published } : {}) };
      return { ok: true, value: withDeclaration(model, value, s.port) };
    }
    story.push(`bridge prerouting: the checks on port ${s.port} pass`);
  }
  const routedPort = fromHost ? undefined : guestPortNamed(model, s.ifname!);
  if (routedPort?.mode === 'routed') story.push(fib.explain(packet));

  let nat: NatEvaluation | undefined;
  let routed = packet;
  if (!fromHost && as?.binding !== undefined) {
    // Conntrack, not the nat chains, translates a later packet: the first packet's binding.
    routed = { ...packet, daddr: as.binding.daddr, ...(as.binding.dport !== undefined && packet.dport !== undefined ? { dport: as.binding.dport } : {}) };
    story.push(`conntrack: ${as.binding.why}: the destination becomes ${routed.daddr}${routed.dport !== undefined ? ` port ${routed.dport}` : ''} (the nat chains see only first packets)`);
    // The side the caller named stands, unless the binding leads elsewhere (a DNATed first packet).
    if (canonical(routed.daddr) !== canonical(d.addr ?? '')) {
      const after = resolve(model, routed.daddr, family, 'to');
      if (!after.ok) return after;
      d = after.value;
    }
  } else if (!fromHost) {
    nat = evaluateNat(ruleset, 'prerouting', packet, env);
    // A conntrack helper attached with the first packet (dstnat holds the helpers' rules).
    for (const step of nat.steps) if (attaches(step)) storyStep(story, step, step.chain);
    if (nat.verdict === 'drop') {
      story.push(`prerouting NAT drops it${nat.decidedBy ? `: ${originText(nat.decidedBy)}` : ''}`);
      return { ok: true, value: { packet, filtered: packet, fromZone: s.zone, toZone: d.zone, nat, path: 'forward', evaluation: { verdict: 'drop', ...(nat.decidedBy ? { decidedBy: nat.decidedBy } : {}), steps: nat.steps, notes: nat.notes }, story, ...(published ? { forward: published } : {}) } };
    }
    if (nat.translation?.kind === 'dnat') {
      routed = nat.packet;
      story.push(`prerouting: ${originText(nat.translation.origin)} sends it to ${routed.daddr}${routed.dport !== undefined ? ` port ${routed.dport}` : ''}`);
      const after = resolve(model, routed.daddr, family, 'to');
      if (!after.ok) return after;
      d = after.value;
    } else if (packet.ct.state !== 'new') story.push(`prerouting: the nat chains see only a connection's first packet; this ${packet.ct.state} one keeps its destination`);
    else story.push('prerouting: no port forward matches; the destination stays');
  }

  // A hairpin onto the sender's own bridge: with br_netfilter the kernel bridges the DNATed frame
  // straight to the target's port (br_nf_pre_routing_finish_bridge) instead of routing it.
  const brNetfilter = q.brNetfilter ?? true;
  if (brNetfilter && nat?.translation?.kind === 'dnat' && s.port !== undefined && d.port !== undefined && d.ifname === s.ifname) {
    const value = rebridgedFlow(ruleset, routed, s, d, env, story);
    return { ok: true, value: withDeclaration(model, { ...value, packet, ...(nat ? { nat } : {}), ...(published ? { forward: published } : {}) }, s.port) };
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
  const value: FlowExplanation = { packet, filtered: final, fromZone: s.zone, toZone: d.zone, ...(nat ? { nat } : {}), path, evaluation, story, ...(published ? { forward: published } : {}) };
  return { ok: true, value: fromHost ? value : withDeclaration(model, value, s.ifname!) };
}

/** The path a packet would take, for a packet stopped before routing. */
function path0(fromHost: boolean, d: Side): Path {
  return fromHost ? 'output' : d.zone === HOST_ZONE ? 'input' : 'forward';
}

/** Name the guest declaration behind a built-in anti-spoofing verdict, in the result and the story. */
function withDeclaration(model: HostModel, e: FlowExplanation, port: string): FlowExplanation {
  const declaration = declarationBehind(model, e.evaluation.decidedBy, port);
  if (declaration === undefined) return e;
  const at = e.story.findIndex((l) => l.startsWith('verdict: '));
  const line = `because of ${originText(declaration)}: the check compares the packet with that declaration`;
  const story = at < 0 ? [...e.story, line] : [...e.story.slice(0, at + 1), line, ...e.story.slice(at + 1)];
  return { ...e, declaration, story };
}

/** The forward that publishes `port` of `guest` to `zone`, and where its clients send. */
function publishedBy(model: HostModel, zone: string, guest: string | undefined, proto: 'tcp' | 'udp', port: number): { addressed: string; port: number; what: string } | undefined {
  if (guest === undefined) return undefined;
  const covers = (f: ForwardModel, p: number) => f[proto].some(([lo, hi]) => lo <= p && p <= hi);
  for (const f of model.forwards) {
    const pub = f.publicV4[0];
    if (f.guest !== guest || !f.from.includes(zone) || pub === undefined || f[proto].length === 0) continue;
    const what = `forward ${f.index + 1} (${f.src.loc.file.split('/').pop()}:${f.src.loc.line})`;
    if (f.toPort === undefined && covers(f, port)) return { addressed: pub, port, what };
    if (f.toPort !== undefined && f.toPort === port) return { addressed: pub, port: f[proto][0]![0], what };
  }
  return undefined;
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
  return { packet: frame, filtered: frame, fromZone: s.zone, toZone: d.zone, path: 'forward', bridge, evaluation, story };
}

/** A DNATed frame br_netfilter bridges back onto the bridge it came from: bridge forward and inet forward, no routing and no source NAT. */
function rebridgedFlow(ruleset: Ruleset, translated: Packet, s: Side, d: Side, env: EvalEnv, story: string[]): FlowExplanation {
  const bridge = s.ifname!;
  const frame: Packet = { ...translated, iifname: s.port!, oifname: d.port! };
  story.push(`with br_netfilter (bridge-nf-call-iptables=1) the DNATed frame is bridged straight from port ${s.port} to port ${d.port} of ${bridge} (not routed, so not masqueraded): bridge forward, then the inet forward hook with ${bridge} as input and output interface`);
  const evaluation = evaluateBridgeForward(ruleset, bridge, frame, { ...env, brNetfilter: true });
  for (const step of evaluation.steps) storyStep(story, step, `${step.family === 'bridge' ? 'bridge ' : ''}${step.chain}`);
  story.push(`verdict: ${evaluation.verdict.toUpperCase()}${evaluation.decidedBy ? ` by ${originText(evaluation.decidedBy)}` : ' by the chain policy'}`);
  for (const n of evaluation.notes) story.push(`note: ${n}`);
  return { packet: frame, filtered: frame, fromZone: s.zone, toZone: d.zone, path: 'forward', bridge, evaluation, story };
}

function storyStep(story: string[], step: Evaluation['steps'][number], chain: string): void {
  if (step.outcome === 'jump' || step.outcome === 'goto') story.push(`  ${chain}: ${step.text} -> ${step.outcome}`);
  else if (step.outcome === 'matched' && ((step.effects ?? []).some((x) => x.startsWith('meta mark set')) || attaches(step))) {
    story.push(`  ${chain}: ${attaches(step) ? step.effects!.find((x) => x.startsWith('ct helper set')) : step.text}  [${originText(step.origin!)}]`);
  }
  else if (step.outcome === 'verdict' || step.outcome === 'policy') {
    // A verdict by a set element (a port forward's DNATed tuple) names the element's origin.
    const why = step.element ?? step.origin;
    story.push(`  ${chain}: ${step.text}${why ? `  [${originText(why)}]` : ''}`);
  } else if (step.outcome === 'map miss') story.push(`  ${chain}: ${step.text}: no element for this ${step.text.includes('vmap') ? 'interface' : 'key'}`);
}

/** A step that attached a conntrack helper to the connection. */
const attaches = (step: Evaluation['steps'][number]) => step.outcome === 'matched' && (step.effects ?? []).some((x) => x.startsWith('ct helper set'));

export function originText(o: Origin): string {
  return o.line > 0 ? `${o.what} (${o.file.split('/').pop()}:${o.line})` : o.what;
}

function describePacket(p: Packet): string {
  const ports = p.dport !== undefined ? ` port ${p.dport}` : p.icmpType ? ` ${p.icmpType}` : '';
  return `${p.proto} ${p.saddr} -> ${p.daddr}${ports}`;
}

export function splitHostPort(text: string): { host: string; port?: number } {
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
export function hostAddressIn(model: HostModel, zone: string, family: 4 | 6): string | undefined {
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
    if (zone.interfaces.length === 0) return { ok: false, error: `zone '${text}' has no interfaces` };
    // A routed guest's port carries only that guest's addresses (the fib check drops the rest):
    // a zone made only of routed guests is spoken for by its first guest.
    const ifname = zone.interfaces.find((n) => guestPortNamed(model, n)?.mode !== 'routed');
    if (ifname === undefined) {
      const g = model.guests.find((x) => x.interfaces.some((i) => i.mode === 'routed' && i.zone === zone.name && i.addresses.some((a) => a.family === family)));
      if (g === undefined) return { ok: false, error: `zone '${text}' has only routed guest ports and no guest there has an IPv${family} address` };
      const r = resolve(model, g.name, family, side);
      return r.ok ? { ok: true, value: { ...r.value, what: `zone '${text}' (as guest '${g.name}': only its routed guests send from it)` } } : r;
    }
    const addr = representative(model, zone, family);
    return { ok: true, value: { zone: zone.name, ifname, ...(addr ? { addr } : {}), what: `zone '${text}'` } };
  }
  const guest = model.guests.find((g) => g.name === text);
  if (guest) {
    const iface = guest.interfaces.find((i) => i.addresses.some((a) => a.family === family));
    if (!iface) return { ok: false, error: `guest '${text}' has no IPv${family} address` };
    return { ok: true, value: { zone: iface.zone, ifname: iface.mode === 'bridged' ? iface.bridge : iface.name, ...(iface.mode === 'bridged' ? { port: iface.name } : {}), addr: iface.addresses.find((a) => a.family === family)!.addr, ...(iface.mac ? { mac: iface.mac } : {}), guest: guest.name, what: `guest '${text}'` } };
  }
  // A guest's port by its host-side name (gw-asterisk, a Xen HVM guest's -emu tap).
  const gport = guestPortNamed(model, text);
  if (gport) {
    const addr = gport.addresses.find((a) => a.family === family)?.addr;
    return { ok: true, value: {
      zone: gport.zone, ifname: gport.mode === 'bridged' ? gport.bridge : text, ...(gport.mode === 'bridged' ? { port: text } : {}),
      ...(addr ? { addr } : {}), ...(gport.mac ? { mac: gport.mac } : {}), guest: gport.guest, what: `port ${text} of guest '${gport.guest}'`,
    } };
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
  if (!a.ok) return { ok: false, error: `--${side} '${text}' is not a zone, guest, guest port, interface, "host" or address (${someNames(flowEndpoints(model))})` };
  if (a.value.family !== family) return { ok: false, error: '--from and --to must be the same IP version' };
  const host = [...model.hostInterfaces, ...model.bridges].find((i) => i.addresses.some((x) => x.value === a.value.value && x.family === family));
  if (host) return { ok: true, value: { zone: side === 'to' ? HOST_ZONE : host.zone, ifname: host.name, addr: a.value.addr, what: `the host's address ${a.value.addr}` } };
  const owner = model.guests.flatMap((g) => g.interfaces).find((i) => i.addresses.some((x) => x.value === a.value.value && x.family === family));
  if (owner) return { ok: true, value: { zone: owner.zone, ifname: owner.mode === 'bridged' ? owner.bridge : owner.name, ...(owner.mode === 'bridged' ? { port: owner.name } : {}), addr: a.value.addr, ...(owner.mac ? { mac: owner.mac } : {}), guest: owner.guest, what: `guest '${owner.guest}'` } };
  const z = model.zones.find((zz) => zz.networks.some((n) => contains(n, a.value.value, family))) ?? model.zones.find((zz) => zz.public);
  if (!z || z.interfaces[0] === undefined) return { ok: false, error: `no zone holds ${a.value.addr}, and no internet-facing zone takes it` };
  return { ok: true, value: { zone: z.name, ifname: z.interfaces[0], addr: a.value.addr, what: `${a.value.addr} in zone '${z.name}'` } };
}

/** Every name --from and --to (and the what-if view) accept, besides addresses: "host", zones, guests, guest ports, host interfaces and bridge ports. */
export function flowEndpoints(model: HostModel): string[] {
  const names = [HOST_ZONE, ...model.zones.filter((z) => z.interfaces.length > 0).map((z) => z.name), ...model.guests.map((g) => g.name)];
  for (const g of model.guests) for (const i of g.interfaces) names.push(...i.hostNames);
  names.push(...model.hostInterfaces.map((i) => i.name), ...model.bridges.flatMap((b) => [b.name, ...b.ports]));
  return [...new Set(names)];
}

function someNames(names: string[]): string {
  return names.length <= 24 ? `one of: ${names.join(', ')}` : `e.g. ${names.slice(0, 24).join(', ')}, … (${names.length} names)`;
}
