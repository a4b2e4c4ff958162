// guestwall doctor against the real kernel, inside a throwaway network namespace (`gw-doc-*`,
// deleted even when a test fails): it finds a foreign table whose forward policy drops, reads the
// namespace's own sysctls and links, and the kernel feature probes give a definite answer.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostFinding, kernelFeatures } from '../../src/apply/doctor.js';
import { realSystem } from '../../src/apply/system.js';
import { run } from '../../src/cli/main.js';
import { memoryIo } from '../support/io.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const skipReason = kernelTestUnavailable();
const skipped = skipReason ? ` (skipped: ${skipReason})` : '';

/** Somebody else's table that drops forwarded traffic by policy, like Docker's FORWARD chain. */
const FOREIGN = `table ip dockerish {
	chain forward {
		type filter hook forward priority 0; policy drop;
		iifname "docker0" accept
	}
}
`;

const POLICY = `version: 1
host:
  interfaces:
    gwd-missing0: { zone: net }
zones:
  net: {}
  dmz: { networks: [10.0.10.0/24] }
bridges:
  br-gwd: { zone: dmz, addresses: [10.0.10.1/24] }
guests:
  web:
    platform: lxc
    interfaces:
      - { mode: bridged, bridge: br-gwd, name: gwd-web, addresses: [10.0.10.10] }
policies:
  - { from: all, to: all, action: drop }
`;

describe.skipIf(skipReason !== undefined)(`guestwall doctor in a network namespace${skipped}`, () => {
  const ns = namespaceName('gw-doc');
  let dir = '';
  const inNs = (cmd: string, args: string[]) => execa('ip', ['netns', 'exec', ns, cmd, ...args]);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-doc-'));
    await addNamespace(ns);
    const foreign = join(dir, 'foreign.nft');
    await writeFile(foreign, FOREIGN);
    await inNs('nft', ['-f', foreign]);
    await inNs('ip', ['link', 'add', 'br-gwd', 'type', 'bridge']);
  });
  afterAll(async () => {
    await deleteNamespace(ns);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function doctorJson(args: string[]): Promise<{ code: number; findings: HostFinding[] }> {
    const m = memoryIo({ 'policy.yaml': POLICY });
    const code = await run(['doctor', '--netns', ns, '--json', ...args], m.io);
    expect(m.stderr()).toBe('');
    return { code, findings: JSON.parse(m.stdout()) as HostFinding[] };
  }

  it('reports the foreign table whose forward policy drops, and changes nothing', async () => {
    const before = (await inNs('nft', ['list', 'ruleset'])).stdout;
    const { code, findings } = await doctorJson([]);
    const drops = findings.filter((f) => f.id === 'other-table-drop');
    expect(drops).toHaveLength(1);
    expect(drops[0]).toMatchObject({ status: 'warn' });
    expect(drops[0]!.message).toContain('table ip dockerish, chain forward (hook forward, priority 0) has policy drop');
    expect(drops[0]!.fix).toContain(`ip netns exec ${ns} nft 'insert rule ip dockerish forward iifname "<bridge>" accept'`);
    expect(code).toBe(0);
    expect((await inNs('nft', ['list', 'ruleset'])).stdout).toBe(before);
  });

  it("reads the namespace's own sysctls and links: forwarding is off in a fresh namespace, whatever the host says", async () => {
    const { code, findings } = await doctorJson(['policy.yaml']);
    const byId = (id: string) => findings.filter((f) => f.id === id).map((f) => `${f.status} ${f.message}`);
    expect(byId('ip-forward')).toEqual(['fail IPv4 forwarding is off (net.ipv4.ip_forward=0): the host does not route for its guests and bridges']);
    expect(byId('interface-missing')).toEqual(['warn host interface gwd-missing0 (zone net, policy.yaml:4) does not exist: rules for it match nothing']);
    expect(byId('interfaces')).toEqual(['ok host interfaces and bridges present: br-gwd']);
    expect(byId('guest-interfaces')).toEqual(['info guest interfaces not present: gwd-web (web); fine while those guests are down']);
    expect(code).toBe(1);
  });

  it('gets a definite yes or no from every kernel feature probe, and doctor reports the same', async () => {
    const features = await kernelFeatures(realSystem(ns));
    // What this kernel has, for the test log (CI's Debian kernels differ from the dev machines).
    console.info(`kernel features here: ${Object.entries(features).map(([f, p]) => `${f}=${p.available ? 'yes' : `no (${p.detail})`}`).join(', ')}`);
    for (const p of Object.values(features)) expect(typeof p.available).toBe('boolean');
    const { findings } = await doctorJson([]);
    for (const [f, p] of Object.entries(features)) {
      expect(findings.find((x) => x.id === `kernel-${f}`)?.status).toBe(p.available ? 'ok' : 'warn');
    }
    expect((await inNs('nft', ['list', 'tables'])).stdout.trim()).toBe('table ip dockerish');
  });
});
