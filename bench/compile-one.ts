// One size of the compile benchmark, in its own process so that its peak RSS is its own.
// Usage: node dist/bench/compile-one.js GUESTS RUNS
import { BASELINE_FEATURES } from '../src/compile/features.js';
import { compile } from '../src/compile/index.js';
import { buildHostModel } from '../src/model/host.js';
import { toNftJson } from '../src/nft/json.js';
import { loadPolicy } from '../src/policy/load.js';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';

const guests = Number(process.argv[2]);
const runs = Number(process.argv[3] ?? 5);
const text = policyYaml(scaledPolicy(guests));
const load: number[] = [];
const rest: number[] = [];
let rules = 0;
let elements = 0;
let bytes = 0;
for (let i = 0; i < runs; i++) {
  // What `guestwall compile` does, in two timed steps: read and validate the YAML; then model,
  // compile and emit the JSON text.
  const t0 = process.hrtime.bigint();
  const loaded = loadPolicy('bench.yaml', text);
  if (!loaded.policy) throw new Error(`bench policy has errors: ${loaded.diagnostics.slice(0, 3).map((d) => d.message).join('; ')}`);
  const t1 = process.hrtime.bigint();
  const ruleset = compile(buildHostModel(loaded.policy, 'bench.yaml', (p) => loaded.locate(p)), BASELINE_FEATURES).ruleset;
  const json = JSON.stringify(toNftJson(ruleset));
  const t2 = process.hrtime.bigint();
  load.push(Number(t1 - t0) / 1e6);
  rest.push(Number(t2 - t1) / 1e6);
  rules = ruleset.tables.reduce((n, x) => n + x.chains.reduce((m, c) => m + c.rules.length, 0), 0);
  elements = ruleset.tables.reduce((n, x) => n + x.sets.reduce((m, s) => m + s.elements.length, 0), 0);
  bytes = json.length;
}
process.stdout.write(`${JSON.stringify({ guests, load, rest, rules, elements, bytes, policyBytes: text.length, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
