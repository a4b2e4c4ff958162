// The base chains and the verdict maps that send each packet to its zone-pair chain. A packet
// costs two map lookups (source zone, then destination zone) however many guests and zones the
// host has: interfaces are map elements, never rules.
//
// Every new connection walks these chains, so a rule's cheap protocol match comes before its set
// lookup (nft stops at the first statement that fails). Routed guests' sources are checked in
// prerouting (antispoof.ts), on every packet, before conntrack can place a spoofed one.
import { HOST_ZONE, type HostModel } from '../model/host.js';
import type { Chain, NamedMap, NamedSet, Rule } from '../nft/ruleset.js';
import { type SetElement, type Verdict, setRef } from '../nft/types.js';
import { accept, counter, ctState, drop, match, meta, payload, portElement } from './matches.js';
import { builtin } from './origin.js';
import { pairChainName, rateLimitedLog } from './zones.js';

/** ICMPv6 the host must always accept, or IPv6 stops working (RFC 4890 4.4.1). */
export const ICMPV6_ESSENTIAL = [
  'nd-neighbor-solicit', 'nd-neighbor-advert', 'nd-router-solicit', 'nd-router-advert',
  'mld-listener-query', 'mld-listener-report', 'mld-listener-done', 'mld2-listener-report',
];

export const fromChainName = (zone: string) => `from_${zone}`;
export const dstMapName = (zone: string) => `${zone}_dst`;
export const ROUTED_GUESTS_SET = 'routed_guests';
/** `bridge . bridge`: what br_netfilter shows for a frame between two ports of one bridge. */
export const BRIDGED_SET = 'bridged';

export interface Dispatch {
  chains: Chain[];
  sets: (NamedSet | NamedMap)[];
}

/**
 * `first`: rules that go first in a chain this module writes, by chain name (the conntrack
 * helpers of the connections that arrive from a zone, in `from_<zone>`).
 */
export function dispatch(model: HostModel, first: ReadonlyMap<string, Rule[]> = new Map()): Dispatch {
  const file = model.file;
  const o = (id: string, what: string) => builtin(id, what, file);
  const zonesWithIfs = model.zones.filter((z) => z.interfaces.length > 0);
  // Every interface of every zone, to that zone's chain; loops, since routed guests make these long.
  const elements = (target: (zone: string) => string): [SetElement, Verdict][] => {
    const out: [SetElement, Verdict][] = [];
    for (const z of zonesWithIfs) {
      const chain = target(z.name);
      for (const i of z.interfaces) out.push([i, { goto: { target: chain } }]);
    }
    return out;
  };

  const maps: NamedMap[] = [
    { kind: 'map', name: 'zone_in', type: 'ifname', map: 'verdict', elements: elements((z) => pairChainName(z, HOST_ZONE)) },
    { kind: 'map', name: 'zone_out', type: 'ifname', map: 'verdict', elements: elements((z) => pairChainName(HOST_ZONE, z)) },
    { kind: 'map', name: 'zone_src', type: 'ifname', map: 'verdict', elements: elements(fromChainName) },
    ...model.zones.map((src): NamedMap => ({
      kind: 'map', name: dstMapName(src.name), type: 'ifname', map: 'verdict', elements: elements((dst) => pairChainName(src.name, dst)),
    })),
  ];
  const routed: string[] = [];
  for (const g of model.guests) for (const i of g.interfaces) if (i.mode === 'routed') routed.push(...i.hostNames);
  const sets: NamedSet[] = [
    { kind: 'set', name: ROUTED_GUESTS_SET, type: 'ifname', elements: routed },
    { kind: 'set', name: BRIDGED_SET, type: ['ifname', 'ifname'], elements: model.bridges.map((b): SetElement => ({ concat: [b.name, b.name] })) },
  ];

  const established: Rule = { stmts: [ctState(['established', 'related']), accept()], origin: o('ct-established', 'replies and related packets of accepted connections pass') };
  const invalid: Rule = { stmts: [ctState(['invalid']), counter(), drop()], origin: o('ct-invalid', 'packets conntrack cannot place are dropped') };
  const ndp = (dir: 'iifname' | 'oifname'): Rule => ({
    stmts: [match(payload('icmpv6', 'type'), { set: ICMPV6_ESSENTIAL }), accept()],
    origin: o(`icmpv6-nd-${dir === 'iifname' ? 'in' : 'out'}`, 'IPv6 neighbour discovery and MLD always work'),
  });

  const input: Chain = {
    name: 'input',
    base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' },
    rules: [
      established, invalid,
      { stmts: [match(meta('iifname'), 'lo'), accept()], origin: o('loopback-in', 'the host talks to itself') },
      ndp('iifname'),
      { stmts: [{ vmap: { key: meta('iifname'), data: setRef('zone_in') } }], origin: o('zone-in', 'to the chain of the zone the packet came from') },
      rateLimitedLog('gw in unknown-iface drop', o('unknown-in', 'from an interface in no zone: dropped')),
    ],
  };
  const output: Chain = {
    name: 'output',
    base: { type: 'filter', hook: 'output', prio: 0, policy: 'drop' },
    rules: [
      established, invalid,
      { stmts: [match(meta('oifname'), 'lo'), accept()], origin: o('loopback-out', 'the host talks to itself') },
      ndp('oifname'),
      { stmts: [{ vmap: { key: meta('oifname'), data: setRef('zone_out') } }], origin: o('zone-out', 'to the chain of the zone the packet goes to') },
      { stmts: [counter(), accept()], origin: o('unknown-out', "the host's own traffic to an interface in no zone is accepted") },
    ],
  };
  // With br_netfilter, frames between two ports of one bridge pass here too (in and out = the
  // bridge): what the bridge table always lets through must not be dropped here instead. The
  // protocol comes first: few packets are ND or DHCP, and the rest skip the pair lookup.
  const bridged = (id: string, what: string, ...stmts: Rule['stmts']): Rule => ({
    stmts: [...stmts, match({ concat: [meta('iifname'), meta('oifname')] }, setRef(BRIDGED_SET)), accept()], origin: o(id, what),
  });
  const forward: Chain = {
    name: 'forward',
    base: { type: 'filter', hook: 'forward', prio: 0, policy: 'drop' },
    rules: [
      established, invalid,
      bridged('bridged-icmpv6-nd', 'neighbour discovery and MLD between ports of a bridge (br_netfilter) always work', match(payload('icmpv6', 'type'), { set: ICMPV6_ESSENTIAL })),
      // Port ranges, not sets: two comparisons, where a set of ports is a lookup in an 8 KiB bitmap.
      bridged('bridged-dhcp', 'DHCP between ports of a bridge (br_netfilter) passes; who may answer is checked in the bridge table',
        match(payload('udp', 'sport'), portElement([67, 68])), match(payload('udp', 'dport'), portElement([67, 68]))),
      bridged('bridged-dhcpv6', 'DHCPv6 between ports of a bridge (br_netfilter) passes; who may answer is checked in the bridge table',
        match(payload('udp', 'sport'), portElement([546, 547])), match(payload('udp', 'dport'), portElement([546, 547]))),
      { stmts: [{ vmap: { key: meta('iifname'), data: setRef('zone_src') } }], origin: o('zone-src', 'to the chain of the zone the packet came from') },
      rateLimitedLog('gw fwd unknown-iface drop', o('unknown-src', 'from an interface in no zone: dropped')),
    ],
  };
  const from: Chain[] = model.zones.map((z) => ({
    name: fromChainName(z.name),
    rules: [
      ...(first.get(fromChainName(z.name)) ?? []),
      { stmts: [{ vmap: { key: meta('oifname'), data: setRef(dstMapName(z.name)) } }], origin: o('zone-dst', 'to the chain of the zone the packet goes to') },
      rateLimitedLog(`gw ${z.name}->unknown-iface drop`, o('unknown-dst', 'to an interface in no zone: dropped')),
      { stmts: [counter(), drop()], origin: o('unknown-dst', 'to an interface in no zone: dropped') },
    ],
  }));
  return { chains: [input, forward, output, ...from], sets: [...sets, ...maps] };
}
