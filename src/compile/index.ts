// HostModel -> ruleset IR. guestwall owns one table, `inet guestwall`, and replaces it whole in
// one transaction; nothing else in the kernel's ruleset is touched.
import type { HostModel } from '../model/host.js';
import type { Ruleset, Table } from '../nft/ruleset.js';
import { type Finding, warning } from '../policy/diagnostics.js';
import { checkHooks } from './hooks.js';
import { dispatch } from './dispatch.js';
import { helpers, nat } from './nat.js';
import { shadowFindings } from './shadow.js';
import { pairChains, pairPolicy } from './zones.js';

export const TABLE = 'guestwall';

export interface Compiled {
  ruleset: Ruleset;
  /** Warnings about what the policy means, found while compiling (shadowed rules, hairpin). */
  findings: Finding[];
}

export function compile(model: HostModel): Compiled {
  const n = nat(model);
  const d = dispatch(model);
  const pairs = pairChains(model, n.forwardAccepts);
  const h = helpers(model);
  const table: Table = {
    family: 'inet',
    name: TABLE,
    helpers: h.objects,
    sets: d.sets,
    chains: [...d.chains, ...pairs.chains, n.dstnat, n.srcnat, ...n.chains, ...(h.chain ? [h.chain] : [])],
  };
  const ruleset: Ruleset = { tables: [table] };
  // Bugs in the compiler if they throw: users cannot cause them.
  checkHooks(ruleset);
  const names = table.chains.map((c) => c.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new Error(`compiler bug: chain ${dup} is written twice; nft would merge the two silently`);

  const unusedPolicies: Finding[] = model.policies
    .filter((p) => !pairs.usedPolicies.has(p.index))
    .map((p) => warning('shadowed-rule', p.src.path, `policy ${p.index + 1} never applies: earlier policies decide every pair it names`,
      'policies are tried in order; put the more specific one first'));
  return { ruleset, findings: [...n.findings, ...shadowFindings(pairs.chains), ...unusedPolicies, ...bridgedUnfiltered(model)] };
}

/**
 * Guests on one bridge talk to each other without passing the inet forward hook, so a zone's
 * own policy cannot hold between them yet (bridge-family filtering is the next step). Say so
 * rather than let a `dmz -> dmz reject` look enforced.
 */
function bridgedUnfiltered(model: HostModel): Finding[] {
  return model.bridges.flatMap((b) => {
    const guests = model.guests.filter((g) => g.interfaces.some((i) => i.mode === 'bridged' && i.bridge === b.name));
    const pol = pairPolicy(model, b.zone, b.zone);
    if (guests.length < 2 || pol?.action === 'accept') return [];
    return [{ ...warning('bridged-unfiltered', b.src.path,
      `guests ${guests.map((g) => `'${g.name}'`).join(', ')} share bridge '${b.name}': traffic between them is bridged, not routed, so the ${b.zone} -> ${b.zone} policy does not filter it yet`,
      'put guests that must be isolated on separate bridges or routed interfaces until bridge-family filtering is supported'), atKey: true }];
  });
}
