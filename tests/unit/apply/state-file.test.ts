// State files that survive faults: a snapshot is sealed with its apply id and a checksum, a
// damaged or cut-short file is one clear line (what is wrong, what to run, exit 2) and changes
// nothing, never a stack trace and never a false success.
import { describe, expect, it } from 'vitest';
import { confirm, rollback } from '../../../src/apply/apply.js';
import { ApplyError } from '../../../src/apply/errors.js';
import { StateFileError, checkSnapshot, readOwned, readPending, sealSnapshot } from '../../../src/apply/state-file.js';
import { statePaths } from '../../../src/apply/state.js';
import { fakeSystem } from '../../support/fake-system.js';

const state = statePaths('/state');
const script = '# guestwall snapshot: restores its tables as they were\ntable inet guestwall {}\ndelete table inet guestwall\ntable inet guestwall {\n\tchain input {\n\t}\n}\n';

const damaged = (text: string) => ({
  empty: '',
  'cut in half': text.slice(0, Math.floor(text.length / 2)),
  'one byte short': text.trimEnd().slice(0, -1),
  garbage: '\u0000\u00ff{{not this',
});

async function failure(p: Promise<unknown>): Promise<ApplyError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(ApplyError);
  return e as ApplyError;
}

describe('the sealed snapshot (previous.nft)', () => {
  it('gives back the apply id when whole', () => {
    expect(checkSnapshot('/state/previous.nft', sealSnapshot(script, 'abc123'))).toBe('abc123');
  });

  it.each(Object.entries(damaged(sealSnapshot(script, 'abc123'))))('is refused when %s', (_, text) => {
    expect(() => checkSnapshot('/state/previous.nft', text)).toThrow(StateFileError);
  });

  it('is refused when a byte inside changed', () => {
    const text = sealSnapshot(script, 'abc123').replace('chain input', 'chain inpux');
    expect(() => checkSnapshot('/state/previous.nft', text)).toThrow('does not match its checksum');
  });
});

describe('a damaged state file is one clear line, exit 2, and nothing runs', () => {
  const host = (files: Record<string, string>) => fakeSystem({ root: true, files, answer: () => '' });

  it.each(Object.entries({ ...damaged('{"token":"0011223344556677","deadline":1}\n'), 'the wrong shape': '{"token":42}\n' }))(
    'confirm with pending-confirm.json %s',
    async (_, text) => {
      const f = host({ [state.pending]: text });
      const e = await failure(confirm(f.sys, state));
      expect(e.exitCode).toBe(2);
      expect(e.message).toMatch(/^state file \/state\/pending-confirm\.json is damaged, so guestwall cannot tell which apply it confirms: run 'guestwall rollback'/);
      expect(e.message).not.toContain('\n');
      expect(f.calls).toEqual([]);
    },
  );

  it.each(Object.entries(damaged(sealSnapshot(script, 'abc123'))))('rollback with previous.nft %s: no false success, nothing loaded', async (_, text) => {
    const f = host({ [state.previous]: text });
    const e = await failure(rollback(f.sys, state, 'test'));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/^state file \/state\/previous\.nft .*: rollback cannot restore from it; the ruleset was not changed/);
    expect(f.calls.filter((c) => c.startsWith('nft -f'))).toEqual([]);
  });

  it('rollback whose restored tables differ from the snapshot says so instead of claiming success', async () => {
    // The kernel takes the script, but listing the table afterwards shows something else.
    const f = fakeSystem({
      root: true,
      files: { [state.previous]: sealSnapshot(script, 'abc123') },
      answer: (_cmd, args) => (args[0] === 'list' ? 'table inet guestwall {\n\tchain forward {\n\t}\n}\n' : ''),
    });
    const e = await failure(rollback(f.sys, state, 'test'));
    expect(e.message).toContain('differs from it');
    expect(f.files.has(state.inProgress)).toBe(true); // the next guestwall finishes the job
  });

  it('reads the owned network record, and names the way out when it is damaged', async () => {
    const f = host({ [state.network]: '{"proxies":[{"address":"203.0.113.20","dev":"eth0"}],"addresses":[],"sysctls":[]}\n' });
    expect((await readOwned(f.sys, state.network)).proxies).toEqual([{ address: '203.0.113.20', dev: 'eth0' }]);
    f.files.set(state.network, '{"proxies":[{"address":"203.0.113.20"');
    await expect(readOwned(f.sys, state.network)).rejects.toThrow(/^state file \/state\/network\.json is not valid JSON \(cut short or damaged\): guestwall no longer knows/);
    f.files.set(state.network, '{"proxies":[{"address":7}],"addresses":[],"sysctls":[]}');
    await expect(readOwned(f.sys, state.network)).rejects.toThrow('(proxies: [0] address: a non-empty string)');
    expect(await readPending(f.sys, state.pending)).toBeUndefined();
  });
});
