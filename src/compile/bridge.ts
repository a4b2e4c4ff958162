// The `bridge guestwall` table: what happens between two ports of one bridge (guest to guest, or
// guest to a host interface enslaved to the bridge), which never passes the inet forward hook
// unless br_netfilter is loaded. Bridge prerouting checks every guest port's sources; bridge
// forward sends each frame to its zone's own pair chain (`dmz_to_dmz`) by one map lookup on the
// port, where the zone's intra-zone policy and rules decide, written by the same code as inet's.
import type { BridgeModel, GuestInterfaceModel, HostModel } from '../model/host.js';
import type { Chain, NamedMap, NamedSet, Rule, Table } from '../nft/ruleset.js';
import { type SetElement, type Stmt, type Verdict, setRef } from '../nft/types.js';
import type { Finding } from '../policy/diagnostics.js';
import { warning } from '../policy/diagnostics.js';
import { type Port, antiSpoof } from './antispoof.js';
import { ICMPV6_ESSENTIAL, conntrackVerdict } from './dispatch.js';
import type { KernelFeatures } from './features.js';
import { accept, counter, iifnames, match, meta, payload } from './matches.js';
import { builtin, originOf, placed } from './origin.js';
import { AcceptSet, ctDnat, forwardAcceptSetName } from './forwards.js';
import { pairChainName, pairChains } from './zones.js';

export const BRIDGE_PORTS_MAP = 'port_zone';

/** Bridge chains run at the bridge family's `filter` priority. */
const BRIDGE_FILTER_PRIO = -200;

/** The guest interfaces on each bridge, in policy order: one pass over the ports, looked up per bridge. */
function interfacesByBridge(bridged: Port[]): Map<string, GuestInterfaceModel[]> {
  const out = new Map<string, GuestInterfaceModel[]>();
  for (const { iface } of bridged) {
    if (iface.mode !== 'bridged') continue;
    const list = out.get(iface.bridge);
    if (list) list.push(iface);
    else out.set(iface.bridge, [iface]);
  }
  return out;
}

/** `bridged`: the bridged guest ports (guestPorts). */
/** `inetChains`: what the inet table must add for this table to work (the hairpin mark). */
export function bridgeTable(model: HostModel, bridged: Port[], name: string, features: KernelFeatures): { table: Table; inetChains: Chain[]; findings: Finding[] } {
  // No bridged guest, nothing to check or filter: the table is there (guestwall owns it), empty.
  if (bridged.length === 0) return { table: { family: 'bridge', name, helpers: [], sets: [], chains: [] }, inetChains: [], findings: [] };
  const o = (id: string, what: string) => builtin(id, what, model.file);
  const spoof = antiSpoof(bridged, 'bridge', model.file, model.sections?.guests);
  const onBridge = interfacesByBridge(bridged);
  // Only bridges that forward between a guest and another port need the forward chain's filtering.
  const filtered = model.bridges.filter((b) => filteredBridge(b, onBridge.get(b.name)?.length ?? 0));
  // Every port of those bridges goes to its zone's pair chain: guest ports (all their host names), then enslaved host interfaces.
  const portZones: [SetElement, Verdict][] = [];
  for (const b of filtered) {
    const ports = [...(onBridge.get(b.name) ?? []).flatMap((i) => i.hostNames), ...b.ports];
    for (const port of ports) portZones.push([port, { goto: { target: pairChainName(b.zone, b.zone) } }]);
  }
  const zones = [...new Set(filtered.map((b) => b.zone))];
  const hairpin = hairpinAccepts(model, filtered.map((b) => b.name), features);
  const pairs = pairChains(model, hairpin.accepts, { pairs: zones.map((z): [string, string] => [z, z]), bridge: features });

  const portMap: NamedMap = {
    kind: 'map', name: BRIDGE_PORTS_MAP, type: 'ifname', map: 'verdict',
    elements: portZones,
  };
  const ct = features.bridgeConntrack ? conntrackVerdict((id, what) => o(`bridge-${id}`, what)) : undefined;
  const forward: Chain = {
    name: 'forward',
    base: { type: 'filter', hook: 'forward', prio: BRIDGE_FILTER_PRIO, policy: 'accept' },
    rules: [
      ...(ct ? [ct.rule] : []),
      { stmts: [match(payload('ether', 'type'), 'arp'), accept()], origin: o('bridge-arp', 'ARP between ports passes (its senders are checked at prerouting)') },
      { stmts: [match(payload('icmpv6', 'type'), { set: ICMPV6_ESSENTIAL }), accept()], origin: o('bridge-icmpv6-nd', 'IPv6 neighbour discovery and MLD always work') },
      // Guests get their addresses on the bridge; who may answer is checked at prerouting.
      { stmts: [match(payload('udp', 'sport'), { set: [67, 68] }), match(payload('udp', 'dport'), { set: [67, 68] }), accept()], origin: o('bridge-dhcp', 'DHCP on the bridge passes (only routers may answer, checked at prerouting)') },
      { stmts: [match(payload('udp', 'sport'), { set: [546, 547] }), match(payload('udp', 'dport'), { set: [546, 547] }), accept()], origin: o('bridge-dhcpv6', 'DHCPv6 on the bridge passes (only routers may answer, checked at prerouting)') },
      { stmts: [{ vmap: { key: meta('iifname'), data: setRef(BRIDGE_PORTS_MAP) } }], origin: o('bridge-port-src', 'to the pair chain of the zone of the port the frame came from') },
      // A port guestwall does not know (attached by hand) still cannot reach a known one unfiltered.
      { stmts: [{ vmap: { key: meta('oifname'), data: setRef(BRIDGE_PORTS_MAP) } }], origin: o('bridge-port-dst', 'to the pair chain of the zone of the port the frame goes to') },
    ],
  };
  const prerouting: Chain = {
    name: 'prerouting',
    base: { type: 'filter', hook: 'prerouting', prio: BRIDGE_FILTER_PRIO, policy: 'accept' },
    rules: spoof.rules,
  };
  const table: Table = {
    family: 'bridge', name, helpers: [],
    sets: [...(ct ? [ct.map] : []), ...spoof.sets, portMap, ...hairpin.sets],
    chains: [prerouting, forward, ...(ct ? [ct.chain] : []), ...spoof.chains, ...pairs.chains],
  };
  return { table, inetChains: hairpin.inetChains, findings: [...pairs.findings, ...statelessFindings(filtered, pairs.stateless)] };
}

/**
 * A hairpin between two guests of one bridge: with br_netfilter, the kernel DNATs the frame in
 * the inet hooks and then bridges it straight to the target (br_nf_pre_routing_finish_bridge), so
 * it meets this table's pair chain, not a routed path. The forward's target port must pass there,
 * for DNATed connections only: a guest on the bridge must not reach the target's private address
 * and port directly, nor the target send from its forwarded port to its neighbours.
 * With bridge conntrack the pair chain asks `ct status dnat`. Without it the bridge family cannot
 * read conntrack at all, so the inet side tells it: `hairpin_mark`, an inet prerouting chain after
 * dstnat, ORs the hairpin mark bit into `meta mark` on every packet of a DNATed connection that
 * arrives on such a bridge (both directions: with br_netfilter a bridged frame passes the inet
 * prerouting hooks before bridge forward), and the pair chain requires the bit. Without
 * br_netfilter nothing sets it on a bridged frame (the inet hooks never see one), so the direct
 * path is refused; the hairpin then goes through the host's IP layer instead (routed and
 * masqueraded), where the inet pair chain asks conntrack itself.
 */
function hairpinAccepts(model: HostModel, bridges: string[], features: KernelFeatures): { accepts: Map<string, Rule[]>; sets: NamedSet[]; inetChains: Chain[] } {
  const byChain = new Map<string, AcceptSet>();
  /** The bridges a hairpin frame may cross (the forwards' targets' bridges), in policy order. */
  const markedBridges = new Set<string>();
  for (const f of model.forwards) {
    if (!f.hairpin || f.publicV4.length === 0 || f.targetInterface === undefined || !bridges.includes(f.targetInterface)) continue;
    const origin = originOf(f.src, `forward ${f.index + 1}: ${f.from.join(',')} -> ${f.guest ?? f.targetV4}`);
    const chain = pairChainName(f.targetZone, f.targetZone);
    markedBridges.add(f.targetInterface);
    const set = byChain.get(chain) ?? new AcceptSet();
    byChain.set(chain, set);
    for (const proto of ['tcp', 'udp'] as const) {
      if (f[proto].length === 0) continue;
      set.add(f.targetV4, proto, f.toPort !== undefined ? [[f.toPort, f.toPort]] : f[proto], origin);
    }
  }
  // One lookup of the DNATed tuple per chain, however many forwards: see forwards.ts.
  const accepts = new Map<string, Rule[]>();
  const sets: NamedSet[] = [];
  for (const [chain, a] of byChain) {
    const set = a.toSet(forwardAcceptSetName(chain, 4), 4);
    sets.push(set);
    const tuple = (dir: 'daddr' | 'saddr', port: 'dport' | 'sport') => match({ concat: [payload('ip', dir), meta('l4proto'), payload('th', port)] }, setRef(set.name));
    const origin = placed(model.sections?.forwards, 'bridge-hairpin', 'a hairpin port forward between two guests of one bridge', model.file);
    if (features.bridgeConntrack) {
      accepts.set(chain, [{ stmts: [ctDnat, tuple('daddr', 'dport'), counter(), accept()], origin }]);
      continue;
    }
    // No bridge conntrack: the mark says the frame's connection was DNATed; the tuple says to (or
    // from) which forward. Frames without the mark fail at the first comparison. An ICMP error
    // about such a connection (a closed port's port-unreachable, fragmentation needed) carries
    // the connection's conntrack entry, so the mark too, but no ports: it passes by its type, as
    // `ct state related` lets it through the inet chains. The forwards are TCP and UDP, so no
    // other ICMP is part of a DNATed connection.
    const marked = markIsSet(model.hairpinMark);
    accepts.set(chain, [
      { stmts: [marked, tuple('daddr', 'dport'), counter(), accept()], origin },
      { stmts: [marked, tuple('saddr', 'sport'), counter(), accept()], origin },
      { stmts: [marked, match(payload('icmp', 'type'), { set: [...HAIRPIN_ICMP_ERRORS] }), counter(), accept()], origin },
    ]);
  }
  const inetChains: Chain[] = features.bridgeConntrack || markedBridges.size === 0 ? [] : [{
    name: HAIRPIN_MARK_CHAIN,
    base: { type: 'filter', hook: 'prerouting', prio: HAIRPIN_MARK_PRIO, policy: 'accept' },
    rules: [{
      // One rule for every packet the host's IP layer sees; most fail at `ct status dnat`. No
      // counter: it would count every packet of every forwarded connection.
      stmts: [ctDnat, iifnames([...markedBridges]), setMark(model.hairpinMark)],
      origin: placed(model.sections?.forwards, 'hairpin-mark', `DNATed connections on a bridge carry mark bit ${markText(model.hairpinMark)}, which the bridge table reads (no bridge conntrack)`, model.file),
    }],
  }];
  return { accepts, sets, inetChains };
}

/** The inet chain that sets the hairpin mark: after dstnat (-100), so a connection's first packet is already DNATed. */
export const HAIRPIN_MARK_CHAIN = 'hairpin_mark';
const HAIRPIN_MARK_PRIO = -90;

/** The IPv4 ICMP errors conntrack relates to a connection (the hairpin is IPv4: IPv6 forwards are not translated). */
const HAIRPIN_ICMP_ERRORS = ['destination-unreachable', 'time-exceeded', 'parameter-problem'] as const;

/** `meta mark & BIT == BIT` */
const markIsSet = (bit: number): Stmt => match({ '&': [meta('mark'), bit] }, bit);
/** `meta mark set meta mark | BIT`: the other bits (Docker's, Kubernetes', the user's) stay as they are. */
const setMark = (bit: number): Stmt => ({ mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ meta: { key: 'mark' } }, bit] } } });
const markText = (bit: number) => `0x${bit.toString(16)}`;

/** A bridge with a guest port and at least one other port: frames cross it between two ports. */
function filteredBridge(bridge: BridgeModel, guestInterfaces: number): boolean {
  return guestInterfaces > 0 && guestInterfaces + bridge.ports.length >= 2;
}

/** Without bridge conntrack, what the bridge pair chains accept is judged packet by packet. */
function statelessFindings(filtered: BridgeModel[], statelessChains: Set<string>): Finding[] {
  return filtered.filter((b) => statelessChains.has(pairChainName(b.zone, b.zone))).map((b) => ({
    ...warning('bridge-stateless', b.src.path,
      `on a kernel without bridge conntrack, what the ${b.zone} -> ${b.zone} rules accept between ports of '${b.name}' is stateless: anything that looks like a reply passes (TCP from the service port except a bare SYN, UDP from it, echo replies), not only replies to real connections`,
      "apply and install ask the host's kernel and use bridge conntrack where it has it (modprobe nf_conntrack_bridge, kernel 5.3+; 'guestwall doctor' says whether it does); to isolate guests on any kernel, put them on routed interfaces or bridges of their own"),
    atKey: true,
  }));
}
