// The typed nftables vocabulary: the subset of libnftables-json(5) that guestwall emits.
// Every shape here is exactly what `nft -j -f` reads (nft 1.0.6 and later), so emitting JSON
// is a walk over these values; the printer in print.ts turns the same values into nft syntax.
// This module knows nothing about zones or guests.

export type Family = 'inet' | 'ip' | 'ip6' | 'bridge' | 'netdev' | 'arp';
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting' | 'ingress';
export type ChainType = 'filter' | 'nat' | 'route';

/** A value on the right-hand side of a match, or an element of a set. A string is always a literal. */
export type Value = string | number | boolean;

/**
 * A named set or map (`@name` in nft). A type of its own: nft's JSON spells a reference as a
 * string starting with '@', so json.ts writes it so and refuses a literal string that would read
 * as one; nothing else ever sees the '@'.
 */
export interface SetRef {
  setRef: string;
}
export const setRef = (name: string): SetRef => ({ setRef: name });
export function isSetRef(e: unknown): e is SetRef {
  return typeof e === 'object' && e !== null && !Array.isArray(e) && typeof (e as { setRef?: unknown }).setRef === 'string';
}

export type Expr =
  | Value
  | SetRef
  | { payload: { protocol: string; field: string } }
  /** Raw payload bits: `@th,64,128` (for fields nft 1.0.6 has no name for, e.g. the ND target address). */
  | { payload: { base: 'll' | 'nh' | 'th'; offset: number; len: number } }
  /** Bitwise and: `tcp flags & (syn | ack)` with a flag list, or `meta mark & 0x10000000` with a number. */
  | { '&': [Expr, string[] | number] }
  | { meta: { key: MetaKey } }
  | { ct: { key: string; dir?: 'original' | 'reply' } }
  | { fib: { result: 'oif' | 'oifname' | 'type'; flags: FibFlag[] } }
  | { concat: Expr[] }
  | { prefix: { addr: string; len: number } }
  | { range: [Value, Value] }
  | { set: SetElement[] }
  /** A flag list, as in `ct state { established, related }` with op "in". */
  | string[];

export type MetaKey =
  | 'iifname'
  | 'oifname'
  | 'iif'
  | 'oif'
  | 'l4proto'
  | 'nfproto'
  | 'ibrname'
  | 'obrname'
  | 'mark'
  | 'pkttype';

export type FibFlag = 'saddr' | 'daddr' | 'mark' | 'iif' | 'oif';

/** An element of an anonymous or named set: a value, a prefix, a range or a concatenation. */
export type SetElement =
  | Value
  | { prefix: { addr: string; len: number } }
  | { range: [Value, Value] }
  | { concat: SetElement[] };

export type MatchOp = '==' | '!=' | '<' | '>' | '<=' | '>=' | 'in';

export type Verdict =
  | { accept: null }
  | { drop: null }
  | { return: null }
  | { jump: { target: string } }
  | { goto: { target: string } };

export type RejectStmt = {
  reject: { type: 'icmpx' | 'icmp' | 'icmpv6' | 'tcp reset'; expr?: string } | null;
};

export type NatAddrFamily = 'ip' | 'ip6';

/** A conntrack helper chosen by a key read from the packet: `ct helper set meta l4proto . th dport map { udp . 5060 : "sip_udp" }`. */
export type CtHelperMap = { map: { key: Expr; data: { set: [SetElement, string][] } } };

/** A value looked up in a named data map by a key read from the packet: `<key> map @name`. */
export type MapLookup = { map: { key: Expr; data: SetRef } };

export type Stmt =
  | { match: { op: MatchOp; left: Expr; right: Expr } }
  | { counter: null }
  | { log: { prefix: string; level?: 'emerg' | 'alert' | 'crit' | 'err' | 'warn' | 'notice' | 'info' | 'debug' } }
  | { limit: { rate: number; per: 'second' | 'minute' | 'hour' | 'day'; burst?: number } }
  | Verdict
  | RejectStmt
  | { vmap: { key: Expr; data: SetRef } }
  | { dnat: { family: NatAddrFamily; addr: string | MapLookup; port?: number | { range: [number, number] } | MapLookup } }
  | { snat: { family: NatAddrFamily; addr: string } }
  | { masquerade: null }
  /** `ct helper set "name"`, or the helper looked up by the packet in an anonymous map (`<key> map { k : "name", ... }`). */
  | { 'ct helper': string | CtHelperMap }
  /** `meta nftrace set 1`: only in the trace table guestwall trace loads for a while (src/nft/trace.ts). */
  | { mangle: { key: { meta: { key: 'nftrace' } }; value: 1 } }
  /** `meta mark set meta mark | BITS`: sets bits, keeps the others (other software's marks). */
  | { mangle: { key: { meta: { key: 'mark' } }; value: { '|': [{ meta: { key: 'mark' } }, number] } } };

export interface BaseChainSpec {
  type: ChainType;
  hook: Hook;
  /** Numeric priority (named priorities are emitted as numbers for nft 1.0.6). */
  prio: number;
  policy: 'accept' | 'drop';
}

// ---- The nftables JSON command objects -------------------------------------------------

export interface TableObj {
  family: Family;
  name: string;
}
export interface ChainObj {
  family: Family;
  table: string;
  name: string;
  type?: ChainType;
  hook?: Hook;
  prio?: number;
  policy?: 'accept' | 'drop';
}
/** Statements as nft's JSON spells them (json.ts): set references as "@name" strings. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Every statement kind: switches over it end in `kind satisfies never`, so a new kind fails the build where it is not handled. */
export type StmtKind = KeysOf<Stmt>;
/** The keys of each member of a union (distributes: keyof of the union itself is only the shared keys). */
type KeysOf<T> = T extends unknown ? keyof T : never;

export interface RuleObj {
  family: Family;
  table: string;
  chain: string;
  expr: JsonValue[];
  comment?: string;
}
export interface SetObj {
  family: Family;
  table: string;
  name: string;
  type: string | string[];
  flags?: string[];
  elem?: SetElement[];
}
export interface MapObj {
  family: Family;
  table: string;
  name: string;
  type: string | string[];
  map: string;
  flags?: string[];
  elem?: [SetElement, Verdict | Value][];
}
export interface CtHelperObj {
  family: Family;
  table: string;
  name: string;
  type: string;
  protocol: 'tcp' | 'udp';
  l3proto?: 'ip' | 'ip6' | 'inet';
}

export type CommandObject =
  | { table: TableObj }
  | { chain: ChainObj }
  | { rule: RuleObj }
  | { set: SetObj }
  | { map: MapObj }
  | { 'ct helper': CtHelperObj };

export type Command =
  | { metainfo: { json_schema_version: 1 } }
  | { add: CommandObject }
  | { delete: { table: TableObj } };

export interface NftablesDocument {
  nftables: Command[];
}
