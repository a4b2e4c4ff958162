// guestwall compile FILE: the ruleset as nftables JSON (default) or nft syntax, to stdout or --out DIR.
import { join } from 'node:path';
import { toNftJson } from '../nft/json.js';
import { printRuleset } from '../nft/print.js';
import { originMap } from '../nft/ruleset.js';
import { type System, realSystem } from '../apply/system.js';
import { EXIT, type Io } from './io.js';
import { type FeatureChoice, compiledPolicy, kernelFeaturesFor } from './policy-file.js';

export interface CompileOptions {
  format: 'json' | 'nft';
  out?: string;
  /** Default auto: what this host's kernel can load. */
  kernelFeatures?: FeatureChoice;
}

export async function compileCommand(io: Io, file: string, opts: CompileOptions, sys: System = realSystem()): Promise<number> {
  const features = await kernelFeaturesFor(io, opts.kernelFeatures ?? 'auto', sys);
  const loaded = compiledPolicy(io, file, 'nothing compiled', true, features);
  if ('exit' in loaded) return loaded.exit;
  const ruleset = loaded.ruleset;
  const json = `${JSON.stringify(toNftJson(ruleset), null, 1)}\n`;
  if (opts.out !== undefined) {
    io.mkdir(opts.out);
    io.writeFile(join(opts.out, 'ruleset.json'), json);
    io.writeFile(join(opts.out, 'ruleset.nft'), printRuleset(ruleset));
    io.writeFile(join(opts.out, 'origins.json'), `${JSON.stringify(originMap(ruleset), null, 1)}\n`);
    const rules = ruleset.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
    io.err(`wrote ruleset.json, ruleset.nft and origins.json to ${opts.out} (${rules} rules); load with: nft -j -f ${join(opts.out, 'ruleset.json')}`);
    return EXIT.ok;
  }
  io.out(opts.format === 'nft' ? printRuleset(ruleset) : json);
  return EXIT.ok;
}
