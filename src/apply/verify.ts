// Verification after a load: are the live tables the compiled ruleset? Each chain with its hook
// and policy, its rules by their origin comments in order, each set and map by its element
// count (src/nft/listing.ts). One `nft -j list ruleset` for all of guestwall's tables; an
// incremental apply that touched only some sets lists just those.
import { compareSummaries, summarizeListing, summarizeTable } from '../nft/listing.js';
import type { Ruleset } from '../nft/ruleset.js';
import { type NftListing, listTables, nftMessage } from './nft.js';
import type { System } from './system.js';

/** What differs between the live tables and the ruleset, one line each; empty when they agree. */
export async function liveDifferences(sys: System, ruleset: Ruleset): Promise<string[]> {
  const listing = await listTables(sys, ruleset.tables.map((t) => ({ family: t.family, name: t.name })));
  return ruleset.tables.flatMap((t) => compareSummaries(summarizeTable(t), summarizeListing(listing, t.family, t.name), `${t.family} ${t.name}`));
}

/** A named set or map of the ruleset. */
export interface SetRef {
  family: Ruleset['tables'][number]['family'];
  table: string;
  name: string;
}

/**
 * What differs in only these sets and maps (after a transaction that changed only their
 * elements): each listed by itself, side by side (nft 1.0.6 cannot list several in one run).
 */
export async function setDifferences(sys: System, ruleset: Ruleset, sets: SetRef[]): Promise<string[]> {
  const out: string[] = [];
  await Promise.all(sets.map(async (ref) => {
    const table = ruleset.tables.find((t) => t.family === ref.family && t.name === ref.table);
    const set = table?.sets.find((s) => s.name === ref.name);
    if (!table || !set) throw new Error(`${ref.family} ${ref.table} ${ref.name} is not a set of the ruleset`); // a caller's bug
    const r = await sys.run('nft', ['-j', 'list', set.kind === 'set' ? 'set' : 'map', ref.family, ref.table, ref.name]);
    if (r.code !== 0) {
      out.push(`${set.kind} ${ref.name} cannot be listed: ${nftMessage(r)}`);
      return;
    }
    const listing = JSON.parse(r.stdout) as NftListing;
    // The listing holds the set alone: summarize it against a table that has only this set.
    const expected = summarizeTable({ ...table, chains: [], sets: [set] });
    const live = summarizeListing({ nftables: [{ table: { family: ref.family, name: ref.table } }, ...listing.nftables] }, ref.family, ref.table);
    out.push(...compareSummaries(expected, live, `${ref.family} ${ref.table}`));
  }));
  return out.sort();
}
