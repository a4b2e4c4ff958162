// Ruleset IR -> nftables JSON (`nft -j -f`). One document replaces guestwall's own tables in one
// transaction: `add table` (so the delete cannot fail when the table is absent), `delete table`,
// then the whole table again. Nothing else in the kernel is touched; there is no `flush ruleset`.
import type { Ruleset, Table } from './ruleset.js';
import { ruleComment } from './ruleset.js';
import type { Command, NftablesDocument } from './types.js';

export function toNftJson(ruleset: Ruleset): NftablesDocument {
  const nftables: Command[] = [{ metainfo: { json_schema_version: 1 } }];
  for (const table of ruleset.tables) nftables.push(...replaceTable(table));
  return { nftables };
}

function replaceTable(t: Table): Command[] {
  const ref = { family: t.family, table: t.name };
  const cmds: Command[] = [
    { add: { table: { family: t.family, name: t.name } } },
    { delete: { table: { family: t.family, name: t.name } } },
    { add: { table: { family: t.family, name: t.name } } },
  ];
  for (const h of t.helpers) {
    cmds.push({ add: { 'ct helper': { ...ref, name: h.name, type: h.type, protocol: h.protocol, l3proto: 'inet' } } });
  }
  // Chains first: verdict-map elements may jump to them, and the kernel resolves jumps at once.
  // Chains and rules spell out family and table rather than spreading `ref`: there are tens of
  // thousands of them (a chain per guest port).
  for (const c of t.chains) {
    cmds.push({ add: { chain: { family: t.family, table: t.name, name: c.name, ...(c.base ?? {}) } } });
  }
  for (const s of t.sets) {
    const flags = s.flags && s.flags.length > 0 ? { flags: [...s.flags] } : {};
    if (s.kind === 'set') {
      cmds.push({ add: { set: { ...ref, name: s.name, type: s.type, ...flags, ...(s.elements.length ? { elem: s.elements } : {}) } } });
    } else {
      cmds.push({ add: { map: { ...ref, name: s.name, type: s.type, map: s.map, ...flags, ...(s.elements.length ? { elem: s.elements } : {}) } } });
    }
  }
  for (const c of t.chains) {
    for (const r of c.rules) {
      cmds.push({ add: { rule: { family: t.family, table: t.name, chain: c.name, expr: r.stmts, comment: ruleComment(r.origin) } } });
    }
  }
  return cmds;
}
