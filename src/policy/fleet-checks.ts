// The checks only a fleet policy (hosts:) needs, across its hosts: where guests run, that what
// they need exists on every host they may move to, and that names, MACs and addresses do not
// meet on two hosts. What each host's own policy must satisfy is checked on its projection
// (fleet.ts), with the single-host checks.
import { contains, parseHostAddress } from './addr.js';
import { type DocPath, type Finding, error, suggestion } from './diagnostics.js';
import { guestIfName } from './names.js';
import type { Guest, Policy } from './schema.js';

type Report = (f: Finding) => void;

export function checkFleet(p: Policy): Finding[] {
  const findings: Finding[] = [];
  const report: Report = (f) => findings.push(f);
  const guests = Object.entries(p.guests ?? {});
  if (p.hosts === undefined) {
    // A single-host policy: host: and may_run_on: on a guest only mean something in a fleet.
    for (const [name, g] of guests) {
      for (const key of ['host', 'may_run_on'] as const) {
        if (g[key] !== undefined) {
          report({ ...error('fleet-shape', ['guests', name, key], `'${key}' only means something in a fleet policy, and this policy has no hosts:`,
            'declare the hosts under hosts: (each with its interfaces and bridges), or remove this key'), atKey: true });
        }
      }
    }
    return findings;
  }
  const hosts = p.hosts;
  const hostNames = Object.keys(hosts);
  if (p.host !== undefined) {
    report({ ...error('fleet-shape', ['host'], 'a fleet policy declares each host under hosts:, not host:',
      `move host.interfaces to hosts.<name>.interfaces${hostNames.length ? ` (hosts: ${hostNames.join(', ')})` : ''}`), atKey: true });
  }
  if (p.bridges !== undefined) {
    report({ ...error('fleet-shape', ['bridges'], 'a fleet policy declares the bridges of each host under hosts.<name>.bridges, not at the top',
      'move each bridge under the hosts that have it (the same name on every host a guest on it may run on)'), atKey: true });
  }
  if (hostNames.length === 0) {
    report({ ...error('fleet-shape', ['hosts'], 'hosts: declares no host', 'add at least one host with its interfaces and bridges, or remove hosts: for a single-host policy'), atKey: true });
    return findings;
  }

  const runsOn = new Map<string, string[]>();
  for (const [name, g] of guests) {
    const gpath = ['guests', name];
    if (g.host === undefined) {
      report({ ...error('fleet-shape', gpath, `guest '${name}' does not say which host it runs on`, `add host: with one of ${hostNames.join(', ')}`), atKey: true });
    } else if (!Object.hasOwn(hosts, g.host)) {
      report(error('unknown-host', [...gpath, 'host'], `unknown host '${g.host}'${suggestion(g.host, hostNames)}`, `the hosts are ${hostNames.join(', ')}`));
    }
    if (Array.isArray(g.may_run_on)) {
      g.may_run_on.forEach((h, i) => {
        if (!Object.hasOwn(hosts, h)) report(error('unknown-host', [...gpath, 'may_run_on', i], `unknown host '${h}'${suggestion(h, hostNames)}`, `the hosts are ${hostNames.join(', ')}`));
      });
    }
    runsOn.set(name, hostsOf(p, g));
  }

  checkBridgesEverywhere(p, guests, runsOn, report);
  checkRoutedReachable(p, guests, runsOn, report);
  checkAcrossHosts(p, guests, runsOn, report);
  return findings;
}

function hostsOf(p: Policy, g: Guest): string[] {
  const hosts = p.hosts ?? {};
  const all = g.may_run_on === 'all' ? Object.keys(hosts) : [...(g.host !== undefined ? [g.host] : []), ...(g.may_run_on ?? [])];
  return [...new Set(all)].filter((h) => Object.hasOwn(hosts, h));
}

type GuestEntries = [string, Guest][];

/** A bridged interface needs its bridge on every host the guest may run on: it moves with its bridge name. */
function checkBridgesEverywhere(p: Policy, guests: GuestEntries, runsOn: Map<string, string[]>, report: Report): void {
  for (const [name, g] of guests) {
    g.interfaces.forEach((iface, i) => {
      if (iface.mode !== 'bridged') return;
      const lacking = runsOn.get(name)!.filter((h) => !Object.hasOwn(p.hosts![h]!.bridges ?? {}, iface.bridge));
      if (lacking.length === 0) return;
      const where = lacking.length === 1 ? `host '${lacking[0]}'` : `hosts ${lacking.map((h) => `'${h}'`).join(', ')}`;
      report(error('fleet-missing-bridge', ['guests', name, 'interfaces', i, 'bridge'],
        `bridge '${iface.bridge}' is not declared on ${where}, where guest '${name}' may run`,
        `declare '${iface.bridge}' under hosts.${lacking[0]}.bridges, or take ${lacking.length === 1 ? 'that host' : 'those hosts'} out of the guest's may_run_on`));
    });
  }
}

/** The subnets a host is on: its interfaces' and bridges' addresses with their prefix. */
function hostSubnets(p: Policy, host: string) {
  const h = p.hosts![host]!;
  const texts = [...Object.values(h.interfaces ?? {}).flatMap((i) => i.addresses ?? []), ...Object.values(h.bridges ?? {}).flatMap((b) => b.addresses ?? [])];
  return texts.flatMap((t) => {
    const r = parseHostAddress(t);
    return r.ok && r.value.len < (r.value.family === 4 ? 32 : 128) ? [r.value.network] : [];
  });
}

/**
 * A routed guest that may move keeps its addresses; its neighbours find it on the new host only
 * if that host is on the address's segment (and answers for it there: proxy ARP/NDP, announced
 * by port-up). A routed subnet pointing at one host would not follow the guest.
 */
function checkRoutedReachable(p: Policy, guests: GuestEntries, runsOn: Map<string, string[]>, report: Report): void {
  const subnets = new Map<string, ReturnType<typeof hostSubnets>>();
  const subnetsOf = (h: string) => subnets.get(h) ?? subnets.set(h, hostSubnets(p, h)).get(h)!;
  for (const [name, g] of guests) {
    const hosts = runsOn.get(name)!;
    if (hosts.length < 2) continue;
    g.interfaces.forEach((iface, i) => {
      if (iface.mode !== 'routed') return;
      (iface.addresses ?? []).forEach((text, j) => {
        const a = parseHostAddress(text);
        if (!a.ok) return; // reported by the host's own checks
        const off = hosts.filter((h) => !subnetsOf(h).some((n) => n.family === a.value.family && contains(n, a.value.value, a.value.family)));
        if (off.length === 0) return;
        report(error('fleet-unreachable-address', ['guests', name, 'interfaces', i, 'addresses', j],
          `guest '${name}' may run on ${off.map((h) => `'${h}'`).join(', ')}, but its routed address ${text} is in no subnet of ${off.length === 1 ? "that host's" : "those hosts'"} interfaces or bridges, so it would not be reachable there after a move`,
          `give ${off.length === 1 ? `host '${off[0]}'` : 'those hosts'} an interface address in the address's subnet (e.g. ${text}'s /24 or /64 on the uplink), or take them out of may_run_on`));
      });
    });
  }
}

/**
 * Two guests that never share a host are not compared by any host's checks; their interface
 * names, MACs and addresses must still differ (a move would bring them together; MACs and
 * addresses meet on a shared segment anyway). Host interface addresses must differ across hosts.
 */
function checkAcrossHosts(p: Policy, guests: GuestEntries, runsOn: Map<string, string[]>, report: Report): void {
  type Owner = { guest: string } | { host: string };
  const hostsOfOwner = (o: Owner) => ('host' in o ? [o.host] : runsOn.get(o.guest)!);
  const seen = { ifname: new Map<string, [Owner, DocPath]>(), mac: new Map<string, [Owner, DocPath]>(), addr: new Map<string, [Owner, DocPath]>() };
  const claim = (kind: keyof typeof seen, key: string, owner: Owner, path: DocPath, what: string) => {
    const first = seen[kind].get(key);
    if (!first) {
      seen[kind].set(key, [owner, path]);
      return;
    }
    const [other, otherPath] = first;
    // Two owners on a common host are compared by that host's own checks; say it once.
    if (hostsOfOwner(other).some((h) => hostsOfOwner(owner).includes(h))) return;
    const code = kind === 'ifname' ? 'fleet-duplicate-interface' : kind === 'mac' ? 'fleet-duplicate-mac' : 'fleet-duplicate-address';
    const whose = 'host' in other ? `host '${other.host}' itself` : `guest '${other.guest}' on another host`;
    report({ ...error(code, path, `${what} is also used by ${whose}; interface names, MACs and addresses must be unique across the fleet`,
      'give each one its own, so that guests can move without meeting their twin'), related: [{ path: otherPath, message: 'first used here' }] });
  };
  for (const [h, host] of Object.entries(p.hosts ?? {})) {
    for (const [ifname, iface] of Object.entries(host.interfaces ?? {})) {
      (iface.addresses ?? []).forEach((text, j) => {
        const a = parseHostAddress(text);
        if (a.ok) claim('addr', a.value.addr, { host: h }, ['hosts', h, 'interfaces', ifname, 'addresses', j], `address ${text}`);
      });
    }
  }
  for (const [name, g] of guests) {
    g.interfaces.forEach((iface, i) => {
      const path = ['guests', name, 'interfaces', i];
      claim('ifname', guestIfName(name, i, iface.name), { guest: name }, iface.name !== undefined ? [...path, 'name'] : path, `interface name '${guestIfName(name, i, iface.name)}'`);
      if (iface.mac !== undefined) claim('mac', iface.mac.toLowerCase(), { guest: name }, [...path, 'mac'], `MAC ${iface.mac}`);
      (iface.addresses ?? []).forEach((text, j) => {
        const a = parseHostAddress(text);
        if (a.ok) claim('addr', a.value.addr, { guest: name }, [...path, 'addresses', j], `address ${text}`);
      });
    });
  }
}
