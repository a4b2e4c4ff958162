// explain against the kernel on a Xen HVM guest's two ports: the PV vif (xen-www2) and the
// emulated NIC's tap (xen-www2-emu) both carry the guest's addresses, with the tap's host routes
// preferred (metric 1 against 2, as Xen's vif-route does). QEMU deletes the tap when the guest's
// PV drivers unplug the emulated NIC, and the kernel deletes its routes with it; a guest that does
// not unplug (or an old device model) keeps both ports while it sends on the vif. The ruleset
// takes the guest's own sources on whichever port it uses and drops spoofed ones on both, so the
// test walks the three states a guest's ports can be in: both, only the vif (the tap deleted as
// QEMU does) and only the tap (a guest without PV drivers; the vif deleted here).
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
const VIF = 'xen-www2';
const EMU = 'xen-www2-emu';
const OWN = ['198.51.100.10', '2001:db8:100:8::a'];
// www1's addresses (another guest's) and addresses nobody has, in the guest's own zone.
const SPOOFED = ['198.51.100.9', '198.51.100.12', '2001:db8:100:8::9', '2001:db8:100:8::c'];
const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));
const skipReason = kernelTestUnavailable() ?? (onPath('python3') ? undefined : 'needs python3 on PATH to send and receive packets');

describe.skipIf(skipReason !== undefined)(`explain and the kernel agree on a Xen HVM guest's vif and -emu tap${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const id = topologyId();
  const host = `gw-hvm-${id}-h`;
  const wan = `gw-hvm-${id}-w`;
  const vif = `gw-hvm-${id}-v`;
  const emu = `gw-hvm-${id}-e`;
  const namespaces = [host, wan, vif, emu];
  const farSide = new Map([[VIF, vif], [EMU, emu]]);
  const agents = new Map<string, Promise<Agent>>();
  const internet: Endpoint = { name: 'uplink', ns: wan, zone: 'net', v4: '198.51.100.1', v6: '2001:db8:100::1' };
  const compiled = compilePolicyText(POLICY, readFileSync(POLICY, 'utf8'));
  let out = '';
  let lab: Lab;
  let port = 7000;

  /** One of the guest's NICs: the port, its far side with the guest's MAC and every source the probes use, then guestwall's port-up hook. */
  const plug = async (ifname: string) => {
    const ns = farSide.get(ifname)!;
    await ipBatch([`link add ${ifname} type veth peer name eth0 netns ${ns}`, `link set ${ifname} up`], host);
    await ipBatch(['link set eth0 address 00:16:3e:64:08:0a',
      ...[...OWN, ...SPOOFED].map((a) => (a.includes(':') ? `address add ${a}/128 dev eth0 nodad` : `address add ${a}/32 dev eth0`)),
      'link set eth0 up', 'route add 169.254.0.1/32 dev eth0', 'route add default via 169.254.0.1 dev eth0', 'route add ::/0 via fe80::1 dev eth0'], ns);
    await execa('ip', ['netns', 'exec', host, 'sh', join(out, 'network', 'etc', 'guestwall', 'hooks', 'port-up'), ifname]);
  };
  const unplug = (ifname: string) => ipBatch([`link delete ${ifname}`], host);
  const routesTo = async (addr: string) => (await execa('ip', ['-n', host, addr.includes(':') ? '-6' : '-4', 'route', 'show', addr])).stdout.trim();
  /** Packets the guest's own source check (chain fib_xen-www2) has dropped so far. */
  const hvmDrops = async () => {
    const listed = JSON.parse((await execa('ip', ['netns', 'exec', host, 'nft', '-j', 'list', 'chain', 'inet', 'guestwall', `fib_${VIF}`])).stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
    return listed.nftables.flatMap((i) => i.rule?.expr ?? []).reduce((n, e) => n + (e.counter?.packets ?? 0), 0);
  };

  /** From each port that exists: the guest's own sources and spoofed ones, each packet expected to do what explain says. */
  const probesFrom = (ports: string[]): Probe[] =>
    ports.flatMap((ifname) => [...OWN, ...SPOOFED].map((src): Probe => {
      const family = src.includes(':') ? 6 : 4;
      const dst = family === 4 ? internet.v4! : internet.v6!;
      const e = explainFlow(compiled.model!, compiled.compiled!.ruleset, { from: ifname, to: dst, proto: 'udp', port: ++port, src });
      if (!e.ok) throw new Error(e.error);
      const from: Endpoint = { name: ifname, ns: farSide.get(ifname)!, zone: 'web', v4: OWN[0]!, v6: OWN[1]!, inInterface: ifname, guest: 'www2' };
      return { from, to: internet, family, proto: 'udp', port, src, dst, arrive: { addr: dst, port }, expect: { action: e.value.evaluation.verdict, because: `explain: ${e.value.evaluation.decidedBy?.id ?? 'policy'}` } };
    }));

  /** What explain predicts must be the fix (own sources pass on every port, spoofed ones fail), and the kernel must do it. */
  const agree = async (what: string, ports: string[]) => {
    const probes = probesFrom(ports);
    const accepted = probes.filter((p) => p.expect.action === 'accept').map((p) => `${p.from.name} ${p.src}`);
    expect(accepted).toEqual(ports.flatMap((n) => OWN.map((a) => `${n} ${a}`)));
    const before = await hvmDrops();
    const results = await runProbes(lab, probes);
    const bad = results.map(mismatch).filter((m): m is string => m !== undefined);
    console.log(`xen hvm, ${what}: ${results.length} packets, ${results.filter((x) => x.delivered).length} delivered, ${bad.length} against explain`);
    expect(bad).toEqual([]);
    // Each spoofed packet was dropped by the guest's own source check, where explain says, and nothing else was.
    expect(probes.filter((p) => p.expect.action === 'drop').map((p) => p.expect.because)).toEqual(probes.filter((p) => p.expect.action === 'drop').map(() => `explain: guests.www2.interfaces[0]:hvm-fib`));
    expect((await hvmDrops()) - before).toBe(probes.filter((p) => p.expect.action === 'drop').length);
  };

  beforeAll(async () => {
    const python = (await execa('python3', ['-c', 'import sys; print(sys.executable)'])).stdout.trim();
    out = (await execa('mktemp', ['-d'])).stdout.trim();
    const c = await execa('node', [BIN, 'compile', POLICY, '--out', out], { reject: false });
    if (c.exitCode !== 0) throw new Error(`guestwall compile --out failed:\n${c.stderr}`);
    const quiet = 'sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0';
    await ipBatch(namespaces.flatMap((ns) => [`netns add ${ns}`, `netns exec ${ns} ${quiet}`, `netns exec ${ns} ip link set lo up`]));
    await ipBatch([`link add eth0 type veth peer name up0 netns ${wan}`, 'address add 198.51.100.2/29 dev eth0', 'address add 2001:db8:100::2/64 dev eth0 nodad', 'link set eth0 up',
      'route add default via 198.51.100.1 dev eth0', 'route add ::/0 via 2001:db8:100::1 dev eth0'], host);
    await ipBatch(['address add 198.51.100.1/29 dev up0', 'address add 2001:db8:100::1/64 dev up0 nodad', 'link set up0 up',
      'route add 198.51.100.8/29 via 198.51.100.2 dev up0', 'route add 2001:db8:100:8::/64 via 2001:db8:100::2 dev up0'], wan);
    const a = await execa('node', [BIN, 'apply', POLICY, '--netns', host], { reject: false });
    if (a.exitCode !== 0) throw new Error(`guestwall apply --netns failed (${a.exitCode}):\n${a.stderr}`);
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

  it('both ports, the -emu tap holding the preferred route: own sources pass on both, spoofed ones fail on both', async () => {
    await plug(VIF);
    await plug(EMU);
    // The state that dropped the vif's own traffic before: the best route back leaves through the tap.
    for (const a of OWN) expect((await routesTo(a)).split('\n')[0], a).toContain(`dev ${EMU}`);
    await agree('both ports', [VIF, EMU]);
  }, 120_000);

  it('only the PV vif, the tap deleted as QEMU deletes it on unplug (its routes go with it): the vif passes its own sources, not spoofed ones', async () => {
    await unplug(EMU);
    for (const a of OWN) expect(await routesTo(a), a).not.toContain(EMU);
    await agree('only the vif', [VIF]);
  }, 120_000);

  it('only the -emu tap (a guest without PV drivers): the tap passes its own sources, not spoofed ones', async () => {
    await unplug(VIF);
    await plug(EMU);
    await agree('only the tap', [EMU]);
  }, 120_000);
});
