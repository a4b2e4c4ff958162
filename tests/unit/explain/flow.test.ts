// explain and matrix: the questions users ask, answered from the compiled ruleset.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { explainFlow } from '../../../src/explain/flow.js';
import { formatMatrix, reachabilityMatrix } from '../../../src/explain/matrix.js';
import { compileExample } from '../../support/compile.js';
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
    expect(cell('net', 'asterisk').exceptions).toEqual([{ label: 'sip,rtp', verdict: 'accept', forwarded: true }]);
    expect(cell('net', 'lan').exceptions).toEqual([]);
  });
});
