// Read and compile the policy a command works on, printing its diagnostics; every command that
// takes a FILE starts here, so they all refuse a broken policy the same way.
import { cachedCompilerFeatures, compilerFeatures } from '../apply/doctor.js';
import type { System } from '../apply/system.js';
import { BASELINE_FEATURES, type FeatureChoice, FULL_FEATURES, type KernelFeatures, featuresLine } from '../compile/features.js';
import { compilePolicyText } from '../compile/pipeline.js';
import type { HostModel } from '../model/host.js';
import type { Ruleset } from '../nft/ruleset.js';
import { formatDiagnostic } from '../policy/diagnostics.js';
import { EXIT, type Io, readPolicy } from './io.js';

export type Loaded = { model: HostModel; ruleset: Ruleset; text: string } | { exit: number };

/**
 * The kernel features to compile for. `auto` asks the kernel behind `sys` (inside its network
 * namespace, if any), or its answer kept in `cacheFile` (apply). With `say`, one stderr line says
 * which and what is weaker: the commands that change the host (apply, install) always say it, the
 * others with --verbose.
 */
export async function kernelFeaturesFor(io: Io, choice: FeatureChoice, sys: System, say: boolean, cacheFile?: string): Promise<KernelFeatures> {
  const { features, how } = choice === 'auto'
    ? await (cacheFile !== undefined ? cachedCompilerFeatures(sys, cacheFile) : compilerFeatures(sys))
    : { features: choice === 'full' ? FULL_FEATURES : BASELINE_FEATURES, how: `--kernel-features ${choice}` };
  if (say) io.err(featuresLine(features, how));
  return features;
}

/**
 * @param outcome what did not happen when the policy has errors ("nothing applied")
 * @param warnings print warnings too (commands that change or write something do)
 * @param features what the target kernel can load (default: the baseline every kernel has)
 * @param host --host: which host of a fleet policy (required there; see compilePolicyText)
 */
export function compiledPolicy(io: Io, file: string, outcome: string, warnings = true, features: KernelFeatures = BASELINE_FEATURES, host?: string): Loaded {
  const read = readPolicy(io, file);
  if ('error' in read) {
    io.err(read.error);
    return { exit: EXIT.usage };
  }
  const r = compilePolicyText(file, read.text, features, host);
  for (const d of r.diagnostics) if (warnings || d.severity === 'error') io.err(formatDiagnostic(d));
  if (r.hostError !== undefined) {
    io.err(`guestwall: ${r.hostError}; ${outcome}`);
    return { exit: EXIT.usage };
  }
  if (!r.compiled || !r.model) {
    io.err(`guestwall: ${file} has errors; ${outcome}`);
    return { exit: EXIT.policy };
  }
  return { model: r.model, ruleset: r.compiled.ruleset, text: read.text };
}
