// Faults on a namespace host, with real nft and ip: guestwall owns exactly what it created on
// the host network (a guest removed from the policy leaves no owned route or proxy entry, and
// someone else's stay), rollback and the --confirm timer bring back ruleset and network, and
// kill -9 of apply, rollback and confirm at spread-out moments, damaged state files, and a
// read-only or full state directory all end in a whole state (as before or as after, never
// between) with one clear message. A foreign table and foreign routes stay byte-identical.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../src/apply/state.js';
import { run } from '../../src/cli/main.js';
import { memoryIo } from '../support/io.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const skipReason = kernelTestUnavailable() ?? (existsSync('dist/src/apply/rollback-timer.js') ? undefined : 'needs npm run build (dist/)');
const BIN = resolve('bin/guestwall.js');
const homelab = readFileSync('policies/homelab-dmz.yaml', 'utf8');
/** The same host after the routed Xen guest `mail` left the policy (and the rule naming it). */
const withoutMail = homelab.replace(/\n {2}mail:\n(?: {4}.*\n)+/, '\n').replace(/ {2}- description: Mail for the routed Xen guest\n(?: {4}.*\n)+/, '');
const ns = namespaceName('gw-faults');
let dir = '';
let stateDir = '';
let A = '';
let B = '';

const FOREIGN = `table inet dockerish {
	chain forward {
		type filter hook forward priority 0; policy drop;
		iifname "docker0" oifname != "docker0" counter accept
	}
}
`;

const inNs = (cmd: string, ...args: string[]) => execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false });
async function ip(...args: string[]): Promise<string> {
  const r = await execa('ip', ['-n', ns, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`ip -n ${ns} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The CLI in this process (fast), with --netns and --state-dir. */
async function cli(...args: string[]) {
  const m = memoryIo({ [A]: homelab, [B]: withoutMail });
  const code = await run([...args, '--netns', ns, '--state-dir', stateDir], m.io);
  return { code, out: m.stdout(), err: m.stderr() };
}
/** The CLI as its own process, to be killed. */
const spawnCli = (...args: string[]) => execa('node', [BIN, ...args, '--netns', ns, '--state-dir', stateDir], { reject: false });

/** Everything that is not guestwall's: other tables, other routes, other proxy entries. */
async function foreign(): Promise<string> {
  const rules = (await inNs('nft', 'list', 'ruleset')).stdout.replace(/table (inet|bridge|arp) guestwall \{[\s\S]*?\n\}\n?/g, '').replace(/\n{2,}/g, '\n').trim();
  const routes = `${await ip('-4', '-d', 'route', 'show', 'table', 'all')}\n${await ip('-6', '-d', 'route', 'show', 'table', 'all')}`;
  const mine = /proto 158|proto kernel|proto guestwall|^local |^multicast |^broadcast |fe80::|169\.254\.0\.1|^unreachable |^anycast |^(ff00|fd00:1|fd00:10|10\.0\.10|192\.168\.1)/;
  return `${rules}\n${routes.split('\n').filter((l) => l && !mine.test(l.replace(/^unicast /, ''))).join('\n')}\n${(await ip('neigh', 'show', 'proxy')).split('\n').filter((l) => !l.startsWith('203.0.113.20 ') && !l.startsWith('2001:db8:10::20 ')).sort().join('\n')}`;
}

/** guestwall's part of the host: its tables (counters aside) and the network it sets up. */
async function ours(): Promise<string> {
  const tables: string[] = [];
  for (const family of ['inet', 'bridge', 'arp']) {
    const r = await inNs('nft', 'list', 'table', family, 'guestwall');
    tables.push(r.exitCode === 0 ? r.stdout.replace(/counter packets \d+ bytes \d+/g, 'counter') : `no ${family} table`);
  }
  const routes = JSON.parse(await ip('-j', '-6', 'route', 'show', 'proto', '158')).concat(JSON.parse(await ip('-j', '-4', 'route', 'show', 'proto', '158')));
  const addrs = (JSON.parse(await ip('-j', 'address', 'show')) as { ifname: string; addr_info: { local: string; prefixlen: number }[] }[])
    .flatMap((l) => l.addr_info.map((a) => `${l.ifname} ${a.local}/${a.prefixlen}`)).filter((a) => !/ fe80::(?!1\/)/.test(a)).sort();
  const proxies = (await ip('neigh', 'show', 'proxy')).split('\n').sort();
  const keys = ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.gw-mail.proxy_arp', 'net.ipv6.conf.eth0.proxy_ndp'];
  const sysctls = (await inNs('sysctl', ...keys)).stdout;
  return [...tables, JSON.stringify(routes), addrs.join('\n'), proxies.join('\n'), sysctls].join('\n--\n');
}

async function waitFor(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

let foreignBefore = '';
let stateA = '';
let stateB = '';
/** The state after a fault is one of the two whole ones; which one, for the record. */
async function whole(what: string): Promise<'A' | 'B'> {
  const now = await ours();
  expect(await foreign(), `${what}: foreign tables and routes`).toBe(foreignBefore);
  if (now === stateA) return 'A';
  expect(now, `${what}: neither the state before nor the one after`).toBe(stateB);
  return 'B';
}

/** After a kill: the next guestwall finishes a dead change (confirm takes the lock, recovers, and finds nothing to confirm). */
async function settle(): Promise<void> {
  if (existsSync(statePaths(stateDir, ns).inProgress)) {
    const c = await cli('confirm');
    expect(c.err).toContain('did not finish');
  }
}

/** Spread-out kill moments over `ms`, the same every run (no randomness to chase). */
const moments = (n: number, ms: number) => Array.from({ length: n }, (_, i) => Math.round(((i + 0.5) / n) * ms));

describe.skipIf(skipReason !== undefined)(`faults on a namespace host${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-faults-'));
    stateDir = join(dir, 'state');
    A = join(dir, 'homelab.yaml');
    B = join(dir, 'homelab-without-mail.yaml');
    writeFileSync(A, homelab);
    writeFileSync(B, withoutMail);
    await addNamespace(ns);
    await ip('link', 'set', 'lo', 'up');
    for (const dev of ['eth0', 'eth1', 'gw-mail']) {
      await ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}-p`);
      await ip('link', 'set', `${dev}-p`, 'up');
      await ip('link', 'set', dev, 'up');
    }
    await ip('address', 'add', '203.0.113.10/24', 'dev', 'eth0');
    await ip('-6', 'address', 'add', '2001:db8:1::10/64', 'dev', 'eth0', 'nodad');
    await execa('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: FOREIGN });
    // Someone else's: a route on the uplink, a route to the guest's address on its own port (another metric), a proxy entry on the uplink.
    await ip('route', 'add', '198.51.100.0/24', 'dev', 'eth0', 'proto', 'static');
    await ip('-6', 'route', 'add', '2001:db8:10::20/128', 'dev', 'gw-mail', 'metric', '50', 'proto', 'static');
    await ip('neigh', 'add', 'proxy', '203.0.113.99', 'dev', 'eth0');
    foreignBefore = await foreign();
    // The two whole states every fault must end in: homelab applied (A), then without mail (B).
    expect((await cli('apply', A)).code).toBe(0);
    stateA = await ours();
    expect((await cli('apply', B)).code).toBe(0);
    stateB = await ours();
    expect((await cli('rollback')).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await deleteNamespace(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a guest removed from the policy leaves no owned route or proxy entry; foreign ones stay; rollback and the timer bring both back', async () => {
    const a = await cli('apply', A);
    expect(a.code, a.err).toBe(0);
    expect(await ours()).toBe(stateA);
    expect(stateA).toContain('"dst":"203.0.113.20","dev":"gw-mail"');
    expect(stateA).toContain('203.0.113.20 dev eth0 proxy');

    const d = await cli('diff', B);
    expect(d.code).toBe(1);
    expect(d.out).toContain('  - gw-mail: remove route 203.0.113.20/32 (no longer in the policy)');
    expect(d.out).toContain('  - eth0: stop answering ARP for 203.0.113.20 (no longer in the policy)');
    expect(d.out).not.toMatch(/203\.0\.113\.99|198\.51\.100|metric 50/);

    const b = await cli('apply', B);
    expect(b.code, b.err).toBe(0);
    expect(await ours()).toBe(stateB);
    expect(stateB).not.toContain('203.0.113.20');
    expect(stateB).not.toContain('2001:db8:10::20');
    expect(stateB).not.toMatch(/gw-mail 169\.254\.0\.1|gw-mail fe80::1\//);
    expect(await foreign()).toBe(foreignBefore);
    expect((await cli('diff', B)).code).toBe(0);

    const back = await cli('rollback');
    expect(back.code, back.err).toBe(0);
    expect(await ours()).toBe(stateA);
    expect(await foreign()).toBe(foreignBefore);

    // The --confirm timer restores the network too.
    const c = await cli('apply', B, '--confirm', '2');
    expect(c.code, c.err).toBe(0);
    expect(await ours()).toBe(stateB);
    expect(await waitFor(async () => (await ours()) === stateA, 10_000)).toBe(true);
    expect(await foreign()).toBe(foreignBefore);
  }, 120_000);

  it('kill -9 of apply at 8 moments: ruleset and network end as before or as after', async () => {
    expect((await cli('apply', A)).code).toBe(0);
    const t0 = Date.now();
    const full = await spawnCli('apply', B);
    const ms = Date.now() - t0;
    expect(full.exitCode, full.stderr).toBe(0);
    const seen: string[] = [];
    for (const delay of moments(8, ms)) {
      expect((await cli('apply', A)).code).toBe(0);
      const child = spawnCli('apply', B);
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await child;
      await settle();
      seen.push(await whole(`apply killed after ${delay} ms`));
    }
    console.log(`apply (${ms} ms) killed at ${moments(8, ms).join(', ')} ms: ${seen.join(' ')}`);
  }, 300_000);

  it('kill -9 of rollback at 6 moments: as before or as after', async () => {
    expect((await cli('apply', A)).code).toBe(0);
    expect((await cli('apply', B)).code).toBe(0);
    const t0 = Date.now();
    expect((await spawnCli('rollback')).exitCode).toBe(0);
    const ms = Date.now() - t0;
    const seen: string[] = [];
    for (const delay of moments(6, ms)) {
      expect((await cli('apply', B)).code).toBe(0);
      const child = spawnCli('rollback');
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await child;
      await settle();
      seen.push(await whole(`rollback killed after ${delay} ms`));
    }
    console.log(`rollback (${ms} ms) killed at ${moments(6, ms).join(', ')} ms: ${seen.join(' ')}`);
  }, 300_000);

  it('kill -9 of confirm at 3 moments: the change stays whole or the timer takes it back whole', async () => {
    const seen: string[] = [];
    for (const delay of moments(3, 1200)) {
      expect((await cli('apply', A)).code).toBe(0);
      expect((await cli('apply', B, '--confirm', '3')).code).toBe(0);
      const child = spawnCli('confirm');
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await child;
      const pending = statePaths(stateDir, ns).pending;
      expect(await waitFor(async () => !existsSync(pending), 12_000)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      seen.push(await whole(`confirm killed after ${delay} ms`));
    }
    console.log(`confirm killed at ${moments(3, 1200).join(', ')} ms: ${seen.join(' ')}`);
  }, 300_000);

  it('every state file damaged (cut short or garbage), against apply, confirm, rollback and diff: a clear line, never a stack trace, never half a state', async () => {
    expect((await cli('apply', A)).code).toBe(0);
    expect((await cli('apply', B)).code).toBe(0);
    const good = join(dir, 'good-state');
    rmSync(good, { recursive: true, force: true });
    cpSync(stateDir, good, { recursive: true });
    const p = statePaths(stateDir, ns);
    const files = { 'previous.nft': p.previous, 'previous-network.json': p.previousNetwork, 'network.json': p.network, 'current.json': p.current, 'pending-confirm.json': p.pending, 'in-progress.json': p.inProgress, lock: p.lock };
    const ways = { 'cut short': (t: string) => t.slice(0, Math.max(1, Math.floor(t.length / 3))), garbage: () => '\u0000\u00ff{"not": guestwall' };
    const report: string[] = [];
    // One way per file, alternating, to keep the run short (the unit tests try every way on each reader).
    for (const [i, [name, path]] of Object.entries(files).entries()) {
      for (const [way, damage] of Object.entries(ways).filter((_, j) => j === i % 2)) {
        if ((await ours()) !== stateB) expect((await cli('apply', B)).code).toBe(0);
        rmSync(stateDir, { recursive: true, force: true });
        cpSync(good, stateDir, { recursive: true });
        const text = existsSync(path) ? readFileSync(path, 'utf8') : '{"op":"apply","id":"x","pid":1}\n';
        writeFileSync(path, damage(text));
        for (const cmd of [['diff', B], ['confirm'], ['rollback'], ['apply', B]]) {
          const r = await cli(...cmd);
          const what = `${name} ${way}, ${cmd[0]}`;
          expect(r.err, what).not.toMatch(/\n\s+at |SyntaxError|TypeError/);
          expect([0, 1, 2], `${what}: ${r.err}`).toContain(r.code);
          const error = /guestwall: (?!the last)(.*)/.exec(r.err)?.[0];
          if (r.code !== 0 && cmd[0] !== 'diff') expect(error, `${what}: ${r.err}`).toBeDefined();
          report.push(`${what}: ${r.code}${error ? ` ${error.slice(0, 100)}` : ''}`);
          await whole(what);
        }
      }
    }
    console.log(report.join('\n'));
  }, 600_000);

  it('a read-only or full state directory: a clear error before anything changes', async () => {
    expect((await cli('apply', A)).code).toBe(0);
    const before = await ours();
    const mounted = async (setup: string) =>
      execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${setup} && exec node "$0" apply "$1" --netns "$2" --state-dir "$3"`, BIN, B, ns, stateDir], { reject: false });
    // Read-only: the same state, bind-mounted read-only in a mount namespace of its own.
    const ro = await mounted(`mount --bind "$3" "$3" && mount -o remount,bind,ro "$3"`);
    expect(ro.exitCode, ro.stderr).toBe(2);
    expect(ro.stderr).toMatch(/^guestwall: cannot write .*: the file system is read-only \(EROFS\); nothing was changed$/m);
    expect(ro.stderr).not.toMatch(/\n\s+at /);
    expect(await ours()).toBe(before);
    // Full: the same state on a tmpfs with no room left.
    const copy = join(dir, 'copy');
    rmSync(copy, { recursive: true, force: true });
    cpSync(stateDir, copy, { recursive: true });
    const full = await mounted(`mount -t tmpfs -o size=256k tmpfs "$3" && cp -a ${JSON.stringify(`${copy}/.`)} "$3"/ && (dd if=/dev/zero of="$3/filler" bs=4k 2>/dev/null; true)`);
    expect(full.exitCode, full.stderr).toBe(2);
    expect(full.stderr).toMatch(/^guestwall: cannot write .*: no space is left on the device \(ENOSPC\); nothing was changed$/m);
    expect(await ours()).toBe(before);
    expect(await foreign()).toBe(foreignBefore);
    mkdirSync(stateDir, { recursive: true });
  }, 120_000);
});
