// Read and compile the policy a command works on, printing its diagnostics; every command that
// takes a FILE starts here, so they all refuse a broken policy the same way.
import { compilePolicyText } from '../compile/pipeline.js';
import type { HostModel } from '../model/host.js';
import type { Ruleset } from '../nft/ruleset.js';
import { formatDiagnostic } from '../policy/diagnostics.js';
import { EXIT, type Io, readPolicy } from './io.js';

export type Loaded = { model: HostModel; ruleset: Ruleset; text: string } | { exit: number };

/**
 * @param outcome what did not happen when the policy has errors ("nothing applied")
 * @param warnings print warnings too (commands that change or write something do)
 */
export function compiledPolicy(io: Io, file: string, outcome: string, warnings = true): Loaded {
  const read = readPolicy(io, file);
  if ('error' in read) {
    io.err(read.error);
    return { exit: EXIT.usage };
  }
  const r = compilePolicyText(file, read.text);
  for (const d of r.diagnostics) if (warnings || d.severity === 'error') io.err(formatDiagnostic(d));
  if (!r.compiled || !r.model) {
    io.err(`guestwall: ${file} has errors; ${outcome}`);
    return { exit: EXIT.policy };
  }
  return { model: r.model, ruleset: r.compiled.ruleset, text: read.text };
}
