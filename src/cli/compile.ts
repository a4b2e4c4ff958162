// guestwall compile FILE: the ruleset as nftables JSON (default) or nft syntax, to stdout or --out DIR.
import { dirname, join } from 'node:path';
import { guestSnippets } from '../emit/snippets.js';
import { toNftJson } from '../nft/json.js';
import { printRuleset } from '../nft/print.js';
import { originMap } from '../nft/ruleset.js';
import { type System, realSystem } from '../apply/system.js';
import { EXIT, type Io } from './io.js';
import { snippetTemplates } from './guest.js';
import { networkOutput } from './network.js';
import type { FeatureChoice } from '../compile/features.js';
import { compiledPolicy, kernelFeaturesFor } from './policy-file.js';

export interface CompileOptions {
  format: 'json' | 'nft';
  out?: string;
  /** Default auto: what this host's kernel can load. */
  kernelFeatures?: FeatureChoice;
  /** Which host of a fleet policy. */
  host?: string;
  /** Also say on stderr which kernel features the ruleset is compiled for. */
  verbose?: boolean;
}

export async function compileCommand(io: Io, file: string, opts: CompileOptions, sys: System = realSystem()): Promise<number> {
  const features = await kernelFeaturesFor(io, opts.kernelFeatures ?? 'auto', sys, opts.verbose === true);
  const loaded = compiledPolicy(io, file, 'nothing compiled', true, features, opts.host);
  if ('exit' in loaded) return loaded.exit;
  const ruleset = loaded.ruleset;
  const json = `${JSON.stringify(toNftJson(ruleset), null, 1)}\n`;
  if (opts.out !== undefined) {
    const templates = snippetTemplates(io);
    if ('error' in templates) {
      io.err(templates.error);
      return EXIT.usage;
    }
    io.mkdir(opts.out);
    io.writeFile(join(opts.out, 'ruleset.json'), json);
    io.writeFile(join(opts.out, 'ruleset.nft'), printRuleset(ruleset));
    io.writeFile(join(opts.out, 'origins.json'), `${JSON.stringify(originMap(ruleset), null, 1)}\n`);
    const snippets = guestSnippets(loaded.model, templates);
    for (const s of snippets) {
      io.mkdir(join(opts.out, 'guests', s.guest));
      io.writeFile(join(opts.out, 'guests', s.guest, s.file), s.text);
    }
    if (snippets.length) io.err(`wrote the guest snippets to ${join(opts.out, 'guests')}: ${snippets.map((s) => `${s.guest}/${s.file}`).join(', ')}`);
    // The host network setup, laid out as the target system's tree under network/, and its plan.
    const network = networkOutput(loaded.model);
    const netDir = join(opts.out, 'network');
    for (const f of network.files) {
      io.mkdir(dirname(join(netDir, f.path)));
      io.writeFile(join(netDir, f.path), f.text, f.mode);
    }
    io.writeFile(join(netDir, 'plan.json'), network.planJson);
    const rules = ruleset.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
    io.err(`wrote ruleset.json, ruleset.nft and origins.json to ${opts.out} (${rules} rules); load with: nft -j -f ${join(opts.out, 'ruleset.json')}`);
    io.err(`wrote the host network setup to ${netDir} (${network.files.length} files and plan.json)`);
    return EXIT.ok;
  }
  io.out(opts.format === 'nft' ? printRuleset(ruleset) : json);
  return EXIT.ok;
}
