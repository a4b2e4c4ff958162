// The whole pure pipeline in one call: YAML text -> diagnostics, model and ruleset. The CLI, the
// TUI and the tests all go through here, so they all see the same diagnostics.
import { type HostModel, buildHostModel } from '../model/host.js';
import { type Diagnostic, hasErrors } from '../policy/diagnostics.js';
import { fleetHostNames, guestHosts, hostDocPath, hostPolicy, isFleet } from '../policy/fleet.js';
import { loadPolicy, placeFinding, sortDiagnostics } from '../policy/load.js';
import { BASELINE_FEATURES, type KernelFeatures } from './features.js';
import { type Compiled, compile } from './index.js';

export interface PipelineResult {
  file: string;
  diagnostics: Diagnostic[];
  /** Present when the policy has no errors (and, for a fleet, a host of it was chosen). */
  model?: HostModel;
  compiled?: Compiled;
  /** A fleet policy (hosts:): its hosts, the one compiled for, and each guest's own host. */
  fleet?: { hosts: string[]; host?: string; homes: Record<string, string> };
  /** Why no host's ruleset was compiled although the policy is fine: --host missing, unknown, or not this policy's host. */
  hostError?: string;
}

/**
 * `features`: what the kernel the ruleset is for can load; default the baseline every kernel has.
 * `host`: for a fleet policy, the host to compile for (required); for a single-host policy it may
 * name the policy's host.name (or anything when the policy names no host), so one rollout
 * command serves both kinds.
 */
export function compilePolicyText(file: string, text: string, features: KernelFeatures = BASELINE_FEATURES, host?: string): PipelineResult {
  const loaded = loadPolicy(file, text);
  if (!loaded.policy || hasErrors(loaded.diagnostics)) return { file, diagnostics: loaded.diagnostics };
  let policy = loaded.policy;
  let locate = loaded.locate;
  let fleet: PipelineResult['fleet'];
  let mobile = new Set<string>();
  if (isFleet(policy)) {
    const hosts = fleetHostNames(policy);
    const homes = Object.fromEntries(Object.entries(policy.guests ?? {}).map(([g, v]) => [g, v.host ?? '']));
    fleet = { hosts, homes };
    if (host === undefined || !hosts.includes(host)) {
      const hostError = host === undefined
        ? `${file} describes several hosts; say which with --host (one of ${hosts.join(', ')})`
        : `${file} has no host '${host}'; its hosts: ${hosts.join(', ')}`;
      return { file, diagnostics: loaded.diagnostics, fleet, hostError };
    }
    fleet.host = host;
    const whole = policy;
    mobile = new Set(Object.entries(whole.guests ?? {}).filter(([, g]) => guestHosts(whole, g).length > 1).map(([name]) => name));
    policy = hostPolicy(policy, host);
    const toDoc = hostDocPath(host);
    locate = (path, atKey) => loaded.locate(toDoc(path), atKey);
  } else if (host !== undefined && policy.host?.name !== undefined && policy.host.name !== host) {
    return { file, diagnostics: loaded.diagnostics, hostError: `${file} is the policy of host '${policy.host.name}', not '${host}'` };
  }
  const model = compactModel(buildHostModel(policy, file, (path, atKey) => locate(path, atKey)), mobile);
  const compiled = compile(model, features);
  const diagnostics = sortDiagnostics([...loaded.diagnostics, ...compiled.findings.map((f) => placeFinding(f, locate))]);
  return { file, diagnostics, model, compiled, ...(fleet ? { fleet } : {}) };
}

/** A fleet's projection leaves other hosts' rules and forwards as holes (their indexes stay); the compiler takes dense lists. */
function compactModel(m: HostModel, mobile: Set<string>): HostModel {
  const dense = <T>(list: T[]): T[] => list.filter((x) => x !== undefined);
  const guests = mobile.size === 0 ? m.guests : m.guests.map((g) => (mobile.has(g.name) ? { ...g, mobile: true as const } : g));
  return { ...m, guests, policies: dense(m.policies), rules: dense(m.rules), forwards: dense(m.forwards), sourceNat: dense(m.sourceNat), helpers: dense(m.helpers) };
}
