// What the benchmarks that load rulesets share: the compiled `scaledPolicy` ruleset, and a
// throwaway network namespace of their own with a temporary directory for the documents, both
// removed when the work ends, however it ends. Without root they print why they skipped.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type System, realSystem } from '../src/apply/system.js';
import { compilePolicyText } from '../src/compile/pipeline.js';
import type { Ruleset } from '../src/nft/ruleset.js';
import { policyYaml, scaledPolicy } from '../tests/support/gen-policy.js';

/** The ruleset of `scaledPolicy(guests)`. */
export function scaledRuleset(guests: number): Ruleset {
  const r = compilePolicyText('bench.yaml', policyYaml(scaledPolicy(guests)));
  if (!r.compiled) throw new Error('bench policy has errors');
  return r.compiled.ruleset;
}

export interface BenchNamespace {
  /** Commands run inside the namespace. */
  sys: System;
  /** The namespace's name, for commands the caller wraps itself (`ip netns exec NAME ...`). */
  name: string;
  /** A temporary directory, removed afterwards. */
  dir: string;
}

/**
 * Run `work` in a new network namespace `gw-<prefix>-<pid>`; both it and the temporary directory
 * go afterwards. Without root, prints `## <title>` and why it skipped, and exits 0.
 */
export async function inBenchNamespace<T>(prefix: string, title: string, work: (ns: BenchNamespace) => Promise<T>): Promise<T> {
  if (process.getuid?.() !== 0) {
    console.log(`\n## ${title}\n\nskipped: needs root to create a network namespace`);
    process.exit(0);
  }
  const host = realSystem();
  const name = `gw-${prefix}-${process.pid}`;
  const dir = await mkdtemp(join(tmpdir(), `gw-${prefix}-`));
  try {
    if ((await host.run('ip', ['netns', 'add', name])).code !== 0) throw new Error(`cannot create the bench namespace ${name}`);
    return await work({ sys: realSystem(name), name, dir });
  } finally {
    await host.run('ip', ['netns', 'del', name]);
    await rm(dir, { recursive: true, force: true });
  }
}
