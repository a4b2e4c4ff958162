// npm run bench (part 3) / npm run bench:dataplane: what guestwall's ruleset costs per packet at
// 10 to 10,000 guests, measured with real packets inside network namespaces made for it.
//
// For each size: the scaled bench policy (tests/support/gen-policy.ts) plus two rules that let
// the WAN reach two DMZ guests (UDP 9000, TCP 5201), compiled; a host namespace with the WAN, the
// bridges and those two guests (one routed, one bridged; the other guests exist only as ruleset
// elements). Then rounds of four shapes back to back, the order rotated each round:
//   (a) no ruleset;  (b) conntrack only (`ct state established,related accept; accept`);
//   (b') (b) plus empty nat chains (what any NAT-ing firewall pays per new connection);
//   (c) guestwall's compiled ruleset;  (d) the same with linear iifname/oifname dispatch.
// Each shape: the new-flow rate to each guest (every datagram a new connection, counted at the
// receiver over a fixed window; the conntrack table is emptied before every run) and one bulk
// TCP stream. Ratios are taken within each round, then summarised (median, min, max).
// Results: bench/results/dataplane.{md,json,svg}; the table also goes to stdout.
import { cpus, loadavg } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { compilePolicyText } from '../src/compile/pipeline.js';
import { evaluate, type Packet } from '../src/explain/evaluate.js';
import type { GuestInterfaceModel, HostModel } from '../src/model/host.js';
import { toNftJson } from '../src/nft/json.js';
import type { Ruleset } from '../src/nft/ruleset.js';
import { newFlowWalk } from './dataplane/walk.js';
import { policyYaml } from '../tests/support/gen-policy.js';
import { CONNTRACK_NAT, CONNTRACK_ONLY, TCP_PORT, UDP_PORT, benchPolicy } from './dataplane/shapes.js';
import { compareVerdicts, linearDispatch, samplePackets, type SampledPacket } from './linear.js';
import { MEASURES, type Measure, type Round, SHAPES, type Shape, type SizeResult, chartSvg, markdown, walkLines } from './dataplane/report.js';
import { type Held, releaseOnExit } from './dataplane/held.js';
import { buildTopology, sweepStaleNamespaces } from './dataplane/topology.js';
import { type Windows, bulkRun, compilePrograms, conntrackCount, conntrackMax, flushConntrack, newFlowRun } from './dataplane/traffic.js';

const env = process.env;
const SIZES = (env.GW_BENCH_SIZES ?? '10,100,1000,10000').split(',').map(Number);
const RUNS = Math.max(1, Number(env.GW_BENCH_RUNS ?? 5));
const MEASURED: Measure[] = (env.GW_BENCH_DP_MEASURES ?? MEASURES.join(',')).split(',').filter((m): m is Measure => (MEASURES as readonly string[]).includes(m));
const FLOW_WINDOW: Windows = { warmupMs: Number(env.GW_BENCH_DP_WARMUP_MS ?? 200), windowMs: Number(env.GW_BENCH_DP_WINDOW_MS ?? 800) };
const BULK_WINDOW: Windows = { warmupMs: 300, windowMs: Number(env.GW_BENCH_DP_BULK_MS ?? 1000) };
/** GW_BENCH_DP_RULES_ONLY=1: compile and count the rules each shape walks, no namespaces, no traffic (no root needed). */
const RULES_ONLY = env.GW_BENCH_DP_RULES_ONLY === '1';
const MAX_BULK_BYTES = 16 * 2 ** 30;
/** GW_BENCH_DP_OUT=DIR/ writes the results there instead of bench/results/ (trial runs). */
const RESULTS = env.GW_BENCH_DP_OUT ? `${env.GW_BENCH_DP_OUT.replace(/\/?$/, '/')}` : fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../bench/results/' : './results/', import.meta.url));

const onPath = async (cmd: string) => (await execa('sh', ['-c', `command -v ${cmd}`], { reject: false })).exitCode === 0;

async function unavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  for (const cmd of ['nft', 'ip', 'gcc']) if (!(await onPath(cmd))) return `needs ${cmd} on PATH`;
  return undefined;
}

// ---- The policy and its shapes -------------------------------------------------------------

const countRules = (r: Ruleset) => r.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
const countElements = (r: Ruleset) => r.tables.reduce((n, t) => n + t.sets.reduce((m, s) => m + s.elements.length, 0), 0);

/** How many dispatch rules a packet from `iif` to `oif` walks in the linear shape: its place in the forward iifname list and in the zone's oifname list. */
function linearWalk(ruleset: Ruleset, iif: string, oif: string): number {
  const t = ruleset.tables[0]!;
  const map = (name: string) => t.sets.find((s) => s.name === name);
  const src = map('zone_src');
  if (src?.kind !== 'map') return 0;
  const i = src.elements.findIndex(([k]) => k === iif);
  const verdict = src.elements[i]?.[1];
  const fromChain = verdict && 'goto' in verdict ? verdict.goto.target : verdict && 'jump' in verdict ? verdict.jump.target : undefined;
  const dstName = t.chains.find((c) => c.name === fromChain)?.rules.flatMap((r) => r.stmts).flatMap((s) => (typeof s === 'object' && s !== null && 'vmap' in s ? [s.vmap.data.setRef] : []))[0];
  const dst = dstName ? map(dstName) : undefined;
  const o = dst?.kind === 'map' ? dst.elements.findIndex(([k]) => k === oif) : -1;
  return i + 1 + (o + 1);
}

/** The bench's own packets, which every shape must accept, plus a sample over the whole host. */
function verdictSamples(model: HostModel, wanIf: string, rx: GuestInterfaceModel[], seed: number): SampledPacket[] {
  const own: SampledPacket[] = rx.flatMap((i) => {
    const daddr = i.addresses.find((a) => !a.addr.includes(':'))!.addr;
    const oifname = i.mode === 'routed' ? i.name : i.bridge;
    const base: Omit<Packet, 'proto' | 'dport'> = { family: 4, iifname: wanIf, oifname, saddr: '198.18.0.1', daddr, sport: 40000, ct: { state: 'new' } };
    return [
      { hook: 'forward' as const, packet: { ...base, proto: 'udp' as const, dport: UDP_PORT } },
      { hook: 'forward' as const, packet: { ...base, proto: 'tcp' as const, dport: TCP_PORT } },
    ];
  });
  return [...own, ...samplePackets(model, 1500, seed)];
}

// ---- Running it ----------------------------------------------------------------------------

const held: Held = {};
const cleanup = releaseOnExit(held);

async function nft(ns: string, args: string[]): Promise<void> {
  const r = await execa('ip', ['netns', 'exec', ns, 'nft', ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`nft ${args.join(' ')} in ${ns} failed: ${r.stderr}`);
}

async function loadShape(ns: string, shape: Shape, docs: Record<Shape, string | undefined>): Promise<void> {
  for (const [family, t] of [['inet', 'guestwall'], ['bridge', 'guestwall'], ['arp', 'guestwall'], ['inet', 'gwbench']]) {
    await execa('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', family!, t!], { reject: false });
  }
  const file = docs[shape];
  if (file !== undefined) await nft(ns, ['-j', '-f', file]);
  const tables = (await execa('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'])).stdout.trim();
  // guestwall owns three tables (inet, bridge, arp), all loaded in one transaction.
  const want = shape === 'none' ? '' : shape === 'conntrack' || shape === 'conntrack-nat' ? 'table inet gwbench' : 'table inet guestwall\ntable bridge guestwall\ntable arp guestwall';
  if (tables !== want) throw new Error(`shape ${shape}: expected "${want}" in ${ns}, found "${tables}"`);
}

async function measureSize(guests: number, cpuPair: [number, number], roundBase: number): Promise<SizeResult> {
  const { policy, receivers: names } = benchPolicy(guests);
  process.stderr.write(`dataplane: ${guests} guests: compiling...\n`);
  const compiled = compilePolicyText('bench.yaml', policyYaml(policy));
  if (!compiled.compiled || !compiled.model) throw new Error(`the bench policy has errors: ${compiled.diagnostics.map((d) => d.message).join('; ')}`);
  const model = compiled.model;
  const ruleset = compiled.compiled.ruleset;
  const linear = linearDispatch(ruleset);
  const rx = names.map((n) => model.guests.find((g) => g.name === n)!.interfaces[0]!);
  const wanIf = model.hostInterfaces.find((i) => i.zone === 'net')!.name;

  const samples = verdictSamples(model, wanIf, rx, guests);
  const disagree = compareVerdicts(ruleset, linear, samples);
  if (disagree.length > 0) throw new Error(`the linear shape decides ${disagree.length} sampled packets differently, e.g. ${JSON.stringify(disagree[0])}`);
  for (const s of samples.slice(0, rx.length * 2)) {
    const v = evaluate(ruleset, 'forward', s.packet).verdict;
    if (v !== 'accept') throw new Error(`guestwall's ruleset would ${v} the bench's own packet ${JSON.stringify(s.packet)}`);
  }

  // Rules evaluated per new flow, per shape and receiver: counted by explain, immune to CPU noise.
  const shapeRulesets: Record<Shape, Ruleset> = { none: { tables: [] }, conntrack: CONNTRACK_ONLY, 'conntrack-nat': CONNTRACK_NAT, guestwall: ruleset, linear };
  const walks = Object.fromEntries(SHAPES.map((shape) => [shape, Object.fromEntries(rx.map((i, k) => [i.mode, newFlowWalk(shapeRulesets[shape], samples[k * 2]!.packet)]))])) as SizeResult['walks'];
  process.stderr.write(`dataplane: ${guests} guests: rules evaluated per new flow (prerouting + forward + postrouting):\n${walkLines(walks).map((l) => `  ${l}\n`).join('')}`);

  const routedRx = rx.find((i) => i.mode === 'routed')!;
  const result: SizeResult = {
    guests,
    rules: { guestwall: countRules(ruleset), linear: countRules(linear) },
    elements: { guestwall: countElements(ruleset), linear: countElements(linear) },
    linearDispatchRules: linearWalk(ruleset, wanIf, routedRx.name),
    walks,
    receivers: [],
    verdictChecks: samples.length,
    rounds: [],
    loadavg: { before: loadavg().map((x) => x.toFixed(2)).join(' '), after: '' },
  };

  if (RULES_ONLY) return result;
  // The shapes as nftables JSON files, loaded with `nft -j -f` (one transaction each).
  const docs: Record<Shape, string | undefined> = { none: undefined, conntrack: undefined, 'conntrack-nat': undefined, guestwall: undefined, linear: undefined };
  for (const [shape, doc] of [['conntrack', toNftJson(CONNTRACK_ONLY)], ['conntrack-nat', toNftJson(CONNTRACK_NAT)], ['guestwall', toNftJson(ruleset)], ['linear', toNftJson(linear)]] as const) {
    docs[shape] = held.binaries!.scratch(`${shape}-${guests}.json`);
    await writeFile(docs[shape]!, JSON.stringify(doc));
  }
  process.stderr.write(`dataplane: ${guests} guests: building the namespaces...\n`);
  held.topology = await buildTopology(model, rx);
  const topo = held.topology;
  result.receivers = topo.receivers.map((r) => ({ guest: r.guest, mode: r.mode, addr: r.addr, hostIfname: r.hostIfname }));
  const routed = topo.receivers.find((r) => r.mode === 'routed')!;
  const bridged = topo.receivers.find((r) => r.mode === 'bridged')!;
  // Keep well under the table's limit, so that no run ever meets a full table (same cap for every shape).
  const maxPackets = Math.floor((await conntrackMax(topo.host)) * 0.85);
  let srcBlock = 0;
  const flow = async (to: typeof routed) => {
    await flushConntrack(held.binaries!, topo.host);
    // 16 source addresses per run from 198.18.0.0/15 (RFC 2544 benchmarking space), fresh each run.
    const base = `198.${18 + ((srcBlock >> 12) & 1)}.${(srcBlock >> 4) & 0xff}.${(srcBlock & 0xf) * 16}`;
    srcBlock = (srcBlock + 1) % 8192;
    const r = await newFlowRun(held.binaries!, { wanNs: topo.wan.ns, rxNs: to.ns, dst: to.addr, port: UDP_PORT, srcBase: base, srcAddrs: 16, maxPackets, w: FLOW_WINDOW, cpus: cpuPair }).catch(async (e: unknown) => {
      const dump = await execa('ip', ['netns', 'exec', topo.host, 'sh', '-c', 'nft list ruleset | grep "packets [1-9]"; ip -s link; cat /proc/sys/net/netfilter/nf_conntrack_count'], { reject: false, all: true });
      const g = await execa('ip', ['netns', 'exec', to.ns, 'sh', '-c', 'ip -s link; grep Udp /proc/net/snmp'], { reject: false, all: true });
      throw new Error(`${String(e)}\n${dump.all}\n${g.all}`);
    });
    return { pps: r.pps, cpuNs: r.cpuNsPerPacket, entries: await conntrackCount(topo.host) };
  };
  const bulk = async () => {
    await flushConntrack(held.binaries!, topo.host);
    return (await bulkRun(held.binaries!, { wanNs: topo.wan.ns, rxNs: routed.ns, dst: routed.addr, port: TCP_PORT, maxBytes: MAX_BULK_BYTES, w: BULK_WINDOW, cpus: cpuPair })).bps;
  };

  // One unmeasured pass: neighbours resolved, caches warm.
  await loadShape(topo.host, 'guestwall', docs);
  await flow(routed);
  await flow(bridged);
  for (let k = 0; k < RUNS; k++) {
    const start = (roundBase + k) % SHAPES.length;
    const order = [...SHAPES.slice(start), ...SHAPES.slice(0, start)];
    const round: Round = { round: k, order, values: { none: {}, conntrack: {}, 'conntrack-nat': {}, guestwall: {}, linear: {} }, conntrackEntries: { none: 0, conntrack: 0, 'conntrack-nat': 0, guestwall: 0, linear: 0 }, cpuNs: { none: {}, conntrack: {}, 'conntrack-nat': {}, guestwall: {}, linear: {} } };
    for (const shape of order) {
      await loadShape(topo.host, shape, docs);
      if (MEASURED.includes('newflow-routed')) {
        const r = await flow(routed);
        round.values[shape]['newflow-routed'] = r.pps;
        round.cpuNs![shape]['newflow-routed'] = r.cpuNs;
        round.conntrackEntries[shape] = r.entries;
      }
      if (MEASURED.includes('newflow-bridged')) {
        const r = await flow(bridged);
        round.values[shape]['newflow-bridged'] = r.pps;
        round.cpuNs![shape]['newflow-bridged'] = r.cpuNs;
      }
      if (MEASURED.includes('bulk-routed')) round.values[shape]['bulk-routed'] = await bulk();
    }
    const v = round.values;
    process.stderr.write(`  round ${k + 1}/${RUNS} (${order.join(' ')}): new flows to the routed guest ${SHAPES.map((s) => `${s} ${((v[s]['newflow-routed'] ?? 0) / 1000).toFixed(0)}k ${(round.cpuNs![s]['newflow-routed'] ?? 0).toFixed(0)}ns`).join(', ')}\n`);
    result.rounds.push(round);
  }
  await loadShape(topo.host, 'none', docs);
  await topo.dispose();
  held.topology = undefined;
  result.loadavg.after = loadavg().map((x) => x.toFixed(2)).join(' ');
  return result;
}

const why = RULES_ONLY ? undefined : await unavailable();
if (why !== undefined) {
  console.log(`\n## dataplane\n\nskipped: ${why}`);
  process.exit(0);
}

const benchStarted = Date.now();
const results: SizeResult[] = [];
try {
  const stale = await sweepStaleNamespaces();
  if (stale.length) process.stderr.write(`dataplane: removed namespaces a killed bench left behind: ${stale.join(' ')}\n`);
  if (!RULES_ONLY) held.binaries = await compilePrograms();
  const n = cpus().length;
  const cpuPair: [number, number] = n >= 2 ? [0, 1] : [-1, -1];
  for (const [i, guests] of SIZES.entries()) results.push(await measureSize(guests, cpuPair, i));
} finally {
  await cleanup();
}

const machine = `Machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), kernel ${(await execa('uname', ['-r'])).stdout}, node ${process.version}; sender pinned to CPU 0 (it also does the forwarding, in softirq), receiver to CPU 1. Load average before/after each size: ${results.map((r) => `${r.guests}: ${r.loadavg.before} / ${r.loadavg.after}`).join('; ')}.`;
const windows = `new flows: ${FLOW_WINDOW.warmupMs} ms warm-up + ${FLOW_WINDOW.windowMs} ms counted, conntrack emptied before every run; bulk TCP: ${BULK_WINDOW.warmupMs} ms + ${BULK_WINDOW.windowMs} ms`;
const md = markdown(results, { runs: RUNS, windows, machine, measures: MEASURED });
const took = `took ${((Date.now() - benchStarted) / 1000).toFixed(0)} s (sizes ${SIZES.join(', ')}; ${RUNS} rounds: GW_BENCH_SIZES, GW_BENCH_RUNS)`;
if (RULES_ONLY) {
  console.log(`\n${md}\ndataplane: rules only (GW_BENCH_DP_RULES_ONLY=1), nothing written; ${took}`);
  process.exit(0);
}
await mkdir(RESULTS, { recursive: true });
await writeFile(`${RESULTS}dataplane.md`, `${md}\n![new-flow rate against guests](dataplane.svg)\n`);
await writeFile(
  `${RESULTS}dataplane.json`,
  `${JSON.stringify({ date: new Date().toISOString(), machine, runs: RUNS, windows: { flow: FLOW_WINDOW, bulk: BULK_WINDOW }, measures: MEASURED, results }, null, 2)}\n`,
);
const chartMeasure: Measure = MEASURED.includes('newflow-routed') ? 'newflow-routed' : MEASURED[0]!;
await writeFile(`${RESULTS}dataplane.svg`, chartSvg(results, chartMeasure, `median of ${RUNS} rounds per point, shapes back to back, order rotated; ${cpus().length}-CPU shared machine`));
console.log(`\n${md}`);
console.log(`written: ${RESULTS}dataplane.{md,json,svg}`);
console.log(`dataplane: ${took}`);
