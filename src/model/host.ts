// Policy -> HostModel: the host as data. Names are resolved, addresses parsed, services expanded
// into ports, guest interfaces given their stable names and zones. Everything the compiler and
// the network setup need, and nothing about nftables.
import { type HostAddress, type Network, contains } from '../policy/addr.js';
import type { DocPath, Location } from '../policy/diagnostics.js';
import { isPublicZone } from '../policy/checks.js';
import { guestInterfaceNames } from '../policy/names.js';
import { type PortRange, portRanges } from '../policy/ports.js';
import { type Endpoint, endpointList, hostAddresses, nameIndex, resolveEndpoint } from '../policy/references.js';
import type { Policy, ServiceDef } from '../policy/schema.js';
import { BUILTIN_SERVICES } from '../policy/services.js';

export const HOST_ZONE = 'host';

/**
 * The gateway a routed guest uses, on the host side of every routed guest interface: the same
 * link-local addresses on each one, so guests need no per-host configuration (IPv4 as Xen's
 * vif-route does with the host's address, IPv6 as routers do with a link-local gateway).
 */
export const ROUTED_GATEWAY_V4 = '169.254.0.1';
export const ROUTED_GATEWAY_V6 = 'fe80::1';

/** Where a policy element was written: its document path and its place in the file. */
export interface Source {
  path: DocPath;
  loc: Location;
}

export interface ZoneModel {
  name: string;
  public: boolean;
  networks: Network[];
  /** Every interface whose traffic belongs to this zone: host interfaces, bridges, routed guest interfaces. */
  interfaces: string[];
  src: Source;
}

export interface HostInterfaceModel {
  name: string;
  zone: string;
  addresses: HostAddress[];
  src: Source;
}

export interface BridgeModel {
  name: string;
  zone: string;
  ports: string[];
  addresses: HostAddress[];
  src: Source;
}

interface GuestInterfaceBase {
  guest: string;
  index: number;
  /** The stable host-side name (vifname, <target dev>, veth.pair). */
  name: string;
  /**
   * Every host-side name this interface's traffic can appear on: `name`, and for Xen HVM guests
   * also the emulated NIC's tap `<name>-emu` (the guest uses it until its PV drivers load).
   * Every map and set keyed on guest interfaces holds all of them.
   */
  hostNames: string[];
  /** The Xen HVM emulated NIC's tap (also in hostNames). */
  emuTap?: string;
  /** Xen HVM only (with emuTap): the inet chain checking the sources of both ports (names.ts). */
  fibChain?: string;
  zone: string;
  mac?: string;
  addresses: HostAddress[];
  src: Source;
}
export type GuestInterfaceModel = (GuestInterfaceBase & { mode: 'bridged'; bridge: string }) | (GuestInterfaceBase & { mode: 'routed' });

export interface GuestModel {
  name: string;
  platform: 'xen' | 'kvm' | 'lxc';
  zone: string;
  router: boolean;
  xenType?: 'pv' | 'pvh' | 'hvm';
  /** An LXC container a non-root user starts: LXC ignores its veth.pair names. */
  lxcUnprivileged?: true;
  /** A fleet guest that may also run on other hosts: its uplink proxy entries come and go with its port (port-up/port-down), not with apply. */
  mobile?: true;
  interfaces: GuestInterfaceModel[];
  src: Source;
}

/** What a rule matches beyond addresses; an empty list matches every protocol. */
export type TrafficPart =
  | { proto: 'tcp' | 'udp'; ports?: PortRange[] }
  | { proto: 'icmp' | 'icmpv6'; types?: string[] };

/** One side of a rule narrowed to a zone: optionally only some addresses in it. */
export interface Place {
  /** A zone name, or HOST_ZONE for the host itself. */
  zone: string;
  /** Address constraints per family; absent = any address. An empty list = this family never matches. */
  v4?: string[];
  v6?: string[];
}

export type Action = 'accept' | 'drop' | 'reject';

export interface LimitModel {
  rate: number;
  per: 'second' | 'minute' | 'hour' | 'day';
  burst?: number;
}

/** One service (or one proto/ports pair) of a rule or forward and the traffic it stands for. */
export interface LabelledTraffic {
  label: string;
  traffic: TrafficPart[];
}

export interface ZonePolicyModel {
  index: number;
  from: Place[];
  to: Place[];
  action: Action;
  /** The user's log prefix; true to log with guestwall's own (`gw <from>-><to> <action>`); undefined for no logging. */
  log?: string | true;
  src: Source;
}

export interface RuleModel {
  index: number;
  description?: string;
  from: Place[];
  to: Place[];
  traffic: TrafficPart[];
  /** What the rule names, for people: service names, or "tcp/8000-8080"; empty for every protocol. */
  labels: string[];
  /** The traffic of each label apart (a service is one label), for the matrix to judge each service whole. */
  byLabel: LabelledTraffic[];
  action: Action;
  log?: string;
  limit?: LimitModel;
  src: Source;
}

export interface ForwardModel {
  index: number;
  /** The zones the service is published to. */
  from: string[];
  /** The guest that serves it, when it is one. */
  guest?: string;
  /** The zone and interface of the target, and its addresses. */
  targetZone: string;
  targetInterface?: string;
  targetV4: string;
  targetV6: string[];
  tcp: PortRange[];
  udp: PortRange[];
  /** What the forward names, for people: service names, or "tcp/8443". */
  labels: string[];
  /** The traffic of each label apart, as on RuleModel. */
  byLabel: LabelledTraffic[];
  toPort?: number;
  /** Public IPv4 addresses to match; empty when unknown (matched as "any local address" on the from zones' interfaces). */
  publicV4: string[];
  hairpin: boolean;
  src: Source;
}

export interface SourceNatModel {
  index: number;
  kind: 'masquerade' | 'snat';
  from: Place[];
  to: string;
  family: 'ipv4' | 'ipv6' | 'both';
  address?: HostAddress;
  src: Source;
}

export interface HelperModel {
  index: number;
  helper: 'sip' | 'ftp';
  from: Place[];
  to: Place[];
  ports: PortRange[];
  src: Source;
}

export interface HostModel {
  file: string;
  zones: ZoneModel[];
  hostInterfaces: HostInterfaceModel[];
  bridges: BridgeModel[];
  guests: GuestModel[];
  policies: ZonePolicyModel[];
  rules: RuleModel[];
  forwards: ForwardModel[];
  sourceNat: SourceNatModel[];
  helpers: HelperModel[];
  /**
   * Where the policy's top-level sections are written: the origin of the rules guestwall adds
   * because of a whole section (anti-spoofing for `guests:`, dispatch for `zones:`).
   */
  sections?: Partial<Record<PolicySection, Source>>;
}

export type PolicySection = 'zones' | 'bridges' | 'guests' | 'forwards' | 'nat';

/** Where a path is written: its value, or with `atKey` the key that names it. */
type Locate = (path: DocPath, atKey?: boolean) => Location;

/**
 * A policy has tens of thousands of elements and few are ever shown with their place (rule
 * origins, doctor): each is looked up in the file once, when first asked for.
 */
class LazySource implements Source {
  readonly #locate: Locate;
  readonly #atKey: boolean;
  #loc: Location | undefined;
  constructor(readonly path: DocPath, locate: Locate, atKey = false) {
    this.#locate = locate;
    this.#atKey = atKey;
  }
  get loc(): Location {
    return (this.#loc ??= this.#locate(this.path, this.#atKey));
  }
}

/** Build the model of a policy that has no errors (load.ts guarantees that). */
export function buildHostModel(p: Policy, file: string, locate: Locate): HostModel {
  const src = (path: DocPath): Source => new LazySource(path, locate);
  const services: Record<string, ServiceDef> = { ...BUILTIN_SERVICES, ...(p.services ?? {}) };
  const idx = nameIndex(p);

  const hostInterfaces: HostInterfaceModel[] = Object.entries(p.host?.interfaces ?? {}).map(([name, i]) => ({
    name, zone: i.zone, addresses: hostAddresses(i.addresses), src: src(['host', 'interfaces', name]),
  }));
  const bridges: BridgeModel[] = Object.entries(p.bridges ?? {}).map(([name, b]) => ({
    name, zone: b.zone, ports: b.ports ?? [], addresses: hostAddresses(b.addresses), src: src(['bridges', name]),
  }));
  const guests: GuestModel[] = Object.entries(p.guests ?? {}).map(([name, g]) => {
    const interfaces = g.interfaces.map((iface, index): GuestInterfaceModel => {
      // Every name comes from the name authority, as the checks claimed it.
      const names = guestInterfaceNames(name, index, iface.name, g.platform === 'xen' && g.xen?.type === 'hvm');
      const { name: ifname, hostNames } = names;
      const emu = names.emuTap !== undefined && names.fibChain !== undefined ? { emuTap: names.emuTap, fibChain: names.fibChain } : {};
      const addresses = hostAddresses(iface.addresses);
      const at = src(['guests', name, 'interfaces', index]);
      const mac = iface.mac !== undefined ? { mac: iface.mac.toLowerCase() } : {};
      // One literal per mode rather than a shared base spread into each: copying the base cost
      // more than the rest of the model at 10,000 guests.
      return iface.mode === 'bridged'
        ? { guest: name, index, name: ifname, hostNames, ...emu, addresses, src: at, ...mac, mode: 'bridged', bridge: iface.bridge, zone: p.bridges![iface.bridge]!.zone }
        : { guest: name, index, name: ifname, hostNames, ...emu, addresses, src: at, ...mac, mode: 'routed', zone: iface.zone ?? g.zone! };
    });
    return {
      name, platform: g.platform, zone: g.zone ?? interfaces[0]!.zone, router: g.router ?? false,
      ...(g.xen?.type !== undefined ? { xenType: g.xen.type } : {}),
      ...(g.platform === 'lxc' && g.lxc?.unprivileged === true ? { lxcUnprivileged: true as const } : {}), interfaces, src: src(['guests', name]),
    };
  });

  // The host names of routed guest interfaces by zone, in one pass over the guests.
  const routedByZone = new Map<string, string[]>();
  for (const g of guests) {
    for (const i of g.interfaces) {
      if (i.mode !== 'routed') continue;
      const names = routedByZone.get(i.zone);
      if (names) names.push(...i.hostNames);
      else routedByZone.set(i.zone, [...i.hostNames]);
    }
  }
  const zones: ZoneModel[] = Object.entries(p.zones).map(([name, z]) => ({
    name,
    public: isPublicZone(name, z),
    networks: (z.networks ?? []).flatMap((t) => hostAddresses([t]).map((a) => a.network)),
    interfaces: [
      ...hostInterfaces.filter((i) => i.zone === name).map((i) => i.name),
      ...bridges.filter((b) => b.zone === name).map((b) => b.name),
      ...(routedByZone.get(name) ?? []),
    ],
    src: src(['zones', name]),
  }));
  const zoneNames = zones.map((z) => z.name);

  const places = (v: string | string[], withHost: boolean): Place[] =>
    mergePlaces(endpointList(v).flatMap((text) => {
      const r = resolveEndpoint(text, idx);
      return r.ok ? endpointPlaces(r.value, zones, guests, withHost) : [];
    }));

  const policies: ZonePolicyModel[] = (p.policies ?? []).map((pol, index) => ({
    index, from: places(pol.from, true), to: places(pol.to, true), action: pol.action,
    ...(pol.log === true || typeof pol.log === 'string' ? { log: pol.log } : {}), src: src(['policies', index]),
  }));

  const rules: RuleModel[] = (p.rules ?? []).map((r, index) => ({
    index,
    ...(r.description !== undefined ? { description: r.description } : {}),
    from: places(r.from, true),
    to: places(r.to, true),
    traffic: trafficOf(r, services),
    labels: labelsOf(r),
    byLabel: byLabelOf(r, services),
    action: r.action,
    ...logPrefix(r.log, `rule ${index + 1}`),
    ...(r.limit !== undefined ? { limit: parseLimit(r.limit) } : {}),
    src: src(['rules', index]),
  }));

  const forwards: ForwardModel[] = (p.forwards ?? []).map((f, index) => {
    const from = endpointList(f.from).flatMap((t) => (t === 'all' ? zoneNames : [t]));
    const guest = guests.find((g) => g.name === f.to);
    const iface = guest?.interfaces.find((i) => i.addresses.some((a) => a.family === 4));
    const target = iface?.addresses.find((a) => a.family === 4);
    const addrTarget = guest ? undefined : hostAddresses([f.to])[0];
    const traffic = trafficOf(f, services);
    const ports = (proto: 'tcp' | 'udp') => traffic.flatMap((t) => (t.proto === proto ? (t.ports ?? [[1, 65535] as const]) : []));
    const publicV4 = f.address !== undefined
      ? hostAddresses([f.address]).filter((a) => a.family === 4).map((a) => a.addr)
      : hostInterfaces.filter((i) => from.includes(i.zone)).flatMap((i) => i.addresses.filter((a) => a.family === 4).map((a) => a.addr));
    const targetZone = iface?.zone ?? zones.find((z) => addrTarget && z.networks.some((n) => contains(n, addrTarget.value, addrTarget.family)))?.name ?? from[0]!;
    return {
      index, from, targetZone,
      ...(guest ? { guest: guest.name } : {}),
      ...(iface ? { targetInterface: iface.mode === 'bridged' ? iface.bridge : iface.name } : {}),
      targetV4: target?.addr ?? addrTarget?.addr ?? '',
      targetV6: (iface?.addresses ?? []).filter((a) => a.family === 6).map((a) => a.addr),
      tcp: ports('tcp'), udp: ports('udp'), labels: labelsOf(f), byLabel: byLabelOf(f, services),
      ...(f.to_port !== undefined ? { toPort: f.to_port } : {}),
      publicV4, hairpin: f.hairpin ?? true, src: src(['forwards', index]),
    };
  });

  const sourceNat: SourceNatModel[] = [
    ...(p.nat?.masquerade ?? []).map((m, index): SourceNatModel => ({
      index, kind: 'masquerade', from: places(m.from, false), to: m.to, family: m.family ?? 'ipv4', src: src(['nat', 'masquerade', index]),
    })),
    ...(p.nat?.snat ?? []).map((s, index): SourceNatModel => {
      const address = hostAddresses([s.address])[0]!;
      return { index, kind: 'snat', from: places(s.from, false), to: s.to, family: address.family === 4 ? 'ipv4' : 'ipv6', address, src: src(['nat', 'snat', index]) };
    }),
  ];

  const helpers: HelperModel[] = (p.helpers ?? []).map((h, index) => ({
    index, helper: h.helper, from: places(h.from, false), to: places(h.to, true),
    ports: h.ports !== undefined ? portRanges(h.ports) : [h.helper === 'sip' ? [5060, 5060] : [21, 21]],
    src: src(['helpers', index]),
  }));

  const sections: Partial<Record<PolicySection, Source>> = {};
  // At the key: a section's value starts at its first entry, a line below `guests:`.
  for (const key of ['zones', 'bridges', 'guests', 'forwards', 'nat'] as const) if (p[key] !== undefined) sections[key] = new LazySource([key], locate, true);
  return { file, zones, hostInterfaces, bridges, guests, policies, rules, forwards, sourceNat, helpers, sections };
}

/** Where an endpoint is, zone by zone. `all` covers every zone and, where allowed, the host. */
export function endpointPlaces(e: Endpoint, zones: ZoneModel[], guests: GuestModel[], withHost: boolean): Place[] {
  switch (e.kind) {
    case 'host':
      return [{ zone: HOST_ZONE }];
    case 'all':
      return [...zones.map((z) => ({ zone: z.name })), ...(withHost ? [{ zone: HOST_ZONE }] : [])];
    case 'zone':
      return [{ zone: e.zone }];
    case 'guest': {
      const g = guests.find((x) => x.name === e.guest)!;
      return g.interfaces.map((i) => ({
        zone: i.zone,
        v4: i.addresses.filter((a) => a.family === 4).map((a) => a.addr),
        v6: i.addresses.filter((a) => a.family === 6).map((a) => a.addr),
      }));
    }
    case 'address': {
      const n = e.network;
      const text = n.len === (n.family === 4 ? 32 : 128) ? n.addr : `${n.addr}/${n.len}`;
      const inside = zones.filter((z) => z.networks.some((zn) => zn.family === n.family && zn.start <= n.start && n.end <= zn.end));
      const where = inside.length > 0 ? inside : zones;
      return where.map((z) => (n.family === 4 ? { zone: z.name, v4: [text], v6: [] } : { zone: z.name, v4: [], v6: [text] }));
    }
  }
}

/** One place per zone: "to: [www1, www2]" in one zone is one rule matching both addresses. */
export function mergePlaces(list: Place[]): Place[] {
  const byZone = new Map<string, Place>();
  for (const p of list) {
    const prev = byZone.get(p.zone);
    if (!prev) byZone.set(p.zone, p);
    else if (prev.v4 === undefined || p.v4 === undefined) byZone.set(p.zone, { zone: p.zone }); // a whole zone covers any address in it
    else byZone.set(p.zone, { zone: p.zone, v4: [...new Set([...prev.v4, ...p.v4])], v6: [...new Set([...(prev.v6 ?? []), ...(p.v6 ?? [])])] });
  }
  return [...byZone.values()];
}

function labelsOf(r: { service?: string | string[]; proto?: string; ports?: unknown }): string[] {
  if (r.service !== undefined) return Array.isArray(r.service) ? r.service : [r.service];
  if (r.proto === undefined) return [];
  const ports = portRanges(r.ports as never).map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`));
  return [ports.length ? `${r.proto}/${ports.join(',')}` : r.proto];
}

function byLabelOf(r: { service?: string | string[]; proto?: string; ports?: unknown }, services: Record<string, ServiceDef>): LabelledTraffic[] {
  if (r.service === undefined) return [{ label: labelsOf(r)[0] ?? 'all', traffic: trafficOf(r, services) }];
  const names = Array.isArray(r.service) ? r.service : [r.service];
  return [...new Set(names)].map((label) => ({ label, traffic: trafficOf({ service: label }, services) }));
}

function trafficOf(r: { service?: string | string[]; proto?: string; ports?: unknown }, services: Record<string, ServiceDef>): TrafficPart[] {
  if (r.service !== undefined) {
    const defs = (Array.isArray(r.service) ? r.service : [r.service]).map((n) => services[n]!);
    const parts: TrafficPart[] = [];
    const tcp = defs.flatMap((d) => portRanges(d.tcp));
    const udp = defs.flatMap((d) => portRanges(d.udp));
    const icmp = defs.flatMap((d) => d.icmp ?? []);
    const icmpv6 = defs.flatMap((d) => d.icmpv6 ?? []);
    if (tcp.length) parts.push({ proto: 'tcp', ports: mergeRanges(tcp) });
    if (udp.length) parts.push({ proto: 'udp', ports: mergeRanges(udp) });
    if (icmp.length) parts.push({ proto: 'icmp', types: [...new Set(icmp)] });
    if (icmpv6.length) parts.push({ proto: 'icmpv6', types: [...new Set(icmpv6)] });
    return parts;
  }
  if (r.proto === 'tcp' || r.proto === 'udp') {
    const ports = portRanges(r.ports as never);
    return [ports.length ? { proto: r.proto, ports: mergeRanges(ports) } : { proto: r.proto }];
  }
  if (r.proto === 'icmp' || r.proto === 'icmpv6') return [{ proto: r.proto }];
  return [];
}

/** Sorted, non-overlapping, adjacent ranges joined: nft 1.0.6 refuses overlapping interval elements. */
export function mergeRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function logPrefix(log: boolean | string | undefined, what: string): { log?: string } {
  if (log === undefined || log === false) return {};
  return { log: typeof log === 'string' ? log : what };
}

function parseLimit(l: string | { rate: string; burst?: number | undefined }): LimitModel {
  const text = typeof l === 'string' ? l : l.rate;
  const [n, per] = text.split('/').map((s) => s.trim());
  const burst = typeof l === 'string' ? undefined : l.burst;
  return { rate: Number(n), per: per as LimitModel['per'], ...(burst !== undefined ? { burst } : {}) };
}
