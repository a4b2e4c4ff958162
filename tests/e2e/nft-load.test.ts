// The real kernel accepts what the compiler emits. Every example policy and a few hundred
// generated ones load with `nft -j -f` (and the nft-syntax twin with `nft -f`), replace
// themselves when loaded again, keep every rule and its comment, and leave other tables alone.
// Everything runs inside throwaway network namespaces (`gw-load-<pid>-*`), deleted when each test
// is over, also when vitest's timeout ended it (tests/support/kernel.ts: testNamespaces), and
// those a run killed outright left are deleted by the next; nothing is ever loaded into the
// machine's own namespace.
// GW_GEN_RUNS=2000 runs more generated policies; GW_GEN_SEED=<n> replays another seed.
import { readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { toNftJson } from '../../src/nft/json.js';
import { printRuleset } from '../../src/nft/print.js';
import { type Ruleset, ruleComment } from '../../src/nft/ruleset.js';
import { formatDiagnostic } from '../../src/policy/diagnostics.js';
import { compileExample } from '../support/compile.js';
import { policyArb, policyYaml } from '../support/gen-policy.js';
import { type TestNamespaces, kernelTestUnavailable, sweepDeadRuns, testNamespaces } from '../support/kernel.js';

const skipReason = kernelTestUnavailable();
const skipped = skipReason ? ` (skipped: ${skipReason})` : '';

const GEN_RUNS = Number(process.env.GW_GEN_RUNS ?? 300);
const GEN_SEED = Number(process.env.GW_GEN_SEED ?? 0x67770a11);

/** Somebody else's tables (a container runtime's filter and NAT), which guestwall must never touch. */
const FOREIGN = `table inet dockerish {
	chain forward {
		type filter hook forward priority 0; policy accept;
		iifname "docker0" oifname != "docker0" counter accept
	}
}
table ip natish {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 172.17.0.0/16 oifname != "docker0" masquerade
	}
}
`;
const FOREIGN_TABLES = ['inet dockerish', 'ip natish'];

const examples = readdirSync('policies').filter((f) => f.endsWith('.yaml')).sort();

const PREFIX = 'gw-load';

describe.skipIf(skipReason !== undefined)(`the kernel loads what the compiler emits${skipped}`, () => {
  let dir = '';
  // The test running now, whose namespaces nft may use: a timed-out test's body, still running,
  // finds its own namespaces closed and stops.
  let pool: TestNamespaces | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-load-'));
    const swept = await sweepDeadRuns(PREFIX);
    if (swept.length > 0) console.log(`nft-load: deleted ${swept.length} namespaces of runs that were killed: ${swept.join(' ')}`);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    // Each test's namespaces went when it finished; none of this run's may be left.
    const { stdout } = await execa('ip', ['netns', 'list']);
    expect(stdout.split('\n').filter((l) => l.startsWith(`${PREFIX}-${process.pid}-`))).toEqual([]);
  });

  /** Two namespaces of the running test's own, deleted when it is over. */
  async function twoNamespaces(): Promise<[TestNamespaces, string, string]> {
    const p = (pool = testNamespaces(PREFIX));
    return [p, await p.add(), await p.add()];
  }
  /** nft inside one of the running test's namespaces; never anywhere else. */
  function nft(ns: string, args: string[]) {
    if (!pool?.has(ns)) throw new Error(`refusing to run nft outside a namespace of the running test (${ns})`);
    return execa('ip', ['netns', 'exec', ns, 'nft', ...args], { reject: false });
  }
  async function nftOk(ns: string, args: string[]): Promise<string> {
    const r = await nft(ns, args);
    if (r.exitCode !== 0) throw new Error(`nft ${args.join(' ')} failed (exit ${r.exitCode}):\n${r.stderr}`);
    return r.stdout;
  }
  async function file(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  /** Chain name -> the comments of its rules, in order: what the compiler wrote... */
  function irComments(ruleset: Ruleset): Record<string, Record<string, string[]>> {
    return Object.fromEntries(
      ruleset.tables.map((t) => [`${t.family} ${t.name}`, Object.fromEntries(t.chains.map((c) => [c.name, c.rules.map((r) => ruleComment(r.origin))]))]),
    );
  }
  interface ListedObject {
    family: string;
    table?: string;
    name?: string;
    chain?: string;
    comment?: string;
    handle?: number;
  }
  /** One element of `nft -j list`: `{ "rule": {...} }`, `{ "chain": {...} }`, ... */
  type Listed = Partial<Record<string, ListedObject>>;

  /** guestwall's own tables as the kernel lists them, without handles (they count loads, not content). */
  async function listOwn(ns: string, ruleset: Ruleset): Promise<Listed[]> {
    // One listing for every table (a process per table costs more than the rest of the check).
    const own = new Set(ruleset.tables.map((t) => `${t.family} ${t.name}`));
    const listing = JSON.parse(await nftOk(ns, ['-j', 'list', 'ruleset'])) as { nftables: Listed[] };
    const items: Listed[] = [];
    for (const item of listing.nftables) {
      if ('metainfo' in item) continue;
      const [kind, body] = Object.entries(item)[0]!;
      if (!body || !own.has(`${body.family} ${kind === 'table' ? body.name : body.table}`)) continue;
      for (const b of Object.values(item)) delete b?.handle;
      items.push(item);
    }
    return items;
  }
  /** ...and what the kernel holds. */
  function liveComments(listing: Listed[]): Record<string, Record<string, string[]>> {
    const out: Record<string, Record<string, string[]>> = {};
    for (const { table, chain, rule } of listing) {
      // guestwall writes every table it owns, some of them empty.
      if (table) out[`${table.family} ${table.name}`] ??= {};
      if (chain) (out[`${chain.family} ${chain.table}`] ??= {})[chain.name!] ??= [];
      if (rule) ((out[`${rule.family} ${rule.table}`] ??= {})[rule.chain!] ??= []).push(rule.comment ?? '<no comment>');
    }
    return out;
  }
  async function tablesOf(ns: string): Promise<string[]> {
    const listing = JSON.parse(await nftOk(ns, ['-j', 'list', 'ruleset'])) as { nftables: { table?: { family: string; name: string } }[] };
    return listing.nftables.flatMap((i) => (i.table ? [`${i.table.family} ${i.table.name}`] : [])).sort();
  }
  /** The foreign tables, as text and as JSON (with handles): they must not change by one byte. */
  async function foreignListing(ns: string): Promise<string> {
    let out = '';
    for (const t of FOREIGN_TABLES) {
      out += await nftOk(ns, ['list', 'table', ...t.split(' ')]);
      out += await nftOk(ns, ['-j', 'list', 'table', ...t.split(' ')]);
    }
    return out;
  }

  describe('every example policy', () => {
    it('there are examples to load', () => {
      expect(examples).toContain('homelab-dmz.yaml');
    });

    // A fleet example: every host's ruleset.
    for (const { name: base, result: r } of examples.flatMap(compileExample)) {
      it(`${base}: JSON loads twice beside foreign tables, keeps every rule, and the nft text lists the same`, async () => {
        expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
        const ruleset = r.compiled!.ruleset;
        const jsonFile = await file(`${base}.json`, JSON.stringify(toNftJson(ruleset)));
        const textFile = await file(`${base}.nft`, printRuleset(ruleset));
        const foreignFile = await file('foreign.nft', FOREIGN);
        const own = ruleset.tables.map((t) => `${t.family} ${t.name}`);

        const [, fromJson, fromText] = await twoNamespaces();
        for (const ns of [fromJson, fromText]) await nftOk(ns, ['-f', foreignFile]);
        const foreignBefore = await foreignListing(fromJson);

        // Twice: the second load replaces the first rather than failing or adding to it.
        for (let i = 0; i < 2; i++) {
          await nftOk(fromJson, ['-j', '-f', jsonFile]);
          await nftOk(fromText, ['-f', textFile]);
        }

        expect(await tablesOf(fromJson)).toEqual([...own, ...FOREIGN_TABLES].sort());
        expect(await foreignListing(fromJson)).toBe(foreignBefore);
        expect(liveComments(await listOwn(fromJson, ruleset))).toEqual(irComments(ruleset));
        expect(await nftOk(fromText, ['list', 'ruleset'])).toBe(await nftOk(fromJson, ['list', 'ruleset']));
      });
    }
  });

  it(
    `${GEN_RUNS} generated policies (seed ${GEN_SEED}) load as JSON and as nft text, with every rule and comment`,
    async () => {
      const [mine, fromJson, fromText] = await twoNamespaces();
      const jsonFile = join(dir, 'generated.json');
      const textFile = join(dir, 'generated.nft');
      await fc.assert(
        fc.asyncProperty(policyArb, async (p) => {
          // Timed out: the rest of the runs pass at once instead of failing (and shrinking) on closed namespaces.
          if (mine.closed) return;
          const yaml = policyYaml(p);
          const fail = (what: string) => new Error(`${what}\n--- generated.yaml ---\n${yaml}`);
          const r = compilePolicyText('generated.yaml', yaml);
          const errors = r.diagnostics.filter((d) => d.severity === 'error');
          if (errors.length > 0 || !r.compiled) throw fail(`the validator refuses a generated policy:\n${errors.map(formatDiagnostic).join('\n')}`);
          const ruleset = r.compiled.ruleset;

          let text: string;
          try {
            text = printRuleset(ruleset);
          } catch (e) {
            throw fail(`printRuleset throws: ${(e as Error).message}`);
          }
          await writeFile(jsonFile, JSON.stringify(toNftJson(ruleset)));
          await writeFile(textFile, text);

          // The two forms load side by side, one namespace each (two cores, half the wait).
          const loadAndList = async (ns: string, args: string[]) => {
            const r = await nft(ns, args);
            return r.exitCode === 0 ? { listing: await listOwn(ns, ruleset) } : { stderr: r.stderr };
          };
          const [json, nftText] = await Promise.all([loadAndList(fromJson, ['-j', '-f', jsonFile]), loadAndList(fromText, ['-f', textFile])]);
          if (!json.listing) throw fail(`nft -j -f refuses the compiled JSON:\n${json.stderr}`);
          if (!nftText.listing) throw fail(`nft -f refuses the printed ruleset (the JSON loads):\n${nftText.stderr}`);

          const live = liveComments(json.listing);
          const ir = irComments(ruleset);
          if (JSON.stringify(live) !== JSON.stringify(ir)) {
            throw fail(`the kernel holds other chains or rules than the compiler wrote:\nIR:   ${JSON.stringify(ir)}\nlive: ${JSON.stringify(live)}`);
          }
          const a = JSON.stringify(json.listing, null, 1);
          const b = JSON.stringify(nftText.listing, null, 1);
          if (a !== b) throw fail(`the JSON and the nft text load different rulesets:\n--- from JSON ---\n${a}\n--- from text ---\n${b}`);
        }),
        { numRuns: GEN_RUNS, seed: GEN_SEED },
      );
    },
    Math.max(120_000, GEN_RUNS * 1_000),
  );
});
