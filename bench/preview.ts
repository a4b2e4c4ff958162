// node dist/bench/preview.js [GUESTS] [ROUNDS]: guestwall preview on a generated policy (1,000
// guests by default), in-process with ink-testing-library: time to first frame (compile + first
// render, after the modules are loaded) and keypress-to-frame for each view key, a scroll, the
// rules filter and the matrix. Each round starts from a fresh compile (a new policy version, so
// nothing is cached from the round before); the figures are the median of the rounds (5 by
// default) with the worst in brackets, and the first round alone (cold: what a user who starts
// the preview meets). Targets: < 1000 ms and < 100 ms.
import { nextState } from '../src/tui/state.js';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';

// As `guestwall preview` runs it: React's production build, unless NODE_ENV says otherwise.
process.env.NODE_ENV ??= 'production';
const { render } = await import('ink-testing-library');
const { createElement } = await import('react');
const { App } = await import('../src/tui/app.js');

const guests = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 5);
const text = policyYaml(scaledPolicy(guests));

/** [label, key, the text the frame shows once the key took effect]; keys a build lacks are left out. */
const KEYS: [string, string, string][] = [
  ['3 Rules (right after the first frame)', '3', '[3 Rules]'],
  ['Rules: j (scroll)', 'j', 'lines 2-'],
  ['2 Matrix (first opening)', '2', '[2 Matrix]'],
  ['Matrix: right', '\x1b[C', '[2 Matrix]'],
  ['4 Problems', '4', '[4 Problems]'],
  ['5 What-if', '5', '[5 What-if]'],
  ['What-if: right (new verdict)', '\x1b[C', 'verdict'],
  ['1 Overview', '1', '[1 Overview]'],
  ['Overview: j (scroll)', 'j', '[1 Overview]'],
  ['2 Matrix (again)', '2', '[2 Matrix]'],
  ['3 Rules (again)', '3', '[3 Rules]'],
  ['Rules: f (filter picker)', 'f', 'show only the rules of'],
  ['picker: Enter (filter by the first zone)', '\r', 'without the filter'],
  ['Rules filtered: j (scroll)', 'j', 'lines 2-'],
  ['Rules: F (clear the filter)', 'F', 'lines 1-'],
  ['6 Diff', '6', '[6 Diff]'],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const firsts: number[] = [];
const matrixReady: number[] = [];
const times = new Map<string, number[]>();

for (let round = 0; round < rounds; round++) {
  const t0 = performance.now();
  const state = nextState(undefined, `bench-${round}.yaml`, { text });
  const r = render(createElement(App, { state, color: false }));
  firsts.push(performance.now() - t0);
  if (!r.lastFrame()?.includes('[1 Overview]')) throw new Error(`no first frame:\n${r.lastFrame()}`);
  const waitFor = async (start: number, done: () => boolean, what: string) => {
    while (!done()) {
      if (performance.now() - start > 20_000) throw new Error(`no frame with ${what}:\n${r.lastFrame()}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return performance.now() - start;
  };
  for (const [label, key, expect] of KEYS) {
    // Keys a build before the filter and the Diff view lacks (to measure that build with this bench).
    if (/filter|Diff/.test(label) && !r.lastFrame()!.includes('6 Diff')) continue;
    const start = performance.now();
    const before = r.frames.length;
    r.stdin.write(key);
    const ms = await waitFor(start, () => r.frames.length > before && r.lastFrame()!.includes(expect), expect);
    times.set(label, [...(times.get(label) ?? []), ms]);
    // The matrix may first show a placeholder: how long from the key until it is all there.
    if (label.startsWith('2 Matrix (first')) matrixReady.push(await waitFor(start, () => r.lastFrame()!.includes('from\\to'), 'the matrix'));
  }
  r.unmount();
}

const fmt = (xs: number[]) => `${median(xs).toFixed(1)} (${Math.max(...xs).toFixed(1)}) | ${xs[0]!.toFixed(1)}`;
console.log(`## preview, ${guests} guests, ${rounds} rounds (node ${process.version}, NODE_ENV=${process.env.NODE_ENV})\n`);
console.log('| ms | median (worst) | first round |\n| --- | ---: | ---: |');
console.log(`| time to first frame (target < 1000) | ${fmt(firsts)} |`);
let worst = 0;
for (const [label] of KEYS) {
  const xs = times.get(label);
  if (!xs) continue;
  worst = Math.max(worst, median(xs));
  console.log(`| keypress to frame: ${label} | ${fmt(xs)} |`);
}
console.log(`| the matrix all there, from the key that first opened it | ${fmt(matrixReady)} |`);
console.log(`\nfirst frame: ${median(firsts) < 1000 ? 'met' : 'NOT met'}; worst median keypress to frame: ${worst.toFixed(1)} ms (target < 100 ms: ${worst < 100 ? 'met' : 'NOT met'})`);
