// npm run bench (part 2): apply time at 10 to 10,000 guests, inside a throwaway network
// namespace: the one-transaction load (first load and replace), the whole `apply` (snapshot,
// load, verify), a no-change apply, and adding one guest to a loaded host.
// Medians of GW_BENCH_RUNS runs (default 5) with min and max, all measured in this run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyRuleset } from '../src/apply/apply.js';
import { loadJson } from '../src/apply/nft.js';
import { statePaths } from '../src/apply/state.js';
import { realSystem } from '../src/apply/system.js';
import { compilePolicyText } from '../src/compile/pipeline.js';
import { toNftJson } from '../src/nft/json.js';
import type { Ruleset } from '../src/nft/ruleset.js';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';

const SIZES = (process.env.GW_BENCH_SIZES ?? '10,100,1000,10000').split(',').map(Number);
const RUNS = Number(process.env.GW_BENCH_RUNS ?? 5);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const cell = (xs: number[]) => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)})`;

function compiled(guests: number): Ruleset {
  const r = compilePolicyText('bench.yaml', policyYaml(scaledPolicy(guests)));
  if (!r.compiled) throw new Error('bench policy has errors');
  return r.compiled.ruleset;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

if (process.getuid?.() !== 0) {
  console.log('\n## apply\n\nskipped: needs root to create a network namespace');
  process.exit(0);
}

const host = realSystem();
const ns = `gw-bench-${process.pid}`;
const dir = await mkdtemp(join(tmpdir(), 'gw-bench-'));
const rows: string[] = [];
try {
  if ((await host.run('ip', ['netns', 'add', ns])).code !== 0) throw new Error('cannot create the bench namespace');
  const sys = realSystem(ns);
  for (const n of SIZES) {
    process.stderr.write(`applying a ${n}-guest ruleset ${RUNS} times...\n`);
    const ruleset = compiled(n);
    const plusOne = compiled(n + 1);
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
} finally {
  await host.run('ip', ['netns', 'del', ns]);
  await rm(dir, { recursive: true, force: true });
}
console.log(`\n## apply (ms, median of ${RUNS} runs, min-max; in a network namespace)\n`);
console.log('| guests | nft -j -f first load | nft -j -f replace | apply (snapshot, load, verify) | apply, nothing changed | apply, one guest added | full / no-change |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
