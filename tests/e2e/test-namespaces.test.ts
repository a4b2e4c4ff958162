// The namespaces a kernel test makes are gone when the test is over, however it ends
// (tests/support/kernel.ts: testNamespaces). vitest fails a test at its timeout and moves on
// while the body still runs, so a body's own `finally` comes late or never (the worker exits at
// the end of the file); nft-load.test.ts, 300 generated policies on a loaded machine, left its
// namespaces that way. Namespaces gw-tns-<pid>-*, made and deleted here only.
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { TestNamespaces, addNamespace, deleteNamespace, kernelTestUnavailable, sweepDeadRuns, testNamespaces } from '../support/kernel.js';

const skipReason = kernelTestUnavailable();
const PREFIX = 'gw-tns';
const listed = async (): Promise<string[]> => (await execa('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`${PREFIX}-`));
const ours = async () => (await listed()).filter((n) => n.startsWith(`${PREFIX}-${process.pid}-`));

describe.skipIf(skipReason !== undefined)(`a test's namespaces are deleted when it is over${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const extra: string[] = [];
  afterAll(async () => {
    for (const n of [...extra, ...(await ours())]) await deleteNamespace(n);
  });

  let timedOut: { made: string; late?: string; done: Promise<void> } | undefined;
  // Expected to fail: by its timeout, with its body still running.
  it.fails('(a test that times out while its body still runs)', async () => {
    const pool = testNamespaces(PREFIX);
    let finish!: () => void;
    timedOut = { made: await pool.add(), done: new Promise((r) => (finish = r)) };
    await sleep(2_500);
    // Past the timeout, the body asks for another namespace.
    await pool.add().then((n) => (timedOut!.late = `made ${n}`), (e: Error) => (timedOut!.late = e.message));
    finish();
  }, 1_000);

  it('the timed-out test: its namespace is gone when the next test starts, and its body cannot make another', async () => {
    expect(timedOut).toBeDefined();
    expect(await listed()).not.toContain(timedOut!.made);
    await timedOut!.done;
    expect(timedOut!.late).toMatch(/the test is over: no new namespace/);
    expect(await ours()).toEqual([]);
  });

  it('a namespace still being made when the test ends is waited for, then deleted (deleting first would miss it)', async () => {
    const events: string[] = [];
    const pool = new TestNamespaces(PREFIX, {
      add: async (n) => {
        events.push(`add ${n}`);
        await sleep(300);
        events.push(`added ${n}`);
      },
      delete: async (n) => {
        events.push(`delete ${n}`);
      },
    });
    const making = pool.add();
    await pool.close();
    const name = await making;
    expect(events).toEqual([`add ${name}`, `added ${name}`, `delete ${name}`]);
    expect(pool.has(name)).toBe(false);
  });

  it('what a run killed outright left is deleted by the next run, and only that: live runs keep theirs', async () => {
    const gone = execa('true');
    await gone;
    const dead = `${PREFIX}-${gone.pid}-0badf00d`;
    const live = `${PREFIX}-1-0badf00d`; // pid 1 is always alive
    const mine = `${PREFIX}-${process.pid}-0badf00d`;
    extra.push(dead, live, mine);
    for (const n of [dead, live, mine]) await addNamespace(n);
    const swept = await sweepDeadRuns(PREFIX);
    expect(swept).toContain(dead);
    expect(swept).not.toContain(live);
    expect(swept).not.toContain(mine);
    const now = await listed();
    expect(now).not.toContain(dead);
    expect(now).toEqual(expect.arrayContaining([live, mine]));
  });
});
