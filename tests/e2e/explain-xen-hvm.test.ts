// explain against the kernel on a Xen HVM guest's two ports: the PV vif (xen-www2) and the
// emulated NIC's tap (xen-www2-emu) both carry the guest's addresses, with the tap's host routes
// preferred (metric 1 against 2, as Xen's vif-route does), and the ruleset's
// `fib saddr . iif oif missing drop` checks every packet from a routed port against those routes.
// Built from policies/routed-xen.yaml with guestwall's own apply (--netns) and port-up hook, each
// port's far side a namespace holding the guest's addresses; packets go to a machine on the
// uplink (web -> net is accepted), with the guest's own sources and spoofed ones, IPv4 and IPv6.
// What each packet should do is what explain says (--from PORT --src ADDRESS).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { explainFlow } from '../../src/explain/flow.js';
import { kernelTestUnavailable } from '../support/kernel.js';
import type { Endpoint, Lab } from '../support/lab.js';
import { type Probe, mismatch, runProbes } from '../support/matrix-probes.js';
import { Agent, ipBatch, topologyId } from '../support/topology.js';

const POLICY = 'policies/routed-xen.yaml';
const BIN = 'bin/guestwall.js';
const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));
const skipReason = kernelTestUnavailable() ?? (onPath('python3') ? undefined : 'needs python3 on PATH to send and receive packets');

describe.skipIf(skipReason !== undefined)(`explain and the kernel agree on a Xen HVM guest's vif and -emu tap${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const id = topologyId();
  const host = `gw-hvm-${id}-h`;
  const wan = `gw-hvm-${id}-w`;
  const vif = `gw-hvm-${id}-v`;
  const emu = `gw-hvm-${id}-e`;
  const namespaces = [host, wan, vif, emu];
  const agents = new Map<string, Promise<Agent>>();
  let out = '';
  let lab: Lab;

  beforeAll(async () => {
    const python = (await execa('python3', ['-c', 'import sys; print(sys.executable)'])).stdout.trim();
    out = (await execa('mktemp', ['-d'])).stdout.trim();
    const c = await execa('node', [BIN, 'compile', POLICY, '--out', out], { reject: false });
    if (c.exitCode !== 0) throw new Error(`guestwall compile --out failed:\n${c.stderr}`);
    const quiet = 'sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0';
    await ipBatch(namespaces.flatMap((ns) => [`netns add ${ns}`, `netns exec ${ns} ${quiet}`]));
    await ipBatch(['link set lo up', `link add eth0 type veth peer name up0 netns ${wan}`, 'address add 198.51.100.2/29 dev eth0', 'address add 2001:db8:100::2/64 dev eth0 nodad', 'link set eth0 up',
      'route add default via 198.51.100.1 dev eth0', 'route add ::/0 via 2001:db8:100::1 dev eth0'], host);
    await ipBatch(['link set lo up', 'address add 198.51.100.1/29 dev up0', 'address add 2001:db8:100::1/64 dev up0 nodad', 'link set up0 up',
      'route add 198.51.100.8/29 via 198.51.100.2 dev up0', 'route add 2001:db8:100:8::/64 via 2001:db8:100::2 dev up0'], wan);
    const a = await execa('node', [BIN, 'apply', POLICY, '--netns', host], { reject: false });
    if (a.exitCode !== 0) throw new Error(`guestwall apply --netns failed (${a.exitCode}):\n${a.stderr}`);
    // The guest's two NICs, each with its addresses on the far side, then guestwall's port-up hook for each port.
    for (const [port, ns] of [['xen-www2', vif], ['xen-www2-emu', emu]] as const) {
      await ipBatch([`link add ${port} type veth peer name eth0 netns ${ns}`, `link set ${port} up`], host);
      await ipBatch(['link set lo up', 'link set eth0 address 00:16:3e:64:08:0a', 'address add 198.51.100.10/32 dev eth0', 'address add 2001:db8:100:8::a/128 dev eth0 nodad', 'link set eth0 up',
        'route add 169.254.0.1/32 dev eth0', 'route add default via 169.254.0.1 dev eth0', 'route add ::/0 via fe80::1 dev eth0'], ns);
      await execa('ip', ['netns', 'exec', host, 'sh', join(out, 'network', 'etc', 'guestwall', 'hooks', 'port-up'), port]);
    }
    lab = {
      agent(ns: string) {
        if (!namespaces.includes(ns)) throw new Error(`refusing to start an agent outside this test (${ns})`);
        let x = agents.get(ns);
        if (x === undefined) agents.set(ns, (x = Agent.start(ns, python)));
        return x;
      },
    } as unknown as Lab;
  }, 120_000);

  afterAll(async () => {
    for (const x of agents.values()) await x.then((g) => g.stop(), () => undefined);
    await execa('ip', ['-force', '-batch', '-'], { input: `${namespaces.map((ns) => `netns delete ${ns}`).join('\n')}\n`, reject: false });
    if (out !== '') await execa('rm', ['-rf', out]);
  });

  it('the -emu tap holds the preferred route: own sources pass there and fail the fib check on the vif; spoofed ones fail on both', async () => {
    const r = compilePolicyText(POLICY, readFileSync(POLICY, 'utf8'));
    const internet: Endpoint = { name: 'uplink', ns: wan, zone: 'net', v4: '198.51.100.1', v6: '2001:db8:100::1' };
    const probes: Probe[] = [];
    let port = 7000;
    for (const [ifname, ns] of [['xen-www2', vif], ['xen-www2-emu', emu]] as const) {
      const from: Endpoint = { name: ifname, ns, zone: 'web', v4: '198.51.100.10', v6: '2001:db8:100:8::a', inInterface: ifname, guest: 'www2' };
      for (const src of ['198.51.100.10', '198.51.100.9', '198.51.100.12', '2001:db8:100:8::a', '2001:db8:100:8::9']) {
        const family = src.includes(':') ? 6 : 4;
        const dst = family === 4 ? internet.v4! : internet.v6!;
        const e = explainFlow(r.model!, r.compiled!.ruleset, { from: ifname, to: dst, proto: 'udp', port: ++port, src });
        if (!e.ok) throw new Error(e.error);
        probes.push({
          from, to: internet, family, proto: 'udp', port, src, dst, arrive: { addr: dst, port },
          expect: { action: e.value.evaluation.verdict, because: `explain: ${e.value.evaluation.decidedBy?.id ?? 'policy'}` },
        });
      }
    }
    // Both outcomes: the tap's own sources pass; the vif's fail while the tap's routes are preferred.
    expect(probes.filter((p) => p.expect.action === 'accept').map((p) => `${p.from.name} ${p.src}`)).toEqual(['xen-www2-emu 198.51.100.10', 'xen-www2-emu 2001:db8:100:8::a']);
    const added: [string, string][] = [];
    try {
      for (const p of probes) {
        if (p.src === p.from.v4 || p.src === p.from.v6 || added.some(([ns, a]) => ns === p.from.ns && a === p.src)) continue;
        await execa('ip', ['-n', p.from.ns, 'address', 'add', `${p.src}/${p.family === 4 ? 32 : 128}`, 'dev', 'eth0', ...(p.family === 6 ? ['nodad'] : [])]);
        added.push([p.from.ns, p.src]);
      }
      const results = await runProbes(lab, probes);
      const bad = results.map(mismatch).filter((m): m is string => m !== undefined);
      console.log(`xen hvm: ${results.length} packets, ${results.filter((x) => x.delivered).length} delivered, ${bad.length} against explain`);
      expect(bad).toEqual([]);
    } finally {
      for (const [ns, a] of added) await execa('ip', ['-n', ns, 'address', 'del', `${a}/${a.includes(':') ? 128 : 32}`, 'dev', 'eth0'], { reject: false });
    }
  }, 120_000);
});
