// Live state vs compiled state, as summaries both sides can produce: per chain its hook and
// the comments of its rules in order, per set or map its elements. Comments carry each rule's
// origin, so "the same comments in the same order" means "the rules guestwall wrote".
import { ruleComment, type Table } from './ruleset.js';

export interface TableSummary {
  chains: Map<string, { hook?: string; policy?: string; comments: string[] }>;
  sets: Map<string, string[]>;
}

export function summarizeTable(t: Table): TableSummary {
  return {
    chains: new Map(t.chains.map((c) => [c.name, { ...(c.base ? { hook: c.base.hook, policy: c.base.policy } : {}), comments: c.rules.map((r) => ruleComment(r.origin)) }])),
    sets: new Map(t.sets.map((s) => [s.name, s.kind === 'set' ? s.elements.map(elementKey) : s.elements.map(([k]) => elementKey(k))])),
  };
}

type Obj = Record<string, unknown>;

/** The same summary from `nft -j list` output, for one table. */
export function summarizeListing(listing: { nftables: Obj[] }, family: string, name: string): TableSummary | undefined {
  const mine = (o: Obj) => o.family === family && o.table === name;
  const items = listing.nftables;
  if (!items.some((i) => (i.table as Obj | undefined)?.family === family && (i.table as Obj | undefined)?.name === name)) return undefined;
  const chains: TableSummary['chains'] = new Map();
  const sets: TableSummary['sets'] = new Map();
  for (const item of items) {
    const c = item.chain as Obj | undefined;
    if (c && mine(c)) chains.set(String(c.name), { ...(c.hook ? { hook: String(c.hook), policy: String(c.policy) } : {}), comments: [] });
    const s = (item.set ?? item.map) as Obj | undefined;
    if (s && mine(s)) sets.set(String(s.name), ((s.elem as unknown[]) ?? []).map((e) => elementKey(Array.isArray(e) ? e[0] : e)));
  }
  for (const item of items) {
    const r = item.rule as Obj | undefined;
    if (r && mine(r)) chains.get(String(r.chain))?.comments.push(String(r.comment ?? ''));
  }
  return { chains, sets };
}

/** A set element as comparable text; nft lists map elements as [key, value] and wraps some in {elem}. */
function elementKey(e: unknown): string {
  const v = e !== null && typeof e === 'object' && 'elem' in (e as Obj) ? (e as { elem: { val: unknown } }).elem.val : e;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** What differs between what should be loaded and what is, one line each; empty when they agree. */
export function compareSummaries(expected: TableSummary, live: TableSummary | undefined, label: string): string[] {
  if (!live) return [`table ${label} is not loaded`];
  const out: string[] = [];
  for (const [name, c] of expected.chains) {
    const l = live.chains.get(name);
    if (!l) {
      out.push(`chain ${name} is missing`);
      continue;
    }
    if (c.hook !== l.hook || c.policy !== l.policy) out.push(`chain ${name} is hooked ${l.hook ?? 'nowhere'} policy ${l.policy ?? '-'}, expected ${c.hook ?? 'nowhere'} policy ${c.policy ?? '-'}`);
    if (c.comments.join('\n') !== l.comments.join('\n')) out.push(`chain ${name} has ${l.comments.length} rules, expected ${c.comments.length} (or in another order)`);
  }
  for (const name of live.chains.keys()) if (!expected.chains.has(name)) out.push(`chain ${name} is not guestwall's`);
  for (const [name, elems] of expected.sets) {
    const l = live.sets.get(name);
    if (!l) out.push(`set ${name} is missing`);
    else if (l.length !== elems.length) out.push(`set ${name} has ${l.length} elements, expected ${elems.length}`);
  }
  return out;
}
