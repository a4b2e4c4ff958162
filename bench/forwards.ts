// npm run bench (part): how many rules a new connection to a port forward walks, to the first
// forward and to the last, as the number of forwards grows (explain's count of the rules the
// first packet meets in filter prerouting (anti-spoofing), nat prerouting, filter forward and nat postrouting; not a timing, so it
// does not move with the machine's load). Forwards are map elements: the two counts should be
// equal and flat. Also the ruleset's rule and element counts. No root, no namespaces.
// Writes bench/results/forwards.json (GW_BENCH_FWD_OUT=DIR to write elsewhere).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePolicyText } from '../src/compile/pipeline.js';
import { type Packet, evaluate, evaluateNat, evaluatePrerouting } from '../src/explain/evaluate.js';
import type { Ruleset } from '../src/nft/ruleset.js';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';

const COUNTS = (process.env.GW_BENCH_FWD_COUNTS ?? '1,10,100,1000').split(',').map(Number);
const GUESTS = 1000;
const OUT = process.env.GW_BENCH_FWD_OUT ?? fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../bench/results' : './results', import.meta.url));

interface Row { forwards: number; first: number; last: number; rules: number; elements: number }

const ruleSteps = (steps: readonly { rule?: number }[]) => steps.filter((s) => s.rule !== undefined).length;

function measure(n: number): Row {
  const p = scaledPolicy(GUESTS);
  // Only the generated forwards: the scaled policy's own four are replaced by n to n guests.
  const names = Object.keys(p.guests ?? {}).slice(0, n);
  p.forwards = names.map((to, k) => ({ from: 'net', to, proto: 'tcp' as const, ports: 20000 + k }));
  const c = compilePolicyText('bench-forwards.yaml', policyYaml(p));
  if (!c.compiled || !c.model) throw new Error(`the bench policy has errors: ${c.diagnostics.map((d) => d.message).join('; ')}`);
  const ruleset: Ruleset = c.compiled.ruleset;
  const walk = (k: number) => {
    const f = c.model!.forwards[k]!;
    const packet: Packet = { family: 4, iifname: 'eth0', saddr: '198.18.0.1', daddr: f.publicV4[0]!, proto: 'tcp', sport: 40000, dport: 20000 + k, ct: { state: 'new' } };
    const pre = evaluateNat(ruleset, 'prerouting', packet);
    if (pre.translation?.origin.id !== `forwards[${k}]`) throw new Error(`forward ${k + 1} did not translate its connection`);
    const out = { ...pre.packet, oifname: f.targetInterface! };
    const fwd = evaluate(ruleset, 'forward', out);
    if (fwd.verdict !== 'accept') throw new Error(`forward ${k + 1}'s connection is not accepted (${fwd.verdict})`);
    return ruleSteps(evaluatePrerouting(ruleset, packet).steps) + ruleSteps(pre.steps) + ruleSteps(fwd.steps) + ruleSteps(evaluateNat(ruleset, 'postrouting', out).steps);
  };
  const tables = ruleset.tables;
  return {
    forwards: n,
    first: walk(0),
    last: walk(n - 1),
    rules: tables.reduce((s, t) => s + t.chains.reduce((m, ch) => m + ch.rules.length, 0), 0),
    elements: tables.reduce((s, t) => s + t.sets.reduce((m, x) => m + x.elements.length, 0), 0),
  };
}

const rows = COUNTS.map(measure);
const lines = [
  `Port forwards (${GUESTS} guests): rules a forwarded new connection walks (prerouting filter + nat, forward, nat postrouting; explain's count)`,
  '',
  '| forwards | to the first | to the last | rules in the ruleset | set/map elements |',
  '|---:|---:|---:|---:|---:|',
  ...rows.map((r) => `| ${r.forwards} | ${r.first} | ${r.last} | ${r.rules} | ${r.elements} |`),
];
console.log(lines.join('\n'));
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'forwards.json'), `${JSON.stringify({ guests: GUESTS, rows }, null, 2)}\n`);
