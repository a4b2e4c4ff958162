// Compile a policy written inline in a test, failing loudly on errors.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { compilePolicyText } from '../../src/compile/pipeline.js';
import type { Chain, Rule, Ruleset } from '../../src/nft/ruleset.js';
import { printStmt } from '../../src/nft/print.js';
import { formatDiagnostic } from '../../src/policy/diagnostics.js';

/**
 * An example policy compiled as users compile it: once, or for a fleet (hosts:) once per host,
 * `name` then being "<file>.<host>" for the golden files.
 */
export function compileExample(file: string): { name: string; host?: string; result: ReturnType<typeof compilePolicyText> }[] {
  const text = readFileSync(`policies/${file}`, 'utf8');
  const base = basename(file, '.yaml');
  const whole = compilePolicyText(`policies/${file}`, text);
  if (!whole.fleet) return [{ name: base, result: whole }];
  return whole.fleet.hosts.map((host) => ({ name: `${base}.${host}`, host, result: compilePolicyText(`policies/${file}`, text, undefined, host) }));
}

export function compileYaml(yaml: string) {
  const r = compilePolicyText('test.yaml', yaml);
  if (!r.compiled) throw new Error(`policy has errors:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
  return { ...r, ruleset: r.compiled.ruleset, compiled: r.compiled, model: r.model! };
}

export function chain(ruleset: Ruleset, name: string): Chain {
  const c = ruleset.tables[0]!.chains.find((x) => x.name === name);
  if (!c) throw new Error(`no chain ${name}; chains: ${ruleset.tables[0]!.chains.map((x) => x.name).join(' ')}`);
  return c;
}

/** A rule as nft prints it, without the comment: what a reviewer reads. */
export function ruleText(r: Rule): string {
  return r.stmts.map(printStmt).join(' ');
}

export function chainText(ruleset: Ruleset, name: string): string[] {
  return chain(ruleset, name).rules.map(ruleText);
}

export function ruleCount(ruleset: Ruleset): number {
  return ruleset.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
}
