// `guestwall trace`'s side of nftables: the small table of its own that marks the packets to
// follow (`meta nftrace set 1`) for a while, and the reading of `nft monitor trace` lines. nft
// 1.0.6 prints trace events as text even with -j, one line per event, checked here:
//   trace id 9b61ede9 inet guestwall input packet: iif "v18a" ... tcp dport 22 ...
//   trace id 9b61ede9 inet guestwall input rule iifname vmap @zone_in comment "builtin:zone-in" (verdict jump from_x)
//   trace id 9b61ede9 inet guestwall input policy drop
import { jsonStmt } from './json.js';
import type { Command, Hook, NftablesDocument, Stmt } from './types.js';

/** The table guestwall trace loads and removes again; nothing else ever uses the name. */
export const TRACE_TABLE = { family: 'inet', name: 'guestwall_trace' } as const;

/** Before everything else (conntrack is -200, raw -300), so the mark is set before any table sees the packet. */
const TRACE_PRIORITY = -400;

/** One marking rule: packets that match `stmts` on `hook` are traced. */
export interface TraceSelector {
  hook: Extract<Hook, 'prerouting' | 'output'>;
  stmts: Stmt[];
}

/** The document that (re)creates the trace table with a rule per selector. */
export function traceTableDocument(selectors: TraceSelector[]): NftablesDocument {
  const t = TRACE_TABLE;
  const nftables: Command[] = [
    { metainfo: { json_schema_version: 1 } },
    { add: { table: { family: t.family, name: t.name } } },
    { delete: { table: { family: t.family, name: t.name } } },
    { add: { table: { family: t.family, name: t.name } } },
  ];
  for (const hook of ['prerouting', 'output'] as const) {
    nftables.push({ add: { chain: { family: t.family, table: t.name, name: hook, type: 'filter', hook, prio: TRACE_PRIORITY, policy: 'accept' } } });
  }
  for (const s of selectors) {
    nftables.push({ add: { rule: { family: t.family, table: t.name, chain: s.hook, expr: [...s.stmts, { mangle: { key: { meta: { key: 'nftrace' } }, value: 1 } } as const].map(jsonStmt), comment: 'guestwall trace' } } });
  }
  return { nftables };
}

/** The document that removes the trace table (and cannot fail when it is already gone). */
export function removeTraceDocument(): NftablesDocument {
  const t = { family: TRACE_TABLE.family, name: TRACE_TABLE.name };
  return { nftables: [{ metainfo: { json_schema_version: 1 } }, { add: { table: t } }, { delete: { table: t } }] };
}

/** One line of `nft monitor trace`. */
export interface TraceEvent {
  /** The packet's trace id: every event of one packet has the same. */
  id: string;
  family: string;
  table: string;
  chain: string;
  kind: 'packet' | 'rule' | 'policy' | 'other';
  /** The packet's fields, the rule (without its comment), the policy verdict, or the rest of the line. */
  text: string;
  /** The rule's verdict ("accept", "jump from_net", "continue") or the chain policy. */
  verdict?: string;
  /** The rule's comment: guestwall's origin of the rule. */
  comment?: string;
}

const LINE = /^trace id (\S+) (\S+) (\S+) (\S+) (.*?)\s*$/;
const RULE = /^rule (.*) \(verdict ([^)]*)\)$/;
const COMMENT = /^(.*?)\s*comment "((?:[^"\\]|\\.)*)"$/;

/** A line of `nft monitor trace`, or undefined for anything else (nft's other output, blank lines). */
export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const [, id, family, table, chain, rest] = m as unknown as [string, string, string, string, string, string];
  const base = { id, family, table, chain };
  if (rest.startsWith('packet: ')) return { ...base, kind: 'packet', text: rest.slice('packet: '.length) };
  const rule = RULE.exec(rest);
  if (rule) {
    const c = COMMENT.exec(rule[1]!);
    return { ...base, kind: 'rule', text: c ? c[1]! : rule[1]!, verdict: rule[2]!, ...(c ? { comment: c[2]!.replace(/\\(.)/g, '$1') } : {}) };
  }
  const policy = /^policy (\S+)$/.exec(rest);
  if (policy) return { ...base, kind: 'policy', text: policy[1]!, verdict: policy[1]! };
  return { ...base, kind: 'other', text: rest };
}

/** The few fields of a traced packet a person needs: where it came in, from, to, protocol and port. */
export function packetSummary(fields: string): string {
  const pick = (re: RegExp) => re.exec(fields)?.[1];
  const iif = pick(/\biif "([^"]+)"/);
  const oif = pick(/\boif "([^"]+)"/);
  const src = pick(/\bip6? saddr (\S+)/);
  const dst = pick(/\bip6? daddr (\S+)/);
  const proto = pick(/\b(?:ip protocol|ip6 nexthdr|meta l4proto) (\S+)/);
  const dport = pick(/\b(?:tcp|udp) dport (\d+)/);
  const icmp = pick(/\bicmp(?:v6)? type (\S+)/);
  return [
    proto ?? 'packet',
    src && dst ? `${src} -> ${dst}` : undefined,
    dport ? `port ${dport}` : icmp,
    iif ? `in on ${iif}` : undefined,
    oif ? `out on ${oif}` : undefined,
  ].filter(Boolean).join(' ');
}
