// npm run bench: compile time, peak memory, rule and element counts for generated policies of
// 10 to 10,000 guests. Each size runs in its own process (peak RSS is per process); times are
// medians of the runs with min and max, the first (JIT warm-up) run left out and shown on its
// own as "cold". Then what a user waits for: `guestwall compile FILE` as a fresh process each
// time (start-up, reading, compiling, printing the JSON). Growth ratios compare neighbouring
// sizes measured in this same run.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';
import { median } from './stats.js';

const SIZES = (process.env.GW_BENCH_SIZES ?? '10,100,1000,10000').split(',').map(Number);
const RUNS = Number(process.env.GW_BENCH_RUNS ?? 7);
const one = fileURLToPath(new URL('./compile-one.js', import.meta.url));

const cli = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../bin/guestwall.js' : '../bin/guestwall.js', import.meta.url));

interface Result { guests: number; load: number[]; rest: number[]; cold: number; cli: number[]; rules: number; elements: number; bytes: number; policyBytes: number; maxRssKiB: number }

const f = (n: number, d = 1) => n.toFixed(d);
const total = (r: Result) => r.load.map((l, i) => l + r.rest[i]!);

/** `guestwall compile FILE` for an n-guest policy, `runs` times, each a new process: wall ms. */
function cliRuns(n: number, runs: number): number[] {
  const dir = mkdtempSync(join(tmpdir(), 'gw-bench-compile-'));
  try {
    const file = join(dir, `scaled-${n}.yaml`);
    writeFileSync(file, policyYaml(scaledPolicy(n)));
    return Array.from({ length: runs }, () => {
      const t0 = process.hrtime.bigint();
      execFileSync(process.execPath, [cli, 'compile', file, '--kernel-features', 'baseline'], { stdio: 'ignore' });
      return Number(process.hrtime.bigint() - t0) / 1e6;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results: Result[] = [];
for (const n of SIZES) {
  process.stderr.write(`compiling a ${n}-guest policy ${RUNS} times in one process, then ${RUNS} times with the CLI...\n`);
  const out = execFileSync(process.execPath, [one, String(n), String(RUNS + 1)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const r = JSON.parse(out) as Omit<Result, 'cold' | 'cli'>;
  results.push({ ...r, load: r.load.slice(1), rest: r.rest.slice(1), cold: r.load[0]! + r.rest[0]!, cli: cliRuns(n, RUNS) });
}

console.log(`\n## compile (median of ${RUNS} runs, min-max; node ${process.version})\n`);
console.log('| guests | policy | total ms | read+validate YAML ms | model+compile+JSON ms | cold ms | x total vs previous size | `guestwall compile` ms | rules | set/map elements | peak RSS |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
results.forEach((r, i) => {
  const t = total(r);
  const prev = results[i - 1];
  const growth = prev ? `${f(median(t) / median(total(prev)), 2)} (guests x${f(r.guests / prev.guests, 0)})` : '';
  const range = (xs: number[]) => `${f(median(xs))} (${f(Math.min(...xs))}-${f(Math.max(...xs))})`;
  console.log(`| ${r.guests} | ${f(r.policyBytes / 1024, 0)} KiB | ${range(t)} | ${range(r.load)} | ${range(r.rest)} | ${f(r.cold)} | ${growth} | ${range(r.cli)} | ${r.rules} | ${r.elements} | ${f(r.maxRssKiB / 1024, 0)} MiB |`);
});
const rules = new Set(results.map((r) => r.rules));
console.log(`\nrules: ${rules.size === 1 ? `the same ${[...rules][0]} at every size` : `vary with guests: ${results.map((r) => r.rules).join(', ')}`} (guests become set and map elements)`);
const last = results[results.length - 1]!;
const first = results[0]!;
// Issue 17 item 2: guests only as elements, at most 2x the rules of the smallest size.
console.log(`target: ${last.guests} guests at most 2x the rules of ${first.guests}: ${last.rules <= 2 * first.rules ? 'met' : 'NOT met'} (${last.rules} against ${first.rules}, x${f(last.rules / first.rules, 2)})`);
console.log(`target: ${last.guests} guests compiled in under 1000 ms: ${median(last.cli) < 1000 ? 'met' : 'NOT met'} by \`guestwall compile\` (${f(median(last.cli))} ms, a new process each time); in one warm process ${f(median(total(last)))} ms, of which ${f(median(last.load))} ms reading and validating the YAML`);
