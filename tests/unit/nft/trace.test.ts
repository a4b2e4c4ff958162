// guestwall trace's pure parts: the marking table, which packets it marks, reading the lines of
// `nft monitor trace` (as nft 1.0.6 prints them, captured in a namespace here) and the story.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { traceSelectors } from '../../../src/compile/trace.js';
import { traceEventLines } from '../../../src/cli/trace.js';
import { printStmt } from '../../../src/nft/print.js';
import { originMap } from '../../../src/nft/ruleset.js';
import { TRACE_TABLE, packetSummary, parseTraceLine, removeTraceDocument, traceTableDocument } from '../../../src/nft/trace.js';

const homelab = compilePolicyText('policies/homelab-dmz.yaml', readFileSync('policies/homelab-dmz.yaml', 'utf8'));
const model = homelab.model!;

// Lines nft 1.0.6 printed here for a SYN to port 22 dropped by a zone chain (captured with
// `nft monitor trace` in a namespace; `-j` prints the same text on 1.0.6).
const CAPTURED = [
  'trace id 9b61ede9 inet guestwall_trace prerouting packet: iif "eth0" ether saddr 26:27:9b:8a:ac:2c ether daddr c6:34:d9:2e:de:ee ip saddr 203.0.113.99 ip daddr 203.0.113.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 61032 ip protocol tcp ip length 60 tcp sport 42856 tcp dport 22 tcp flags == syn tcp window 64240 ',
  'trace id 9b61ede9 inet guestwall_trace prerouting rule iifname "eth0" ip daddr 203.0.113.10 meta l4proto tcp meta nftrace set 1 comment "guestwall trace" (verdict continue)',
  'trace id 9b61ede9 inet guestwall_trace prerouting policy accept ',
  'trace id 9b61ede9 inet guestwall input packet: iif "eth0" ether saddr 26:27:9b:8a:ac:2c ether daddr c6:34:d9:2e:de:ee ip saddr 203.0.113.99 ip daddr 203.0.113.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 61032 ip protocol tcp ip length 60 tcp sport 42856 tcp dport 22 tcp flags == syn tcp window 64240 ',
  'trace id 9b61ede9 inet guestwall input rule iifname vmap @zone_in comment "homelab-dmz.yaml:15 zones:zone-in" (verdict goto net_to_host)',
  'trace id 9b61ede9 inet guestwall net_to_host rule counter packets 1 bytes 60 drop comment "homelab-dmz.yaml:68 policies[3]" (verdict drop)',
  'trace id 9b61ede9 inet filter input policy drop ',
];

describe('reading nft monitor trace (nft 1.0.6 text)', () => {
  it('reads packet, rule (verdict and comment) and policy lines, and nothing else', () => {
    const [packet, mark, , , vmap, drop, policy] = CAPTURED.map(parseTraceLine);
    expect(packet).toMatchObject({ id: '9b61ede9', family: 'inet', table: 'guestwall_trace', chain: 'prerouting', kind: 'packet' });
    expect(mark).toMatchObject({ kind: 'rule', text: 'iifname "eth0" ip daddr 203.0.113.10 meta l4proto tcp meta nftrace set 1', verdict: 'continue', comment: 'guestwall trace' });
    expect(vmap).toEqual({ id: '9b61ede9', family: 'inet', table: 'guestwall', chain: 'input', kind: 'rule', text: 'iifname vmap @zone_in', verdict: 'goto net_to_host', comment: 'homelab-dmz.yaml:15 zones:zone-in' });
    expect(drop).toMatchObject({ chain: 'net_to_host', verdict: 'drop', comment: 'homelab-dmz.yaml:68 policies[3]' });
    expect(policy).toMatchObject({ table: 'filter', chain: 'input', kind: 'policy', verdict: 'drop' });
    expect(parseTraceLine('')).toBeUndefined();
    expect(parseTraceLine('Error: Could not receive trace events')).toBeUndefined();
    expect(parseTraceLine('trace id 1 inet guestwall x rule tcp dport 1 accept (verdict accept)')).toMatchObject({ text: 'tcp dport 1 accept', verdict: 'accept' });
    expect(parseTraceLine('trace id 1 inet guestwall x rule tcp dport 1 accept (verdict accept)')).not.toHaveProperty('comment');
  });

  it('sums a packet up as protocol, addresses, port and interface', () => {
    expect(packetSummary(parseTraceLine(CAPTURED[0]!)!.text)).toBe('tcp 203.0.113.99 -> 203.0.113.10 port 22 in on eth0');
    expect(packetSummary('iif "v1" ip6 saddr fd00::2 ip6 daddr fd00::1 ip6 nexthdr ipv6-icmp icmpv6 type echo-request')).toBe('ipv6-icmp fd00::2 -> fd00::1 echo-request in on v1');
  });

  it('tells the story: the packet once, each rule with the YAML place that wrote it, the live counters left out', () => {
    const origins = originMap(homelab.compiled!.ruleset);
    const seen = new Set<string>();
    const lines = CAPTURED.map(parseTraceLine).filter((e) => e && e.table !== TRACE_TABLE.name).flatMap((e) => traceEventLines(e!, origins, seen));
    expect(lines).toEqual([
      'packet 9b61ede9: tcp 203.0.113.99 -> 203.0.113.10 port 22 in on eth0',
      `  inet input: iifname vmap @zone_in -> goto net_to_host  [${origins['homelab-dmz.yaml:15 zones:zone-in']!.what} (homelab-dmz.yaml:15)]`,
      `  inet net_to_host: counter drop -> drop  [${origins['homelab-dmz.yaml:68 policies[3]']!.what} (homelab-dmz.yaml:68)]`,
      "  inet filter input: no rule decided: the chain's policy drop",
    ]);
  });
});

describe('the trace table', () => {
  it('marks in its own table, before every other hook, and is removed by a document that cannot fail', () => {
    const doc = traceTableDocument([{ hook: 'prerouting', stmts: [] }]);
    const adds = doc.nftables.flatMap((c) => ('add' in c ? [c.add] : []));
    expect(adds.flatMap((a) => ('chain' in a ? [a.chain] : []))).toEqual([
      { family: 'inet', table: 'guestwall_trace', name: 'prerouting', type: 'filter', hook: 'prerouting', prio: -400, policy: 'accept' },
      { family: 'inet', table: 'guestwall_trace', name: 'output', type: 'filter', hook: 'output', prio: -400, policy: 'accept' },
    ]);
    const rule = adds.flatMap((a) => ('rule' in a ? [a.rule] : []))[0]!;
    expect(rule.expr).toEqual([{ mangle: { key: { meta: { key: 'nftrace' } }, value: 1 } }]);
    expect(removeTraceDocument().nftables.slice(1)).toEqual([{ add: { table: { family: 'inet', name: 'guestwall_trace' } } }, { delete: { table: { family: 'inet', name: 'guestwall_trace' } } }]);
  });

  it('marks the packets between the two ends, as explain names them', () => {
    const rules = (from: string, to: string, q: { proto?: 'tcp' | 'udp' | 'icmp' | 'icmpv6'; port?: number } = {}) => {
      const r = traceSelectors(model, { from, to, ...q });
      if (!r.ok) return r.error;
      return r.value.map((s) => `${s.hook}: ${s.stmts.map(printStmt).join(' ')}`);
    };
    expect(rules('net', 'asterisk', { proto: 'udp', port: 5060 })).toEqual([
      'prerouting: iifname "eth0" meta nfproto ipv4 ip daddr 10.0.10.10 udp dport 5060',
      'prerouting: iifname "eth0" meta nfproto ipv6 ip6 daddr fd00:10::10 udp dport 5060',
    ]);
    expect(rules('lan', 'host', { proto: 'tcp', port: 22 })).toEqual([
      'prerouting: ip saddr 192.168.1.0/24 ip daddr { 203.0.113.10, 192.168.1.1, 10.0.10.1 } tcp dport 22',
      'prerouting: ip6 saddr fd00:1::/64 ip6 daddr { 2001:db8:1::10, fd00:1::1, fd00:10::1 } tcp dport 22',
    ]);
    expect(rules('host', 'mail', { proto: 'icmp' })).toEqual(['output: ip saddr { 203.0.113.10, 192.168.1.1, 10.0.10.1 } ip daddr 203.0.113.20 meta l4proto icmp']);
    expect(rules('net', '203.0.113.10:5060', { proto: 'udp' })).toEqual(['prerouting: iifname "eth0" meta nfproto ipv4 ip daddr 203.0.113.10 udp dport 5060']);
    expect(rules('nowhere', 'host')).toBe('--from nowhere: not a zone, guest, "host" or address of this policy');
    expect(rules('net', 'host', { proto: 'icmp', port: 5 })).toBe('--port needs --proto tcp or udp, not icmp');
  });
});
