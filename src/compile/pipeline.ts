// The whole pure pipeline in one call: YAML text -> diagnostics, model and ruleset. The CLI, the
// TUI and the tests all go through here, so they all see the same diagnostics.
import { type HostModel, buildHostModel } from '../model/host.js';
import { type Diagnostic, hasErrors } from '../policy/diagnostics.js';
import { loadPolicy, placeFinding, sortDiagnostics } from '../policy/load.js';
import { BASELINE_FEATURES, type KernelFeatures } from './features.js';
import { type Compiled, compile } from './index.js';

export interface PipelineResult {
  file: string;
  diagnostics: Diagnostic[];
  /** Present when the policy has no errors. */
  model?: HostModel;
  compiled?: Compiled;
}

/** `features`: what the kernel the ruleset is for can load; default the baseline every kernel has. */
export function compilePolicyText(file: string, text: string, features: KernelFeatures = BASELINE_FEATURES): PipelineResult {
  const loaded = loadPolicy(file, text);
  if (!loaded.policy || hasErrors(loaded.diagnostics)) return { file, diagnostics: loaded.diagnostics };
  const model = buildHostModel(loaded.policy, file, (path) => loaded.locate(path));
  const compiled = compile(model, features);
  const diagnostics = sortDiagnostics([...loaded.diagnostics, ...compiled.findings.map((f) => placeFinding(f, loaded.locate))]);
  return { file, diagnostics, model, compiled };
}
