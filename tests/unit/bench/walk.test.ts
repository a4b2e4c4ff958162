// The rules a new flow walks, counted with explain (bench/dataplane/walk.ts): what the compiler's
// gates save, and that the count does not grow with the number of guests.
import { describe, expect, it } from 'vitest';
import { newFlowWalk } from '../../../bench/dataplane/walk.js';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import type { Packet } from '../../../src/explain/evaluate.js';
import { policyYaml, scaledPolicy } from '../../support/gen-policy.js';

function walkAt(guests: number) {
  const p = scaledPolicy(guests);
  p.rules = [...(p.rules ?? []), { from: 'net', to: 'vm4', proto: 'udp', ports: 9000, action: 'accept' }];
  const c = compilePolicyText('bench.yaml', policyYaml(p));
  const vm4 = c.model!.guests.find((g) => g.name === 'vm4')!.interfaces[0]!;
  const packet: Packet = { family: 4, iifname: 'eth0', oifname: vm4.name, saddr: '198.18.0.1', daddr: vm4.addresses[0]!.addr, proto: 'udp', sport: 40000, dport: 9000, ct: { state: 'new' } };
  return newFlowWalk(c.compiled!.ruleset, packet);
}

describe('rules a new flow walks', () => {
  it('passes dstnat and srcnat in one rule per lookup or group when nothing translates it, and the forward accepts in one rule per family', () => {
    // prerouting: the dstnat gate on the forwarded and helper ports (the SIP helper's lookup
    // sits behind it), the routed anti-spoofing gate, the hairpin mark (no bridge conntrack, and
    // hairpin forwards to bridged guests); forward: conntrack's state lookup, the source zone's
    // map, the destination zone's map, the DNATed-tuple and IPv6 lookups, the scanner drop,
    // the accept; postrouting: the output interface's lookup, then (the receiver is a forward's
    // target) the hairpin lookup.
    expect(walkAt(10)).toEqual({ prerouting: 3, forward: 7, postrouting: 2, total: 12 });
  });

  it('walks as many rules at 1,000 guests as at 10', () => {
    expect(walkAt(1000)).toEqual(walkAt(10));
  });
});
