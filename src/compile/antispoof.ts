// Per-port anti-spoofing: a guest may only send from its declared MAC and addresses (IP, ARP, NDP),
// and may not act as DHCP server or IPv6 router unless the policy says `router: true`. Every check
// is one set lookup keyed on the port (`iifname . ether saddr`), never a rule per guest, so its
// cost does not grow with the number of guests. Bridged ports are checked at bridge prerouting;
// routed ports in inet prerouting (MAC, DHCP, RA; `fib` checks their addresses) and the arp
// family (ARP sender).
import type { GuestInterfaceModel, HostModel } from '../model/host.js';
import type { Chain, NamedMap, NamedSet, Rule } from '../nft/ruleset.js';
import { type Expr, type SetElement, type Stmt, type Verdict, setRef } from '../nft/types.js';
import { type Finding, warning } from '../policy/diagnostics.js';
import { formatIpv6Groups, parseNetwork } from '../policy/addr.js';
import { ICMPV6_ESSENTIAL } from './dispatch.js';
import { accept, addrElement, counter, drop, match, meta, payload } from './matches.js';
import { placed } from './origin.js';
import type { Source } from '../model/host.js';

/** The set names, the same in every guestwall table that checks ports. */
export const SPOOF_SETS = {
  macPorts: 'mac_ports',
  macs: 'port_macs',
  v4Ports: 'v4_ports',
  v4: 'port_v4',
  v6Ports: 'v6_ports',
  v6: 'port_v6',
  clientPorts: 'client_ports',
  hvmPorts: 'hvm_ports',
} as const;

const LINK_LOCAL = 'fe80::/64';

/** IPv6 sent from `::` (before the guest has an address): duplicate address detection and MLD. */
const UNSPECIFIED_SOURCE_ICMPV6 = ['nd-neighbor-solicit', 'mld-listener-report', 'mld2-listener-report', 'mld-listener-done'];

/** The checks each kind of port gets. */
export type Checks = 'bridge' | 'inet' | 'arp';

/** An IPv6 source a port may use: its text for the address sets, and the ND target element. */
export interface Ipv6Source {
  text: string;
  ndTarget: SetElement;
}

/** The guest ports one table checks, with what it may send. */
export interface Port {
  iface: GuestInterfaceModel;
  router: boolean;
  v4: string[];
  /** The IPv6 sources it may use (see ipv6Allowed); empty = unchecked. */
  v6: Ipv6Source[];
}

/** Every guest interface as a port to check, bridged and routed apart, each in policy order. */
export function guestPorts(model: HostModel): { bridged: Port[]; routed: Port[] } {
  const bridged: Port[] = [];
  const routed: Port[] = [];
  for (const g of model.guests) {
    for (const iface of g.interfaces) {
      const v4: string[] = [];
      const declared6: Ipv6Source[] = [];
      for (const a of iface.addresses) {
        if (a.family === 4) v4.push(a.addr);
        else declared6.push({ text: a.addr, ndTarget: hex128(a.value) });
      }
      (iface.mode === 'bridged' ? bridged : routed).push({ iface, router: g.router, v4, v6: ipv6Allowed(declared6, iface.mac) });
    }
  }
  return { bridged, routed };
}

/**
 * The IPv6 sources a port may use: its declared addresses and its EUI-64 link-local one. Without
 * a MAC the link-local address is unknown, so any fe80::/64 one passes; without a MAC and without
 * declared addresses nothing can be checked (empty). With a MAC and no declared IPv6 address the
 * guest still speaks link-local IPv6 (neighbour discovery), from that one address only.
 */
function ipv6Allowed(declared: Ipv6Source[], mac: string | undefined): Ipv6Source[] {
  if (mac !== undefined) {
    const g = eui64Groups(mac);
    // The groups' 32 hex digits are what hex128 writes for the address's value.
    const linkLocal = { text: formatIpv6Groups(g), ndTarget: `0x${g.map((x) => x.toString(16).padStart(4, '0')).join('')}` };
    // Each address once, in order: the link-local one may also be declared.
    const out: Ipv6Source[] = [];
    for (const a of [...declared, linkLocal]) if (!out.some((o) => o.text === a.text)) out.push(a);
    return out;
  }
  return declared.length > 0 ? [...declared, { text: LINK_LOCAL, ndTarget: ndTargetValue(LINK_LOCAL) }] : [];
}

/** fe80::/64 with the interface identifier SLAAC derives from a MAC (RFC 4291 appendix A). */
export function eui64LinkLocal(mac: string): string {
  return formatIpv6Groups(eui64Groups(mac));
}

/** The eight 16-bit groups of eui64LinkLocal. */
function eui64Groups(mac: string): number[] {
  const b = (i: number) => parseInt(mac.slice(3 * i, 3 * i + 2), 16); // the model's MACs are "xx:xx:xx:xx:xx:xx"
  // fe80:0:0:0, then the MAC with ff:fe in its middle and the universal/local bit flipped.
  return [0xfe80, 0, 0, 0, ((b(0) ^ 0x02) << 8) | b(1), (b(2) << 8) | 0xff, 0xfe00 | b(3), (b(4) << 8) | b(5)];
}

export interface AntiSpoof {
  sets: (NamedSet | NamedMap)[];
  /** The rules of the checking base chain, in order. */
  rules: Rule[];
  /** Regular chains the rules jump to (one per Xen HVM guest interface, for its source check). */
  chains: Chain[];
}

const ifPort = (set: string): Stmt => match(meta('iifname'), setRef(set));
const pairNot = (field: Expr, set: string): Stmt => match({ concat: [meta('iifname'), field] }, setRef(set), '!=');

/** The sets and rules that check `ports`, for one table; `guests`: where the policy's guests: section is, their origin. */
export function antiSpoof(ports: Port[], checks: Checks, file: string, guests?: Source): AntiSpoof {
  const o = (id: string, what: string) => placed(guests, id, what, file);
  // Plain loops rather than flatMap chains: each list has an element per guest port.
  const names = (list: Port[]): string[] => {
    const out: string[] = [];
    for (const p of list) for (const n of p.iface.hostNames) out.push(n);
    return out;
  };
  const withMac = ports.filter((p) => p.iface.mac !== undefined);
  const with4 = ports.filter((p) => p.v4.length > 0);
  const with6 = ports.filter((p) => p.v6.length > 0);
  const clients = ports.filter((p) => !p.router);
  const pairs = (list: Port[], values: (p: Port) => string[]): SetElement[] => {
    const out: SetElement[] = [];
    for (const p of list) for (const n of p.iface.hostNames) for (const v of values(p)) out.push({ concat: [n, addrElement(v)] });
    return out;
  };
  const portSet = (name: string, list: Port[]): NamedSet => ({ kind: 'set', name, type: 'ifname', elements: names(list) });

  const sets: (NamedSet | NamedMap)[] = [];
  const rules: Rule[] = [];
  const chains: Chain[] = [];
  const l2 = checks === 'bridge' || checks === 'inet';
  const arp = checks === 'bridge' || checks === 'arp';
  const ip = checks === 'bridge';

  if (l2 || arp) {
    sets.push(portSet(SPOOF_SETS.macPorts, withMac), { kind: 'set', name: SPOOF_SETS.macs, type: ['ifname', 'ether_addr'], elements: pairs(withMac, (p) => [p.iface.mac!]) });
  }
  if (arp || ip) {
    sets.push(portSet(SPOOF_SETS.v4Ports, with4), { kind: 'set', name: SPOOF_SETS.v4, type: ['ifname', 'ipv4_addr'], elements: pairs(with4, (p) => p.v4) });
  }
  if (l2) {
    rules.push({ stmts: [ifPort(SPOOF_SETS.macPorts), pairNot(payload('ether', 'saddr'), SPOOF_SETS.macs), counter(), drop()], origin: o('spoof-mac', 'a guest sends only from its declared MAC') });
  }
  if (arp) {
    rules.push(
      { stmts: [ifPort(SPOOF_SETS.macPorts), pairNot(payload('arp', 'saddr ether'), SPOOF_SETS.macs), counter(), drop()], origin: o('spoof-arp-mac', 'ARP from a guest names its own MAC as sender') },
      {
        // ARP probes (RFC 5227) come from 0.0.0.0 before the guest uses an address.
        stmts: [ifPort(SPOOF_SETS.v4Ports), match(payload('arp', 'saddr ip'), '0.0.0.0', '!='), pairNot(payload('arp', 'saddr ip'), SPOOF_SETS.v4), counter(), drop()],
        origin: o('spoof-arp-ip', "ARP from a guest claims only its own IPv4 addresses (no replies for another guest's address)"),
      },
    );
  }
  if (l2) {
    sets.push(portSet(SPOOF_SETS.clientPorts, clients));
    const notRouter = 'only guests with router: true may';
    rules.push(
      { stmts: [ifPort(SPOOF_SETS.clientPorts), match(payload('udp', 'sport'), 67), match(payload('udp', 'dport'), 68), counter(), drop()], origin: o('rogue-dhcp', `${notRouter} answer DHCP`) },
      { stmts: [ifPort(SPOOF_SETS.clientPorts), match(payload('udp', 'sport'), 547), match(payload('udp', 'dport'), 546), counter(), drop()], origin: o('rogue-dhcpv6', `${notRouter} answer DHCPv6`) },
      { stmts: [ifPort(SPOOF_SETS.clientPorts), match(payload('icmpv6', 'type'), { set: ['nd-router-advert', 'nd-redirect'] }), counter(), drop()], origin: o('rogue-ra', `${notRouter} send router advertisements or redirects`) },
      { stmts: [ifPort(SPOOF_SETS.clientPorts), match(payload('icmp', 'type'), 'redirect'), counter(), drop()], origin: o('rogue-redirect', `${notRouter} send ICMP redirects`) },
    );
    // The ND target address: nft 1.0.6 has no name for it (`icmpv6 taddr` came later), so it is
    // read as raw bits, and its JSON cannot declare a named set keyed on raw bits (that needs
    // `typeof`, which its JSON lacks; a `type ifname . ipv6_addr` set is refused for raw bits).
    // An anonymous set takes its key from the expression, so every port's (port, target) pairs
    // are one anonymous set in one rule: no rule per guest, and the ruleset still loads as JSON.
    // (A chain per port cost 3 rules per guest; 10,000 anonymous sets, one per port, made the
    // load quadratic: the kernel looks every set up by name in a list.) Ports without checked
    // IPv6 sources (no mac:, no IPv6 address) are not in v6_ports, so their adverts pass as before.
    const targets: SetElement[] = [];
    for (const p of with6) for (const n of p.iface.hostNames) for (const a of p.v6) targets.push({ concat: [n, a.ndTarget] });
    if (!ip) sets.push(portSet(SPOOF_SETS.v6Ports, with6));
    // nft refuses an empty anonymous set: with no port to check there is no rule.
    if (targets.length > 0) {
      rules.push({
        stmts: [match(payload('icmpv6', 'type'), 'nd-neighbor-advert'), ifPort(SPOOF_SETS.v6Ports), match({ concat: [meta('iifname'), ND_TARGET] }, { set: targets }, '!='), counter(), drop()],
        origin: o('spoof-nd', 'a guest advertises only its own IPv6 addresses (neighbour advert target)'),
      });
    }
  }
  if (ip) {
    sets.push(
      portSet(SPOOF_SETS.v6Ports, with6),
      { kind: 'set', name: SPOOF_SETS.v6, type: ['ifname', 'ipv6_addr'], flags: ['interval'], elements: pairs(with6, (p) => p.v6.map((a) => a.text)) },
    );
    rules.push(
      { stmts: [ifPort(SPOOF_SETS.v4Ports), match(payload('ip', 'saddr'), '0.0.0.0'), match(payload('udp', 'sport'), 68), match(payload('udp', 'dport'), 67), accept()], origin: o('dhcp-client', 'a guest without an address yet may ask for one (DHCP from 0.0.0.0)') },
      { stmts: [ifPort(SPOOF_SETS.v4Ports), pairNot(payload('ip', 'saddr'), SPOOF_SETS.v4), counter(), drop()], origin: o('spoof-ipv4', 'a guest sends only from its declared IPv4 addresses') },
      { stmts: [ifPort(SPOOF_SETS.v6Ports), match(payload('ip6', 'saddr'), '::'), match(payload('icmpv6', 'type'), { set: UNSPECIFIED_SOURCE_ICMPV6 }), accept()], origin: o('dad-mld', 'duplicate address detection and MLD from :: pass') },
      { stmts: [ifPort(SPOOF_SETS.v6Ports), pairNot(payload('ip6', 'saddr'), SPOOF_SETS.v6), counter(), drop()], origin: o('spoof-ipv6', 'a guest sends only from its declared IPv6 addresses and its link-local one') },
    );
  }
  if (checks === 'inet') {
    // A routed guest's addresses are the routes the host has to its port: `fib` checks every
    // packet's source here, before conntrack could match a spoofed packet to a connection of
    // another guest and pass it as established. Neighbour discovery and MLD (link-local, or from
    // :: before the guest has an address) are checked above, not by route.
    rules.push({ stmts: [match(payload('icmpv6', 'type'), { set: ICMPV6_ESSENTIAL }), { return: null }], origin: o('routed-nd', 'neighbour discovery and MLD are checked by the rules above') });
    const hvm = hvmSourceChecks(ports, file);
    if (hvm !== undefined) {
      sets.push(hvm.map);
      chains.push(...hvm.chains);
      rules.push({ stmts: [{ vmap: { key: meta('iifname'), data: setRef(SPOOF_SETS.hvmPorts) } }], origin: o('hvm-antispoof', "a Xen HVM guest's two ports (PV vif and -emu tap) are checked as one") });
    }
    rules.push({ stmts: [match({ fib: { result: 'oif', flags: ['saddr', 'iif'] } }, false), counter(), drop()], origin: o('routed-antispoof', 'a routed guest may only send from addresses the host routes to it') });
  }
  return { sets, rules, chains };
}

/**
 * Xen HVM guests have two ports, the PV vif and QEMU's -emu tap, with the same addresses routed to
 * both; the tap's routes are preferred while it exists (as Xen's vif-route does). QEMU deletes the
 * tap when the guest's PV drivers unplug the emulated NIC, and its routes go with it; until then
 * (or for good, with a guest or device model that does not unplug) `fib saddr . iif` fails every
 * packet the guest sends on its vif, because the best route back leaves through the tap. So these
 * ports go (`goto`) to a chain of their interface that takes a source whose best route leaves
 * through either of the two: `fib saddr oifname` (the route the host itself would use, link-local
 * sources on the port they came in on), compared with both names, and nothing else. Other ports
 * never reach it and keep the plain check. Plain matches, not an anonymous set per port: the
 * kernel finds sets by name in a list, so thousands of them make the load quadratic.
 */
function hvmSourceChecks(ports: Port[], file: string): { map: NamedMap; chains: Chain[] } | undefined {
  const hvm = ports.filter((p) => p.iface.fibChain !== undefined);
  if (hvm.length === 0) return undefined;
  const elements: [SetElement, Verdict][] = [];
  const chains: Chain[] = [];
  for (const p of hvm) {
    const chain = p.iface.fibChain!;
    for (const n of p.iface.hostNames) elements.push([n, { goto: { target: chain } }]);
    const origin = placed(p.iface.src, 'hvm-fib', `${p.iface.guest} sends only from addresses the host routes to ${p.iface.hostNames.join(' or ')}`, file);
    chains.push({
      name: chain,
      rules: [
        ...p.iface.hostNames.map((n): Rule => ({ stmts: [match({ fib: { result: 'oifname', flags: ['saddr'] } }, n), { return: null }], origin })),
        { stmts: [counter(), drop()], origin },
      ],
    });
  }
  return { map: { kind: 'map', name: SPOOF_SETS.hvmPorts, type: 'ifname', map: 'verdict', elements }, chains };
}

/** The target address of a neighbour advertisement: 16 bytes at offset 8 of the ICMPv6 header. */
export const ND_TARGET: Expr = { payload: { base: 'th', offset: 64, len: 128 } };

/** An IPv6 address (or prefix, as a range) as the 128-bit integer a raw payload match compares. */
export function ndTargetValue(addr: string): SetElement {
  const r = parseNetwork(addr);
  if (!r.ok || r.value.family !== 6) throw new Error(`compiler bug: ${addr} is not an IPv6 address`);
  return r.value.start === r.value.end ? hex128(r.value.start) : { range: [hex128(r.value.start), hex128(r.value.end)] };
}

/** A 128-bit value as nft takes it for a raw payload match. */
function hex128(v: bigint): string {
  return `0x${v.toString(16).padStart(32, '0')}`;
}

/** What a port cannot be checked for, said once per guest interface. */
export function antiSpoofFindings(ports: Port[]): Finding[] {
  return ports.flatMap((p) => {
    const gaps: string[] = [];
    if (p.iface.mac === undefined) gaps.push(`its source MAC${p.v6.length > 0 && p.iface.mode === 'bridged' ? ' and link-local address' : ''} (no mac:)`);
    if (p.iface.mode === 'bridged') {
      if (p.v4.length === 0) gaps.push('its IPv4 and ARP sender addresses (no IPv4 address)');
      if (p.v6.length === 0) gaps.push('its IPv6 source and neighbour-advert addresses (no mac:, no IPv6 address)');
    } else if (p.v4.length === 0) gaps.push('its ARP sender addresses (no IPv4 address)');
    if (gaps.length === 0) return [];
    return [warning('antispoof-incomplete', p.iface.src.path,
      `guest '${p.iface.guest}' interface ${p.iface.name}: guestwall cannot check ${gaps.join(', ')}, so it may send as someone else there`,
      'declare the interface\'s mac: and its addresses of both families (the address families it does not use can be blocked with a rule)')];
  });
}
