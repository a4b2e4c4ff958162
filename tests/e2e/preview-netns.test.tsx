// Diff and apply from the preview on a real kernel, inside a throwaway network namespace (what
// `guestwall preview --netns NAME` does): the live diff, apply behind the confirmation with the
// real rollback timer, confirm, roll back, and the timer's own rollback when nobody confirms.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cleanup } from 'ink-testing-library';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { statePaths } from '../../src/apply/state.js';
import { realSystem } from '../../src/apply/system.js';
import { timerCommand } from '../../src/cli/apply.js';
import { previewHost } from '../../src/cli/preview.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';
import { preview } from '../unit/tui/helpers.js';

const timer = timerCommand();
const skipReason = kernelTestUnavailable() ?? (existsSync(timer[1]!) ? undefined : 'run npm run build first (the rollback timer runs from dist/)');

const FOREIGN = 'table ip other {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t}\n}\n';

describe.skipIf(skipReason !== undefined)(`preview: diff and apply in a namespace${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let ns = '';
  let dir = '';
  beforeEach(async () => {
    ns = namespaceName('gw-prev');
    dir = await mkdtemp(join(tmpdir(), 'gw-prev-'));
    await addNamespace(ns);
    await execa('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: FOREIGN });
  });
  let last: ReturnType<typeof preview> | undefined;
  afterEach(async () => {
    // A diff still running has a scratch namespace to delete: let it finish first.
    await last?.waitFor(/^(?![\s\S]*computing what apply)/, 30_000);
    cleanup();
    await deleteNamespace(ns);
    await rm(dir, { recursive: true, force: true });
  });

  const nft = async (...args: string[]) => execa('ip', ['netns', 'exec', ns, 'nft', ...args], { reject: false });
  const guestwallLoaded = async () => (await nft('list', 'table', 'inet', 'guestwall')).exitCode === 0;
  const door = (confirmSeconds: number) =>
    previewHost({ live: realSystem(ns), host: realSystem(), state: statePaths(dir, ns), confirmSeconds, timerCommand: timer });

  it('shows the live diff, applies after the confirmation, keeps it with c; other tables untouched', async () => {
    const foreign = (await nft('list', 'table', 'ip', 'other')).stdout;
    const p = (last = preview(undefined, { host: door(60) }));
    await p.press('d');
    await p.waitFor(`apply would change on network namespace ${ns}:`, 20_000);
    expect(p.frame()).toContain('+ not loaded yet: everything below is new');
    await p.press('a');
    expect(p.flat()).toContain(`Apply policies/homelab-dmz.yaml to network namespace ${ns}? It changes`);
    expect(await guestwallLoaded()).toBe(false);
    await p.press('y');
    await p.waitFor('c keeps it, x rolls back', 20_000);
    expect(await guestwallLoaded()).toBe(true);
    await p.press('c');
    await p.waitFor('confirmed: the new ruleset stays', 20_000);
    await p.waitFor(`network namespace ${ns} already runs this policy: apply would change nothing`, 20_000);
    expect(await guestwallLoaded()).toBe(true);
    expect((await nft('list', 'table', 'ip', 'other')).stdout).toBe(foreign);
  });

  it('rolls back with x', async () => {
    const p = (last = preview(undefined, { host: door(60) }));
    await p.press('d');
    await p.waitFor(/^apply would change/m, 20_000);
    await p.press('a');
    await p.press('y');
    await p.waitFor('c keeps it, x rolls back', 20_000);
    await p.press('x');
    await p.waitFor("rolled back: guestwall's tables are as they were before the apply", 20_000);
    expect(await guestwallLoaded()).toBe(false);
    await p.waitFor('+ not loaded yet', 20_000);
  });

  it('comes back by itself when nobody confirms, and says so', async () => {
    const p = (last = preview(undefined, { host: door(2) }));
    await p.press('d');
    await p.waitFor(/^apply would change/m, 20_000);
    await p.press('a', 'y');
    await p.waitFor('c keeps it, x rolls back', 20_000);
    expect(await guestwallLoaded()).toBe(true);
    await p.waitFor('not confirmed in time: the rollback timer restored the previous ruleset', 20_000);
    await p.waitFor('+ not loaded yet', 20_000);
    expect(await guestwallLoaded()).toBe(false);
  });
});
