// node dist/bench/preview.js [GUESTS]: guestwall preview on a generated policy (1,000 guests by
// default): time to first frame (compile + first render, after the modules are loaded) and
// keypress-to-frame for each view key and a scroll. Targets: < 1000 ms and < 100 ms.
import { render } from 'ink-testing-library';
import { createElement } from 'react';
import { App } from '../src/tui/app.js';
import { nextState } from '../src/tui/state.js';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';

const guests = Number(process.argv[2] ?? 1000);
const text = policyYaml(scaledPolicy(guests));
const t0 = performance.now();
const state = nextState(undefined, 'bench.yaml', { text });
const r = render(createElement(App, { state, color: false }));
const first = performance.now() - t0;
if (!r.lastFrame()?.includes('[1 Overview]')) throw new Error(`no first frame:\n${r.lastFrame()}`);

async function press(key: string, expect: string): Promise<number> {
  const start = performance.now();
  const before = r.frames.length;
  r.stdin.write(key);
  while (r.frames.length === before || !r.lastFrame()!.includes(expect)) {
    if (performance.now() - start > 10_000) throw new Error(`no frame with ${expect} after ${key}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return performance.now() - start;
}

const keys: [string, string, string][] = [
  ['3 Rules', '3', '[3 Rules]'],
  ['Rules: j (scroll)', 'j', 'lines 2-'],
  ['4 Problems', '4', '[4 Problems]'],
  ['5 What-if', '5', '[5 What-if]'],
  ['What-if: right (new verdict)', '\x1b[C', 'verdict'],
  ['1 Overview', '1', '[1 Overview]'],
  ['Overview: j (scroll)', 'j', '[1 Overview]'],
  ['2 Matrix (first time: computes the matrix)', '2', '[2 Matrix]'],
  ['Matrix: right', '\x1b[C', '[2 Matrix]'],
];
console.log(`## preview, ${guests} guests (node ${process.version})\n`);
console.log(`time to first frame: ${first.toFixed(0)} ms (target < 1000 ms: ${first < 1000 ? 'met' : 'NOT met'})\n`);
console.log('| key | keypress to frame ms |\n| --- | ---: |');
let worst = 0;
for (const [label, key, expect] of keys) {
  const ms = await press(key, expect);
  if (!label.includes('first time')) worst = Math.max(worst, ms);
  console.log(`| ${label} | ${ms.toFixed(1)} |`);
}
console.log(`\nworst keypress to frame (the matrix's first opening left out): ${worst.toFixed(1)} ms (target < 100 ms: ${worst < 100 ? 'met' : 'NOT met'})`);
r.unmount();
