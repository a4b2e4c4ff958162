// guestwall at boot: the compiled ruleset, a copy of the policy and a systemd unit that loads
// the ruleset with `nft -j -f` before network-pre.target. Nothing on the boot path runs Node:
// the unit is nft and a few lines of sh. Everything is written under a root directory ('/' for
// this host, a directory tree for tests and image builders), each file atomically.
import { join } from 'node:path';
import { type NetworkFile, NETWORK_PATHS } from '../emit/network-files.js';
import { HOOK_PATHS, HOOKS_DIR } from '../emit/paths.js';
import { fillTemplate } from '../emit/template.js';
import { toNftJson } from '../nft/json.js';
import type { Ruleset } from '../nft/ruleset.js';
import { ApplyError } from './errors.js';
import { templatesDir } from './templates.js';
import { checkJson, nftMessage, nftVersion } from './nft.js';
import { DEFAULT_STATE_DIR } from './state.js';
import type { System } from './system.js';

export { fillTemplate };

/** Where the installed files live on the target system (prefix them with the root to write). */
export const BOOT_PATHS = {
  etcDir: '/etc/guestwall',
  ruleset: '/etc/guestwall/ruleset.json',
  policy: '/etc/guestwall/policy.yaml',
  origins: '/etc/guestwall/origins.json',
  sysctl: '/etc/sysctl.d/60-guestwall.conf',
  unit: '/etc/systemd/system/guestwall.service',
  /** Present once `systemctl enable guestwall.service` has run. */
  unitEnabled: '/etc/systemd/system/sysinit.target.wants/guestwall.service',
  /** Written by the unit itself, only after the ruleset loaded. */
  lastGood: `${DEFAULT_STATE_DIR}/last-good.json`,
  /** nft as the unit sees it: systemd wants absolute paths, and Debian installs it here. */
  nft: '/usr/sbin/nft',
} as const;

/** The unit template in this package (templates/ beside src/ for the tests, beside dist/ when built). */
export function unitTemplateFile(): string {
  return templateFile('guestwall.service');
}

/** A file under templates/ in this package ("hooks/port-up"). */
export function templateFile(rel: string): string {
  return join(templatesDir(), rel);
}

export interface InstallInput {
  ruleset: Ruleset;
  /** The policy exactly as given. */
  policyText: string;
  /** Rule comment -> where it comes from in the policy (the CLI's origin map). */
  origins: Record<string, unknown>;
  /** The text of templates/guestwall.service. */
  unitTemplate: string;
  /** The host network setup's files (src/emit/network-files.ts): networkd, sysctl, hooks, boot unit. */
  network: NetworkFile[];
}

export interface InstalledFile {
  /** Path on the target system, without the root. */
  path: string;
  text: string;
  mode: number;
  what: string;
}

/** What install writes, in the order it writes it (the unit last: it refers to the others). */
export function bootFiles(input: InstallInput): InstalledFile[] {
  const P = BOOT_PATHS;
  const unit = fillTemplate(input.unitTemplate, { nft: P.nft, ruleset: P.ruleset, lastGood: P.lastGood, stateDir: DEFAULT_STATE_DIR });
  return [
    { path: P.ruleset, text: `${JSON.stringify(toNftJson(input.ruleset), null, 1)}\n`, mode: 0o644, what: 'the compiled ruleset (nft -j -f)' },
    { path: P.policy, text: input.policyText, mode: 0o644, what: 'a copy of the policy it was compiled from' },
    { path: P.origins, text: `${JSON.stringify(input.origins, null, 1)}\n`, mode: 0o644, what: 'rule comment -> place in the policy' },
    ...input.network.map((f) => ({ path: f.path, text: f.text, mode: f.mode ?? 0o644, what: f.what })),
    { path: P.unit, text: unit, mode: 0o644, what: 'loads the ruleset at boot, before network-pre.target' },
  ];
}

/** Something about the target system that works against guestwall; install goes on regardless. */
export interface BootWarning {
  message: string;
  hint: string;
}

export interface InstallReport {
  /** Full paths written, with what each one is. */
  written: { path: string; what: string }[];
  /** Why the kernel did not check the ruleset, or undefined when `nft -c` accepted it. */
  checkSkipped?: string;
  /** Why `systemctl daemon-reload` did not run, or undefined when it did. */
  reloadSkipped?: string;
  warnings: BootWarning[];
}

/** The kernel check's scratch file; apply uses next.json under its lock, so this one is separate. */
const CHECK_FILE = `${DEFAULT_STATE_DIR}/install-check.json`;

/**
 * Write the boot files under `root`. On this host ('/') the kernel checks the ruleset first and
 * systemd is told to reload; under any other root neither happens (there is no kernel or systemd
 * of that tree to ask).
 */
export async function install(sys: System, input: InstallInput, root: string): Promise<InstallReport> {
  const files = bootFiles(input);
  const onHost = root === '/';
  let checkSkipped: string | undefined = '--root installs into a directory tree, so the ruleset was not checked against this kernel (nft -c)';
  if (onHost) {
    if (!sys.isRoot()) throw new ApplyError('guestwall install needs root to write /etc', 'run it with sudo, or install into a directory tree with --root DIR', 2);
    checkSkipped = await kernelCheck(sys, files.find((f) => f.path === BOOT_PATHS.ruleset)!.text);
  }
  const warnings = await bootWarnings(sys, root);
  const written: InstallReport['written'] = [];
  for (const f of files) {
    const path = join(root, f.path);
    await sys.writeFile(path, f.text, f.mode);
    written.push({ path, what: f.what });
  }
  let reloadSkipped: string | undefined = '--root: systemctl was not run';
  if (onHost) reloadSkipped = await daemonReload(sys);
  return { written, ...(checkSkipped ? { checkSkipped } : {}), ...(reloadSkipped ? { reloadSkipped } : {}), warnings };
}

/** `nft -c` on the ruleset: undefined when accepted, the reason when nft is not here; throws when refused. */
async function kernelCheck(sys: System, json: string): Promise<string | undefined> {
  try {
    await nftVersion(sys);
  } catch (e) {
    if (e instanceof ApplyError) return 'nft is not installed here, so the ruleset was not checked against this kernel (nft -c)';
    throw e;
  }
  await sys.mkdir(DEFAULT_STATE_DIR);
  await sys.writeFile(CHECK_FILE, json, 0o600);
  try {
    const r = await checkJson(sys, CHECK_FILE);
    if (r.code !== 0) throw new ApplyError(`the kernel refuses the ruleset: ${nftMessage(r)}; nothing was installed`, 'guestwall doctor lists what this kernel lacks');
    return undefined;
  } finally {
    await sys.remove(CHECK_FILE);
  }
}

/** Tell systemd about the new or removed unit; the reason when that could not happen. */
async function daemonReload(sys: System): Promise<string | undefined> {
  const r = await sys.run('systemctl', ['daemon-reload']);
  if (r.code === 127) return 'systemctl is not installed here';
  if (r.code !== 0) return `systemctl daemon-reload failed: ${r.stderr.trim() || `exit ${r.code}`}`;
  return undefined;
}

/** Debian's nftables.service, when enabled with the stock conf, wipes every table on reload and stop. */
export async function bootWarnings(sys: System, root: string): Promise<BootWarning[]> {
  const enabled = await present(sys, join(root, '/etc/systemd/system/sysinit.target.wants/nftables.service'));
  const conf = await sys.readFile(join(root, '/etc/nftables.conf'));
  if (!enabled || conf === undefined || !/^\s*flush\s+ruleset\b/m.test(conf)) return [];
  return [
    {
      message: "nftables.service is enabled and /etc/nftables.conf runs 'flush ruleset': reloading or stopping it wipes guestwall's tables (and every other table)",
      hint: "disable it if nothing else needs it (systemctl disable nftables.service); otherwise replace 'flush ruleset' in /etc/nftables.conf with 'table inet NAME {}' and 'delete table inet NAME' for each table it owns",
    },
  ];
}

export interface UninstallReport {
  removed: string[];
  /** Kept on purpose, with why. */
  kept: { path: string; why: string }[];
  /** guestwall's tables named in the removed ruleset ("inet guestwall"): still live, on purpose. */
  tables: string[];
  reloadSkipped?: string;
}

/**
 * Remove what install wrote. The live ruleset stays as it is, and so does the last known good
 * ruleset unless `purge`: uninstalling is not a reason to drop a host's firewall.
 */
export async function uninstall(sys: System, root: string, purge: boolean): Promise<UninstallReport> {
  const P = BOOT_PATHS;
  const onHost = root === '/';
  if (onHost && !sys.isRoot()) throw new ApplyError('guestwall uninstall needs root to remove files from /etc', 'run it with sudo, or with --root DIR for a directory tree', 2);
  if (await present(sys, join(root, P.unitEnabled))) {
    const rootArg = onHost ? '' : ` --root=${root}`;
    throw new ApplyError('guestwall.service is still enabled; nothing was removed', `run systemctl${rootArg} disable guestwall.service first`);
  }
  const rulesetText = await sys.readFile(join(root, P.ruleset));
  if (await present(sys, join(root, NETWORK_PATHS.unitEnabled))) {
    const rootArg = onHost ? '' : ` --root=${root}`;
    throw new ApplyError('guestwall-network.service is still enabled; nothing was removed', `run systemctl${rootArg} disable guestwall-network.service first`);
  }
  const networkFiles = await installedNetworkFiles(sys, root);
  const targets: string[] = [P.unit, P.sysctl, ...networkFiles, P.ruleset, P.policy, P.origins, ...(purge ? [`${P.lastGood}.new`, P.lastGood] : [])];
  const removed: string[] = [];
  for (const p of targets) {
    const path = join(root, p);
    if ((await sys.readFile(path)) === undefined) continue;
    await sys.remove(path);
    removed.push(path);
  }
  const kept: UninstallReport['kept'] = [];
  // rmdir removes the directory only when empty: a policy the admin keeps there stays.
  const hooksDir = join(root, HOOKS_DIR);
  if ((await sys.run('rmdir', [hooksDir])).code === 0) removed.push(hooksDir);
  const etcDir = join(root, P.etcDir);
  const rmdir = await sys.run('rmdir', [etcDir]);
  if (rmdir.code === 0) removed.push(etcDir);
  else if (/not empty/i.test(rmdir.stderr)) kept.push({ path: etcDir, why: 'it holds files guestwall did not write' });
  const lastGood = join(root, P.lastGood);
  if (!purge && (await sys.readFile(lastGood)) !== undefined) kept.push({ path: lastGood, why: 'the last ruleset that loaded at boot; --purge removes it' });
  const reloadSkipped = onHost ? await daemonReload(sys) : '--root: systemctl was not run';
  return { removed, kept, tables: rulesetTables(rulesetText), ...(reloadSkipped ? { reloadSkipped } : {}) };
}

/**
 * The network files install wrote: the fixed ones, and the 00-guestwall-* networkd files and
 * hooks, which depend on the policy (found by listing, since the policy may have changed since).
 */
async function installedNetworkFiles(sys: System, root: string): Promise<string[]> {
  const list = async (dir: string, prefix: string) => {
    const r = await sys.run('ls', ['-1', join(root, dir)]);
    return r.code === 0 ? r.stdout.split('\n').filter((n) => n.startsWith(prefix)).map((n) => `${dir}/${n}`) : [];
  };
  return [
    NETWORK_PATHS.unit, NETWORK_PATHS.proxyBatch, NETWORK_PATHS.networkdConf, NETWORK_PATHS.rtProtos,
    ...(await list(NETWORK_PATHS.networkdDir, '00-guestwall-')),
    ...Object.values(HOOK_PATHS),
  ];
}

/**
 * Whether a file or an enable symlink is there. `systemctl enable` links to absolute paths,
 * which under a --root tree point at this host's files, so a link counts even when it dangles.
 */
async function present(sys: System, path: string): Promise<boolean> {
  return (await sys.readFile(path)) !== undefined || (await sys.run('test', ['-L', path])).code === 0;
}

/** "family name" of every table a ruleset document adds. */
function rulesetTables(text: string | undefined): string[] {
  if (text === undefined) return [];
  try {
    const doc = JSON.parse(text) as { nftables?: { add?: { table?: { family: string; name: string } } }[] };
    return [...new Set((doc.nftables ?? []).flatMap((c) => (c.add?.table ? [`${c.add.table.family} ${c.add.table.name}`] : [])))];
  } catch {
    return [];
  }
}
