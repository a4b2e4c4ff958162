// What the installed unit does at boot, without booting: install into a temporary tree, take
// the unit's own ExecStart command line (paths moved under that tree) and run it in a fresh
// network namespace, as systemd would run it on a fresh kernel. Then the same with a ruleset
// the kernel refuses: the unit fails, and the last known good tables are what the kernel holds.
// Namespaces are `gw-boot-*`, deleted even on failure; nothing is loaded into this machine's own.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOT_PATHS, unitTemplateFile } from '../../src/apply/install.js';
import { DEFAULT_STATE_DIR } from '../../src/apply/state.js';
import { run } from '../../src/cli/main.js';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import { toNftJson } from '../../src/nft/json.js';
import type { Ruleset } from '../../src/nft/ruleset.js';
import { memoryIo } from '../support/io.js';
import { addNamespace, deleteNamespace, kernelTestUnavailable, namespaceName } from '../support/kernel.js';

const POLICY = 'policies/homelab-dmz.yaml';
const policyText = readFileSync(POLICY, 'utf8');
const ruleset = compilePolicyText(POLICY, policyText).compiled!.ruleset;

const skipReason = kernelTestUnavailable();
const onPath = (cmd: string) => (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(join(dir, cmd)));
const analyzeMissing = onPath('systemd-analyze') ? undefined : 'needs systemd-analyze on PATH (Debian: package systemd)';

async function installInto(root: string): Promise<string> {
  const m = memoryIo({ [POLICY]: policyText, [unitTemplateFile()]: readFileSync(unitTemplateFile(), 'utf8') });
  const code = await run(['install', POLICY, '--root', root], m.io);
  if (code !== 0) throw new Error(`install --root failed (exit ${code}):\n${m.stderr()}`);
  return readFileSync(join(root, BOOT_PATHS.unit), 'utf8');
}

/** The shell script of a `Key=/bin/sh -c '...'` line of the unit. */
function shellOf(unit: string, key: 'ExecStart' | 'ExecReload'): string {
  const lines = unit.split('\n').filter((l) => l.startsWith(`${key}=`));
  expect(lines, `one ${key}= line`).toHaveLength(1);
  const m = /^\/bin\/sh -c '([^']*)'$/.exec(lines[0]!.slice(key.length + 1));
  if (!m) throw new Error(`${key} is not /bin/sh -c '...': ${lines[0]}`);
  // systemd expands these itself; without them, sh gets exactly the text between the quotes.
  expect(m[1]).not.toMatch(/[$%\\]/);
  return m[1]!;
}

/** The script with guestwall's files moved under root; programs (/usr/sbin/nft, /bin/cp) stay. */
function underRoot(script: string, root: string): string {
  const moved = script.replaceAll(BOOT_PATHS.etcDir, join(root, BOOT_PATHS.etcDir)).replaceAll(DEFAULT_STATE_DIR, join(root, DEFAULT_STATE_DIR));
  expect(moved, 'no file of the real /etc or /var is left in the script').not.toMatch(/(^|[\s"])\/(etc|var)\//);
  return moved;
}

/** Chain name -> number of rules, per table: what the compiler wrote... */
function compiledChains(rs: Ruleset): Record<string, Record<string, number>> {
  return Object.fromEntries(rs.tables.map((t) => [`${t.family} ${t.name}`, Object.fromEntries(t.chains.map((c) => [c.name, c.rules.length]))]));
}

describe.skipIf(skipReason !== undefined)(`the installed unit loads the ruleset at boot${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let root = '';
  let unit = '';
  const namespaces = new Set<string>();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'gw-boot-'));
    unit = await installInto(root);
  });
  afterAll(async () => {
    for (const ns of namespaces) await deleteNamespace(ns);
    if (root) rmSync(root, { recursive: true, force: true });
  });

  async function freshNamespace(): Promise<string> {
    const ns = namespaceName('gw-boot');
    namespaces.add(ns);
    await addNamespace(ns);
    return ns;
  }
  /** What systemd would run, in one of our namespaces. */
  function runUnitCommand(ns: string, key: 'ExecStart' | 'ExecReload') {
    if (!namespaces.has(ns)) throw new Error(`refusing to run outside a test namespace (${ns})`);
    return execa('ip', ['netns', 'exec', ns, '/bin/sh', '-c', underRoot(shellOf(unit, key), root)], { reject: false });
  }
  /** ...and what the kernel holds. */
  async function liveChains(ns: string): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const t of ruleset.tables) {
      const r = await execa('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'table', t.family, t.name], { reject: false });
      if (r.exitCode !== 0) continue;
      const chains: Record<string, number> = {};
      for (const item of (JSON.parse(r.stdout) as { nftables: Record<string, { name?: string; chain?: string }>[] }).nftables) {
        if (item.chain) chains[item.chain.name!] ??= 0;
        if (item.rule) chains[item.rule.chain!] = (chains[item.rule.chain!] ?? 0) + 1;
      }
      out[`${t.family} ${t.name}`] = chains;
    }
    return out;
  }

  it('ExecStart loads the compiled tables into a fresh namespace and keeps them as the last known good', async () => {
    const ns = await freshNamespace();
    try {
      const r = await runUnitCommand(ns, 'ExecStart');
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(await liveChains(ns)).toEqual(compiledChains(ruleset));
      expect(readFileSync(join(root, BOOT_PATHS.lastGood), 'utf8')).toBe(readFileSync(join(root, BOOT_PATHS.ruleset), 'utf8'));
    } finally {
      await deleteNamespace(ns);
      namespaces.delete(ns);
    }
  });

  it('a ruleset the kernel refuses fails the unit, on reload and at boot, and the last known good tables are loaded', async () => {
    const running = await freshNamespace();
    const booting = await freshNamespace();
    try {
      // A running host: the good ruleset is live and saved...
      expect((await runUnitCommand(running, 'ExecStart')).exitCode).toBe(0);
      const good = readFileSync(join(root, BOOT_PATHS.lastGood), 'utf8');

      // ...then the installed one becomes a ruleset the kernel refuses (a jump to no chain).
      const doc = toNftJson(ruleset);
      const t = ruleset.tables[0]!;
      doc.nftables.push({ add: { rule: { family: t.family, table: t.name, chain: t.chains[0]!.name, expr: [{ jump: { target: 'gw-no-such-chain' } }] } } });
      writeFileSync(join(root, BOOT_PATHS.ruleset), JSON.stringify(doc));

      const reload = await runUnitCommand(running, 'ExecReload');
      expect(reload.exitCode).not.toBe(0);
      expect(reload.stderr).toContain('did not load; loading the last known good');
      expect(await liveChains(running)).toEqual(compiledChains(ruleset));

      // The next boot: an empty kernel gets the last known good tables, and the unit still fails.
      const boot = await runUnitCommand(booting, 'ExecStart');
      expect(boot.exitCode).not.toBe(0);
      expect(await liveChains(booting)).toEqual(compiledChains(ruleset));
      expect(readFileSync(join(root, BOOT_PATHS.lastGood), 'utf8')).toBe(good);
    } finally {
      for (const ns of [running, booting]) {
        await deleteNamespace(ns);
        namespaces.delete(ns);
      }
    }
  });
});

describe.skipIf(analyzeMissing !== undefined)(`systemd-analyze verify${analyzeMissing ? ` (skipped: ${analyzeMissing})` : ''}`, () => {
  it('accepts the installed unit', async () => {
    const root = mkdtempSync(join(tmpdir(), 'gw-verify-'));
    try {
      await installInto(root);
      const r = await execa('systemd-analyze', ['verify', '--man=no', join(root, BOOT_PATHS.unit)], { reject: false });
      expect(r.stderr).not.toContain('guestwall.service');
      expect(r.exitCode).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
