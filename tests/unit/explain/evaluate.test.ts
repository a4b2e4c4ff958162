import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type Packet, evaluate, evaluateNat, evaluatePrerouting } from '../../../src/explain/evaluate.js';
import type { Chain, Origin, Ruleset, Table } from '../../../src/nft/ruleset.js';
import type { Expr, Stmt } from '../../../src/nft/types.js';
import { compileYaml } from '../../support/compile.js';

const homelab = compileYaml(readFileSync('policies/homelab-dmz.yaml', 'utf8')).ruleset;

/** A new TCP connection; override what the case is about. */
function tcp(fields: Partial<Packet> & Pick<Packet, 'saddr' | 'daddr'>): Packet {
  return { family: 4, proto: 'tcp', sport: 40000, dport: 22, ct: { state: 'new' }, ...fields };
}

const fromNet = { iifname: 'eth0', saddr: '198.51.100.7' };

describe('connection tracking comes first', () => {
  it('accepts established traffic at the first rule, whatever the zones say', () => {
    const e = evaluate(homelab, 'forward', tcp({ ...fromNet, oifname: 'br-lan', daddr: '192.168.1.20', ct: { state: 'established' } }));
    expect(e.verdict).toBe('accept');
    expect(e.decidedBy?.id).toBe('builtin:ct-state');
    expect(e.steps).toHaveLength(1);
    expect(e.steps[0]).toMatchObject({ table: 'guestwall', chain: 'forward', rule: 0, outcome: 'verdict', text: 'ct state vmap @ct_state' });
  });

  it('accepts related packets by the same lookup, and lets new ones go on', () => {
    const related = evaluate(homelab, 'forward', tcp({ ...fromNet, oifname: 'br-lan', daddr: '192.168.1.20', ct: { state: 'related' } }));
    expect(related).toMatchObject({ verdict: 'accept', decidedBy: { id: 'builtin:ct-state' } });
    const fresh = evaluate(homelab, 'forward', tcp({ ...fromNet, oifname: 'br-lan', daddr: '192.168.1.20' }));
    expect(fresh.steps[0]).toMatchObject({ chain: 'forward', rule: 0, outcome: 'map miss' });
    expect(fresh.verdict).toBe('drop');
  });

  it('drops invalid packets, counted, in ct_invalid', () => {
    const e = evaluate(homelab, 'input', tcp({ ...fromNet, daddr: '203.0.113.10', ct: { state: 'invalid' } }));
    expect(e.verdict).toBe('drop');
    expect(e.decidedBy?.id).toBe('builtin:ct-invalid');
    expect(e.steps.map((s) => [s.chain, s.outcome])).toEqual([['input', 'jump'], ['ct_invalid', 'verdict']]);
    expect(e.steps[1]!.effects).toEqual(['counter']);
  });
});

describe('SSH to the host (the lockout guard question)', () => {
  it('is accepted from the LAN by the lan -> all policy', () => {
    const e = evaluate(homelab, 'input', tcp({ iifname: 'br-lan', saddr: '192.168.1.20', daddr: '192.168.1.1' }));
    expect(e.verdict).toBe('accept');
    expect(e.decidedBy).toMatchObject({ id: 'policies[0]', line: 65 });
    // The path a user reads: dispatch by map, then the zone-pair chain.
    expect(e.steps.filter((s) => s.outcome !== 'no match' && s.outcome !== 'map miss').map((s) => `${s.chain}: ${s.text} -> ${s.outcome}`)).toEqual([
      'input: iifname vmap @zone_in -> goto',
      'lan_to_host: counter accept -> verdict',
    ]);
  });

  it('is dropped from the internet by the net -> all policy, pointing at its YAML line', () => {
    const e = evaluate(homelab, 'input', tcp({ ...fromNet, daddr: '203.0.113.10' }));
    expect(e.verdict).toBe('drop');
    expect(e.decidedBy).toMatchObject({ id: 'policies[3]', line: 68, col: expect.any(Number) });
    const last = e.steps.at(-1)!;
    expect(last).toMatchObject({ chain: 'net_to_host', text: 'counter drop', outcome: 'verdict' });
    // The logging rule before it matched and logged.
    expect(e.steps.at(-2)!.effects).toEqual(['log prefix "gw net->host drop " level info']);
  });

  it('reads any spelling of an address', () => {
    const v6 = (saddr: string) => evaluate(homelab, 'input', tcp({ family: 6, iifname: 'br-lan', saddr, daddr: 'FD00:1:0::1' }));
    expect(v6('fd00:1::20').verdict).toBe('accept');
    expect(v6('fd00:0001:0000:0000:0000:0000:0000:0020').verdict).toBe('accept');
  });
});

describe('port forwards', () => {
  const sip = (status: ('dnat' | 'snat')[] | undefined): Packet => ({
    family: 4, ...fromNet, oifname: 'br-dmz', daddr: '10.0.10.10', proto: 'udp', sport: 5060, dport: 5060,
    ct: { state: 'new', ...(status ? { status } : {}) },
  });

  it('accepts the DNATed SIP connection from the internet', () => {
    const e = evaluate(homelab, 'forward', sip(['dnat']));
    expect(e.verdict).toBe('accept');
    expect(e.decidedBy).toMatchObject({ id: 'forwards[0]', line: 90 });
    // One lookup of the DNATed tuple; the step names the forward whose element it hit.
    expect(e.steps.at(-1)!.text).toBe('ct status dnat ip daddr . meta l4proto . th dport @net_to_dmz_dnat counter accept');
    expect(e.steps.at(-1)!.element).toMatchObject({ id: 'forwards[0]' });
  });

  it('drops the same packet sent to the private address directly (no ct status dnat)', () => {
    const e = evaluate(homelab, 'forward', sip(undefined));
    expect(e.verdict).toBe('drop');
    expect(e.decidedBy).toMatchObject({ id: 'policies[3]', line: 68 });
  });

  it('translates 203.0.113.10 udp 5060 to 10.0.10.10 in prerouting, and the forward path then accepts it', () => {
    const n = evaluateNat(homelab, 'prerouting', { family: 4, ...fromNet, daddr: '203.0.113.10', proto: 'udp', sport: 5060, dport: 5060, ct: { state: 'new' } });
    expect(n.verdict).toBe('accept');
    expect(n.translation).toMatchObject({ kind: 'dnat', addr: '10.0.10.10', port: 5060, origin: { id: 'forwards[0]' } });
    expect(n.packet).toMatchObject({ daddr: '10.0.10.10', dport: 5060, ct: { state: 'new', status: ['dnat'] } });
    expect(evaluate(homelab, 'forward', { ...n.packet, oifname: 'br-dmz' }).verdict).toBe('accept');
  });

  it('leaves other packets alone: another port, and packets after the first of a connection', () => {
    const other = evaluateNat(homelab, 'prerouting', tcp({ ...fromNet, daddr: '203.0.113.10' }));
    expect(other.translation).toBeUndefined();
    expect(other.packet.daddr).toBe('203.0.113.10');
    const later = evaluateNat(homelab, 'prerouting', { family: 4, ...fromNet, daddr: '203.0.113.10', proto: 'udp', dport: 5060, ct: { state: 'established' } });
    expect(later.translation).toBeUndefined();
    expect(later.notes.join('\n')).toMatch(/first packet/);
  });

  it('translates the port too, and asks the environment which addresses are the host\'s (fib daddr type local)', () => {
    const { ruleset } = compileYaml(`
version: 1
host:
  interfaces:
    eth0: { zone: net }
zones:
  net: {}
  dmz: { networks: [10.0.10.0/24] }
bridges:
  br-dmz: { zone: dmz, addresses: [10.0.10.1/24] }
guests:
  web:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, addresses: [10.0.10.10] }
forwards:
  - { from: net, to: web, proto: tcp, ports: [8080], to_port: 80 }
`);
    const p = tcp({ ...fromNet, daddr: '192.0.2.1', dport: 8080 });
    const local = evaluateNat(ruleset, 'prerouting', p, { isLocal: (a) => a === '192.0.2.1' });
    expect(local.packet).toMatchObject({ daddr: '10.0.10.10', dport: 80 });
    expect(evaluate(ruleset, 'forward', { ...local.packet, oifname: 'br-dmz' }).verdict).toBe('accept');
    const elsewhere = evaluateNat(ruleset, 'prerouting', p);
    expect(elsewhere.translation).toBeUndefined();
    expect(elsewhere.notes.join('\n')).toMatch(/assumed 192.0.2.1 is not one of the host's addresses/);
  });

  it('masquerades the LAN towards the internet with the address the environment gives', () => {
    const n = evaluateNat(homelab, 'postrouting', tcp({ iifname: 'br-lan', oifname: 'eth0', saddr: '192.168.1.20', daddr: '198.51.100.7', dport: 443 }), {
      interfaceAddress: (ifname, family) => (ifname === 'eth0' && family === 4 ? '203.0.113.10' : undefined),
    });
    expect(n.translation).toMatchObject({ kind: 'masquerade', addr: '203.0.113.10', origin: { id: 'nat.masquerade[0]' } });
    expect(n.packet).toMatchObject({ saddr: '203.0.113.10', ct: { status: ['snat'] } });
  });
});

describe('protocol dependencies', () => {
  const { ruleset } = compileYaml(`
version: 1
host:
  interfaces:
    eth0: { zone: net, addresses: [203.0.113.10/24, 2001:db8::10/64] }
zones:
  net: {}
  lan: { networks: [192.168.1.0/24, fd00:1::/64] }
bridges:
  br-lan: { zone: lan, addresses: [192.168.1.1/24, fd00:1::1/64] }
policies:
  - { from: lan, to: all, action: accept }
  - { from: all, to: all, action: drop, log: true }
rules:
  - { description: monitoring pings, from: 198.51.100.0/24, to: host, service: ping, action: accept }
  - { from: net, to: lan, proto: icmp, action: accept }
  - { from: net, to: host, proto: udp, ports: [5353], action: reject }
`);
  const ping = (family: 4 | 6, saddr: string, daddr: string, extra: Partial<Packet> = {}): Packet => ({
    family, iifname: 'eth0', saddr, daddr, proto: family === 4 ? 'icmp' : 'icmpv6', icmpType: 'echo-request', ct: { state: 'new' }, ...extra,
  });

  it('accepts an IPv4 echo-request by a rule written with an IPv4 source only', () => {
    const e = evaluate(ruleset, 'input', ping(4, '198.51.100.7', '203.0.113.10'));
    expect(e.verdict).toBe('accept');
    expect(e.decidedBy).toMatchObject({ id: 'rules[0]', line: 15 });
  });

  it('does not let an IPv6 echo-request through that IPv4-only rule', () => {
    const e = evaluate(ruleset, 'input', ping(6, '2001:db8:99::7', '2001:db8::10'));
    expect(e.verdict).toBe('drop');
    const v4Rule = e.steps.find((s) => s.origin?.id === 'rules[0]')!;
    expect(v4Rule).toMatchObject({ outcome: 'no match', failed: 'ip saddr 198.51.100.0/24' });
  });

  it('does not match ICMPv6 against meta l4proto icmp', () => {
    expect(evaluate(ruleset, 'forward', ping(4, '198.51.100.7', '192.168.1.20', { oifname: 'br-lan' })).verdict).toBe('accept');
    expect(evaluate(ruleset, 'forward', ping(6, '2001:db8:99::7', 'fd00:1::20', { oifname: 'br-lan' })).verdict).toBe('drop');
  });

  it('does not match a UDP port rule with TCP, nor `ip saddr` with IPv6', () => {
    const udp = evaluate(ruleset, 'input', { family: 4, iifname: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.10', proto: 'udp', dport: 5353, ct: { state: 'new' } });
    expect(udp.verdict).toBe('reject');
    const viaTcp = evaluate(ruleset, 'input', tcp({ iifname: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.10', dport: 5353 }));
    expect(viaTcp.verdict).toBe('drop');
    expect(viaTcp.steps.find((s) => s.origin?.id === 'rules[2]')).toMatchObject({ outcome: 'no match', failed: 'udp dport 5353' });
  });

  it('keeps IPv6 neighbour discovery working on every interface', () => {
    const e = evaluate(ruleset, 'input', ping(6, 'fe80::1', 'ff02::1', { iifname: 'eth9', icmpType: 'nd-neighbor-solicit' }));
    expect(e).toMatchObject({ verdict: 'accept', decidedBy: { id: 'builtin:icmpv6-nd-in' } });
  });
});

describe('verdict maps, default drops and rejects', () => {
  it('continues after a map miss (an interface in no zone) into the logged default drop', () => {
    const e = evaluate(homelab, 'input', tcp({ iifname: 'eth9', saddr: '198.51.100.7', daddr: '203.0.113.10' }));
    expect(e.verdict).toBe('drop');
    expect(e.decidedBy).toBeUndefined();
    expect(e.steps.slice(-3).map((s) => [s.outcome, s.origin?.id, s.effects])).toEqual([
      ['map miss', 'zones:zone-in', undefined],
      ['matched', 'zones:unknown-in', ['log prefix "gw in unknown-iface drop " level info']],
      ['policy', undefined, undefined],
    ]);
    expect(e.steps.at(-1)).toMatchObject({ chain: 'input', text: 'policy drop' });
  });

  it('rejects what the all -> all reject policy catches (dmz -> host ssh)', () => {
    const e = evaluate(homelab, 'input', tcp({ iifname: 'br-dmz', saddr: '10.0.10.10', daddr: '10.0.10.1' }));
    expect(e.verdict).toBe('reject');
    expect(e.decidedBy).toMatchObject({ id: 'policies[4]', line: 69 });
    expect(e.steps.at(-1)!.text).toBe('counter reject with icmpx admin-prohibited');
  });

  it('drops spoofed traffic from a routed guest when no route leads back', () => {
    const p = tcp({ iifname: 'gw-mail', oifname: 'eth0', saddr: '203.0.113.99', daddr: '198.51.100.7', dport: 443 });
    // Checked in prerouting, on every packet: before conntrack could pass a spoofed one as established.
    expect(evaluatePrerouting(homelab, p, { routeBack: () => false })).toMatchObject({ verdict: 'drop', decidedBy: { id: 'guests:routed-antispoof' } });
    const trusting = evaluatePrerouting(homelab, p);
    expect(trusting.verdict).toBe('accept');
    expect(trusting.notes.join('\n')).toMatch(/assumed a route back/);
    expect(evaluate(homelab, 'forward', p)).toMatchObject({ verdict: 'accept', decidedBy: { id: 'policies[2]' } });
    // Neighbour discovery is judged by the ND checks, not by route (DAD comes from ::).
    const dad: Packet = { family: 6, iifname: 'gw-mail', saddr: '::', daddr: 'ff02::1:ff00:25', proto: 'icmpv6', icmpType: 'nd-neighbor-solicit', ct: { state: 'new' } };
    expect(evaluatePrerouting(homelab, dad, { routeBack: () => false }).verdict).toBe('accept');
  });
});

describe('rate limits', () => {
  const echo: Packet = { family: 4, ...fromNet, daddr: '203.0.113.10', proto: 'icmp', icmpType: 'echo-request', ct: { state: 'new' } };

  it('accepts a rate-limited ping under its rate', () => {
    expect(evaluate(homelab, 'input', echo)).toMatchObject({ verdict: 'accept', decidedBy: { id: 'rules[1]', line: 77 } });
  });

  it('falls through to the next rules over the rate (env.underLimit = false)', () => {
    const e = evaluate(homelab, 'input', echo, { underLimit: false });
    expect(e).toMatchObject({ verdict: 'drop', decidedBy: { id: 'policies[3]' } });
    expect(e.steps.find((s) => s.origin?.id === 'rules[1]')).toMatchObject({ outcome: 'no match', failed: 'limit rate 10/second' });
    // The log rule is rate limited as well: over the limit it does not log either.
    expect(e.steps.some((s) => s.effects?.some((x) => x.startsWith('log')))).toBe(false);
  });
});

// ---- Hand-built rulesets -----------------------------------------------------------------

const at = (id: string): Origin => ({ id, file: 'test.yaml', line: 0, col: 0, what: id });
const meta = (key: 'iifname' | 'oifname' | 'mark' | 'pkttype'): Expr => ({ meta: { key } });
const payload = (protocol: string, field: string): Expr => ({ payload: { protocol, field } });
const match = (left: Expr, right: Expr, op: '==' | '!=' | 'in' = '=='): Stmt => ({ match: { op, left, right } });
const rule = (id: string, ...stmts: Stmt[]) => ({ stmts, origin: at(id) });
const base = (name: string, hook: 'input' | 'forward', policy: 'accept' | 'drop', rules: Chain['rules'], prio = 0): Chain => ({
  name, base: { type: 'filter', hook, prio, policy }, rules,
});
const table = (chains: Chain[], extra: Partial<Table> = {}): Table => ({ family: 'inet', name: 't', helpers: [], sets: [], chains, ...extra });
const toHost = tcp({ iifname: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.10' });

describe('two tables on one hook', () => {
  const lanToNet = tcp({ iifname: 'br-lan', oifname: 'eth0', saddr: '192.168.1.20', daddr: '198.51.100.7', dport: 443 });
  const foreign = (policy: 'accept' | 'drop', prio = 0): Table => ({
    family: 'ip', name: 'filter', helpers: [], sets: [], chains: [base('FORWARD', 'forward', policy, [], prio)],
  });

  it('drops what our table accepts when another table has a drop policy (Docker\'s forward chain)', () => {
    const e = evaluate({ tables: [...homelab.tables, foreign('drop')] }, 'forward', lanToNet);
    expect(e.verdict).toBe('drop');
    expect(e.decidedBy).toBeUndefined();
    expect(e.steps.filter((s) => s.outcome === 'verdict' || s.outcome === 'policy').map((s) => `${s.table} ${s.chain} ${s.text}`)).toEqual([
      'guestwall lan_to_net counter accept',
      'filter FORWARD policy drop',
    ]);
    expect(e.notes.join('\n')).toMatch(/ends only this base chain/);
  });

  it('does not let an accept in a chain that runs first undo a drop in ours', () => {
    const dropped = evaluate({ tables: [foreign('accept', -10), ...homelab.tables] }, 'forward', { ...lanToNet, iifname: 'eth0', oifname: 'br-lan', saddr: '198.51.100.7', daddr: '192.168.1.20' });
    expect(dropped.verdict).toBe('drop');
    expect(dropped.steps[0]).toMatchObject({ table: 'filter', outcome: 'policy', text: 'policy accept' });
  });

  it('keeps an ip table away from IPv6 packets', () => {
    const v6 = { ...lanToNet, family: 6 as const, saddr: 'fd00:1::20', daddr: '2001:db8:99::7' };
    expect(evaluate({ tables: [...homelab.tables, foreign('drop')] }, 'forward', v6).verdict).toBe('accept');
  });
});

describe('jump, goto and return', () => {
  const run = (chains: Chain[]) => evaluate({ tables: [table(chains)] }, 'input', toHost);
  const regular = (name: string, rules: Chain['rules']): Chain => ({ name, rules });

  it('returns from a jumped-to chain to the rule after the jump', () => {
    const e = run([base('in', 'input', 'accept', [rule('j', { jump: { target: 'a' } }), rule('after', { drop: null })]), regular('a', [rule('a1', { counter: null })])]);
    expect(e).toMatchObject({ verdict: 'drop', decidedBy: { id: 'after' } });
    expect(e.steps.map((s) => `${s.chain}:${s.outcome}`)).toEqual(['in:jump', 'a:matched', 'a:return', 'in:verdict']);
  });

  it('returns from a goto\'d chain to the caller of the chain that did the goto', () => {
    const e = run([
      base('in', 'input', 'accept', [rule('j', { jump: { target: 'a' } }), rule('after', { drop: null })]),
      regular('a', [rule('g', { goto: { target: 'b' } }), rule('skipped', { accept: null })]),
      regular('b', []),
    ]);
    expect(e.decidedBy?.id).toBe('after');
    expect(e.steps.some((s) => s.origin?.id === 'skipped')).toBe(false);
  });

  it('ends in the base chain policy when a chain goto\'d from the base chain ends', () => {
    const e = run([base('in', 'input', 'accept', [rule('g', { goto: { target: 'b' } }), rule('after', { drop: null })]), regular('b', [])]);
    expect(e.verdict).toBe('accept');
    expect(e.steps.at(-1)).toMatchObject({ chain: 'in', outcome: 'policy' });
  });

  it('applies return in a jumped-to chain and in the base chain itself', () => {
    const jumped = run([
      base('in', 'input', 'drop', [rule('j', { jump: { target: 'a' } }), rule('after', { accept: null })]),
      regular('a', [rule('r', { return: null }), rule('skipped', { drop: null })]),
    ]);
    expect(jumped.decidedBy?.id).toBe('after');
    const inBase = run([base('in', 'input', 'drop', [rule('r', { return: null }), rule('skipped', { accept: null })])]);
    expect(inBase.verdict).toBe('drop');
    expect(inBase.steps.map((s) => s.outcome)).toEqual(['return', 'policy']);
  });

  it('follows jumps stored in a verdict map and refuses chains that do not exist', () => {
    const sets: Table['sets'] = [{ kind: 'map', name: 'm', type: 'ifname', map: 'verdict', elements: [['eth*', { jump: { target: 'a' } }]] }];
    const chains = [base('in', 'input', 'accept', [rule('v', { vmap: { key: meta('iifname'), data: { setRef: 'm' } } }), rule('after', { drop: null })]), regular('a', [])];
    expect(evaluate({ tables: [table(chains, { sets })] }, 'input', toHost).decidedBy?.id).toBe('after');
    expect(() => run([base('in', 'input', 'accept', [rule('j', { jump: { target: 'nowhere' } })])])).toThrow(/does not exist/);
  });
});

describe('sets', () => {
  const sets: Table['sets'] = [
    { kind: 'set', name: 'blocked', type: 'ipv4_addr', flags: ['interval'], elements: [{ prefix: { addr: '10.66.0.0', len: 16 } }, { range: ['192.0.2.10', '192.0.2.20'] }, '198.51.100.7'] },
    { kind: 'set', name: 'blocked6', type: 'ipv6_addr', flags: ['interval'], elements: [{ prefix: { addr: 'fd66::', len: 64 } }] },
    { kind: 'set', name: 'guest_addrs', type: ['ifname', 'ipv4_addr'], flags: ['interval'], elements: [{ concat: ['vif2*', { prefix: { addr: '10.0.2.0', len: 24 } }] }] },
  ];
  const ruleset: Ruleset = {
    tables: [table([base('in', 'input', 'accept', [
      rule('v4', match(payload('ip', 'saddr'), { setRef: 'blocked' }), { drop: null }),
      rule('v6', match(payload('ip6', 'saddr'), { setRef: 'blocked6' }), { drop: null }),
      rule('concat', match({ concat: [meta('iifname'), payload('ip', 'saddr')] }, { setRef: 'guest_addrs' }, '!='), match(meta('iifname'), 'vif2*'), { drop: null }),
      rule('ports', match(payload('tcp', 'dport'), { set: [22, { range: [8000, 8100] }] }), { reject: { type: 'tcp reset' } }),
    ])], { sets })],
  };
  const from = (saddr: string, extra: Partial<Packet> = {}) => evaluate(ruleset, 'input', tcp({ iifname: 'eth0', saddr, daddr: saddr.includes(':') ? '2001:db8::10' : '203.0.113.10', dport: 443, ...(saddr.includes(':') ? { family: 6 } : {}), ...extra }));

  it('matches addresses, prefixes and ranges in named sets, IPv4 and IPv6', () => {
    expect(from('198.51.100.7').decidedBy?.id).toBe('v4');
    expect(from('10.66.200.1').decidedBy?.id).toBe('v4');
    expect(from('192.0.2.15').decidedBy?.id).toBe('v4');
    expect(from('192.0.2.21').verdict).toBe('accept');
    expect(from('fd66::abcd').decidedBy?.id).toBe('v6');
    expect(from('fd67::1').verdict).toBe('accept');
  });

  it('matches concatenations with interface wildcards', () => {
    expect(from('10.0.2.9', { iifname: 'vif2.0' }).verdict).toBe('accept');
    expect(from('10.0.3.9', { iifname: 'vif2.0' }).decidedBy?.id).toBe('concat');
  });

  it('matches ports and port ranges in anonymous sets', () => {
    expect(from('203.0.113.99', { dport: 8080 })).toMatchObject({ verdict: 'reject', decidedBy: { id: 'ports' } });
    expect(from('203.0.113.99', { dport: 8101 }).verdict).toBe('accept');
  });
});

describe('what the evaluator cannot read', () => {
  const one = (...stmts: Stmt[]): Ruleset => ({ tables: [table([base('in', 'input', 'accept', [rule('x', ...stmts, { accept: null })])])] });

  it('throws on expressions and statements it does not know, rather than guess', () => {
    expect(() => evaluate(one(match(meta('pkttype'), 'host')), 'input', toHost)).toThrow(/meta pkttype/);
    expect(() => evaluate(one(match(payload('th', 'checksum'), 22)), 'input', toHost)).toThrow(/payload field/);
    // th dport of an ICMP packet is bytes a packet description does not hold: only after meta l4proto.
    expect(() => evaluate(one(match(payload('th', 'dport'), 22)), 'input', { family: 4, iifname: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.10', proto: 'icmp', icmpType: 'echo-request', ct: { state: 'new' } })).toThrow(/not known/);
    expect(() => evaluate(one({ quota: { val: 1 } } as unknown as Stmt), 'input', toHost)).toThrow(/statement/);
    expect(() => evaluate(one({ dnat: { family: 'ip', addr: '10.0.0.1' } }), 'input', toHost)).toThrow(/nat statement/);
  });

  it('throws on a packet described inconsistently', () => {
    expect(() => evaluate(homelab, 'input', tcp({ saddr: '198.51.100.7', daddr: '203.0.113.10' }))).toThrow(/needs an iifname/);
    expect(() => evaluate(homelab, 'input', tcp({ ...fromNet, daddr: '2001:db8::1' }))).toThrow(/not an IPv4 address/);
    expect(() => evaluate(homelab, 'output', tcp({ oifname: 'eth0', saddr: '203.0.113.10', daddr: '198.51.100.7', proto: 'icmpv6' }))).toThrow(/icmpv6/);
  });
});
