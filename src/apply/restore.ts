// Going back to the state before the last apply, ruleset and host network together: what
// `rollback`, the `--confirm` timer and the recovery of a dead apply all do. The snapshot pair
// (previous.nft, previous-network.json) carries one apply id; each is checked before use, and
// what was restored is compared with the snapshot before anyone is told it worked.
import type { NetworkSnapshot } from '../emit/network-plan.js';
import { ApplyError } from './errors.js';
import { planRestoreHere, runNetworkPlan } from './network.js';
import { type TableRef, loadScript, nftMessage, snapshot } from './nft.js';
import type { StatePaths } from './state.js';
import {
  StateFileError, checkSnapshot, readInProgress, readNetworkSnapshot, readOwned, readState, removeState, writeInProgress, writeOwned,
} from './state-file.js';
import type { System } from './system.js';

export interface RestoreReport {
  /** Network steps that ran. */
  networkSteps: number;
  /** False when the last apply did not touch the network (--no-network), so only the ruleset came back. */
  network: boolean;
}

/** The tables a snapshot script puts back ("delete table inet guestwall" lines). */
function snapshotTables(script: string): TableRef[] {
  return [...script.matchAll(/^delete table (\S+) (\S+)$/gm)].map((m) => ({ family: m[1] as TableRef['family'], name: m[2]! }));
}

/** nft listings compare without what moves by itself: counters, quotas used, element timeouts. */
const steady = (script: string) =>
  script
    .replace(/counter packets \d+ bytes \d+/g, 'counter')
    .replace(/ used \d+ \w+/g, '')
    .replace(/ expires [\dhmsd.]+/g, '');

/**
 * Put the ruleset and owned network back as they were before the last apply. Runs under the
 * lock; marks itself in progress so that a rollback killed halfway is finished by the next one.
 */
export async function restorePrevious(sys: System, state: StatePaths, say: (line: string) => void = () => {}): Promise<RestoreReport> {
  const text = await readState(sys, state.previous);
  if (text === undefined) throw new ApplyError('there is no previous state to roll back to: guestwall has not applied anything here');
  const id = checkSnapshot(state.previous, text);
  let net: NetworkSnapshot | undefined;
  const stored = await readNetworkSnapshot(sys, state.previousNetwork);
  if (stored?.id === id) net = stored;
  const owned = net ? await readOwned(sys, state.network) : undefined;

  await writeInProgress(sys, state.inProgress, { op: 'rollback', id, pid: process.pid });
  const r = await loadScript(sys, state.previous);
  if (r.code !== 0) throw new ApplyError(`restoring the previous ruleset failed: ${nftMessage(r)}`, 'the ruleset is unchanged; run guestwall doctor');
  const body = text.slice(0, text.lastIndexOf('# guestwall snapshot end'));
  const now = await snapshot(sys, snapshotTables(body));
  if (steady(now) !== steady(body)) {
    throw new ApplyError(`the ruleset after restoring ${state.previous} differs from it; another program may be changing guestwall's tables`, 'run guestwall doctor, then guestwall rollback again');
  }

  let networkSteps = 0;
  if (net && owned) {
    const plan = await planRestoreHere(sys, net, owned);
    networkSteps = (await runNetworkPlan(sys, plan, say)).done.length;
    await writeOwned(sys, state.network, plan.owned);
    const left = await planRestoreHere(sys, net, plan.owned);
    if (left.steps.length > 0) {
      throw new ApplyError(`the host network after the rollback still differs from the snapshot: ${left.steps.slice(0, 3).map((s) => s.what).join('; ')}`, 'run guestwall rollback again; another program may be changing the same routes or entries');
    }
  }
  await removeState(sys, state.inProgress);
  return { networkSteps, network: net !== undefined };
}

/**
 * An apply or rollback whose process died (kill -9, power) left in-progress.json: its change may
 * be half done on the network. Finish it the one way that is always whole: the state before.
 */
export async function recoverUnfinished(sys: System, state: StatePaths, say: (line: string) => void): Promise<boolean> {
  let p;
  try {
    p = await readInProgress(sys, state.inProgress);
  } catch (e) {
    if (!(e instanceof StateFileError)) throw e;
    p = { op: 'apply' as const, id: '?', pid: 0 }; // damaged: a change was under way all the same
  }
  if (p === undefined) return false;
  say(`guestwall: the last ${p.op}${p.pid ? ` (pid ${p.pid})` : ''} did not finish; restoring the state before it`);
  await restorePrevious(sys, state, say);
  await removeState(sys, state.pending);
  return true;
}
