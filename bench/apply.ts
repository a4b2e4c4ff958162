// npm run bench (part 2): apply time at 10 to 10,000 guests, inside a throwaway network
// namespace: the one-transaction load (first load and replace), the whole `apply` (snapshot,
// load, verify), a no-change apply, and adding one guest to a loaded host. Then `guestwall apply`
// of a small policy as a user runs it (a new process: start-up, kernel probes, compile, lock,
// snapshot, load, verify, network, state files) against its floor, `node -e 0` plus `nft -j -f`
// of the same ruleset, side by side in each round.
// Medians of GW_BENCH_RUNS runs (default 5) with min and max, all measured in this run.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyRuleset } from '../src/apply/apply.js';
import { loadJson } from '../src/apply/nft.js';
import { statePaths } from '../src/apply/state.js';
import type { System } from '../src/apply/system.js';
import { compilePolicyText } from '../src/compile/pipeline.js';
import { toNftJson } from '../src/nft/json.js';
import { inBenchNamespace, scaledRuleset } from './namespace.js';
import { cell, median } from './stats.js';

const SIZES = (process.env.GW_BENCH_SIZES ?? '10,100,1000,10000').split(',').map(Number);
const RUNS = Number(process.env.GW_BENCH_RUNS ?? 5);



async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const rows: string[] = [];
const cli: string[] = [];
await inBenchNamespace('bench', 'apply', async ({ sys, name: ns, dir }) => {
  for (const n of SIZES) {
    process.stderr.write(`applying a ${n}-guest ruleset ${RUNS} times...\n`);
    const ruleset = scaledRuleset(n);
    const plusOne = scaledRuleset(n + 1);
    const file = join(dir, `r${n}.json`);
    await sys.writeFile(file, `${JSON.stringify(toNftJson(ruleset))}\n`);
    const first: number[] = [];
    const replace: number[] = [];
    const full: number[] = [];
    const noChange: number[] = [];
    const addOne: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await sys.run('nft', ['delete', 'table', 'inet', 'guestwall']);
      first.push(await time(async () => (await loadJson(sys, file)).code === 0 || Promise.reject(new Error('load failed'))));
      replace.push(await time(() => loadJson(sys, file)));
      const state = statePaths(join(dir, `state-${n}-${i}`));
      const opts = { state, timerCommand: ['true'] };
      await sys.run('nft', ['delete', 'table', 'inet', 'guestwall']);
      full.push(await time(() => applyRuleset(sys, ruleset, opts)));
      noChange.push(await time(() => applyRuleset(sys, ruleset, opts)));
      addOne.push(await time(() => applyRuleset(sys, plusOne, opts)));
    }
    rows.push(`| ${n} | ${cell(first)} | ${cell(replace)} | ${cell(full)} | ${cell(noChange)} | ${cell(addOne)} | ${(median(full) / median(noChange)).toFixed(1)} |`);
  }
  cli.push(...(await wholeCommand(sys, ns, dir)));
});
console.log(`\n## apply (ms, median of ${RUNS} runs, min-max; in a network namespace)\n`);
console.log('| guests | nft -j -f first load | nft -j -f replace | apply (snapshot, load, verify) | apply, nothing changed | apply, one guest added | full / no-change |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
for (const l of cli) console.log(l);

/** CPU time (user + system, ms) of this process's children that have ended: /proc/self/stat's cutime + cstime, in ticks of 10 ms. */
function childrenCpu(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/**
 * Wall time of a program run to its end, and the CPU time it and every process it waited for
 * used (ms); it must exit 0. On a shared machine the wall time moves with the load, the CPU
 * time much less.
 */
function timed(cmd: string, args: string[]): Promise<{ wall: number; cpu: number }> {
  return new Promise((done, fail) => {
    const cpu = childrenCpu();
    const t = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', fail);
    child.once('close', (code) => (code === 0 ? done({ wall: performance.now() - t, cpu: childrenCpu() - cpu }) : fail(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/**
 * `guestwall apply` of policies/homelab-dmz.yaml as a new process, run inside the namespace the
 * way it runs on a host (no --netns, so no command is wrapped), its tables and current.json
 * removed before each run so that it loads the whole ruleset as for a changed policy; a no-change
 * apply right after; and the floor: `node -e 0`, and `nft -j -f` of the same ruleset in the
 * namespace. Each has one process start and one `ip netns exec` (the floor's is on nft's side).
 */
async function wholeCommand(sys: System, ns: string, dir: string): Promise<string[]> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const policy = join(root, 'policies', 'homelab-dmz.yaml');
  const bin = join(root, 'bin', 'guestwall.js');
  const state = join(dir, 'cli-state');
  const doc = join(dir, 'homelab.json');
  const r = compilePolicyText(policy, readFileSync(policy, 'utf8'));
  if (!r.compiled) throw new Error('homelab-dmz.yaml has errors');
  await sys.writeFile(doc, `${JSON.stringify(toNftJson(r.compiled.ruleset))}\n`);
  const forget = async () => {
    for (const t of r.compiled!.ruleset.tables) await sys.run('nft', ['delete', 'table', t.family, t.name]);
    await rm(join(state, 'current.json'), { force: true });
  };
  const apply = ['netns', 'exec', ns, process.execPath, bin, 'apply', '--state-dir', state, policy];
  process.stderr.write(`guestwall apply of homelab-dmz.yaml as a command, ${RUNS} rounds...\n`);
  await timed('ip', apply); // the first run creates the bridges and the state directory
  type Run = { wall: number; cpu: number };
  const node: Run[] = [];
  const load: Run[] = [];
  const whole: Run[] = [];
  const same: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    node.push(await timed(process.execPath, ['-e', '0']));
    await forget();
    load.push(await timed('ip', ['netns', 'exec', ns, 'nft', '-j', '-f', doc]));
    await forget();
    whole.push(await timed('ip', apply));
    same.push(await timed('ip', apply));
  }
  const r2 = (xs: number[]) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
  const row = (what: string, k: keyof Run) => {
    const floor = node.map((x, i) => x[k] + load[i]![k]);
    return `| ${what} | ${cell(node.map((x) => x[k]))} | ${cell(load.map((x) => x[k]))} | ${cell(floor)} | ${cell(whole.map((x) => x[k]))} | ${r2(whole.map((x, i) => x[k] / floor[i]!))} | ${cell(same.map((x) => x[k]))} |`;
  };
  return [
    `\n## guestwall apply as a command (policies/homelab-dmz.yaml: ${r.compiled.ruleset.tables.reduce((a, t) => a + t.chains.reduce((b, c) => b + c.rules.length, 0), 0)} rules; ms, median of ${RUNS} rounds, min-max)\n`,
    '| | node -e 0 | nft -j -f | floor (sum) | guestwall apply, whole ruleset | apply / floor (per round) | guestwall apply, nothing changed |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    row('wall time', 'wall'),
    row('CPU time (user + system, all its processes)', 'cpu'),
  ];
}
