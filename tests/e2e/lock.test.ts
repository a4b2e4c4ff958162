// The lock cannot be held twice: many processes started at once race for it, and the kernel
// (flock on an open file) grants it to exactly one at a time. A holder killed with SIGKILL
// releases it with its last descriptor: no stale lock is left to take over.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const LOCK_JS = resolve('dist/src/apply/lock.js');
const SYSTEM_JS = resolve('dist/src/apply/system.js');
const built = (() => {
  try {
    readFileSync(LOCK_JS);
    return true;
  } catch {
    return false;
  }
})();
const skipReason = process.platform !== 'linux' ? 'needs Linux (flock)' : !built ? 'needs npm run build (dist/)' : undefined;

/** One contender: waits for the common start, tries for `waitMs`, holds for `holdMs`, logs enter/exit. */
const CONTENDER = String.raw`
import { appendFileSync, existsSync } from 'node:fs';
const [lockJs, systemJs, lockPath, logPath, go, waitMs, holdMs] = process.argv.slice(1);
const { withLock } = await import(lockJs);
const { realSystem } = await import(systemJs);
// Everyone loaded, then all at once: the test creates the go file when every contender is ready.
appendFileSync(logPath + '.ready', process.pid + '\n');
while (!existsSync(go)) await new Promise((r) => setTimeout(r, 1));
try {
  await withLock(realSystem(), lockPath, Number(waitMs), 'test', async () => {
    appendFileSync(logPath, 'enter ' + process.pid + '\n');
    await new Promise((r) => setTimeout(r, Number(holdMs)));
    appendFileSync(logPath, 'exit ' + process.pid + '\n');
  });
  process.exit(0);
} catch (e) {
  process.stderr.write(String(e.message) + '\n');
  process.exit(3);
}
`;

const dir = mkdtempSync(join(tmpdir(), 'gw-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Start `n` contenders; resolves once all are loaded and released at the same moment. */
async function race(n: number, name: string, waitMs: number, holdMs: number) {
  const lock = join(dir, `${name}.lock`);
  const log = join(dir, `${name}.log`);
  const go = join(dir, `${name}.go`);
  writeFileSync(log, '');
  writeFileSync(`${log}.ready`, '');
  // A lock file left by a holder long dead, as a crashed older guestwall leaves it: it must not matter.
  if (!existsSync(lock)) writeFileSync(lock, '999999\n');
  const runs = Array.from({ length: n }, () =>
    execa('node', ['--input-type=module', '-e', CONTENDER, LOCK_JS, SYSTEM_JS, lock, log, go, String(waitMs), String(holdMs)], { reject: false }),
  );
  const end = Date.now() + 60_000;
  while (readFileSync(`${log}.ready`, 'utf8').trim().split('\n').filter(Boolean).length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  writeFileSync(go, '');
  return { runs, log, lock };
}

describe.skipIf(skipReason !== undefined)(`the state lock${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('12 processes at once, none willing to wait: exactly one wins, the others are refused cleanly', async () => {
    const { runs, log } = await race(12, 'once', 0, 10_000); // held long enough that a contender the loaded machine schedules late still meets it
    const results = await Promise.all(runs);
    const winners = results.filter((r) => r.exitCode === 0);
    expect(winners).toHaveLength(1);
    // The pid is named when the holder has written it; a contender that fails in the instant
    // between the holder's flock and that write is refused all the same, without it.
    for (const r of results.filter((x) => x.exitCode !== 0)) expect(r.stderr).toMatch(/^another guestwall (\(pid \d+\) )?is changing the ruleset; test did not start/);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(2);
  }, 60_000);

  it('8 processes that all wait: each holds it alone, one after the other', async () => {
    const { runs, log } = await race(8, 'queue', 60_000, 150);
    const results = await Promise.all(runs);
    expect(results.map((r) => r.exitCode)).toEqual(Array(8).fill(0));
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(16);
    // enter A, exit A, enter B, exit B, ...: never two inside at once.
    for (let i = 0; i < lines.length; i += 2) {
      expect(lines[i]).toMatch(/^enter \d+$/);
      expect(lines[i + 1]).toBe(lines[i]!.replace('enter', 'exit'));
    }
  }, 60_000);

  it('a holder killed with SIGKILL leaves no stale lock: the next one gets it at once', async () => {
    const { runs, log, lock } = await race(1, 'killed', 0, 60_000);
    const holder = runs[0]!;
    const end = Date.now() + 20_000;
    while (!readFileSync(log, 'utf8').includes('enter') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    holder.kill('SIGKILL');
    await holder;
    expect(readFileSync(lock, 'utf8').trim()).toBe(String(holder.pid));
    const again = await (await race(1, 'killed', 0, 10)).runs[0]!;
    expect(again.exitCode, again.stderr).toBe(0);
  }, 60_000);
});
