// The homelab example end to end, with real packets: a host built in network namespaces by
// guestwall's own ruleset and network setup, its guests attached the way their hypervisors
// attach them (asterisk as a real LXC container started from guestwall's rendered config, when
// lxc-execute and busybox-static are installed), and the whole reachability matrix probed with
// TCP, UDP and ICMP over IPv4 and IPv6. What each packet should do comes from the policy
// (tests/support/policy-oracle.ts), never from the compiled ruleset.
//
// The matrix runs twice for traffic between guests on one bridge: with bridge-nf-call-iptables
// on (the default in every namespace here: br_netfilter is built into this kernel, and Docker
// loads it elsewhere) and off, so bridge isolation holds without the inet hooks.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import type { GuestModel, HostModel } from '../../src/model/host.js';
import { kernelTestUnavailable } from '../support/kernel.js';
import { type Lab, type LabSetup, buildLab, disposeAllLabs } from '../support/lab.js';
import { type ProbeResult, matrixProbes, mismatch, runProbes } from '../support/matrix-probes.js';

const POLICY = 'policies/homelab-dmz.yaml';
const BIN = 'bin/guestwall.js';
const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));
const skipReason = kernelTestUnavailable() ?? (onPath('python3') ? undefined : 'needs python3 on PATH to send and receive packets');
const lxcReason = !onPath('lxc-execute') ? 'lxc-execute is not installed (Debian package lxc)' : !existsSync('/bin/busybox') ? 'busybox is not installed (Debian package busybox-static)' : undefined;

function model(): HostModel {
  const r = compilePolicyText(POLICY, readFileSync(POLICY, 'utf8'));
  if (!r.model) throw new Error(`${POLICY} does not compile`);
  return r.model;
}

const setup: LabSetup = {
  async applyHost(ns) {
    const r = await execa('node', [BIN, 'apply', POLICY, '--netns', ns], { reject: false });
    if (r.exitCode !== 0) throw new Error(`guestwall apply --netns ${ns} failed (${r.exitCode}):\n${r.stderr}`);
  },
  async portUp(ns, ifname) {
    await execa('ip', ['netns', 'exec', ns, 'sh', PORT_UP, ifname]);
  },
  lxcConfig(g: GuestModel) {
    if (lxcReason !== undefined || g.name !== 'asterisk') return undefined;
    return readFileSync(join(OUT, 'guests', g.name, 'lxc.conf'), 'utf8');
  },
};

let OUT = '';
let PORT_UP = '';

describe.skipIf(skipReason !== undefined)(`the homelab example with real packets${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let lab: Lab;
  let python = 'python3';
  beforeAll(async () => {
    python = (await execa('python3', ['-c', 'import sys; print(sys.executable)'])).stdout.trim();
    OUT = (await execa('mktemp', ['-d'])).stdout.trim();
    const c = await execa('node', [BIN, 'compile', POLICY, '--out', OUT], { reject: false });
    if (c.exitCode !== 0) throw new Error(`guestwall compile --out failed:\n${c.stderr}`);
    PORT_UP = join(OUT, 'network', 'etc', 'guestwall', 'hooks', 'port-up');
    lab = await buildLab(model(), setup, python);
  }, 120_000);
  afterAll(async () => {
    await disposeAllLabs();
    if (OUT !== '') await execa('rm', ['-rf', OUT]);
  });

  const report = (results: ProbeResult[]) => {
    const bad = results.map(mismatch).filter((m): m is string => m !== undefined);
    const accepted = results.filter((r) => r.delivered).length;
    console.log(`homelab matrix: ${results.length} packets, ${accepted} delivered, ${results.length - accepted} stopped, ${bad.length} against the policy`);
    return bad;
  };

  it('runs asterisk as a real LXC container from the rendered config' + (lxcReason ? ` (skipped: ${lxcReason})` : ''), async () => {
    if (lxcReason) return;
    const ep = lab.endpoints.find((e) => e.name === 'asterisk')!;
    expect(ep.ns).toMatch(/-lxc-/);
    // LXC put the host side under the name guestwall chose, on the bridge the policy names.
    const link = JSON.parse(await lab.inHost(['ip', '-j', 'link', 'show', 'gw-asterisk'])) as { master?: string }[];
    expect(link[0]?.master).toBe('br-dmz');
  });

  it('every flow of the matrix does what the policy says, IPv4 and IPv6', async () => {
    const probes = matrixProbes(lab);
    expect(probes.length).toBeGreaterThan(300);
    // Both outcomes are exercised: a matrix where everything passes (or nothing does) proves little.
    expect(probes.some((p) => p.expect.action === 'accept')).toBe(true);
    expect(probes.some((p) => p.expect.action !== 'accept')).toBe(true);
    const results = await runProbes(lab, probes);
    expect(report(results)).toEqual([]);
  }, 300_000);

  it('guests on one bridge are isolated as the policy says without br_netfilter too', async () => {
    await lab.inHost(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0']);
    try {
      const probes = matrixProbes(lab).filter((p) => p.from.bridge !== undefined && p.from.bridge === p.to.bridge && p.from.name !== p.to.name);
      expect(probes.length).toBeGreaterThan(20);
      const results = await runProbes(lab, probes);
      expect(report(results)).toEqual([]);
    } finally {
      await lab.inHost(['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']);
    }
  }, 300_000);
});
