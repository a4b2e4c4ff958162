// node dist/bench/matrix.js [GUESTS]: the reachability matrix (IPv4) of a generated policy
// (tests/support/gen-policy.ts, 100 guests by default), computed 5 times after one compile;
// prints the median and the worst. The matrix probes every service at every port edge, both
// ends of each piece, in every cell, so its cost follows cells x services x pieces, not guests.
import { compilePolicyText } from '../src/compile/pipeline.js';
import { reachabilityMatrix } from '../src/explain/matrix.js';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';
const n = Number(process.argv[2] ?? 100);
const r = compilePolicyText('g.yaml', policyYaml(scaledPolicy(n)));
const ts: number[] = [];
let m;
for (let i = 0; i < 5; i++) { const t = performance.now(); m = reachabilityMatrix(r.model!, r.compiled!.ruleset, 4); ts.push(performance.now() - t); }
ts.sort((a, b) => a - b);
console.log(`${n} guests: matrix ${m!.rows.length}x${m!.cols.length}, median ${ts[2]!.toFixed(0)} ms (worst ${ts[4]!.toFixed(0)})`);
