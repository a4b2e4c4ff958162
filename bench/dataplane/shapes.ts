// The dataplane bench's policy and its reference shapes, shared by bench/dataplane.ts (the rates)
// and bench/dataplane-profile.ts (where the kernel's time goes, and what each part of the
// ruleset costs).
import { builtin } from '../../src/compile/origin.js';
import type { Ruleset } from '../../src/nft/ruleset.js';
import type { Policy } from '../../src/policy/schema.js';
import { scaledPolicy } from '../../tests/support/gen-policy.js';

export const UDP_PORT = 9000;
export const TCP_PORT = 5201;

/** The middle routed and the middle bridged guest of the DMZ: the two that receive traffic. */
function receiverNames(p: Policy): string[] {
  const dmz = Object.entries(p.guests ?? {}).filter(([, g]) => g.zone === 'dmz' || g.interfaces.some((i) => i.mode === 'bridged' && i.bridge === 'br-dmz'));
  const middle = (xs: [string, unknown][]) => xs[Math.floor((xs.length - 1) / 2)]?.[0];
  // Prefer a routed guest whose port guestwall's port-up hook configures (KVM, Xen) over LXC's own.
  const routedAll = dmz.filter(([, g]) => g.interfaces[0]!.mode === 'routed');
  const hooked = routedAll.filter(([, g]) => g.platform !== 'lxc');
  const routed = middle(hooked.length > 0 ? hooked : routedAll);
  const bridged = middle(dmz.filter(([, g]) => g.interfaces[0]!.mode === 'bridged'));
  if (routed === undefined || bridged === undefined) throw new Error('the bench policy needs a routed and a bridged guest in the DMZ (at least 10 guests)');
  return [routed, bridged];
}

export function benchPolicy(guests: number): { policy: Policy; receivers: string[] } {
  const policy = scaledPolicy(guests);
  const receivers = receiverNames(policy);
  policy.rules = [
    ...(policy.rules ?? []),
    { description: 'Benchmark: new flows from the internet', from: 'net', to: receivers, proto: 'udp', ports: UDP_PORT, action: 'accept' },
    { description: 'Benchmark: bulk TCP from the internet', from: 'net', to: receivers, proto: 'tcp', ports: TCP_PORT, action: 'accept' },
  ];
  return { policy, receivers };
}

/** Shape (b): connection tracking and nothing else, in a table of its own. */
export const CONNTRACK_ONLY: Ruleset = {
  tables: [{
    family: 'inet',
    name: 'gwbench',
    helpers: [],
    sets: [],
    chains: [{
      name: 'forward',
      base: { type: 'filter', hook: 'forward', prio: 0, policy: 'accept' },
      rules: [
        { stmts: [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }], origin: builtin('bench-ct', 'replies pass', 'bench') },
        { stmts: [{ accept: null }], origin: builtin('bench-accept', 'everything else passes', 'bench') },
      ],
    }],
  }],
};

/**
 * Shape (b'): (b) plus empty nat chains on prerouting and postrouting. Any ruleset that does port
 * forwards or masquerade has them, and they make the kernel set up a NAT binding for every new
 * connection: the floor for a NAT-ing stateful firewall, which guestwall's ruleset is.
 */
export const CONNTRACK_NAT: Ruleset = {
  tables: [{
    ...CONNTRACK_ONLY.tables[0]!,
    chains: [
      ...CONNTRACK_ONLY.tables[0]!.chains,
      { name: 'dstnat', base: { type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' }, rules: [] },
      { name: 'srcnat', base: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' }, rules: [] },
    ],
  }],
};

