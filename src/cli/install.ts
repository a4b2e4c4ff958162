// guestwall install / uninstall: put the compiled ruleset and its boot unit on a host (or into a
// directory tree with --root), or take them away again; the live ruleset is never touched.
import { resolve } from 'node:path';
import { install, uninstall, unitTemplateFile } from '../apply/install.js';
import { type System, realSystem } from '../apply/system.js';
import { NETWORK_PATHS } from '../emit/network-files.js';
import { originMap } from '../nft/ruleset.js';
import { EXIT, type Io, reportError } from './io.js';
import { networkOutput } from './network.js';
import type { FeatureChoice } from '../compile/features.js';
import { compiledPolicy, kernelFeaturesFor } from './policy-file.js';

export interface InstallCliOptions {
  root?: string;
}

export interface InstallCompileOptions extends InstallCliOptions {
  /** Which host of a fleet policy. */
  host?: string;
  /** Default auto: what this host's kernel can load (an image for another kernel: say baseline or full). */
  kernelFeatures?: FeatureChoice;
}

export interface UninstallCliOptions extends InstallCliOptions {
  purge?: boolean;
}



export async function installCommand(io: Io, file: string, opts: InstallCompileOptions, sys: System = realSystem()): Promise<number> {
  const features = await kernelFeaturesFor(io, opts.kernelFeatures ?? 'auto', sys, true);
  const loaded = compiledPolicy(io, file, 'nothing installed', true, features, opts.host);
  if ('exit' in loaded) return loaded.exit;
  const root = resolve(opts.root ?? '/');
  try {
    const ruleset = loaded.ruleset;
    const network = networkOutput(loaded.model).files;
    const report = await install(sys, { ruleset, policyText: loaded.text, origins: originMap(ruleset), unitTemplate: io.readFile(unitTemplateFile()), network }, root);
    const units = ['guestwall.service', ...(network.some((f) => f.path === NETWORK_PATHS.unit) ? ['guestwall-network.service'] : [])].join(' ');
    const ENABLE = `systemctl daemon-reload && systemctl enable ${units}`;
    for (const w of report.warnings) io.err(`guestwall: warning: ${w.message}\n  hint: ${w.hint}`);
    if (report.checkSkipped) io.err(`guestwall: ${report.checkSkipped}`);
    io.out(`guestwall: installed ${file}${root === '/' ? '' : ` under ${root}`}:`);
    const width = Math.max(...report.written.map((w) => w.path.length));
    for (const w of report.written) io.out(`  ${w.path.padEnd(width)}  ${w.what}`);
    if (root !== '/') io.out(`next, on the installed system: ${ENABLE}\n  (an image builder can run: systemctl --root=${root} enable ${units})`);
    else if (report.reloadSkipped) io.out(`guestwall: ${report.reloadSkipped}\nnext: ${ENABLE}`);
    else io.out(`next: systemctl enable ${units} (the ruleset and the network setup at every boot from then on; the networkd files need systemd-networkd)`);
    return EXIT.ok;
  } catch (e) {
    return reportError(io, e);
  }
}

export async function uninstallCommand(io: Io, opts: UninstallCliOptions, sys: System = realSystem()): Promise<number> {
  const root = resolve(opts.root ?? '/');
  try {
    const report = await uninstall(sys, root, opts.purge ?? false);
    if (report.removed.length === 0) io.out(`guestwall: nothing to remove: guestwall is not installed${root === '/' ? '' : ` under ${root}`}`);
    else io.out(`guestwall: removed\n${report.removed.map((p) => `  ${p}`).join('\n')}`);
    for (const k of report.kept) io.out(`guestwall: kept ${k.path}: ${k.why}`);
    const deletes = report.tables.map((t) => `nft delete table ${t}`).join('; ');
    io.out(`guestwall: the live ruleset was not touched${deletes ? `; to remove guestwall's tables now: ${deletes}` : ''}`);
    if (root === '/' && report.reloadSkipped) io.err(`guestwall: ${report.reloadSkipped}; run systemctl daemon-reload`);
    return EXIT.ok;
  } catch (e) {
    return reportError(io, e);
  }
}
