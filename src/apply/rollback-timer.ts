// The commit-confirmed timer: started detached by `apply --confirm`, so it outlives the apply
// process (and an SSH session that drops). At the deadline it restores the previous state,
// unless `guestwall confirm` or a newer apply has taken its pending token away.
// Usage: node rollback-timer.js --state-dir DIR --token TOKEN [--netns NAME]
import { parseArgs } from 'node:util';
import { rollback } from './apply.js';
import type { PendingConfirm } from './state.js';
import { statePaths } from './state.js';
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

// Tell apply that the timer is running: only then does it load the new ruleset.
{
  const text = await sys.readFile(state.pending);
  const p = text === undefined ? undefined : (JSON.parse(text) as PendingConfirm);
  if (p?.token !== token) process.exit(0);
  await sys.writeFile(state.pending, `${JSON.stringify({ ...p, timerPid: process.pid, armed: true })}\n`, 0o600);
}

for (;;) {
  const text = await sys.readFile(state.pending);
  if (text === undefined) process.exit(0); // confirmed or cancelled
  const p = JSON.parse(text) as PendingConfirm;
  if (p.token !== token) process.exit(0); // a newer apply owns the confirmation now
  const wait = p.deadline - sys.now();
  if (wait <= 0) break;
  await sys.sleep(Math.min(wait, 500));
}
try {
  await rollback(sys, state, 'not confirmed in time', token);
} catch (e) {
  process.stderr.write(`guestwall rollback timer: ${(e as Error).message}\n`);
  process.exit(1);
}
