// Cross-field checks on a policy that passed the schema: names, references, addresses, MACs,
// interface names, ports and forwards. Each check is a small function that reports findings
// into a list and never throws; load.ts places them at file:line:col.
import { type HostAddress, type Network, contains, networkText, overlaps, parseHostAddress, parseNetwork } from './addr.js';
import { type DocPath, type Finding, error, suggestion, warning } from './diagnostics.js';
import { UNSTABLE_PREFIXES, XEN_EMU_SUFFIX, guestIfName, ifnameProblem } from './ifnames.js';
import { type PortRange, parsePort, portList, portRanges, rangesOverlap } from './ports.js';
import { type NameIndex, type Endpoint, RESERVED_NAMES, endpointList, nameIndex, resolveEndpoint, resolveZone } from './references.js';
import type { Policy, PortSpec, ServiceDef } from './schema.js';
import { BUILTIN_SERVICES, ICMP_TYPES, ICMPV6_TYPES } from './services.js';

type Report = (f: Finding) => void;

export function checkPolicy(p: Policy): Finding[] {
  const findings: Finding[] = [];
  const report: Report = (f) => findings.push(f);
  const idx = nameIndex(p);
  checkNames(p, report);
  const zoneNets = checkZones(p, report);
  checkInterfaces(p, idx, zoneNets, report);
  checkServices(p, report);
  checkRules(p, idx, report);
  checkForwards(p, idx, report);
  checkNat(p, idx, report);
  checkReachability(p, idx, report);
  return findings;
}

// ---- names -----------------------------------------------------------------------------

function checkNames(p: Policy, report: Report): void {
  const owners = new Map<string, DocPath>();
  const claim = (name: string, path: DocPath, what: string) => {
    if ((RESERVED_NAMES as readonly string[]).includes(name)) {
      report({ ...error('reserved-name', path, `'${name}' is reserved in endpoints and cannot name a ${what}`, `rename the ${what}`), atKey: true });
      return;
    }
    const first = owners.get(name);
    if (first) {
      report({
        ...error('duplicate-name', path, `'${name}' names both a ${first[0] === 'zones' ? 'zone' : 'guest'} and a ${what}; a name in from/to must mean one thing`),
        atKey: true,
        related: [{ path: first, message: `'${name}' first defined here` }],
      });
      return;
    }
    owners.set(name, path);
  };
  for (const z of Object.keys(p.zones)) claim(z, ['zones', z], 'zone');
  for (const g of Object.keys(p.guests ?? {})) claim(g, ['guests', g], 'guest');
  for (const s of Object.keys(p.services ?? {})) {
    if (BUILTIN_SERVICES[s]) {
      report({ ...error('duplicate-name', ['services', s], `service '${s}' is built in; give yours another name`), atKey: true });
    }
  }
}

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
      if (!r.ok) return report(error('invalid-address', path, r.reason));
      for (const other of all) {
        if (overlaps(other.net, r.value)) {
          const same = other.zone === zone;
          report({
            ...error('overlapping-networks', path,
              same
                ? `network ${networkText(r.value)} overlaps ${networkText(other.net)} in the same zone`
                : `network ${networkText(r.value)} of zone '${zone}' overlaps ${networkText(other.net)} of zone '${other.zone}'; an address must belong to one zone`,
              same ? 'keep the larger network only' : 'split the networks so that they do not overlap'),
            related: [{ path: other.path, message: `${networkText(other.net)} is declared here` }],
          });
        }
      }
      all.push({ zone, net: r.value, path });
      list.push(r.value);
    });
    nets.set(zone, list);
  }
  return nets;
}

function checkAddresses(list: string[] | undefined, basePath: DocPath, zone: string | undefined, zoneNets: ZoneNets, seen: Map<string, DocPath>, report: Report): HostAddress[] {
  const out: HostAddress[] = [];
  (list ?? []).forEach((text, i) => {
    const path = [...basePath, i];
    const r = parseHostAddress(text);
    if (!r.ok) return report(error('invalid-address', path, r.reason));
    const key = `${r.value.family}/${r.value.addr}`;
    const first = seen.get(key);
    if (first) {
      report({ ...error('duplicate-address', path, `address ${r.value.addr} is already used`), related: [{ path: first, message: 'first used here' }] });
    } else seen.set(key, path);
    const nets = zone === undefined ? [] : (zoneNets.get(zone) ?? []).filter((n) => n.family === r.value.family);
    if (nets.length > 0 && !nets.some((n) => contains(n, r.value.value, r.value.family))) {
      report(error('address-outside-zone', path, `address ${r.value.addr} is outside zone '${zone}' (${nets.map(networkText).join(', ')})`,
        `use an address inside the zone's networks, or add its network to zones.${zone}.networks`));
    }
    out.push(r.value);
  });
  return out;
}

// ---- interfaces: host, bridges, guests --------------------------------------------------

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i;

function checkInterfaces(p: Policy, idx: NameIndex, zoneNets: ZoneNets, report: Report): void {
  const ifnames = new Map<string, DocPath>();
  const addresses = new Map<string, DocPath>();
  const macs = new Map<string, DocPath>();
  /** Reports a bad or duplicate name; true when the name is new and valid. */
  const claimIf = (name: string, path: DocPath, atKey: boolean): boolean => {
    const problem = ifnameProblem(name);
    if (problem) {
      report({ ...error(problem.kind, path, problem.message, problem.kind === 'ifname-too-long' ? 'choose a name of at most 15 characters' : undefined), atKey });
      return false;
    }
    const first = ifnames.get(name);
    if (first) {
      report({ ...error('duplicate-interface', path, `interface '${name}' is declared twice`), atKey, related: [{ path: first, message: 'first declared here' }] });
      return false;
    }
    ifnames.set(name, path);
    return true;
  };
  const zoneRef = (zone: string, path: DocPath) => {
    const r = resolveZone(zone, idx);
    if (!r.ok) report(error(r.kind, path, r.message));
    return r.ok;
  };

  for (const [name, iface] of Object.entries(p.host?.interfaces ?? {})) {
    const path = ['host', 'interfaces', name];
    claimIf(name, path, true);
    const zoneOk = zoneRef(iface.zone, [...path, 'zone']);
    checkAddresses(iface.addresses, [...path, 'addresses'], zoneOk ? iface.zone : undefined, new Map(), addresses, report);
  }
  for (const [name, br] of Object.entries(p.bridges ?? {})) {
    const path = ['bridges', name];
    claimIf(name, path, true);
    const zoneOk = zoneRef(br.zone, [...path, 'zone']);
    (br.ports ?? []).forEach((port, i) => claimIf(port, [...path, 'ports', i], false));
    checkAddresses(br.addresses, [...path, 'addresses'], zoneOk ? br.zone : undefined, zoneNets, addresses, report);
  }
  for (const [gname, g] of Object.entries(p.guests ?? {})) {
    const gpath = ['guests', gname];
    if (g.zone !== undefined) zoneRef(g.zone, [...gpath, 'zone']);
    const hvm = g.platform === 'xen' && g.xen?.type === 'hvm';
    g.interfaces.forEach((iface, i) => {
      const path = [...gpath, 'interfaces', i];
      const name = guestIfName(gname, i, iface.name);
      const namePath = iface.name !== undefined ? [...path, 'name'] : path;
      const derivedTooLong = iface.name === undefined && name.length > 15;
      if (derivedTooLong) {
        report(error('ifname-too-long', path, `the derived interface name '${name}' is longer than 15 characters`, "set 'name:' on this interface"));
      } else if (claimIf(name, namePath, false)) {
        if (hvm && name.length + XEN_EMU_SUFFIX.length > 15) {
          report(error('ifname-too-long', namePath, `Xen HVM guest '${gname}' also gets the tap '${name}${XEN_EMU_SUFFIX}', which is longer than 15 characters`,
            'choose a name of at most 11 characters'));
        } else if (iface.name !== undefined && UNSTABLE_PREFIXES.some((pre) => name.startsWith(pre))) {
          report(warning('unstable-ifname', namePath, `interface name '${name}' uses a prefix the hypervisors hand out and change on every boot; rules keyed on it will not last`,
            `pick a name that does not start with ${UNSTABLE_PREFIXES.join(', ')}`));
        }
      }
      let zone = g.zone;
      if (iface.mode === 'bridged') {
        const br = p.bridges?.[iface.bridge];
        if (!br) {
          report(error('unknown-bridge', [...path, 'bridge'], `unknown bridge '${iface.bridge}'${suggestion(iface.bridge, idx.bridges)}`));
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
          report(error('invalid-rule', path, `routed interface ${i + 1} of guest '${gname}' has no addresses; the host routes to a routed guest by its addresses`,
            'add addresses: [ ... ] with the IPv4 and/or IPv6 addresses the guest uses'));
        }
      }
      if (zone === undefined && i === 0 && g.zone === undefined) {
        report(error('missing-key', gpath, `guest '${gname}' needs 'zone' (its first interface is routed, so the zone cannot come from a bridge)`));
      }
      const zoneKnown = zone !== undefined && idx.zones.has(zone) ? zone : undefined;
      checkAddresses(iface.addresses, [...path, 'addresses'], zoneKnown, zoneNets, addresses, report);
      if (iface.mac !== undefined) {
        const mpath = [...path, 'mac'];
        if (!MAC.test(iface.mac)) {
          report(error('invalid-mac', mpath, `'${iface.mac}' is not a MAC address`, 'write six hex pairs separated by colons, e.g. 02:00:0a:00:0a:0a'));
        } else if (parseInt(iface.mac.slice(0, 2), 16) & 1) {
          report(error('invalid-mac', mpath, `MAC ${iface.mac} is a multicast address; a guest needs a unicast one`,
            'clear the lowest bit of the first byte (locally administered unicast starts with 02)'));
        } else {
          const key = iface.mac.toLowerCase();
          const first = macs.get(key);
          if (first) report({ ...error('duplicate-mac', mpath, `MAC ${iface.mac} is already used`), related: [{ path: first, message: 'first used here' }] });
          else macs.set(key, mpath);
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
  (s.icmp ?? []).forEach((t, i) => {
    if (!(ICMP_TYPES as readonly string[]).includes(t)) report(error('wrong-type', [...path, 'icmp', i], `unknown ICMP type '${t}'${suggestion(t, ICMP_TYPES)}`));
  });
  (s.icmpv6 ?? []).forEach((t, i) => {
    if (!(ICMPV6_TYPES as readonly string[]).includes(t)) report(error('wrong-type', [...path, 'icmpv6', i], `unknown ICMPv6 type '${t}'${suggestion(t, ICMPV6_TYPES)}`));
  });
  if (s.tcp === undefined && s.udp === undefined && !s.icmp?.length && !s.icmpv6?.length) {
    report(error('invalid-rule', path, `service '${name}' names no ports or ICMP types`, 'add tcp:, udp:, icmp: or icmpv6:'));
  }
}

// ---- rules, policies, forwards, NAT ----------------------------------------------------

function checkEndpoints(v: string | string[], path: DocPath, idx: NameIndex, report: Report, allowed: Endpoint['kind'][]): Endpoint[] {
  const list = endpointList(v);
  const single = !Array.isArray(v);
  const out: Endpoint[] = [];
  list.forEach((text, i) => {
    const epath = single ? path : [...path, i];
    const r = resolveEndpoint(text, idx);
    if (!r.ok) return report(error(r.kind, epath, r.message));
    if (!allowed.includes(r.value.kind)) {
      return report(error('invalid-rule', epath, `'${text}' is a ${r.value.kind}; here only ${allowed.join(', ')} ${allowed.length > 1 ? 'are' : 'is'} allowed`));
    }
    out.push(r.value);
  });
  return out;
}

function checkServiceRefs(service: string | string[] | undefined, path: DocPath, idx: NameIndex, report: Report): void {
  if (service === undefined) return;
  const single = !Array.isArray(service);
  (single ? [service] : service).forEach((s, i) => {
    if (!idx.services.has(s)) report(error('unknown-service', single ? path : [...path, i], `unknown service '${s}'${suggestion(s, idx.services)}`, 'define it under services:, or use proto: and ports:'));
  });
}

/** A rule names what it matches either by service or by proto/ports, never both. */
function checkMatchSpec(r: { service?: string | string[]; proto?: string; ports?: PortSpec | PortSpec[] }, path: DocPath, idx: NameIndex, report: Report): PortRange[] {
  checkServiceRefs(r.service, [...path, 'service'], idx, report);
  if (r.service !== undefined && (r.proto !== undefined || r.ports !== undefined)) {
    report(error('invalid-rule', [...path, r.proto !== undefined ? 'proto' : 'ports'], 'a rule takes either service: or proto:/ports:, not both', 'define a service for the combination'));
  }
  if (r.ports !== undefined && r.proto === undefined) {
    report(error('invalid-rule', [...path, 'ports'], "ports: needs proto: tcp or udp"));
  }
  if (r.ports !== undefined && (r.proto === 'icmp' || r.proto === 'icmpv6')) {
    report(error('invalid-rule', [...path, 'ports'], `${r.proto} has no ports`, 'use a service with icmp: or icmpv6: types instead'));
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
  const claimed: { path: DocPath; address: string; ports: { tcp: PortRange[]; udp: PortRange[] } }[] = [];
  (p.forwards ?? []).forEach((f, i) => {
    const path = ['forwards', i];
    checkEndpoints(f.from, [...path, 'from'], idx, report, ['zone', 'all']);
    const to = checkEndpoints(f.to, [...path, 'to'], idx, report, ['guest', 'address']);
    checkMatchSpec(f, path, idx, report);
    if (f.service === undefined && f.proto === undefined) {
      report(error('missing-key', path, `forward ${i + 1} needs service: or proto: with ports:`));
    }
    if (f.proto !== undefined && f.ports === undefined) report(error('missing-key', path, `forward ${i + 1} needs ports: with proto:`));
    const ports = forwardPorts(f, services);
    if (f.to_port !== undefined) {
      const r = parsePort(f.to_port);
      if (!r.ok) report(error(r.kind, [...path, 'to_port'], r.message));
      const all = [...ports.tcp, ...ports.udp];
      const singlePort = all.length > 0 && all.every(([lo, hi]) => lo === hi && lo === all[0]![0]);
      if (!singlePort) {
        report(error('invalid-rule', [...path, 'to_port'], 'to_port translates one external port; this forward has several', 'write one forward per port, or drop to_port to keep the ports as they are'));
      }
    }
    if (to[0]?.kind === 'guest') {
      const g = p.guests?.[to[0].guest];
      const hasV4 = g?.interfaces.some((iface) => iface.addresses?.some((a) => !a.includes(':')));
      if (g && !hasV4) {
        report(error('invalid-rule', [...path, 'to'], `guest '${to[0].guest}' has no IPv4 address to forward to`, 'add its address to the guest interface'));
      }
    }
    if (f.address !== undefined) {
      const r = parseHostAddress(f.address);
      if (!r.ok) report(error('invalid-address', [...path, 'address'], r.reason));
    }
    const address = f.address ?? `from:${endpointList(f.from).join(',')}`;
    for (const other of claimed) {
      if (other.address === address && (rangesOverlap(other.ports.tcp, ports.tcp) || rangesOverlap(other.ports.udp, ports.udp))) {
        report({
          ...error('forward-conflict', path, `forward ${i + 1} claims an external port that an earlier forward already forwards`, 'use another external port and to_port, or remove one forward'),
          related: [{ path: other.path, message: 'the earlier forward' }],
        });
      }
    }
    claimed.push({ path, address, ports });
  });
}

function checkNat(p: Policy, idx: NameIndex, report: Report): void {
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
    if (!a.ok) report(error('invalid-address', [...path, 'address'], a.reason));
  });
}

// ---- warnings about what the policy means ---------------------------------------------

/** Zones named like the internet face it unless the policy says otherwise. */
export function isPublicZone(name: string, zone: { public?: boolean | undefined }): boolean {
  return zone.public ?? ['net', 'wan', 'internet'].includes(name);
}

function checkReachability(p: Policy, idx: NameIndex, report: Report): void {
  const members = new Set<string>();
  for (const i of Object.values(p.host?.interfaces ?? {})) members.add(i.zone);
  for (const b of Object.values(p.bridges ?? {})) members.add(b.zone);
  for (const g of Object.values(p.guests ?? {})) {
    for (const iface of g.interfaces) if (iface.mode === 'routed') members.add(iface.zone ?? g.zone ?? '');
  }
  for (const z of Object.keys(p.zones)) {
    if (!members.has(z)) {
      report({ ...warning('empty-zone', ['zones', z], `zone '${z}' has no interfaces, bridges or routed guests; no traffic is classified into it`,
        `give a host interface, a bridge or a routed guest interface zone '${z}'`), atKey: true });
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
  for (const pol of p.policies ?? []) opens(pol.from, pol.to, pol.action);
  for (const r of p.rules ?? []) opens(r.from, r.to, r.action);
  for (const f of p.forwards ?? []) opens(f.from, f.to, 'accept');
  for (const z of Object.keys(p.zones)) {
    if (members.has(z) && !reached.has(z)) {
      report({ ...warning('unreachable-zone', ['zones', z], `nothing outside zone '${z}' may open a connection to it`,
        'add a policy or rule with to: ' + z + ' if that is not intended'), atKey: true });
    }
  }

  const publicZones = Object.entries(p.zones).filter(([n, z]) => isPublicZone(n, z)).map(([n]) => n);
  const fromPublic = (v: string | string[]) => resolveAll(v).some((e) => e.kind === 'all' || (e.kind === 'zone' && publicZones.includes(e.zone)));
  (p.policies ?? []).forEach((pol, i) => {
    if (pol.action === 'accept' && fromPublic(pol.from) && publicZones.length > 0) {
      const onlyPublic = resolveAll(pol.to).every((e) => e.kind === 'zone' && publicZones.includes(e.zone));
      if (!onlyPublic) {
        report(warning('permissive-public-zone', ['policies', i], `this policy accepts every new connection from the internet-facing zone${publicZones.length > 1 ? 's' : ''} ${publicZones.map((z) => `'${z}'`).join(', ')}`,
          'accept from net only specific services with rules: and forwards:, and let the policy drop the rest'));
      }
    }
  });
  (p.rules ?? []).forEach((r, i) => {
    if (r.action === 'accept' && fromPublic(r.from) && r.service === undefined && r.proto === undefined && publicZones.length > 0) {
      report(warning('permissive-public-zone', ['rules', i], `rule ${i + 1} accepts every protocol and port from the internet-facing zone`, 'name the service: or proto:/ports: it is for'));
    }
  });
}
