// Ruleset IR -> nftables JSON (`nft -j -f`). One document replaces guestwall's own tables in one
// transaction: `add table` (so the delete cannot fail when the table is absent), `delete table`,
// then the whole table again. Nothing else in the kernel is touched; there is no `flush ruleset`.
import type { Ruleset, Table } from './ruleset.js';
import { ruleComment } from './ruleset.js';
import { type Command, type Expr, type JsonValue, type MapLookup, type NftablesDocument, type SetElement, type Stmt, type StmtKind, isSetRef } from './types.js';

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
      cmds.push({ add: { rule: { family: t.family, table: t.name, chain: c.name, expr: r.stmts.map(jsonStmt), comment: ruleComment(r.origin) } } });
    }
  }
  return cmds;
}

/** A compiler bug: the IR holds something nft's JSON cannot say as meant. */
function bug(what: string, x: unknown): Error {
  return new Error(`compiler bug: ${what}: ${JSON.stringify(x)}`);
}

/**
 * One statement as nft's JSON spells it. Set references become "@name"; a literal string that
 * nft would read as a reference (a leading '@') is a bug, since check refuses such names. The
 * switch covers every statement kind, so a new kind fails the build here until it is handled.
 */
export function jsonStmt(s: Stmt): JsonValue {
  const kind = Object.keys(s)[0] as StmtKind;
  switch (kind) {
    case 'match': {
      const m = (s as Extract<Stmt, { match: unknown }>).match;
      return { match: { op: m.op, left: jsonExpr(m.left), right: jsonExpr(m.right) } };
    }
    case 'vmap': {
      const v = (s as Extract<Stmt, { vmap: unknown }>).vmap;
      return { vmap: { key: jsonExpr(v.key), data: `@${v.data.setRef}` } };
    }
    case 'dnat': {
      // Address and port may be looked up in named maps: `<key> map @name`.
      const d = (s as Extract<Stmt, { dnat: unknown }>).dnat;
      const lookup = (x: unknown) => (typeof x === 'object' && x !== null && 'map' in x
        ? { map: { key: jsonExpr((x as MapLookup).map.key), data: `@${(x as MapLookup).map.data.setRef}` } }
        : (x as JsonValue));
      return { dnat: { family: d.family, addr: lookup(d.addr), ...(d.port !== undefined ? { port: lookup(d.port) } : {}) } };
    }
    case 'counter':
    case 'log':
    case 'limit':
    case 'accept':
    case 'drop':
    case 'return':
    case 'jump':
    case 'goto':
    case 'reject':
    case 'snat':
    case 'masquerade':
    case 'mangle':
      // No expression inside: the IR value is the JSON. Strings here (log prefixes, chain
      // names, addresses) are not read as references by nft.
      return s as JsonValue;
    case 'ct helper': {
      const h = (s as Extract<Stmt, { 'ct helper': unknown }>)['ct helper'];
      if (typeof h === 'string') return s as JsonValue;
      return { 'ct helper': { map: { key: jsonExpr(h.map.key), data: { set: h.map.data.set.map(([k, v]) => [jsonElement(k), literal(v)]) } } } };
    }
    default:
      throw bug('unknown statement', kind satisfies never);
  }
}

function jsonExpr(e: Expr): JsonValue {
  if (isSetRef(e)) return `@${e.setRef}`;
  if (typeof e === 'string') return literal(e);
  if (typeof e !== 'object' || Array.isArray(e)) return e;
  if ('set' in e) return { set: e.set.map(jsonElement) };
  if ('concat' in e) return { concat: e.concat.map(jsonExpr) };
  if ('range' in e) return { range: [jsonElement(e.range[0]), jsonElement(e.range[1])] };
  return e as JsonValue;
}

function jsonElement(e: SetElement): JsonValue {
  if (typeof e === 'string') return literal(e);
  if (typeof e === 'object' && 'concat' in e) return { concat: e.concat.map(jsonElement) };
  return e as JsonValue;
}

function literal(s: string): string {
  if (s.startsWith('@')) throw bug('a literal string nft would read as a set reference', s);
  return s;
}
