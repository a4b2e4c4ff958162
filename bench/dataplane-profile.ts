// node dist/bench/dataplane-profile.js: where a new flow's time goes in guestwall's ruleset, and
// what each part of it costs, measured on the dataplane bench's topology (bench/dataplane/*).
//
// One size (GW_BENCH_SIZES, first value; default 10000). Variants: the conntrack + nat floor (b'),
// guestwall's ruleset (c), and (c) with one part taken out at a time (the ablations below; they
// change what the policy means, so they exist only here). Rounds of all variants back to back,
// order rotated; per variant the sender's CPU time per new-flow packet to the routed and to the
// bridged guest (bench/dataplane/traffic.ts: its syscalls plus the forwarding done in softirq on
// its CPU), summarised as the median over rounds. CPU per packet moves less with other load on
// the machine than the rate does; the difference to (c) is what the part costs per new flow.
//
// GW_PROF_PERF=DIR: every sender runs under `perf record -e cpu-clock -g` (its own syscalls and
// the softirq forwarding charged to it), one file per run: DIR/<variant>-<receiver>-r<round>.data,
// listed with the packets each run sent in DIR/runs.json (bench/dataplane/perf-hooks.py sums them
// into ns per packet by netfilter hook).
// GW_PROF_VARIANTS=a,b,...: only these variants. GW_BENCH_RUNS: rounds (default 5).
// GW_PROF_BEFORE=FILE: one more variant, `c-before`: a ruleset IR as JSON (another checkout's
// compile of the same bench policy), to compare a compiler change with what it replaces.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { compilePolicyText } from '../src/compile/pipeline.js';
import type { Ruleset, Table } from '../src/nft/ruleset.js';
import type { Stmt } from '../src/nft/types.js';
import { toNftJson } from '../src/nft/json.js';
import { policyYaml } from '../tests/support/gen-policy.js';
import { CONNTRACK_NAT, UDP_PORT, benchPolicy } from './dataplane/shapes.js';
import { type Held, releaseOnExit } from './dataplane/held.js';
import { buildTopology, sweepStaleNamespaces } from './dataplane/topology.js';
import { compilePrograms, conntrackMax, flushConntrack, newFlowRun } from './dataplane/traffic.js';
import { median } from './stats.js';

const env = process.env;
const GUESTS = Number((env.GW_BENCH_SIZES ?? '10000').split(',')[0]);
const RUNS = Math.max(1, Number(env.GW_BENCH_RUNS ?? 5));
const PERF_DIR = env.GW_PROF_PERF;
const WINDOW = { warmupMs: 200, windowMs: 800 };
const CPUS: [number, number] = [0, 1];

type Transform = (r: Ruleset) => Ruleset;

const mapTables = (f: (t: Table) => Table | undefined): Transform => (r) => ({ tables: r.tables.flatMap((t) => f(t) ?? []) });
const inetOnly = (f: (t: Table) => Table): Transform => mapTables((t) => (t.family === 'inet' ? f(t) : t));
const dropChain = (name: string): Transform => inetOnly((t) => ({ ...t, chains: t.chains.filter((c) => c.name !== name) }));
const emptyChain = (name: string): Transform => inetOnly((t) => ({ ...t, chains: t.chains.map((c) => (c.name === name ? { ...c, rules: [] } : c)) }));
const uses = (s: Stmt, set: string) => JSON.stringify(s).includes(`"@${set}"`);

/** Parts of (c) to take out, one at a time: name -> transform. */
const ABLATIONS: Record<string, Transform> = {
  'no-antispoof': dropChain('antispoof'),
  'no-counters': (r) => ({ tables: r.tables.map((t) => ({ ...t, chains: t.chains.map((c) => ({ ...c, rules: c.rules.map((x) => ({ ...x, stmts: x.stmts.filter((s) => !(typeof s === 'object' && 'counter' in s)) })) })) })) }),
  'no-bridged-pass': inetOnly((t) => ({ ...t, chains: t.chains.map((c) => (c.name === 'forward' ? { ...c, rules: c.rules.filter((x) => !x.stmts.some((s) => uses(s, 'bridged'))) } : c)) })),
  'no-dstnat-rules': emptyChain('dstnat'),
  'no-srcnat-rules': emptyChain('srcnat'),
  'no-bridge-arp-tables': mapTables((t) => (t.family === 'inet' ? t : undefined)),
  'no-input-output': inetOnly((t) => ({ ...t, chains: t.chains.filter((c) => c.name !== 'input' && c.name !== 'output') })),
};

const held: Held = {};
const cleanup = releaseOnExit(held);


async function main(): Promise<void> {
  const { policy, receivers } = benchPolicy(GUESTS);
  const compiled = compilePolicyText('bench.yaml', policyYaml(policy));
  if (!compiled.compiled || !compiled.model) throw new Error('the bench policy has errors');
  const model = compiled.model;
  const full = compiled.compiled.ruleset;
  const before: Record<string, Ruleset> = env.GW_PROF_BEFORE ? { 'c-before': JSON.parse(await readFile(env.GW_PROF_BEFORE, 'utf8')) as Ruleset } : {};
  const all: Record<string, Ruleset> = { "b'": CONNTRACK_NAT, ...before, c: full, ...Object.fromEntries(Object.entries(ABLATIONS).map(([k, f]) => [k, f(full)])) };
  const only = env.GW_PROF_VARIANTS?.split(',');
  const variants = Object.keys(all).filter((v) => !only || only.includes(v));

  await sweepStaleNamespaces();
  held.binaries = await compilePrograms();
  const files: Record<string, string> = {};
  for (const v of variants) {
    files[v] = held.binaries.scratch(`${v.replace(/\W/g, '_')}.json`);
    await writeFile(files[v]!, JSON.stringify(toNftJson(all[v]!)));
  }
  const rx = receivers.map((n) => model.guests.find((g) => g.name === n)!.interfaces[0]!);
  process.stderr.write(`profile: ${GUESTS} guests, variants ${variants.join(' ')}; building the namespaces...\n`);
  held.topology = await buildTopology(model, rx);
  const topo = held.topology;
  const load = async (v: string) => {
    await execa('ip', ['netns', 'exec', topo.host, 'nft', 'flush', 'ruleset']);
    const r = await execa('ip', ['netns', 'exec', topo.host, 'nft', '-j', '-f', files[v]!], { reject: false });
    if (r.exitCode !== 0) throw new Error(`loading ${v}: ${r.stderr}`);
  };
  const maxPackets = Math.floor((await conntrackMax(topo.host)) * 0.85);
  let block = 0;
  const flow = async (to: (typeof topo.receivers)[number], perfOut?: string) => {
    await flushConntrack(held.binaries!, topo.host);
    const base = `198.${18 + ((block >> 12) & 1)}.${(block >> 4) & 0xff}.${(block & 0xf) * 16}`;
    block = (block + 1) % 8192;
    // The sender alone under perf: its syscalls and the forwarding softirq work charged to it.
    const senderPrefix = perfOut ? ['perf', 'record', '-q', '-F', '5000', '-e', 'cpu-clock', '-g', '-o', perfOut, '--'] : undefined;
    return newFlowRun(held.binaries!, { wanNs: topo.wan.ns, rxNs: to.ns, dst: to.addr, port: UDP_PORT, srcBase: base, srcAddrs: 16, maxPackets, w: WINDOW, cpus: CPUS, ...(senderPrefix ? { senderPrefix } : {}) });
  };

  await load('c');
  for (const r of topo.receivers) await flow(r);
  if (PERF_DIR) await mkdir(PERF_DIR, { recursive: true });
  const ns: Record<string, Record<string, number[]>> = Object.fromEntries(variants.map((v) => [v, { routed: [], bridged: [] }]));
  const kpps: Record<string, Record<string, number[]>> = Object.fromEntries(variants.map((v) => [v, { routed: [], bridged: [] }]));
  const runs: { variant: string; mode: string; round: number; sent: number; cpuNsPerPacket: number; pps: number; perf?: string }[] = [];
  for (let k = 0; k < RUNS; k++) {
    const order = [...variants.slice(k % variants.length), ...variants.slice(0, k % variants.length)];
    for (const v of order) {
      await load(v);
      for (const r of topo.receivers) {
        const perf = PERF_DIR ? `${PERF_DIR}/${v.replace(/\W/g, '_')}-${r.mode}-r${k}.data` : undefined;
        const f = await flow(r, perf);
        ns[v]![r.mode]!.push(f.cpuNsPerPacket);
        kpps[v]![r.mode]!.push(f.pps / 1000);
        runs.push({ variant: v, mode: r.mode, round: k, sent: f.sent, cpuNsPerPacket: f.cpuNsPerPacket, pps: f.pps, ...(perf ? { perf } : {}) });
      }
    }
    process.stderr.write(`  round ${k + 1}/${RUNS}: ${variants.map((v) => `${v} ${ns[v]!.routed!.at(-1)!.toFixed(0)}/${ns[v]!.bridged!.at(-1)!.toFixed(0)}`).join(', ')}\n`);
  }
  if (PERF_DIR) await writeFile(`${PERF_DIR}/runs.json`, JSON.stringify(runs, null, 1));

  const lines = [
    `## Per-variant sender CPU per new-flow packet, ${GUESTS} guests, median of ${RUNS} rounds (ns; kpps in brackets)`,
    '',
    '| variant | routed ns | c - variant | bridged ns | c - variant |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  const c = { routed: median(ns.c?.routed ?? [NaN]), bridged: median(ns.c?.bridged ?? [NaN]) };
  for (const v of variants) {
    const r = median(ns[v]!.routed!);
    const b = median(ns[v]!.bridged!);
    lines.push(`| ${v} | ${r.toFixed(0)} (${median(kpps[v]!.routed!).toFixed(0)}k) | ${(c.routed - r).toFixed(0)} | ${b.toFixed(0)} (${median(kpps[v]!.bridged!).toFixed(0)}k) | ${(c.bridged - b).toFixed(0)} |`);
  }
  console.log(lines.join('\n'));
  if (env.GW_PROF_JSON) await writeFile(env.GW_PROF_JSON, JSON.stringify({ guests: GUESTS, runs: RUNS, ns, kpps }, null, 2));
}

try {
  await main();
} finally {
  await execa('ip', ['netns', 'exec', held.topology?.host ?? 'none', 'nft', 'flush', 'ruleset'], { reject: false });
  await cleanup();
}
