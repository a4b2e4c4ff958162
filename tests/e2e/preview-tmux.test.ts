// guestwall preview on a real terminal: the built binary in a tmux session (80x24, the smallest
// terminal it is made for), driven through every view of the homelab example with send-keys,
// reading the screen with capture-pane.
// Needs `npm run build` first (npm test does it). The session is killed by name even on failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ruleLines } from '../../src/tui/derive.js';
import { nextState } from '../../src/tui/state.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const built = existsSync('dist/src/cli/main.js');
const skipReason = !hasTmux ? 'tmux is not installed' : !built ? 'run npm run build first' : undefined;
const session = `gw-preview-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'gw-preview-'));
const policy = join(dir, 'homelab.yaml');
/** The Rules view's line count for the homelab example, from the compiled ruleset (never written down). */
const TOTAL = ruleLines(nextState(undefined, 'policies/homelab-dmz.yaml', { text: readFileSync('policies/homelab-dmz.yaml', 'utf8') }).good!.ruleset).length;

const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', session);
const keys = (...k: string[]) => tmux('send-keys', '-t', session, ...k);
/** Keys one at a time: escape sequences sent in one burst can reach Ink as one chunk. */
async function slowly(...k: string[]) {
  for (const key of k) {
    keys(key);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function waitFor(text: string | RegExp, ms = 10_000): Promise<string> {
  const until = Date.now() + ms;
  let last = '';
  while (Date.now() < until) {
    last = screen();
    if (typeof text === 'string' ? last.includes(text) : text.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the screen never showed ${String(text)}; it shows:\n${last}`);
}

let namespace: string | undefined;
afterAll(() => {
  if (hasTmux) spawnSync('tmux', ['kill-session', '-t', session]);
  if (namespace) spawnSync('ip', ['netns', 'del', namespace]);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skipReason !== undefined)(`guestwall preview in tmux${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('goes through every view of the homelab example, reloads on save, and quits cleanly with q', async () => {
    writeFileSync(policy, readFileSync('policies/homelab-dmz.yaml', 'utf8'));
    const bin = resolve('bin/guestwall.js');
    // The live diff reads a namespace of its own (as root) or says why it cannot (not root).
    const root = process.getuid?.() === 0;
    const ns = `gw-tmux-${process.pid}`;
    if (root) execFileSync('ip', ['netns', 'add', ns]);
    namespace = root ? ns : undefined;
    const target = root ? ` --netns ${ns} --state-dir ${join(dir, 'state')}` : '';
    tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '24', `node ${bin} preview ${policy} --kernel-features baseline${target}; echo "preview exited $?"; sleep 30`);

    let s = await waitFor('[1 Overview]');
    expect(s).toContain('└ mail  xen pv  routed  gw-mail  203.0.113.20');
    expect(s).toMatch(/^q quit {2}1-6 views {2}↑↓ PgUp PgDn scroll/m);
    expect(s).toMatch(/ 6 Diff /); // the whole tab bar, not "6 Diff…"
    // Lines too long for 80 columns go on under the guest's name: its MAC is there whole.
    expect(s).toMatch(/└ mail {2}xen pv {2}routed {2}gw-mail {2}203\.0\.113\.20 2001:db8:10::20\n {6}00:16:3e:00:00:14/);
    expect(Math.max(...s.split('\n').map((l) => l.length))).toBeLessThanOrEqual(80);

    keys('m');
    s = await waitFor('[2 Matrix]');
    keys('Down', 'Right');
    s = await waitFor('lan -> lan: accept by default');
    // The mail column has the longest rule list: the header stays, naming it.
    await slowly('Up', ...Array<string>(10).fill('Right'));
    s = await waitFor('net -> mail: drop by default');
    expect(s.split('\n')[1]).toMatch(/^from\\to .*\[mail\]/);
    expect(s).toContain('+N: N services that fare otherwise');
    expect(s).toMatch(/… \d+ more \(see Rules\)/);
    expect(s).toMatch(/^q quit {2}1-6 views/m);

    keys('r');
    s = await waitFor('[3 Rules]');
    expect(s).toMatch(/ct state vmap @ct_state +builtin:ct-state/);
    keys('/', 'dmz_to_lan', 'Enter');
    s = await waitFor('search "dmz_to_lan": 1 matching');
    expect(s.split('\n')[1]).toMatch(/^\* {3}chain dmz_to_lan/);
    keys('f', 'mail', 'Enter');
    s = await waitFor(`(guest mail; ${TOTAL} without the filter, F clears)`);
    expect(s).toMatch(/^ {6}ip daddr 203\.0\.113\.20 tcp dport \{ 25, 465, 587, 993 \} cou… homelab\.yaml:83$/m);
    keys('F');
    await waitFor(new RegExp(`lines \\d+-\\d+ of ${TOTAL} `));

    keys('p');
    s = await waitFor('[4 Problems]');
    expect(s).toContain('warning: policy 5 (dmz -> dmz) rejec');
    keys('Enter');
    s = await waitFor('problem 1 of 1');
    expect(s).toMatch(/^hint: use action: drop/m);
    keys('Enter');
    await waitFor('Enter shows the selected one in full');

    keys('w');
    s = await waitFor('[5 What-if]');
    expect(s).toContain('verdict: DROP');
    keys('Right');
    await waitFor('verdict: ACCEPT');
    // To a port forward's public side: the answer names the forward.
    await slowly('Left', 'Tab', 'Tab', 'Right', 'Up', ...Array<string>(6).fill('Right'));
    s = await waitFor('port forward taken: forward');
    expect(s).toContain('> to     203.0.113.10:5060 (forward sip,rtp -> asterisk)');
    expect(s).toContain('verdict: ACCEPT');

    keys('d');
    if (root) {
      s = await waitFor(`apply would change on network namespace ${ns}:`);
      expect(s).toContain('+ not loaded yet: everything below is new');
      keys('a');
      await waitFor(`Apply ${policy.slice(0, 20)}`);
      keys('y');
      await waitFor('c keeps it, x rolls back');
      keys('c');
      await waitFor('confirmed: the new ruleset stays');
      await waitFor(`network namespace ${ns} already runs this policy`);
    } else {
      s = await waitFor('Live diff and apply are unavailable: not running as root');
    }

    // Saving a broken file keeps the view and shows the error; fixing it clears the banner.
    keys('r');
    await waitFor('[3 Rules]');
    writeFileSync(policy, readFileSync('policies/homelab-dmz.yaml', 'utf8').replace('zone: lan', 'zone: lann'));
    s = await waitFor('has 1 error (see 4 Problems); showing the l');
    expect(s).toContain('[3 Rules]');
    writeFileSync(policy, readFileSync('policies/homelab-dmz.yaml', 'utf8'));
    await waitFor(/^(?![\s\S]*showing the last good version)[\s\S]*\[3 Rules\]/);

    keys('q');
    await waitFor('preview exited 0');
  });
});
