// Apply a compiled ruleset safely: one transaction (all or nothing), verified after, with the
// state before it saved so that it can always come back (by `rollback`, or by itself when an
// `apply --confirm` is not confirmed in time, even if this process dies right after loading).
// The host network setup runs in the same lock and belongs to the same record: rollback and the
// timer restore both (src/apply/restore.ts), and an apply that dies halfway is undone whole by
// the next guestwall that takes the lock.
import { randomBytes } from 'node:crypto';
import type { NetworkSetup } from '../emit/network.js';
import { ownedUnion } from '../emit/network-plan.js';
import { toNftJson } from '../nft/json.js';
import type { Ruleset } from '../nft/ruleset.js';
import { ApplyError } from './errors.js';
import { type HeldLock, withLock } from './lock.js';
import { type NetworkApplyReport, NetworkStepError, planAndSnapshot, runNetworkPlan } from './network.js';
import { loadJson, nftMessage, snapshot } from './nft.js';
import { recoverUnfinished, restorePrevious } from './restore.js';
import type { PendingConfirm, StatePaths } from './state.js';
import {
  PENDING_TODO, StateFileError, checkWritable, sameOwned, readOwned, readPending, readState, removeState, sealSnapshot, writeInProgress, writeNetworkSnapshot, writeOwned, writePending, writeState,
} from './state-file.js';
import type { System } from './system.js';
import { liveDifferences } from './verify.js';

/** Verification lives in verify.ts; named here too for the callers that know it from apply. */
export { liveDifferences };

export interface ApplyOptions {
  state: StatePaths;
  /** Roll back by itself unless confirmed within this many seconds. */
  confirmSeconds?: number;
  /** How long to wait for another guestwall holding the lock. */
  waitMs?: number;
  /** Program and arguments that run the rollback timer (node and rollback-timer.js). */
  timerCommand: string[];
  /** Refuses the ruleset with a reason (the lockout guard), or says nothing. */
  guard?: (ruleset: Ruleset) => string | undefined;
  progress?: (message: string) => void;
  /** The host network setup to bring about after the ruleset, in the same lock and record. */
  network?: NetworkSetup;
  /** The lock on `state.lock`, already being taken by the caller (the CLI takes it while it compiles). */
  lock?: Promise<HeldLock>;
}

export interface ApplyResult {
  /** False when the live tables (and network) already were exactly this policy. */
  changed: boolean;
  pending?: PendingConfirm;
  /** The network steps that ran, when `network` was given. */
  network?: NetworkApplyReport;
  timings: { loadMs: number; totalMs: number };
}

export async function applyRuleset(sys: System, ruleset: Ruleset, opts: ApplyOptions): Promise<ApplyResult> {
  const say = opts.progress ?? (() => {});
  const t0 = sys.now();
  if (!sys.isRoot()) {
    await opts.lock?.then((held) => held.release(), () => {});
    throw new ApplyError('guestwall apply needs root to change the ruleset', 'run it with sudo, or as root', 2);
  }
  // No `nft --version` first: a missing nft is reported by the first nft that runs (nft.ts).
  await sys.mkdir(opts.state.dir).catch(() => {}); // a read-only parent is reported by the lock, in one line

  return withLock(sys, opts.state.lock, opts.waitMs ?? 10_000, 'apply', async () => {
    const refusal = opts.guard?.(ruleset);
    if (refusal) throw new ApplyError(refusal, 'fix the policy, or run again with --force if you have another way in');
    // A dead apply's half-done change is undone first, so that this one starts from a whole state.
    await recoverUnfinished(sys, opts.state, say);

    const json = `${JSON.stringify(toNftJson(ruleset))}\n`;
    const tables = ruleset.tables.map((t) => ({ family: t.family, name: t.name }));
    const owned = opts.network ? await readOwned(sys, opts.state.network) : undefined;
    const pendingBefore = await readPending(sys, opts.state.pending).catch((e: unknown) => {
      if (e instanceof StateFileError) return 'damaged' as const; // replaced below
      throw e;
    });
    // Nothing to do when the same document is already live and intact, and the network too; a
    // different document needs the snapshot, taken beside the network read (nothing changes
    // either under the lock before the snapshot is written).
    const maybeSame = pendingBefore === undefined && (await readState(sys, opts.state.current)) === json;
    const [net, same, taken] = await Promise.all([
      opts.network ? planAndSnapshot(sys, opts.network, owned) : undefined,
      maybeSame ? liveDifferences(sys, ruleset).then((d) => d.length === 0) : false,
      maybeSame ? undefined : snapshot(sys, tables),
    ]);
    const netPlan = net?.plan;
    if (same && (netPlan?.steps.length ?? 0) === 0) {
      say('the live ruleset is already this policy: nothing to change');
      return { changed: false, ...(netPlan ? { network: { done: [], notes: netPlan.notes } } : {}), timings: { loadMs: 0, totalMs: sys.now() - t0 } };
    }

    say('saving the current state of guestwall\'s tables');
    const id = randomBytes(8).toString('hex');
    const before = sealSnapshot(taken ?? (await snapshot(sys, tables)), id);
    const netBefore = net ? { id, ...net.snapshot } : undefined;
    // Everything this apply writes fits, or it stops here with nothing changed.
    await checkWritable(sys, opts.state.dir, json.length + before.length + 65_536);

    // No `nft -c` first: the load is one transaction that the kernel takes whole or refuses
    // whole, and a check would parse and build the whole ruleset once more (seconds at 10,000
    // guests) without catching everything the commit can refuse (mechanics.md 5.3).
    // Not fsync'd: nft reads it at once, and after a crash only previous.nft and the records count.
    await writeState(sys, opts.state.next, json, false);
    // What `rollback` restores becomes the state now; put back as it was if the load is refused.
    const previousBefore = await readState(sys, opts.state.previous);
    const keepPrevious = async () => {
      if (previousBefore === undefined) await removeState(sys, opts.state.previous);
      else await writeState(sys, opts.state.previous, previousBefore);
    };
    // The network half first: previous.nft names the apply id the network snapshot must carry.
    if (netBefore) await writeNetworkSnapshot(sys, opts.state.previousNetwork, netBefore);
    await writeState(sys, opts.state.previous, before);
    // A confirmation still waiting is superseded: its timer sees the token go and stops.
    if (pendingBefore === 'damaged') await removeState(sys, opts.state.pending);
    else if (pendingBefore) await cancelPending(sys, opts.state, pendingBefore);
    let pending: PendingConfirm | undefined;
    if (opts.confirmSeconds !== undefined) {
      // The timer starts before the load: if this process dies right after loading, it still rolls back.
      pending = { token: randomBytes(8).toString('hex'), deadline: sys.now() + opts.confirmSeconds * 1000 };
      await writePending(sys, opts.state.pending, pending);
      const [cmd, ...args] = opts.timerCommand;
      pending.timerPid = sys.spawnDetached(cmd!, [...args, '--state-dir', opts.state.dir, '--token', pending.token, ...(sys.netns ? ['--netns', sys.netns] : [])]);
      if (!(await timerArmed(sys, opts.state, pending.token))) {
        await cancelPending(sys, opts.state, pending);
        await keepPrevious();
        throw new ApplyError('the rollback timer did not start, so --confirm could not be honoured; nothing was changed', 'run guestwall doctor, or apply without --confirm');
      }
    }

    // From here on the host changes: a process that dies leaves this mark for the next one.
    await writeInProgress(sys, opts.state.inProgress, { op: 'apply', id, pid: process.pid });
    say('loading the ruleset in one transaction');
    const t2 = sys.now();
    const load = await loadJson(sys, opts.state.next);
    const loadMs = sys.now() - t2;
    if (load.code !== 0) {
      if (pending) await cancelPending(sys, opts.state, pending);
      await keepPrevious();
      await removeState(sys, opts.state.inProgress);
      throw new ApplyError(`the kernel refuses the ruleset: ${nftMessage(load)}; nothing was changed`, kernelHint(load.stderr));
    }

    /** Undo this apply whole (ruleset and network) and say why. */
    const undo = async (what: string, hint: string): Promise<never> => {
      if (pending) await cancelPending(sys, opts.state, pending);
      const back = await restorePrevious(sys, opts.state, say).then(() => 'the previous state was restored', (e: unknown) => `restoring the previous state failed too: ${(e as Error).message}`);
      throw new ApplyError(`${what}; ${back}`, hint);
    };
    const differences = await liveDifferences(sys, ruleset);
    if (differences.length > 0) {
      await undo(`the live tables differ from the ruleset after loading (${differences.slice(0, 3).join('; ')})`, 'run guestwall doctor; another program may be changing the ruleset at the same time');
    }

    let network: NetworkApplyReport | undefined;
    if (netPlan && owned) {
      // Adds are recorded before they run and removals after: a death in between leaves a record
      // that claims a little too much, never too little, and removal forgives what is absent.
      // Each write skipped when the record would not change (the usual re-apply): two fsyncs each.
      const union = ownedUnion(owned, netPlan.owned);
      if (!sameOwned(union, owned)) await writeOwned(sys, opts.state.network, union);
      try {
        network = await runNetworkPlan(sys, netPlan, say);
      } catch (e) {
        if (!(e instanceof NetworkStepError)) throw e;
        await undo(`network setup failed at "${e.step.what}" (${e.step.program} ${e.step.args.join(' ')}): ${e.message.split(': ').slice(-1)[0]}`, 'fix the cause and apply again');
      }
      if (!sameOwned(netPlan.owned, union)) await writeOwned(sys, opts.state.network, netPlan.owned);
    }
    await writeState(sys, opts.state.current, json);
    await removeState(sys, opts.state.next);
    await removeState(sys, opts.state.inProgress);
    await log(sys, opts.state, `apply ${pending ? `pending confirm until ${new Date(pending.deadline).toISOString()}` : 'done'}${network ? ` (${network.done.length} network steps)` : ''}`);
    return { changed: true, ...(pending ? { pending } : {}), ...(network ? { network } : {}), timings: { loadMs, totalMs: sys.now() - t0 } };
  }, opts.lock);
}

/** Wait (at most 5 s) for the rollback timer to say it runs. */
async function timerArmed(sys: System, state: StatePaths, token: string): Promise<boolean> {
  const end = sys.now() + 5000;
  while (sys.now() < end) {
    const p = await readPending(sys, state.pending).catch(() => undefined);
    if (p?.token === token && p.armed) return true;
    await sys.sleep(20);
  }
  return false;
}

function kernelHint(stderr: string): string | undefined {
  if (/Operation not supported|Protocol error/.test(stderr)) return 'the running kernel lacks a feature this ruleset uses; guestwall doctor lists what is missing';
  if (/Permission denied|Operation not permitted/.test(stderr)) return 'run as root (in a container: with CAP_NET_ADMIN)';
  return undefined;
}

async function cancelPending(sys: System, state: StatePaths, p: PendingConfirm): Promise<void> {
  await removeState(sys, state.pending);
  if (p.timerPid !== undefined && (await sys.cmdline(p.timerPid))?.includes('rollback-timer')) sys.kill(p.timerPid);
}

/** One line in history.log. The history is for people: a log that cannot be written does not undo a change. */
export async function log(sys: System, state: StatePaths, line: string): Promise<void> {
  try {
    const old = (await sys.readFile(state.log)) ?? '';
    const lines = `${old}${new Date(sys.now()).toISOString()} ${line}\n`.split('\n').slice(-500).join('\n');
    // Not fsync'd: a line of history, not a record anything reads back after a crash (issue 17).
    await sys.writeFile(state.log, lines, 0o600, false);
  } catch {
    // the change itself is done and recorded in the state files
  }
}

/** `guestwall confirm`: keep what `apply --confirm` loaded, and stop its timer. */
export async function confirm(sys: System, state: StatePaths, say: (line: string) => void = () => {}): Promise<PendingConfirm> {
  return withLock(sys, state.lock, 10_000, 'confirm', async () => {
    if (await recoverUnfinished(sys, state, say)) {
      throw new ApplyError('there is nothing to confirm: the last apply did not finish, and the state before it was restored', 'apply again');
    }
    let p: PendingConfirm | undefined;
    try {
      p = await readPending(sys, state.pending);
    } catch (e) {
      if (e instanceof StateFileError) throw new StateFileError(state.pending, 'is damaged, so guestwall cannot tell which apply it confirms', PENDING_TODO);
      throw e;
    }
    if (p === undefined) throw new ApplyError('there is nothing to confirm: no apply --confirm is waiting (it may have rolled back already)', 'see the history in guestwall state');
    await cancelPending(sys, state, p);
    await log(sys, state, 'confirm');
    return p;
  });
}

/** Restore guestwall's tables and host network as they were before the last apply. */
export async function rollback(sys: System, state: StatePaths, reason: string, token?: string, say: (line: string) => void = () => {}): Promise<boolean> {
  return withLock(sys, state.lock, 60_000, 'rollback', async () => {
    if (token !== undefined) {
      // The timer only acts on its own apply: a confirm or a newer apply since then wins. A
      // damaged file cannot say so; in doubt the timer restores (that is what it is for).
      const pending = await readPending(sys, state.pending).catch((e: unknown) => {
        if (e instanceof StateFileError) return { token, deadline: 0 };
        throw e;
      });
      if (pending === undefined || pending.token !== token) return false;
    }
    await restorePrevious(sys, state, say);
    await removeState(sys, state.pending);
    await removeState(sys, state.current);
    await log(sys, state, `rollback (${reason})`);
    return true;
  });
}
