// The ruleset IR: tables, chains, rules, sets and maps as plain data, each rule tagged with the
// place in the policy that wrote it. compile/ produces it; json.ts and print.ts emit it;
// explain/ evaluates it. Origins are opaque here: this module knows nothing about zones.
import type { BaseChainSpec, Family, SetElement, Stmt, Value, Verdict } from './types.js';

/** Where a rule comes from: a short stable id plus its place in the policy file. */
export interface Origin {
  /** Stable, short: e.g. `rules[3]`, `forwards[0]`, `policies[2]`, `builtin:ct-state`. */
  id: string;
  file: string;
  line: number;
  col: number;
  /** One line for humans: "rule 3: lan -> host ssh accept". */
  what: string;
  /** The policy document path, for tools that point back into the YAML. */
  path?: readonly (string | number)[];
}

export interface Rule {
  stmts: Stmt[];
  origin: Origin;
}

export interface Chain {
  name: string;
  /** Present for base chains (hooked into the kernel); absent for regular chains. */
  base?: BaseChainSpec;
  rules: Rule[];
}

export interface NamedSet {
  kind: 'set';
  name: string;
  /** One type, or several for a concatenation (`["ifname", "ipv4_addr"]`). */
  type: string | string[];
  flags?: ('interval' | 'constant')[];
  elements: SetElement[];
  /** Where each element comes from, by index, when elements stand for policy entries (never emitted). */
  origins?: Origin[];
}

export interface NamedMap {
  kind: 'map';
  name: string;
  type: string | string[];
  map: 'verdict';
  flags?: ('interval' | 'constant')[];
  elements: [SetElement, Verdict][];
}

/** A map to data (an address, a port) rather than to verdicts: what `dnat ... map @name` reads. */
export interface NamedDataMap {
  kind: 'datamap';
  name: string;
  type: string | string[];
  map: 'ipv4_addr' | 'inet_service';
  flags?: ('interval' | 'constant')[];
  elements: [SetElement, Value][];
  /** Where each element comes from, by index (never emitted): explain names it. */
  origins?: Origin[];
}

export interface CtHelper {
  name: string;
  /** The kernel helper's name: "sip", "ftp". */
  type: string;
  protocol: 'tcp' | 'udp';
}

export interface Table {
  family: Family;
  name: string;
  helpers: CtHelper[];
  sets: (NamedSet | NamedMap | NamedDataMap)[];
  chains: Chain[];
}

export interface Ruleset {
  tables: Table[];
}

/** The kernel keeps at most 256 bytes of user data per rule; stay well inside it. */
export const COMMENT_MAX_BYTES = 120;

/** The rule comment the kernel stores: short, printable, and quotable in nft syntax. */
export function ruleComment(origin: Origin): string {
  // Built-in rules (line 0) have no place in the file: their id is the whole comment.
  if (origin.line <= 0) return truncateBytes(origin.id, COMMENT_MAX_BYTES);
  const base = (origin.file.split('/').pop() ?? origin.file).replace(/["\\\p{Cc}]/gu, '_');
  return truncateBytes(`${base}:${origin.line} ${origin.id}`, COMMENT_MAX_BYTES);
}

/** Cut a string to at most `max` UTF-8 bytes without splitting a character. */
export function truncateBytes(s: string, max: number): string {
  // A UTF-16 code unit is at most 3 bytes in UTF-8: short strings need no counting.
  if (s.length * 3 <= max || Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = '';
  let bytes = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > max) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/** Rule comment -> the full origin, for tools that explain a live rule (the kernel keeps only the comment). */
export function originMap(ruleset: Ruleset): Record<string, { file: string; line: number; col: number; what: string }> {
  const map: Record<string, { file: string; line: number; col: number; what: string }> = {};
  for (const t of ruleset.tables) {
    for (const c of t.chains) {
      for (const r of c.rules) map[ruleComment(r.origin)] = { file: r.origin.file, line: r.origin.line, col: r.origin.col, what: r.origin.what };
    }
    // Policy entries that are set or map elements (port forwards) have no rule of their own.
    for (const s of t.sets) {
      for (const o of ('origins' in s ? s.origins : undefined) ?? []) map[ruleComment(o)] ??= { file: o.file, line: o.line, col: o.col, what: o.what };
    }
  }
  return map;
}
