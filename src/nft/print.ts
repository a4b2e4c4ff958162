// Ruleset IR -> nft syntax (`nft -f FILE`), the text twin of json.ts: the same atomic replace of
// guestwall's own tables (`table X {}`, `delete table X`, then the whole table again), the same
// rules and comments. Anything the printer does not know how to spell throws: that is a bug in
// the compiler, and printing a guess would load something nobody asked for.
import type { CtHelper, NamedDataMap, NamedMap, NamedSet, Rule, Ruleset, Table } from './ruleset.js';
import { ruleComment } from './ruleset.js';
import { type Expr, type MapLookup, type MatchOp, type SetElement, type Stmt, type StmtKind, type Value, type Verdict, isSetRef } from './types.js';

export function printRuleset(ruleset: Ruleset): string {
  return ruleset.tables.map(printTable).join('\n');
}

/** One statement in nft syntax, e.g. `tcp dport { 22, 80 }` or `dnat ip to 10.0.0.2:80`. */
export function printStmt(stmt: Stmt): string {
  const key = onlyKey(stmt, 'statement') as StmtKind;
  const s = stmt as Record<string, unknown>;
  switch (key) {
    case 'match':
      return printMatch(stmt as Extract<Stmt, { match: unknown }>);
    case 'counter':
      if (s.counter !== null) throw bug('counter takes no arguments', stmt);
      return 'counter';
    case 'log': {
      const { prefix, level } = (stmt as Extract<Stmt, { log: unknown }>).log;
      const lvl = level === undefined ? '' : ` level ${oneOf(level, ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'])}`;
      return `log prefix ${quote(prefix)}${lvl}`;
    }
    case 'limit': {
      const { rate, per, burst } = (stmt as Extract<Stmt, { limit: unknown }>).limit;
      const b = burst === undefined ? '' : ` burst ${count(burst)} packets`;
      return `limit rate ${count(rate)}/${oneOf(per, ['second', 'minute', 'hour', 'day'])}${b}`;
    }
    case 'accept':
    case 'drop':
    case 'return':
    case 'jump':
    case 'goto':
      return printVerdict(stmt as Verdict);
    case 'reject':
      return printReject(stmt as Extract<Stmt, { reject: unknown }>);
    case 'vmap': {
      const { key: k, data } = (stmt as Extract<Stmt, { vmap: unknown }>).vmap;
      if (!isSetRef(data)) throw bug('vmap data must be a named map', stmt);
      return `${printLeft(k)} vmap @${name(data.setRef)}`;
    }
    case 'dnat': {
      const { family, addr, port } = (stmt as Extract<Stmt, { dnat: unknown }>).dnat;
      return `dnat ${natFamily(family)} to ${natTarget(family, addr, port)}`;
    }
    case 'snat': {
      const { family, addr } = (stmt as Extract<Stmt, { snat: unknown }>).snat;
      return `snat ${natFamily(family)} to ${natTarget(family, addr, undefined)}`;
    }
    case 'masquerade':
      if (s.masquerade !== null) throw bug('masquerade takes no arguments', stmt);
      return 'masquerade';
    case 'mangle': {
      const m = (stmt as Extract<Stmt, { mangle: unknown }>).mangle;
      if (m.key.meta.key === 'nftrace') return 'meta nftrace set 1';
      const v = m.value as { '|': [Expr, number] };
      if (m.key.meta.key !== 'mark' || !isObj(v) || !Array.isArray(v['|'])) throw bug('meta mark is set only by or-ing bits into it', stmt);
      return `meta mark set ${printLeft(v['|'][0])} | ${hex(v['|'][1])}`;
    }
    case 'ct helper': {
      const h = (stmt as Extract<Stmt, { 'ct helper': unknown }>)['ct helper'];
      if (typeof h === 'string') return `ct helper set ${quote(h)}`;
      const { key, data } = h.map;
      const kinds = kindsOf(key);
      return `ct helper set ${printLeft(key)} map { ${data.set.map(([k, v]) => `${printElement(k, kinds)} : ${quote(v)}`).join(', ')} }`;
    }
    default:
      // Every kind is handled above: a new one fails the build here.
      throw bug('unknown statement', key satisfies never);
  }
}

// ---- Tables, sets, chains --------------------------------------------------------------------

function printTable(t: Table): string {
  const head = `${family(t.family)} ${name(t.name)}`;
  // Inside one table block nft adds every chain before any set or map, so map elements may
  // jump to chains printed further down (checked against nft 1.0.6 in print.test.ts).
  const blocks = [...t.helpers.map(printHelper), ...t.sets.map(printSetOrMap), ...t.chains.map(printChain)];
  const body = blocks.map((b) => indent(b, 1)).join('\n\n');
  return `table ${head} {}\ndelete table ${head}\ntable ${head} {\n${body}${body ? '\n' : ''}}\n`;
}

function printHelper(h: CtHelper): string {
  // l3proto inet as in json.ts: one helper object serves IPv4 and IPv6.
  return [`ct helper ${name(h.name)} {`, `\ttype ${quote(h.type)} protocol ${oneOf(h.protocol, ['tcp', 'udp'])}`, '\tl3proto inet', '}'].join('\n');
}

function printSetOrMap(s: NamedSet | NamedMap | NamedDataMap): string {
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if (types.length === 0) throw bug('set without a type', s);
  const kinds = types.map(kindOfType);
  const keyType = types.map(symbol).join(' . ');
  let lines: string[];
  if (s.kind === 'set') {
    lines = [`set ${name(s.name)} {`, `\ttype ${keyType}`];
    addFlagsAndElements(lines, s.flags, s.elements.map((e) => printElement(e, kinds)));
  } else if (s.kind === 'map') {
    if (s.map !== 'verdict') throw bug('only verdict maps are supported', s);
    lines = [`map ${name(s.name)} {`, `\ttype ${keyType} : verdict`];
    addFlagsAndElements(lines, s.flags, s.elements.map(([k, v]) => `${printElement(k, kinds)} : ${printVerdict(v)}`));
  } else if (s.kind === 'datamap') {
    const data = oneOf(s.map, ['ipv4_addr', 'inet_service']);
    lines = [`map ${name(s.name)} {`, `\ttype ${keyType} : ${data}`];
    const dataKind: Kind[] = ['symbol'];
    addFlagsAndElements(lines, s.flags, s.elements.map(([k, v]) => `${printElement(k, kinds)} : ${printElement(v, dataKind)}`));
  } else {
    throw bug('unknown set kind', s);
  }
  lines.push('}');
  return lines.join('\n');
}

/** Element `i` of a named set or map as nft lists it (`10.0.0.5 . tcp . 80` or `key : value`). */
export function printSetElement(s: NamedSet | NamedMap | NamedDataMap, i: number): string {
  const kinds = (Array.isArray(s.type) ? s.type : [s.type]).map(kindOfType);
  if (s.kind === 'set') return printElement(s.elements[i]!, kinds);
  if (s.kind === 'map') return `${printElement(s.elements[i]![0], kinds)} : ${printVerdict(s.elements[i]![1])}`;
  return `${printElement(s.elements[i]![0], kinds)} : ${printElement(s.elements[i]![1], ['symbol'])}`;
}

function addFlagsAndElements(lines: string[], flags: string[] | undefined, elements: string[]): void {
  if (flags && flags.length > 0) lines.push(`\tflags ${flags.map((f) => oneOf(f, ['interval', 'constant'])).join(',')}`);
  if (elements.length === 0) return;
  const oneLine = `\telements = { ${elements.join(', ')} }`;
  // One element a line once the list gets long, so golden files diff element by element.
  if (oneLine.length <= 80) lines.push(oneLine);
  else lines.push('\telements = {', ...elements.map((e, i) => `\t\t${e}${i < elements.length - 1 ? ',' : ''}`), '\t}');
}

function printChain(c: Table['chains'][number]): string {
  const lines = [`chain ${name(c.name)} {`];
  if (c.base) {
    const { type, hook, prio, policy } = c.base;
    lines.push(
      `\ttype ${oneOf(type, ['filter', 'nat', 'route'])} hook ${symbol(hook)} priority ${integer(prio)}; policy ${oneOf(policy, ['accept', 'drop'])};`,
    );
  }
  for (const r of c.rules) lines.push(`\t${printRule(r)}`);
  lines.push('}');
  return lines.join('\n');
}

function printRule(r: Rule): string {
  // A rule without statements would print as a bare `comment "..."`: a chain comment.
  if (r.stmts.length === 0) throw bug('rule without statements', r.origin);
  return `${r.stmts.map(printStmt).join(' ')} comment ${quote(ruleComment(r.origin))}`;
}

// ---- Statements ------------------------------------------------------------------------------

function printVerdict(v: Verdict): string {
  const key = onlyKey(v, 'verdict');
  const body = (v as Record<string, unknown>)[key];
  switch (key) {
    case 'accept':
    case 'drop':
    case 'return':
      if (body !== null) throw bug(`${key} takes no arguments`, v);
      return key;
    case 'jump':
    case 'goto': {
      const target = (body as { target?: unknown } | null)?.target;
      if (typeof target !== 'string') throw bug(`${key} without a target chain`, v);
      return `${key} ${name(target)}`;
    }
    default:
      throw bug('unknown verdict', v);
  }
}

function printReject(stmt: Extract<Stmt, { reject: unknown }>): string {
  const r = stmt.reject;
  if (r === null) return 'reject';
  if (r.type === 'tcp reset') {
    if (r.expr !== undefined) throw bug('reject with tcp reset takes no code', stmt);
    return 'reject with tcp reset';
  }
  // nft syntax has no `reject with icmpx` without a code (JSON would silently pick code 0).
  if (r.expr === undefined) throw bug(`reject with ${r.type} needs a code such as admin-prohibited`, stmt);
  return `reject with ${oneOf(r.type, ['icmp', 'icmpv6', 'icmpx'])} ${symbol(r.expr)}`;
}

function natFamily(f: string): string {
  return oneOf(f, ['ip', 'ip6']);
}

function natTarget(family: 'ip' | 'ip6', addr: string | MapLookup, port: number | { range: [number, number] } | MapLookup | undefined): string {
  const a = typeof addr === 'string' ? symbol(addr) : printLookup(addr);
  if (port === undefined) return a;
  // nft prints `to <key> map @a : <key> map @b`: the port lookup after the address lookup.
  if (typeof port === 'object' && 'map' in port) {
    if (typeof addr === 'string') throw bug('a port looked up in a map needs its address looked up too', port);
    return `${a} : ${printLookup(port)}`;
  }
  const p = typeof port === 'number' ? count(port) : `${count(port.range[0])}-${count(port.range[1])}`;
  // An IPv6 address needs brackets before `:port`, or the port reads as part of the address.
  return family === 'ip6' ? `[${a}]:${p}` : `${a}:${p}`;
}

/** `<key> map @name`: a value looked up in a named data map. */
function printLookup(m: MapLookup): string {
  const { key, data } = m.map;
  if (!isSetRef(data)) throw bug('map lookup data must be a named map', m);
  return `${printLeft(key)} map @${name(data.setRef)}`;
}

// ---- Matches and expressions -----------------------------------------------------------------

/** How a value is spelled in one position: names of interfaces and helpers are quoted strings. */
type Kind = 'string' | 'symbol' | 'hex';

// Keys whose datatype is a bitmask: there nft reads a bare value as "these bits are set", while
// JSON `==` means exact equality, so `==` must be spelled out to load the same rule.
const BITMASK_CT_KEYS = new Set(['state', 'status', 'event', 'label']);

function printMatch(stmt: Extract<Stmt, { match: unknown }>): string {
  const { op, left, right } = stmt.match;
  const kinds = kindsOf(left);
  const l = printLeft(left);
  if (typeof right === 'boolean') {
    // `fib ... oif missing` / `exists`: the only boolean right-hand side nft has.
    if (!isObj(left) || !('fib' in left) || (op !== '==' && op !== '!=')) throw bug('boolean match outside fib', stmt);
    return `${l} ${op === '!=' ? '!= ' : ''}${right ? 'exists' : 'missing'}`;
  }
  const plainValue = typeof right === 'string' || typeof right === 'number' || Array.isArray(right);
  // `meta mark & 0x10 == 0x10`: nft lists a masked comparison with its operator, so we do too.
  const masked = isObj(left) && '&' in left && typeof left['&'][1] === 'number';
  const explicitEq = op === '==' && plainValue && (isBitmask(left) || masked);
  return `${l} ${printOp(op, explicitEq)}${printRight(right, kinds, stmt)}`;
}

function printOp(op: MatchOp, explicitEq: boolean): string {
  switch (op) {
    case '==':
      return explicitEq ? '== ' : '';
    case 'in':
      return '';
    case '!=':
    case '<':
    case '>':
    case '<=':
    case '>=':
      return `${op} `;
    default:
      throw bug('unknown match operator', op);
  }
}

function isBitmask(left: Expr): boolean {
  if (!isObj(left)) return false;
  if ('ct' in left) return left.ct.dir === undefined && BITMASK_CT_KEYS.has(left.ct.key);
  if ('payload' in left) return 'protocol' in left.payload && left.payload.protocol === 'tcp' && left.payload.field === 'flags';
  if ('&' in left) return isBitmask(left['&'][0]);
  return false;
}

/** The left-hand side of a match or the key of a vmap: something read from the packet. */
function printLeft(e: Expr): string {
  if (!isObj(e)) throw bug('the left side of a match must read the packet, not be a value', e);
  const key = onlyKey(e, 'expression');
  switch (key) {
    case 'payload': {
      const pl = (e as Extract<Expr, { payload: unknown }>).payload;
      if ('base' in pl) return `@${oneOf(pl.base, ['ll', 'nh', 'th'])},${count(pl.offset)},${count(pl.len)}`;
      return `${keyword(pl.protocol)} ${keyword(pl.field)}`;
    }
    case '&': {
      const [l, flags] = (e as Extract<Expr, { '&': unknown }>)['&'];
      if (typeof flags === 'number') {
        if (!isObj(l) || !('meta' in l) || l.meta.key !== 'mark') throw bug('& with a number takes meta mark', e);
        return `${printLeft(l)} & ${hex(flags)}`;
      }
      if (!Array.isArray(flags) || flags.length === 0 || !isBitmask(l)) throw bug('& takes a bitmask field and a flag list', e);
      return `${printLeft(l)} & (${flags.map(symbol).join(' | ')})`;
    }
    case 'meta': {
      const k = (e as Extract<Expr, { meta: unknown }>).meta.key;
      if (BARE_META.has(k)) return k;
      if (QUALIFIED_META.has(k)) return `meta ${k}`;
      throw bug('unknown meta key', e);
    }
    case 'ct': {
      const { key: k, dir } = (e as Extract<Expr, { ct: unknown }>).ct;
      return dir === undefined ? `ct ${keyword(k)}` : `ct ${oneOf(dir, ['original', 'reply'])} ${keyword(k)}`;
    }
    case 'fib': {
      const { result, flags } = (e as Extract<Expr, { fib: unknown }>).fib;
      if (!Array.isArray(flags) || flags.length === 0) throw bug('fib without flags', e);
      const f = flags.map((x) => oneOf(x, ['saddr', 'daddr', 'mark', 'iif', 'oif']));
      return `fib ${f.join(' . ')} ${oneOf(result, ['oif', 'oifname', 'type'])}`;
    }
    case 'concat': {
      const parts = (e as { concat: Expr[] }).concat;
      if (parts.length < 2) throw bug('concatenation of fewer than two expressions', e);
      return parts
        .map((p) => {
          if (isObj(p) && 'concat' in p) throw bug('nested concatenation', e);
          return printLeft(p);
        })
        .join(' . ');
    }
    default:
      throw bug('the left side of a match must read the packet', e);
  }
}

const BARE_META = new Set(['iifname', 'oifname', 'iif', 'oif']);
const QUALIFIED_META = new Set(['l4proto', 'nfproto', 'ibrname', 'obrname', 'mark', 'pkttype']);
const STRING_META = new Set(['iifname', 'oifname', 'iif', 'oif', 'ibrname', 'obrname']);

/** How each component of a left-hand side spells its values. */
function kindsOf(left: Expr): Kind[] {
  if (isObj(left) && 'concat' in left) return (left as { concat: Expr[] }).concat.flatMap(kindsOf);
  if (isObj(left) && 'meta' in left) return [STRING_META.has(left.meta.key) ? 'string' : left.meta.key === 'mark' ? 'hex' : 'symbol'];
  if (isObj(left) && '&' in left) return kindsOf(left['&'][0]);
  if (isObj(left) && 'ct' in left) return [left.ct.key === 'helper' ? 'string' : 'symbol'];
  if (isObj(left) && 'fib' in left) return [left.fib.result === 'oifname' ? 'string' : 'symbol'];
  return ['symbol'];
}

function kindOfType(type: string): Kind {
  return type === 'ifname' || type === 'iface_index' ? 'string' : 'symbol';
}

function printRight(right: Expr, kinds: Kind[], stmt: Extract<Stmt, { match: unknown }>): string {
  if (isSetRef(right)) return `@${name(right.setRef)}`;
  if (Array.isArray(right)) {
    // A flag list, `ct state established,related`: only bitmask types have flags.
    if (right.length === 0 || !isBitmask(stmt.match.left)) throw bug('a flag list needs a bitmask field such as ct state', stmt);
    return right.map(symbol).join(',');
  }
  if (isObj(right) && 'set' in right) {
    if (!Array.isArray(right.set) || right.set.length === 0) throw bug('empty anonymous set (nft rejects `{ }`)', stmt);
    return `{ ${right.set.map((el) => printElement(el, kinds)).join(', ')} }`;
  }
  if (isObj(right) && ('payload' in right || 'meta' in right || 'ct' in right || 'fib' in right)) {
    throw bug('nft compares packet fields with constants only', stmt);
  }
  return printElement(right as SetElement, kinds);
}

/** A constant: a value, prefix, range or concatenation, each part spelled for its position. */
function printElement(el: SetElement, kinds: Kind[]): string {
  if (isObj(el) && 'concat' in el) {
    if (el.concat.length !== kinds.length) throw bug(`concatenation of ${el.concat.length} values where ${kinds.length} are expected`, el);
    return el.concat
      .map((part, i) => {
        if (isObj(part) && 'concat' in part) throw bug('nested concatenation', el);
        return printElement(part, [kinds[i] as Kind]);
      })
      .join(' . ');
  }
  if (kinds.length !== 1) throw bug(`a single value where a concatenation of ${kinds.length} is expected`, el);
  const kind = kinds[0] as Kind;
  if (isObj(el) && 'prefix' in el) return `${symbol(el.prefix.addr)}/${count(el.prefix.len)}`;
  if (isObj(el) && 'range' in el) {
    if (!Array.isArray(el.range) || el.range.length !== 2) throw bug('a range has two ends', el);
    return `${printValue(el.range[0], kind)}-${printValue(el.range[1], kind)}`;
  }
  if (isObj(el)) throw bug('unknown constant expression', el);
  return printValue(el, kind);
}

function printValue(v: Value, kind: Kind): string {
  if (typeof v === 'number') return kind === 'hex' ? hex(v) : count(v);
  if (typeof v === 'string') return kind === 'string' ? quote(v) : symbol(v);
  throw bug('a boolean is only meaningful against fib', v);
}

// ---- Tokens ----------------------------------------------------------------------------------

function isObj(x: unknown): x is object {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The one key of a `{ kind: body }` object; several keys is an ambiguous shape. */
function onlyKey(x: unknown, what: string): string {
  if (!isObj(x)) throw bug(`${what} is not an object`, x);
  const keys = Object.keys(x);
  if (keys.length !== 1) throw bug(`${what} must have exactly one key`, x);
  return keys[0] as string;
}

function family(f: string): string {
  return oneOf(f, ['inet', 'ip', 'ip6', 'bridge', 'netdev', 'arp']);
}

// nft reads table, chain, set and helper names as bare words (quoted names are a syntax error).
// Words nft knows as keywords (`ip`, `counter`, `all`, `set`, ...) also fail to load; the
// compiler must not choose them as names.
function name(n: string): string {
  if (typeof n !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.\/-]*$/.test(n)) throw bug('not a name nft can read', n);
  return n;
}

/** Protocol, field and key names: `tcp`, `dport`, `saddr ip`. */
function keyword(k: string): string {
  if (typeof k !== 'string' || !/^[a-z][a-z0-9_-]*( [a-z][a-z0-9_-]*)*$/.test(k)) throw bug('not an nft keyword', k);
  return k;
}

/** A bare constant: address, port name, icmp type, ct state, log level. */
function symbol(s: string): string {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_:][A-Za-z0-9_.:\/-]*$/.test(s)) throw bug('not a bare nft constant', s); // ':' first: "::/0", "::1"
  return s;
}

/** nft strings have no escapes: a double quote or a line break cannot be written at all. */
function quote(s: string): string {
  if (typeof s !== 'string' || /["\r\n]/.test(s)) throw bug('a string nft cannot quote', s);
  return `"${s}"`;
}

function count(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw bug('not a non-negative integer', n);
  return String(n);
}

/** Marks as nft lists them: `0x10000000`. */
function hex(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw bug('not a 32-bit value', n);
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function integer(n: number): string {
  if (!Number.isSafeInteger(n)) throw bug('not an integer', n);
  return String(n);
}

function oneOf<T extends string>(x: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(x)) throw bug(`expected one of ${allowed.join(', ')}`, x);
  return x as T;
}

function indent(block: string, depth: number): string {
  const pad = '\t'.repeat(depth);
  return block
    .split('\n')
    .map((line) => pad + line)
    .join('\n');
}

function bug(what: string, shape: unknown): Error {
  return new Error(`nft printer: ${what}: ${JSON.stringify(shape)} (a bug in the compiler, not in the policy)`);
}
