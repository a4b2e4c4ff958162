// What happens to a packet where it enters the host, before any routing decision: the bridge
// family's prerouting chain for a frame from a bridge port, and the inet prerouting chain with
// its `fib saddr . iif oif missing` check for a routed guest's port (`fib saddr oifname`, either
// of the two ports, for a Xen HVM guest's). The fib lookup reads the host's live routes, which
// the policy cannot know; what it does know is the routes guestwall itself installs (each routed
// guest's addresses via its port, with the Xen HVM -emu tap preferred) and the subnets of the
// host's own addresses. Explain answers with those and says so.
import { networkSetup } from '../emit/network.js';
import type { GuestInterfaceModel, HostModel } from '../model/host.js';
import type { Origin, Ruleset } from '../nft/ruleset.js';
import { type Network, contains, parseHostAddress, parseNetwork } from '../policy/addr.js';
import { type EvalEnv, type Evaluation, type Packet, evaluateBridgePrerouting } from './evaluate.js';

/** One route the policy makes the host have. */
export interface PolicyRoute {
  dst: Network;
  dev: string;
  /** Lower wins between routes of one prefix, as in the kernel. */
  metric: number;
  why: string;
}

/** The routes a host running this policy has, as far as the policy says: connected subnets, routed guests, the default route. */
export function policyRoutes(model: HostModel): PolicyRoute[] {
  const out: PolicyRoute[] = [];
  for (const i of [...model.hostInterfaces, ...model.bridges]) {
    for (const a of i.addresses) out.push({ dst: a.network, dev: i.name, metric: 0, why: `${i.name}'s subnet` });
  }
  for (const p of networkSetup(model).routedPorts) {
    for (const r of p.routes) {
      const n = parseNetwork(r.dst);
      if (n.ok) out.push({ dst: n.value, dev: p.name, metric: r.metric ?? 0, why: `guest ${p.guest}'s route` });
    }
  }
  // The default route is the admin's: assumed out of the internet-facing zone's first interface.
  const uplink = model.zones.find((z) => z.public)?.interfaces.find((n) => model.hostInterfaces.some((h) => h.name === n));
  if (uplink !== undefined) {
    for (const d of ['0.0.0.0/0', '::/0']) {
      const n = parseNetwork(d);
      if (n.ok) out.push({ dst: n.value, dev: uplink, metric: 1024, why: 'the default route (assumed)' });
    }
  }
  return out;
}

/** The route the kernel picks for `addr`: longest prefix, then lowest metric. */
export function routeTo(routes: PolicyRoute[], addr: string): PolicyRoute | undefined {
  const a = parseHostAddress(addr);
  if (!a.ok) return undefined;
  let best: PolicyRoute | undefined;
  for (const r of routes) {
    if (!contains(r.dst, a.value.value, a.value.family)) continue;
    if (best === undefined || r.dst.len > best.dst.len || (r.dst.len === best.dst.len && r.metric < best.metric)) best = r;
  }
  return best;
}

const LINK_LOCAL = parseNetwork('fe80::/10');

/**
 * `fib saddr . iif oif missing` with the routes the policy installs: the best route back to the
 * source must leave through the interface the packet came in on. A link-local source has a route
 * on every interface. `fib saddr oifname` (a Xen HVM guest's ports): the best route's interface.
 */
export function routeBackOf(model: HostModel): RouteBack {
  // Worked out once per model: the matrix asks for it hundreds of times, and a model never changes once built.
  let r = routeBacks.get(model);
  if (r === undefined) routeBacks.set(model, (r = makeRouteBack(model)));
  return r;
}

interface RouteBack {
  env: Pick<EvalEnv, 'routeBack' | 'routeOut'>;
  explain(p: Packet): string;
}

const routeBacks = new WeakMap<HostModel, RouteBack>();

function makeRouteBack(model: HostModel): RouteBack {
  const routes = policyRoutes(model);
  const linkLocal = (p: Packet) => {
    const a = parseHostAddress(p.saddr);
    return LINK_LOCAL.ok && a.ok && contains(LINK_LOCAL.value, a.value.value, a.value.family);
  };
  const routeBack = (p: Packet) => linkLocal(p) || routeTo(routes, p.saddr)?.dev === p.iifname;
  const routeOut = (p: Packet) => (linkLocal(p) ? p.iifname ?? '' : routeTo(routes, p.saddr)?.dev ?? '');
  const explain = (p: Packet) => {
    if (linkLocal(p)) return `${p.saddr} is link-local: every interface has a route to it`;
    const r = routeTo(routes, p.saddr);
    const uplink = routes.find((x) => x.why.startsWith('the default'))?.dev;
    const assumed = `assumed the host's routes are the ones the policy makes (connected subnets, routed guests' host routes${uplink ? `, a default route via ${uplink}` : ''}); live routes may differ`;
    if (r === undefined) return `fib: no route back to ${p.saddr} at all (${assumed})`;
    // A Xen HVM guest's two ports are checked as one (antispoof.ts): either carries its sources.
    const own = p.iifname !== undefined ? guestPortNamed(model, p.iifname) : undefined;
    const pair = own?.emuTap !== undefined ? own.hostNames : [p.iifname];
    const verdict = r.dev === p.iifname ? ', the interface it came in on'
      : pair.includes(r.dev) ? `, the other port of the same Xen HVM guest (${pair.join(' and ')} are checked as one)`
      : `, not ${pair.join(' or ')}`;
    return `fib: the route back to ${p.saddr} is ${r.why} via ${r.dev}${verdict} (${assumed})`;
  };
  return { env: { routeBack, routeOut }, explain };
}

/** The guest interface whose host-side name is `ifname` (the -emu tap of a Xen HVM guest included). */
export function guestPortNamed(model: HostModel, ifname: string): GuestInterfaceModel | undefined {
  let ports = portIndexes.get(model);
  if (ports === undefined) {
    ports = new Map();
    for (const g of model.guests) for (const i of g.interfaces) for (const n of i.hostNames) if (!ports.has(n)) ports.set(n, i);
    portIndexes.set(model, ports);
  }
  return ports.get(ifname);
}

const portIndexes = new WeakMap<HostModel, Map<string, GuestInterfaceModel>>();

/**
 * Anti-spoofing rules whose drop comes from what a guest interface declares (mac:, addresses:,
 * router:), by the kind after the last ':' of their origin id (`guests:spoof-mac`,
 * `guests:spoof-nd`; `builtin:` when the policy has no guests: section).
 */
const FROM_DECLARATION = ['spoof-', 'routed-antispoof', 'hvm-fib', 'rogue-', 'dhcp-client', 'dad-mld'];
const kindOf = (o: Origin) => o.id.slice(o.id.lastIndexOf(':') + 1);

/**
 * When an anti-spoofing rule decided, the guest interface whose declaration filled its sets: the
 * rule is built in, its elements are the guest's `mac:` and `addresses:` (or its lack of
 * `router: true`), and that is the YAML line to change.
 */
export function declarationBehind(model: HostModel, decidedBy: Origin | undefined, iifname: string | undefined): Origin | undefined {
  if (decidedBy === undefined || iifname === undefined || !FROM_DECLARATION.some((p) => kindOf(decidedBy).startsWith(p))) return undefined;
  const i = guestPortNamed(model, iifname);
  if (i === undefined) return undefined;
  const g = model.guests.find((x) => x.name === i.guest)!;
  const declared = [
    ...(i.mac !== undefined ? [`mac ${i.mac}`] : []),
    `addresses ${i.addresses.map((a) => a.addr).join(', ') || '(none)'}`,
    ...(kindOf(decidedBy).startsWith('rogue-') ? [g.router ? 'router: true' : 'not a router'] : []),
  ];
  const path = ['guests', g.name, 'interfaces', i.index] as const;
  return { id: `guests.${g.name}.interfaces[${i.index}]`, file: i.src.loc.file, line: i.src.loc.line, col: i.src.loc.col, what: `guest ${g.name} interface ${i.name} declares ${declared.join(', ')}`, path };
}

/** A frame from a bridge port on its way to the host's IP layer: the bridge family's prerouting decides first. */
export function bridgeArrival(ruleset: Ruleset, packet: Packet, port: string, env: EvalEnv): Evaluation {
  const { oifname: _, ...arriving } = packet;
  return evaluateBridgePrerouting(ruleset, { ...arriving, iifname: port }, env);
}
