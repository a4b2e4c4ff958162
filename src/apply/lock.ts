// One change at a time: a lock file holding the pid of its owner. A lock whose owner is gone
// (killed, crashed) is taken over; a live owner is waited for, then refused with its pid.
import { ApplyError } from './errors.js';
import type { System } from './system.js';

export async function withLock<T>(sys: System, path: string, waitMs: number, what: string, fn: () => Promise<T>): Promise<T> {
  const me = String(process.pid);
  const deadline = sys.now() + waitMs;
  for (;;) {
    if (await sys.createExclusive(path, me)) break;
    const owner = Number((await sys.readFile(path))?.trim());
    if (!Number.isInteger(owner) || owner <= 0 || !sys.alive(owner)) {
      await sys.remove(path); // stale: its owner died without unlocking
      continue;
    }
    if (sys.now() >= deadline) {
      throw new ApplyError(`another guestwall (pid ${owner}) is changing the ruleset; ${what} did not start`, 'wait for it to finish, or run again with a longer --wait');
    }
    await sys.sleep(100);
  }
  try {
    return await fn();
  } finally {
    if ((await sys.readFile(path))?.trim() === me) await sys.remove(path);
  }
}
