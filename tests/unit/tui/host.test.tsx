// The Diff view and apply from the preview, over the real host door (src/cli/preview.ts, built on
// src/apply) and an in-memory host: a fake System whose nft keeps the last document loaded, as
// the kernel would, and a scratch namespace that is another fake.
import { cleanup } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { statePaths } from '../../../src/apply/state.js';
import type { System } from '../../../src/apply/system.js';
import { previewHost } from '../../../src/cli/preview.js';
import type { HostDoor } from '../../../src/tui/host.js';
import { type FakeSystem, fakeSystem } from '../../support/fake-system.js';
import { nextState } from '../../../src/tui/state.js';
import { HOMELAB, KEYS, homelab, homelabText, preview, resize } from './helpers.js';

afterEach(cleanup);

type Doc = { nftables: Record<string, Record<string, unknown>>[] };
const state = statePaths('/state');

/** `nft list table` text and JSON of a loaded document, enough for listing.ts and diff.ts (and, per family put together, `nft list ruleset`). */
function listing(doc: Doc | undefined, family = 'inet') {
  const inFamily = (i: Record<string, unknown>) => Object.values(i).every((v) => (v as { family?: string }).family === family);
  const items = (doc?.nftables ?? []).flatMap((c) => (c.add ? [c.add] : [])).filter(inFamily);
  const chains = items.filter((i) => i.chain).map((i) => i.chain as { name: string; hook?: string; policy?: string });
  const rules = items.filter((i) => i.rule).map((i) => i.rule as { chain: string; comment: string; expr: unknown });
  const text = doc
    ? `table ${family} guestwall {\n${chains.map((c) => `\tchain ${c.name} {\n${c.hook ? `\t\ttype filter hook ${c.hook} priority 0; policy ${c.policy};\n` : ''}${rules.filter((r) => r.chain === c.name).map((r) => `\t\t${JSON.stringify(r.expr)} comment "${r.comment}"\n`).join('')}\t}\n`).join('')}}\n`
    : undefined;
  return { text, json: JSON.stringify({ nftables: items }) };
}

/** A host whose nft loads documents from files and lists the last one; `refuse` makes the load say no. */
function fakeHost(opts: { root?: boolean; refuse?: string } = {}) {
  const kernel: { loaded?: Doc; before: (Doc | undefined)[] } = { before: [] };
  const live: FakeSystem = fakeSystem({
    root: opts.root ?? true,
    answer(cmd, args, files) {
      const line = [cmd, ...args].join(' ');
      if (line === 'nft --version') return 'nftables v1.0.6';
      if (line === 'nft -j list ruleset') return JSON.stringify({ nftables: ['inet', 'bridge', 'arp'].flatMap((f) => (JSON.parse(listing(kernel.loaded, f).json) as Doc).nftables) });
      if (line === 'nft list ruleset') return ['inet', 'bridge', 'arp'].map((f) => listing(kernel.loaded, f).text ?? '').join('');
      const table = /^nft (-j )?list table (inet|bridge|arp) guestwall$/.exec(line);
      if (table) return kernel.loaded ? (table[1] ? listing(kernel.loaded, table[2]).json : listing(kernel.loaded, table[2]).text!) : { code: 1, stderr: 'Error: No such file or directory' };
      if (line.startsWith('nft -c -j -f ')) return '';
      if (line.startsWith('nft -j -f ')) {
        if (opts.refuse) return { code: 1, stderr: opts.refuse };
        kernel.before.push(kernel.loaded);
        kernel.loaded = JSON.parse(files.get(args[2]!)!) as Doc;
        return '';
      }
      if (line === `nft -f ${state.previous}`) {
        kernel.loaded = kernel.before.pop();
        return '';
      }
      if (cmd === 'ip') return '';
      return undefined;
    },
  });
  // The rollback timer says it runs as soon as it is started, as the real one does.
  const spawn = live.sys.spawnDetached.bind(live.sys);
  live.sys.spawnDetached = (cmd, args) => {
    const pid = spawn(cmd, args);
    const p = JSON.parse(live.files.get(state.pending)!) as Record<string, unknown>;
    live.files.set(state.pending, JSON.stringify({ ...p, timerPid: pid, armed: true }));
    return pid;
  };
  const enter = (): System => {
    let loaded: Doc | undefined;
    return fakeSystem({
      answer(cmd, args, files) {
        const line = [cmd, ...args].join(' ');
        if (line.startsWith('nft -j -f ')) {
          loaded = JSON.parse(files.get(args[2]!)!) as Doc;
          return '';
        }
        const table = /^nft (-j )?list table (inet|bridge|arp) guestwall$/.exec(line);
        if (table) return table[1] ? listing(loaded, table[2]).json : listing(loaded, table[2]).text!;
        return undefined;
      },
    }).sys;
  };
  const door = previewHost({ live: live.sys, host: fakeSystem({ answer: () => '' }).sys, state, confirmSeconds: 30, timerCommand: ['node', 'rollback-timer.js'], enter });
  return { door, live, kernel };
}

describe('Diff: what apply would change', () => {
  it('says why it is unavailable without root, and touches nothing', async () => {
    const h = fakeHost({ root: false });
    const p = preview(undefined, { host: h.door });
    await p.press('d');
    expect(p.flat()).toContain('Live diff and apply are unavailable: not running as root: reading the live ruleset of this host and applying to it need root');
    await p.press('a', 'y');
    expect(h.live.calls).toEqual([]);
  });

  it('shows "computing…" until the diff is there, then the changes rule by rule', async () => {
    const h = fakeHost();
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const slow: HostDoor = { ...h.door, diff: async (rs) => (await gate, h.door.diff(rs)) };
    const p = preview(undefined, { host: slow });
    await p.press('6');
    await p.waitFor('computing what apply would change on this host…');
    await p.press();
    expect(p.flat()).toContain('computing what apply would change on this host…');
    release();
    await p.waitFor('apply would change on this host:');
    expect(p.flat()).toMatch(/apply would change on this host: \d+ to add, 0 to remove in table inet guestwall, chain input, chain forward and \d+ more/);
    expect(p.frame()).toContain('table inet guestwall:\n  + not loaded yet: everything below is new');
    expect(p.frame()).toContain('chain input:\n  + new chain');
  });

  it('applies behind a confirmation that states the change, then keeps it with c', async () => {
    const h = fakeHost();
    const p = preview(undefined, { host: h.door });
    await p.press('d');
    await p.waitFor(/^apply would change/m);
    await p.press('a');
    const f = p.flat();
    expect(f).toMatch(/Apply policies\/homelab-dmz\.yaml to this host\? It changes \d+ to add, 0 to remove in table inet guestwall, chain input/);
    expect(f).toContain('It rolls back by itself after 30 s unless you confirm with c');
    expect(f).toContain('y apply, n or Esc cancel');
    expect(h.kernel.loaded).toBeUndefined();
    await p.press('y');
    await p.waitFor('c keeps it, x rolls back; rolls back by itself in 30 s');
    expect(h.kernel.loaded?.nftables.length).toBeGreaterThan(10);
    // One transaction, no check pass before it.
    expect(h.live.calls.filter((c) => c.startsWith('nft -j -f')).length).toBe(1);
    expect(h.live.calls.filter((c) => c.startsWith('nft -c')).length).toBe(0);
    expect([...h.live.processes.values()].filter((x) => x.alive).map((x) => x.cmdline)).toEqual([`node rollback-timer.js --state-dir /state --token ${JSON.parse(h.live.files.get(state.pending)!).token}`]);
    // Elsewhere the help bar says an apply waits for confirmation.
    await p.press('o');
    expect(p.frame().split('\n').at(-1)).toContain('applied: 6 then c keeps it, x rolls back; rolls back by itself in');
    await p.press('6', 'c');
    await p.waitFor('confirmed: the new ruleset stays');
    await p.waitFor('this host already runs this policy: apply would change nothing');
    expect(h.live.files.has(state.pending)).toBe(false);
    expect([...h.live.processes.values()].some((x) => x.alive)).toBe(false);
  });

  it('never shows the diff from before an apply: right after y, on u while it waits, and on coming back to the view', async () => {
    const h = fakeHost();
    const p = preview(undefined, { host: h.door });
    await p.press('d');
    await p.waitFor(/^apply would change/m);
    await p.press('a', 'y');
    await p.waitFor('c keeps it, x rolls back');
    // The host runs this policy now: the old "would change" under the notice would be a lie.
    await p.waitFor('this host already runs this policy: apply would change nothing');
    expect(p.frame()).not.toMatch(/apply would change on this host: \d+ to add/);
    const applied = h.kernel.loaded;
    // Something else changes the host (another terminal's apply): u works it out again, the notice stays.
    h.kernel.loaded = undefined;
    await p.press('u');
    await p.waitFor(/apply would change on this host: \d+ to add/);
    expect(p.frame()).toContain('c keeps it, x rolls back');
    // And leaving the view and coming back reads the host again.
    await p.press('x');
    await p.waitFor("rolled back: guestwall's tables are as they were before the apply");
    await p.waitFor(/apply would change on this host: \d+ to add/);
    await p.press('o');
    h.kernel.loaded = applied;
    await p.press('d');
    await p.waitFor('this host already runs this policy: apply would change nothing');
  });

  it('rolls back with x, and the diff shows the changes again', async () => {
    const h = fakeHost();
    const p = preview(undefined, { host: h.door });
    await p.press('d');
    await p.waitFor(/^apply would change/m);
    await p.press('a', 'y');
    await p.waitFor('c keeps it, x rolls back');
    await p.press('x');
    await p.waitFor("rolled back: guestwall's tables are as they were before the apply");
    expect(h.kernel.loaded).toBeUndefined();
    await p.waitFor(/apply would change on this host: \d+ to add/);
  });

  it('cancels with n or Esc, changing nothing', async () => {
    for (const key of ['n', KEYS.escape]) {
      const h = fakeHost();
      const p = preview(undefined, { host: h.door });
      await p.press('d');
      await p.waitFor(/^apply would change/m);
      await p.press('a', key);
      expect(p.frame()).not.toContain('y apply, n or Esc cancel');
      expect(h.live.calls.some((c) => c.startsWith('nft -j -f') || c.startsWith('nft -c'))).toBe(false);
    }
  });

  it('shows an apply the kernel refuses as an error, without crashing, and stays usable', async () => {
    const h = fakeHost({ refuse: 'Error: Could not process rule: Operation not supported' });
    const p = preview(undefined, { host: h.door });
    await p.press('d');
    await p.waitFor(/^apply would change/m);
    await p.press('a', 'y');
    await p.waitFor('apply failed: the kernel refuses the ruleset: Error: Could not process rule: Operation not supported; nothing was changed (the running kernel lacks a feature');
    expect(h.kernel.loaded).toBeUndefined();
    await p.press('r');
    expect(p.frame()).toContain('[3 Rules]');
  });

  it('refuses to apply the last good version while the file as saved has errors', async () => {
    const h = fakeHost();
    const broken = nextState(homelab(), HOMELAB, { text: homelabText.replace('zone: lan', 'zone: lann') });
    const p = preview(broken, { host: h.door });
    await p.press('d');
    await p.waitFor(/^apply would change/m);
    await p.press('a');
    expect(p.flat()).toContain('apply failed: the file as saved now does not compile');
    expect(p.flat()).not.toContain('y apply, n or Esc cancel');
    expect(h.live.calls.some((c) => c.startsWith('nft -j -f') || c.startsWith('nft -c'))).toBe(false);
  });

  it('fits 80x24 with the confirmation open', async () => {
    const h = fakeHost();
    const p = preview(undefined, { host: h.door });
    resize(p.stdout, 80, 24);
    await p.press('d');
    await p.waitFor(/^apply would change/m);
    await p.press('a');
    const lines = p.frame().split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(p.frame()).toContain('y apply, n or Esc cancel');
    expect(lines.at(-1)).toBe('q quit  1-6 views  y apply  n Esc cancel');
  });
});
