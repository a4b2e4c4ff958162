// Shadowed rules: a rule that can never match because an earlier rule in the same chain
// matches everything it would and decides first. Judged on the compiled rules, which is where
// "earlier" and "everything it would" are exact.
import type { Chain, Origin, Rule } from '../nft/ruleset.js';
import type { Expr, Stmt } from '../nft/types.js';
import { type Finding, warning } from '../policy/diagnostics.js';

const TERMINAL = ['accept', 'drop', 'reject', 'goto', 'jump'];

function decides(r: Rule): boolean {
  return r.stmts.some((s) => TERMINAL.some((k) => k in s)) && !r.stmts.some((s) => 'limit' in s);
}

type Match = { op: string; left: Expr; right: Expr };
const matches = (r: Rule): Match[] => r.stmts.flatMap((s: Stmt) => ('match' in s ? [s.match] : []));

function values(e: Expr): string[] {
  if (e !== null && typeof e === 'object' && !Array.isArray(e) && 'set' in e) return e.set.map((v) => JSON.stringify(v));
  return [JSON.stringify(e)];
}

/** `tcp dport 22` holds only for TCP: a match on a protocol's header implies `meta l4proto` of it. */
function impliedProtocol(a: Match, bs: Match[]): boolean {
  const l = a.left;
  if (a.op !== '==' || typeof l !== 'object' || l === null || Array.isArray(l) || !('meta' in l) || l.meta.key !== 'l4proto') return false;
  const proto = a.right === 'ipv6-icmp' ? 'icmpv6' : a.right;
  return bs.some((b) => typeof b.left === 'object' && b.left !== null && !Array.isArray(b.left) && 'payload' in b.left && 'protocol' in b.left.payload && b.left.payload.protocol === proto);
}

/** Does `a` hold wherever `b` holds? True when b's condition on the same field is narrower. */
function implied(a: Match, bs: Match[]): boolean {
  if (impliedProtocol(a, bs)) return true;
  const left = JSON.stringify(a.left);
  return bs.some((b) => {
    if (JSON.stringify(b.left) !== left || b.op !== a.op) return false;
    if (a.op !== '==') return JSON.stringify(a.right) === JSON.stringify(b.right);
    const av = new Set(values(a.right));
    return values(b.right).every((v) => av.has(v));
  });
}

/** Does `earlier` match every packet `later` matches? */
export function covers(earlier: Rule, later: Rule): boolean {
  const bs = matches(later);
  return decides(earlier) && matches(earlier).every((a) => implied(a, bs));
}

/** Chains longer than this are not searched for shadowed rules. */
export const MAX_RULES_COMPARED = 2000;

/** Report each policy rule all of whose compiled rules are covered by earlier ones. */
export function shadowFindings(chains: Chain[]): Finding[] {
  const status = new Map<string, { origin: Origin; shadowed: boolean; by?: Origin }>();
  for (const c of chains) {
    // Pairwise comparison is quadratic; a chain this long is generated, not written, and its
    // author does not need shadowing warnings from us.
    if (c.rules.length > MAX_RULES_COMPARED) continue;
    c.rules.forEach((r, i) => {
      if (!r.origin.path || r.origin.id.startsWith('builtin:')) return;
      const by = c.rules.slice(0, i).find((e) => e.origin.id !== r.origin.id && covers(e, r));
      const prev = status.get(r.origin.id);
      const shadowed = by !== undefined && (prev?.shadowed ?? true);
      status.set(r.origin.id, { origin: r.origin, shadowed, ...(by ? { by: by.origin } : prev?.by ? { by: prev.by } : {}) });
    });
  }
  const out: Finding[] = [];
  for (const { origin, shadowed, by } of status.values()) {
    if (!shadowed || !by || !origin.path) continue;
    const f = warning('shadowed-rule', origin.path, `${origin.what.split(':')[0]} never matches: ${by.what.split(':')[0]} decides every packet it would`,
      'move it before the earlier rule, narrow the earlier rule, or remove this one');
    out.push(by.path ? { ...f, related: [{ path: by.path, message: 'the earlier rule' }] } : f);
  }
  return out;
}
