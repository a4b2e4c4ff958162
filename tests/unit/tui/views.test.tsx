import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from 'ink-testing-library';
import { ruleLines } from '../../../src/tui/derive.js';
import { KEYS, homelab, preview, resize } from './helpers.js';

/** The homelab example's rule lines, from the compiled ruleset (never a number written down). */
const TOTAL = ruleLines(homelab().good!.ruleset).length;

afterEach(cleanup);

describe('the help bar and the view keys', () => {
  it('shows the header and the help bar in every view', async () => {
    const p = preview();
    resize(p.stdout, 120, 30);
    for (const key of ['1', '2', '3', '4', '5', '6']) {
      await p.press(key);
      const lines = p.frame().split('\n');
      expect(lines[0]).toMatch(/^guestwall preview .*What-if.*6 Diff.* policies\/homelab-dmz\.yaml$/);
      expect(lines.at(-1)).toMatch(/^q quit {2}1-6 views {2}\S/);
    }
  });

  it('fits 80x24 in every view: all six views in the header, the help bar last, no line wider than 80', async () => {
    const p = preview();
    resize(p.stdout, 80, 24);
    for (const key of ['1', '2', '3', '4', '5', '6']) {
      await p.press(key);
      const lines = p.frame().split('\n');
      expect(lines.length).toBeLessThanOrEqual(23);
      expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
      expect(lines[0]).toMatch(/[ [](1 Overview|1 Overview]).*[ [](6 Diff |6 Diff])/); // whole, not "6 Diff…"
      expect(lines.at(-1)).toMatch(/^q quit {2}1-6 views/);
    }
  });

  it('lists the keys of the view in the help bar', async () => {
    const p = preview();
    await p.press('r');
    expect(p.frame().split('\n').at(-1)).toBe('q quit  1-6 views  ↑↓ PgUp PgDn  / search  n N  f filter');
    await p.press('f');
    expect(p.frame().split('\n').at(-1)).toBe('q quit  1-6 views  type to narrow  ↑↓ choose  Enter filter  Esc cancel');
    await p.press('d', 'm', 'z', KEYS.enter);
    expect(p.frame().split('\n').at(-1)).toBe('q quit  1-6 views  ↑↓ PgUp PgDn  / search  n N  f filter  F clear');
    await p.press('d');
    expect(p.frame().split('\n').at(-1)).toBe('q quit  1-6 views  ↑↓ scroll  a apply  u update');
  });

  it('switches views with 1-6 and with o m r p w d', async () => {
    const p = preview();
    expect(p.frame()).toContain('[1 Overview]');
    const expected: [string, string][] = [['m', '[2 Matrix]'], ['r', '[3 Rules]'], ['p', '[4 Problems]'], ['w', '[5 What-if]'], ['d', '[6 Diff]'], ['o', '[1 Overview]'], ['3', '[3 Rules]'], ['2', '[2 Matrix]'], ['4', '[4 Problems]'], ['5', '[5 What-if]'], ['6', '[6 Diff]'], ['1', '[1 Overview]']];
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

describe('Overview at 80 columns', () => {
  it('goes on under a guest whose line is too long instead of cutting its MAC', async () => {
    const p = preview();
    resize(p.stdout, 80, 24);
    await p.press('1');
    const f = p.frame();
    expect(f).toMatch(/└ asterisk {2}lxc {2}bridged {2}gw-asterisk {2}10\.0\.10\.10 fd00:10::10\n {8}02:00:0a:00:0a:0a$/m);
    expect(f).toContain('00:16:3e:00:00:14');
    expect(f.split('\n').slice(1).join('\n')).not.toContain('…');
  });
});

describe('Rules', () => {
  it('shows the ruleset in nft syntax, each rule with the YAML file:line that wrote it', async () => {
    const p = preview();
    await p.press('r');
    expect(p.frame()).toContain('table inet guestwall');
    expect(p.frame()).toMatch(/chain input {2}# filter hook input priority 0 policy drop/);
    expect(p.frame()).toMatch(/ct state vmap @ct_state +builtin:ct-state/);
  });

  it('scrolls with the arrows and PageDown', async () => {
    const p = preview();
    await p.press('r');
    expect(p.frame()).toMatch(new RegExp(`lines 1-26 of ${TOTAL}`));
    await p.press(KEYS.down, 'j');
    expect(p.frame()).toMatch(new RegExp(`lines 3-28 of ${TOTAL}`));
    await p.press(KEYS.pageDown);
    expect(p.frame()).toMatch(new RegExp(`lines 29-54 of ${TOTAL}`));
    await p.press('G');
    expect(p.frame()).toContain(`lines ${TOTAL - 25}-${TOTAL} of ${TOTAL}`);
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

  it('finds the rules a service produced by its name (/smtp), though the rules show port numbers', async () => {
    const good = homelab().good!;
    const expected = ruleLines(good.ruleset, good.model).filter((l) => l.services?.includes('smtp')).length;
    expect(expected).toBeGreaterThan(0);
    expect(ruleLines(good.ruleset).filter((l) => l.text.includes('smtp')).length).toBe(0);
    const p = preview();
    await p.press('r', '/', 's', 'm', 't', 'p', KEYS.enter);
    expect(p.frame()).toContain(`search "smtp": ${expected} matching (n/N)`);
    expect(p.frame().split('\n')[1]).toMatch(/^\* .*dport \{ 25, 465, 587, 993 \}.*homelab-dmz\.yaml:83$/);
  });

  it('gives every key to the search while typing (q does not quit) and Esc goes back', async () => {
    const p = preview();
    await p.press('r', '/', 'q', 'm');
    expect(p.frame()).toContain('/qm_');
    expect(p.frame()).toContain('[3 Rules]');
    await p.press(KEYS.escape);
    expect(p.frame()).toMatch(new RegExp(`lines 1-26 of ${TOTAL}$`, 'm'));
  });
});

describe('Rules filtered by zone or guest', () => {
  it('f opens a picker of zones and guests that narrows as you type; Enter shows only that zone\'s rules', async () => {
    const p = preview();
    resize(p.stdout, 120, 90);
    await p.press('r', 'f');
    expect(p.frame()).toContain('show only the rules of: _  (10 matching zones and guests)');
    expect(p.frame()).toMatch(/> zone net\n +zone lan\n +zone dmz\n +zone host\n +guest asterisk/);
    await p.press('d', 'm');
    expect(p.frame()).toContain('show only the rules of: dm_  (1 matching zones and guests)');
    await p.press(KEYS.enter);
    const f = p.frame();
    expect(f).toContain(`(zone dmz; ${TOTAL} without the filter, F clears)`);
    const chains = [...f.matchAll(/^ {4}chain (\S+)/gm)].map((m) => m[1]);
    expect(chains).toEqual(['from_dmz', 'net_to_dmz', 'lan_to_dmz', 'dmz_to_net', 'dmz_to_lan', 'dmz_to_dmz', 'dmz_to_host', 'host_to_dmz', 'dstnat', 'srcnat_out_net', 'srcnat_hairpin']);
    // In the shared NAT chains only what the YAML says about dmz: the forwards to its guests and its masquerade.
    // Forwards are map elements: each listed under the rule that looks it up, with its YAML line.
    expect(f).toMatch(/@dnat_hairpin 203\.0\.113\.10 \. tcp \. 5060-5061 : 10\.0\.10\.10 +homelab-dmz\.yaml:90/);
    await p.press(KEYS.pageDown);
    expect(p.frame()).toMatch(/ip saddr 10\.0\.10\.0\/24 counter masquerade +homelab-dmz\.yaml:97/);
  });

  it('shows a guest\'s rules: those its YAML names it in, and those that match its interface', async () => {
    const p = preview();
    await p.press('r', 'f', ...'mail', KEYS.enter);
    const f = p.frame();
    expect(f).toContain(`lines 1-8 of 8 (guest mail; ${TOTAL} without the filter, F clears)`);
    // The neighbour-advert check names its interface among every port's (port, target) pairs.
    expect(f).toMatch(/^ {6}icmpv6 type nd-neighbor-advert iifname @v6_ports iifname \. @th,64,128 != .* homelab-dmz\.yaml:\d+$/m);
    expect(f).toMatch(/^ {6}ip daddr 203\.0\.113\.20 tcp dport \{ 25, 465, 587, 993 \} counter accept +homelab-dmz\.yaml:83$/m);
    expect(f).toMatch(/iifname \{ "br-dmz", "gw-mail" \} ip saddr 10\.0\.10\.0\/24 counter masquerade/);
    expect(f).not.toContain('10.0.10.10');
  });

  it('searches within the filter, F clears it, and Esc closes the picker without filtering', async () => {
    const p = preview();
    await p.press('r', 'f', ...'lan', KEYS.enter, '/', ...'accept', KEYS.enter);
    expect(p.frame()).toMatch(new RegExp(`of \\d+ \\(zone lan; ${TOTAL} without the filter, F clears\\) {2}search "accept": \\d+ matching`));
    await p.press('F');
    expect(p.frame()).toMatch(new RegExp(`lines 1-26 of ${TOTAL} {2}search "accept"`));
    await p.press('f', 'd', KEYS.escape);
    expect(p.frame()).toMatch(new RegExp(`lines 1-26 of ${TOTAL}`));
    await p.press('f', ...'zzz');
    expect(p.frame()).toContain('no zone or guest has that name');
    await p.press(KEYS.enter);
    expect(p.frame()).toMatch(new RegExp(`lines 1-26 of ${TOTAL}`));
  });
});

describe('Matrix', () => {
  it('shows sources x destinations with the default verdict and the number of exceptions', async () => {
    const p = preview();
    await p.press('m');
    await p.waitFor('from\\to');
    expect(p.frame()).toMatch(/from\\to +\[net\] +lan +dmz +host +asterisk/);
    expect(p.frame()).toMatch(/^net +>drop +drop +drop +drop \+6 +drop \+2/m); // host: ping and every forward; asterisk: sip and rtp
    expect(p.frame()).toMatch(/^lan +accept +accept/m);
  });

  it('lists the rules that decide the selected cell', async () => {
    const p = preview();
    await p.press('m');
    await p.waitFor('from\\to');
    await p.press(KEYS.down, 'l', 'l', 'j');
    expect(p.frame()).toContain('dmz -> dmz: reject by default');
    await p.press(KEYS.up, KEYS.left);
    expect(p.frame()).toContain('lan -> lan: accept by default');
    expect(p.frame()).toMatch(/1 rule in the chain that decides it:\n +counter accept +homelab-dmz\.yaml:65/);
    await p.press('k', 'l', 'l', 'l');
    expect(p.frame()).toContain('net -> asterisk: drop by default; +sip(fwd) +rtp(fwd)');
    expect(p.frame()).toMatch(/homelab-dmz\.yaml:90/);
  });
});

describe('Matrix at 80x24', () => {
  it('keeps the header with the selected column named while the rule list gives way', async () => {
    const p = preview();
    resize(p.stdout, 80, 24);
    await p.press('m');
    await p.waitFor('from\\to');
    // The mail column: the last one, whose chain has the most rules.
    for (let i = 0; i < 12; i++) await p.press(KEYS.right);
    const lines = p.frame().split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(lines[1]).toMatch(/^from\\to .*\[mail\]/);
    expect(p.frame()).toMatch(/^net -> mail: drop by default; \+smtp/m);
    // What the counts and signs mean is said on screen.
    expect(p.flat()).toContain('+N: N services that fare otherwise (+ accepted, - dropped, ! rejected, ~ only in part; (fwd) through a port forward)');
    expect(p.frame()).toMatch(/rules? in the chain that decides it:/);
    expect(p.frame()).toMatch(/… \d+ more \(see Rules\)\n/);
  });
});

describe('Problems', () => {
  it('lists every diagnostic with its location, and the selected one with its fix hint', async () => {
    const p = preview();
    await p.press('p');
    expect(p.frame()).toContain('0 errors, 1 warning');
    expect(p.frame()).toContain('> policies/homelab-dmz.yaml:69:5 warning: policy 5 (dmz -> dmz) rejects');
    expect(p.frame()).toContain('hint: use action: drop to say what happens');
  });
});

describe('Problems in full', () => {
  it('opens the selected problem with Enter: its whole message, hint and place wrapped at 80 columns; Enter goes back', async () => {
    const d = homelab().diagnostics[0]!;
    const p = preview();
    resize(p.stdout, 80, 24);
    await p.press('p');
    // The list cuts the message at 80 columns...
    expect(p.flat()).not.toContain(d.message);
    await p.press(KEYS.enter);
    // ...opened, every word of it is there, and of the hint.
    const lines = p.frame().split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(p.flat()).toContain(`${d.file}:${d.line}:${d.col} ${d.severity} ${d.code} ${d.kind}`);
    expect(p.flat()).toContain(d.message);
    expect(p.flat()).toContain(`hint: ${d.hint!}`);
    expect(p.frame()).toContain('problem 1 of 1');
    expect(lines.at(-1)).toBe('q quit  1-6 views  ↑↓ next, previous  Enter Esc back to the list');
    await p.press(KEYS.enter);
    expect(p.frame()).toContain('> policies/homelab-dmz.yaml:69:5 warning');
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

  it("offers each port forward's public ADDRESS:PORT as a destination and names the forward the packet took", async () => {
    const p = preview();
    resize(p.stdout, 80, 24);
    // net -> asterisk udp 5060: the guest is published to net by a forward, so explain follows it.
    await p.press('w', KEYS.tab, KEYS.tab, KEYS.right, KEYS.tab, '5', '0', '6', '0');
    expect(p.frame()).toMatch(/> port +5060/);
    expect(p.frame()).toContain('verdict: ACCEPT');
    expect(p.frame()).toMatch(/port forward taken: forward 1: net -> asterisk \(homelab-dmz\.yaml:90\)/);
    // To the forward's public side: accepted, through forward 0.
    await p.press(KEYS.up, KEYS.up);
    for (let i = 0; i < 6; i++) await p.press(KEYS.right);
    expect(p.frame()).toMatch(/> to +203\.0\.113\.10:5060 \(forward sip,rtp -> asterisk\)/);
    expect(p.frame()).toContain("port   (5060, the forward's public port)");
    expect(p.frame()).toContain('verdict: ACCEPT');
    expect(p.frame()).toMatch(/port forward taken: .*\(homelab-dmz\.yaml:90\)/);
    const lines = p.frame().split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    // The trace wraps instead of being cut.
    expect(p.frame().split('\n').slice(1).join('\n')).not.toContain('…');
  });

  it('replaces the port with the first digit typed after coming to the field', async () => {
    const p = preview();
    await p.press('w', KEYS.up, KEYS.up, '2', '5');
    expect(p.frame()).toMatch(/> port +25\n/);
    await p.press('0');
    expect(p.frame()).toMatch(/> port +250\n/);
    await p.press(KEYS.down, KEYS.up, '8', '0');
    expect(p.frame()).toMatch(/> port +80\n/);
  });

  it('asks about a reply, a later packet or an ICMP error of the connection, with the conntrack facts', async () => {
    const p = preview();
    // net -> asterisk tcp/22 is dropped; a reply of it has no conntrack entry.
    await p.press('w', KEYS.up, KEYS.right, KEYS.right);
    expect(p.frame()).toMatch(/> packet +reply\n/);
    expect(p.frame()).toContain('conntrack: no entry');
    // from host: accepted, so the reply is established.
    await p.press(KEYS.down, KEYS.right, KEYS.right, KEYS.right);
    expect(p.frame()).toMatch(/> from +host/);
    await p.press(KEYS.up);
    expect(p.frame()).toMatch(/ct state established: the connection was accepted earlier; this packet is its reply/);
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
