// HostModel -> the host network the ruleset assumes, as data: bridges, the host side of routed
// guest interfaces, proxy neighbour entries on the uplinks, and sysctls. The renderers
// (networkd files, sysctl file, hooks) and the planner for a running host all read this one
// value, so they cannot disagree about what the host should look like.
import { type HostAddress, contains } from '../policy/addr.js';
import { type GuestModel, type HostModel, ROUTED_GATEWAY_V4, ROUTED_GATEWAY_V6 } from '../model/host.js';

export interface BridgeSetup {
  name: string;
  zone: string;
  /** Host addresses with their prefix, as `ip addr` takes them ("192.168.1.1/24"). */
  addresses: string[];
  /** Host interfaces enslaved to the bridge (`bridges.<b>.ports`). */
  ports: string[];
}

export interface RouteSetup {
  /** "203.0.113.20/32" or "2001:db8::20/128". */
  dst: string;
  family: 4 | 6;
  /** Only for a Xen HVM guest's two interfaces: the emulated tap is preferred while it exists (as Xen's vif-route does). */
  metric?: number;
}

/**
 * The host side of one routed guest interface. `by: 'hook'` is configured by guestwall (port-up,
 * networkd, apply); `by: 'lxc'` by LXC itself (veth.mode=router adds the routes and a proxy
 * entry for the gateway), so guestwall only checks and lists it.
 */
export interface RoutedPortSetup {
  guest: string;
  platform: GuestModel['platform'];
  /** The host-side interface name. */
  name: string;
  zone: string;
  by: 'hook' | 'lxc';
  /** The guests' gateway on this link: ROUTED_GATEWAY_V4/32 and ROUTED_GATEWAY_V6/64 (only the families the guest uses). */
  gateways: string[];
  routes: RouteSetup[];
  /** proxy_arp on the port, for guests that ARP for more than their gateway (a /24 configured inside). */
  proxyArp: boolean;
  /**
   * A fleet guest that may run on other hosts too: its uplink proxy entries, added (and the move
   * announced) by port-up and removed by port-down, so only the host it runs on answers for it.
   */
  uplinkProxies?: ProxyNeighbourSetup[];
}

/** `ip neigh add proxy ADDRESS dev DEV`: the host answers ARP/NDP for a routed guest on the segment its address belongs to. */
export interface ProxyNeighbourSetup {
  address: string;
  family: 4 | 6;
  dev: string;
  guest: string;
}

export interface SysctlSetup {
  /** The sysctl key with '/' for dots inside interface names (net.ipv4.conf.vif1/0.proxy_arp). */
  key: string;
  value: string;
  /** The interface the key belongs to; absent for global keys. */
  ifname?: string;
  why: string;
}

export interface NetworkSetup {
  bridges: BridgeSetup[];
  routedPorts: RoutedPortSetup[];
  proxies: ProxyNeighbourSetup[];
  sysctls: SysctlSetup[];
}

const cidr = (a: HostAddress) => `${a.addr}/${a.len}`;

/** A sysctl key for an interface: dots in the name become '/' (sysctl(8) separates with dots). */
export function ifSysctlKey(family: 4 | 6, ifname: string, name: string): string {
  return `net.ipv${family}.conf.${ifname.replaceAll('.', '/')}.${name}`;
}

export function networkSetup(model: HostModel): NetworkSetup {
  const bridges: BridgeSetup[] = model.bridges.map((b) => ({ name: b.name, zone: b.zone, addresses: b.addresses.map(cidr), ports: [...b.ports] }));

  const routedPorts: RoutedPortSetup[] = [];
  for (const g of model.guests) {
    for (const i of g.interfaces) {
      if (i.mode !== 'routed') continue;
      const families = new Set(i.addresses.map((a) => a.family));
      const gateways = [...(families.has(4) ? [`${ROUTED_GATEWAY_V4}/32`] : []), ...(families.has(6) ? [`${ROUTED_GATEWAY_V6}/64`] : [])];
      const routes = (metric?: number): RouteSetup[] =>
        i.addresses.map((a) => ({ dst: `${a.addr}/${a.family === 4 ? 32 : 128}`, family: a.family, ...(metric !== undefined ? { metric } : {}) }));
      const port = (name: string, metric?: number): RoutedPortSetup => ({
        guest: g.name, platform: g.platform, name, zone: i.zone, by: g.platform === 'lxc' ? 'lxc' : 'hook',
        gateways, routes: routes(metric), proxyArp: g.platform !== 'lxc' && families.has(4),
      });
      // Xen HVM: the PV vif and the emulated "-emu" tap both carry the guest; metrics as in vif-route.
      if (i.emuTap !== undefined) routedPorts.push(port(i.name, 2), port(i.emuTap, 1));
      else routedPorts.push(port(i.name));
    }
  }

  // A routed guest address inside the subnet of a host interface or a bridge: the neighbours on
  // that segment ARP for it there, so the host answers for exactly that address (not proxy_arp
  // for everything on the uplink).
  const segments = [
    ...model.hostInterfaces.map((h) => ({ dev: h.name, addresses: h.addresses })),
    ...model.bridges.map((b) => ({ dev: b.name, addresses: b.addresses })),
  ];
  const proxies: ProxyNeighbourSetup[] = [];
  const proxyDevs6 = new Set<string>();
  for (const g of model.guests) {
    for (const i of g.interfaces) {
      if (i.mode !== 'routed') continue;
      // LXC's router mode owns its veth, so a mobile LXC guest's entries stay with apply (see README).
      const followsPort = g.mobile === true && g.platform !== 'lxc';
      const mine: ProxyNeighbourSetup[] = [];
      for (const a of i.addresses) {
        for (const s of segments) {
          const onLink = s.addresses.some((h) => h.family === a.family && h.len < (a.family === 4 ? 32 : 128) && contains(h.network, a.value, a.family));
          if (!onLink) continue;
          mine.push({ address: a.addr, family: a.family, dev: s.dev, guest: g.name });
          if (a.family === 6) proxyDevs6.add(s.dev);
        }
      }
      if (!followsPort) proxies.push(...mine);
      else if (mine.length > 0) {
        // On the PV vif only: an HVM guest's -emu tap goes away while the guest keeps running.
        const port = routedPorts.find((p) => p.guest === g.name && p.name === i.name);
        if (port) port.uplinkProxies = mine;
      }
    }
  }

  const sysctls: SysctlSetup[] = [
    { key: 'net.ipv4.ip_forward', value: '1', why: 'guestwall routes between zones' },
    { key: 'net.ipv6.conf.all.forwarding', value: '1', why: 'guestwall routes between zones, IPv6 too' },
    // 0 for all and default: routed guests are anti-spoofed per port by the ruleset's
    // `fib saddr . iif oif missing drop`, which is logged, explained and exact; strict rp_filter
    // would add a second, silent judge that drops what the policy allows on asymmetric paths
    // (a Xen HVM guest's vif while its -emu tap holds the preferred route, multi-homed uplinks,
    // bridged traffic routed through br_netfilter). A distribution's loose mode (2) on single
    // interfaces stays compatible: the kernel uses the larger of all and the interface's value.
    { key: 'net.ipv4.conf.all.rp_filter', value: '0', why: 'anti-spoofing is the ruleset\'s fib check, not the kernel\'s' },
    { key: 'net.ipv4.conf.default.rp_filter', value: '0', why: 'interfaces created later, guest ports among them, start without strict rp_filter' },
  ];
  for (const p of routedPorts) {
    if (p.by === 'hook' && p.proxyArp) sysctls.push({ key: ifSysctlKey(4, p.name, 'proxy_arp'), value: '1', ifname: p.name, why: `proxy ARP on ${p.guest}'s routed port` });
  }
  for (const dev of proxyDevs6) {
    sysctls.push({ key: ifSysctlKey(6, dev, 'proxy_ndp'), value: '1', ifname: dev, why: 'answer neighbour solicitations for the routed guests in the proxy table' });
  }
  return { bridges, routedPorts, proxies, sysctls };
}
