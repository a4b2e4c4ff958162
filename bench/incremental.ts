// npm run bench:incr: what adding one guest to a big host could cost at best on nft 1.0.6, part by
// part, against issue 17's budget (1.5x a whole apply of a small host, measured in the same run).
// In a throwaway network namespace, at GW_BENCH_SIZES guests (default 10000), `scaledPolicy(n)`
// loaded, then one more guest:
//  - today: `applyRuleset` of the n+1 policy (snapshot, whole replace, verify), as `bench/apply.ts`;
//  - the kernel-checked element transaction alone: `create element` of every set/map element the
//    new guest brings (the kernel refuses an element that is already there, so the transaction
//    checks what it assumes of the live sets, and lists nothing);
//  - the rules that change besides elements: the neighbour-advert check's anonymous set (nft 1.0.6's
//    JSON cannot declare the named `typeof` set that would make it elements), rewritten with
//    inserted before the old rule by its handle and the old one deleted; and a rule with 1/64 of
//    its pairs, the cost of one rule of 64 buckets;
//  - what reading the live state costs: the whole JSON listing, the terse one (`-t`, no named
//    sets' elements, but the anonymous set's pairs still), and the changed sets one by one;
//  - how many rules differ only by their comment (the YAML line moved under the added guest).
// Medians of GW_BENCH_RUNS runs (default 5), min-max. The tables are reloaded (untimed) before
// each timed step, so every step starts from the n-guest host.
import { join } from 'node:path';
import { applyRuleset } from '../src/apply/apply.js';
import { statePaths } from '../src/apply/state.js';
import { toNftJson } from '../src/nft/json.js';
import type { Ruleset } from '../src/nft/ruleset.js';
import { inBenchNamespace, scaledRuleset } from './namespace.js';
import { cell, median } from './stats.js';

const SIZES = (process.env.GW_BENCH_SIZES ?? '10000').split(',').map(Number);
const RUNS = Number(process.env.GW_BENCH_RUNS ?? 5);
const SMALL = 10;
const BUCKETS = 64;

type Json = Record<string, unknown>;
type Command = Record<string, Record<string, Json>>;
/** A rule before and after, and its place in its chain. */
type Pair = { was: Json; now: Json; index: number };


/** The document's commands as (kind, body): `{"add": {"set": {...}}}` gives ["set", {...}]. */
function objects(doc: { nftables: Command[] }): [string, Json][] {
  return doc.nftables.flatMap((cmd) => Object.values(cmd).flatMap((o) => Object.entries(o)));
}

const key = (o: Json) => `${String(o.family)} ${String(o.table)} ${String(o.name)}`;

/** `create element` commands for every element of `after`'s sets and maps that `before` lacks, and the sets they go to. */
function elementDelta(before: { nftables: Command[] }, after: { nftables: Command[] }): { commands: Command[]; sets: [string, Json][] } {
  const old = new Map(objects(before).filter(([k]) => k === 'set' || k === 'map').map(([, o]) => [key(o), new Set(((o.elem as unknown[]) ?? []).map((e) => JSON.stringify(e)))]));
  const commands: Command[] = [];
  const sets: [string, Json][] = [];
  for (const [kind, o] of objects(after)) {
    if (kind !== 'set' && kind !== 'map') continue;
    const had = old.get(key(o)) ?? new Set<string>();
    const added = ((o.elem as unknown[]) ?? []).filter((e) => !had.has(JSON.stringify(e)));
    if (added.length === 0) continue;
    sets.push([kind, o]);
    commands.push({ create: { element: { family: o.family, table: o.table, name: o.name, elem: added } as Json } });
  }
  return { commands, sets };
}

/** Rules of `after` that differ from `before`'s at the same place: by more than the comment, and by the comment only. */
function ruleDelta(before: { nftables: Command[] }, after: { nftables: Command[] }): { changed: Pair[]; commentOnly: Pair[] } {
  const rules = (d: { nftables: Command[] }) => objects(d).filter(([k]) => k === 'rule').map(([, o]) => o);
  const a = rules(before);
  const b = rules(after);
  if (a.length !== b.length) throw new Error(`the added guest changes the number of rules (${a.length} -> ${b.length}): not the shape this bench measures`);
  const bare = (r: Json) => JSON.stringify({ ...r, comment: undefined });
  const changed: Pair[] = [];
  const commentOnly: Pair[] = [];
  const seen = new Map<string, number>();
  a.forEach((was, i) => {
    const now = b[i]!;
    const chain = `${String(was.family)} ${String(was.table)} ${String(was.chain)}`;
    const index = seen.get(chain) ?? 0;
    seen.set(chain, index + 1);
    if (bare(was) !== bare(now)) changed.push({ was, now, index });
    else if (was.comment !== now.comment) commentOnly.push({ was, now, index });
  });
  return { changed, commentOnly };
}

const out: string[] = [];
const notes: string[] = [];
await inBenchNamespace('bincr', 'incremental apply: the parts', async ({ sys, dir }) => {
  const nft = async (args: string[]) => {
    const r = await sys.run('nft', args);
    if (r.code !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  const timed = async (fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  const write = async (name: string, doc: unknown) => {
    const file = join(dir, name);
    await sys.writeFile(file, `${JSON.stringify(doc)}\n`, 0o600, false);
    return file;
  };
  const wipe = async (r: Ruleset) => {
    for (const t of r.tables) await sys.run('nft', ['delete', 'table', t.family, t.name]);
  };

  process.stderr.write(`incremental: a whole apply of a ${SMALL}-guest host, ${RUNS} times...\n`);
  const small = scaledRuleset(SMALL);
  const smallApply: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await wipe(small);
    smallApply.push(await timed(() => applyRuleset(sys, small, { state: statePaths(join(dir, `small-${i}`)), timerCommand: ['true'] })));
  }
  await wipe(small);
  const budget = 1.5 * median(smallApply);
  out.push(`\n## incremental apply: the parts (ms, median of ${RUNS} runs, min-max; in a network namespace)\n`);
  out.push(`A whole apply of a ${SMALL}-guest host (snapshot, load, verify): ${cell(smallApply)}; issue 17's budget for one guest more on a big host, 1.5x that: ${budget.toFixed(0)} ms.\n`);
  out.push('| guests | today: apply, one guest added | kernel-checked element transaction | ND rule rewritten (anonymous set) | one ND bucket of 64 rewritten | rules differing only by comment | those rewritten | whole JSON listing | terse JSON listing | the changed sets listed |');
  out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');

  for (const n of SIZES) {
    process.stderr.write(`incremental: ${n} guests: compiling...\n`);
    const base = scaledRuleset(n);
    const plusOne = scaledRuleset(n + 1);
    const docA = toNftJson(base) as unknown as { nftables: Command[] };
    const docB = toNftJson(plusOne) as unknown as { nftables: Command[] };
    const baseFile = await write(`base-${n}.json`, docA);
    const { commands, sets } = elementDelta(docA, docB);
    const { changed, commentOnly } = ruleDelta(docA, docB);
    const elementsFile = await write(`elements-${n}.json`, { nftables: commands });
    const reload = () => nft(['-j', '-f', baseFile]);

    /** The live handles of the changed rules, found by their comment (untimed), and the two rewrite documents. */
    const rewrites = async () => {
      const whole: Command[] = [];
      const bucket: Command[] = [];
      const comments: Command[] = [];
      const live = new Map<string, Json[]>();
      const handle = async ({ was: r, index }: Pair) => {
        const chain = `${String(r.family)} ${String(r.table)} ${String(r.chain)}`;
        if (!live.has(chain)) {
          const listing = JSON.parse(await nft(['-j', '-a', 'list', 'chain', String(r.family), String(r.table), String(r.chain)])) as { nftables: Record<string, Json>[] };
          live.set(chain, listing.nftables.flatMap((o) => (o.rule ? [o.rule] : [])));
        }
        const found = live.get(chain)![index];
        if (found === undefined || found.comment !== r.comment) throw new Error(`rule "${String(r.comment)}" is not live at place ${index} of its chain`);
        return found.handle;
      };
      for (const p of commentOnly) {
        const { was, now } = p;
        const h = await handle(p);
        comments.push({ insert: { rule: { ...now, handle: h } } }, { delete: { rule: { family: was.family, table: was.table, chain: was.chain, handle: h } as Json } });
      }
      for (const p of changed) {
        const { was, now } = p;
        const live = { handle: await handle(p) };
        // Inserted before the old rule by its handle, the old one deleted: `replace rule` makes nft
        // 1.0.6 read the whole ruleset first (0.70 s against 0.03 s for this at 10,000 guests).
        const gone = { delete: { rule: { family: was.family, table: was.table, chain: was.chain, handle: live.handle } as Json } };
        whole.push({ insert: { rule: { ...now, handle: live.handle } } }, gone);
        bucket.push({ insert: { rule: { ...shrink(now), handle: live.handle } } }, gone);
      }
      return { whole: await write(`rewrite-${n}.json`, { nftables: whole }), bucket: await write(`bucket-${n}.json`, { nftables: bucket }), comments: await write(`comments-${n}.json`, { nftables: comments }) };
    };

    const today: number[] = [];
    const elements: number[] = [];
    const rewrite: number[] = [];
    const oneBucket: number[] = [];
    const moved: number[] = [];
    const list: number[] = [];
    const terse: number[] = [];
    const listSets: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      process.stderr.write(`incremental: ${n} guests: run ${i + 1} of ${RUNS}...\n`);
      const state = statePaths(join(dir, `big-${n}-${i}`));
      await wipe(base);
      await applyRuleset(sys, base, { state, timerCommand: ['true'] });
      today.push(await timed(() => applyRuleset(sys, plusOne, { state, timerCommand: ['true'] })));
      await reload();
      elements.push(await timed(() => nft(['-j', '-f', elementsFile])));
      await reload();
      const files = await rewrites();
      rewrite.push(await timed(() => nft(['-j', '-f', files.whole])));
      await reload();
      const again = await rewrites();
      oneBucket.push(await timed(() => nft(['-j', '-f', again.bucket])));
      await reload();
      const third = await rewrites();
      moved.push(await timed(() => nft(['-j', '-f', third.comments])));
      await reload();
      list.push(await timed(() => nft(['-j', 'list', 'ruleset'])));
      terse.push(await timed(() => nft(['-t', '-j', 'list', 'ruleset'])));
      listSets.push(await timed(async () => {
        for (const [kind, s] of sets) await nft(['-j', 'list', kind, String(s.family), String(s.table), String(s.name)]);
      }));
    }
    await wipe(base);
    out.push(`| ${n} | ${cell(today)} | ${cell(elements)} | ${cell(rewrite)} | ${cell(oneBucket)} | ${commentOnly.length} of ${changed.length + commentOnly.length} changed | ${cell(moved)} | ${cell(list)} | ${cell(terse)} | ${cell(listSets)} |`);
    const trusting = median(elements) + median(rewrite) + median(moved);
    const sound = trusting + median(terse);
    notes.push(`\n${n} guests: ${commands.length} sets and maps get ${commands.reduce((a, c) => a + ((c.create!.element!.elem as unknown[]).length), 0)} elements; ${changed.length} rule(s) change besides comments.`);
    notes.push(`- elements + ND rule + the rules whose comment moved + a terse listing (the cheapest path that still reads the rules live before): ${sound.toFixed(0)} ms = ${(sound / median(smallApply)).toFixed(1)}x the small apply (budget 1.5x);`);
    notes.push(`- elements + ND rule + the rules whose comment moved, trusting the record for everything untouched (no listing): ${trusting.toFixed(0)} ms = ${(trusting / median(smallApply)).toFixed(1)}x;`);
    notes.push(`- the same with one ND bucket of 64 instead of the whole ND rule: ${(trusting - median(rewrite) + median(oneBucket)).toFixed(0)} ms = ${((trusting - median(rewrite) + median(oneBucket)) / median(smallApply)).toFixed(1)}x;`);
    notes.push(`- today's apply: ${(median(today) / median(smallApply)).toFixed(1)}x.`);
  }
});
for (const l of [...out, '\nThe sums are nft\'s part alone: guestwall\'s own work on top (the document, the delta, the state files) is not in them.', ...notes]) console.log(l);

/** The rule with its anonymous set cut to 1/BUCKETS of its elements: what one bucket's rule would hold. */
function shrink(rule: Json): Json {
  const cut = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(cut);
    if (v !== null && typeof v === 'object') {
      const o = v as Json;
      if (Array.isArray(o.set) && o.set.length > BUCKETS) return { ...o, set: o.set.slice(0, Math.ceil(o.set.length / BUCKETS)) };
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, cut(x)]));
    }
    return v;
  };
  return cut(rule) as Json;
}
