// explain and matrix: the questions users ask, answered from the compiled ruleset.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { type FlowQuery, explainFlow, flowEndpoints } from '../../../src/explain/flow.js';
import { formatMatrix, reachabilityMatrix } from '../../../src/explain/matrix.js';
import { compileExample } from '../../support/compile.js';
import { expectGolden } from '../../support/golden.js';
import { memoryIo } from '../../support/io.js';

const homelabText = readFileSync('policies/homelab-dmz.yaml', 'utf8');
const homelab = compilePolicyText('policies/homelab-dmz.yaml', homelabText);
const ask = (from: string, to: string, proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6', port?: number, more: Partial<FlowQuery> = {}) => {
  const r = explainFlow(homelab.model!, homelab.compiled!.ruleset, { from, to, proto, ...(port !== undefined ? { port } : {}), ...more });
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

describe('explain', () => {
  it('names the conntrack helper a connection gets with its first packet, and where the policy asks for it', () => {
    const c = compilePolicyText('helper.yaml', homelabText.replace(/\npolicies:/, '\nhelpers:\n  - { helper: sip, from: net, to: dmz }\npolicies:'));
    const r = explainFlow(c.model!, c.compiled!.ruleset, { from: 'net', to: '203.0.113.10:5060', proto: 'udp' });
    if (!r.ok) throw new Error(r.error);
    const line = r.value.story.find((l) => l.includes('ct helper set'));
    expect(line).toMatch(/^ {2}dstnat: ct helper set "sip_udp" {2}\[helper 1: sip \(helper\.yaml:\d+\)\]$/);
    // Not to a port no helper watches.
    const other = explainFlow(c.model!, c.compiled!.ruleset, { from: 'net', to: 'asterisk', proto: 'tcp', port: 443, direct: true });
    expect(other.ok && other.value.story.some((l) => l.includes('ct helper'))).toBe(false);
  });

  it('follows a port forward: DNAT in prerouting, then the accept for DNATed connections', () => {
    const e = ask('net', '203.0.113.10:5060', 'udp');
    expect(e.nat?.translation).toMatchObject({ kind: 'dnat', addr: '10.0.10.10' });
    expect(e.path).toBe('forward');
    expect(e.evaluation.verdict).toBe('accept');
    expect(e.evaluation.decidedBy).toMatchObject({ id: 'forwards[0]', line: 90 });
    expect(e.story).toContain('prerouting: forward 1: net -> asterisk (homelab-dmz.yaml:90) sends it to 10.0.10.10 port 5060');
  });

  it('says the internet cannot reach a DMZ guest by its private address, and which policy drops it (--direct)', () => {
    const e = ask('net', 'asterisk', 'udp', 5060, { direct: true });
    expect(e.evaluation.verdict).toBe('drop');
    expect(e.evaluation.decidedBy).toMatchObject({ id: 'policies[3]', line: 68 });
  });

  it('--to a guest a forward publishes to the sender follows the forward, and says so', () => {
    const e = ask('net', 'asterisk', 'udp', 5060);
    expect(e.forward).toMatchObject({ addressed: '203.0.113.10', port: 5060 });
    expect(e.packet.daddr).toBe('203.0.113.10');
    expect(e.nat?.translation).toMatchObject({ kind: 'dnat', addr: '10.0.10.10' });
    expect(e.evaluation.verdict).toBe('accept');
    expect(e.story.join('\n')).toContain("guest 'asterisk' is published to zone net by forward 1 (homelab-dmz.yaml:90): clients address 203.0.113.10:5060");
    // A port the forward does not publish, and a zone it is not published to, stay direct.
    expect(ask('net', 'asterisk', 'tcp', 22).forward).toBeUndefined();
    expect(ask('lan', 'asterisk', 'udp', 5060).forward).toBeUndefined();
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

  it('takes every port name the policy defines, guest ports included', () => {
    for (const name of ['gw-asterisk', 'gw-desktop', 'gw-mail', 'eth1', 'br-dmz', 'eth0']) {
      const r = explainFlow(homelab.model!, homelab.compiled!.ruleset, { from: name, to: 'net', proto: 'udp', port: 53 });
      expect(r.ok ? 'ok' : r.error).toBe('ok');
    }
    expect(ask('gw-asterisk', 'net', 'udp', 53).story[0]).toContain('arriving from zone dmz on br-dmz (port gw-asterisk)');
    expect(flowEndpoints(homelab.model!)).toEqual(expect.arrayContaining(['gw-asterisk', 'gw-mail', 'asterisk', 'dmz', 'host', 'eth1']));
  });

  it('a spoofed source on a bridged guest port is dropped at bridge prerouting, naming the guest declaration and its line', () => {
    const honest = ask('gw-asterisk', 'net', 'udp', 53);
    expect(honest.evaluation.verdict).toBe('accept');
    const e = ask('gw-asterisk', 'net', 'udp', 53, { src: '10.0.10.99' });
    expect(e.evaluation.verdict).toBe('drop');
    expect(e.evaluation.decidedBy?.id).toBe('guests:spoof-ipv4');
    expect(e.declaration).toMatchObject({ id: 'guests.asterisk.interfaces[0]', line: 39 });
    expect(e.story.join('\n')).toContain('because of guest asterisk interface gw-asterisk declares mac 02:00:0a:00:0a:0a, addresses 10.0.10.10, fd00:10::10 (homelab-dmz.yaml:39)');
    // Another guest's address, to the host and to a guest on the same bridge: the same check.
    expect(ask('asterisk', 'host', 'udp', 53, { src: '10.0.10.11' }).evaluation.decidedBy?.id).toBe('guests:spoof-ipv4');
    expect(ask('asterisk', 'mumble', 'udp', 64738, { src: '10.0.10.12' }).evaluation.decidedBy?.id).toBe('guests:spoof-ipv4');
    expect(ask('asterisk', 'net', 'udp', 53, { src: 'fd00:10::99' }).evaluation.decidedBy?.id).toBe('guests:spoof-ipv6');
    const mac = ask('desktop', 'net', 'tcp', 443, { srcMac: '52:54:00:00:01:99' });
    expect(mac.evaluation.decidedBy?.id).toBe('guests:spoof-mac');
    expect(mac.declaration?.line).toBe(62);
  });

  it('a spoofed source on a routed guest port fails the fib check against the routes the policy installs, and says what it assumed', () => {
    expect(ask('mail', 'net', 'tcp', 80).evaluation.verdict).toBe('accept');
    for (const src of ['203.0.113.21', '10.0.10.10', '198.51.100.7']) {
      const e = ask('gw-mail', 'net', 'tcp', 80, { src });
      expect(e.evaluation.decidedBy?.id).toBe('guests:routed-antispoof');
      expect(e.declaration).toMatchObject({ id: 'guests.mail.interfaces[0]', line: 58 });
    }
    const e = ask('mail', 'net', 'tcp', 80, { src: '203.0.113.21' });
    expect(e.story).toContain("fib: the route back to 203.0.113.21 is eth0's subnet via eth0, not gw-mail (assumed the host's routes are the ones the policy makes (connected subnets, routed guests' host routes, a default route via eth0); live routes may differ)");
    expect(ask('mail', 'net', 'tcp', 80, { srcMac: '00:16:3e:00:00:99' }).evaluation.decidedBy?.id).toBe('guests:spoof-mac');
  });

  it("a Xen HVM guest: its own sources pass on the PV vif and the -emu tap alike, though the tap holds the preferred route; spoofed ones fail on both", () => {
    const x = compilePolicyText('policies/routed-xen.yaml', readFileSync('policies/routed-xen.yaml', 'utf8'));
    const q = (from: string, src?: string) => {
      const r = explainFlow(x.model!, x.compiled!.ruleset, { from, to: 'net', proto: 'udp', port: 53, ...(src ? { src } : {}) });
      if (!r.ok) throw new Error(r.error);
      return r.value;
    };
    for (const port of ['xen-www2', 'xen-www2-emu']) {
      expect(q(port).evaluation.verdict, port).toBe('accept');
      expect(q(port, '2001:db8:100:8::a').evaluation.verdict, port).toBe('accept');
      // Another guest's address, an address nobody has, and their IPv6 counterparts.
      for (const spoofed of ['198.51.100.9', '198.51.100.12', '2001:db8:100:8::9', '2001:db8:100:8::c']) {
        const e = q(port, spoofed);
        expect(e.evaluation.decidedBy?.id, `${port} ${spoofed}`).toBe('guests.www2.interfaces[0]:hvm-fib');
        expect(e.declaration?.line, `${port} ${spoofed}`).toBe(33);
      }
    }
    const vif = q('xen-www2');
    expect(vif.story.join('\n')).toContain('via xen-www2-emu, the other port of the same Xen HVM guest (xen-www2 and xen-www2-emu are checked as one)');
    expect(q('xen-www2', '198.51.100.9').story.join('\n')).toContain("guest www1's route via xen-www1, not xen-www2 or xen-www2-emu");
    // Any other routed guest keeps the plain check: its own port only.
    expect(q('xen-www1').evaluation.verdict).toBe('accept');
    expect(q('xen-www1', '198.51.100.10').evaluation.decidedBy?.id).toBe('guests:routed-antispoof');
  });

  it('rejects a --src of the wrong kind and a malformed --src-mac with a message', () => {
    const r = (more: Partial<FlowQuery>) => explainFlow(homelab.model!, homelab.compiled!.ruleset, { from: 'asterisk', to: 'net', proto: 'udp', port: 53, ...more });
    expect(r({ src: 'nope' })).toEqual({ ok: false, error: "--src 'nope' is not an address" });
    expect(r({ srcMac: '02:00' })).toMatchObject({ ok: false, error: expect.stringContaining('is not a MAC address') });
  });

  it('refuses questions it cannot answer, with the reason', () => {
    expect(explainFlow(homelab.model!, homelab.compiled!.ruleset, { from: 'net', to: 'nowhere', proto: 'tcp', port: 1 })).toEqual({
      ok: false, error: `--to 'nowhere' is not a zone, guest, guest port, interface, "host" or address (one of: ${flowEndpoints(homelab.model!).join(', ')})`,
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
    // A fleet example: one table per host.
    for (const { name, result: r } of compileExample(file)) {
      it(`${name}: the reviewed zone-to-zone table`, () => {
        expectGolden(`tests/golden/${name}.matrix.txt`, `${formatMatrix(reachabilityMatrix(r.model!, r.compiled!.ruleset))}\n`);
      });
    }
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
