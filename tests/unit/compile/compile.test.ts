import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hookProblems } from '../../../src/compile/hooks.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { type Packet, evaluate, evaluateNat } from '../../../src/explain/evaluate.js';
import type { Ruleset } from '../../../src/nft/ruleset.js';
import { toNftJson } from '../../../src/nft/json.js';
import { chain, chainText, compileYaml, ruleCount } from '../../support/compile.js';
import { policyYaml, scaledPolicy } from '../../support/gen-policy.js';

const BASE = `
version: 1
host:
  interfaces:
    eth0: { zone: net, addresses: [203.0.113.10/24, 2001:db8::10/64] }
zones:
  net: {}
  lan: { networks: [192.168.1.0/24, fd00:1::/64] }
  dmz: { networks: [10.0.10.0/24, fd00:10::/64] }
bridges:
  br-lan: { zone: lan, addresses: [192.168.1.1/24] }
  br-dmz: { zone: dmz, addresses: [10.0.10.1/24] }
`;

function guests(n: number, zone = 'dmz'): string {
  const lines = ['guests:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  g${i}:`, `    platform: lxc`, `    zone: ${zone}`, `    interfaces:`);
    const mode = i % 2 === 0 ? `mode: bridged, bridge: br-${zone}` : `mode: routed, name: r${i}`;
    lines.push(`      - { ${mode}, addresses: [10.0.10.${i + 2}] }`);
  }
  return lines.join('\n');
}

describe('the ruleset skeleton', () => {
  const { ruleset } = compileYaml(`${BASE}
policies:
  - { from: lan, to: all, action: accept }
`);

  it('is the inet, bridge and arp tables called guestwall, all of them always (empty when not needed)', () => {
    expect(ruleset.tables.map((t) => `${t.family} ${t.name}`)).toEqual(['inet guestwall', 'bridge guestwall', 'arp guestwall']);
    expect(ruleset.tables.slice(1).map((t) => t.chains.length + t.sets.length)).toEqual([0, 0]);
  });

  it('passes established and related and drops invalid (counted) at the first rule, in every filter base chain', () => {
    for (const name of ['input', 'forward', 'output']) {
      const rules = chainText(ruleset, name);
      expect(rules[0]).toBe('ct state vmap @ct_state');
      expect(rules.join('\n')).not.toMatch(/ct state (established|invalid)/);
      expect(chain(ruleset, name).base).toMatchObject({ type: 'filter', hook: name, policy: 'drop' });
    }
    const map = ruleset.tables[0]!.sets.find((s) => s.name === 'ct_state');
    expect(map?.kind === 'map' && map.elements).toEqual([
      ['established', { accept: null }],
      ['related', { accept: null }],
      ['invalid', { jump: { target: 'ct_invalid' } }],
    ]);
    expect(chainText(ruleset, 'ct_invalid')).toEqual(['counter drop']);
  });

  it('keeps IPv6 neighbour discovery working whatever the zones say', () => {
    expect(chainText(ruleset, 'input').join('\n')).toMatch(/icmpv6 type \{[^}]*nd-neighbor-solicit[^}]*nd-neighbor-advert[^}]*\} accept/);
    expect(chainText(ruleset, 'output').join('\n')).toMatch(/icmpv6 type \{[^}]*nd-neighbor-solicit[^}]*\} accept/);
  });

  it('dispatches by verdict maps keyed on the interface, not by rule lists', () => {
    expect(chainText(ruleset, 'forward')).toContain('iifname vmap @zone_src');
    expect(chainText(ruleset, 'input')).toContain('iifname vmap @zone_in');
    expect(chainText(ruleset, 'from_lan')).toContain('oifname vmap @lan_dst');
    const zoneSrc = ruleset.tables[0]!.sets.find((s) => s.name === 'zone_src');
    expect(zoneSrc?.kind === 'map' && zoneSrc.elements).toEqual([
      ['eth0', { goto: { target: 'from_net' } }],
      ['br-lan', { goto: { target: 'from_lan' } }],
      ['br-dmz', { goto: { target: 'from_dmz' } }],
    ]);
  });

  it('names chains after the zones: lan_to_dmz, dmz_to_host, host_to_net', () => {
    const names = ruleset.tables[0]!.chains.map((c) => c.name);
    for (const n of ['lan_to_dmz', 'dmz_to_host', 'host_to_net', 'net_to_lan', 'lan_to_lan']) expect(names).toContain(n);
    expect(names).not.toContain('host_to_host');
  });

  it('drops and logs (rate limited) what no policy names, but lets the host talk out', () => {
    expect(chainText(ruleset, 'net_to_lan')).toEqual(['limit rate 10/minute burst 5 packets log prefix "gw net->lan drop " level info', 'counter drop']);
    expect(chainText(ruleset, 'host_to_net')).toEqual(['counter accept']);
    expect(chainText(ruleset, 'lan_to_dmz')).toEqual(['counter accept']);
  });
});

describe('cost of classifying a packet does not grow with guests', () => {
  const policy = (n: number) => `${BASE}
${guests(n)}
policies:
  - { from: lan, to: all, action: accept }
  - { from: all, to: all, action: drop }
rules:
  - { from: net, to: g0, service: https, action: accept }
`;
  it('10 and 240 guests compile to the same number of rules; guests become map and set elements', () => {
    const small = compileYaml(policy(10)).ruleset;
    const large = compileYaml(policy(240)).ruleset;
    expect(ruleCount(large)).toBe(ruleCount(small));
    const elems = (r: Ruleset) => r.tables[0]!.sets.reduce((n, s) => n + s.elements.length, 0);
    expect(elems(large)).toBeGreaterThan(elems(small) * 10);
  });

  it('guests with MACs and IPv6 addresses (bridged and routed) add no rules: the ND target check is one rule per table', () => {
    const compiled = (n: number) => compilePolicyText('scaled.yaml', policyYaml(scaledPolicy(n))).compiled!.ruleset;
    const small = compiled(10);
    const large = compiled(500);
    expect(ruleCount(large)).toBe(ruleCount(small));
    const nd = large.tables.flatMap((t) => t.chains.flatMap((c) => c.rules)).filter((r) => r.origin.id.endsWith(':spoof-nd'));
    // The bridge table checks bridged ports, the inet table routed ones.
    expect(nd).toHaveLength(2);
  });
});

describe("routed guests' source check", () => {
  const routed = (hvm: boolean) => `${BASE}
guests:
  pv: { platform: xen, zone: dmz, xen: { type: pvh }, interfaces: [{ mode: routed, name: xen-pv, addresses: [10.0.10.20, fd00:10::20] }] }
  win: { platform: xen, zone: dmz, xen: { type: ${hvm ? 'hvm' : 'pvh'} }, interfaces: [{ mode: routed, name: xen-win, addresses: [10.0.10.21, fd00:10::21] }] }
  ct: { platform: lxc, zone: dmz, interfaces: [{ mode: routed, name: ct-r, addresses: [10.0.10.22] }] }
policies:
  - { from: all, to: all, action: drop }
`;

  it("takes a source routed to either of a Xen HVM guest's two ports (PV vif, -emu tap) on both, through one chain of the guest's", () => {
    const { ruleset } = compileYaml(routed(true));
    const map = ruleset.tables[0]!.sets.find((s) => s.name === 'hvm_ports');
    expect(map?.kind === 'map' && map.elements).toEqual([['xen-win', { goto: { target: 'fib_xen-win' } }], ['xen-win-emu', { goto: { target: 'fib_xen-win' } }]]);
    expect(chainText(ruleset, 'fib_xen-win')).toEqual(['fib saddr oifname "xen-win" return', 'fib saddr oifname "xen-win-emu" return', 'counter drop']);
    expect(chainText(ruleset, 'antispoof').slice(-2)).toEqual(['iifname vmap @hvm_ports', 'fib saddr . iif oif missing counter drop']);
  });

  it('is the plain fib check for every other routed port, and the ruleset has no HVM parts without an HVM guest', () => {
    const withHvm = compileYaml(routed(true)).ruleset;
    const without = compileYaml(routed(false)).ruleset;
    expect(without.tables[0]!.sets.map((s) => s.name)).not.toContain('hvm_ports');
    expect(without.tables[0]!.chains.map((c) => c.name).filter((n) => n.startsWith('fib_'))).toEqual([]);
    // The same antispoof chain but for the one lookup that sends HVM ports to their own chain (and
    // the -emu tap's pairs in the ND target check's set).
    const shape = (rs: typeof without) => chainText(rs, 'antispoof').filter((r) => r !== 'iifname vmap @hvm_ports').map((r) => r.replace(/ != \{ .* \} /, ' != { pairs } '));
    expect(shape(withHvm)).toEqual(shape(without));
  });
});

describe('policies and rules', () => {
  it('the first policy that names a pair decides it', () => {
    const { ruleset, diagnostics } = compileYaml(`${BASE}
policies:
  - { from: lan, to: dmz, action: drop }
  - { from: lan, to: all, action: accept }
  - { from: lan, to: dmz, action: accept }
`);
    expect(chainText(ruleset, 'lan_to_dmz')).toEqual(['counter drop']);
    expect(chainText(ruleset, 'lan_to_net')).toEqual(['counter accept']);
    const unused = diagnostics.find((d) => d.kind === 'shadowed-rule');
    expect(unused?.message).toContain('policy 3 never applies');
    expect(unused?.line).toBe(17);
  });

  it("keeps a policy's own log prefix, as a rule's is; log: true names the zone pair", () => {
    const { ruleset } = compileYaml(`${BASE}
policies:
  - { from: dmz, to: lan, action: drop, log: "dmz-to-lan" }
  - { from: lan, to: dmz, action: drop, log: true }
`);
    expect(chainText(ruleset, 'dmz_to_lan')).toEqual(['limit rate 10/minute burst 5 packets log prefix "gw dmz-to-lan " level info', 'counter drop']);
    expect(chainText(ruleset, 'lan_to_dmz')).toEqual(['limit rate 10/minute burst 5 packets log prefix "gw lan->dmz drop " level info', 'counter drop']);
  });

  it('reject answers with icmpx admin-prohibited', () => {
    const { ruleset } = compileYaml(`${BASE}
policies:
  - { from: dmz, to: lan, action: reject }
`);
    expect(chainText(ruleset, 'dmz_to_lan')).toEqual(['counter reject with icmpx admin-prohibited']);
  });

  it('splits guest endpoints into IPv4 and IPv6 rules and keeps services to their protocols', () => {
    const { ruleset } = compileYaml(`${BASE}
guests:
  web:
    platform: kvm
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.5, fd00:10::5] }
rules:
  - { from: net, to: web, service: [https, ping], action: accept, log: true, limit: 5/second }
`);
    expect(chainText(ruleset, 'net_to_dmz').slice(0, 6)).toEqual([
      'ip daddr 10.0.10.5 tcp dport 443 limit rate 5/second log prefix "gw rule 1 " level info counter accept',
      'ip daddr 10.0.10.5 udp dport 443 limit rate 5/second log prefix "gw rule 1 " level info counter accept',
      'ip daddr 10.0.10.5 icmp type echo-request limit rate 5/second log prefix "gw rule 1 " level info counter accept',
      'ip6 daddr fd00:10::5 tcp dport 443 limit rate 5/second log prefix "gw rule 1 " level info counter accept',
      'ip6 daddr fd00:10::5 udp dport 443 limit rate 5/second log prefix "gw rule 1 " level info counter accept',
      'ip6 daddr fd00:10::5 icmpv6 type echo-request limit rate 5/second log prefix "gw rule 1 " level info counter accept',
    ]);
  });

  it('tags every rule with its YAML origin', () => {
    const { ruleset } = compileYaml(`${BASE}
rules:
  - { from: lan, to: host, service: ssh, action: accept }
`);
    const rule = chain(ruleset, 'lan_to_host').rules[0]!;
    expect(rule.origin).toMatchObject({ id: 'rules[0]', file: 'test.yaml', line: 15, col: 5 });
    for (const c of ruleset.tables[0]!.chains) for (const r of c.rules) expect(r.origin.id).toMatch(/^(builtin:[a-z0-9-]+|[a-z.]+\[\d+\]|[a-z][\w.[\]-]*:[a-z0-9-]+)$/);
  });

  it("places a rule guestwall adds for a whole section (guests:, zones:, bridges:, forwards:, nat:) on the section's key, not on its first entry", () => {
    const file = 'policies/homelab-dmz.yaml';
    const text = readFileSync(file, 'utf8');
    const { ruleset } = compilePolicyText(file, text).compiled!;
    const keyLine = (section: string) => text.split('\n').findIndex((l) => l.startsWith(`${section}:`)) + 1;
    const seen = new Set<string>();
    for (const t of ruleset.tables) {
      for (const c of t.chains) {
        for (const r of c.rules) {
          const section = /^(guests|zones|bridges|forwards|nat):[a-z0-9-]+$/.exec(r.origin.id)?.[1];
          if (section === undefined) continue;
          seen.add(section);
          expect({ id: r.origin.id, line: r.origin.line, col: r.origin.col }).toEqual({ id: r.origin.id, line: keyLine(section), col: 1 });
        }
      }
    }
    expect([...seen].sort()).toEqual(['bridges', 'forwards', 'guests', 'nat', 'zones']);
  });

  it('names a YAML place for every rule but the policy-independent ones (conntrack state, loopback, ND): at most a quarter of the homelab example', () => {
    const r = compilePolicyText('policies/homelab-dmz.yaml', readFileSync('policies/homelab-dmz.yaml', 'utf8'));
    const rules = r.compiled!.ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.map((x) => ({ chain: c.name, origin: x.origin }))));
    const builtin = rules.filter((x) => x.origin.line <= 0);
    expect(builtin.length * 4).toBeLessThanOrEqual(rules.length);
    for (const b of builtin) expect(b.origin.id).toMatch(/^builtin:(bridge-)?(ct-|loopback-|icmpv6-nd|arp|dhcp|port-)/);
  });

  it('warns about a rule an earlier rule makes unreachable', () => {
    const { diagnostics } = compileYaml(`${BASE}
rules:
  - { from: lan, to: dmz, proto: tcp, action: drop }
  - { from: lan, to: dmz, service: ssh, action: accept }
`);
    const shadow = diagnostics.find((d) => d.kind === 'shadowed-rule');
    expect(shadow).toMatchObject({ line: 16, severity: 'warning', code: 'GW100' });
    expect(shadow?.related?.[0]?.line).toBe(15);
  });
});

describe('port forwards and NAT', () => {
  const { ruleset, diagnostics } = compileYaml(`${BASE}
guests:
  pbx:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.10, fd00:10::10] }
forwards:
  - { from: net, to: pbx, service: [sip, rtp] }
  - { from: net, to: pbx, proto: tcp, ports: 8443, to_port: 443 }
nat:
  masquerade:
    - { from: [lan, dmz], to: net }
`);

  const set = (name: string) => ruleset.tables[0]!.sets.find((s) => s.name === name);

  it('DNATs the public address to the guest through maps keyed on address, protocol and port, keeping port ranges', () => {
    expect(chainText(ruleset, 'dstnat')).toEqual([
      'meta l4proto . th dport != @dnat_ports accept',
      'meta l4proto { tcp, udp } dnat ip to ip daddr . meta l4proto . th dport map @dnat_hairpin : ip daddr . meta l4proto . th dport map @dnat_hairpin_port',
      'dnat ip to ip daddr . meta l4proto . th dport map @dnat_hairpin',
    ]);
    // The gate holds every published port, merged: a connection to any other skips the lookups.
    const gate = set('dnat_ports');
    expect(gate?.kind === 'set' && gate.elements).toEqual([
      { concat: ['tcp', { range: [5060, 5061] }] },
      { concat: ['tcp', 8443] },
      { concat: ['udp', 5060] },
      { concat: ['udp', { range: [10000, 20000] }] },
    ]);
    const m = set('dnat_hairpin');
    expect(m?.kind === 'datamap' && m.elements).toEqual([
      [{ concat: ['203.0.113.10', 'tcp', { range: [5060, 5061] }] }, '10.0.10.10'],
      [{ concat: ['203.0.113.10', 'udp', 5060] }, '10.0.10.10'],
      [{ concat: ['203.0.113.10', 'udp', { range: [10000, 20000] }] }, '10.0.10.10'],
      [{ concat: ['203.0.113.10', 'tcp', 8443] }, '10.0.10.10'],
    ]);
    // Only the forward with to_port has a port element: the first rule misses every other key.
    const port = set('dnat_hairpin_port');
    expect(port?.kind === 'datamap' && port.elements).toEqual([[{ concat: ['203.0.113.10', 'tcp', 8443] }, 443]]);
    expect(port?.kind === 'datamap' && port.origins?.map((o) => o.id)).toEqual(['forwards[1]']);
    expect(chain(ruleset, 'dstnat').base).toMatchObject({ type: 'nat', hook: 'prerouting', prio: -100 });
    // nft's JSON spells both lookups as "<key> map @name" (loaded by tests/e2e/nft-load.test.ts).
    const json = JSON.stringify(toNftJson(ruleset));
    expect(json).toContain('"data":"@dnat_hairpin"}},"port":{"map":{"key":{"concat":[{"payload":{"protocol":"ip","field":"daddr"}},{"meta":{"key":"l4proto"}},{"payload":{"protocol":"th","field":"dport"}}]},"data":"@dnat_hairpin_port"}}');
  });

  it('opens only DNATed connections to the guest, from the internet and (hairpin) from every zone, by one lookup of the DNATed tuple', () => {
    expect(chainText(ruleset, 'net_to_dmz').slice(0, 2)).toEqual([
      'ct status dnat ip daddr . meta l4proto . th dport @net_to_dmz_dnat counter accept',
      'ip6 daddr . meta l4proto . th dport @net_to_dmz_ip6 counter accept',
    ]);
    const fromNet = set('net_to_dmz_dnat');
    expect(fromNet?.kind === 'set' && fromNet.elements).toEqual([
      { concat: ['10.0.10.10', 'tcp', 443] },
      { concat: ['10.0.10.10', 'tcp', { range: [5060, 5061] }] },
      { concat: ['10.0.10.10', 'udp', 5060] },
      { concat: ['10.0.10.10', 'udp', { range: [10000, 20000] }] },
    ]);
    expect(chainText(ruleset, 'lan_to_dmz')[0]).toBe('ct status dnat ip daddr . meta l4proto . th dport @lan_to_dmz_dnat counter accept');
  });

  it('opens the same ports on the guest IPv6 address without NAT, and nothing else on v6', () => {
    const v6 = set('net_to_dmz_ip6');
    expect(v6?.kind === 'set' && v6.elements).toEqual([
      { concat: ['fd00:10::10', 'tcp', { range: [5060, 5061] }] },
      { concat: ['fd00:10::10', 'tcp', 8443] },
      { concat: ['fd00:10::10', 'udp', 5060] },
      { concat: ['fd00:10::10', 'udp', { range: [10000, 20000] }] },
    ]);
    expect(chainText(ruleset, 'net_to_dmz').filter((r) => r.includes('ip6 daddr'))).toEqual(['ip6 daddr . meta l4proto . th dport @net_to_dmz_ip6 counter accept']);
    expect(set('lan_to_dmz_ip6')).toBeUndefined();
  });

  it('masquerades hairpin connections on the guest segment by one lookup, reached with the zones named to the uplink by one lookup on the output interface', () => {
    expect(chainText(ruleset, 'srcnat')).toEqual(['oifname vmap @srcnat_out']);
    const out = set('srcnat_out');
    expect(out?.kind === 'map' && out.elements).toEqual([
      ['eth0', { goto: { target: 'srcnat_out_net' } }],
      ['br-dmz', { goto: { target: 'srcnat_hairpin' } }],
    ]);
    expect(chainText(ruleset, 'srcnat_hairpin')).toEqual(['ct status dnat iifname . oifname . ip daddr . meta l4proto . th dport @hairpin counter masquerade']);
    const h = set('hairpin');
    expect(h?.kind === 'set' && h.elements).toContainEqual({ concat: ['br-dmz', 'br-dmz', '10.0.10.10', 'tcp', 443] });
    expect(chainText(ruleset, 'srcnat_out_net')).toEqual([
      'iifname "br-lan" meta nfproto ipv4 counter masquerade',
      'iifname "br-dmz" meta nfproto ipv4 counter masquerade',
    ]);
  });

  it('puts the hairpin masquerade first in the chain of a NATed zone that holds a forward target', () => {
    const r = compileYaml(`${BASE}
guests:
  pbx:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }
forwards:
  - { from: net, to: pbx, service: sip }
nat:
  masquerade:
    - { from: lan, to: dmz }
`).ruleset;
    expect(chainText(r, 'srcnat_out_dmz')).toEqual([
      'ct status dnat iifname . oifname . ip daddr . meta l4proto . th dport @hairpin counter masquerade',
      'iifname "br-lan" meta nfproto ipv4 counter masquerade',
    ]);
    expect(r.tables[0]!.chains.map((c) => c.name)).not.toContain('srcnat_hairpin');
    const hairpin: Packet = { family: 4, iifname: 'br-dmz', oifname: 'br-dmz', saddr: '10.0.10.20', daddr: '10.0.10.10', proto: 'udp', sport: 5060, dport: 5060, ct: { state: 'new', status: ['dnat'] } };
    expect(evaluateNat(r, 'postrouting', hairpin).translation).toMatchObject({ kind: 'masquerade', origin: { id: 'forwards[0]' } });
    expect(evaluateNat(r, 'postrouting', { ...hairpin, iifname: 'br-lan', saddr: '192.168.1.20' }).translation).toMatchObject({ kind: 'masquerade', origin: { id: 'nat.masquerade[0]' } });
  });

  it('walks a connection that nothing translates past the NAT rules in one rule per lookup or group, and names the forward that translates one', () => {
    const p = { family: 4 as const, iifname: 'eth0', saddr: '198.51.100.7', daddr: '10.0.10.10', proto: 'udp' as const, sport: 4000, dport: 9000, ct: { state: 'new' as const } };
    const pre = evaluateNat(ruleset, 'prerouting', p);
    expect(pre.translation).toBeUndefined();
    expect(pre.steps.filter((x) => x.rule !== undefined).map((x) => [x.text, x.outcome])).toEqual([['meta l4proto . th dport != @dnat_ports accept', 'verdict']]);
    const post = evaluateNat(ruleset, 'postrouting', { ...p, oifname: 'br-dmz' });
    expect(post.steps.filter((x) => x.rule !== undefined).map((x) => x.text)).toEqual([
      'oifname vmap @srcnat_out',
      'ct status dnat iifname . oifname . ip daddr . meta l4proto . th dport @hairpin counter masquerade',
    ]);
    // Leaving where nothing is NATed: the one lookup.
    expect(evaluateNat(ruleset, 'postrouting', { ...p, oifname: 'br-lan' }).steps.filter((x) => x.rule !== undefined).map((x) => x.outcome)).toEqual(['map miss']);
    const fwd = evaluateNat(ruleset, 'prerouting', { ...p, daddr: '203.0.113.10', proto: 'tcp', dport: 8443 });
    expect(fwd.translation).toMatchObject({ kind: 'dnat', addr: '10.0.10.10', port: 443, origin: { id: 'forwards[1]' } });
    const sip = evaluateNat(ruleset, 'prerouting', { ...p, daddr: '203.0.113.10', dport: 12000 });
    expect(sip.translation).toMatchObject({ kind: 'dnat', addr: '10.0.10.10', port: 12000, origin: { id: 'forwards[0]' } });
    // The DNATed connection is accepted by its forward, not by a map.
    const acc = evaluate(ruleset, 'forward', { ...sip.packet, oifname: 'br-dmz' });
    expect(acc).toMatchObject({ verdict: 'accept', decidedBy: { id: 'forwards[0]' } });
  });

  it('runs no conntrack helper unless the policy asks for one', () => {
    expect(ruleset.tables[0]!.helpers).toEqual([]);
    expect(JSON.stringify(ruleset)).not.toContain('ct helper');
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('attaches the SIP helper where asked', () => {
    const r = compileYaml(`${BASE}
guests:
  pbx:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }
helpers:
  - { helper: sip, from: net, to: pbx }
`).ruleset;
    expect(r.tables[0]!.helpers.map((h) => `${h.name}:${h.type}/${h.protocol}`)).toEqual(['sip_udp:sip/udp', 'sip_tcp:sip/tcp']);
    // In dstnat, behind its port gate, for connections from net's interfaces: a nat chain sees
    // every connection's first packet, forward and input alike, before conntrack confirms it. No
    // filter chain on prerouting, and nothing in forward or input for them.
    expect(chainText(r, 'dstnat')).toEqual([
      'meta l4proto . th dport != @dnat_ports accept',
      'iifname "eth0" ct state new ip daddr 10.0.10.10 udp dport 5060 ct helper set "sip_udp"',
      'iifname "eth0" ct state new ip daddr 10.0.10.10 tcp dport 5060 ct helper set "sip_tcp"',
    ]);
    expect(chainText(r, 'from_net').join('\n')).not.toContain('ct helper');
    expect(r.tables[0]!.chains.filter((c) => c.base?.hook === 'prerouting' && c.base.type === 'filter')).toEqual([]);
    // A connection from net to the PBX gets the helper with its first packet.
    const invite: Packet = { family: 4, iifname: 'eth0', saddr: '198.51.100.7', daddr: '10.0.10.10', proto: 'udp', sport: 5060, dport: 5060, ct: { state: 'new' } };
    const effects = (p: Packet) => evaluateNat(r, 'prerouting', p).steps.flatMap((s) => s.effects ?? []);
    expect(effects(invite)).toEqual(['ct helper set "sip_udp"']);
    // Not for a related connection (conntrack already accepted it), nor from another zone.
    expect(effects({ ...invite, ct: { state: 'related' } })).toEqual([]);
    expect(effects({ ...invite, iifname: 'br-lan', saddr: '192.168.1.7' })).toEqual([]);
  });

  it('moves a helper before the DNAT only where the forwards cannot change what it matches', () => {
    const place = (forward: string, helper: string) => {
      const r = compileYaml(`${BASE}
guests:
  pbx:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }
forwards:
  - ${forward}
helpers:
  - ${helper}
`).ruleset;
      const inDstnat = chainText(r, 'dstnat').some((t) => t.includes('ct helper'));
      const inForward = chainText(r, 'from_net').some((t) => t.includes('ct helper'));
      expect(inDstnat).not.toBe(inForward);
      return inDstnat ? 'dstnat' : 'from_net';
    };
    // The same port before and after: a helper on it matches either way.
    expect(place('{ from: net, to: pbx, proto: tcp, ports: 21 }', '{ helper: ftp, from: net, to: dmz }')).toBe('dstnat');
    // 2121 becomes 21, and both are the helper's ports.
    expect(place('{ from: net, to: pbx, proto: tcp, ports: 2121, to_port: 21 }', '{ helper: ftp, from: net, to: dmz, ports: [21, 2121] }')).toBe('dstnat');
    // 2121 becomes 21, and only 21 is.
    expect(place('{ from: net, to: pbx, proto: tcp, ports: 2121, to_port: 21 }', '{ helper: ftp, from: net, to: dmz }')).toBe('from_net');
    // 21 becomes 2121, a helper port becomes another.
    expect(place('{ from: net, to: pbx, proto: tcp, ports: 21, to_port: 2121 }', '{ helper: ftp, from: net, to: dmz }')).toBe('from_net');
    // A helper to an address: the DNAT changes the address on the helper's port.
    expect(place('{ from: net, to: pbx, proto: tcp, ports: 21 }', '{ helper: ftp, from: net, to: 10.0.10.10 }')).toBe('from_net');
    // ... but not on another port.
    expect(place('{ from: net, to: pbx, proto: tcp, ports: 8443, to_port: 443 }', '{ helper: ftp, from: net, to: 10.0.10.10 }')).toBe('dstnat');
  });

  it('looks a zone of many ports up in a named set for its helpers, not a copy in each rule', () => {
    const r = compileYaml(`${BASE}
${guests(20)}
helpers:
  - { helper: ftp, from: dmz, to: net }
`).ruleset;
    expect(chainText(r, 'dstnat')).toEqual(['iifname @helper_from_dmz ct state new tcp dport 21 ct helper set "ftp_tcp"']);
    const ifs = r.tables[0]!.sets.find((x) => x.name === 'helper_from_dmz')!;
    expect(ifs.elements).toHaveLength(11); // br-dmz and the 10 routed ports
    const ftp = (iifname: string) => evaluateNat(r, 'prerouting', { family: 4, iifname, saddr: '10.0.10.3', daddr: '198.51.100.7', proto: 'tcp', sport: 40000, dport: 21, ct: { state: 'new' } });
    expect(ftp('r1').steps.flatMap((x) => x.effects ?? [])).toEqual(['ct helper set "ftp_tcp"']);
    expect(ftp('eth0').steps.flatMap((x) => x.effects ?? [])).toEqual([]);
  });

  it('keeps a helper after DNAT (forward and input chains) when a forward translates the ports it matches', () => {
    const r = compileYaml(`${BASE}
guests:
  pbx:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }
forwards:
  - { from: net, to: pbx, proto: tcp, ports: 2121, to_port: 21 }
helpers:
  - { helper: ftp, from: net, to: dmz }
`).ruleset;
    // Before the DNAT the connection is to port 2121, after it to 21: only a chain after DNAT sees what the helper asks for.
    for (const c of ['from_net', 'net_to_host']) expect(chainText(r, c)[0]).toBe('tcp dport 21 ct helper set "ftp_tcp"');
    expect(chainText(r, 'dstnat').join('\n')).not.toContain('ct helper');
    const pre = evaluateNat(r, 'prerouting', { family: 4, iifname: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.10', proto: 'tcp', sport: 40000, dport: 2121, ct: { state: 'new' } });
    expect(pre.translation).toMatchObject({ addr: '10.0.10.10', port: 21 });
    expect(evaluate(r, 'forward', { ...pre.packet, oifname: 'br-dmz' }).steps.flatMap((s) => s.effects ?? [])).toContain('ct helper set "ftp_tcp"');
  });

  it('attaches a helper to a whole zone by one lookup of protocol and port, not a rule per protocol', () => {
    const r = compileYaml(`${BASE}
helpers:
  - { helper: sip, from: net, to: dmz }
  - { helper: ftp, from: net, to: dmz, ports: [21, 2121] }
`).ruleset;
    expect(chainText(r, 'dstnat').slice(1, 3)).toEqual([
      'iifname "eth0" ct state new ct helper set meta l4proto . th dport map { udp . 5060 : "sip_udp", tcp . 5060 : "sip_tcp" }',
      'iifname "eth0" ct state new tcp dport { 21, 2121 } ct helper set "ftp_tcp"',
    ]);
    // The gate lets the helpers' ports through to them (and the forwards' to their lookups).
    const gate = r.tables[0]!.sets.find((x) => x.name === 'dnat_ports')!;
    expect(gate.elements).toEqual([{ concat: ['tcp', 21] }, { concat: ['tcp', 2121] }, { concat: ['tcp', 5060] }, { concat: ['udp', 5060] }]);
    const at = (proto: 'udp' | 'tcp', dport: number) => evaluateNat(r, 'prerouting', { family: 4, iifname: 'eth0', saddr: '198.51.100.7', daddr: '10.0.10.10', proto, sport: 5060, dport, ct: { state: 'new' } });
    expect(at('udp', 5060).steps.flatMap((s) => s.effects ?? []).filter((e) => e.startsWith('ct helper'))).toEqual(['ct helper set "sip_udp"']);
    expect(at('tcp', 5060).steps.flatMap((s) => s.effects ?? [])).toContain('ct helper set "sip_tcp"');
    expect(at('tcp', 2121).steps.flatMap((s) => s.effects ?? [])).toContain('ct helper set "ftp_tcp"');
    // Any other port stops at the gate: one rule, no helper.
    const other = at('udp', 9000);
    expect(other.steps.filter((s) => s.rule !== undefined).map((s) => [s.text, s.outcome])).toEqual([['meta l4proto . th dport != @dnat_ports accept', 'verdict']]);
    // nft 1.0.6 reads the anonymous map in JSON as "<key> map { set }" with the helpers' names as data (loaded in tests/e2e/helpers.test.ts).
    expect(JSON.stringify(toNftJson(r))).toContain('{"ct helper":{"map":{"key":{"concat":[{"meta":{"key":"l4proto"}},{"payload":{"protocol":"th","field":"dport"}}]},"data":{"set":[[{"concat":["udp",5060]},"sip_udp"],[{"concat":["tcp",5060]},"sip_tcp"]]}}}}');
  });

  it('warns when hairpin cannot work because the public address is unknown', () => {
    const { diagnostics: ds, ruleset: r } = compileYaml(`${BASE.replace('addresses: [203.0.113.10/24, 2001:db8::10/64]', 'addresses: []')}
guests:
  pbx:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }
forwards:
  - { from: net, to: pbx, service: sip }
`);
    expect(ds.map((d) => d.kind)).toContain('hairpin-needs-address');
    expect(chainText(r, 'dstnat')).toEqual(['meta nfproto ipv4 fib daddr type local dnat ip to iifname . meta l4proto . th dport map @dnat_local']);
  });
});

describe('port forwards as map elements', () => {
  function forwardsYaml(n: number, forwarded = n): string {
    const lines = ['guests:'];
    for (let i = 0; i < n; i++) lines.push(`  g${i}: { platform: lxc, interfaces: [{ mode: bridged, bridge: br-dmz, addresses: [10.1.${i >> 7}.${(i & 127) + 2}] }] }`);
    lines.push('forwards:');
    for (let i = 0; i < forwarded; i++) lines.push(`  - { from: net, to: g${i}, proto: ${i % 2 ? 'udp' : 'tcp'}, ports: ${20000 + i}${i % 3 === 0 ? `, to_port: ${i + 1}` : ''} }`);
    return lines.join('\n');
  }
  const walked = (r: Ruleset, i: number) => {
    const p: Packet = { family: 4, iifname: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.10', proto: i % 2 ? 'udp' : 'tcp', sport: 40000, dport: 20000 + i, ct: { state: 'new' } };
    const pre = evaluateNat(r, 'prerouting', p);
    expect(pre.translation?.origin.id).toBe(`forwards[${i}]`);
    const fwd = evaluate(r, 'forward', { ...pre.packet, oifname: 'br-dmz' });
    expect(fwd.decidedBy?.id).toBe(`forwards[${i}]`);
    return [pre.steps, fwd.steps].map((s) => s.filter((x) => x.rule !== undefined).length);
  };

  it('walks as many rules to the 1,000th forward as to the first, and the ruleset does not grow by a rule per forward', () => {
    const base = BASE.replace('dmz: { networks: [10.0.10.0/24, fd00:10::/64] }', 'dmz: { networks: [10.0.0.0/8] }');
    // The same 1,000 guests, three of them forwarded.
    const small = compileYaml(`${base}\n${forwardsYaml(1000, 3)}`);
    const big = compileYaml(`${base}\n${forwardsYaml(1000)}`);
    expect(big.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(walked(big.ruleset, 999)).toEqual(walked(big.ruleset, 0));
    expect(walked(big.ruleset, 998)).toEqual(walked(small.ruleset, 1));
    expect(ruleCount(big.ruleset)).toBe(ruleCount(small.ruleset));
  });

  it('refuses two forwards whose keys share a map (GW031), which a rule list would have decided by order', () => {
    const { diagnostics } = compileYaml(`${BASE}
guests:
  a: { platform: lxc, interfaces: [{ mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }] }
  b: { platform: lxc, interfaces: [{ mode: bridged, bridge: br-dmz, addresses: [10.0.10.11] }] }
forwards:
  - { from: net, to: a, proto: tcp, ports: 80, address: 203.0.113.10, hairpin: false }
  - { from: net, to: b, proto: tcp, ports: 80-81, hairpin: false }
`);
    const e = diagnostics.filter((d) => d.severity === 'error');
    expect(e.map((d) => [d.code, d.message])).toEqual([['GW031', "forward 2 claims TCP ports 80-81 on eth0 to 203.0.113.10, which forward 1 already forwards to a"]]);
  });

  it('runs the lookups of different kinds of forward in the order the earlier forward needs', () => {
    for (const [first, second, winner] of [['local', 'public', 'a'], ['public', 'local', 'a']] as const) {
      const f = (kind: string, to: string) => `  - { from: net, to: ${to}, proto: tcp, ports: 80${kind === 'public' ? ', address: 203.0.113.10, hairpin: false' : ''} }`;
      const { ruleset: r, diagnostics } = compileYaml(`${BASE.replace('addresses: [203.0.113.10/24, 2001:db8::10/64]', 'addresses: []')}
guests:
  a: { platform: lxc, interfaces: [{ mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }] }
  b: { platform: lxc, interfaces: [{ mode: bridged, bridge: br-dmz, addresses: [10.0.10.11] }] }
forwards:
${f(first, 'a')}
${f(second, 'b')}
`);
      expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      const p: Packet = { family: 4, iifname: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.10', proto: 'tcp', sport: 40000, dport: 80, ct: { state: 'new' } };
      const nat = evaluateNat(r, 'prerouting', p, { isLocal: (a) => a === '203.0.113.10' });
      expect(nat.translation?.addr).toBe(winner === 'a' ? '10.0.10.10' : '10.0.10.11');
    }
  });
});

describe('what nft -c cannot see', () => {
  it('finds NAT, reject and fib statements in hooks the kernel refuses at commit time', () => {
    const { ruleset } = compileYaml(`${BASE}
policies:
  - { from: lan, to: all, action: accept }
`);
    expect(hookProblems(ruleset)).toEqual([]);
    const bad: Ruleset = structuredClone(ruleset);
    const t = bad.tables[0]!;
    t.chains.find((c) => c.name === 'lan_to_net')!.rules.unshift({ stmts: [{ masquerade: null }], origin: { id: 'test', file: 't', line: 0, col: 0, what: 'injected' } });
    t.chains.find((c) => c.name === 'srcnat')!.rules.unshift({ stmts: [{ reject: null }], origin: { id: 'test', file: 't', line: 0, col: 0, what: 'injected' } });
    const problems = hookProblems(bad).map((p) => `${p.chain}: ${p.message}`);
    expect(problems).toContain('lan_to_net: snat/masquerade is only valid in nat postrouting/input chains, not filter forward');
    expect(problems).toContain('srcnat: reject is not valid in inet postrouting');
  });

  it('takes a conntrack helper in nat prerouting (before conntrack confirms) but not in nat postrouting', () => {
    const { ruleset } = compileYaml(`${BASE}
helpers:
  - { helper: ftp, from: net, to: lan }
`);
    expect(chainText(ruleset, 'dstnat')).toEqual(['iifname "eth0" ct state new tcp dport 21 ct helper set "ftp_tcp"']);
    expect(hookProblems(ruleset)).toEqual([]);
    const bad: Ruleset = structuredClone(ruleset);
    const t = bad.tables[0]!;
    t.chains.find((c) => c.name === 'srcnat')!.rules.unshift({ stmts: [{ 'ct helper': 'ftp_tcp' }], origin: { id: 'test', file: 't', line: 0, col: 0, what: 'injected' } });
    expect(hookProblems(bad).map((p) => `${p.chain}: ${p.message}`)).toEqual(['srcnat: ct helper set belongs in a filter chain or nat prerouting, not nat postrouting']);
  });
});
