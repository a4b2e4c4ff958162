// Apply a compiled ruleset safely: one transaction (all or nothing), verified after, with the
// state before it saved so that it can always come back (by `rollback`, or by itself when an
// `apply --confirm` is not confirmed in time, even if this process dies right after loading).
import { randomBytes } from 'node:crypto';
import { compareSummaries, summarizeListing, summarizeTable } from '../nft/listing.js';
import { toNftJson } from '../nft/json.js';
import type { Ruleset } from '../nft/ruleset.js';
import { ApplyError } from './errors.js';
import { withLock } from './lock.js';
import { listTables, loadJson, loadScript, nftMessage, nftVersion, snapshot } from './nft.js';
import type { PendingConfirm, StatePaths } from './state.js';
import type { System } from './system.js';

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
}

export interface ApplyResult {
  /** False when the live tables already were exactly this ruleset. */
  changed: boolean;
  pending?: PendingConfirm;
  timings: { loadMs: number; totalMs: number };
}

export async function applyRuleset(sys: System, ruleset: Ruleset, opts: ApplyOptions): Promise<ApplyResult> {
  const say = opts.progress ?? (() => {});
  const t0 = sys.now();
  if (!sys.isRoot()) throw new ApplyError('guestwall apply needs root to change the ruleset', 'run it with sudo, or as root', 2);
  await nftVersion(sys);
  await sys.mkdir(opts.state.dir);

  return withLock(sys, opts.state.lock, opts.waitMs ?? 10_000, 'apply', async () => {
    const refusal = opts.guard?.(ruleset);
    if (refusal) throw new ApplyError(refusal, 'fix the policy, or run again with --force if you have another way in');

    const json = `${JSON.stringify(toNftJson(ruleset))}\n`;
    const tables = ruleset.tables.map((t) => ({ family: t.family, name: t.name }));

    // Nothing to do when the same document is already live and intact.
    const pendingBefore = await sys.readFile(opts.state.pending);
    if (pendingBefore === undefined && (await sys.readFile(opts.state.current)) === json && (await liveDifferences(sys, ruleset)).length === 0) {
      say('the live ruleset is already this policy: nothing to change');
      return { changed: false, timings: { loadMs: 0, totalMs: sys.now() - t0 } };
    }

    say('saving the current state of guestwall\'s tables');
    const before = await snapshot(sys, tables);

    // No `nft -c` first: the load is one transaction that the kernel takes whole or refuses
    // whole, and a check would parse and build the whole ruleset once more (seconds at 10,000
    // guests) without catching everything the commit can refuse (mechanics.md 5.3).
    await sys.writeFile(opts.state.next, json, 0o600);
    // What `rollback` restores becomes the state now; put back as it was if the load is refused.
    const previousBefore = await sys.readFile(opts.state.previous);
    const keepPrevious = async () => {
      if (previousBefore === undefined) await sys.remove(opts.state.previous);
      else await sys.writeFile(opts.state.previous, previousBefore, 0o600);
    };
    await sys.writeFile(opts.state.previous, before, 0o600);
    let pending: PendingConfirm | undefined;
    if (opts.confirmSeconds !== undefined) {
      // The timer starts before the load: if this process dies right after loading, it still rolls back.
      pending = { token: randomBytes(8).toString('hex'), deadline: sys.now() + opts.confirmSeconds * 1000 };
      await sys.writeFile(opts.state.pending, `${JSON.stringify(pending)}\n`, 0o600);
      const [cmd, ...args] = opts.timerCommand;
      pending.timerPid = sys.spawnDetached(cmd!, [...args, '--state-dir', opts.state.dir, '--token', pending.token, ...(sys.netns ? ['--netns', sys.netns] : [])]);
      if (!(await timerArmed(sys, opts.state, pending.token))) {
        await cancelPending(sys, opts.state, pending);
        await keepPrevious();
        throw new ApplyError('the rollback timer did not start, so --confirm could not be honoured; nothing was changed', 'run guestwall doctor, or apply without --confirm');
      }
    }

    say('loading the ruleset in one transaction');
    const t2 = sys.now();
    const load = await loadJson(sys, opts.state.next);
    const loadMs = sys.now() - t2;
    if (load.code !== 0) {
      if (pending) await cancelPending(sys, opts.state, pending);
      await keepPrevious();
      throw new ApplyError(`the kernel refuses the ruleset: ${nftMessage(load)}; nothing was changed`, kernelHint(load.stderr));
    }

    const differences = await liveDifferences(sys, ruleset);
    if (differences.length > 0) {
      const restore = await loadScript(sys, opts.state.previous);
      if (pending) await cancelPending(sys, opts.state, pending);
      throw new ApplyError(
        `the live tables differ from the ruleset after loading (${differences.slice(0, 3).join('; ')}); ` +
          (restore.code === 0 ? 'the previous state was restored' : `restoring the previous state failed too: ${nftMessage(restore)}`),
        'run guestwall doctor; another program may be changing the ruleset at the same time',
      );
    }
    await sys.writeFile(opts.state.current, json, 0o600);
    await sys.remove(opts.state.next);
    await log(sys, opts.state, `apply ${pending ? `pending confirm until ${new Date(pending.deadline).toISOString()}` : 'done'}`);
    return { changed: true, ...(pending ? { pending } : {}), timings: { loadMs, totalMs: sys.now() - t0 } };
  });
}

/** What differs between the live tables and the ruleset, one line each. */
export async function liveDifferences(sys: System, ruleset: Ruleset): Promise<string[]> {
  const listing = await listTables(sys, ruleset.tables.map((t) => ({ family: t.family, name: t.name })));
  return ruleset.tables.flatMap((t) => compareSummaries(summarizeTable(t), summarizeListing(listing, t.family, t.name), `${t.family} ${t.name}`));
}

/** Wait (at most 5 s) for the rollback timer to say it runs. */
async function timerArmed(sys: System, state: StatePaths, token: string): Promise<boolean> {
  const end = sys.now() + 5000;
  while (sys.now() < end) {
    const text = await sys.readFile(state.pending);
    const p = text === undefined ? undefined : (JSON.parse(text) as PendingConfirm);
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
  await sys.remove(state.pending);
  if (p.timerPid !== undefined && (await sys.cmdline(p.timerPid))?.includes('rollback-timer')) sys.kill(p.timerPid);
}

export async function log(sys: System, state: StatePaths, line: string): Promise<void> {
  const old = (await sys.readFile(state.log)) ?? '';
  const lines = `${old}${new Date(sys.now()).toISOString()} ${line}\n`.split('\n').slice(-500).join('\n');
  await sys.writeFile(state.log, lines, 0o600);
}

/** `guestwall confirm`: keep what `apply --confirm` loaded, and stop its timer. */
export async function confirm(sys: System, state: StatePaths): Promise<PendingConfirm> {
  return withLock(sys, state.lock, 10_000, 'confirm', async () => {
    const text = await sys.readFile(state.pending);
    if (text === undefined) throw new ApplyError('there is nothing to confirm: no apply --confirm is waiting (it may have rolled back already)', 'see the history in guestwall state');
    const p = JSON.parse(text) as PendingConfirm;
    await cancelPending(sys, state, p);
    await log(sys, state, 'confirm');
    return p;
  });
}

/** Restore guestwall's tables as they were before the last apply. */
export async function rollback(sys: System, state: StatePaths, reason: string, token?: string): Promise<boolean> {
  return withLock(sys, state.lock, 60_000, 'rollback', async () => {
    const pending = await sys.readFile(state.pending);
    if (token !== undefined) {
      // The timer only acts on its own apply: a confirm or a newer apply since then wins.
      if (pending === undefined || (JSON.parse(pending) as PendingConfirm).token !== token) return false;
    }
    const previous = await sys.readFile(state.previous);
    if (previous === undefined) throw new ApplyError('there is no previous state to roll back to: guestwall has not applied anything here');
    const r = await loadScript(sys, state.previous);
    if (r.code !== 0) throw new ApplyError(`restoring the previous state failed: ${nftMessage(r)}`, 'the current ruleset is unchanged; run guestwall doctor');
    await sys.remove(state.pending);
    await sys.remove(state.current);
    await log(sys, state, `rollback (${reason})`);
    return true;
  });
}
