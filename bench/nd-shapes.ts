// npm run bench:nd: the neighbour-advert target check's candidate shapes at GW_BENCH_SIZES guests
// (default 10000), loaded into a throwaway network namespace: first load and replace of the
// whole ruleset, and what one guest's change costs there. Medians of GW_BENCH_RUNS runs (default
// 5), min-max, shapes rotated within each run so a busy machine weighs on all of them alike.
//  - anonymous: what guestwall compiles, one rule per table with every (port, target) pair in one
//    anonymous set; loads as JSON. A guest's change: that rule again (an `add rule` of it here).
//  - chains: the shape before issue 17, a chain per port (return per target, counter drop)
//    reached by `iifname vmap @nd_target`; JSON. A guest's change: a chain, its rules, an element.
//  - typeof: a named set `typeof iifname . @th,64,128`, which nft 1.0.6's JSON cannot declare, so
//    the whole ruleset is loaded as nft text. A guest's change: `add element` (JSON takes that,
//    the set being there). The set is written as text here because the IR has no `typeof` set.
import { join } from 'node:path';
import { jsonStmt, toNftJson } from '../src/nft/json.js';
import { printRuleset } from '../src/nft/print.js';
import type { Chain, Rule, Ruleset, Table } from '../src/nft/ruleset.js';
import type { SetElement, Stmt } from '../src/nft/types.js';
import { inBenchNamespace, scaledRuleset } from './namespace.js';
import { cell } from './stats.js';

const SIZES = (process.env.GW_BENCH_SIZES ?? '10000').split(',').map(Number);
const RUNS = Number(process.env.GW_BENCH_RUNS ?? 5);

const ruleCount = (r: Ruleset) => r.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);

/** The ND rule of a table and its anonymous set of (port, target) pairs. */
function ndRule(t: Table): { chain: Chain; rule: Rule; pairs: { concat: SetElement[] }[] } | undefined {
  for (const chain of t.chains) {
    for (const rule of chain.rules) {
      if (!rule.origin.id.endsWith(':spoof-nd')) continue;
      const pairs = rule.stmts.flatMap((s) => ('match' in s && typeof s.match.right === 'object' && 'set' in s.match.right ? s.match.right.set : [])) as { concat: SetElement[] }[];
      return { chain, rule, pairs };
    }
  }
  return undefined;
}

/** The per-port chains shape, built from the compiled pairs. */
function chainsShape(rs: Ruleset): Ruleset {
  const out = structuredClone(rs);
  for (const t of out.tables) {
    const nd = ndRule(t);
    if (!nd) continue;
    const byPort = new Map<string, SetElement[]>();
    for (const p of nd.pairs) byPort.set(String(p.concat[0]), [...(byPort.get(String(p.concat[0])) ?? []), p.concat[1]!]);
    const chains = [...byPort].map(([, targets], i): Chain => ({
      name: `nd_${i}`,
      rules: [...targets.map((v): Rule => ({ stmts: [{ match: { op: '==', left: { payload: { base: 'th', offset: 64, len: 128 } }, right: v } }, { return: null }], origin: nd.rule.origin })), { stmts: [{ counter: null }, { drop: null }], origin: nd.rule.origin }],
    }));
    t.chains.push(...chains);
    t.sets.push({ kind: 'map', name: 'nd_target', type: 'ifname', map: 'verdict', elements: [...byPort.keys()].map((port, i) => [port, { jump: { target: `nd_${i}` } }]) });
    const rule = t.chains.find((c) => c.name === nd.chain.name)!.rules.find((r) => r.origin.id.endsWith(':spoof-nd'))!;
    rule.stmts = [rule.stmts[0]!, { vmap: { key: { meta: { key: 'iifname' } }, data: { setRef: 'nd_target' } } }];
  }
  return out;
}

/** The typeof named set shape as nft text: the printed ruleset with the anonymous set made a named one. */
function typeofText(rs: Ruleset): string {
  let text = printRuleset(rs);
  for (const t of rs.tables) {
    const nd = ndRule(t);
    if (!nd) continue;
    const el = (p: { concat: SetElement[] }) => {
      const v = p.concat[1]!;
      return `"${String(p.concat[0])}" . ${typeof v === 'object' && 'range' in v ? v.range.join('-') : String(v)}`;
    };
    const decl = `\tset nd_targets {\n\t\ttypeof iifname . @th,64,128\n\t\tflags interval\n\t\telements = { ${nd.pairs.map(el).join(',\n\t\t\t')} }\n\t}\n`;
    const head = `table ${t.family} ${t.name} {\n`;
    const at = text.lastIndexOf(head) + head.length;
    text = text.slice(0, at) + decl + text.slice(at);
  }
  return text.replace(/iifname \. @th,64,128 != \{[^}]*\}/g, 'iifname . @th,64,128 != @nd_targets');
}

const rows: string[] = [];
await inBenchNamespace('bench-nd', 'ND target check shapes', async ({ sys, dir }) => {
  const nft = async (args: string[]) => {
    const t = performance.now();
    const r = await sys.run('nft', args);
    if (r.code !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
    return performance.now() - t;
  };
  for (const n of SIZES) {
    const anonymous = scaledRuleset(n);
    const chains = chainsShape(anonymous);
    const bridge = anonymous.tables.find((t) => t.family === 'bridge')!;
    const nd = ndRule(bridge)!;
    // One more guest port with a global and a link-local target, in each shape's own terms.
    const port = 'gw-bench-new';
    const newPairs = [{ concat: [port, '0xfd0000ff0000000000000000000000aa'] }, { concat: [port, '0xfe8000000000000000000afffe0000aa'] }];
    const ref = { family: 'bridge' as const, table: bridge.name };
    const files = {
      anonymous: join(dir, `anonymous-${n}.json`),
      chains: join(dir, `chains-${n}.json`),
      typeof: join(dir, `typeof-${n}.nft`),
      anonymousGuest: join(dir, `anonymous-guest-${n}.json`),
      chainsGuest: join(dir, `chains-guest-${n}.json`),
      typeofGuest: join(dir, `typeof-guest-${n}.json`),
    };
    await sys.writeFile(files.anonymous, JSON.stringify(toNftJson(anonymous)));
    await sys.writeFile(files.chains, JSON.stringify(toNftJson(chains)));
    await sys.writeFile(files.typeof, typeofText(anonymous));
    const ndStmts: Stmt[] = nd.rule.stmts.map((s) => ('match' in s && typeof s.match.right === 'object' && 'set' in s.match.right ? { match: { ...s.match, right: { set: [...nd.pairs, ...newPairs] } } } : s));
    await sys.writeFile(files.anonymousGuest, JSON.stringify({ nftables: [{ add: { rule: { ...ref, chain: nd.chain.name, expr: ndStmts.map(jsonStmt), comment: 'bench' } } }] }));
    await sys.writeFile(files.chainsGuest, JSON.stringify({ nftables: [
      { add: { chain: { ...ref, name: 'nd_new' } } },
      ...newPairs.map((p) => ({ add: { rule: { ...ref, chain: 'nd_new', expr: [{ match: { op: '==', left: { payload: { base: 'th', offset: 64, len: 128 } }, right: p.concat[1] } }, { return: null }] } } })),
      { add: { rule: { ...ref, chain: 'nd_new', expr: [{ counter: null }, { drop: null }] } } },
      { add: { element: { ...ref, name: 'nd_target', elem: [[port, { jump: { target: 'nd_new' } }]] } } },
    ] }));
    await sys.writeFile(files.typeofGuest, JSON.stringify({ nftables: [{ add: { element: { ...ref, name: 'nd_targets', elem: newPairs } } }] }));
    process.stderr.write(`loading the ${n}-guest ND shapes ${RUNS} times...\n`);
    const shapes = [
      { name: 'one anonymous set (JSON, guestwall)', load: ['-j', '-f', files.anonymous], guest: ['-j', '-f', files.anonymousGuest], rules: ruleCount(anonymous) },
      { name: 'a chain per port (JSON, before)', load: ['-j', '-f', files.chains], guest: ['-j', '-f', files.chainsGuest], rules: ruleCount(chains) },
      { name: 'typeof named set (nft text)', load: ['-f', files.typeof], guest: ['-j', '-f', files.typeofGuest], rules: ruleCount(anonymous) },
    ].map((s) => ({ ...s, first: [] as number[], replace: [] as number[], guestMs: [] as number[] }));
    for (let i = 0; i < RUNS; i++) {
      for (let k = 0; k < shapes.length; k++) {
        const s = shapes[(i + k) % shapes.length]!;
        await sys.run('nft', ['delete', 'table', 'inet', 'guestwall']);
        await sys.run('nft', ['delete', 'table', 'bridge', 'guestwall']);
        await sys.run('nft', ['delete', 'table', 'arp', 'guestwall']);
        s.first.push(await nft(s.load));
        s.replace.push(await nft(s.load));
        s.guestMs.push(await nft(s.guest));
      }
    }
    for (const s of shapes) rows.push(`| ${n} | ${s.name} | ${s.rules} | ${cell(s.first)} | ${cell(s.replace)} | ${cell(s.guestMs)} |`);
  }
});
console.log(`\n## ND target check shapes (ms, median of ${RUNS} runs, min-max; in a network namespace)\n`);
console.log('| guests | shape | rules | first load | replace | one more guest port |');
console.log('| ---: | --- | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(r);
