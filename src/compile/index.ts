// HostModel -> ruleset IR. guestwall owns its tables, `inet guestwall`, `bridge guestwall` and
// `arp guestwall`, and replaces all of them in one transaction, every time, even when one is
// empty (so a table the policy no longer needs disappears in the same transaction). Nothing
// else in the kernel's ruleset is touched.
import { setRef } from '../nft/types.js';
import type { HostModel } from '../model/host.js';
import type { Chain, Ruleset, Table } from '../nft/ruleset.js';
import { type Finding, warning } from '../policy/diagnostics.js';
import { antiSpoof, antiSpoofFindings, guestPorts } from './antispoof.js';
import { bridgeTable } from './bridge.js';
import { checkHooks } from './hooks.js';
import { ROUTED_GUESTS_SET, dispatch } from './dispatch.js';
import type { KernelFeatures } from './features.js';
import { match, meta } from './matches.js';
import { firstRules, helpers, nat } from './nat.js';
import { placed } from './origin.js';
import { shadowFindings } from './shadow.js';
import { pairChains } from './zones.js';

export const TABLE = 'guestwall';

/** Routed guests' sources are checked before anything else sees them (after conntrack's defrag). */
const ROUTED_ANTISPOOF_PRIO = -150;

export interface Compiled {
  ruleset: Ruleset;
  /** Warnings about what the policy means, found while compiling (shadowed rules, hairpin). */
  findings: Finding[];
}

/** Compile for a kernel with exactly `features`: nothing in the result needs more. */
export function compile(model: HostModel, features: KernelFeatures): Compiled {
  const h = helpers(model);
  const n = nat(model, h);
  const d = dispatch(model, h.first);
  const pairs = pairChains(model, firstRules(h.first, n.forwardAccepts));
  const { bridged, routed } = guestPorts(model);
  // Without routed guests there is nothing to check there: the arp table stays empty.
  const none = { sets: [], rules: [], chains: [] };
  const routedSpoof = routed.length > 0 ? antiSpoof(routed, 'inet', model.file, model.sections?.guests) : none;
  const routedArp = routed.length > 0 ? antiSpoof(routed, 'arp', model.file, model.sections?.guests) : none;
  const antispoofChain: Chain = {
    name: 'antispoof',
    base: { type: 'filter', hook: 'prerouting', prio: ROUTED_ANTISPOOF_PRIO, policy: 'accept' },
    // Every arriving packet meets this chain; only those from a routed guest port have anything to check.
    rules: [
      { stmts: [match(meta('iifname'), setRef(ROUTED_GUESTS_SET), '!='), { return: null }], origin: placed(model.sections?.guests, 'antispoof-gate', 'only packets from routed guest ports are checked here', model.file) },
      ...routedSpoof.rules,
    ],
  };
  const bridge = bridgeTable(model, bridged, TABLE, features);
  const inet: Table = {
    family: 'inet',
    name: TABLE,
    helpers: h.objects,
    sets: [...d.sets, ...routedSpoof.sets, ...n.sets],
    // After dstnat: the hairpin mark the bridge table reads when it has no conntrack (bridge.ts).
    chains: [...d.chains, ...(routed.length > 0 ? [antispoofChain, ...routedSpoof.chains] : []), ...pairs.chains, n.dstnat, ...bridge.inetChains, n.srcnat, ...n.chains],
  };
  const arp: Table = {
    family: 'arp',
    name: TABLE,
    helpers: [],
    sets: routedArp.sets,
    chains: routed.length > 0 ? [{ name: 'input', base: { type: 'filter', hook: 'input', prio: 0, policy: 'accept' }, rules: routedArp.rules }] : [],
  };
  const ruleset: Ruleset = { tables: [inet, bridge.table, arp] };
  // Bugs in the compiler if they throw: users cannot cause them.
  checkHooks(ruleset, features);
  for (const t of ruleset.tables) {
    // A set, not indexOf: a table has a chain per guest port (the ND target chains).
    const names = new Set<string>();
    for (const c of t.chains) {
      if (names.has(c.name)) throw new Error(`compiler bug: chain ${t.family} ${c.name} is written twice; nft would merge the two silently`);
      names.add(c.name);
    }
  }

  const unusedPolicies: Finding[] = model.policies
    .filter((p) => !pairs.usedPolicies.has(p.index))
    .map((p) => warning('shadowed-rule', p.src.path, `policy ${p.index + 1} never applies: earlier policies decide every pair it names`,
      'policies are tried in order; put the more specific one first'));
  return {
    ruleset,
    findings: [
      ...n.findings, ...shadowFindings(pairs.chains), ...unusedPolicies, ...bridge.findings,
      ...antiSpoofFindings([...bridged, ...routed]),
    ],
  };
}
