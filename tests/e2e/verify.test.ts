// The verification after a load, on a real kernel in a throwaway namespace: one listing of the
// whole ruleset (issue 17) must still tell guestwall's tables from others' and catch a live
// ruleset that is not what was compiled; an apply whose load is followed by such a change
// undoes itself. And the snapshot cut out of that one listing restores the tables exactly.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { applyRuleset } from '../../src/apply/apply.js';
import { ApplyError } from '../../src/apply/errors.js';
import { loadJson, snapshot, tableTexts } from '../../src/apply/nft.js';
import { statePaths } from '../../src/apply/state.js';
import { type System, realSystem } from '../../src/apply/system.js';
import { liveDifferences, setDifferences } from '../../src/apply/verify.js';
import { toNftJson } from '../../src/nft/json.js';
import { compileYaml } from '../support/compile.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const skipReason = kernelTestUnavailable();
const { ruleset } = compileYaml(readFileSync('policies/homelab-dmz.yaml', 'utf8'));
const tables = ruleset.tables.map((t) => ({ family: t.family, name: t.name }));

/** Another program's table with guestwall's chain and set names in it: the one listing must not mix them in. */
const LOOKALIKE = `table inet other {
	set routed_guests { type ifname; elements = { "x0", "x1", "x2" } }
	chain forward { type filter hook forward priority 10; policy drop; }
	chain input {
		type filter hook input priority 10; policy accept;
		counter
	}
}
`;

describe.skipIf(skipReason !== undefined)(`verifying the live tables${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let ns = '';
  let dir = '';
  let sys: System;
  const nft = (...args: string[]) => execa('ip', ['netns', 'exec', ns, 'nft', ...args]);
  /** One rule's handle in a chain of inet guestwall. */
  const firstHandle = async (chain: string) => {
    const listing = JSON.parse((await nft('-j', '-a', 'list', 'chain', 'inet', 'guestwall', chain)).stdout) as { nftables: { rule?: { handle: number } }[] };
    return String(listing.nftables.find((o) => o.rule)!.rule!.handle);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-verify-'));
  });
  beforeEach(async () => {
    ns = namespaceName('gw-verify');
    await addNamespace(ns);
    sys = realSystem(ns);
    await execa('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: LOOKALIKE });
    await sys.writeFile(join(dir, 'r.json'), `${JSON.stringify(toNftJson(ruleset))}\n`);
    expect((await loadJson(sys, join(dir, 'r.json'))).code).toBe(0);
  });
  afterEach(async () => {
    await deleteNamespace(ns);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds nothing when the tables are what was compiled, with a look-alike table beside them', async () => {
    expect(await liveDifferences(sys, ruleset)).toEqual([]);
    expect(await setDifferences(sys, ruleset, [{ family: 'inet', table: 'guestwall', name: 'routed_guests' }])).toEqual([]);
  });

  it('names a deleted rule, an extra element, a changed policy, an extra chain and a missing table', async () => {
    await nft('delete', 'rule', 'inet', 'guestwall', 'input', 'handle', await firstHandle('input'));
    expect(await liveDifferences(sys, ruleset)).toEqual([expect.stringMatching(/^chain input has \d+ rules, expected \d+/)]);

    await loadJson(sys, join(dir, 'r.json'));
    await nft('add', 'element', 'inet', 'guestwall', 'routed_guests', '{ "gw-intruder" }');
    expect(await liveDifferences(sys, ruleset)).toEqual([expect.stringMatching(/^set routed_guests has \d+ elements, expected \d+$/)]);
    expect(await setDifferences(sys, ruleset, [{ family: 'inet', table: 'guestwall', name: 'routed_guests' }])).toEqual([expect.stringMatching(/^set routed_guests has/)]);

    await loadJson(sys, join(dir, 'r.json'));
    await nft('add', 'chain', 'inet', 'guestwall', 'forward', '{ policy accept; }');
    await nft('add', 'chain', 'inet', 'guestwall', 'not_ours');
    expect(await liveDifferences(sys, ruleset)).toEqual([expect.stringMatching(/^chain forward is hooked forward policy accept, expected forward policy drop$/), 'chain not_ours is not guestwall\'s']);

    await nft('delete', 'table', 'bridge', 'guestwall');
    expect(await liveDifferences(sys, ruleset)).toContain('table bridge guestwall is not loaded');
  });

  it('cuts each table out of one listing exactly as nft lists it alone, and the snapshot restores it', async () => {
    const listed = tableTexts((await nft('list', 'ruleset')).stdout);
    for (const t of tables) expect(`${listed.get(`${t.family} ${t.name}`)}\n`).toBe(`${(await nft('list', 'table', t.family, t.name)).stdout}\n`);
    expect(listed.has('inet other')).toBe(true);
    const before = await snapshot(sys, tables);
    await nft('delete', 'table', 'arp', 'guestwall');
    await nft('add', 'element', 'inet', 'guestwall', 'routed_guests', '{ "gw-intruder" }');
    await sys.writeFile(join(dir, 'snap.nft'), before);
    expect((await execa('ip', ['netns', 'exec', ns, 'nft', '-f', join(dir, 'snap.nft')], { reject: false })).exitCode).toBe(0);
    expect(await snapshot(sys, tables)).toBe(before);
    expect(await liveDifferences(sys, ruleset)).toEqual([]);
  });

  it('an apply whose tables are changed right after its load undoes itself and says what differed', async () => {
    const state = statePaths(join(dir, 'state'));
    // Another program changes guestwall's tables between the load and the verification.
    const meddling: System = {
      ...sys,
      async run(cmd, args, input) {
        const r = await sys.run(cmd, args, input);
        if (cmd === 'nft' && args[0] === '-j' && args[1] === '-f' && args[2] === state.next && r.code === 0) {
          await nft('delete', 'rule', 'inet', 'guestwall', 'input', 'handle', await firstHandle('input'));
        }
        return r;
      },
    };
    await nft('delete', 'table', 'inet', 'guestwall');
    const before = await snapshot(sys, tables);
    const e = await applyRuleset(meddling, ruleset, { state, timerCommand: ['true'] }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(ApplyError);
    expect((e as ApplyError).message).toMatch(/^the live tables differ from the ruleset after loading \(chain input has \d+ rules, expected \d+.*\); the previous state was restored$/);
    expect(await snapshot(sys, tables)).toBe(before);
  });
});
