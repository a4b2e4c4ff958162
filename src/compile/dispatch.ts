// The base chains and the verdict maps that send each packet to its zone-pair chain. A packet
// costs two map lookups (source zone, then destination zone) however many guests and zones the
// host has: interfaces are map elements, never rules.
//
// Every new connection walks these chains, so a rule's cheap protocol match comes before its set
// lookup (nft stops at the first statement that fails). Routed guests' sources are checked in
// prerouting (antispoof.ts), on every packet, before conntrack can place a spoofed one.
import { HOST_ZONE, type HostModel } from '../model/host.js';
import type { Chain, NamedMap, NamedSet, Origin, Rule } from '../nft/ruleset.js';
import { type SetElement, type Verdict, setRef } from '../nft/types.js';
import { accept, counter, drop, match, meta, payload, portElement } from './matches.js';
import { builtin, placed } from './origin.js';
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

/** The accepts of neighbour discovery and DHCP between two ports of one bridge, behind the `bridged` lookup. */
export const BRIDGED_CHAIN = 'bridged_pass';

export const CT_STATE_MAP = 'ct_state';
export const CT_INVALID_CHAIN = 'ct_invalid';

/**
 * Conntrack's verdict, first in every filter base chain that sees connections: one lookup on the
 * state (`ct state vmap @ct_state`) where two rules were: replies and related packets pass,
 * invalid ones go to `ct_invalid` (counted, dropped), new ones go on. `o` names the origins.
 */
export function conntrackVerdict(o: (id: string, what: string) => Origin): { rule: Rule; map: NamedMap; chain: Chain } {
  return {
    rule: { stmts: [{ vmap: { key: { ct: { key: 'state' } }, data: setRef(CT_STATE_MAP) } }], origin: o('ct-state', 'replies and related packets of accepted connections pass; invalid ones are dropped') },
    map: {
      kind: 'map', name: CT_STATE_MAP, type: 'ct_state', map: 'verdict',
      elements: [['established', { accept: null }], ['related', { accept: null }], ['invalid', { jump: { target: CT_INVALID_CHAIN } }]],
    },
    chain: { name: CT_INVALID_CHAIN, rules: [{ stmts: [counter(), drop()], origin: o('ct-invalid', 'packets conntrack cannot place are dropped') }] },
  };
}

export interface Dispatch {
  chains: Chain[];
  sets: (NamedSet | NamedMap)[];
}

/**
 * `first`: rules that go first in a chain this module writes, by chain name (the conntrack
 * helpers of the connections that arrive from a zone, in `from_<zone>`, where a port forward
 * translates what they match: nat.ts).
 */
export function dispatch(model: HostModel, first: ReadonlyMap<string, Rule[]> = new Map()): Dispatch {
  const file = model.file;
  const o = (id: string, what: string) => builtin(id, what, file);
  // Dispatch by zone exists because of the zones: section; a zone's own chain is that zone's.
  const zones = (id: string, what: string) => placed(model.sections?.zones, id, what, file);
  const bridges = (id: string, what: string) => placed(model.sections?.bridges, id, what, file);
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

  const ct = conntrackVerdict(o);
  const maps: NamedMap[] = [
    ct.map,
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

  const ndp = (dir: 'iifname' | 'oifname'): Rule => ({
    stmts: [match(payload('icmpv6', 'type'), { set: ICMPV6_ESSENTIAL }), accept()],
    origin: o(`icmpv6-nd-${dir === 'iifname' ? 'in' : 'out'}`, 'IPv6 neighbour discovery and MLD always work'),
  });

  const input: Chain = {
    name: 'input',
    base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' },
    rules: [
      ct.rule,
      { stmts: [match(meta('iifname'), 'lo'), accept()], origin: o('loopback-in', 'the host talks to itself') },
      ndp('iifname'),
      { stmts: [{ vmap: { key: meta('iifname'), data: setRef('zone_in') } }], origin: zones('zone-in', 'to the chain of the zone the packet came from') },
      rateLimitedLog('gw in unknown-iface drop', zones('unknown-in', 'from an interface in no zone: dropped')),
    ],
  };
  const output: Chain = {
    name: 'output',
    base: { type: 'filter', hook: 'output', prio: 0, policy: 'drop' },
    rules: [
      ct.rule,
      { stmts: [match(meta('oifname'), 'lo'), accept()], origin: o('loopback-out', 'the host talks to itself') },
      ndp('oifname'),
      { stmts: [{ vmap: { key: meta('oifname'), data: setRef('zone_out') } }], origin: zones('zone-out', 'to the chain of the zone the packet goes to') },
      { stmts: [counter(), accept()], origin: zones('unknown-out', "the host's own traffic to an interface in no zone is accepted") },
    ],
  };
  // With br_netfilter, frames between two ports of one bridge pass here too (in and out = the
  // bridge): what the bridge table always lets through must not be dropped here instead. Those
  // accepts sit behind one lookup (`iifname . oifname @bridged`), first in the from_<zone> chains
  // of zones with a bridge (before any conntrack helpers there, as before): packets from other zones
  // never meet it. The protocol comes first in each accept: few packets are ND or DHCP.
  const bridgedRule = (id: string, what: string, ...stmts: Rule['stmts']): Rule => ({ stmts: [...stmts, accept()], origin: bridges(id, what) });
  const bridgedPass: Chain = {
    name: BRIDGED_CHAIN,
    rules: [
      bridgedRule('bridged-icmpv6-nd', 'neighbour discovery and MLD between ports of a bridge (br_netfilter) always work', match(payload('icmpv6', 'type'), { set: ICMPV6_ESSENTIAL })),
      // Port ranges, not sets: two comparisons, where a set of ports is a lookup in an 8 KiB bitmap.
      bridgedRule('bridged-dhcp', 'DHCP between ports of a bridge (br_netfilter) passes; who may answer is checked in the bridge table',
        match(payload('udp', 'sport'), portElement([67, 68])), match(payload('udp', 'dport'), portElement([67, 68]))),
      bridgedRule('bridged-dhcpv6', 'DHCPv6 between ports of a bridge (br_netfilter) passes; who may answer is checked in the bridge table',
        match(payload('udp', 'sport'), portElement([546, 547])), match(payload('udp', 'dport'), portElement([546, 547]))),
    ],
  };
  const bridgedGate: Rule = {
    stmts: [match({ concat: [meta('iifname'), meta('oifname')] }, setRef(BRIDGED_SET)), { jump: { target: BRIDGED_CHAIN } }],
    origin: bridges('bridged-gate', 'frames between two ports of one bridge (br_netfilter): neighbour discovery and DHCP pass'),
  };
  const bridgeZones = new Set(model.bridges.map((b) => b.zone));
  const forward: Chain = {
    name: 'forward',
    base: { type: 'filter', hook: 'forward', prio: 0, policy: 'drop' },
    rules: [
      ct.rule,
      { stmts: [{ vmap: { key: meta('iifname'), data: setRef('zone_src') } }], origin: zones('zone-src', 'to the chain of the zone the packet came from') },
      rateLimitedLog('gw fwd unknown-iface drop', zones('unknown-src', 'from an interface in no zone: dropped')),
    ],
  };
  const from: Chain[] = model.zones.map((z) => ({
    name: fromChainName(z.name),
    rules: [
      ...(bridgeZones.has(z.name) ? [bridgedGate] : []),
      ...(first.get(fromChainName(z.name)) ?? []),
      { stmts: [{ vmap: { key: meta('oifname'), data: setRef(dstMapName(z.name)) } }], origin: placed(z.src, 'zone-dst', 'to the chain of the zone the packet goes to', file) },
      rateLimitedLog(`gw ${z.name}->unknown-iface drop`, placed(z.src, 'unknown-dst', 'to an interface in no zone: dropped', file)),
      { stmts: [counter(), drop()], origin: placed(z.src, 'unknown-dst', 'to an interface in no zone: dropped', file) },
    ],
  }));
  return { chains: [input, forward, output, ct.chain, ...from, ...(model.bridges.length > 0 ? [bridgedPass] : [])], sets: [...sets, ...maps] };
}
