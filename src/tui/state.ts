// What the preview shows: the latest reading of the policy file, and the last version that
// compiled, so that a file broken mid-edit shows its errors over the last good views.
import { BASELINE_FEATURES, type KernelFeatures } from '../compile/features.js';
import { compilePolicyText } from '../compile/pipeline.js';
import type { HostModel } from '../model/host.js';
import type { Ruleset } from '../nft/ruleset.js';
import type { Diagnostic } from '../policy/diagnostics.js';

export interface Compiled {
  model: HostModel;
  ruleset: Ruleset;
}

export interface PreviewState {
  file: string;
  /** The diagnostics of the latest reading (empty when the file could not be read). */
  diagnostics: Diagnostic[];
  /** Why the latest reading failed, e.g. "no such file" while an editor replaces it. */
  readError?: string;
  /** The last version that compiled; absent until one does. */
  good?: Compiled;
  /** True when `good` is older than the latest reading (that one has errors or could not be read). */
  stale: boolean;
}

/** The state after reading the file again: `read` is its text, or why it could not be read. */
export function nextState(prev: PreviewState | undefined, file: string, read: { text: string } | { error: string }, features: KernelFeatures = BASELINE_FEATURES, host?: string): PreviewState {
  if ('error' in read) return { file, diagnostics: [], readError: read.error, ...(prev?.good ? { good: prev.good } : {}), stale: true };
  const r = compilePolicyText(file, read.text, features, host);
  // A fleet policy without (or with an unknown) --host: nothing to show but why.
  if (r.hostError !== undefined) return { file, diagnostics: r.diagnostics, readError: r.hostError, ...(prev?.good ? { good: prev.good } : {}), stale: true };
  if (r.model && r.compiled) return { file, diagnostics: r.diagnostics, good: { model: r.model, ruleset: r.compiled.ruleset }, stale: false };
  return { file, diagnostics: r.diagnostics, ...(prev?.good ? { good: prev.good } : {}), stale: true };
}
