// NetworkSetup + what a host has now -> the `ip`/`sysctl` steps that bring it there. Pure, so the
// planner is tested without a kernel; src/apply/network.ts reads the live state and runs the steps.
// Steps only add or set: guestwall never deletes an address, route, link or entry here, and it
// touches no interface the setup does not name.
import type { NetworkSetup } from './network.js';

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

export interface NetworkStep {
  program: 'ip' | 'sysctl';
  args: string[];
  /** What the step does, for progress lines ("br-lan: add address 192.168.1.1/24"). */
  what: string;
}

export interface NetworkPlan {
  steps: NetworkStep[];
  /** What was left alone and why (guest ports not there yet, conflicts). */
  notes: string[];
}

const ip = (args: string[], what: string): NetworkStep => ({ program: 'ip', args, what });

/** The sysctl keys the planner compares: apply reads exactly these. */
export function sysctlKeys(setup: NetworkSetup): string[] {
  return setup.sysctls.map((s) => s.key);
}

export function planNetwork(setup: NetworkSetup, live: LiveNetwork): NetworkPlan {
  const steps: NetworkStep[] = [];
  const notes: string[] = [];
  const links = new Map(live.links.map((l) => [l.ifname, l]));
  const hasAddress = (ifname: string, cidr: string) => live.addresses.some((a) => a.ifname === ifname && a.cidr === cidr);
  const hasRoute = (dst: string, dev: string, metric: number | undefined) =>
    live.routes.some((r) => r.dst === dst && r.dev === dev && (metric === undefined || r.metric === metric));
  const setSysctl = (key: string, value: string, why: string) => {
    if (live.sysctls[key] !== value) steps.push({ program: 'sysctl', args: ['-q', '-w', `${key}=${value}`], what: `${key}=${value} (${why})` });
  };

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
    for (const a of b.addresses) if (!link || !hasAddress(b.name, a)) steps.push(ip(['address', 'add', a, 'dev', b.name], `${b.name}: add address ${a}`));
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
    }
    for (const r of p.routes) {
      if (hasRoute(r.dst, p.name, r.metric)) continue;
      const metric = r.metric !== undefined ? ['metric', String(r.metric)] : [];
      steps.push(ip([`-${r.family}`, 'route', 'add', r.dst, 'dev', p.name, ...metric], `${p.name}: route ${r.dst}${metric.length ? ` metric ${r.metric}` : ''} to ${p.guest}`));
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
  }

  // Per-interface keys last, once the interfaces exist; absent ones come from sysctl.d/udev later.
  for (const s of setup.sysctls) {
    if (s.ifname === undefined) continue;
    if (!links.has(s.ifname)) continue; // noted above (a guest port not there yet, or a missing uplink)
    setSysctl(s.key, s.value, s.why);
  }
  return { steps, notes };
}

/** The live state of a host that has every interface the setup names, unconfigured: the whole plan. */
export function pristineHost(setup: NetworkSetup): LiveNetwork {
  const names = new Set([...setup.bridges.flatMap((b) => b.ports), ...setup.routedPorts.map((p) => p.name), ...setup.proxies.map((p) => p.dev), ...setup.routedPorts.flatMap((p) => (p.uplinkProxies ?? []).map((x) => x.dev))]);
  for (const b of setup.bridges) names.delete(b.name);
  return { links: [...names].map((ifname) => ({ ifname, up: false })), addresses: [], routes: [], proxies: [], sysctls: {} };
}
