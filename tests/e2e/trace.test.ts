// guestwall trace on a real kernel with real packets: a host namespace with the policy applied and
// a peer namespace that sends a SYN to an allowed and to a dropped port. The trace names each
// chain and rule with its YAML line, and the trace table is gone afterwards (time up or Ctrl-C).
// Needs `npm run build` (the CLI runs as a child, so Ctrl-C is a real SIGINT).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const skipReason = kernelTestUnavailable() ?? (existsSync('dist/src/cli/main.js') ? undefined : 'run npm run build first');
const POLICY = `version: 1

host:
  interfaces:
    eth0: { zone: net, addresses: [203.0.113.10/24] }

zones:
  net: {}

rules:
  - { from: net, to: host, service: ssh, action: accept }

policies:
  - { from: host, to: all, action: accept }
  - { from: all, to: all, action: drop }
`;

const host = namespaceName('gw-trace-h');
const peer = namespaceName('gw-trace-p');
const dir = mkdtempSync(join(tmpdir(), 'gw-trace-'));
const policy = join(dir, 'policy.yaml');
const state = join(dir, 'state');

const inNs = (ns: string, ...cmd: string[]) => execa('ip', ['netns', 'exec', ns, ...cmd], { reject: false });
const tables = async () => (await inNs(host, 'nft', 'list', 'tables')).stdout;

/** Start guestwall trace; resolves once it listens (its "following" line), with its output so far and its end. */
async function startTrace(...args: string[]) {
  const child: ChildProcess = spawn(process.execPath, ['bin/guestwall.js', 'trace', policy, '--netns', host, '--state-dir', state, '--from', 'net', '--to', 'host', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const until = Date.now() + 20_000;
  while (!out.stderr.includes('following') && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  if (!out.stderr.includes('following')) throw new Error(`guestwall trace did not start: ${out.stderr}`);
  return { child, out, exit };
}

/** A TCP SYN from the peer to the host's port (the answer does not matter: a RST, or nothing when dropped). */
const syn = (port: number) => inNs(peer, 'timeout', '1', 'bash', '-c', `echo > /dev/tcp/203.0.113.10/${port}`);

beforeAll(async () => {
  if (skipReason) return;
  await addNamespace(host);
  await addNamespace(peer);
  await execa('ip', ['link', 'add', 'eth0', 'netns', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer]);
  await execa('ip', ['-n', host, 'addr', 'add', '203.0.113.10/24', 'dev', 'eth0']);
  await execa('ip', ['-n', peer, 'addr', 'add', '203.0.113.99/24', 'dev', 'eth0']);
  for (const ns of [host, peer]) await execa('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  writeFileSync(policy, POLICY);
  const applied = await execa(process.execPath, ['bin/guestwall.js', 'apply', policy, '--netns', host, '--state-dir', state, '--no-network'], { reject: false });
  if (applied.exitCode !== 0) throw new Error(`apply failed: ${applied.stderr}`);
}, 60_000);

afterAll(async () => {
  await deleteNamespace(host);
  await deleteNamespace(peer);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skipReason !== undefined)(`guestwall trace with real packets${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('prints each packet with the chains and rules it passed and their YAML lines, and removes its table when the time is up', async () => {
    const t = await startTrace('--proto', 'tcp', '--seconds', '4');
    expect(await tables()).toContain('table inet guestwall_trace');
    await syn(22);
    await syn(23);
    expect(await t.exit).toBe(0);
    const out = t.out.stdout;
    expect(out).toMatch(/^packet \w+: tcp 203\.0\.113\.99 -> 203\.0\.113\.10 port 22 in on eth0$/m);
    expect(out).toMatch(/^ {2}inet input: iifname vmap @zone_in -> goto net_to_host {2}\[.* \(builtin:zone-in\)\]$/m);
    expect(out).toMatch(/^ {2}inet net_to_host: tcp dport 22 counter accept -> accept {2}\[rule .*\(policy\.yaml:11\)\]$/m);
    expect(out).toMatch(/^packet \w+: tcp 203\.0\.113\.99 -> 203\.0\.113\.10 port 23 in on eth0$/m);
    expect(out).toMatch(/^ {2}inet net_to_host: counter drop -> drop {2}\[policy .*\(policy\.yaml:15\)\]$/m);
    expect(t.out.stderr).toMatch(/guestwall: 2 packets followed \(\d+ events\); the trace table is removed/);
    expect(await tables()).not.toContain('guestwall_trace');
    expect(await tables()).toContain('table inet guestwall');
  }, 60_000);

  it('stops on Ctrl-C (SIGINT) and still removes its table; packets it does not select are not followed', async () => {
    const t = await startTrace('--proto', 'udp', '--seconds', '120');
    await syn(22);
    t.child.kill('SIGINT');
    expect(await t.exit).toBe(0);
    expect(t.out.stdout).toBe('');
    expect(t.out.stderr).toContain('guestwall: 0 packets followed');
    expect(await tables()).not.toContain('guestwall_trace');
  }, 60_000);
});
