// guestwall install / uninstall into a temporary directory tree (--root) on the real filesystem,
// and, with a System whose files live in a temporary directory and whose programs are scripted,
// the host install: kernel check first, systemctl daemon-reload after.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BOOT_PATHS, fillTemplate, unitTemplateFile } from '../../../src/apply/install.js';
import { type RunResult, type System, realSystem } from '../../../src/apply/system.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { originMap } from '../../../src/nft/ruleset.js';
import { installCommand } from '../../../src/cli/install.js';
import { run } from '../../../src/cli/main.js';
import { toNftJson } from '../../../src/nft/json.js';
import { expectGolden } from '../../support/golden.js';
import { memoryIo } from '../../support/io.js';

const POLICY = 'policies/homelab-dmz.yaml';
const policyText = readFileSync(POLICY, 'utf8');
const compiled = compilePolicyText(POLICY, policyText).compiled!;
const HOOKS = ['etc/guestwall/hooks/port-down', 'etc/guestwall/hooks/port-up', 'etc/guestwall/hooks/xen-vif'];
const INSTALLED = [
  'etc/guestwall/hooks/port-down', 'etc/guestwall/hooks/port-up', 'etc/guestwall/hooks/xen-vif',
  'etc/guestwall/network.batch', 'etc/guestwall/origins.json', 'etc/guestwall/policy.yaml', 'etc/guestwall/ruleset.json', 'etc/iproute2/rt_protos.d/guestwall.conf', 'etc/sysctl.d/60-guestwall.conf',
  'etc/systemd/network/00-guestwall-br-dmz.netdev', 'etc/systemd/network/00-guestwall-br-dmz.network',
  'etc/systemd/network/00-guestwall-br-lan.netdev', 'etc/systemd/network/00-guestwall-br-lan.network',
  'etc/systemd/network/00-guestwall-eth1.network', 'etc/systemd/network/00-guestwall-gw-mail.network',
  'etc/systemd/networkd.conf.d/guestwall.conf', 'etc/systemd/system/guestwall-network.service', 'etc/systemd/system/guestwall.service',
];

/** The policy and the packaged unit template, as the CLI reads them. */
function cliIo(files: Record<string, string> = {}) {
  return memoryIo({ [POLICY]: policyText, [unitTemplateFile()]: readFileSync(unitTemplateFile(), 'utf8'), ...files });
}

/** Every file under dir (relative path -> permission bits). */
function tree(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = statSync(p).mode & 0o777;
    }
  };
  walk(dir);
  return out;
}

/** `Key=` lines of a unit file. */
function unitLines(unit: string, key: string): string[] {
  return unit.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
}

let root = '';
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'gw-install-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

async function installInto(dir: string, files?: Record<string, string>) {
  const m = cliIo(files);
  const code = await run(['install', POLICY, '--root', dir], m.io);
  return { code, ...m };
}

describe('guestwall install --root DIR', () => {
  it('writes exactly the ruleset, the policy, the origin map, the unit and the network setup, hooks 0755, the rest 0644', async () => {
    const r = await installInto(root);
    expect(r.stderr()).not.toContain('error');
    expect(r.code).toBe(0);
    expect(tree(root)).toEqual(Object.fromEntries(INSTALLED.map((p) => [p, HOOKS.includes(p) ? 0o755 : 0o644])));
  });

  it('writes the compiled JSON, the policy as given, and the origin map of the compile command', async () => {
    await installInto(root);
    const at = (p: string) => readFileSync(join(root, p), 'utf8');
    expect(JSON.parse(at(BOOT_PATHS.ruleset))).toEqual(toNftJson(compiled.ruleset));
    expect(at(BOOT_PATHS.policy)).toBe(policyText);
    expect(JSON.parse(at(BOOT_PATHS.origins))).toEqual(originMap(compiled.ruleset));
    expect(at(BOOT_PATHS.sysctl)).toBe(readFileSync('tests/golden/network/homelab-dmz/etc/sysctl.d/60-guestwall.conf', 'utf8'));
  });

  it('writes the reviewed unit', async () => {
    await installInto(root);
    expectGolden('tests/golden/guestwall.service', readFileSync(join(root, BOOT_PATHS.unit), 'utf8'));
  });

  it('orders the unit before network-pre.target, and wants it from sysinit.target', async () => {
    await installInto(root);
    const unit = readFileSync(join(root, BOOT_PATHS.unit), 'utf8');
    expect(unitLines(unit, 'DefaultDependencies')).toEqual(['no']);
    expect(unitLines(unit, 'Wants')).toEqual(['network-pre.target']);
    expect(unitLines(unit, 'Before')).toEqual(['network-pre.target shutdown.target']);
    expect(unitLines(unit, 'Conflicts')).toEqual(['shutdown.target']);
    expect(unitLines(unit, 'Type')).toEqual(['oneshot']);
    expect(unitLines(unit, 'RemainAfterExit')).toEqual(['yes']);
    expect(unitLines(unit, 'WantedBy')).toEqual(['sysinit.target']);
  });

  it('never flushes, never runs Node, and reloads the way it starts', async () => {
    await installInto(root);
    const unit = readFileSync(join(root, BOOT_PATHS.unit), 'utf8');
    expect(unit).not.toMatch(/flush/i);
    expect(unitLines(unit, 'ExecStop')).toEqual([]);
    const [start, ...more] = unitLines(unit, 'ExecStart');
    expect(more).toEqual([]);
    expect(start).not.toMatch(/node/);
    expect(start).toMatch(/^\/bin\/sh -c '[^']*'$/);
    expect(start).toContain(`${BOOT_PATHS.nft} -j -f ${BOOT_PATHS.ruleset}`);
    expect(start).toContain(`${BOOT_PATHS.nft} -j -f ${BOOT_PATHS.lastGood}`);
    // systemd would expand $, % and backslashes itself; without them sh sees exactly this text.
    expect(start).not.toMatch(/[$%\\]/);
    expect(unitLines(unit, 'ExecReload')).toEqual([start]);
  });

  it('says what it wrote, that the kernel did not check it, and what to run next; it runs nothing', async () => {
    const r = await installInto(root);
    for (const p of INSTALLED) expect(r.stdout()).toContain(join(root, p));
    expect(r.stderr()).toContain('not checked against this kernel');
    expect(r.stdout()).toContain('systemctl daemon-reload && systemctl enable guestwall.service guestwall-network.service');
  });

  it('replaces an earlier install', async () => {
    await installInto(root);
    writeFileSync(join(root, BOOT_PATHS.ruleset), 'old');
    expect((await installInto(root)).code).toBe(0);
    expect(JSON.parse(readFileSync(join(root, BOOT_PATHS.ruleset), 'utf8'))).toEqual(toNftJson(compiled.ruleset));
    expect(Object.keys(tree(root)).sort()).toEqual(INSTALLED);
  });

  it('writes nothing for a policy with errors, and exits 1', async () => {
    const m = cliIo({ 'bad.yaml': policyText.replace(/zone: \w+/, 'zone: nowhere') });
    expect(await run(['install', 'bad.yaml', '--root', root], m.io)).toBe(1);
    expect(m.stderr()).toContain('nothing installed');
    expect(tree(root)).toEqual({});
  });
});

describe("the warning about Debian's nftables.service", () => {
  const wants = 'etc/systemd/system/sysinit.target.wants/nftables.service';
  function host(files: Record<string, string>) {
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(join(root, p, '..'), { recursive: true });
      writeFileSync(join(root, p), text);
    }
  }

  it('warns, and still installs, when it is enabled with a conf that flushes the ruleset', async () => {
    host({ 'etc/nftables.conf': '#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n}\n' });
    mkdirSync(join(root, wants, '..'), { recursive: true });
    // As `systemctl enable` links it: absolute, so under --root it points outside the tree.
    symlinkSync('/lib/systemd/system/no-such-nftables.service', join(root, wants));
    const r = await installInto(root);
    expect(r.code).toBe(0);
    expect(r.stderr()).toContain("guestwall: warning: nftables.service is enabled and /etc/nftables.conf runs 'flush ruleset'");
    expect(r.stderr()).toContain('hint: disable it if nothing else needs it (systemctl disable nftables.service)');
    expect(r.stdout()).toContain(join(root, BOOT_PATHS.unit));
  });

  it('says nothing when it is not enabled, or its conf does not flush', async () => {
    host({ 'etc/nftables.conf': 'flush ruleset\n' });
    expect((await installInto(root)).stderr()).not.toContain('nftables.service');
    host({ [wants]: '[Unit]\n', 'etc/nftables.conf': '#flush ruleset\ntable inet filter {}\n' });
    expect((await installInto(root)).stderr()).not.toContain('nftables.service');
  });
});

describe('guestwall uninstall --root DIR', () => {
  it('removes exactly what install wrote, keeps the last known good ruleset, and leaves the live ruleset alone', async () => {
    await installInto(root);
    mkdirSync(join(root, 'var/lib/guestwall'), { recursive: true });
    writeFileSync(join(root, BOOT_PATHS.lastGood), '{}');
    writeFileSync(join(root, 'etc/sysctl.d/99-other.conf'), 'x=1\n');
    const m = memoryIo();
    expect(await run(['uninstall', '--root', root], m.io)).toBe(0);
    expect(Object.keys(tree(root)).sort()).toEqual(['etc/sysctl.d/99-other.conf', 'var/lib/guestwall/last-good.json']);
    expect(readdirSync(join(root, 'etc')).sort()).toEqual(['iproute2', 'sysctl.d', 'systemd']);
    expect(m.stdout()).toContain(`kept ${join(root, BOOT_PATHS.lastGood)}`);
    expect(m.stdout()).toContain('the live ruleset was not touched; to remove guestwall\'s tables now: nft delete table inet guestwall');
  });

  it('removes the last known good ruleset too with --purge', async () => {
    await installInto(root);
    mkdirSync(join(root, 'var/lib/guestwall'), { recursive: true });
    writeFileSync(join(root, BOOT_PATHS.lastGood), '{}');
    expect(await run(['uninstall', '--root', root, '--purge'], memoryIo().io)).toBe(0);
    expect(tree(root)).toEqual({});
  });

  it('keeps /etc/guestwall when the admin keeps other files there', async () => {
    await installInto(root);
    writeFileSync(join(root, 'etc/guestwall/host.yaml'), policyText);
    const m = memoryIo();
    expect(await run(['uninstall', '--root', root], m.io)).toBe(0);
    expect(Object.keys(tree(root))).toEqual(['etc/guestwall/host.yaml']);
    expect(m.stdout()).toContain(`kept ${join(root, 'etc/guestwall')}: it holds files guestwall did not write`);
  });

  it('refuses while the unit is enabled, removing nothing', async () => {
    await installInto(root);
    mkdirSync(join(root, 'etc/systemd/system/sysinit.target.wants'), { recursive: true });
    symlinkSync('/etc/systemd/system/no-such-guestwall.service', join(root, BOOT_PATHS.unitEnabled));
    const m = memoryIo();
    expect(await run(['uninstall', '--root', root], m.io)).toBe(1);
    expect(m.stderr()).toContain(`hint: run systemctl --root=${root} disable guestwall.service first`);
    expect(readFileSync(join(root, BOOT_PATHS.unit), 'utf8')).toContain('[Unit]');
  });

  it('says so when there is nothing to remove', async () => {
    const m = memoryIo();
    expect(await run(['uninstall', '--root', root], m.io)).toBe(0);
    expect(m.stdout()).toContain('nothing to remove');
  });
});

/**
 * This host as far as install can tell: its files live under `dir`, and its programs answer from
 * a script (nothing runs); every command is recorded.
 */
function scriptedHost(dir: string, answers: Record<string, RunResult>, ran: string[]): System {
  const real = realSystem();
  const at = (p: string) => join(dir, p);
  return {
    ...real,
    readFile: (p) => real.readFile(at(p)),
    writeFile: (p, t, mode) => real.writeFile(at(p), t, mode),
    remove: (p) => real.remove(at(p)),
    mkdir: (p) => real.mkdir(at(p)),
    createExclusive: (p, t) => real.createExclusive(at(p), t),
    isRoot: () => true,
    async run(cmd, args) {
      const line = [cmd, ...args].join(' ');
      ran.push(line);
      return answers[`${cmd} ${args[0]}`] ?? { code: 127, stdout: '', stderr: `${cmd}: not found` };
    },
  };
}

describe('guestwall install on this host (no --root)', () => {
  const ok = { code: 0, stdout: '', stderr: '' };
  const version = { code: 0, stdout: 'nftables v1.0.6 (Lester Gooch #5)\n', stderr: '' };

  it('checks the ruleset with nft -c before writing, runs systemctl daemon-reload after, and prints the enable command', async () => {
    const ran: string[] = [];
    const m = cliIo();
    expect(await installCommand(m.io, POLICY, { kernelFeatures: 'baseline' }, scriptedHost(root, { 'nft --version': version, 'nft -c': ok, 'systemctl daemon-reload': ok }, ran))).toBe(0);
    expect(ran).toEqual([
      'nft --version',
      'nft -c -j -f /var/lib/guestwall/install-check.json',
      'test -L /etc/systemd/system/sysinit.target.wants/nftables.service',
      'systemctl daemon-reload',
    ]);
    expect(Object.keys(tree(root)).sort()).toEqual(INSTALLED);
    expect(m.stderr()).not.toContain('not checked');
    expect(m.stdout()).toContain('next: systemctl enable guestwall.service guestwall-network.service');
  });

  it('writes nothing when the kernel refuses the ruleset, and exits 1', async () => {
    const ran: string[] = [];
    const refused = { code: 1, stdout: '', stderr: 'Error: Could not process rule: Operation not supported\n' };
    const m = cliIo();
    expect(await installCommand(m.io, POLICY, { kernelFeatures: 'baseline' }, scriptedHost(root, { 'nft --version': version, 'nft -c': refused }, ran))).toBe(1);
    expect(m.stderr()).toContain('the kernel refuses the ruleset: Error: Could not process rule: Operation not supported; nothing was installed');
    expect(ran).not.toContain('systemctl daemon-reload');
    expect(tree(root)).toEqual({});
  });

  it('installs without the check where nft is missing, and prints both systemctl steps where systemctl is', async () => {
    const m = cliIo();
    expect(await installCommand(m.io, POLICY, {}, scriptedHost(root, {}, []))).toBe(0);
    expect(m.stderr()).toContain('nft is not installed here, so the ruleset was not checked against this kernel');
    expect(m.stdout()).toContain('systemctl is not installed here\nnext: systemctl daemon-reload && systemctl enable guestwall.service');
  });

  it('refuses without root, writing nothing', async () => {
    const m = cliIo();
    const notRoot = { ...scriptedHost(root, {}, []), isRoot: () => false };
    expect(await installCommand(m.io, POLICY, {}, notRoot)).toBe(2);
    expect(m.stderr()).toContain('guestwall install needs root to write /etc');
    expect(tree(root)).toEqual({});
  });
});

describe('templates', () => {
  it('fill every placeholder, and a placeholder without a value is a bug', () => {
    expect(fillTemplate('a {{x}} b {{x}}', { x: '1' })).toBe('a 1 b 1');
    expect(() => fillTemplate('a {{y}}', { x: '1' })).toThrow('template placeholder {{y}} has no value');
    expect(() => fillTemplate('{{constructor}}', {})).toThrow('has no value');
  });
});
