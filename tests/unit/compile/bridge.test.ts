import { describe, expect, it } from 'vitest';
import { eui64LinkLocal, ndTargetValue } from '../../../src/compile/antispoof.js';
import { BASELINE_FEATURES, FULL_FEATURES, featuresLine } from '../../../src/compile/features.js';
import { hookProblems } from '../../../src/compile/hooks.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { type Packet, evaluate, evaluateBridge, evaluatePrerouting } from '../../../src/explain/evaluate.js';
import { explainFlow } from '../../../src/explain/flow.js';
import { printRuleset, printStmt } from '../../../src/nft/print.js';
import type { NamedMap, NamedSet, Ruleset, Table } from '../../../src/nft/ruleset.js';
import { formatDiagnostic } from '../../../src/policy/diagnostics.js';
import { HAIRPIN_POLICY } from '../../support/hairpin-policy.js';

const POLICY = `
version: 1
host:
  interfaces:
    eth0: { zone: net, addresses: [203.0.113.10/24] }
zones:
  net: {}
  dmz: { networks: [10.0.10.0/24, fd00:10::/64, 203.0.113.16/28] }
bridges:
  br-dmz: { zone: dmz, ports: [eth2], addresses: [10.0.10.1/24, fd00:10::1/64] }
guests:
  web:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "02:00:0a:00:0a:0a", addresses: [10.0.10.10, fd00:10::10] }
  db:
    platform: xen
    xen: { type: hvm }
    interfaces:
      - { mode: bridged, bridge: br-dmz, name: xdb, mac: "00:16:3e:00:00:0b", addresses: [10.0.10.11, fd00:10::11] }
  gw:
    platform: kvm
    router: true
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "52:54:00:00:00:0c", addresses: [10.0.10.12] }
  mail:
    platform: xen
    zone: dmz
    xen: { type: hvm }
    interfaces:
      - { mode: routed, name: xmail, mac: "00:16:3e:00:00:14", addresses: [203.0.113.20] }
policies:
  - { from: dmz, to: net, action: accept }
  - { from: all, to: all, action: reject }
rules:
  - { from: web, to: db, service: postgres, action: accept }
  - { from: web, to: db, service: ping, action: accept }
services:
  postgres: { tcp: 5432 }
`;

function compileWith(yaml: string, features = BASELINE_FEATURES) {
  const r = compilePolicyText('t.yaml', yaml, features);
  if (!r.compiled || !r.model) throw new Error(r.diagnostics.map(formatDiagnostic).join('\n'));
  return { ruleset: r.compiled.ruleset, model: r.model, diagnostics: r.diagnostics };
}

const table = (rs: Ruleset, family: string): Table => rs.tables.find((t) => t.family === family)!;
const set = (t: Table, name: string) => t.sets.find((s) => s.name === name) as NamedSet | NamedMap;
const rules = (t: Table, chain: string) => t.chains.find((c) => c.name === chain)!.rules.map((r) => r.stmts.map(printStmt).join(' '));
const ruleOf = (t: Table, chain: string, id: string) => t.chains.find((c) => c.name === chain)!.rules.find((r) => r.origin.id === id)!;

const baseline = compileWith(POLICY);
const full = compileWith(POLICY, FULL_FEATURES);
const bridge = table(baseline.ruleset, 'bridge');

describe('kernel features are compiler input', () => {
  it('uses bridge conntrack only when the kernel has it', () => {
    expect(printRuleset(full.ruleset)).toMatch(/table bridge guestwall \{[^]*ct state vmap @ct_state comment "builtin:bridge-ct-state"[^]*chain ct_invalid \{\n\t\tcounter drop comment "builtin:bridge-ct-invalid"/);
    const bridgeText = printRuleset({ tables: [bridge] });
    expect(bridgeText).not.toMatch(/\bct\b/);
    expect(bridgeText).not.toMatch(/reject/);
  });

  it('refuses, as a compiler bug, what the kernel cannot load', () => {
    expect(hookProblems(full.ruleset, BASELINE_FEATURES).map((p) => p.message)).toContain('ct in the bridge family needs nf_conntrack_bridge, which the kernel lacks');
    expect(hookProblems(baseline.ruleset, BASELINE_FEATURES)).toEqual([]);
  });

  it('says in one line what was used and what is weaker', () => {
    const line = featuresLine(BASELINE_FEATURES, 'probed with nft -c');
    expect(line.split('\n')).toHaveLength(1);
    expect(line).toMatch(/baseline \(probed with nft -c\); weaker without the rest: guest-to-guest filtering on a bridge is stateless/);
    expect(featuresLine(FULL_FEATURES, 'x')).toBe('guestwall: kernel features: full (x)');
  });
});

describe('anti-spoofing on bridge ports, as set lookups keyed on the port', () => {
  it('declares each port with its MAC and addresses, the Xen HVM -emu tap too', () => {
    expect(set(bridge, 'port_macs').elements).toEqual([
      { concat: ['gw-web', '02:00:0a:00:0a:0a'] },
      { concat: ['xdb', '00:16:3e:00:00:0b'] },
      { concat: ['xdb-emu', '00:16:3e:00:00:0b'] },
      { concat: ['gw-gw', '52:54:00:00:00:0c'] },
    ]);
    expect(set(bridge, 'port_v4').elements).toContainEqual({ concat: ['xdb-emu', '10.0.10.11'] });
    expect(set(bridge, 'port_v6').elements).toContainEqual({ concat: ['gw-web', 'fe80::aff:fe00:a0a'] });
    expect(set(bridge, 'port_v6').elements).toContainEqual({ concat: ['gw-web', 'fd00:10::10'] });
  });

  it('keeps DHCP and router advertisements to guests declared routers', () => {
    expect(set(bridge, 'client_ports').elements).toEqual(['gw-web', 'xdb', 'xdb-emu']);
    const pre = rules(bridge, 'prerouting');
    expect(pre).toContain('iifname @client_ports udp sport 67 udp dport 68 counter drop');
    expect(pre).toContain('iifname @client_ports icmpv6 type { nd-router-advert, nd-redirect } counter drop');
  });

  it('checks in order: MAC, ARP, rogue servers, ND targets, then IP sources (DHCP from 0.0.0.0 and DAD from :: pass)', () => {
    expect(rules(bridge, 'prerouting')).toEqual([
      'iifname @mac_ports iifname . ether saddr != @port_macs counter drop',
      'iifname @mac_ports iifname . arp saddr ether != @port_macs counter drop',
      'iifname @v4_ports arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @port_v4 counter drop',
      'iifname @client_ports udp sport 67 udp dport 68 counter drop',
      'iifname @client_ports udp sport 547 udp dport 546 counter drop',
      'iifname @client_ports icmpv6 type { nd-router-advert, nd-redirect } counter drop',
      'iifname @client_ports icmp type redirect counter drop',
      expect.stringMatching(/^icmpv6 type nd-neighbor-advert iifname @v6_ports iifname \. @th,64,128 != \{ .+ \} counter drop$/),
      'iifname @v4_ports ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept',
      'iifname @v4_ports iifname . ip saddr != @port_v4 counter drop',
      'iifname @v6_ports ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report, mld-listener-done } accept',
      'iifname @v6_ports iifname . ip6 saddr != @port_v6 counter drop',
    ]);
    // One rule for every port: (port, target) pairs in one anonymous set, each port's declared
    // addresses and its EUI-64 link-local one, on each of its host names.
    const nd = ruleOf(bridge, 'prerouting', 'guests:spoof-nd');
    const pairs = nd.stmts.flatMap((st) => ('match' in st && typeof st.match.right === 'object' && 'set' in st.match.right ? st.match.right.set : []));
    expect(pairs).toContainEqual({ concat: ['gw-web', ndTargetValue('fd00:10::10')] });
    expect(pairs).toContainEqual({ concat: ['gw-web', ndTargetValue('fe80::aff:fe00:a0a')] });
    expect(pairs.filter((e) => typeof e === 'object' && 'concat' in e && e.concat[0] === 'gw-web')).toHaveLength(2);
    expect(set(bridge, 'v6_ports').elements).toEqual([...new Set(pairs.map((e) => (e as { concat: string[] }).concat[0]))]);
  });

  it('derives the EUI-64 link-local address from the MAC', () => {
    expect(eui64LinkLocal('52:54:00:12:34:56')).toBe('fe80::5054:ff:fe12:3456');
    expect(eui64LinkLocal('02:00:0a:00:0a:0a')).toBe('fe80::aff:fe00:a0a');
  });

  it('warns about what it cannot check', () => {
    const r = compileWith(POLICY.replace(', mac: "02:00:0a:00:0a:0a"', ''));
    const w = r.diagnostics.filter((d) => d.code === 'GW105');
    expect(w.map((d) => `${d.line}:${d.col} ${d.message}`)).toEqual([
      "15:9 guest 'web' interface gw-web: guestwall cannot check its source MAC and link-local address (no mac:), so it may send as someone else there",
    ]);
    expect(set(table(r.ruleset, 'bridge'), 'port_v6').elements).toContainEqual({ concat: ['gw-web', { prefix: { addr: 'fe80::', len: 64 } }] });
    expect(baseline.diagnostics.filter((d) => d.code === 'GW105')).toEqual([]);
  });
});

describe('filtering between two ports of one bridge', () => {
  it('dispatches by one map lookup on the port to the zone pair chain, the host port of the bridge too', () => {
    expect(rules(bridge, 'forward').slice(-2)).toEqual(['iifname vmap @port_zone', 'oifname vmap @port_zone']);
    expect(set(bridge, 'port_zone').elements.map((e) => (e as [string, unknown])[0])).toEqual(['gw-web', 'xdb', 'xdb-emu', 'gw-gw', 'eth2']);
  });

  it('without conntrack, mirrors every accept for its replies; reject becomes drop', () => {
    expect(rules(bridge, 'dmz_to_dmz')).toEqual([
      'ip saddr 10.0.10.10 ip daddr 10.0.10.11 tcp dport 5432 counter accept',
      'ip saddr 10.0.10.11 ip daddr 10.0.10.10 tcp sport 5432 tcp flags & (syn | ack) != syn counter accept',
      'ip6 saddr fd00:10::10 ip6 daddr fd00:10::11 tcp dport 5432 counter accept',
      'ip6 saddr fd00:10::11 ip6 daddr fd00:10::10 tcp sport 5432 tcp flags & (syn | ack) != syn counter accept',
      'ip saddr 10.0.10.10 ip daddr 10.0.10.11 icmp type echo-request counter accept',
      'ip saddr 10.0.10.11 ip daddr 10.0.10.10 icmp type echo-reply counter accept',
      'ip6 saddr fd00:10::10 ip6 daddr fd00:10::11 icmpv6 type echo-request counter accept',
      'ip6 saddr fd00:10::11 ip6 daddr fd00:10::10 icmpv6 type echo-reply counter accept',
      'counter drop',
    ]);
    expect(rules(table(full.ruleset, 'bridge'), 'dmz_to_dmz').filter((r) => r.includes('sport'))).toEqual([]);
    // The inet chain of the same name still rejects.
    expect(rules(table(baseline.ruleset, 'inet'), 'dmz_to_dmz').at(-1)).toBe('counter reject with icmpx admin-prohibited');
  });

  it('says what is weaker: GW106 stateless (baseline only), GW107 reject is a drop', () => {
    const codes = (d: { code: string; line: number }[]) => d.filter((x) => x.code === 'GW106' || x.code === 'GW107').map((x) => `${x.code}:${x.line}`);
    expect(codes(baseline.diagnostics)).toEqual(['GW106:10', 'GW107:34']);
    expect(codes(full.diagnostics)).toEqual(['GW107:34']);
    // check does not ask the kernel: GW106 speaks of a kernel without bridge conntrack, and its
    // hint names what the user can do, not an option check lacks.
    const gw106 = baseline.diagnostics.find((x) => x.code === 'GW106')!;
    expect(gw106.message).toMatch(/^on a kernel without bridge conntrack, what the /);
    expect(gw106.hint).toContain('modprobe nf_conntrack_bridge');
    expect(gw106.hint).not.toContain('--kernel-features');
  });
});

describe('routed guest ports', () => {
  it('check MAC, DHCP and RA in inet prerouting and the ARP sender in the arp table, the -emu tap too', () => {
    const inet = table(baseline.ruleset, 'inet');
    expect(inet.chains.find((c) => c.name === 'antispoof')!.base).toMatchObject({ hook: 'prerouting', policy: 'accept' });
    expect(rules(inet, 'antispoof').slice(0, 2)).toEqual(['iifname != @routed_guests return', 'iifname @mac_ports iifname . ether saddr != @port_macs counter drop']);
    expect(set(inet, 'routed_guests').elements).toEqual(['xmail', 'xmail-emu']);
    expect(set(inet, 'zone_src').elements.map((e) => (e as [string, unknown])[0])).toContain('xmail-emu');
    const arp = table(baseline.ruleset, 'arp');
    expect(rules(arp, 'input')).toEqual([
      'iifname @mac_ports iifname . arp saddr ether != @port_macs counter drop',
      'iifname @v4_ports arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @port_v4 counter drop',
    ]);
    expect(set(arp, 'port_v4').elements).toEqual([{ concat: ['xmail', '203.0.113.20'] }, { concat: ['xmail-emu', '203.0.113.20'] }]);
  });
});

describe('explain evaluates the bridge table', () => {
  const frame = (f: Partial<Packet>): Packet => ({ family: 4, iifname: 'gw-web', oifname: 'xdb', saddr: '10.0.10.10', daddr: '10.0.10.11', proto: 'tcp', sport: 40000, dport: 5432, ct: { state: 'new' }, ...f });

  it('passes an allowed service and its replies, and drops what the intra-zone policy rejects', () => {
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', frame({})).verdict).toBe('accept');
    const reply = frame({ iifname: 'xdb', oifname: 'gw-web', saddr: '10.0.10.11', daddr: '10.0.10.10', sport: 5432, dport: 40000, ct: { state: 'established' } });
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', reply).verdict).toBe('accept');
    // A bare SYN from the service port is not a reply: stateless, but not open.
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', { ...reply, ct: { state: 'new' } }).verdict).toBe('drop');
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', frame({ dport: 22 })).verdict).toBe('drop');
  });

  it('drops a spoofed MAC or source address at bridge prerouting', () => {
    const mac = evaluateBridge(baseline.ruleset, 'br-dmz', frame({ smac: '02:00:0a:00:0a:99' }));
    expect(mac.verdict).toBe('drop');
    expect(mac.decidedBy?.id).toBe('guests:spoof-mac');
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', frame({ smac: '02:00:0a:00:0a:0a' })).verdict).toBe('accept');
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', frame({ saddr: '10.0.10.12' })).decidedBy?.id).toBe('guests:spoof-ipv4');
  });

  it('checks neighbour-advert targets', () => {
    const na = (ndTarget: string): Packet => ({ family: 6, iifname: 'gw-web', oifname: 'xdb', saddr: 'fe80::aff:fe00:a0a', daddr: 'ff02::1', proto: 'icmpv6', icmpType: 'nd-neighbor-advert', ndTarget, ct: { state: 'new' } });
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', na('fd00:10::10')).verdict).toBe('accept');
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', na('fe80::aff:fe00:a0a')).verdict).toBe('accept');
    // Another guest's address (fd00:10::11 is xdb's) and a link-local address that is not web's.
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', na('fd00:10::11')).decidedBy?.id).toBe('guests:spoof-nd');
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', na('fe80::aff:fe00:a0b')).decidedBy?.id).toBe('guests:spoof-nd');
    // A Xen HVM guest's emulated tap advertises the guest's own address; its other names' pairs do not leak to web.
    const fromEmu: Packet = { ...na('fd00:10::11'), iifname: 'xdb-emu', oifname: 'gw-web', saddr: eui64LinkLocal('00:16:3e:00:00:0b') };
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', fromEmu).decidedBy?.id).not.toBe('guests:spoof-nd');
    expect(evaluateBridge(baseline.ruleset, 'br-dmz', { ...fromEmu, ndTarget: 'fd00:10::10' }).decidedBy?.id).toBe('guests:spoof-nd');
  });

  it('checks a routed guest MAC in inet prerouting', () => {
    const p: Packet = { family: 4, iifname: 'xmail', oifname: 'eth0', saddr: '203.0.113.20', daddr: '198.51.100.1', proto: 'udp', sport: 5000, dport: 53, ct: { state: 'new' } };
    expect(evaluate(baseline.ruleset, 'forward', p).verdict).toBe('accept');
    expect(evaluate(baseline.ruleset, 'forward', { ...p, smac: '00:16:3e:00:00:99' }).decidedBy?.id).toBe('guests:spoof-mac');
  });

  it('tells the bridge story between two guests on one bridge, then the inet pass of br_netfilter', () => {
    const r = explainFlow(baseline.model, baseline.ruleset, { from: 'web', to: 'db', proto: 'tcp', port: 5432 });
    if (!r.ok) throw new Error(r.error);
    expect(r.value.bridge).toBe('br-dmz');
    expect(r.value.story.join('\n')).toMatch(/from port gw-web to port xdb[^]*bridge dmz_to_dmz: ip saddr 10.0.10.10[^]*br_netfilter/);
    // The inet pass meets the inet dmz_to_dmz chain, which has the same rule: accepted by both.
    expect(r.value.evaluation.verdict).toBe('accept');
    expect(r.value.evaluation.steps.some((s) => s.family === 'inet' && s.chain === 'dmz_to_dmz')).toBe(true);
    const off = explainFlow(baseline.model, baseline.ruleset, { from: 'web', to: 'db', proto: 'tcp', port: 5432, brNetfilter: false });
    expect(off.ok && off.value.evaluation.steps.every((s) => s.family === 'bridge')).toBe(true);
  });
});

describe('with br_netfilter, the inet forward hook sees bridged frames too', () => {
  it('lets neighbour discovery and DHCP between ports of one bridge pass there, as the bridge table does', () => {
    const inet = table(baseline.ruleset, 'inet');
    expect(set(inet, 'bridged').elements).toEqual([{ concat: ['br-dmz', 'br-dmz'] }]);
    // Behind one lookup, first in the bridge zone's from chain: other zones' packets never meet it.
    expect(rules(inet, 'from_dmz')[0]).toBe('iifname . oifname @bridged jump bridged_pass');
    expect(rules(inet, 'from_net')[0]).not.toContain('@bridged');
    expect(rules(inet, 'bridged_pass')).toEqual([
      'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert, mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } accept',
      'udp sport 67-68 udp dport 67-68 accept',
      'udp sport 546-547 udp dport 546-547 accept',
    ]);
    const discover: Packet = { family: 4, iifname: 'gw-web', oifname: 'gw-gw', saddr: '0.0.0.0', daddr: '255.255.255.255', proto: 'udp', sport: 68, dport: 67, ct: { state: 'new' } };
    const e = evaluateBridge(baseline.ruleset, 'br-dmz', discover, { brNetfilter: true });
    expect(e.verdict).toBe('accept');
    expect(e.steps.some((s) => s.family === 'inet' && s.origin?.id === 'bridges:bridged-dhcp' && s.outcome === 'verdict')).toBe(true);
    // The same DHCP from the bridge to another interface is not a frame between two bridge ports: it never meets those accepts.
    const routed = evaluate(baseline.ruleset, 'forward', { ...discover, iifname: 'br-dmz', oifname: 'eth0' });
    expect(routed.steps.some((s) => s.chain === 'bridged_pass')).toBe(false);
  });
});

describe('a hairpin forward to a guest on a bridge: only DNATed connections cross the bridge to its port', () => {
  const base = compileWith(HAIRPIN_POLICY);
  const withConntrack = compileWith(HAIRPIN_POLICY, FULL_FEATURES);
  const frame = (over: Partial<Packet>): Packet => ({ family: 4, iifname: 'gw-web', oifname: 'gw-sip', saddr: '10.0.10.11', daddr: '10.0.10.10', proto: 'udp', sport: 40000, dport: 5060, ct: { state: 'new' }, ...over });
  const hairpin = (brNetfilter: boolean, ruleset = base.ruleset, model = base.model) => {
    const r = explainFlow(model, ruleset, { from: 'web', to: '203.0.113.10:5060', proto: 'udp', brNetfilter });
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };

  it('without bridge conntrack, marks DNATed connections on the bridge after dstnat, and the bridge accepts require the mark', () => {
    const inet = table(base.ruleset, 'inet');
    const mark = inet.chains.find((c) => c.name === 'hairpin_mark')!;
    expect(mark.base).toEqual({ type: 'filter', hook: 'prerouting', prio: -90, policy: 'accept' });
    expect(rules(inet, 'hairpin_mark')).toEqual(['ct status dnat iifname "br-dmz" meta mark set meta mark | 0x00001000']);
    expect(rules(table(base.ruleset, 'bridge'), 'dmz_to_dmz').slice(0, 2)).toEqual([
      'meta mark & 0x00001000 == 0x00001000 ip daddr . meta l4proto . th dport @dmz_to_dmz_dnat counter accept',
      'meta mark & 0x00001000 == 0x00001000 ip saddr . meta l4proto . th sport @dmz_to_dmz_dnat counter accept',
    ]);
    expect(hookProblems(base.ruleset, BASELINE_FEATURES)).toEqual([]);
  });

  it('with bridge conntrack, asks ct status dnat in the bridge and sets no mark', () => {
    expect(table(withConntrack.ruleset, 'inet').chains.some((c) => c.name === 'hairpin_mark')).toBe(false);
    expect(rules(table(withConntrack.ruleset, 'bridge'), 'dmz_to_dmz')).toContain('ct status dnat ip daddr . meta l4proto . th dport @dmz_to_dmz_dnat counter accept');
    expect(printRuleset(withConntrack.ruleset)).not.toContain('meta mark');
  });

  it('takes the bit from nat.hairpin_mark and keeps the other bits of the mark', () => {
    const other = compileWith(`${HAIRPIN_POLICY}nat:\n  hairpin_mark: 0x40000000\n`);
    expect(rules(table(other.ruleset, 'inet'), 'hairpin_mark')).toEqual(['ct status dnat iifname "br-dmz" meta mark set meta mark | 0x40000000']);
    // A packet that already carries Kubernetes' masquerade bit keeps it.
    const { oifname: _, ...arriving } = { ...frame({ iifname: 'br-dmz' }), ct: { state: 'new' as const, status: ['dnat' as const] }, mark: 0x4000 };
    const pre = evaluatePrerouting(other.ruleset, arriving);
    expect(pre.steps.find((s) => s.chain === 'hairpin_mark')?.effects).toEqual(['meta mark set meta mark | 0x40000000']);
    expect(pre.packet?.mark).toBe(0x40004000);
    // The forward hook gets the packet as prerouting left it.
    expect(evaluate(other.ruleset, 'forward', { ...arriving, oifname: 'br-dmz' }).packet?.mark).toBe(0x40004000);
  });

  it('drops the direct path at the private address (no mark): br_netfilter off or on, IPv4 and IPv6', () => {
    for (const brNetfilter of [false, true]) {
      for (const p of [frame({}), frame({ proto: 'tcp', dport: 5061 }), frame({ family: 6, saddr: 'fd00:10::11', daddr: 'fd00:10::10' })]) {
        const e = evaluateBridge(base.ruleset, 'br-dmz', p, { brNetfilter });
        expect(e.verdict, `${p.proto} ${p.daddr} br_netfilter ${brNetfilter}`).toBe('drop');
        expect(e.steps.some((s) => s.origin?.id === 'forwards:bridge-hairpin' && s.outcome !== 'no match')).toBe(false);
      }
    }
  });

  it('drops what the target sends from its forwarded port to a neighbour when it is not a reply of a DNATed connection', () => {
    for (const brNetfilter of [false, true]) {
      const e = evaluateBridge(base.ruleset, 'br-dmz', frame({ iifname: 'gw-sip', oifname: 'gw-web', saddr: '10.0.10.10', daddr: '10.0.10.11', sport: 5060, dport: 40000 }), { brNetfilter });
      expect(e.verdict).toBe('drop');
    }
    // The reply of a hairpin connection, with br_netfilter: marked in inet prerouting, accepted by its source.
    const reply = evaluateBridge(base.ruleset, 'br-dmz', frame({ iifname: 'gw-sip', oifname: 'gw-web', saddr: '10.0.10.10', daddr: '10.0.10.11', sport: 5060, dport: 40000, ct: { state: 'established', status: ['dnat'] } }), { brNetfilter: true });
    expect(reply.verdict).toBe('accept');
    expect(reply.steps.filter((s) => s.outcome === 'verdict').map((s) => `${s.family} ${s.chain} ${s.rule}`)).toEqual(['bridge dmz_to_dmz 1', 'inet forward 0']);
  });

  it('explains the hairpin: re-bridged and marked with br_netfilter, routed (and masqueraded) without', () => {
    const on = hairpin(true);
    expect(on.evaluation.verdict).toBe('accept');
    expect(on.bridge).toBe('br-dmz');
    expect(on.packet.daddr).toBe('203.0.113.10');
    expect(on.evaluation.steps.map((s) => `${s.family} ${s.chain} ${s.outcome}`)).toContain('inet hairpin_mark matched');
    expect(on.evaluation.steps.find((s) => s.family === 'bridge' && s.outcome === 'verdict')?.origin?.id).toBe('forwards:bridge-hairpin');
    expect(on.story.join('\n')).toMatch(/bridged straight from port gw-web to port gw-sip/);
    const off = hairpin(false);
    expect(off.evaluation.verdict).toBe('accept');
    expect(off.bridge).toBeUndefined();
    expect(off.evaluation.steps.some((s) => s.family === 'bridge')).toBe(false);
    // The old stateless shape would accept the direct path, and explain would say so: the rules decide, not explain.
    const stateless = structuredClone(base.ruleset);
    for (const r of table(stateless, 'bridge').chains.find((c) => c.name === 'dmz_to_dmz')!.rules) r.stmts = r.stmts.filter((s) => !('match' in s && typeof s.match.left === 'object' && s.match.left !== null && '&' in s.match.left));
    expect(evaluateBridge(stateless, 'br-dmz', frame({}), {}).verdict).toBe('accept');
  });
});
