// One change at a time: an exclusive flock(2) on the lock file, held by the kernel for as long
// as the holder's file stays open. A holder that dies (kill -9, crash) releases it with its last
// descriptor, so there is no stale lock to judge and take over, and no window in which two
// processes can both believe they hold it: the kernel grants it to one open file at a time.
// A live holder is waited for, then refused with the pid it wrote into the file.
import { ApplyError, stateIoError } from './errors.js';
import type { System } from './system.js';

/** A lock this process holds until it releases it (or dies). */
export interface HeldLock {
  release(): Promise<void>;
}

/** Take the lock, waiting at most `waitMs` for another holder; refused with its pid after that. */
export async function takeLock(sys: System, path: string, waitMs: number, what: string): Promise<HeldLock> {
  const deadline = sys.now() + waitMs;
  for (;;) {
    const held = await sys.tryLock(path).catch((e: unknown) => {
      throw stateIoError(e, path, 'write');
    });
    if (held) return held;
    if (sys.now() >= deadline) {
      const owner = Number((await sys.readFile(path).catch(() => undefined))?.trim());
      const who = Number.isInteger(owner) && owner > 0 ? ` (pid ${owner})` : '';
      throw new ApplyError(`another guestwall${who} is changing the ruleset; ${what} did not start`, 'wait for it to finish, or run again with a longer --wait');
    }
    await sys.sleep(100);
  }
}

/** Run `fn` holding the lock: taken here, or `taken` already under way (apply takes it while it compiles). */
export async function withLock<T>(sys: System, path: string, waitMs: number, what: string, fn: () => Promise<T>, taken?: Promise<HeldLock>): Promise<T> {
  const held = await (taken ?? takeLock(sys, path, waitMs, what));
  try {
    return await fn();
  } finally {
    await held.release();
  }
}
