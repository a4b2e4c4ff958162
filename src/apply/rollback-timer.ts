// The commit-confirmed timer: started detached by `apply --confirm`, so it outlives the apply
// process (and an SSH session that drops). At the deadline it restores the previous state,
// unless `guestwall confirm` or a newer apply has taken its pending token away.
// Usage: node rollback-timer.js --state-dir DIR --token TOKEN [--netns NAME]
import { parseArgs } from 'node:util';
import { rollback } from './apply.js';
import type { PendingConfirm } from './state.js';
import { statePaths } from './state.js';
import { readPending, writePending } from './state-file.js';
import { realSystem } from './system.js';

const { values } = parseArgs({ options: { 'state-dir': { type: 'string' }, token: { type: 'string' }, netns: { type: 'string' } } });
const dir = values['state-dir'];
const token = values.token;
if (!dir || !token) {
  process.stderr.write('usage: rollback-timer --state-dir DIR --token TOKEN [--netns NAME]\n');
  process.exit(2);
}
const sys = realSystem(values.netns);
// The state directory given is already the namespace's own; do not nest it again.
const state = { ...statePaths(dir), dir };

/** The pending confirmation; a damaged file (someone else's fault) counts as still ours: in doubt, restore. */
const pending = (): Promise<PendingConfirm | 'damaged' | undefined> => readPending(sys, state.pending).catch(() => 'damaged' as const);

// Tell apply that the timer is running: only then does it load the new ruleset.
let deadline: number;
{
  const p = await pending();
  if (p === undefined || p === 'damaged' || p.token !== token) process.exit(0);
  deadline = p.deadline;
  await writePending(sys, state.pending, { ...p, timerPid: process.pid, armed: true });
}

for (;;) {
  const p = await pending();
  if (p === undefined) process.exit(0); // confirmed or cancelled
  if (p !== 'damaged' && p.token !== token) process.exit(0); // a newer apply owns the confirmation now
  const wait = (p === 'damaged' ? deadline : p.deadline) - sys.now();
  if (wait <= 0) break;
  await sys.sleep(Math.min(wait, 500));
}
try {
  await rollback(sys, state, 'not confirmed in time', token);
} catch (e) {
  process.stderr.write(`guestwall rollback timer: ${(e as Error).message}\n`);
  process.exit(1);
}
