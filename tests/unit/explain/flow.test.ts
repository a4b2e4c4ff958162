// explain and matrix: the questions users ask, answered from the compiled ruleset.
import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { explainFlow } from '../../../src/explain/flow.js';
import { formatMatrix, reachabilityMatrix } from '../../../src/explain/matrix.js';
import { expectGolden } from '../../support/golden.js';
import { memoryIo } from '../../support/io.js';

const homelabText = readFileSync('policies/homelab-dmz.yaml', 'utf8');
const homelab = compilePolicyText('policies/homelab-dmz.yaml', homelabText);
const ask = (from: string, to: string, proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6', port?: number) => {
  const r = explainFlow(homelab.model!, homelab.compiled!.ruleset, { from, to, proto, ...(port !== undefined ? { port } : {}) });
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

describe('explain', () => {
  it('follows a port forward: DNAT in prerouting, then the accept for DNATed connections', () => {
    const e = ask('net', '203.0.113.10:5060', 'udp');
    expect(e.nat?.translation).toMatchObject({ kind: 'dnat', addr: '10.0.10.10' });
    expect(e.path).toBe('forward');
    expect(e.evaluation.verdict).toBe('accept');
    expect(e.evaluation.decidedBy).toMatchObject({ id: 'forwards[0]', line: 90 });
    expect(e.story).toContain('prerouting: forward 1: net -> asterisk (homelab-dmz.yaml:90) sends it to 10.0.10.10 port 5060');
  });

  it('says the internet cannot reach a DMZ guest by its private address, and which policy drops it', () => {
    const e = ask('net', 'asterisk', 'udp', 5060);
    expect(e.evaluation.verdict).toBe('drop');
    expect(e.evaluation.decidedBy).toMatchObject({ id: 'policies[3]', line: 68 });
  });

  it('answers "is SSH from the internet really closed?" and "can the LAN reach the Minecraft server?"', () => {
    expect(ask('net', 'host', 'tcp', 22).evaluation.verdict).toBe('drop');
    expect(ask('lan', 'minecraft', 'tcp', 25565).evaluation.verdict).toBe('accept');
    expect(ask('lan', '203.0.113.10:25565', 'tcp').evaluation.verdict).toBe('accept'); // hairpin
    expect(ask('dmz', 'desktop', 'tcp', 445).evaluation.verdict).toBe('reject');
  });

  it('handles IPv6 and the host as a source', () => {
    expect(ask('net', '2001:db8:10::20', 'tcp', 993).evaluation.verdict).toBe('accept');
    expect(ask('host', 'net', 'tcp', 443).path).toBe('output');
  });

  it('refuses questions it cannot answer, with the reason', () => {
    expect(explainFlow(homelab.model!, homelab.compiled!.ruleset, { from: 'net', to: 'nowhere', proto: 'tcp', port: 1 })).toEqual({
      ok: false, error: `--to 'nowhere' is not a zone, guest, interface, "host" or address`,
    });
    expect(explainFlow(homelab.model!, homelab.compiled!.ruleset, { from: 'net', to: 'host', proto: 'tcp' })).toEqual({ ok: false, error: '--port is needed for tcp' });
  });

  it('CLI: exit 0 on accept, 1 on drop, 2 on a wrong question; --json is stable', async () => {
    const files = { 'h.yaml': homelabText };
    expect(await run(['explain', 'h.yaml', '--from', 'lan', '--to', 'host', '--port', '22'], memoryIo(files).io)).toBe(0);
    expect(await run(['explain', 'h.yaml', '--from', 'net', '--to', 'host', '--port', '22'], memoryIo(files).io)).toBe(1);
    expect(await run(['explain', 'h.yaml', '--from', 'net', '--to', 'nowhere', '--port', '22'], memoryIo(files).io)).toBe(2);
    const m = memoryIo(files);
    await run(['explain', 'h.yaml', '--from', 'net', '--to', '203.0.113.10:64738', '--proto', 'udp', '--json'], m.io);
    const j = JSON.parse(m.stdout()) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['packet', 'from', 'to', 'nat', 'path', 'verdict', 'decidedBy', 'steps', 'notes']);
    expect(j).toMatchObject({ from: 'net', to: 'dmz', path: 'forward', verdict: 'accept', nat: { kind: 'dnat', addr: '10.0.10.11' } });
  });
});

describe('matrix', () => {
  for (const file of readdirSync('policies').filter((f) => f.endsWith('.yaml')).sort()) {
    it(`${file}: the reviewed zone-to-zone table`, () => {
      const r = compilePolicyText(`policies/${file}`, readFileSync(`policies/${file}`, 'utf8'));
      expectGolden(`tests/golden/${basename(file, '.yaml')}.matrix.txt`, `${formatMatrix(reachabilityMatrix(r.model!, r.compiled!.ruleset))}\n`);
    });
  }

  it('homelab: LAN reaches everything, DMZ reaches the internet but not the LAN, the internet only the forwarded services', () => {
    const m = reachabilityMatrix(homelab.model!, homelab.compiled!.ruleset);
    const cell = (f: string, t: string) => m.cells.find((c) => c.from === f && c.to === t)!;
    for (const to of m.cols) expect(cell('lan', to).verdict).toBe('accept');
    expect(cell('dmz', 'net').verdict).toBe('accept');
    expect(cell('dmz', 'lan').verdict).toBe('reject');
    for (const to of ['lan', 'dmz', 'host', 'asterisk']) expect(cell('net', to).verdict).toBe('drop');
    expect(cell('net', 'asterisk').exceptions).toEqual([{ label: 'sip', verdict: 'accept', forwarded: true }, { label: 'rtp', verdict: 'accept', forwarded: true }]);
    expect(cell('net', 'lan').exceptions).toEqual([]);
  });
});

// A policy written to trip the matrix: a service that passes in part (submission and imaps are not
// opened), a service named twice, a range with an edge inside it, and ICMP next to ports.
const exactText = `version: 1
host:
  interfaces:
    eth0: { zone: net, addresses: [203.0.113.10/24] }
zones:
  net: {}
  dmz: { networks: [10.0.10.0/24, 203.0.113.16/28] }
bridges:
  br-dmz: { zone: dmz, addresses: [10.0.10.1/24] }
services:
  mailall: { tcp: [25, 587, 993] }
  games: { udp: ["27000-27100"], icmp: [echo-request] }
guests:
  mail:
    platform: xen
    zone: dmz
    interfaces:
      - { mode: routed, mac: "00:16:3e:00:00:14", addresses: [203.0.113.20] }
  game:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-dmz, mac: "02:00:0a:00:0a:0d", addresses: [10.0.10.13] }
policies:
  - { from: host, to: all, action: accept }
  - { from: all, to: all, action: drop }
rules:
  - { from: mail, to: net, proto: tcp, ports: 25, action: accept }
  - { from: net, to: mail, service: [smtp, smtp, mailall], action: accept }
  - { from: mail, to: net, service: mailall, action: drop }
  - { from: net, to: game, proto: udp, ports: "27050-27060", action: reject }
  - { from: net, to: game, service: games, action: accept }
forwards:
  - { from: net, to: game, service: [minecraft] }
`;

describe('the exact matrix', () => {
  const r = compilePolicyText('exact.yaml', exactText);
  const m = reachabilityMatrix(r.model!, r.compiled!.ruleset);
  const cell = (f: string, t: string) => m.cells.find((c) => c.from === f && c.to === t)!;
  const verdictAt = (from: string, to: string, proto: 'tcp' | 'udp', port: number) => {
    const e = explainFlow(r.model!, r.compiled!.ruleset, { from, to, proto, port });
    if (!e.ok) throw new Error(e.error);
    return e.value.evaluation.verdict;
  };

  it('a service passes only when every port passes, and says which parts do when only some do', () => {
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    // Explain is the witness: 25 passes, 587 and 993 do not.
    expect([25, 587, 993].map((p) => verdictAt('mail', 'net', 'tcp', p))).toEqual(['accept', 'drop', 'drop']);
    expect(cell('mail', 'net').exceptions).toEqual([
      { label: 'tcp/25', verdict: 'accept' },
      { label: 'smtp', verdict: 'accept' },
      { label: 'mailall', verdict: 'partial', parts: [{ what: 'tcp/25', verdict: 'accept' }, { what: 'tcp/587', verdict: 'drop' }, { what: 'tcp/993', verdict: 'drop' }] },
    ]);
    expect(formatMatrix(m)).toContain('~mailall(+tcp/25 -tcp/587 -tcp/993)');
  });

  it('lists a service once per cell, however often rules name it', () => {
    const labels = cell('net', 'mail').exceptions.map((e) => e.label);
    expect(labels).toEqual(['tcp/25', 'smtp', 'mailall']);
  });

  it('cuts a range at every edge inside it, and judges ICMP next to ports', () => {
    const games = cell('net', 'game').exceptions.find((e) => e.label === 'games')!;
    expect(games).toEqual({
      label: 'games', verdict: 'partial',
      parts: [
        { what: 'udp/27000-27049', verdict: 'accept' }, { what: 'udp/27050-27060', verdict: 'reject' },
        { what: 'udp/27061-27100', verdict: 'accept' }, { what: 'icmp/echo-request', verdict: 'accept' },
      ],
    });
    expect(verdictAt('net', 'game', 'udp', 27055)).toBe('reject');
  });

  it('shows forwards in the host column too, with the guest they go to', () => {
    expect(cell('net', 'host').exceptions).toEqual([{ label: 'minecraft', verdict: 'accept', forwarded: true, forwardedTo: 'game' }]);
    expect(cell('net', 'game').exceptions).toContainEqual({ label: 'minecraft', verdict: 'accept', forwarded: true });
  });

  it('prints a legend line for every symbol it uses', () => {
    const text = formatMatrix(m);
    for (const sym of ['+svc', '-svc', '!svc', '~svc', '(fwd)', '(fwd→guest)', '?', 'n/a']) expect(text).toContain(sym);
  });

  it('--family 6 on an IPv4-only policy says why every cell is ?', () => {
    const six = reachabilityMatrix(r.model!, r.compiled!.ruleset, 6);
    expect(six.cells.every((c) => c.verdict !== undefined || c.why !== undefined)).toBe(true);
    expect(six.cells.find((c) => c.from === 'dmz' && c.to === 'host')).toMatchObject({ why: expect.stringContaining('no IPv6 address') });
    expect(formatMatrix(six)).toContain('Note: the policy gives no IPv6 address or network to the host, its zones or its guests');
  });
});
