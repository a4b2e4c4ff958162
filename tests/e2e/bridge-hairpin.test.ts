// A port forward's target on a bridge, on a kernel without bridge conntrack (this machine's: the
// baseline features), with real packets on a real bridge, once with bridge-nf-call-iptables (and
// ip6tables) = 0 and once with 1. The forward publishes sip's TCP 5061 and UDP 5060 to net and,
// by hairpin, to every zone, including sip's own bridge; the policy drops dmz -> dmz. So:
//  - web, on sip's bridge, reaches the service by the public address (hairpin), replies included:
//    masqueraded by the host without br_netfilter, bridged from web itself with it;
//  - web cannot reach those ports at sip's private addresses (IPv4 and IPv6);
//  - sip cannot send from its forwarded port to web unless it is answering a forwarded connection.
// Each packet is also explained (explainFlow or evaluateBridge, br_netfilter as in the namespace),
// and the rules of the bridge table whose counters moved must be those explain says the packet
// reaches. Everything runs in namespaces gw-bh-*, deleted afterwards.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASELINE_FEATURES } from '../../src/compile/features.js';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { type Evaluation, type Packet, type Step, evaluateBridge } from '../../src/explain/evaluate.js';
import { type FlowQuery, explainFlow } from '../../src/explain/flow.js';
import { explainPacket } from '../../src/explain/state.js';
import type { HostModel } from '../../src/model/host.js';
import { toNftJson } from '../../src/nft/json.js';
import { printStmt } from '../../src/nft/print.js';
import type { Ruleset } from '../../src/nft/ruleset.js';
import { formatDiagnostic } from '../../src/policy/diagnostics.js';
import { framesArriving, sendFrames, udpFrame } from '../support/frames.js';
import { HAIRPIN_POLICY } from '../support/hairpin-policy.js';
import { deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';
import { Agent } from '../support/topology.js';

const skipReason = kernelTestUnavailable();
const skipped = skipReason ? ` (skipped: ${skipReason})` : '';

const MAC = { sip: '02:00:0a:00:0a:0a', web: '02:00:0a:00:0a:0b' } as const;
const ADDR = { sip: { 4: '10.0.10.10', 6: 'fd00:10::10' }, web: { 4: '10.0.10.11', 6: 'fd00:10::11' } } as const;
const PUBLIC = '203.0.113.10';
const GUEST_IF = 'eth0';

interface Lab {
  host: string;
  ns: Record<'sip' | 'web' | 'net', string>;
}

async function ipBatch(lines: string[], ns: string): Promise<void> {
  await execa('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function sh(ns: string, cmd: string, ...args: string[]): Promise<string> {
  return (await execa('ip', ['netns', 'exec', ns, cmd, ...args])).stdout;
}

/** Every namespace made here, deleted in afterAll even when building a lab failed halfway. */
const made = new Set<string>();

async function buildLab(brNetfilter: 0 | 1, rulesetFile: string): Promise<Lab> {
  const id = namespaceName('gw-bh');
  const ns = { sip: `${id}-s`, web: `${id}-w`, net: `${id}-n` };
  const host = `${id}-h`;
  for (const n of [host, ...Object.values(ns)]) {
    made.add(n);
    await execa('ip', ['netns', 'add', n]);
  }
  // No redirects: the routed hairpin goes back out where it came from, and must stay routed.
  await sh(host, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0', 'net.ipv4.conf.default.send_redirects=0',
    `net.bridge.bridge-nf-call-iptables=${brNetfilter}`, `net.bridge.bridge-nf-call-ip6tables=${brNetfilter}`);
  await ipBatch([
    'link set lo up',
    'link add br-dmz type bridge',
    'address add 10.0.10.1/24 dev br-dmz',
    'address add fd00:10::1/64 dev br-dmz nodad',
    'link set br-dmz up',
    `link add eth0 type veth peer name far netns ${ns.net}`,
    `address add ${PUBLIC}/24 dev eth0`,
    'link set eth0 up',
    ...(['sip', 'web'] as const).flatMap((g) => [`link add gw-${g} type veth peer name ${GUEST_IF} netns ${ns[g]}`, `link set gw-${g} master br-dmz`, `link set gw-${g} up`]),
  ], host);
  await ipBatch(['link set lo up', 'address add 203.0.113.1/24 dev far', 'link set far up'], ns.net);
  for (const g of ['sip', 'web'] as const) {
    await ipBatch([
      'link set lo up', `link set ${GUEST_IF} address ${MAC[g]}`,
      `address add ${ADDR[g][4]}/24 dev ${GUEST_IF}`, `address add ${ADDR[g][6]}/64 dev ${GUEST_IF} nodad`, `link set ${GUEST_IF} up`,
      `route add default via 10.0.10.1 dev ${GUEST_IF}`,
    ], ns[g]);
  }
  await sh(host, 'nft', '-j', '-f', rulesetFile);
  return { host, ns };
}

/** Packets counted so far by each counted rule of the bridge table, by `chain#index`. */
async function bridgeCounters(lab: Lab): Promise<Map<string, number>> {
  const listing = JSON.parse(await sh(lab.host, 'nft', '-j', 'list', 'table', 'bridge', 'guestwall')) as { nftables: { rule?: { chain: string; expr: Record<string, { packets?: number }>[] } }[] };
  const seen = new Map<string, number>();
  const out = new Map<string, number>();
  for (const { rule } of listing.nftables) {
    if (!rule) continue;
    const i = seen.get(rule.chain) ?? 0;
    seen.set(rule.chain, i + 1);
    const c = rule.expr.find((e) => e.counter !== undefined);
    if (c) out.set(`${rule.chain}#${i}`, c.counter!.packets ?? 0);
  }
  return out;
}

/** The bridge-table rules whose counter explain says the packet reaches. */
const explainedBridgeCounters = (e: Evaluation): string[] =>
  [...new Set(e.steps.filter((s: Step) => s.family === 'bridge' && s.rule !== undefined && (s.effects ?? []).includes('counter')).map((s) => `${s.chain}#${s.rule}`))].sort();

/** A UDP datagram from `client` to dst:port, answered by an echo in `server`: whether the answer came back, and whom the server saw. */
async function udpExchange(lab: Lab, server: 'sip' | 'web', client: 'sip' | 'web', family: 4 | 6, dst: string, port: number): Promise<{ replied: boolean; seen?: string }> {
  const af = family === 4 ? 'AF_INET' : 'AF_INET6';
  const srv = execa('ip', ['netns', 'exec', lab.ns[server], 'python3', '-u', '-c', [
    'import socket, sys',
    `s = socket.socket(socket.${af}, socket.SOCK_DGRAM); s.bind(("", ${port})); s.settimeout(4)`,
    'print("ready", flush=True)',
    'try:',
    '    d, a = s.recvfrom(2048); s.sendto(d, a); print("seen", a[0], flush=True)',
    'except socket.timeout:',
    '    print("nothing", flush=True)',
  ].join('\n')], { buffer: true });
  await new Promise<void>((resolve, reject) => {
    srv.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    srv.catch(reject);
  });
  const cli = await execa('ip', ['netns', 'exec', lab.ns[client], 'python3', '-c', [
    'import socket',
    `s = socket.socket(socket.${af}, socket.SOCK_DGRAM); s.settimeout(2); s.connect(("${dst}", ${port})); s.send(b"gw")`,
    'try:',
    '    s.recv(2048); print("reply")',
    'except (socket.timeout, OSError):',
    '    print("none")',
  ].join('\n')]);
  const out = String((await srv).stdout);
  const seen = /seen (\S+)/.exec(out)?.[1];
  return { replied: cli.stdout.trim() === 'reply', ...(seen ? { seen } : {}) };
}

/** A UDP datagram from `client` to dst:port where nothing listens: whether the closed port's ICMP error came back (a connected socket is refused). */
async function udpToClosedPort(lab: Lab, client: 'sip' | 'web', dst: string, port: number): Promise<'refused' | 'timeout' | 'reply'> {
  const out = await sh(lab.ns[client], 'python3', '-c', [
    'import socket',
    `s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); s.connect(("${dst}", ${port})); s.send(b"gw")`,
    'try:',
    '    s.recv(2048); print("reply")',
    'except ConnectionRefusedError:',
    '    print("refused")',
    'except socket.timeout:',
    '    print("timeout")',
  ].join('\n'));
  return out.trim() as 'refused' | 'timeout' | 'reply';
}

for (const brNetfilter of [0, 1] as const) {
  describe.skipIf(skipReason !== undefined)(`a forward's target on a bridge without bridge conntrack, bridge-nf-call-iptables=${brNetfilter}${skipped}`, () => {
    let lab: Lab;
    let dir = '';
    let model: HostModel;
    let ruleset: Ruleset;
    const agents: Partial<Record<'sip' | 'web', Agent>> = {};
    let nextId = 1;

    beforeAll(async () => {
      const r = compilePolicyText('hairpin-lab.yaml', HAIRPIN_POLICY, BASELINE_FEATURES);
      if (!r.compiled || !r.model) throw new Error(r.diagnostics.map(formatDiagnostic).join('\n'));
      model = r.model;
      ruleset = r.compiled.ruleset;
      dir = await mkdtemp(join(tmpdir(), 'gw-bh-'));
      const file = join(dir, 'ruleset.json');
      await writeFile(file, JSON.stringify(toNftJson(ruleset)));
      lab = await buildLab(brNetfilter, file);
      for (const g of ['sip', 'web'] as const) agents[g] = await Agent.start(lab.ns[g], 'python3');
    }, 60_000);
    afterAll(async () => {
      for (const a of Object.values(agents)) await a?.stop();
      for (const n of made) await deleteNamespace(n);
      made.clear();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const explain = (q: Omit<FlowQuery, 'brNetfilter'>) => {
      const r = explainFlow(model, ruleset, { ...q, brNetfilter: brNetfilter === 1 });
      if (!r.ok) throw new Error(r.error);
      return r.value;
    };
    /** Runs `send`; returns the bridge-table rules whose counters moved. */
    async function movedBy(send: () => Promise<unknown>): Promise<string[]> {
      const before = await bridgeCounters(lab);
      await send();
      const after = await bridgeCounters(lab);
      return [...after].filter(([k, n]) => n !== (before.get(k) ?? 0)).map(([k]) => k).sort();
    }
    const ruleText = (key: string) => {
      const [chain, i] = key.split('#');
      const r = ruleset.tables.find((t) => t.family === 'bridge')!.chains.find((c) => c.name === chain)?.rules[Number(i)];
      return `${key} ${r ? r.stmts.map(printStmt).join(' ') : '?'}`;
    };
    const story = (e: { story: string[] }) => e.story.join('\n');
    /** TCP connect from `from` to dst:port; the listener in `to` (if any) reports whom it saw. */
    async function connect(from: 'sip' | 'web', to: 'sip' | 'web', family: 4 | 6, dst: string, port: number): Promise<{ connected: boolean; seen?: string }> {
      const [listen, send] = [nextId++, nextId++];
      const rx = agents[to]!;
      rx.request({ op: 'listen', id: listen, proto: 'tcp', family, port });
      expect((await rx.waitFor(listen, ['ready', 'error'], 5_000))?.ev).toBe('ready');
      const tx = agents[from]!;
      tx.request({ op: 'send', id: send, proto: 'tcp', family, src: ADDR[from][family], dst, port });
      const e = await tx.waitFor(send, ['connected', 'error'], 3_000);
      const got = await rx.waitFor(listen, ['got'], e?.ev === 'connected' ? 2_000 : 0);
      tx.request({ op: 'close', id: send });
      rx.request({ op: 'close', id: listen });
      return { connected: e?.ev === 'connected', ...(got?.peer ? { seen: got.peer[0] } : {}) };
    }

    it('the hairpin by the public address works, replies included: masqueraded without br_netfilter, from the client itself with it', async () => {
      const client = brNetfilter ? ADDR.web[4] : '10.0.10.1';
      const tcpExplained = explain({ from: 'web', to: `${PUBLIC}:5061`, proto: 'tcp' });
      expect(tcpExplained.evaluation.verdict, story(tcpExplained)).toBe('accept');
      let tcp: { connected: boolean; seen?: string } = { connected: false };
      const tcpMoved = await movedBy(async () => { tcp = await connect('web', 'sip', 4, PUBLIC, 5061); });
      expect(tcp, story(tcpExplained)).toEqual({ connected: true, seen: client });
      // The SYN is what explain follows; the SYN-ACK and the ACK are counted by the reply rule and the forward rule again.
      for (const k of explainedBridgeCounters(tcpExplained.evaluation)) expect(tcpMoved.map(ruleText), story(tcpExplained)).toContain(ruleText(k));
      if (!brNetfilter) expect(tcpMoved.map(ruleText), 'routed: the bridge forward chains never see it').toEqual([]);
      else expect(explainedBridgeCounters(tcpExplained.evaluation).length, story(tcpExplained)).toBe(1);

      const udpExplained = explain({ from: 'web', to: `${PUBLIC}:5060`, proto: 'udp' });
      expect(udpExplained.evaluation.verdict, story(udpExplained)).toBe('accept');
      let udp: { replied: boolean; seen?: string } = { replied: false };
      const udpMoved = await movedBy(async () => { udp = await udpExchange(lab, 'sip', 'web', 4, PUBLIC, 5060); });
      expect(udp).toEqual({ replied: true, seen: client });
      // The request and its reply: the forward's tuple, then the reply by its source, both with the hairpin mark.
      expect(udpMoved.map(ruleText)).toEqual(brNetfilter ? ['dmz_to_dmz#0', 'dmz_to_dmz#1'].map(ruleText) : []);
    }, 60_000);

    it("the target's ICMP error about a hairpin connection reaches the client: a closed port is refused, not a timeout", async () => {
      const explained = explainPacket(model, ruleset, { from: 'web', to: `${PUBLIC}:5060`, proto: 'udp', state: 'related', reply: true, icmpError: 'port-unreachable', brNetfilter: brNetfilter === 1 });
      if (!explained.ok) throw new Error(explained.error);
      const e = explained.value;
      expect(e.evaluation.verdict, story(e)).toBe('accept');
      let got = '';
      const moved = await movedBy(async () => { got = await udpToClosedPort(lab, 'web', PUBLIC, 5060); });
      expect(got, story(e)).toBe('refused');
      // The datagram (the connection's first packet) and the error: the bridge rules explain names for each.
      const first = e.connection ? explainedBridgeCounters(e.connection.first.evaluation) : [];
      expect(moved.map(ruleText), story(e)).toEqual([...new Set([...first, ...explainedBridgeCounters(e.evaluation)])].sort().map(ruleText));
      if (brNetfilter) expect(moved.map(ruleText)).toContain(ruleText('dmz_to_dmz#2'));
    }, 60_000);

    it("a guest on the target's bridge cannot reach the forwarded ports at the target's own addresses, IPv4 or IPv6", async () => {
      for (const family of [4, 6] as const) {
        const dst = ADDR.sip[family];
        // The kernel first (what a user meets), then explain (what it tells them).
        let tcp: { connected: boolean; seen?: string } = { connected: true };
        const tcpMoved = await movedBy(async () => { tcp = await connect('web', 'sip', family, dst, 5061); });
        expect(tcp, `tcp to ${dst} 5061`).toEqual({ connected: false });
        const tcpExplained = explain({ from: 'web', to: dst, proto: 'tcp', port: 5061, direct: true });
        expect(tcpExplained.evaluation.verdict, story(tcpExplained)).toBe('drop');
        expect(tcpMoved.map(ruleText), story(tcpExplained)).toEqual(explainedBridgeCounters(tcpExplained.evaluation).map(ruleText));

        let udp: { replied: boolean; seen?: string } = { replied: true };
        const udpMoved = await movedBy(async () => { udp = await udpExchange(lab, 'sip', 'web', family, dst, 5060); });
        expect(udp, `udp to ${dst} 5060`).toEqual({ replied: false });
        const udpExplained = explain({ from: 'web', to: dst, proto: 'udp', port: 5060, direct: true });
        expect(udpExplained.evaluation.verdict, story(udpExplained)).toBe('drop');
        expect(udpMoved.map(ruleText), story(udpExplained)).toEqual(explainedBridgeCounters(udpExplained.evaluation).map(ruleText));
      }
    }, 60_000);

    it('the forwarded guest cannot send from its forwarded port to its neighbour (UDP, IPv4 and IPv6)', async () => {
      for (const family of [4, 6] as const) {
        const packet: Packet = {
          family, iifname: 'gw-sip', oifname: 'gw-web', saddr: ADDR.sip[family], daddr: ADDR.web[family], proto: 'udp', sport: 5060, dport: 40000, ct: { state: 'new' },
        };
        const frame = udpFrame({ srcMac: MAC.sip, dstMac: MAC.web, src: ADDR.sip[family], dst: ADDR.web[family], sport: 5060, dport: 40000, data: `gw-${Math.random()}` });
        let arrived = -1;
        const moved = await movedBy(async () => {
          arrived = await framesArriving(lab.ns.web, GUEST_IF, [frame], () => sendFrames(lab.ns.sip, GUEST_IF, [frame]));
        });
        expect(arrived, `udp ${ADDR.sip[family]}:5060 -> ${ADDR.web[family]}:40000`).toBe(0);
        const e = evaluateBridge(ruleset, 'br-dmz', packet, { brNetfilter: brNetfilter === 1 });
        expect(e.verdict).toBe('drop');
        expect(moved.map(ruleText)).toEqual(explainedBridgeCounters(e).map(ruleText));
      }
    }, 60_000);
  });
}
