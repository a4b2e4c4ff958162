// guestwall preview on a real terminal: the built binary in a tmux session (100x30), driven
// through every view of the homelab example with send-keys, reading the screen with capture-pane.
// Needs `npm run build` first (npm test does it). The session is killed by name even on failure.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const built = existsSync('dist/src/cli/main.js');
const skipReason = !hasTmux ? 'tmux is not installed' : !built ? 'run npm run build first' : undefined;
const session = `gw-preview-${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'gw-preview-'));
const policy = join(dir, 'homelab.yaml');

const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', session);
const keys = (...k: string[]) => tmux('send-keys', '-t', session, ...k);

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

afterAll(() => {
  if (hasTmux) spawnSync('tmux', ['kill-session', '-t', session]);
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skipReason !== undefined)(`guestwall preview in tmux${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('goes through every view of the homelab example, reloads on save, and quits cleanly with q', async () => {
    writeFileSync(policy, readFileSync('policies/homelab-dmz.yaml', 'utf8'));
    const bin = resolve('bin/guestwall.js');
    tmux('new-session', '-d', '-s', session, '-x', '100', '-y', '30', `node ${bin} preview ${policy}; echo "preview exited $?"; sleep 30`);

    let s = await waitFor('[1 Overview]');
    expect(s).toContain('└ mail  xen pv  routed  gw-mail  203.0.113.20');
    expect(s).toMatch(/1-5\/o m r p w views .* q quit/);

    keys('m');
    s = await waitFor('[2 Matrix]');
    keys('Down', 'Right');
    s = await waitFor('lan -> lan: accept by default');

    keys('r');
    s = await waitFor('[3 Rules]');
    expect(s).toMatch(/ct state established,related accept +builtin:ct-established/);
    keys('/', 'dmz_to_lan', 'Enter');
    s = await waitFor('search "dmz_to_lan": 1 matching');
    expect(s.split('\n')[1]).toMatch(/^\* {3}chain dmz_to_lan/);

    keys('p');
    s = await waitFor('[4 Problems]');
    expect(s).toContain('warning: policy 5 (dmz -> dmz) rejects');

    keys('w');
    s = await waitFor('[5 What-if]');
    expect(s).toContain('verdict: DROP');
    keys('Right');
    await waitFor('verdict: ACCEPT');

    // Saving a broken file keeps the view and shows the error; fixing it clears the banner.
    keys('r');
    await waitFor('[3 Rules]');
    writeFileSync(policy, readFileSync('policies/homelab-dmz.yaml', 'utf8').replace('zone: lan', 'zone: lann'));
    s = await waitFor('has 1 error (see 4 Problems); showing the last good version');
    expect(s).toContain('[3 Rules]');
    writeFileSync(policy, readFileSync('policies/homelab-dmz.yaml', 'utf8'));
    await waitFor(/^(?![\s\S]*showing the last good version)[\s\S]*\[3 Rules\]/);

    keys('q');
    await waitFor('preview exited 0');
  });
});
