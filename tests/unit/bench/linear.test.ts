// The benchmark's linear reference shape must decide every packet as guestwall's map dispatch
// does, or its figures compare two different firewalls.
import { describe, expect, it } from 'vitest';
import { compareVerdicts, linearDispatch, samplePackets } from '../../../bench/linear.js';
import type { Ruleset } from '../../../src/nft/ruleset.js';
import { compileYaml, ruleText } from '../../support/compile.js';
import { policyYaml, scaledPolicy } from '../../support/gen-policy.js';

const scaled = compileYaml(policyYaml(scaledPolicy(40)));
const linear = linearDispatch(scaled.ruleset);
const allRules = (r: Ruleset) => r.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.map((x) => `${c.name}: ${ruleText(x)}`)));

describe('linear dispatch (benchmark reference shape)', () => {
  it('has no dispatch verdict-map lookups left (the conntrack state lookup stays), and one rule per former map element', () => {
    const rules = allRules(linear);
    expect(rules.filter((r) => r.includes('vmap') && !r.includes('ct state vmap @ct_state'))).toEqual([]);
    expect(linear.tables.flatMap((t) => t.sets.filter((s) => s.kind === 'map').map((s) => s.name))).toEqual(['ct_state']);
    // Each dispatch vmap rule becomes one rule per element of its map, in every table (the inet
    // dispatch and the bridge table's port dispatch alike; a map may serve more than one rule).
    const vmapRules = scaled.ruleset.tables.flatMap((t) => t.chains.flatMap((c) => c.rules.flatMap((r) => r.stmts.flatMap((st) => {
      if (typeof st !== 'object' || st === null || !('vmap' in st) || st.vmap.data.setRef === 'ct_state') return [];
      const map = t.sets.find((m) => m.name === st.vmap.data.setRef);
      return [map?.elements.length ?? 0];
    }))));
    expect(rules.length).toBe(allRules(scaled.ruleset).length - vmapRules.length + vmapRules.reduce((a, b) => a + b, 0));
    // A routed guest's interface is a rule of its own now, in the forward dispatch (to its source check first).
    expect(rules).toContain('forward: iifname "gw-vm4" goto from_dmz');
    expect(rules).toContain('from_net: oifname "gw-vm4" goto net_to_dmz');
  });

  it('decides sampled packets exactly as the verdict maps do', () => {
    const samples = samplePackets(scaled.model, 3000, 7);
    expect(new Set(samples.map((s) => s.hook)).size).toBe(5);
    expect(compareVerdicts(scaled.ruleset, linear, samples)).toEqual([]);
  });

  it('the comparison catches a dispatch that sends one interface to the wrong chain', () => {
    const broken = structuredClone(linear);
    const rule = broken.tables[0]!.chains.find((c) => c.name === 'from_net')!.rules.find((r) => ruleText(r) === 'oifname "gw-vm4" goto net_to_dmz')!;
    rule.stmts[rule.stmts.length - 1] = { goto: { target: 'net_to_lan' } };
    const samples = samplePackets(scaled.model, 3000, 7);
    const found = compareVerdicts(scaled.ruleset, broken, samples);
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((d) => d.sample.packet.oifname === 'gw-vm4')).toBe(true);
  });
});
