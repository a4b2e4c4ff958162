// NetworkSetup + what a host has now + what guestwall owns there -> the `ip`/`sysctl` steps that
// bring it to the setup. Pure, so the planner is tested without a kernel; src/apply/network.ts
// reads the live state and the owned record and runs the steps.
// guestwall removes only what it created: routes that carry its route protocol (ROUTE_PROTOCOL),
// and the proxy entries, addresses and sysctls its owned record lists. It never deletes a link,
// and it touches no interface the setup (or its own record) does not name.
import type { NetworkSetup } from './network.js';

/**
 * The route protocol of guestwall's routes (rtm_protocol, 0-255; the kernel interprets only
 * values below 4, RTPROT_STATIC, and passes the rest back as they are). 158 is unused by the
 * routing daemons iproute2 and FRR name. Always passed to `ip` as a number, so it works without
 * /etc/iproute2/rt_protos.d/guestwall.conf (install writes it, to show "proto guestwall").
 */
export const ROUTE_PROTOCOL = 158;
export const ROUTE_PROTOCOL_NAME = 'guestwall';

export interface LiveLink {
  ifname: string;
  /** linkinfo.info_kind ("bridge", "veth"), absent for plain devices. */
  kind?: string;
  master?: string;
  up: boolean;
  /** Bridges only. */
  stpState?: number;
  forwardDelay?: number;
}

export interface LiveAddress {
  ifname: string;
  /** "192.168.1.1/24", as ip prints local/prefixlen. */
  cidr: string;
}

export interface LiveRoute {
  /** With its prefix length ("203.0.113.20/32"). */
  dst: string;
  dev?: string;
  metric?: number;
  /** Carries ROUTE_PROTOCOL: guestwall (apply or a hook) created it. */
  owned?: boolean;
}

export interface LiveProxy {
  address: string;
  dev: string;
}

export interface LiveNetwork {
  links: LiveLink[];
  addresses: LiveAddress[];
  routes: LiveRoute[];
  proxies: LiveProxy[];
  /** Sysctl key -> current value; absent when the key does not exist (its interface is missing). */
  sysctls: Record<string, string>;
}

/** A sysctl guestwall changed, with the value it had before (what removal and rollback put back). */
export interface OwnedSysctl {
  key: string;
  value: string;
  before: string;
}

/**
 * What guestwall set on the host network and may therefore undo, as recorded in its state
 * (routes need no record: they carry ROUTE_PROTOCOL). Bridges and links are never removed.
 */
export interface OwnedNetwork {
  proxies: LiveProxy[];
  addresses: LiveAddress[];
  sysctls: OwnedSysctl[];
}

export const NOTHING_OWNED: OwnedNetwork = { proxies: [], addresses: [], sysctls: [] };

export interface NetworkStep {
  program: 'ip' | 'sysctl';
  args: string[];
  /** What the step does, for progress lines ("br-lan: add address 192.168.1.1/24"). */
  what: string;
  /** Takes away something guestwall created (shown as "-" by diff). */
  remove?: true;
}

export interface NetworkPlan {
  steps: NetworkStep[];
  /** What was left alone and why (guest ports not there yet, conflicts). */
  notes: string[];
  /** What guestwall owns once every step ran. */
  owned: OwnedNetwork;
}

/** The owned state of one apply: what the host network looked like, for rollback. */
export interface NetworkSnapshot {
  /** guestwall's routes (ROUTE_PROTOCOL) that were live. */
  routes: LiveRoute[];
  owned: OwnedNetwork;
}

const ip = (args: string[], what: string): NetworkStep => ({ program: 'ip', args, what });

/** The sysctl keys the planner compares: apply reads exactly these. */
export function sysctlKeys(setup: NetworkSetup): string[] {
  return setup.sysctls.map((s) => s.key);
}

export function planNetwork(setup: NetworkSetup, live: LiveNetwork, owned: OwnedNetwork = NOTHING_OWNED): NetworkPlan {
  const steps: NetworkStep[] = [];
  const notes: string[] = [];
  const own = structuredClone(owned);
  const addedAddress = (ifname: string, cidr: string) => {
    if (!own.addresses.some((a) => a.ifname === ifname && a.cidr === cidr)) own.addresses.push({ ifname, cidr });
  };
  const links = new Map(live.links.map((l) => [l.ifname, l]));
  const hasAddress = (ifname: string, cidr: string) => live.addresses.some((a) => a.ifname === ifname && a.cidr === cidr);
  const hasRoute = (dst: string, dev: string, metric: number | undefined) =>
    live.routes.some((r) => r.dst === dst && r.dev === dev && (metric === undefined || r.metric === metric));
  const setSysctl = (key: string, value: string, why: string) => {
    const now = live.sysctls[key];
    if (now === value) return;
    steps.push({ program: 'sysctl', args: ['-q', '-w', `${key}=${value}`], what: `${key}=${value} (${why})` });
    // The first value guestwall found is what it puts back; a key it already owns keeps that one.
    if (now !== undefined && !own.sysctls.some((o) => o.key === key)) own.sysctls.push({ key, value, before: now });
  };

  steps.push(...removals(setup, live, own, notes));

  // Forwarding and rp_filter first: everything after assumes a router.
  for (const s of setup.sysctls) if (s.ifname === undefined) setSysctl(s.key, s.value, s.why);

  for (const b of setup.bridges) {
    const link = links.get(b.name);
    if (link && link.kind !== 'bridge') {
      notes.push(`${b.name} exists but is not a bridge (${link.kind ?? 'a device'}); left alone: rename or remove it, then apply again`);
      continue;
    }
    if (!link) steps.push(ip(['link', 'add', 'name', b.name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], `${b.name}: create bridge (no STP, no forward delay)`));
    else if (link.stpState !== 0 || link.forwardDelay !== 0) steps.push(ip(['link', 'set', 'dev', b.name, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], `${b.name}: STP off, forward delay 0`));
    for (const a of b.addresses) {
      if (link && hasAddress(b.name, a)) continue;
      steps.push(ip(['address', 'add', a, 'dev', b.name], `${b.name}: add address ${a}`));
      addedAddress(b.name, a);
    }
    if (!link?.up) steps.push(ip(['link', 'set', 'dev', b.name, 'up'], `${b.name}: up`));
    // From here on the bridge exists: proxy entries and sysctls on it follow in this same plan.
    if (!link) links.set(b.name, { ifname: b.name, kind: 'bridge', up: true, stpState: 0, forwardDelay: 0 });
    for (const port of b.ports) {
      const p = links.get(port);
      if (!p) {
        notes.push(`${port} (a port of ${b.name}) does not exist here; not enslaved`);
        continue;
      }
      if (p.master !== b.name) steps.push(ip(['link', 'set', 'dev', port, 'master', b.name], `${port}: port of ${b.name}${p.master ? ` (was a port of ${p.master})` : ''}`));
      if (!p.up) steps.push(ip(['link', 'set', 'dev', port, 'up'], `${port}: up`));
    }
  }

  for (const p of setup.routedPorts) {
    const link = links.get(p.name);
    if (!link) {
      notes.push(`${p.name} (${p.guest}) is not there yet; skipped: ${p.by === 'lxc' ? 'LXC configures it' : 'its hook (port-up) configures it'} when it appears`);
      continue;
    }
    if (p.by === 'lxc') {
      const missing = p.routes.filter((r) => !hasRoute(r.dst, p.name, r.metric)).map((r) => r.dst);
      notes.push(`${p.name} (${p.guest}) is configured by LXC (veth.mode=router)${missing.length ? `; its routes ${missing.join(', ')} are missing: restart the container` : ''}`);
      continue;
    }
    if (!link.up) steps.push(ip(['link', 'set', 'dev', p.name, 'up'], `${p.name}: up`));
    for (const g of p.gateways) {
      if (hasAddress(p.name, g)) continue;
      const v6 = g.includes(':');
      steps.push(ip([...(v6 ? ['-6'] : []), 'address', 'add', g, 'dev', p.name, ...(v6 ? ['nodad'] : [])], `${p.name}: gateway address ${g}`));
      addedAddress(p.name, g);
    }
    for (const r of p.routes) {
      // Someone else's route to the same place on this port serves too, and stays theirs.
      if (hasRoute(r.dst, p.name, r.metric)) continue;
      steps.push(routeStep('add', { dst: r.dst, dev: p.name, ...(r.metric !== undefined ? { metric: r.metric } : {}) }, `to ${p.guest}`));
    }
    // A mobile guest running here: its uplink entries, as its port-up adds them.
    for (const x of p.uplinkProxies ?? []) {
      if (!links.has(x.dev) || live.proxies.some((l) => l.address === x.address && l.dev === x.dev)) continue;
      steps.push(ip([`-${x.family}`, 'neigh', 'add', 'proxy', x.address, 'dev', x.dev], `${x.dev}: answer ${x.family === 4 ? 'ARP' : 'NDP'} for ${x.guest}'s ${x.address} (it runs here)`));
    }
  }

  for (const x of setup.proxies) {
    if (!links.has(x.dev)) {
      notes.push(`${x.dev} does not exist here; no proxy entry for ${x.guest}'s ${x.address} on it`);
      continue;
    }
    if (live.proxies.some((l) => l.address === x.address && l.dev === x.dev)) continue;
    steps.push(ip([`-${x.family}`, 'neigh', 'add', 'proxy', x.address, 'dev', x.dev], `${x.dev}: answer ${x.family === 4 ? 'ARP' : 'NDP'} for ${x.guest}'s ${x.address}`));
    if (!own.proxies.some((o) => o.address === x.address && o.dev === x.dev)) own.proxies.push({ address: x.address, dev: x.dev });
  }

  // Per-interface keys last, once the interfaces exist; absent ones come from sysctl.d/udev later.
  for (const s of setup.sysctls) {
    if (s.ifname === undefined) continue;
    if (!links.has(s.ifname)) continue; // noted above (a guest port not there yet, or a missing uplink)
    setSysctl(s.key, s.value, s.why);
  }
  return { steps, notes, owned: own };
}

const family = (address: string): 4 | 6 => (address.includes(':') ? 6 : 4);
/** The kernel gives an IPv6 route without a metric 1024, an IPv4 one 0. */
const metricOf = (r: LiveRoute) => r.metric ?? (family(r.dst) === 6 ? 1024 : 0);
const sameRoute = (a: LiveRoute, b: LiveRoute) => a.dst === b.dst && a.dev === b.dev && metricOf(a) === metricOf(b);

/** Add or delete one of guestwall's routes: always with its protocol, so a delete never takes someone else's. */
function routeStep(verb: 'add' | 'del', r: LiveRoute, why: string): NetworkStep {
  const f = family(r.dst);
  // IPv6 routes without a metric get 1024 from the kernel; naming it on delete would be the same route.
  const metric = r.metric !== undefined ? ['metric', String(r.metric)] : [];
  const args = [`-${f}`, 'route', verb, r.dst, 'dev', r.dev ?? '', ...metric, 'proto', String(ROUTE_PROTOCOL)];
  return verb === 'add'
    ? ip(args, `${r.dev}: route ${r.dst}${metric.length ? ` metric ${r.metric}` : ''} ${why}`)
    : { ...ip(args, `${r.dev}: remove route ${r.dst}${metric.length ? ` metric ${r.metric}` : ''} ${why}`), remove: true };
}

const addressStep = (verb: 'add' | 'del', a: LiveAddress, why: string): NetworkStep => {
  const v6 = family(a.cidr) === 6;
  const args = [...(v6 ? ['-6'] : []), 'address', verb, a.cidr, 'dev', a.ifname, ...(v6 && verb === 'add' ? ['nodad'] : [])];
  return verb === 'add' ? ip(args, `${a.ifname}: add address ${a.cidr} ${why}`) : { ...ip(args, `${a.ifname}: remove address ${a.cidr} ${why}`), remove: true };
};

const proxyStep = (verb: 'add' | 'del', p: LiveProxy, why: string): NetworkStep => {
  const f = family(p.address);
  const args = [`-${f}`, 'neigh', verb, 'proxy', p.address, 'dev', p.dev];
  const what = `${p.dev}: ${verb === 'add' ? 'answer' : 'stop answering'} ${f === 4 ? 'ARP' : 'NDP'} for ${p.address} ${why}`;
  return verb === 'add' ? ip(args, what) : { ...ip(args, what), remove: true };
};

const sysctlStep = (key: string, value: string, why: string): NetworkStep => ({ program: 'sysctl', args: ['-q', '-w', `${key}=${value}`], what: `${key}=${value} (${why})`, remove: true });

/**
 * What guestwall created that the setup no longer has: its routes (by protocol) and the
 * entries, addresses and sysctls of its record. Takes them out of `own` as it goes. Whatever
 * carries someone else's protocol, or is not in the record, is never touched.
 */
function removals(setup: NetworkSetup, live: LiveNetwork, own: OwnedNetwork, notes: string[]): NetworkStep[] {
  const steps: NetworkStep[] = [];
  const wantedRoutes: LiveRoute[] = setup.routedPorts.filter((p) => p.by === 'hook').flatMap((p) => p.routes.map((r) => ({ dst: r.dst, dev: p.name, ...(r.metric !== undefined ? { metric: r.metric } : {}) })));
  for (const r of live.routes) {
    if (!r.owned || wantedRoutes.some((w) => sameRoute(w, r))) continue;
    steps.push(routeStep('del', r, '(no longer in the policy)'));
  }
  const wantedAddresses = [
    ...setup.bridges.flatMap((b) => b.addresses.map((cidr) => ({ ifname: b.name, cidr }))),
    ...setup.routedPorts.filter((p) => p.by === 'hook').flatMap((p) => p.gateways.map((cidr) => ({ ifname: p.name, cidr }))),
  ];
  own.addresses = own.addresses.filter((a) => {
    if (wantedAddresses.some((w) => w.ifname === a.ifname && w.cidr === a.cidr)) return true;
    if (live.addresses.some((l) => l.ifname === a.ifname && l.cidr === a.cidr)) steps.push(addressStep('del', a, '(no longer in the policy)'));
    return false;
  });
  own.proxies = own.proxies.filter((p) => {
    if (setup.proxies.some((w) => w.address === p.address && w.dev === p.dev)) return true;
    if (live.proxies.some((l) => l.address === p.address && l.dev === p.dev)) steps.push(proxyStep('del', p, '(no longer in the policy)'));
    return false;
  });
  own.sysctls = own.sysctls.filter((o) => {
    if (setup.sysctls.some((w) => w.key === o.key && w.value === o.value)) return true;
    const now = live.sysctls[o.key];
    if (now === undefined) return false; // its interface is gone, and the key with it
    if (now !== o.value) notes.push(`${o.key} is ${now} now, not the ${o.value} guestwall set; left as it is`);
    else if (!setup.sysctls.some((w) => w.key === o.key)) steps.push(sysctlStep(o.key, o.before, `as before guestwall set it; no longer in the policy`));
    return false;
  });
  return steps;
}

/** The sysctl keys a restore reads: those either side owns. */
export function restoreSysctlKeys(snapshot: NetworkSnapshot, owned: OwnedNetwork): string[] {
  return [...new Set([...snapshot.owned.sysctls, ...owned.sysctls].map((s) => s.key))];
}

/**
 * Rollback of the host network: back to what guestwall owned at `snapshot` (taken before the
 * last apply). What it created since goes, what it removed since comes back, and the sysctls
 * it changed get their earlier values. Nothing outside guestwall's routes and record is touched.
 */
export function planRestore(snapshot: NetworkSnapshot, live: LiveNetwork, owned: OwnedNetwork): NetworkPlan {
  const steps: NetworkStep[] = [];
  const notes: string[] = [];
  const links = new Set(live.links.map((l) => l.ifname));
  const why = '(as before the last apply)';
  for (const r of live.routes) if (r.owned && !snapshot.routes.some((s) => sameRoute(s, r))) steps.push(routeStep('del', r, why));
  for (const a of owned.addresses) {
    if (snapshot.owned.addresses.some((s) => s.ifname === a.ifname && s.cidr === a.cidr)) continue;
    if (live.addresses.some((l) => l.ifname === a.ifname && l.cidr === a.cidr)) steps.push(addressStep('del', a, why));
  }
  for (const p of owned.proxies) {
    if (snapshot.owned.proxies.some((s) => s.address === p.address && s.dev === p.dev)) continue;
    if (live.proxies.some((l) => l.address === p.address && l.dev === p.dev)) steps.push(proxyStep('del', p, why));
  }
  const gone = (ifname: string | undefined) => ifname !== undefined && !links.has(ifname);
  for (const r of snapshot.routes) {
    if (live.routes.some((l) => sameRoute(l, r))) continue;
    if (gone(r.dev)) notes.push(`${r.dev} is not there; its route ${r.dst} comes back with it (port-up)`);
    else steps.push(routeStep('add', r, why));
  }
  for (const a of snapshot.owned.addresses) {
    if (live.addresses.some((l) => l.ifname === a.ifname && l.cidr === a.cidr)) continue;
    if (gone(a.ifname)) notes.push(`${a.ifname} is not there; address ${a.cidr} not restored`);
    else steps.push(addressStep('add', a, why));
  }
  for (const p of snapshot.owned.proxies) {
    if (live.proxies.some((l) => l.address === p.address && l.dev === p.dev)) continue;
    if (gone(p.dev)) notes.push(`${p.dev} is not there; proxy entry ${p.address} not restored`);
    else steps.push(proxyStep('add', p, why));
  }
  // Each key back to its value at the snapshot: guestwall's value if it owned the key then, or
  // the value before guestwall first set it.
  for (const key of restoreSysctlKeys(snapshot, owned)) {
    const then = snapshot.owned.sysctls.find((s) => s.key === key)?.value ?? owned.sysctls.find((s) => s.key === key)!.before;
    const now = live.sysctls[key];
    if (now !== undefined && now !== then) steps.push({ ...sysctlStep(key, then, 'as before the last apply'), ...(snapshot.owned.sysctls.some((s) => s.key === key) ? {} : { remove: true as const }) });
  }
  return { steps, notes, owned: structuredClone(snapshot.owned) };
}

/** Both records together: what guestwall may own while a plan runs (adds recorded before they run, removals after). */
export function ownedUnion(a: OwnedNetwork, b: OwnedNetwork): OwnedNetwork {
  const uniq = <T>(xs: T[], key: (x: T) => string) => [...new Map(xs.map((x) => [key(x), x])).values()];
  return {
    proxies: uniq([...a.proxies, ...b.proxies], (p) => `${p.address} ${p.dev}`),
    addresses: uniq([...a.addresses, ...b.addresses], (x) => `${x.cidr} ${x.ifname}`),
    // The earlier record's `before` wins: it is the value from before guestwall.
    sysctls: uniq([...b.sysctls, ...a.sysctls], (s) => s.key),
  };
}

/** The live state of a host that has every interface the setup names, unconfigured: the whole plan. */
export function pristineHost(setup: NetworkSetup): LiveNetwork {
  const names = new Set([...setup.bridges.flatMap((b) => b.ports), ...setup.routedPorts.map((p) => p.name), ...setup.proxies.map((p) => p.dev), ...setup.routedPorts.flatMap((p) => (p.uplinkProxies ?? []).map((x) => x.dev))]);
  for (const b of setup.bridges) names.delete(b.name);
  return { links: [...names].map((ifname) => ({ ifname, up: false })), addresses: [], routes: [], proxies: [], sysctls: {} };
}
