// A policy the schema refused is still checked for the rest of its mistakes: what the schema
// refused is left out, without renumbering what stays.
import { describe, expect, it } from 'vitest';
import { checkPolicy } from '../../../src/policy/checks.js';
import { salvage } from '../../../src/policy/salvage.js';
import { Policy } from '../../../src/policy/schema.js';

function salvaged(data: unknown) {
  const parsed = Policy.safeParse(data);
  if (parsed.success) throw new Error('expected the schema to refuse this');
  return salvage(data, parsed.error.issues);
}

const base = {
  version: 1,
  zones: { net: {}, lan: { networks: ['192.168.1.0/24'] } },
  bridges: { 'br-lan': { zone: 'lan' } },
};

describe('salvage', () => {
  it('drops unknown keys and keeps the entry', () => {
    const r = salvaged({ ...base, zones: { ...base.zones, dmz: { networks: ['10.0.10.0/24'], descriptoin: 'x' } } });
    expect(r?.policy.zones.dmz).toEqual({ networks: ['10.0.10.0/24'] });
  });

  it('leaves a refused list item out as a hole, so later items keep their numbers', () => {
    const r = salvaged({ ...base, rules: [
      { from: 'lan', to: 'net', action: 'allow' },
      { from: 'lan', to: 'nett', action: 'accept' },
    ] });
    expect(r?.policy.rules).toHaveLength(2);
    expect(0 in r!.policy.rules!).toBe(false);
    const findings = checkPolicy(r!.policy, r!.known);
    expect(findings.map((f) => [f.kind, f.path])).toEqual([['unknown-endpoint', ['rules', 1, 'to']]]);
  });

  it('leaves a refused named entry out but keeps its name known, so references to it stay quiet', () => {
    const r = salvaged({ ...base, zones: { ...base.zones, dmz: { networks: '10.0.10.0/24' } }, bridges: { 'br-dmz': { zone: 'dmz' } } });
    expect(r?.policy.zones.dmz).toBeUndefined();
    expect(r?.known.zones.has('dmz')).toBe(true);
    expect(checkPolicy(r!.policy, r!.known)).toEqual([]);
  });

  it('gives up when the problem is the policy as a whole', () => {
    expect(salvaged({ version: 2, zones: {} })).toBeUndefined();
    expect(salvaged({ version: 1 })).toBeUndefined();
    expect(salvaged([])).toBeUndefined();
  });
});
