import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { formatDiagnostic } from '../../../src/policy/diagnostics.js';
import { policyArb, policyYaml, scaledPolicy } from '../../support/gen-policy.js';

/** Compiles a generated policy; fails with the YAML and its errors so a shrunk case reads at once. */
function compileOrExplain(yaml: string) {
  const r = compilePolicyText('generated.yaml', yaml);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0 || !r.compiled) {
    throw new Error(`the validator refuses a generated policy:\n${errors.map(formatDiagnostic).join('\n')}\n--- generated.yaml ---\n${yaml}`);
  }
  return r;
}

describe('generated policies are valid', () => {
  it('200 policies from policyArb pass the validator and compile', () => {
    fc.assert(
      fc.property(policyArb, (p) => {
        compileOrExplain(policyYaml(p));
      }),
      { numRuns: 200, seed: 20240601 },
    );
  });

  it('policyArb covers the language: guests of every kind, forwards, NAT and helpers all occur', () => {
    const seen = new Set<string>();
    for (const p of fc.sample(policyArb, { numRuns: 200, seed: 7 })) {
      for (const g of Object.values(p.guests ?? {})) {
        seen.add(g.platform);
        for (const i of g.interfaces) seen.add(i.mode);
      }
      if (p.forwards?.length) seen.add('forwards');
      if (p.nat?.masquerade?.length) seen.add('masquerade');
      if (p.nat?.snat?.length) seen.add('snat');
      if (p.helpers?.length) seen.add('helpers');
      if (p.rules?.some((r) => r.limit !== undefined)) seen.add('limit');
      if (p.rules?.some((r) => r.log !== undefined)) seen.add('log');
      if (Object.keys(p.zones).length === 5) seen.add('5 zones');
    }
    expect([...seen].sort()).toEqual(
      ['5 zones', 'bridged', 'forwards', 'helpers', 'kvm', 'limit', 'log', 'lxc', 'masquerade', 'routed', 'snat', 'xen'].sort(),
    );
  });
});

describe('scaledPolicy builds large realistic policies for benchmarks', () => {
  it.each([0, 1, 5, 40, 500])('%i guests: valid, deterministic, and only the guests grow', (n) => {
    const p = scaledPolicy(n);
    expect(policyYaml(scaledPolicy(n))).toBe(policyYaml(p));
    expect(Object.keys(p.guests ?? {})).toHaveLength(n);
    const guests = Object.values(p.guests ?? {});
    expect(guests.filter((g) => g.interfaces[0]!.mode === 'routed')).toHaveLength(Math.floor((n + 1) / 5));
    if (n >= 5) {
      expect([p.policies?.length, p.rules?.length, p.forwards?.length]).toEqual([6, 10, 4]);
    }
    compileOrExplain(policyYaml(p));
  });
});
