import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, it, expect } from 'vitest';
import { toNftJson } from '../../../src/nft/json.js';
import { printRuleset, printStmt } from '../../../src/nft/print.js';
import type { Origin, Ruleset } from '../../../src/nft/ruleset.js';
import type { Stmt } from '../../../src/nft/types.js';
import { kernelTestUnavailable } from '../../support/kernel.js';

const at = (id: string, line = 0): Origin => ({ id, file: 'policies/test.yaml', line, col: 1, what: id });
const tcpDport = { payload: { protocol: 'tcp', field: 'dport' } };
const ipSaddr = { payload: { protocol: 'ip', field: 'saddr' } };
const iifname = { meta: { key: 'iifname' as const } };
const oifname = { meta: { key: 'oifname' as const } };
const ctState = { ct: { key: 'state' } };

/** Every statement and expression kind, in tables that nft 1.0.6 loads. */
function richRuleset(): Ruleset {
  return {
    tables: [
      {
        family: 'inet',
        name: 'guestwall',
        helpers: [{ name: 'sip-5060', type: 'sip', protocol: 'udp' }],
        sets: [
          {
            kind: 'set',
            name: 'blocked',
            type: 'ipv4_addr',
            flags: ['interval'],
            elements: [{ prefix: { addr: '10.66.0.0', len: 16 } }, { range: ['192.0.2.10', '192.0.2.20'] }, '198.51.100.7'],
          },
          { kind: 'set', name: 'blocked6', type: 'ipv6_addr', flags: ['interval'], elements: [{ prefix: { addr: 'fd66::', len: 64 } }] },
          {
            kind: 'set',
            name: 'guest_addrs',
            type: ['ifname', 'ipv4_addr'],
            flags: ['interval'],
            elements: [{ concat: ['vif1.0', '10.0.1.2'] }, { concat: ['vif2*', { prefix: { addr: '10.0.2.0', len: 24 } }] }],
          },
          { kind: 'set', name: 'admin_ports', type: 'inet_service', flags: ['constant'], elements: [22, 443, 8006] },
          {
            kind: 'set',
            name: 'lan_hosts',
            type: 'ipv4_addr',
            elements: Array.from({ length: 12 }, (_, i) => `10.0.0.${i + 10}`),
          },
          { kind: 'set', name: 'empty', type: 'ipv4_addr', elements: [] },
          {
            kind: 'map',
            name: 'input_zones',
            type: 'ifname',
            map: 'verdict',
            flags: ['interval'],
            elements: [
              ['eth0', { jump: { target: 'lan_in' } }],
              ['vif*', { goto: { target: 'guest_in' } }],
              ['lo', { accept: null }],
            ],
          },
          {
            kind: 'map',
            name: 'forward_zones',
            type: ['ifname', 'ifname'],
            map: 'verdict',
            elements: [[{ concat: ['br0', 'eth0'] }, { jump: { target: 'lan_out' } }]],
          },
        ],
        chains: [
          {
            name: 'input',
            base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' },
            rules: [
              { stmts: [{ match: { op: 'in', left: ctState, right: ['established', 'related'] } }, { accept: null }], origin: at('builtin:ct-established') },
              { stmts: [{ match: { op: '==', left: ctState, right: 'invalid' } }, { drop: null }], origin: at('builtin:ct-invalid') },
              { stmts: [{ match: { op: '==', left: iifname, right: 'lo' } }, { accept: null }], origin: at('builtin:lo') },
              {
                stmts: [{ match: { op: '==', left: { fib: { result: 'oif', flags: ['saddr', 'iif'] } }, right: false } }, { drop: null }],
                origin: at('antispoof[0]', 12),
              },
              {
                stmts: [{ match: { op: '!=', left: { fib: { result: 'type', flags: ['daddr'] } }, right: 'local' } }, { drop: null }],
                origin: at('builtin:local'),
              },
              { stmts: [{ vmap: { key: iifname, data: { setRef: 'input_zones' } } }], origin: at('zones', 3) },
              {
                stmts: [
                  { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'icmp' } },
                  { match: { op: '==', left: { payload: { protocol: 'icmp', field: 'type' } }, right: 'echo-request' } },
                  { limit: { rate: 10, per: 'minute', burst: 5 } },
                  { accept: null },
                ],
                origin: at('rules[0]', 20),
              },
              {
                stmts: [
                  { match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv6' } },
                  { match: { op: '==', left: { payload: { protocol: 'icmpv6', field: 'type' } }, right: { set: ['nd-neighbor-solicit', 'nd-router-advert'] } } },
                  { accept: null },
                ],
                origin: at('rules[1]', 24),
              },
              {
                stmts: [
                  { match: { op: '==', left: tcpDport, right: { setRef: 'admin_ports' } } },
                  { match: { op: '!=', left: ipSaddr, right: { setRef: 'blocked' } } },
                  { counter: null },
                  { accept: null },
                ],
                origin: at('rules[2]', 28),
              },
              {
                stmts: [{ counter: null }, { log: { prefix: 'gw input drop: ', level: 'info' } }, { reject: { type: 'icmpx', expr: 'admin-prohibited' } }],
                origin: at('builtin:input-reject'),
              },
            ],
          },
          {
            name: 'forward',
            base: { type: 'filter', hook: 'forward', prio: 0, policy: 'drop' },
            rules: [
              { stmts: [{ match: { op: 'in', left: ctState, right: ['established', 'related'] } }, { accept: null }], origin: at('builtin:ct-established') },
              { stmts: [{ vmap: { key: { concat: [iifname, oifname] }, data: { setRef: 'forward_zones' } } }], origin: at('zones', 3) },
              { stmts: [{ match: { op: '!=', left: { concat: [iifname, ipSaddr] }, right: { setRef: 'guest_addrs' } } }, { drop: null }], origin: at('guests[0]', 40) },
              {
                stmts: [
                  {
                    match: {
                      op: '==',
                      left: { concat: [iifname, oifname] },
                      right: { set: [{ concat: ['vif1.0', 'eth0'] }, { concat: ['vif2*', 'eth0'] }] },
                    },
                  },
                  { accept: null },
                ],
                origin: at('forwards[0]', 44),
              },
              {
                stmts: [
                  { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: { prefix: { addr: '10.0.0.0', len: 8 } } } },
                  { match: { op: '==', left: tcpDport, right: { range: [10000, 20000] } } },
                  { accept: null },
                ],
                origin: at('forwards[1]', 48),
              },
              {
                stmts: [
                  { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } },
                  { match: { op: '==', left: { payload: { protocol: 'ip6', field: 'daddr' } }, right: { setRef: 'blocked6' } } },
                  { reject: { type: 'tcp reset' } },
                ],
                origin: at('rules[3]', 52),
              },
              { stmts: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 5060 } }, { 'ct helper': 'sip-5060' }], origin: at('helpers[0]', 56) },
              { stmts: [{ match: { op: '==', left: { ct: { key: 'helper' } }, right: 'sip-5060' } }, { accept: null }], origin: at('helpers[0]', 56) },
              { stmts: [{ match: { op: '<', left: tcpDport, right: 1024 } }, { match: { op: '==', left: { meta: { key: 'mark' } }, right: 16 } }, { accept: null }], origin: at('rules[4]', 60) },
              { stmts: [{ match: { op: '==', left: { meta: { key: 'pkttype' } }, right: 'broadcast' } }, { drop: null }], origin: at('rules[5]', 61) },
              { stmts: [{ match: { op: 'in', left: { ct: { key: 'status' } }, right: 'dnat' } }, { accept: null }], origin: at('builtin:dnat') },
              { stmts: [{ match: { op: '==', left: { payload: { protocol: 'tcp', field: 'flags' } }, right: 'syn' } }, { counter: null }], origin: at('rules[6]', 62) },
              { stmts: [{ match: { op: '==', left: { ct: { key: 'ip saddr', dir: 'original' } }, right: '10.0.1.2' } }, { return: null }], origin: at('rules[7]', 63) },
              { stmts: [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } }, { reject: null }], origin: at('rules[8]', 64) },
              { stmts: [{ match: { op: '==', left: ipSaddr, right: { setRef: 'lan_hosts' } } }, { match: { op: '!=', left: ipSaddr, right: { setRef: 'empty' } } }, { accept: null }], origin: at('rules[9]', 65) },
            ],
          },
          {
            name: 'lan_in',
            rules: [
              { stmts: [{ match: { op: '==', left: tcpDport, right: 22 } }, { accept: null }], origin: at('rules[10]', 70) },
              { stmts: [{ match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: { set: [53, 67] } } }, { accept: null }], origin: at('rules[11]', 71) },
              { stmts: [{ return: null }], origin: at('builtin:zone-end') },
            ],
          },
          {
            name: 'guest_in',
            rules: [
              { stmts: [{ match: { op: '==', left: { payload: { protocol: 'ether', field: 'saddr' } }, right: '02:00:00:00:00:01' } }, { jump: { target: 'lan_out' } }], origin: at('guests[0]', 40) },
            ],
          },
          { name: 'lan_out', rules: [{ stmts: [{ accept: null }], origin: at('rules[12]', 75) }] },
          {
            name: 'prerouting',
            base: { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' },
            rules: [
              { stmts: [{ match: { op: '==', left: iifname, right: 'eth0' } }, { match: { op: '==', left: tcpDport, right: 80 } }, { dnat: { family: 'ip', addr: '10.0.1.2', port: 80 } }], origin: at('forwards[2]', 80) },
              { stmts: [{ match: { op: '==', left: tcpDport, right: 443 } }, { dnat: { family: 'ip6', addr: 'fd00::2', port: 443 } }], origin: at('forwards[3]', 81) },
              { stmts: [{ match: { op: '==', left: tcpDport, right: 5000 } }, { dnat: { family: 'ip', addr: '10.0.1.2', port: { range: [10000, 20000] } } }], origin: at('forwards[4]', 82) },
              { stmts: [{ match: { op: '==', left: tcpDport, right: 8443 } }, { dnat: { family: 'ip6', addr: 'fd00::3' } }], origin: at('forwards[5]', 83) },
            ],
          },
          {
            name: 'postrouting',
            base: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
            rules: [
              { stmts: [{ match: { op: '==', left: oifname, right: 'eth0' } }, { masquerade: null }], origin: at('nat[0]', 90) },
              { stmts: [{ match: { op: '==', left: oifname, right: 'eth1' } }, { snat: { family: 'ip', addr: '192.0.2.1' } }], origin: at('nat[1]', 91) },
              { stmts: [{ match: { op: '==', left: oifname, right: 'eth1' } }, { snat: { family: 'ip6', addr: 'fd00::1' } }], origin: at('nat[2]', 92) },
            ],
          },
        ],
      },
      {
        family: 'arp',
        name: 'guestwall',
        helpers: [],
        sets: [],
        chains: [
          {
            name: 'input',
            base: { type: 'filter', hook: 'input', prio: 0, policy: 'accept' },
            rules: [
              { stmts: [{ match: { op: '!=', left: { payload: { protocol: 'arp', field: 'saddr ip' } }, right: '10.0.1.2' } }, { match: { op: '==', left: iifname, right: 'vif1.0' } }, { drop: null }], origin: at('guests[0]', 40) },
            ],
          },
        ],
      },
      {
        family: 'bridge',
        name: 'guestwall',
        helpers: [],
        sets: [],
        chains: [
          {
            name: 'forward',
            base: { type: 'filter', hook: 'forward', prio: -200, policy: 'accept' },
            rules: [
              { stmts: [{ match: { op: '==', left: iifname, right: 'vif1.0' } }, { match: { op: '!=', left: { payload: { protocol: 'ether', field: 'saddr' } }, right: '02:00:00:00:00:01' } }, { drop: null }], origin: at('guests[0]', 40) },
            ],
          },
        ],
      },
    ],
  };
}

describe('statements print as nft syntax', () => {
  const cases: [Stmt, string][] = [
    [{ match: { op: '==', left: tcpDport, right: 22 } }, 'tcp dport 22'],
    [{ match: { op: '!=', left: tcpDport, right: 22 } }, 'tcp dport != 22'],
    [{ match: { op: '>=', left: tcpDport, right: 1024 } }, 'tcp dport >= 1024'],
    [{ match: { op: 'in', left: ctState, right: ['established', 'related'] } }, 'ct state established,related'],
    [{ match: { op: '==', left: ctState, right: { set: ['established', 'related'] } } }, 'ct state { established, related }'],
    // Bitmask types: JSON `==` is exact equality, nft's bare value is a bit test.
    [{ match: { op: '==', left: ctState, right: 'invalid' } }, 'ct state == invalid'],
    [{ match: { op: 'in', left: ctState, right: 'invalid' } }, 'ct state invalid'],
    [{ match: { op: '==', left: iifname, right: 'eth0' } }, 'iifname "eth0"'],
    [{ match: { op: '==', left: iifname, right: 'vif*' } }, 'iifname "vif*"'],
    [{ match: { op: '==', left: { meta: { key: 'iif' } }, right: 'lo' } }, 'iif "lo"'],
    [{ match: { op: '==', left: { meta: { key: 'ibrname' } }, right: 'br0' } }, 'meta ibrname "br0"'],
    [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } }, 'meta l4proto udp'],
    [{ match: { op: '==', left: { meta: { key: 'nfproto' } }, right: 'ipv4' } }, 'meta nfproto ipv4'],
    [{ match: { op: '==', left: { payload: { protocol: 'icmpv6', field: 'type' } }, right: 'echo-request' } }, 'icmpv6 type echo-request'],
    [{ match: { op: '==', left: { payload: { protocol: 'arp', field: 'saddr ip' } }, right: '10.0.0.1' } }, 'arp saddr ip 10.0.0.1'],
    [{ match: { op: '==', left: { payload: { protocol: 'ether', field: 'saddr' } }, right: '02:00:00:00:00:01' } }, 'ether saddr 02:00:00:00:00:01'],
    [{ match: { op: '==', left: { fib: { result: 'oif', flags: ['saddr', 'iif'] } }, right: false } }, 'fib saddr . iif oif missing'],
    [{ match: { op: '==', left: { fib: { result: 'oif', flags: ['daddr'] } }, right: true } }, 'fib daddr oif exists'],
    [{ match: { op: '==', left: { fib: { result: 'type', flags: ['daddr'] } }, right: 'local' } }, 'fib daddr type local'],
    [{ match: { op: '==', left: { ct: { key: 'ip saddr', dir: 'original' } }, right: '10.0.0.2' } }, 'ct original ip saddr 10.0.0.2'],
    [{ match: { op: '==', left: { concat: [iifname, oifname] }, right: { set: [{ concat: ['vif1.0', 'eth0'] }] } } }, 'iifname . oifname { "vif1.0" . "eth0" }'],
    [{ match: { op: '==', left: { concat: [iifname, ipSaddr] }, right: { concat: ['vif1.0', '10.0.0.2'] } } }, 'iifname . ip saddr "vif1.0" . 10.0.0.2'],
    [{ match: { op: '==', left: ipSaddr, right: { prefix: { addr: '10.0.0.0', len: 8 } } } }, 'ip saddr 10.0.0.0/8'],
    [{ match: { op: '==', left: { payload: { protocol: 'ip6', field: 'daddr' } }, right: { prefix: { addr: 'fd00::', len: 64 } } } }, 'ip6 daddr fd00::/64'],
    [{ match: { op: '==', left: tcpDport, right: { range: [10000, 20000] } } }, 'tcp dport 10000-20000'],
    [{ match: { op: '!=', left: ipSaddr, right: { setRef: 'blocked' } } }, 'ip saddr != @blocked'],
    [{ match: { op: '==', left: iifname, right: { setRef: 'guest_ifs' } } }, 'iifname @guest_ifs'],
    [{ counter: null }, 'counter'],
    [{ log: { prefix: 'gw drop: ', level: 'info' } }, 'log prefix "gw drop: " level info'],
    [{ log: { prefix: 'gw: ' } }, 'log prefix "gw: "'],
    [{ limit: { rate: 10, per: 'minute', burst: 5 } }, 'limit rate 10/minute burst 5 packets'],
    [{ limit: { rate: 3, per: 'second' } }, 'limit rate 3/second'],
    [{ accept: null }, 'accept'],
    [{ drop: null }, 'drop'],
    [{ return: null }, 'return'],
    [{ jump: { target: 'lan_in' } }, 'jump lan_in'],
    [{ goto: { target: 'zone-dmz' } }, 'goto zone-dmz'],
    [{ reject: null }, 'reject'],
    [{ reject: { type: 'icmpx', expr: 'admin-prohibited' } }, 'reject with icmpx admin-prohibited'],
    [{ reject: { type: 'icmp', expr: 'host-unreachable' } }, 'reject with icmp host-unreachable'],
    [{ reject: { type: 'tcp reset' } }, 'reject with tcp reset'],
    [{ vmap: { key: iifname, data: { setRef: 'input_zones' } } }, 'iifname vmap @input_zones'],
    [{ vmap: { key: { concat: [iifname, oifname] }, data: { setRef: 'forward_zones' } } }, 'iifname . oifname vmap @forward_zones'],
    [{ dnat: { family: 'ip', addr: '10.0.0.2', port: 80 } }, 'dnat ip to 10.0.0.2:80'],
    [{ dnat: { family: 'ip6', addr: 'fd00::2', port: 443 } }, 'dnat ip6 to [fd00::2]:443'],
    [{ dnat: { family: 'ip', addr: '10.0.0.2', port: { range: [10000, 20000] } } }, 'dnat ip to 10.0.0.2:10000-20000'],
    [{ dnat: { family: 'ip6', addr: 'fd00::2' } }, 'dnat ip6 to fd00::2'],
    [{ snat: { family: 'ip', addr: '192.0.2.1' } }, 'snat ip to 192.0.2.1'],
    [{ masquerade: null }, 'masquerade'],
    [{ 'ct helper': 'sip-5060' }, 'ct helper set "sip-5060"'],
  ];
  it.each(cases)('%j prints as %s', (stmt, text) => {
    expect(printStmt(stmt)).toBe(text);
  });
});

describe('a ruleset prints as a file that replaces its tables', () => {
  it('prints helpers, sets, maps and chains inside table / delete table / table', () => {
    const text = printRuleset({
      tables: [
        {
          family: 'inet',
          name: 'guestwall',
          helpers: [{ name: 'sip', type: 'sip', protocol: 'udp' }],
          sets: [
            { kind: 'set', name: 'blocked', type: 'ipv4_addr', flags: ['interval'], elements: [{ prefix: { addr: '10.0.0.0', len: 8 } }, '192.0.2.1'] },
            { kind: 'set', name: 'pairs', type: ['ifname', 'ipv4_addr'], elements: [{ concat: ['vif1.0', '10.0.0.2'] }] },
            { kind: 'map', name: 'input_zones', type: 'ifname', map: 'verdict', flags: ['interval'], elements: [['vif*', { jump: { target: 'guests' } }]] },
          ],
          chains: [
            {
              name: 'input',
              base: { type: 'filter', hook: 'input', prio: 0, policy: 'drop' },
              rules: [{ stmts: [{ vmap: { key: iifname, data: { setRef: 'input_zones' } } }], origin: at('zones', 3) }],
            },
            { name: 'guests', rules: [{ stmts: [{ match: { op: '==', left: tcpDport, right: 22 } }, { accept: null }], origin: at('rules[0]') }] },
          ],
        },
      ],
    });
    expect(text).toBe(
      [
        'table inet guestwall {}',
        'delete table inet guestwall',
        'table inet guestwall {',
        '\tct helper sip {',
        '\t\ttype "sip" protocol udp',
        '\t\tl3proto inet',
        '\t}',
        '',
        '\tset blocked {',
        '\t\ttype ipv4_addr',
        '\t\tflags interval',
        '\t\telements = { 10.0.0.0/8, 192.0.2.1 }',
        '\t}',
        '',
        '\tset pairs {',
        '\t\ttype ifname . ipv4_addr',
        '\t\telements = { "vif1.0" . 10.0.0.2 }',
        '\t}',
        '',
        '\tmap input_zones {',
        '\t\ttype ifname : verdict',
        '\t\tflags interval',
        '\t\telements = { "vif*" : jump guests }',
        '\t}',
        '',
        '\tchain input {',
        '\t\ttype filter hook input priority 0; policy drop;',
        '\t\tiifname vmap @input_zones comment "test.yaml:3 zones"',
        '\t}',
        '',
        '\tchain guests {',
        '\t\ttcp dport 22 accept comment "rules[0]"',
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('puts long element lists one a line', () => {
    const text = printRuleset(richRuleset());
    expect(text).toContain('\t\telements = {\n\t\t\t10.0.0.10,\n\t\t\t10.0.0.11,\n');
    expect(text).toContain('\t\t\t10.0.0.21\n\t\t}\n');
  });

  it('prints an empty table and no tables', () => {
    expect(printRuleset({ tables: [] })).toBe('');
    expect(printRuleset({ tables: [{ family: 'ip', name: 'gw', helpers: [], sets: [], chains: [] }] })).toBe(
      'table ip gw {}\ndelete table ip gw\ntable ip gw {\n}\n',
    );
  });
});

describe('shapes the printer does not know throw', () => {
  const rule = (stmts: Stmt[]): Ruleset => ({
    tables: [{ family: 'inet', name: 'gw', helpers: [], sets: [], chains: [{ name: 'c', rules: [{ stmts, origin: at('r') }] }] }],
  });
  const bad: [string, unknown][] = [
    ['an unknown statement', { queue: { num: 1 } }],
    ['a statement with two keys', { accept: null, drop: null }],
    ['a value on the left', { match: { op: '==', left: 'eth0', right: 'eth0' } }],
    ['an unknown operator', { match: { op: '=~', left: tcpDport, right: 22 } }],
    ['an unknown meta key', { match: { op: '==', left: { meta: { key: 'skuid' } }, right: 0 } }],
    ['an empty anonymous set', { match: { op: '==', left: tcpDport, right: { set: [] } } }],
    ['a concatenation of the wrong width', { match: { op: '==', left: { concat: [iifname, oifname] }, right: { set: ['eth0'] } } }],
    ['a flag list on a field without flags', { match: { op: 'in', left: tcpDport, right: ['22', '80'] } }],
    ['a boolean outside fib', { match: { op: '==', left: tcpDport, right: true } }],
    ['a field compared with a field', { match: { op: '==', left: ipSaddr, right: { payload: { protocol: 'ip', field: 'daddr' } } } }],
    ['a constant nft would misread', { match: { op: '==', left: ipSaddr, right: '10.0.0.1; drop' } }],
    ['a quote inside a string', { log: { prefix: 'say "hi"' } }],
    ['vmap data that is not a named map', { vmap: { key: iifname, data: 'input_zones' } }],
    ['icmpx reject without a code', { reject: { type: 'icmpx' } }],
    ['a fractional port', { dnat: { family: 'ip', addr: '10.0.0.2', port: 80.5 } }],
    ['a jump to a name nft cannot read', { jump: { target: 'zone lan' } }],
  ];
  it.each(bad)('%s', (_what, stmt) => {
    expect(() => printStmt(stmt as Stmt)).toThrow(/nft printer: .*a bug in the compiler/);
  });

  it('a rule without statements', () => {
    expect(() => printRuleset(rule([]))).toThrow(/rule without statements/);
  });
  it('a map element whose key does not fit the map type', () => {
    const rs: Ruleset = {
      tables: [
        {
          family: 'inet',
          name: 'gw',
          helpers: [],
          sets: [{ kind: 'map', name: 'm', type: ['ifname', 'ifname'], map: 'verdict', elements: [['eth0', { accept: null }]] }],
          chains: [],
        },
      ],
    };
    expect(() => printRuleset(rs)).toThrow(/concatenation of 2/);
  });
});

const skipReason = kernelTestUnavailable();

describe('nft loads the printed text exactly as it loads the JSON', () => {
  it.skipIf(skipReason !== undefined)(
    `nft -f (twice) and nft -j -f list the same ruleset, in throwaway namespaces${skipReason ? ` (skipped: ${skipReason})` : ''}`,
    async () => {
      const ruleset = richRuleset();
      const dir = await mkdtemp(join(tmpdir(), 'gw-print-'));
      const namespaces: string[] = [];
      const newNamespace = async () => {
        const ns = `gw-print-${randomBytes(4).toString('hex')}`;
        await execa('ip', ['netns', 'add', ns]);
        namespaces.push(ns);
        return ns;
      };
      const nft = (ns: string, args: string[]) => execa('ip', ['netns', 'exec', ns, 'nft', ...args]);
      try {
        const textFile = join(dir, 'ruleset.nft');
        const jsonFile = join(dir, 'ruleset.json');
        const foreignFile = join(dir, 'foreign.nft');
        await writeFile(textFile, printRuleset(ruleset));
        await writeFile(jsonFile, JSON.stringify(toNftJson(ruleset)));
        // Somebody else's table, which the replace must leave alone.
        await writeFile(foreignFile, 'table inet other {\n\tchain c {\n\t\tcounter\n\t}\n}\n');

        const fromText = await newNamespace();
        const fromJson = await newNamespace();
        for (const ns of [fromText, fromJson]) await nft(ns, ['-f', foreignFile]);
        // Twice each: the second load replaces the first instead of adding to it or failing.
        for (let i = 0; i < 2; i++) {
          await nft(fromText, ['-f', textFile]);
          await nft(fromJson, ['-j', '-f', jsonFile]);
        }

        const listText = (await nft(fromText, ['list', 'ruleset'])).stdout;
        const listJson = (await nft(fromJson, ['list', 'ruleset'])).stdout;
        expect(listText).toBe(listJson);
        expect(listText).toContain('table inet other {');
        expect(listText).toContain('iifname vmap @input_zones comment "test.yaml:3 zones"');
        expect(listText.match(/^table inet guestwall \{$/gm)).toHaveLength(1);
        expect(listText.match(/comment "test\.yaml:3 zones"/g)).toHaveLength(2);
      } finally {
        for (const ns of namespaces) await execa('ip', ['netns', 'del', ns], { reject: false });
        await rm(dir, { recursive: true, force: true });
      }
    },
    30_000,
  );
});
