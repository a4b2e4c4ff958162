// Cross-field checks on a policy that passed the schema: names, references, addresses, MACs,
// interface names, ports and forwards. Each check is a small function that reports findings
// into a list and never throws; load.ts places them at file:line:col.
import { type Network, contains, networkText, parseHostAddress, parseNetwork } from './addr.js';
import { type DocPath, type Finding, error, hasErrors, suggestion, warning } from './diagnostics.js';
import { IFNAME_MAX, UNSTABLE_PREFIXES } from './ifnames.js';
import { type Consumer, InterfaceNames, XEN_EMU_SUFFIX, guestIfName, guestInterfaceNames, ifnameBytes } from './names.js';
import { type PortRange, parsePort, portList, portRanges } from './ports.js';
import { type NameIndex, type Endpoint, RESERVED_NAMES, endpointList, nameIndex, resolveEndpoint, resolveZone } from './references.js';
import type { Policy, PortSpec, ServiceDef } from './schema.js';
import { checkForwardServices } from './forward-services.js';
import { describe } from './schema-findings.js';
import { BUILTIN_SERVICES, ICMP_TYPES, ICMPV6_TYPES } from './services.js';

type Report = (f: Finding) => void;

/** Every ordered pair of zones gets a chain, so the ruleset grows with the square of this. */
export const MAX_ZONES = 256;

/**
 * `p` may be a salvaged policy (load.ts): entries the schema refused are left out, list items
 * as holes so that "rule 3" stays rule 3 (forEach skips holes), and their names passed in
 * `known` so that references to them are not reported as unknown too.
 */
export function checkPolicy(p: Policy, known?: Partial<NameIndex>): Finding[] {
  const findings: Finding[] = [];
  const report: Report = (f) => findings.push(f);
  const idx = nameIndex(p);
  for (const k of ['zones', 'guests', 'bridges', 'services'] as const) for (const n of known?.[k] ?? []) idx[k].add(n);
  const zoneCount = Object.keys(p.zones).length;
  if (zoneCount > MAX_ZONES) {
    // Refused before the other checks: the answer would be the same after a long wait.
    return [{ ...error('input-too-large', ['zones'], `the policy declares ${zoneCount} zones; guestwall handles at most ${MAX_ZONES}`,
      'every pair of zones gets its own chain; group guests into fewer zones and tell them apart with rules'), atKey: true }];
  }
  // Listed once: a policy may have tens of thousands of guests, and listing a big object is not free.
  const guests = Object.entries(p.guests ?? {});
  checkNames(p, guests, report);
  const zoneNets = checkZones(p, report);
  checkInterfaces(p, guests, idx, zoneNets, report);
  checkServices(p, report);
  checkRules(p, idx, report);
  checkForwards(p, idx, report);
  checkForwardServices(p, report);
  checkNat(p, idx, report);
  // What a policy means is judged once it has no errors (and is whole): before that, the
  // warnings would mostly repeat the errors ("zone 'dmz' is empty" for a typo in a bridge's zone).
  if (!known && !hasErrors(findings)) checkReachability(p, guests, idx, report);
  return findings;
}

// ---- names -----------------------------------------------------------------------------

type GuestEntries = [string, NonNullable<Policy['guests']>[string]][];

function checkNames(p: Policy, guests: GuestEntries, report: Report): void {
  const owners = new Map<string, DocPath>();
  const claim = (name: string, path: DocPath, what: string) => {
    const reserved = RESERVED_MEANING.get(name);
    if (reserved !== undefined) {
      report({ ...error('reserved-name', path, `'${name}' cannot name a ${what}: in from/to it ${reserved}`, `rename the ${what}`), atKey: true });
      return;
    }
    const first = owners.get(name);
    if (first) {
      const other = first[0] === 'zones' ? 'zone' : 'guest';
      report({
        ...error('duplicate-name', path, `'${name}' names both a ${other} and a ${what}; a name in from/to must mean one thing`, `rename the ${what} or the ${other}`),
        atKey: true,
        related: [{ path: first, message: `the ${other} '${name}'`, atKey: true }],
      });
      return;
    }
    owners.set(name, path);
  };
  for (const z of Object.keys(p.zones)) claim(z, ['zones', z], 'zone');
  for (const [g] of guests) claim(g, ['guests', g], 'guest');
  for (const s of Object.keys(p.services ?? {})) {
    if (BUILTIN_SERVICES[s]) {
      report({ ...error('duplicate-name', ['services', s], `service '${s}' is built in and cannot be redefined`,
        `give yours another name (e.g. '${s}-custom') and use that name in rules and forwards`), atKey: true });
    }
  }
}

/** What the reserved words mean where they are used: the reason they cannot be names. */
const RESERVED_MEANING = new Map<string, string>(Object.entries({
  host: 'means this machine',
  all: 'means every zone',
  any: "would read as 'all', which is the word guestwall uses",
} satisfies Record<(typeof RESERVED_NAMES)[number], string>));

// ---- zones and addresses ---------------------------------------------------------------

type ZoneNets = Map<string, Network[]>;

function checkZones(p: Policy, report: Report): ZoneNets {
  const nets: ZoneNets = new Map();
  const all: { zone: string; net: Network; path: DocPath }[] = [];
  for (const [zone, z] of Object.entries(p.zones)) {
    const list: Network[] = [];
    (z.networks ?? []).forEach((text, i) => {
      const path = ['zones', zone, 'networks', i];
      const r = parseNetwork(text);
      if (!r.ok) return report(error('invalid-address', path, r.reason, r.reason.includes('write') ? undefined : 'write a network like 10.0.10.0/24 or fd00:10::/64'));
      all.push({ zone, net: r.value, path });
      list.push(r.value);
    });
    nets.set(zone, list);
  }
  for (const [first, later] of overlappingPairs(all)) {
    const [a, b] = [networkText(first.net), networkText(later.net)];
    const [outer, inner] = first.net.len <= later.net.len ? [first, later] : [later, first];
    const same = first.zone === later.zone;
    const message = same
      ? a === b ? `network ${b} is listed twice in zone '${later.zone}'` : `network ${b} overlaps ${a}, also in zone '${later.zone}'`
      : `network ${b} of zone '${later.zone}' overlaps ${a} of zone '${first.zone}'; an address must belong to one zone`;
    const hint = same
      ? a === b ? 'remove one of them' : `remove ${networkText(inner.net)}: ${networkText(outer.net)} already covers it`
      : a === b ? 'remove it from one of the zones'
      : `list only the parts of ${networkText(outer.net)} that zone '${outer.zone}' really uses, so that no address is in both zones`;
    report({ ...error('overlapping-networks', later.path, message, hint), related: [{ path: first.path, message: `${a} is declared here` }] });
  }
  return nets;
}

/**
 * Overlapping networks as (earlier, later) in file order. CIDR blocks either nest or are apart,
 * so one sweep in address order, keeping the blocks that enclose the current one on a stack,
 * finds them in n log n; each network is paired with the closest block around it only, which
 * flags every overlapping network without listing every pair of a deep nest.
 */
function overlappingPairs<T extends { net: Network }>(list: readonly T[]): [T, T][] {
  const cmp = (x: bigint, y: bigint) => (x < y ? -1 : x > y ? 1 : 0);
  const order = list.map((e, i) => ({ e, i }))
    .sort((x, y) => x.e.net.family - y.e.net.family || cmp(x.e.net.start, y.e.net.start) || cmp(y.e.net.end, x.e.net.end) || x.i - y.i);
  const enclosing: typeof order = [];
  const pairs: [typeof order[number], typeof order[number]][] = [];
  for (const cur of order) {
    while (enclosing.length > 0) {
      const top = enclosing[enclosing.length - 1]!;
      if (top.e.net.family === cur.e.net.family && top.e.net.end >= cur.e.net.start) break;
      enclosing.pop();
    }
    const outer = enclosing[enclosing.length - 1];
    if (outer) pairs.push(outer.i < cur.i ? [outer, cur] : [cur, outer]);
    enclosing.push(cur);
  }
  return pairs.sort((x, y) => x[1].i - y[1].i || x[0].i - y[0].i).map(([x, y]) => [x.e, y.e]);
}

function checkAddresses(list: string[] | undefined, basePath: DocPath, zone: string | undefined, zoneNets: ZoneNets, seen: Map<string, DocPath>, report: Report): void {
  (list ?? []).forEach((text, i) => {
    const path = [...basePath, i];
    const r = parseHostAddress(text);
    if (!r.ok) return report(error('invalid-address', path, r.reason, 'write an address like 10.0.10.5 or fd00:10::5 (with /24, /64 on the host and bridges)'));
    const key = r.value.addr; // canonical text: IPv6 always has a colon, IPv4 never
    const first = seen.get(key);
    if (first) {
      report({ ...error('duplicate-address', path, `address ${text} is already used by ${describe(first.slice(0, -2))}`, 'give every interface its own addresses'),
        related: [{ path: first, message: 'first used here' }] });
    } else seen.set(key, path);
    const nets = zone === undefined ? [] : (zoneNets.get(zone) ?? []).filter((n) => n.family === r.value.family);
    if (nets.length > 0 && !nets.some((n) => contains(n, r.value.value, r.value.family))) {
      report(error('address-outside-zone', path, `address ${text} is outside zone '${zone}' (${nets.map(networkText).join(', ')})`,
        `use an address inside the zone's networks, or add its network to zones.${zone}.networks`));
    }
  });
}

// ---- interfaces: host, bridges, guests --------------------------------------------------

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

function checkInterfaces(p: Policy, guests: GuestEntries, idx: NameIndex, zoneNets: ZoneNets, report: Report): void {
  // Every interface name is claimed once, in names.ts, against the kernel and each program it is written for.
  const ifnames = new InterfaceNames(report);
  const addresses = new Map<string, DocPath>();
  const macs = new Map<string, DocPath>();
  const zoneRef = (zone: string, path: DocPath) => {
    const r = resolveZone(zone, idx);
    if (!r.ok) report(error(r.kind, path, r.message));
    return r.ok;
  };
  // A bridge's name is written into the snippets of the guests on it: it must read back in each.
  const bridgeConsumers = new Map<string, Set<Consumer>>();
  for (const [, g] of guests) {
    for (const iface of g.interfaces) {
      if (iface.mode !== 'bridged') continue;
      const set = bridgeConsumers.get(iface.bridge) ?? new Set<Consumer>();
      set.add(g.platform === 'xen' ? 'xl' : g.platform === 'kvm' ? 'libvirt-bridge' : 'lxc');
      bridgeConsumers.set(iface.bridge, set);
    }
  }

  for (const [name, iface] of Object.entries(p.host?.interfaces ?? {})) {
    const path = ['host', 'interfaces', name];
    ifnames.claim(name, { path, atKey: true }, 'a host interface', ['sysctl', 'systemd-unit']);
    const zoneOk = zoneRef(iface.zone, [...path, 'zone']);
    checkAddresses(iface.addresses, [...path, 'addresses'], zoneOk ? iface.zone : undefined, new Map(), addresses, report);
  }
  for (const [name, br] of Object.entries(p.bridges ?? {})) {
    const path = ['bridges', name];
    ifnames.claim(name, { path, atKey: true }, `the name of bridge '${name}'`, [...(bridgeConsumers.get(name) ?? []), 'networkd', 'sysctl']);
    const zoneOk = zoneRef(br.zone, [...path, 'zone']);
    (br.ports ?? []).forEach((port, i) => ifnames.claim(port, { path: [...path, 'ports', i], atKey: false }, `a port of bridge '${name}'`, ['networkd', 'sysctl']));
    checkAddresses(br.addresses, [...path, 'addresses'], zoneOk ? br.zone : undefined, zoneNets, addresses, report);
  }
  for (const [gname, g] of guests) {
    const gpath = ['guests', gname];
    if (g.zone !== undefined) zoneRef(g.zone, [...gpath, 'zone']);
    const hvm = g.platform === 'xen' && g.xen?.type === 'hvm';
    if (g.platform === 'lxc' && g.lxc?.unprivileged === true) {
      const names = g.interfaces.map((iface, i) => `'${guestIfName(gname, i, iface.name)}'`).join(', ');
      report(warning('unstable-ifname', [...gpath, 'lxc', 'unprivileged'],
        `LXC ignores veth.pair when a non-root user starts the container, so '${gname}' gets random host-side names instead of ${names}, and the firewall rules keyed on them will not match it`,
        'start the container as root (it may still map its ids with lxc.idmap) and drop unprivileged: true'));
    }
    const snippet: Consumer = g.platform === 'xen' ? 'xl' : g.platform === 'kvm' ? 'libvirt-dev' : 'lxc';
    g.interfaces.forEach((iface, i) => {
      const path = [...gpath, 'interfaces', i];
      const names = guestInterfaceNames(gname, i, iface.name, hvm);
      const name = names.name;
      const at = { path: iface.name !== undefined ? [...path, 'name'] : path, atKey: false };
      const namePath = at.path;
      const max = hvm ? IFNAME_MAX - XEN_EMU_SUFFIX.length : IFNAME_MAX;
      const shorter = iface.name === undefined ? `set name: on this interface (at most ${max} characters), or shorten the guest's name` : `choose a name of at most ${max} characters`;
      // Routed ports are also named in networkd files, sysctl keys and the sh hooks (LXC's router mode configures its own).
      const consumers: Consumer[] = iface.mode === 'routed' ? [snippet, ...(g.platform === 'lxc' ? [] : ['networkd', 'sysctl', 'sh'] as const)] : [snippet];
      const derived = iface.name === undefined ? 'the host-side name derived for this interface,' : undefined;
      if (iface.name === undefined && ifnameBytes(name) > IFNAME_MAX) {
        report(error('ifname-too-long', path, `the host-side name derived for this interface, '${name}', has ${ifnameBytes(name)} characters; Linux allows at most ${IFNAME_MAX}`, shorter));
      } else if (ifnames.claim(name, at, `the interface of guest '${gname}'`, consumers, derived)) {
        if (names.emuTap !== undefined && ifnameBytes(names.emuTap) > IFNAME_MAX) {
          const n = ifnameBytes(names.emuTap);
          report(error('ifname-too-long', namePath, `Xen HVM guest '${gname}' also gets the tap '${names.emuTap}', which has ${n} ${n === names.emuTap.length ? 'characters' : 'bytes in UTF-8'}; Linux allows at most ${IFNAME_MAX}${n === names.emuTap.length ? '' : ' bytes'}`, shorter));
        } else if (names.emuTap !== undefined) {
          ifnames.claim(names.emuTap, at, `the emulated NIC's tap of Xen HVM guest '${gname}'`, consumers, `Xen HVM guest '${gname}' also gets the tap`);
        }
        if (iface.name !== undefined && UNSTABLE_PREFIXES.some((pre) => name.startsWith(pre))) {
          report(warning('unstable-ifname', namePath, `interface name '${name}' uses a prefix the hypervisors hand out and change on every boot; rules keyed on it will not last`,
            `pick a name that does not start with ${UNSTABLE_PREFIXES.join(', ')}`));
        }
      }
      let zone = g.zone;
      if (iface.mode === 'bridged') {
        const br = p.bridges && Object.hasOwn(p.bridges, iface.bridge) ? p.bridges[iface.bridge] : undefined;
        if (!br) {
          if (!idx.bridges.has(iface.bridge)) {
            report(error('unknown-bridge', [...path, 'bridge'], `unknown bridge '${iface.bridge}'${suggestion(iface.bridge, idx.bridges)}`,
              idx.bridges.size > 0 ? undefined : 'declare it under bridges:'));
          }
        } else {
          if (g.zone !== undefined && br.zone !== g.zone && i === 0) {
            report(error('unknown-zone', [...path, 'bridge'], `bridge '${iface.bridge}' is in zone '${br.zone}' but guest '${gname}' is in zone '${g.zone}'`,
              `put the guest in zone '${br.zone}', or its interface on a bridge of zone '${g.zone}'`));
          }
          zone = br.zone;
        }
      } else {
        if (iface.zone !== undefined && zoneRef(iface.zone, [...path, 'zone'])) zone = iface.zone;
        if (!iface.addresses || iface.addresses.length === 0) {
          report(error('missing-key', path, `routed interface ${i + 1} of guest '${gname}' needs 'addresses': the host routes to a routed guest by its addresses`,
            'add addresses: [ ... ] with the IPv4 and/or IPv6 addresses the guest uses'));
        }
        if (zone === undefined && i === 0) {
          report({ ...error('missing-key', gpath, `guest '${gname}' needs 'zone': its first interface is routed, so the zone cannot come from a bridge`,
            `add zone: with one of ${[...idx.zones].join(', ')}`), atKey: true });
        }
      }
      const zoneKnown = zone !== undefined && idx.zones.has(zone) ? zone : undefined;
      checkAddresses(iface.addresses, [...path, 'addresses'], zoneKnown, zoneNets, addresses, report);
      if (iface.mac !== undefined) {
        const mpath = [...path, 'mac'];
        if (!MAC.test(iface.mac)) {
          const other = /^([0-9a-f]{2}[-.]){5}[0-9a-f]{2}$/i.test(iface.mac) ? iface.mac.replace(/[-.]/g, ':') : undefined;
          report(error('invalid-mac', mpath, `'${iface.mac}' is not a MAC address`,
            other ? `write "${other}"` : 'write six hex pairs separated by colons, e.g. "02:00:0a:00:0a:0a"'));
        } else if (parseInt(iface.mac.slice(0, 2), 16) & 1) {
          const unicast = (parseInt(iface.mac.slice(0, 2), 16) & 0xfe).toString(16).padStart(2, '0') + iface.mac.slice(2);
          report(error('invalid-mac', mpath, `MAC ${iface.mac} is a multicast address (the lowest bit of its first byte is set); a guest needs a unicast one`,
            `write "${unicast}", or start locally administered MACs with 02`));
        } else {
          const key = iface.mac.toLowerCase();
          const first = macs.get(key);
          if (first) {
            report({ ...error('duplicate-mac', mpath, `MAC ${iface.mac} is already used by ${describe(first.slice(0, -1))}`, 'give every guest interface its own MAC'),
              related: [{ path: first, message: 'first used here' }] });
          } else macs.set(key, mpath);
        }
      }
    });
  }
}

// ---- services and ports ----------------------------------------------------------------

function checkPorts(spec: PortSpec | PortSpec[] | undefined, path: DocPath, report: Report): PortRange[] {
  const single = spec !== undefined && !Array.isArray(spec);
  return portList(spec).flatMap((s, i) => {
    const r = parsePort(s);
    if (!r.ok) {
      report(error(r.kind, single ? path : [...path, i], r.message));
      return [];
    }
    return [r.range];
  });
}

function checkServices(p: Policy, report: Report): void {
  for (const [name, s] of Object.entries(p.services ?? {})) checkServiceDef(s, ['services', name], name, report);
}

function checkServiceDef(s: ServiceDef, path: DocPath, name: string, report: Report): void {
  checkPorts(s.tcp, [...path, 'tcp'], report);
  checkPorts(s.udp, [...path, 'udp'], report);
  const icmpTypes = (key: 'icmp' | 'icmpv6', known: readonly string[], what: string) => (s[key] ?? []).forEach((t, i) => {
    if (known.includes(t)) return;
    const did = suggestion(t, known);
    report(error('unknown-icmp-type', [...path, key, i], `unknown ${what} type '${t}'${did}`, did ? undefined : `the ${what} types nft knows: ${known.join(', ')}`));
  });
  icmpTypes('icmp', ICMP_TYPES, 'ICMP');
  icmpTypes('icmpv6', ICMPV6_TYPES, 'ICMPv6');
  if (s.tcp === undefined && s.udp === undefined && !s.icmp?.length && !s.icmpv6?.length) {
    report(error('invalid-rule', path, `service '${name}' names no ports or ICMP types`, 'add tcp:, udp:, icmp: or icmpv6:'));
  }
}

// ---- rules, policies, forwards, NAT ----------------------------------------------------

const KIND_WORDS: Record<Endpoint['kind'], string> = { zone: 'a zone', guest: 'a guest', host: 'host', all: 'all', address: 'an address' };

function checkEndpoints(v: string | string[], path: DocPath, idx: NameIndex, report: Report, allowed: Endpoint['kind'][]): Endpoint[] {
  const list = endpointList(v);
  const single = !Array.isArray(v);
  const out: Endpoint[] = [];
  list.forEach((text, i) => {
    const epath = single ? path : [...path, i];
    const r = resolveEndpoint(text, idx, allowed);
    if (!r.ok) return report(error(r.kind, epath, r.message));
    if (!allowed.includes(r.value.kind)) {
      const words = allowed.map((k) => KIND_WORDS[k]);
      const takes = words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}` : words[0];
      const hint = path[0] === 'policies' ? 'policies are defaults between zones; for a guest or an address, write a rule under rules:' : undefined;
      return report(error('invalid-rule', epath, `'${text}' is ${KIND_WORDS[r.value.kind]}, but ${describe(path)} takes ${takes}`, hint));
    }
    out.push(r.value);
  });
  return out;
}

function checkServiceRefs(service: string | string[] | undefined, path: DocPath, idx: NameIndex, report: Report): void {
  if (service === undefined) return;
  const single = !Array.isArray(service);
  (single ? [service] : service).forEach((s, i) => {
    if (idx.services.has(s)) return;
    // Only for a name that is wrong: against the whole catalogue this was a fifth of a small apply's checks.
    const did = suggestion(s, idx.services);
    report(error('unknown-service', single ? path : [...path, i], `unknown service '${s}'${did}`, did ? undefined : 'define it under services:, or use proto: and ports:'));
  });
}

/** A rule names what it matches either by service or by proto/ports, never both. */
function checkMatchSpec(r: { service?: string | string[]; proto?: string; ports?: PortSpec | PortSpec[] }, path: DocPath, idx: NameIndex, report: Report): PortRange[] {
  checkServiceRefs(r.service, [...path, 'service'], idx, report);
  const what = path[0] === 'forwards' ? 'a forward' : 'a rule';
  if (r.service !== undefined && (r.proto !== undefined || r.ports !== undefined)) {
    report({ ...error('invalid-rule', [...path, r.proto !== undefined ? 'proto' : 'ports'], `${what} names its traffic by service: or by proto: and ports:, not both`,
      'keep one; for more ports than the service has, define your own service under services: with all of them'), atKey: true });
  }
  if (r.ports !== undefined && r.proto === undefined && r.service === undefined) {
    report({ ...error('missing-key', [...path, 'ports'], 'ports: needs proto: to say whether they are TCP or UDP ports', 'add proto: tcp or proto: udp'), atKey: true });
  }
  if (r.ports !== undefined && (r.proto === 'icmp' || r.proto === 'icmpv6')) {
    report({ ...error('invalid-rule', [...path, 'ports'], `${r.proto} has no ports`, 'remove ports:, or use a service with icmp: or icmpv6: types to match some types only'), atKey: true });
  }
  return checkPorts(r.ports, [...path, 'ports'], report);
}

function checkRules(p: Policy, idx: NameIndex, report: Report): void {
  (p.policies ?? []).forEach((pol, i) => {
    const path = ['policies', i];
    const from = checkEndpoints(pol.from, [...path, 'from'], idx, report, ['zone', 'host', 'all']);
    const to = checkEndpoints(pol.to, [...path, 'to'], idx, report, ['zone', 'host', 'all']);
    if (from.some((e) => e.kind === 'host') && to.some((e) => e.kind === 'host')) {
      report(error('invalid-rule', path, 'a policy from host to host means nothing; the host always reaches itself over lo'));
    }
  });
  (p.rules ?? []).forEach((r, i) => {
    const path = ['rules', i];
    const from = checkEndpoints(r.from, [...path, 'from'], idx, report, ['zone', 'guest', 'host', 'all', 'address']);
    const to = checkEndpoints(r.to, [...path, 'to'], idx, report, ['zone', 'guest', 'host', 'all', 'address']);
    if (from.length === 1 && to.length === 1 && from[0]!.kind === 'host' && to[0]!.kind === 'host') {
      report(error('invalid-rule', path, 'a rule from host to host means nothing; the host always reaches itself over lo'));
    }
    checkMatchSpec(r, path, idx, report);
  });
  (p.helpers ?? []).forEach((h, i) => {
    const path = ['helpers', i];
    checkEndpoints(h.from, [...path, 'from'], idx, report, ['zone', 'guest', 'all', 'address']);
    checkEndpoints(h.to, [...path, 'to'], idx, report, ['zone', 'guest', 'host', 'all', 'address']);
    checkPorts(h.ports, [...path, 'ports'], report);
  });
}

function forwardPorts(f: Policy['forwards'] extends (infer F)[] | undefined ? F : never, services: Record<string, ServiceDef>): { tcp: PortRange[]; udp: PortRange[] } {
  if (f.service !== undefined) {
    const names = Array.isArray(f.service) ? f.service : [f.service];
    const defs = names.map((n) => services[n]).filter((s): s is ServiceDef => s !== undefined);
    return { tcp: defs.flatMap((d) => portRanges(d.tcp)), udp: defs.flatMap((d) => portRanges(d.udp)) };
  }
  const ranges = portRanges(f.ports);
  return { tcp: f.proto === 'tcp' ? ranges : [], udp: f.proto === 'udp' ? ranges : [] };
}

function checkForwards(p: Policy, idx: NameIndex, report: Report): void {
  const services = { ...BUILTIN_SERVICES, ...(p.services ?? {}) };
  const claimed: { path: DocPath; index: number; to: string; address: string; ports: { tcp: PortRange[]; udp: PortRange[] } }[] = [];
  (p.forwards ?? []).forEach((f, i) => {
    const path = ['forwards', i];
    checkEndpoints(f.from, [...path, 'from'], idx, report, ['zone', 'all']);
    const to = checkEndpoints(f.to, [...path, 'to'], idx, report, ['guest', 'address']);
    checkMatchSpec(f, path, idx, report);
    if (f.service === undefined && f.proto === undefined && f.ports === undefined) {
      report(error('missing-key', path, `forward ${i + 1} needs service: or proto: with ports:`, 'add e.g. service: https, or proto: tcp with ports: 8443'));
    }
    if (f.proto !== undefined && f.ports === undefined && f.service === undefined) {
      report({ ...error('missing-key', [...path, 'proto'], `forward ${i + 1} needs ports: with proto:`, 'add the external ports, e.g. ports: 8443'), atKey: true });
    }
    const ports = forwardPorts(f, services);
    if (f.to_port !== undefined) {
      const r = parsePort(f.to_port);
      if (!r.ok) report(error(r.kind, [...path, 'to_port'], r.message));
      const all = [...ports.tcp, ...ports.udp];
      const singlePort = all.length > 0 && all.every(([lo, hi]) => lo === hi && lo === all[0]![0]);
      if (!singlePort) {
        report({ ...error('invalid-rule', [...path, 'to_port'], 'to_port translates one external port; this forward has several', 'write one forward per port, or drop to_port to keep the ports as they are'), atKey: true });
      }
    }
    if (to[0]?.kind === 'guest') {
      const g = p.guests?.[to[0].guest];
      const hasV4 = g?.interfaces.some((iface) => iface.addresses?.some((a) => !a.includes(':')));
      if (g && !hasV4) {
        report(error('invalid-rule', [...path, 'to'], `guest '${to[0].guest}' has no IPv4 address to forward to`, 'add its address to the guest interface'));
      }
    }
    // Forwards translate IPv4 only: IPv6 reaches guests by their own addresses, opened by the same forward.
    const v6Hint = 'forwards translate IPv4; the guest\'s IPv6 addresses are opened for the same ports without NAT';
    if (to[0]?.kind === 'address' && (to[0].network.family !== 4 || to[0].network.len !== 32)) {
      report(error('invalid-rule', [...path, 'to'], `forward ${i + 1} must go to one IPv4 address, not ${f.to}`, v6Hint));
    }
    if (f.address !== undefined) {
      const r = parseHostAddress(f.address);
      if (!r.ok) report(error('invalid-address', [...path, 'address'], r.reason));
      else if (r.value.family !== 4 || r.value.len !== 32) {
        report(error('invalid-address', [...path, 'address'], `the public address of forward ${i + 1} must be one IPv4 address, not ${f.address}`, v6Hint));
      }
    }
    const address = f.address ?? `from:${endpointList(f.from).join(',')}`;
    const portsPath = [...path, f.service !== undefined ? 'service' : 'ports'];
    for (const other of claimed) {
      if (other.address !== address) continue;
      const clash = (['tcp', 'udp'] as const).flatMap((proto) => {
        const c = firstClash(other.ports[proto], ports[proto]);
        return c ? [`${proto.toUpperCase()} ${c[0] === c[1] ? `port ${c[0]}` : `ports ${c[0]}-${c[1]}`}`] : [];
      });
      if (clash.length === 0) continue;
      const specs = portList(f.ports).map(String);
      const written = f.service !== undefined ? ` (service ${endpointList(f.service).join(', ')})`
        : specs.length === 1 && clash.length === 1 && clash[0]!.endsWith(` port ${specs[0]!.trim()}`) ? '' : ` (ports ${specs.join(', ')})`;
      report({
        ...error('forward-conflict', portsPath, `forward ${i + 1}${written} claims ${clash.join(' and ')}, which forward ${other.index + 1} already forwards to '${other.to}'`,
          'publish it on another external port with to_port:, or remove one of the forwards'),
        related: [{ path: other.path, message: `forward ${other.index + 1}` }],
      });
    }
    claimed.push({ path: portsPath, index: i, to: f.to, address, ports });
  });
}

/** The first range two port lists share, or undefined. */
function firstClash(a: readonly PortRange[], b: readonly PortRange[]): PortRange | undefined {
  for (const [alo, ahi] of a) for (const [blo, bhi] of b) if (alo <= bhi && blo <= ahi) return [Math.max(alo, blo), Math.min(ahi, bhi)];
  return undefined;
}

function checkNat(p: Policy, idx: NameIndex, report: Report): void {
  const mark = p.nat?.hairpin_mark;
  if (mark !== undefined && !isMarkBit(mark)) {
    report(error('invalid-hairpin-mark', ['nat', 'hairpin_mark'], `hairpin_mark ${mark >= 0 ? `0x${mark.toString(16)}` : mark} is not a single bit of the packet mark`,
      `write one bit of the 32-bit packet mark, 0x1 to 0x80000000, e.g. 0x1000 (the default); pick one no other software on the host uses (Kubernetes uses 0x4000 and 0x8000, Calico 0xffff0000, Cilium 0xf00, Tailscale 0xff0000)`));
  }
  (p.nat?.masquerade ?? []).forEach((m, i) => {
    const path = ['nat', 'masquerade', i];
    checkEndpoints(m.from, [...path, 'from'], idx, report, ['zone', 'guest', 'all', 'address']);
    const r = resolveZone(m.to, idx);
    if (!r.ok) report(error(r.kind, [...path, 'to'], r.message));
  });
  (p.nat?.snat ?? []).forEach((s, i) => {
    const path = ['nat', 'snat', i];
    checkEndpoints(s.from, [...path, 'from'], idx, report, ['zone', 'guest', 'all', 'address']);
    const r = resolveZone(s.to, idx);
    if (!r.ok) report(error(r.kind, [...path, 'to'], r.message));
    const a = parseHostAddress(s.address);
    if (!a.ok) report(error('invalid-address', [...path, 'address'], a.reason, 'write the address itself, e.g. 203.0.113.10; names are not resolved'));
  });
}

/** A single bit of the 32-bit packet mark. */
function isMarkBit(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 0x80000000 && (n & (n - 1)) === 0;
}

// ---- warnings about what the policy means ---------------------------------------------

/** Zones named like the internet face it unless the policy says otherwise. */
export function isPublicZone(name: string, zone: { public?: boolean | undefined }): boolean {
  return zone.public ?? ['net', 'wan', 'internet'].includes(name);
}

function checkReachability(p: Policy, guests: GuestEntries, idx: NameIndex, report: Report): void {
  const members = new Set<string>();
  for (const i of Object.values(p.host?.interfaces ?? {})) members.add(i.zone);
  for (const b of Object.values(p.bridges ?? {})) members.add(b.zone);
  for (const [, g] of guests) {
    for (const iface of g.interfaces) if (iface.mode === 'routed') members.add(iface.zone ?? g.zone ?? '');
  }
  for (const z of Object.keys(p.zones)) {
    if (!members.has(z)) {
      report({ ...warning('empty-zone', ['zones', z], `zone '${z}' has no interfaces, bridges or routed guests; no traffic is classified into it`,
        `set zone: ${z} on a host interface, a bridge or a routed guest interface, or remove the zone`), atKey: true });
    }
  }

  // Which zones something other than the zone itself (the host counts) may open a connection to.
  const reached = new Set<string>();
  const zonesOf = (e: Endpoint): string[] => {
    if (e.kind === 'zone') return [e.zone];
    if (e.kind === 'all' || e.kind === 'address') return [...idx.zones];
    if (e.kind === 'guest') {
      const g = p.guests?.[e.guest];
      return (g?.interfaces ?? []).map((iface) => (iface.mode === 'bridged' ? p.bridges?.[iface.bridge]?.zone : iface.zone) ?? g?.zone ?? '');
    }
    return [];
  };
  const resolveAll = (v: string | string[]) => endpointList(v).flatMap((t) => {
    const r = resolveEndpoint(t, idx);
    return r.ok ? [r.value] : [];
  });
  const opens = (from: string | string[], to: string | string[], action: string) => {
    if (action !== 'accept') return;
    const src = resolveAll(from);
    for (const dz of resolveAll(to).flatMap(zonesOf)) {
      if (src.some((s) => s.kind === 'all' || s.kind === 'address' || s.kind === 'host' || zonesOf(s).some((sz) => sz !== dz))) reached.add(dz);
    }
  };
  // forEach: a fleet's projection onto one host leaves the rules of other hosts' guests as holes.
  (p.policies ?? []).forEach((pol) => opens(pol.from, pol.to, pol.action));
  (p.rules ?? []).forEach((r) => opens(r.from, r.to, r.action));
  (p.forwards ?? []).forEach((f) => opens(f.from, f.to, 'accept'));
  for (const z of Object.keys(p.zones)) {
    if (members.has(z) && !reached.has(z)) {
      report({ ...warning('unreachable-zone', ['zones', z], `nothing outside zone '${z}' may open a connection to it: no policy, rule or forward accepts traffic to it`,
        `if '${z}' offers services, accept them with a rule or forward to: ${z}`), atKey: true });
    }
  }

  const publicZones = Object.entries(p.zones).filter(([n, z]) => isPublicZone(n, z)).map(([n]) => n);
  const fromPublic = (v: string | string[]) => resolveAll(v).some((e) => e.kind === 'all' || (e.kind === 'zone' && publicZones.includes(e.zone)));
  (p.policies ?? []).forEach((pol, i) => {
    if (pol.action === 'accept' && fromPublic(pol.from) && publicZones.length > 0) {
      const onlyPublic = resolveAll(pol.to).every((e) => e.kind === 'zone' && publicZones.includes(e.zone));
      if (!onlyPublic) {
        report(warning('permissive-public-zone', ['policies', i, 'action'], `policy ${i + 1} accepts every new connection from the internet-facing zone${publicZones.length > 1 ? 's' : ''} ${publicZones.map((z) => `'${z}'`).join(', ')}`,
          'accept from net only specific services with rules: and forwards:, and let the policy drop the rest'));
      }
    }
  });
  (p.rules ?? []).forEach((r, i) => {
    if (r.action === 'accept' && fromPublic(r.from) && r.service === undefined && r.proto === undefined && publicZones.length > 0) {
      const zones = resolveAll(r.from).flatMap((e) => (e.kind === 'zone' && publicZones.includes(e.zone) ? [e.zone] : e.kind === 'all' ? publicZones : []));
      report(warning('permissive-public-zone', ['rules', i], `rule ${i + 1} accepts every protocol and port from the internet-facing zone${zones.length > 1 ? 's' : ''} ${[...new Set(zones)].map((z) => `'${z}'`).join(', ')}`,
        'say what it is for with service: (or proto: and ports:)'));
    }
  });
}
