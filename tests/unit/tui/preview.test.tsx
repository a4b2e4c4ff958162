import chalk from 'chalk';
import { cleanup } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../../../src/cli/main.js';
import { App } from '../../../src/tui/app.js';
import { ruleLines } from '../../../src/tui/derive.js';
import { nextState } from '../../../src/tui/state.js';
import { memoryIo } from '../../support/io.js';
import { HOMELAB, homelab, homelabText, preview } from './helpers.js';

afterEach(cleanup);

describe('reload when the policy file changes', () => {
  it('keeps the view, shows the errors of a file broken mid-edit over the last good version, and recovers', async () => {
    const first = homelab();
    const p = preview(first);
    await p.press('r', 'j');
    const broken = nextState(first, HOMELAB, { text: homelabText.replace('zone: lan', 'zone: lann') });
    p.rerender(<App state={broken} color={false} />);
    await p.press();
    expect(p.frame()).toContain('[3 Rules]');
    expect(p.frame()).toContain('policies/homelab-dmz.yaml has 1 error (see 4 Problems); showing the last good version');
    expect(p.frame()).toMatch(/lines 2-/);
    await p.press('p');
    expect(p.frame()).toContain("error: unknown zone 'lann'; did you mean 'lan'?");
    const fixed = nextState(broken, HOMELAB, { text: homelabText.replace('mail:\n', 'post:\n').replaceAll('to: mail', 'to: post') });
    p.rerender(<App state={fixed} color={false} />);
    await p.press('o');
    expect(p.frame()).not.toContain('showing the last good version');
    expect(p.frame()).toContain('└ post  xen pv  routed');
  });

  it('says so when the file cannot be read (an editor replacing it)', async () => {
    const p = preview(nextState(homelab(), HOMELAB, { error: 'guestwall: cannot read policies/homelab-dmz.yaml: no such file' }));
    await p.press();
    expect(p.frame()).toContain('no such file; showing the last good version');
    expect(p.frame()).toContain('zone net');
  });

  it('starts on a broken policy and points at Problems', async () => {
    const p = preview(nextState(undefined, 'b.yaml', { text: 'version: 1\nzones: { net: {} }\nhost: { interfaces: { eth0: { zone: nett } } }\n' }));
    expect(p.frame()).toContain('b.yaml has not compiled yet; its problems are under 4 Problems.');
    await p.press('4');
    expect(p.frame()).toMatch(/> b\.yaml:3:\d+ error: unknown zone 'nett'/);
  });
});

describe('colour and terminal size', () => {
  it('paints verdicts in colour, and nothing with NO_COLOR', async () => {
    const level = chalk.level;
    chalk.level = 3;
    try {
      const coloured = preview(homelab(), { color: true, view: 'matrix' });
      await coloured.waitFor('from\\to');
      expect(coloured.frame()).toMatch(/\x1b\[3\dm/);
      const plain = preview(homelab(), { color: false, view: 'matrix' });
      await plain.waitFor('from\\to');
      expect(plain.frame()).not.toMatch(/\x1b\[/);
      expect(plain.frame()).toContain('>drop');
    } finally {
      chalk.level = level;
    }
  });

  it('lays the views out again when the terminal is resized', async () => {
    const p = preview(homelab(), { view: 'rules' });
    Object.defineProperty(p.stdout, 'columns', { value: 60, configurable: true });
    Object.defineProperty(p.stdout, 'rows', { value: 12, configurable: true });
    p.stdout.emit('resize');
    await p.press();
    const lines = p.frame().split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(60);
    expect(lines.length).toBeLessThanOrEqual(11);
    expect(p.frame()).toContain(`lines 1-8 of ${ruleLines(homelab().good!.ruleset).length}`);
  });
});

describe('guestwall preview without a terminal', () => {
  it('prints a plain summary: problems, overview and matrix, and exits 0', async () => {
    const m = memoryIo({ 'h.yaml': homelabText });
    expect(await run(['preview', 'h.yaml'], m.io)).toBe(0);
    const out = m.stdout();
    expect(out).toContain('guestwall preview h.yaml: 0 errors, 1 warning');
    expect(out).toContain('h.yaml:69:5: warning: policy 5 (dmz -> dmz) rejects');
    expect(out).toContain('    br-lan  bridge  ports eth1  192.168.1.1/24 fd00:1::1/64');
    expect(out).toMatch(/^net +\| drop +\| drop/m);
    const chains = homelab().good!.ruleset.tables.flatMap((t) => t.chains);
    expect(out).toContain(`Rules: ${chains.reduce((n, c) => n + c.rules.length, 0)} in ${chains.length} chains`);
    expect(out).not.toMatch(/\x1b\[/);
  });

  it('prints the diagnostics and exits 1 when the policy has errors, 2 when the file is missing', async () => {
    const m = memoryIo({ 'b.yaml': homelabText.replace('zone: lan', 'zone: lann') });
    expect(await run(['preview', 'b.yaml'], m.io)).toBe(1);
    expect(m.stdout()).toContain("error: unknown zone 'lann'");
    expect(m.stdout()).not.toContain('Matrix:');
    const missing = memoryIo();
    expect(await run(['preview', 'nope.yaml'], missing.io)).toBe(2);
    expect(missing.stderr()).toContain('cannot read nope.yaml: no such file');
  });
});
