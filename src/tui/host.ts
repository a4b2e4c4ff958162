// What the preview may ask of the host it runs on: the live diff and the apply behind the Diff
// view. The CLI builds it on src/apply (the same code as `guestwall diff` and `apply --confirm`);
// the views only call it and show what comes back, so tests hand in one over a fake System.
import type { Change } from '../nft/diff.js';
import type { Ruleset } from '../nft/ruleset.js';

export interface HostDoor {
  /** Where changes go, for the screen: "this host" or "network namespace lab". */
  where: string;
  /** Why the live diff and apply cannot run here (e.g. not root); undefined when they can. */
  unavailable?: string;
  /** How long an apply waits for `c` (confirm) before it rolls back by itself. */
  confirmSeconds: number;
  /** What applying `ruleset` would change on the host, rule by rule and element by element. */
  diff(ruleset: Ruleset): Promise<Change[]>;
  /** Apply with a rollback timer; `deadline` (epoch ms) is when it rolls back unless confirmed. */
  apply(ruleset: Ruleset): Promise<{ changed: boolean; deadline?: number }>;
  confirm(): Promise<void>;
  rollback(): Promise<void>;
  now(): number;
}

/** An error from the door as one line, with the hint when it has one. */
export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const hint = (e as { hint?: unknown }).hint;
    return typeof hint === 'string' && hint ? `${e.message} (${hint})` : e.message;
  }
  return String(e);
}
