// apply's refusals, with an in-memory host: what it says, and that it touches nothing.
import { describe, expect, it } from 'vitest';
import { applyRuleset } from '../../../src/apply/apply.js';
import { ApplyError } from '../../../src/apply/errors.js';
import { withLock } from '../../../src/apply/lock.js';
import { statePaths } from '../../../src/apply/state.js';
import { compileYaml } from '../../support/compile.js';
import { fakeSystem } from '../../support/fake-system.js';

const ruleset = compileYaml(`
version: 1
host: { interfaces: { eth0: { zone: net } } }
zones: { net: {} }
`).ruleset;
const state = statePaths('/state');
const opts = { state, timerCommand: ['node', 'timer.js'] };

async function refusal(p: Promise<unknown>): Promise<ApplyError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(ApplyError);
  return e as ApplyError;
}

describe('apply refuses cleanly, changing nothing', () => {
  it('when not root (exit 2, says to use sudo)', async () => {
    const f = fakeSystem({ root: false, run: { 'nft --version': 'nftables v1.0.6' } });
    const e = await refusal(applyRuleset(f.sys, ruleset, opts));
    expect(e.message).toContain('needs root');
    expect(e.exitCode).toBe(2);
    expect(f.calls).toEqual([]);
  });

  it('when nft is not installed (exit 2, says what to install)', async () => {
    const f = fakeSystem({ root: true });
    const e = await refusal(applyRuleset(f.sys, ruleset, opts));
    expect(e.message).toBe('nft is not installed or cannot run');
    expect(e.hint).toContain('apt-get install nftables');
    // Said by the first nft that runs (no `nft --version` first), before anything is loaded.
    expect(f.calls).toEqual(['nft list ruleset']);
    expect(f.files.has(state.inProgress)).toBe(false);
  });

  it('when the lockout guard objects, before reading or loading anything', async () => {
    const f = fakeSystem({ root: true, run: { 'nft --version': 'nftables v1.0.6' } });
    const e = await refusal(applyRuleset(f.sys, ruleset, { ...opts, guard: () => 'this policy would drop new SSH connections' }));
    expect(e.message).toBe('this policy would drop new SSH connections');
    expect(e.hint).toContain('--force');
    expect(f.calls.filter((c) => c.startsWith('nft -j -f'))).toEqual([]);
  });

  it('when another guestwall holds the lock past --wait, naming its pid', async () => {
    const f = fakeSystem({ root: true, run: { 'nft --version': 'nftables v1.0.6' } });
    const held = await f.sys.tryLock(state.lock);
    f.files.set(state.lock, '4242\n');
    const e = await refusal(applyRuleset(f.sys, ruleset, { ...opts, waitMs: 300 }));
    expect(e.message).toContain('another guestwall (pid 4242) is changing the ruleset');
    expect(f.calls.filter((c) => c.startsWith('nft list') || c.startsWith('nft -j'))).toEqual([]);
    await held!.release();
  });

  it('ignores what a dead owner left in the lock file: only a held lock counts', async () => {
    const f = fakeSystem({ root: true });
    f.files.set(state.lock, '999999');
    expect(await withLock(f.sys, state.lock, 100, 'test', async () => 'ran')).toBe('ran');
    // Released, and usable again at once.
    expect(await withLock(f.sys, state.lock, 0, 'test', async () => 'again')).toBe('again');
  });
});

describe("a refused apply leaves rollback's state as it was", () => {
  /** A host with none of guestwall's tables yet, whose kernel refuses every load. */
  const refusingHost = (files: Record<string, string>) =>
    fakeSystem({
      root: true,
      files,
      answer(cmd, args) {
        const line = [cmd, ...args].join(' ');
        if (line === 'nft --version') return 'nftables v1.0.6';
        if (line === 'nft list ruleset') return ''; // none of guestwall's tables yet
        if (line.startsWith('nft -j -f ')) return { code: 1, stderr: 'Error: Could not process rule: Operation not supported' };
        return undefined;
      },
    });

  it('when the kernel refuses the load: the previous-state file keeps what the last good apply saved', async () => {
    const f = refusingHost({ [state.previous]: '# guestwall snapshot: from the last good apply\n' });
    const e = await refusal(applyRuleset(f.sys, ruleset, opts));
    expect(e.message).toMatch(/^the kernel refuses the ruleset: .*Operation not supported; nothing was changed$/);
    expect(f.files.get(state.previous)).toBe('# guestwall snapshot: from the last good apply\n');
    // One load, no separate check pass.
    expect(f.calls.filter((c) => c.startsWith('nft -j -f')).length).toBe(1);
    expect(f.calls.filter((c) => c.startsWith('nft -c'))).toEqual([]);
  });

  it('when there was no previous state, none is left behind', async () => {
    const f = refusingHost({});
    await refusal(applyRuleset(f.sys, ruleset, opts));
    expect(f.files.has(state.previous)).toBe(false);
  });

  it('when the rollback timer never says it runs: nothing loaded, the previous-state file as it was', async () => {
    const f = refusingHost({ [state.previous]: '# guestwall snapshot: from the last good apply\n' });
    const e = await refusal(applyRuleset(f.sys, ruleset, { ...opts, confirmSeconds: 30 }));
    expect(e.message).toContain('the rollback timer did not start');
    expect(f.calls.filter((c) => c.startsWith('nft -j -f'))).toEqual([]);
    expect(f.files.get(state.previous)).toBe('# guestwall snapshot: from the last good apply\n');
    expect(f.files.has(state.pending)).toBe(false);
  });
});
