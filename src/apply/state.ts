// Where guestwall keeps what it needs to undo itself: the state before the last apply, the
// applied ruleset, the pending confirmation, the lock. One directory per host (or per network
// namespace with --netns), so a lab namespace never touches the host's own state.
import { join } from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/guestwall';

export interface StatePaths {
  dir: string;
  /** Held while an apply, confirm or rollback changes the ruleset. */
  lock: string;
  /** nft script that restores guestwall's tables as they were before the last apply. */
  previous: string;
  /** The nftables JSON of the last apply. */
  current: string;
  /** The document an apply is about to load. */
  next: string;
  /** Present while an apply waits for `guestwall confirm`. */
  pending: string;
  /** One line per apply, confirm and rollback. */
  log: string;
  /** What guestwall owns on the host network: the proxy entries, addresses and sysctls it set. */
  network: string;
  /** The owned network as it was before the last apply, restored by rollback beside previous.nft. */
  previousNetwork: string;
  /** Present while an apply or rollback changes the host; the next guestwall finishes a dead one's job. */
  inProgress: string;
  /** What the kernel could load when last probed, with the boot and modules it holds for (a cache). */
  features: string;
}

export function statePaths(base: string, netns?: string): StatePaths {
  const dir = netns === undefined ? base : join(base, 'netns', netns);
  return {
    dir,
    lock: join(dir, 'lock'),
    previous: join(dir, 'previous.nft'),
    current: join(dir, 'current.json'),
    next: join(dir, 'next.json'),
    pending: join(dir, 'pending-confirm.json'),
    log: join(dir, 'history.log'),
    network: join(dir, 'network.json'),
    previousNetwork: join(dir, 'previous-network.json'),
    inProgress: join(dir, 'in-progress.json'),
    features: join(dir, 'kernel-features.json'),
  };
}

/** What `apply --confirm` leaves for the rollback timer and `guestwall confirm`. */
export interface PendingConfirm {
  token: string;
  /** Epoch milliseconds after which the timer restores the previous state. */
  deadline: number;
  timerPid?: number;
  /** Set by the timer itself once it runs: apply does not load anything before that. */
  armed?: boolean;
}
