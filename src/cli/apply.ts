// guestwall apply / confirm / rollback / diff: the commands that touch a host, all through apply/.
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyRuleset, confirm, rollback } from '../apply/apply.js';
import { diffRuleset } from '../apply/diff.js';
import { sshGuard } from '../apply/guard.js';
import { ApplyError } from '../apply/errors.js';
import { takeLock } from '../apply/lock.js';
import { DEFAULT_STATE_DIR, statePaths } from '../apply/state.js';
import { planNetworkHere } from '../apply/network.js';
import { readOwned } from '../apply/state-file.js';
import { type System, realSystem } from '../apply/system.js';
import { networkSetup } from '../emit/network.js';
import { formatChanges } from '../nft/diff.js';
import { EXIT, type Io, reportError } from './io.js';
import type { FeatureChoice } from '../compile/features.js';
import { compiledPolicy, kernelFeaturesFor } from './policy-file.js';

export interface HostOptions {
  netns?: string;
  stateDir?: string;
  wait?: number;
}

export interface CompileForHostOptions extends HostOptions {
  /** Default auto: what the kernel behind --netns (or this host's) can load. */
  kernelFeatures?: FeatureChoice;
  /** Which host of a fleet policy. */
  host?: string;
  /** Also say on stderr which kernel features the ruleset is compiled for. */
  verbose?: boolean;
}

export interface ApplyCliOptions extends CompileForHostOptions {
  confirm?: number;
  force?: boolean;
  /** false with --no-network: only the ruleset. */
  network?: boolean;
}

/**
 * The rollback timer of this build of guestwall: dist/src/apply/rollback-timer.js, found from
 * this module's place: dist/src/cli/ (tsc's output), dist/bundle/ (the bundled entry that
 * bin/guestwall.js runs) or src/cli/ (run from sources, as the tests do).
 */
export function timerCommand(here = fileURLToPath(import.meta.url)): string[] {
  const at = here.lastIndexOf(`${sep}dist${sep}`);
  const dist = at >= 0 ? here.slice(0, at + 5) : join(dirname(here), '..', '..', 'dist');
  return [process.execPath, join(dist, 'src', 'apply', 'rollback-timer.js')];
}

export async function applyCommand(io: Io, file: string, opts: ApplyCliOptions, sys: System = realSystem(opts.netns)): Promise<number> {
  const state = statePaths(opts.stateDir ?? DEFAULT_STATE_DIR, opts.netns);
  const waitMs = (opts.wait ?? 10) * 1000;
  // The lock is taken (by a flock process) while this one probes and compiles.
  const lock = sys.isRoot() ? takeLock(sys, state.lock, waitMs, 'apply') : undefined;
  lock?.catch(() => {}); // its refusal is reported where apply waits for it
  const features = await kernelFeaturesFor(io, opts.kernelFeatures ?? 'auto', sys, true, state.features);
  const loaded = compiledPolicy(io, file, 'nothing applied', true, features, opts.host);
  if ('exit' in loaded) {
    await lock?.then((held) => held.release(), () => {});
    return loaded.exit;
  }
  let handedOver = false;
  try {
    const guard = opts.force ? undefined : await sshGuard(sys);
    handedOver = true; // applyRuleset releases it
    const r = await applyRuleset(sys, loaded.ruleset, {
      state,
      ...(guard ? { guard } : {}),
      ...(opts.confirm !== undefined ? { confirmSeconds: opts.confirm } : {}),
      waitMs,
      ...(lock ? { lock } : {}),
      timerCommand: timerCommand(),
      progress: (m) => io.err(m),
      // The ruleset first, then the network, in one lock and one record: no bridge or route comes
      // up before the rules for it are in place, and rollback restores both.
      ...(opts.network !== false ? { network: networkSetup(loaded.model) } : {}),
    });
    const where = opts.netns ? ` in network namespace ${opts.netns}` : '';
    if (!r.changed) io.out(`guestwall: nothing to change${where}`);
    else if (r.pending) {
      io.out(`guestwall: applied ${file}${where}; run 'guestwall confirm${opts.netns ? ` --netns ${opts.netns}` : ''}' within ${opts.confirm} s or the previous ruleset and network come back`);
    } else io.out(`guestwall: applied ${file}${where} (loaded in ${r.timings.loadMs} ms)`);
    if (r.network && r.changed) io.out(r.network.done.length ? `guestwall: network setup${where}: ${r.network.done.length} changes` : `guestwall: network setup${where}: nothing to change`);
    return EXIT.ok;
  } catch (e) {
    if (!handedOver) await lock?.then((held) => held.release(), () => {});
    return reportError(io, e);
  }
}

export async function confirmCommand(io: Io, opts: HostOptions, sys: System = realSystem(opts.netns)): Promise<number> {
  try {
    await confirm(sys, statePaths(opts.stateDir ?? DEFAULT_STATE_DIR, opts.netns), (m) => io.err(m));
    io.out('guestwall: confirmed; the new ruleset stays');
    return EXIT.ok;
  } catch (e) {
    return reportError(io, e);
  }
}

export async function rollbackCommand(io: Io, opts: HostOptions, sys: System = realSystem(opts.netns)): Promise<number> {
  try {
    if (!sys.isRoot()) throw new ApplyError('guestwall rollback needs root to change the ruleset', 'run it with sudo, or as root', 2);
    await rollback(sys, statePaths(opts.stateDir ?? DEFAULT_STATE_DIR, opts.netns), 'on demand', undefined, (m) => io.err(m));
    io.out('guestwall: restored guestwall\'s tables and host network as they were before the last apply (checked against the snapshot)');
    return EXIT.ok;
  } catch (e) {
    return reportError(io, e);
  }
}

export async function diffCommand(io: Io, file: string, opts: CompileForHostOptions, sys: System = realSystem(opts.netns)): Promise<number> {
  const features = await kernelFeaturesFor(io, opts.kernelFeatures ?? 'auto', sys, opts.verbose === true);
  const loaded = compiledPolicy(io, file, 'nothing to compare', false, features, opts.host);
  if ('exit' in loaded) return loaded.exit === EXIT.policy ? EXIT.usage : loaded.exit;
  try {
    const state = statePaths(opts.stateDir ?? DEFAULT_STATE_DIR, opts.netns);
    const changes = await diffRuleset(sys, realSystem(), loaded.ruleset, join(state.dir, 'diff.json'));
    const net = await planNetworkHere(sys, networkSetup(loaded.model), await readOwned(sys, state.network));
    for (const n of net.notes) io.err(`network: ${n}`);
    if (changes.length === 0) io.out(`guestwall: the live ruleset${opts.netns ? ` in ${opts.netns}` : ''} already is ${file}`);
    else {
      io.out(formatChanges(changes));
      const added = changes.filter((c) => c.kind === '+').length;
      io.out(`${added} to add, ${changes.length - added} to remove`);
    }
    if (net.steps.length > 0) {
      const removals = net.steps.filter((s) => s.remove).length;
      io.out(`network:\n${net.steps.map((s) => `  ${s.remove ? '-' : '+'} ${s.what}`).join('\n')}\n${net.steps.length} network steps to run (${removals} removing what guestwall created)`);
    }
    if (changes.length === 0 && net.steps.length === 0) return EXIT.ok;
    return EXIT.policy;
  } catch (e) {
    return reportError(io, e);
  }
}
