import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from 'ink-testing-library';
import { KEYS, preview } from './helpers.js';

afterEach(cleanup);

describe('the help bar and the view keys', () => {
  it('shows the header and the help bar in every view', async () => {
    const p = preview();
    for (const key of ['1', '2', '3', '4', '5']) {
      await p.press(key);
      const lines = p.frame().split('\n');
      expect(lines[0]).toMatch(/^guestwall preview .*What-if.* policies\/homelab-dmz\.yaml$/);
      expect(lines.at(-1)).toMatch(/^1-5\/o m r p w views .* q quit$/);
    }
  });

  it('switches views with 1-5 and with o m r p w', async () => {
    const p = preview();
    expect(p.frame()).toContain('[1 Overview]');
    const expected: [string, string][] = [['m', '[2 Matrix]'], ['r', '[3 Rules]'], ['p', '[4 Problems]'], ['w', '[5 What-if]'], ['o', '[1 Overview]'], ['3', '[3 Rules]'], ['2', '[2 Matrix]'], ['4', '[4 Problems]'], ['5', '[5 What-if]'], ['1', '[1 Overview]']];
    for (const [key, tab] of expected) {
      await p.press(key);
      expect(p.frame().split('\n')[0]).toContain(tab);
    }
  });

  it('takes keys typed in one burst one after another', async () => {
    const p = preview();
    await p.press('r/dmz_to_lan\r');
    expect(p.frame()).toContain('[3 Rules]');
    expect(p.frame()).toContain('search "dmz_to_lan"');
  });

  it('quits with q and with Ctrl-C', async () => {
    for (const key of ['q', KEYS.ctrlC]) {
      const p = preview();
      await p.press(key);
      expect(p.stdin.listenerCount('readable')).toBe(0); // Ink let go of the terminal
    }
  });
});

describe('Overview', () => {
  it('shows zones, host interfaces, bridges and guests as a tree with platform, mode, interface and addresses', () => {
    const f = preview().frame();
    expect(f).toContain('zone net  public');
    expect(f).toContain('└ eth0  host interface  203.0.113.10/24 2001:db8:1::10/64');
    expect(f).toContain('└ br-lan  bridge  ports eth1  192.168.1.1/24 fd00:1::1/64');
    expect(f).toContain('    └ desktop  kvm  bridged  gw-desktop  192.168.1.20 fd00:1::20');
    expect(f).toContain('  └ mail  xen pv  routed  gw-mail  203.0.113.20 2001:db8:10::20');
  });
});

describe('Rules', () => {
  it('shows the ruleset in nft syntax, each rule with the YAML file:line that wrote it', async () => {
    const p = preview();
    await p.press('r');
    expect(p.frame()).toContain('table inet guestwall');
    expect(p.frame()).toMatch(/chain input {2}# filter hook input priority 0 policy drop/);
    expect(p.frame()).toMatch(/ct state established,related accept +builtin:ct-established/);
  });

  it('scrolls with the arrows and PageDown', async () => {
    const p = preview();
    await p.press('r');
    expect(p.frame()).toMatch(/lines 1-26 of 139/);
    await p.press(KEYS.down, 'j');
    expect(p.frame()).toMatch(/lines 3-28 of 139/);
    await p.press(KEYS.pageDown);
    expect(p.frame()).toMatch(/lines 29-54 of 139/);
    await p.press('G');
    expect(p.frame()).toMatch(/lines 114-139 of 139/);
  });

  it("searches with '/', jumps to the match as you type, and keeps it with Enter", async () => {
    const p = preview();
    await p.press('r', '/', 'd', 'm', 'z', '_', 't', 'o', '_', 'l');
    expect(p.frame()).toContain('/dmz_to_l_  (1 matching; Enter keeps, Esc cancels)');
    const body = p.frame().split('\n');
    expect(body[1]).toMatch(/^\* {3}chain dmz_to_lan/);
    await p.press(KEYS.enter);
    expect(p.frame()).toContain('search "dmz_to_l": 1 matching (n/N)');
    expect(p.frame()).toMatch(/homelab-dmz\.yaml:69/);
  });

  it('finds rules by their YAML line, and n moves to the next match', async () => {
    const p = preview();
    await p.press('r', '/', ...'yaml:90', KEYS.enter);
    const first = p.frame().split('\n')[1];
    await p.press('n');
    expect(p.frame().split('\n')[1]).not.toEqual(first);
    expect(p.frame().split('\n')[1]).toMatch(/^\* .*homelab-dmz\.yaml:90$/);
  });

  it('gives every key to the search while typing (q does not quit) and Esc goes back', async () => {
    const p = preview();
    await p.press('r', '/', 'q', 'm');
    expect(p.frame()).toContain('/qm_');
    expect(p.frame()).toContain('[3 Rules]');
    await p.press(KEYS.escape);
    expect(p.frame()).toMatch(/lines 1-26 of 139$/m);
  });
});

describe('Matrix', () => {
  it('shows sources x destinations with the default verdict and the number of exceptions', async () => {
    const p = preview();
    await p.press('m');
    expect(p.frame()).toMatch(/from\\to +net +lan +dmz +host +asterisk/);
    expect(p.frame()).toMatch(/^net +>drop +drop +drop +drop \+1 +drop \+1/m);
    expect(p.frame()).toMatch(/^lan +accept +accept/m);
  });

  it('lists the rules that decide the selected cell', async () => {
    const p = preview();
    await p.press('m', KEYS.down, 'l', 'l', 'j');
    expect(p.frame()).toContain('dmz -> dmz: reject by default');
    await p.press(KEYS.up, KEYS.left);
    expect(p.frame()).toContain('lan -> lan: accept by default');
    expect(p.frame()).toMatch(/1 rule in the chain that decides it:\n +counter accept +homelab-dmz\.yaml:65/);
    await p.press('k', 'l', 'l', 'l');
    expect(p.frame()).toContain('net -> asterisk: drop by default; +sip,rtp(fwd)');
    expect(p.frame()).toMatch(/homelab-dmz\.yaml:90/);
  });
});

describe('Problems', () => {
  it('lists every diagnostic with its location, and the selected one with its fix hint', async () => {
    const p = preview();
    await p.press('p');
    expect(p.frame()).toContain('0 errors, 1 warning');
    expect(p.frame()).toContain('> policies/homelab-dmz.yaml:30:3 warning: guests');
    expect(p.frame()).toContain('hint: put guests that must be isolated');
  });
});

describe('What-if', () => {
  it('shows the verdict and the trace of explain for the chosen packet', async () => {
    const p = preview();
    await p.press('w');
    expect(p.frame()).toMatch(/> from +net\n +to +asterisk\n +proto +tcp\n +port +22/);
    expect(p.frame()).toContain('verdict: DROP');
    expect(p.frame()).toContain('net_to_dmz: counter drop  [policy 4: net -> dmz drop (homelab-dmz.yaml:68)]');
    await p.press(KEYS.right);
    expect(p.frame()).toMatch(/> from +lan/);
    expect(p.frame()).toContain('verdict: ACCEPT');
  });

  it('edits the destination, the protocol and the port from the keyboard', async () => {
    const p = preview();
    await p.press('w', KEYS.tab, KEYS.right, KEYS.right, KEYS.right, KEYS.right);
    expect(p.frame()).toMatch(/> to +mail/);
    await p.press(KEYS.down, KEYS.down, KEYS.backspace, KEYS.backspace, '2', '5');
    expect(p.frame()).toMatch(/> port +25/);
    expect(p.frame()).toContain('verdict: ACCEPT by rule 3: Mail for the routed Xen guest (homelab-dmz.yaml:83)');
    await p.press(KEYS.up, KEYS.right, KEYS.right);
    expect(p.frame()).toMatch(/> proto +icmp\n +port +\(none for icmp\)/);
    await p.press(KEYS.down, KEYS.backspace, KEYS.backspace);
    await p.press(KEYS.up, KEYS.left, KEYS.left, KEYS.down);
    expect(p.frame()).toContain('type a port from 1 to 65535');
  });
});
