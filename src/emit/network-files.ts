// NetworkSetup -> the text files other programs read: systemd-networkd .netdev/.network files and
// a networkd.conf drop-in, the sysctl file, the per-host hooks (from templates/hooks/) and the
// boot unit that adds the uplink proxy entries. Pure: the templates come in as text.
import { ROUTED_GATEWAY_V4, ROUTED_GATEWAY_V6 } from '../model/host.js';
import { deviceUnitName } from '../policy/grammars/systemd.js';
import { networkdFileName } from '../policy/names.js';
import { ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME } from './network-plan.js';
import type { NetworkSetup, ProxyNeighbourSetup, RoutedPortSetup } from './network.js';
import { HOOK_PATHS, HOOKS_DIR } from './paths.js';
import { fillTemplate } from './template.js';

export interface NetworkFile {
  /** The path on the target system. */
  path: string;
  text: string;
  mode?: number;
  what: string;
}

/** The templates the hooks and the boot unit are rendered from (templates/hooks/*, templates/guestwall-network.service). */
export interface NetworkTemplates {
  portUp: string;
  portDown: string;
  xenVif: string;
  networkUnit: string;
}

export const NETWORK_PATHS = {
  networkdDir: '/etc/systemd/network',
  networkdConf: '/etc/systemd/networkd.conf.d/guestwall.conf',
  /** Names guestwall's route protocol for `ip route` listings ("proto guestwall"). */
  rtProtos: '/etc/iproute2/rt_protos.d/guestwall.conf',
  sysctl: '/etc/sysctl.d/60-guestwall.conf',
  /** `ip -batch` input for what networkd cannot say: the proxy neighbour entries on the uplinks. */
  proxyBatch: '/etc/guestwall/network.batch',
  unit: '/etc/systemd/system/guestwall-network.service',
  /** Present once `systemctl enable guestwall-network.service` has run. */
  unitEnabled: '/etc/systemd/system/network.target.wants/guestwall-network.service',
  ip: '/usr/sbin/ip',
  /** Debian's directory of Xen hotplug scripts (vif-common.sh and its siblings). */
  xenScripts: '/etc/xen/scripts',
} as const;

const GENERATED = "Written by guestwall from the policy: change the policy and compile or install again rather than editing this.";

/**
 * networkd picks the first .network file (in lexical order over all its directories) whose
 * [Match] fits a link. "00-guestwall-" sorts before the usual "10-*", "20-wired" or "eth1.network",
 * so the policy's say over an interface it names wins over an older file for the same interface.
 */
const networkdFile = (name: string, ext: 'netdev' | 'network') => `${NETWORK_PATHS.networkdDir}/${networkdFileName(name, ext)}`;

const ini = (sections: [string, string[]][]) => `${sections.filter(([, lines]) => lines.length > 0).map(([name, lines]) => `[${name}]\n${lines.join('\n')}`).join('\n\n')}\n`;

export function networkdFiles(setup: NetworkSetup): NetworkFile[] {
  const files: NetworkFile[] = [];
  const header = (what: string) => `# ${GENERATED}\n# ${what}\n`;
  for (const b of setup.bridges) {
    files.push({
      path: networkdFile(b.name, 'netdev'),
      text: header(`The bridge ${b.name} of zone ${b.zone}. No STP and no forwarding delay: its ports are guests and host links the policy names, not a switched network with loops.`) +
        ini([['NetDev', [`Name=${b.name}`, 'Kind=bridge']], ['Bridge', ['STP=no', 'ForwardDelaySec=0']]]),
      what: `bridge ${b.name}`,
    });
    const v6 = b.addresses.some((a) => a.includes(':'));
    files.push({
      path: networkdFile(b.name, 'network'),
      text: header(`Addresses of ${b.name}; up even without ports (a bridge with no port has no carrier). No DHCP, no router advertisements accepted or sent.`) +
        ini([
          ['Match', [`Name=${b.name}`]],
          ['Link', ['RequiredForOnline=no']],
          ['Network', [
            ...b.addresses.map((a) => `Address=${a}`),
            'ConfigureWithoutCarrier=yes',
            'DHCP=no',
            'IPv6AcceptRA=no',
            'IPv6SendRA=no',
            // Without IPv6 addresses the bridge stays without a link-local one too: a pure layer-2 zone.
            ...(v6 ? [] : ['LinkLocalAddressing=no']),
          ]],
        ]),
      what: `addresses of ${b.name}`,
    });
    for (const port of b.ports) {
      files.push({
        path: networkdFile(port, 'network'),
        text: header(`${port} is a port of ${b.name} (bridges.${b.name}.ports). Named 00-guestwall- so that it wins over another .network file for ${port}: networkd uses the first match in lexical order.`) +
          ini([['Match', [`Name=${port}`]], ['Network', [`Bridge=${b.name}`, 'LinkLocalAddressing=no', 'IPv6AcceptRA=no', 'DHCP=no']]]),
        what: `${port} enslaved to ${b.name}`,
      });
    }
  }
  for (const p of setup.routedPorts) {
    if (p.by !== 'hook') continue; // LXC's router mode configures its veth; networkd must not manage it too.
    files.push({
      path: networkdFile(p.name, 'network'),
      text: header(`The host side of ${p.guest}'s routed interface (zone ${p.zone}): the guests' gateway, a host route per guest address, proxy ARP. The hook ${HOOK_PATHS.portUp} does the same where networkd does not run.`) +
        ini([
          ['Match', [`Name=${p.name}`]],
          ['Link', ['RequiredForOnline=no']],
          ['Network', ['ConfigureWithoutCarrier=yes', 'DHCP=no', 'IPv6AcceptRA=no', 'IPv6SendRA=no', ...(p.proxyArp ? ['IPv4ProxyARP=yes'] : [])]],
        ]) +
        p.gateways.map((g) => `\n${ini([['Address', [`Address=${g}`, ...(g.includes(':') ? ['DuplicateAddressDetection=none'] : [])]]])}`).join('') +
        p.routes.map((r) => `\n${ini([['Route', [`Destination=${r.dst}`, ...(r.metric !== undefined ? [`Metric=${r.metric}`] : []), `Protocol=${ROUTE_PROTOCOL}`]]])}`).join(''),
      what: `host side of ${p.guest}'s routed port ${p.name}`,
    });
  }
  files.push({
    path: NETWORK_PATHS.networkdConf,
    text: `# ${GENERATED}\n` +
      '# networkd removes routes and routing policy rules it did not configure when it (re)configures a\n' +
      "# link; the routes of routed guests come from hooks (port-up), LXC's router mode and libvirt, so\n" +
      '# networkd must leave them alone.\n' +
      ini([['Network', ['ManageForeignRoutes=no', 'ManageForeignRoutingPolicyRules=no']]]),
    what: 'networkd keeps routes it did not create',
  });
  return files;
}

export function sysctlFile(setup: NetworkSetup): NetworkFile {
  const lines = [
    `# ${GENERATED}`,
    '# Applied early at boot by systemd-sysctl; a key of an interface that does not exist yet is',
    "# applied by systemd's udev rule when the interface appears.",
    '#',
    '# With forwarding on, the kernel ignores IPv6 router advertisements unless accept_ra=2: a host',
    '# that takes its own IPv6 address from SLAAC needs net.ipv6.conf.<uplink>.accept_ra=2.',
    '#',
    "# rp_filter is 0: routed guests are anti-spoofed per port by the ruleset's",
    "# 'fib saddr . iif oif missing counter drop' ('guestwall explain --from PORT --src ADDRESS' shows it,",
    "# with the routes the policy installs); the kernel's strict check would silently drop what the",
    '# policy allows on asymmetric paths. A loose (2) value a',
    '# distribution sets per interface is compatible (the kernel takes the larger of all and the',
    "# interface's value).",
    '#',
    '# net.bridge.bridge-nf-call-{iptables,ip6tables,arptables} are deliberately not set. guestwall',
    '# filters bridged guests in the bridge family, so isolation holds with br_netfilter loaded or',
    '# not, and its inet rules are written to stay correct when br_netfilter passes bridged traffic through them. Docker',
    "# and Kubernetes need them on; forcing them off here would break them. One visible difference: with",
    "# them on, a hairpin client on a forward target's own bridge is bridged to it after DNAT and not",
    '# masqueraded (the guest sees the client\'s address); with them off it is masqueraded.',
  ];
  for (const s of setup.sysctls) lines.push('', `# ${s.why}`, `${s.key}=${s.value}`);
  return { path: NETWORK_PATHS.sysctl, text: `${lines.join('\n')}\n`, mode: 0o644, what: 'forwarding, rp_filter, per-port proxy ARP and uplink proxy NDP (systemd-sysctl)' };
}

/** A word for sh, single-quoted unless it is plainly safe. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_.:/@%+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The case branch of one routed port in port-up/port-down. */
function portBranch(p: RoutedPortSetup): string {
  if (p.by === 'lxc') return `  ${shQuote(p.name)})\n    by=lxc\n    ;;`;
  const metric = p.routes.find((r) => r.metric !== undefined)?.metric;
  const vars = [
    `gateways=${shQuote(p.gateways.join(' '))}`,
    `routes=${shQuote(p.routes.map((r) => r.dst).join(' '))}`,
    ...(metric !== undefined ? [`metric=${metric}`] : []),
    ...(p.proxyArp ? [`arp_key=${shQuote(`net.ipv4.conf.${p.name.replaceAll('.', '/')}.proxy_arp`)}`] : []),
    // DEV/ADDRESS: '/' is the one character no interface name has.
    ...(p.uplinkProxies?.length ? [`proxies=${shQuote(p.uplinkProxies.map((x) => `${x.dev}/${x.address}`).join(' '))}`] : []),
  ];
  return `  ${shQuote(p.name)})\n    # ${p.guest}, zone ${p.zone}\n${vars.map((v) => `    ${v}`).join('\n')}\n    ;;`;
}

export function hookFiles(setup: NetworkSetup, t: NetworkTemplates): NetworkFile[] {
  const ports = setup.routedPorts.map(portBranch).join('\n');
  const common = { generated: GENERATED, ports, hooksDir: HOOKS_DIR, xenVif: HOOK_PATHS.xenVif, xenScripts: NETWORK_PATHS.xenScripts, gatewayV4: ROUTED_GATEWAY_V4, gatewayV6: ROUTED_GATEWAY_V6, routeProtocol: String(ROUTE_PROTOCOL) };
  const render = (tpl: string) => fillTemplate(tpl, common);
  return [
    { path: HOOK_PATHS.portUp, text: render(t.portUp), mode: 0o755, what: "port-up IFNAME: a routed guest port's host side" },
    { path: HOOK_PATHS.portDown, text: render(t.portDown), mode: 0o755, what: 'port-down IFNAME: undo port-up' },
    { path: HOOK_PATHS.xenVif, text: render(t.xenVif), mode: 0o755, what: 'xl.cfg script= for routed vifs (vif-route without iptables)' },
  ];
}

/** `ip -batch` lines adding the uplink proxy entries; `replace` makes a second run a no-op. */
export function proxyBatch(proxies: ProxyNeighbourSetup[]): string {
  return proxies.map((p) => `neigh replace proxy ${p.address} dev ${p.dev}\n`).join('');
}

/**
 * The boot path for what networkd cannot express: proxy entries on uplinks whose .network files
 * belong to the admin (networkd has no IPv4 proxy entry at all). A oneshot unit runs `ip -batch`
 * once the uplinks exist and before network.target, which guests start after.
 */
export function proxyBootFiles(setup: NetworkSetup, unitTemplate: string): NetworkFile[] {
  if (setup.proxies.length === 0) return [];
  const devs = [...new Set(setup.proxies.map((p) => p.dev))];
  const units = devs.map(deviceUnitName).join(' ');
  return [
    { path: NETWORK_PATHS.proxyBatch, text: `# ${GENERATED}\n# Proxy ARP/NDP entries for routed guests whose addresses lie in an uplink's subnet.\n${proxyBatch(setup.proxies)}`, mode: 0o644, what: 'uplink proxy ARP/NDP entries (ip -batch)' },
    {
      path: NETWORK_PATHS.unit,
      text: fillTemplate(unitTemplate, { generated: GENERATED, devices: units, ip: NETWORK_PATHS.ip, batch: NETWORK_PATHS.proxyBatch }),
      mode: 0o644,
      what: 'adds the uplink proxy entries at boot, before network.target',
    },
  ];
}

/** systemd-escape for a device unit name, byte by byte in UTF-8: the one in policy/grammars/systemd.ts. */
export { systemdEscape } from '../policy/grammars/systemd.js';

/** The name of guestwall's route protocol for iproute2; guestwall itself always passes the number. */
export function routeProtocolFile(): NetworkFile {
  return {
    path: NETWORK_PATHS.rtProtos,
    text: `# ${GENERATED}\n# Routes guestwall creates (apply, port-up) carry this protocol; it removes only those.\n${ROUTE_PROTOCOL}\t${ROUTE_PROTOCOL_NAME}\n`,
    mode: 0o644,
    what: `names route protocol ${ROUTE_PROTOCOL} "${ROUTE_PROTOCOL_NAME}" for ip route`,
  };
}

/** Every file of the network setup, in the order install writes them. */
export function networkFiles(setup: NetworkSetup, t: NetworkTemplates): NetworkFile[] {
  return [...networkdFiles(setup), sysctlFile(setup), routeProtocolFile(), ...hookFiles(setup, t), ...proxyBootFiles(setup, t.networkUnit)];
}
