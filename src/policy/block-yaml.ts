// A fast reader for the plain block YAML that policies are written in, keeping where every key and
// value is written. The `yaml` library reads any YAML and says what is wrong with it, but needs
// about a second for a 10,000-guest policy (2 MB); this reads the same file in tens of milliseconds.
//
// It reads only what it reads exactly as `yaml` does (YAML 1.2, core schema, the same values at
// the same offsets): block mappings and sequences, one-line plain and quoted scalars, and one-line
// flow sequences of scalars. Anything else (an anchor, a tag, a multi-line or block string, a flow
// mapping, an empty value, a float, a tab, a duplicate key, any mistake at all) makes it give up
// and return undefined; the policy is then read by `yaml`, which also reports the mistakes. So a
// document it accepts is one `yaml` reads without complaint, to the same data.
// tests/unit/block-yaml.test.ts holds it to that, on generated documents and on every example.

import type { Placed, PlacedMapping } from './placed.js';

export interface ReadYaml {
  data: unknown;
  placed: Placed;
}

/**
 * Characters that make `yaml` do something this reader does not: tabs, CR, C0 and C1 control
 * characters, a BOM; and the Unicode white space that JavaScript's trim() removes but YAML keeps
 * as content (YAML's white space is only space and tab): "kvm-nas\u00a0" is a different name.
 */
const NOT_READ_HERE = /[\t\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
/** A key a plain object cannot hold as data (assigning it sets the prototype): left to `yaml`, which keeps it. */
const PROTO_KEY = '__proto__';
/** Characters a plain scalar may not start with (YAML's indicators), besides "-?:" before a space. */
const INDICATORS = new Set([...',[]{}#&*!|>\'"%@`']);
/** Deeper than any policy: a document nested further is left to `yaml`. */
const MAX_DEPTH = 64;
/** `yaml` refuses implicit keys longer than this. */
const MAX_KEY_LENGTH = 1024;

const NULL = /^(?:~|[Nn]ull|NULL)$/;
const TRUE = /^(?:[Tt]rue|TRUE)$/;
const FALSE = /^(?:[Ff]alse|FALSE)$/;
/** Integers read here: the plain decimal ones that a JavaScript number holds exactly. */
const DECIMAL = /^(?:0|[1-9][0-9]{0,14})$/;
/** Every other number the core schema knows (signed, octal, hex, float, .inf, .nan): left to `yaml`. */
const OTHER_NUMBER = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;

/** What ends a plain scalar in a flow collection. */
const FLOW_INDICATORS = new Set([...',[]{}']);
/** The first characters of the core schema's nulls, booleans and numbers. */
const MAYBE_NOT_STRING = new Set([...'~nNtTfF0123456789+-.']);

/** Thrown inside the reader when the document is not one it reads; never escapes it. */
class NotPlain extends Error {}
const NOT_PLAIN = new NotPlain('not plain block YAML');

interface Read {
  data: unknown;
  placed: Placed;
}

export function readBlockYaml(text: string): ReadYaml | undefined {
  if (NOT_READ_HERE.test(text)) return undefined;
  try {
    return new Reader(text).document();
  } catch (e) {
    if (e instanceof NotPlain) return undefined;
    throw e;
  }
}

class Reader {
  // The lines with something on them (blank and comment-only lines are left out), as three
  // arrays: the column their content starts at, and the offsets of its start and of the line's end.
  private readonly indent: Int32Array;
  private readonly start: Int32Array;
  private readonly end: Int32Array;
  private readonly count: number;
  /** The next line to read. */
  private at = 0;
  private readonly comments: Finder;
  /** ':' then a space: after a key. */
  private readonly colons: Finder;

  constructor(private readonly text: string) {
    let lines = 1;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) lines++;
    this.indent = new Int32Array(lines);
    this.start = new Int32Array(lines);
    this.end = new Int32Array(lines);
    let n = 0;
    for (let pos = 0; pos < text.length;) {
      let nl = text.indexOf('\n', pos);
      if (nl < 0) nl = text.length;
      let start = pos;
      while (start < nl && text.charCodeAt(start) === 32) start++;
      if (start < nl && text[start] !== '#') {
        this.indent[n] = start - pos;
        this.start[n] = start;
        this.end[n] = nl;
        n++;
      }
      pos = nl + 1;
    }
    this.count = n;
    this.comments = new Finder(text, ' #');
    this.colons = new Finder(text, ': ');
  }

  /** The document marker ('---' or '...' at column 0, then a space or the end) line `i` starts with, if any. */
  private marker(i: number): string | undefined {
    if (this.indent[i] !== 0) return undefined;
    const mark = this.text.slice(this.start[i]!, this.start[i]! + 3);
    return (mark === '---' || mark === '...') && this.separates(this.start[i]! + 3, this.end[i]!) ? mark : undefined;
  }

  /** The column line `i` starts at; -1 past the last line, so that it ends every collection. */
  private indentOf(i: number): number {
    return i < this.count ? this.indent[i]! : -1;
  }

  document(): Read {
    // '---' alone may open the document; any other document marker is left to `yaml`.
    if (this.count > 0 && this.marker(0) === '---' && this.restIsEmpty(this.start[0]! + 3, this.end[0]!)) this.at++;
    for (let i = this.at; i < this.count; i++) if (this.marker(i)) throw NOT_PLAIN;
    if (this.indentOf(this.at) !== 0 || this.isDash(this.at)) throw NOT_PLAIN;
    const read = this.mapping(0, 0);
    // Anything left is at an indentation no collection has, or a second document.
    if (this.at < this.count) throw NOT_PLAIN;
    return read;
  }

  /** A block mapping whose keys are at column `indent`, starting at the current line. */
  private mapping(indent: number, depth: number): Read {
    if (depth > MAX_DEPTH) throw NOT_PLAIN;
    const data: Record<string, unknown> = {};
    const placed: PlacedMapping = { start: this.start[this.at]!, keys: [], keyStarts: [], values: [] };
    while (this.indentOf(this.at) >= indent) {
      const line = this.at;
      if (this.indent[line]! > indent || this.isDash(line)) throw NOT_PLAIN;
      const key = this.key(this.start[line]!, this.end[line]!);
      this.at++;
      const value = this.value(key.after, this.end[line]!, indent, depth);
      placed.keys.push(key.name);
      placed.keyStarts.push(this.start[line]!);
      placed.values.push(value.placed);
      if (key.name === PROTO_KEY) throw NOT_PLAIN;
      data[key.name] = value.data;
    }
    keysOnce(data, placed);
    return { data, placed };
  }

  /** A block sequence whose '-' are at column `indent`, starting at the current line. */
  private sequence(indent: number, depth: number): Read {
    if (depth > MAX_DEPTH) throw NOT_PLAIN;
    const data: unknown[] = [];
    const items: Placed[] = [];
    const start = this.start[this.at]!;
    // A line at this column without '-' ends the sequence: the next key of a mapping whose value
    // this sequence is (written at the key's column), or a mistake that mapping finds.
    while (this.indentOf(this.at) >= indent && this.isDash(this.at)) {
      const line = this.at;
      const end = this.end[line]!;
      if (this.indent[line]! > indent) throw NOT_PLAIN;
      const s = this.skipSpaces(this.start[line]! + 1, end);
      // '-' alone (the item on the next lines) or '- - x': left to `yaml`.
      if (s === end || this.text[s] === '#' || this.isDashAt(s, end)) throw NOT_PLAIN;
      let item: Read;
      if (this.startsKey(s, end)) {
        // `- key: value`: a mapping whose keys are at the column of this first key; the line is
        // read again as if it started there.
        const column = indent + (s - this.start[line]!);
        this.indent[line] = column;
        this.start[line] = s;
        item = this.mapping(column, depth + 1);
      } else {
        this.at++;
        item = this.inline(s, end);
        this.noContinuation(indent);
      }
      data.push(item.data);
      items.push(item.placed);
    }
    return { data, placed: { start, items } };
  }

  /** The value after a key's ':' at `from`, on the same line (ending at `end`) or a block on the next lines. */
  private value(from: number, end: number, indent: number, depth: number): Read {
    const s = this.skipSpaces(from, end);
    if (s < end && this.text[s] !== '#') {
      const read = this.inline(s, end);
      this.noContinuation(indent);
      return read;
    }
    const next = this.indentOf(this.at);
    if (next > indent) return this.isDash(this.at) ? this.sequence(next, depth + 1) : this.mapping(next, depth + 1);
    // A sequence may be written at its key's own column.
    if (next === indent && this.isDash(this.at)) return this.sequence(indent, depth + 1);
    // An empty value (null): rare in a policy, and `yaml` places it its own way.
    throw NOT_PLAIN;
  }

  /** After a one-line value, a more indented line would continue it (a multi-line scalar) or be a mistake. */
  private noContinuation(indent: number): void {
    if (this.indentOf(this.at) > indent) throw NOT_PLAIN;
  }

  /** The key at `s`, a line's content ending at `end`: its name and the offset after its ':'. */
  private key(s: number, end: number): { name: string; after: number } {
    const t = this.text;
    const c = t[s]!;
    if (c === '"' || c === "'") {
      const q = this.quoted(s, end);
      if (t[q.end] !== ':' || !this.separates(q.end + 1, end)) throw NOT_PLAIN;
      return { name: q.value, after: q.end + 1 };
    }
    if (!this.plainStart(s, end)) throw NOT_PLAIN;
    const colon = this.keyColon(s, end);
    if (colon < 0) throw NOT_PLAIN;
    const name = t.slice(s, colon).trimEnd();
    if (name.length > MAX_KEY_LENGTH || name.includes(' #') || typeof scalar(name) !== 'string') throw NOT_PLAIN;
    return { name, after: colon + 1 };
  }

  /** Whether the item text at `s` is `key: ...` (a mapping) rather than a scalar. */
  private startsKey(s: number, end: number): boolean {
    const c = this.text[s];
    if (c === '"' || c === "'") {
      const q = this.quoted(s, end);
      return this.text[q.end] === ':' && this.separates(q.end + 1, end);
    }
    if (c === '[' || c === '{') return false;
    return this.keyColon(s, end) >= 0;
  }

  /** The first ':' followed by a space or the end of the line, before any comment; -1 if none. */
  private keyColon(s: number, end: number): number {
    const stop = Math.min(this.comments.from(s), end);
    const colon = this.colons.from(s);
    if (colon < stop) return colon;
    let last = stop;
    while (last > s && this.text.charCodeAt(last - 1) === 32) last--;
    return last > s && last === end && this.text[last - 1] === ':' ? last - 1 : -1;
  }

  /** A scalar or a flow collection that fills the rest of a line from `s`. */
  private inline(s: number, end: number): Read {
    const t = this.text;
    const c = t[s]!;
    if (c === '"' || c === "'" || c === '[' || c === '{') {
      const { read, next } = this.flow(s, end, 0);
      if (!this.restIsEmpty(next, end)) throw NOT_PLAIN;
      return read;
    }
    if (!this.plainStart(s, end)) throw NOT_PLAIN;
    const raw = t.slice(s, Math.min(this.comments.from(s), end)).trimEnd();
    if (raw.includes(': ') || raw.endsWith(':')) throw NOT_PLAIN;
    return { data: scalar(raw), placed: s };
  }

  /**
   * A node in flow style at `s`, ending on this line: `[a, b]`, `{ k: v, l: [x] }`, a quoted or a
   * plain scalar (which ends at a flow indicator). Returns it and the offset after it.
   */
  private flow(s: number, end: number, depth: number): { read: Read; next: number } {
    if (depth > MAX_DEPTH) throw NOT_PLAIN;
    const t = this.text;
    const c = t[s];
    if (c === '"' || c === "'") {
      const q = this.quoted(s, end);
      return { read: { data: q.value, placed: s }, next: q.end };
    }
    if (c === '[' || c === '{') return this.flowCollection(s, end, depth);
    if (!this.flowPlainStart(s, end)) throw NOT_PLAIN;
    let j = s;
    while (j < end && !FLOW_INDICATORS.has(t[j]!)) j++;
    const raw = t.slice(s, j).trimEnd();
    // Not ended by a flow indicator on this line; a key (':' before a space or an indicator); a comment.
    if (j === end || raw.includes(': ') || raw.endsWith(':') || raw.includes(' #')) throw NOT_PLAIN;
    return { read: { data: scalar(raw), placed: s }, next: s + raw.length };
  }

  private flowCollection(s: number, end: number, depth: number): { read: Read; next: number } {
    const t = this.text;
    const isMap = t[s] === '{';
    const close = isMap ? '}' : ']';
    const list: unknown[] = [];
    const items: Placed[] = [];
    const map: Record<string, unknown> = {};
    const placedMap: PlacedMapping = { start: s, keys: [], keyStarts: [], values: [] };
    let i = this.skipSpaces(s + 1, end);
    if (t[i] !== close) {
      for (;;) {
        if (isMap) {
          const key = this.flowKey(i, end);
          const value = this.flow(this.skipSpaces(key.after, end), end, depth + 1);
          placedMap.keys.push(key.name);
          placedMap.keyStarts.push(i);
          placedMap.values.push(value.read.placed);
          if (key.name === PROTO_KEY) throw NOT_PLAIN;
          map[key.name] = value.read.data;
          i = value.next;
        } else {
          const item = this.flow(i, end, depth + 1);
          list.push(item.read.data);
          items.push(item.read.placed);
          i = item.next;
        }
        i = this.skipSpaces(i, end);
        if (t[i] === close) break;
        if (t[i] !== ',') throw NOT_PLAIN;
        i = this.skipSpaces(i + 1, end);
        // An empty entry or a trailing comma: left to `yaml`.
        if (t[i] === ',' || t[i] === close) throw NOT_PLAIN;
      }
    }
    if (isMap) keysOnce(map, placedMap);
    const read: Read = isMap ? { data: map, placed: placedMap } : { data: list, placed: { start: s, items } };
    return { read, next: i + 1 };
  }

  /** A key in a flow mapping at `s`, followed by ': ': its name and the offset after the ':'. */
  private flowKey(s: number, end: number): { name: string; after: number } {
    const t = this.text;
    if (t[s] === '"' || t[s] === "'") {
      const q = this.quoted(s, end);
      if (t[q.end] !== ':' || t[q.end + 1] !== ' ') throw NOT_PLAIN;
      return { name: q.value, after: q.end + 1 };
    }
    if (!this.flowPlainStart(s, end)) throw NOT_PLAIN;
    let j = s;
    while (j < end && !FLOW_INDICATORS.has(t[j]!) && !(t[j] === ':' && t[j + 1] === ' ')) j++;
    const name = t.slice(s, j).trimEnd();
    if (t[j] !== ':' || name.includes(' #') || name.endsWith(':') || name.length > MAX_KEY_LENGTH || typeof scalar(name) !== 'string') throw NOT_PLAIN;
    return { name, after: j + 1 };
  }

  /** A quoted scalar on one line: '...' ('' for a quote) or "..." without escapes. */
  private quoted(s: number, end: number): { value: string; end: number } {
    const t = this.text;
    if (t[s] === '"') {
      const close = t.indexOf('"', s + 1);
      if (close < 0 || close >= end) throw NOT_PLAIN;
      const value = t.slice(s + 1, close);
      if (value.includes('\\')) throw NOT_PLAIN;
      return { value, end: close + 1 };
    }
    let value = '';
    for (let from = s + 1; ;) {
      const close = t.indexOf("'", from);
      if (close < 0 || close >= end) throw NOT_PLAIN;
      if (t[close + 1] !== "'") return { value: value + t.slice(from, close), end: close + 1 };
      value += t.slice(from, close + 1);
      from = close + 2;
    }
  }

  /** Whether a plain scalar may start at `s`: not an indicator, nor "-", "?", ":" before a space. */
  private plainStart(s: number, end: number): boolean {
    const c = this.text[s]!;
    if (INDICATORS.has(c)) return false;
    return !((c === '-' || c === '?' || c === ':') && this.separates(s + 1, end));
  }

  /** In a flow collection, "-", "?" and ":" also may not start a plain scalar before a flow indicator. */
  private flowPlainStart(s: number, end: number): boolean {
    const c = this.text[s]!;
    return this.plainStart(s, end) && !((c === '-' || c === '?' || c === ':') && FLOW_INDICATORS.has(this.text[s + 1]!));
  }

  private isDash(line: number): boolean {
    return line < this.count && this.isDashAt(this.start[line]!, this.end[line]!);
  }

  private isDashAt(s: number, end: number): boolean {
    return this.text[s] === '-' && this.separates(s + 1, end);
  }

  /** Whether `i` is the end of the line or a space. */
  private separates(i: number, end: number): boolean {
    return i >= end || this.text.charCodeAt(i) === 32;
  }

  private skipSpaces(i: number, end: number): number {
    while (i < end && this.text.charCodeAt(i) === 32) i++;
    return i;
  }

  /** Nothing but spaces, or spaces and a comment, from `i` to the end of the line. */
  private restIsEmpty(i: number, end: number): boolean {
    const s = this.skipSpaces(i, end);
    return s >= end || (s > i && this.text[s] === '#');
  }
}

/**
 * A key written twice (the second write replaced the first) or `__proto__` (which sets the
 * object's prototype) leaves the object with fewer keys than were read: left to `yaml`.
 */
function keysOnce(data: object, placed: PlacedMapping): void {
  if (Object.keys(data).length !== placed.keys.length) throw NOT_PLAIN;
}

/**
 * Where `needle` next occurs in the text, at or after an offset. The reader asks in the order it
 * reads, so the last answer serves every later question up to it: the text is searched once over,
 * however many lines have no `needle` on them.
 */
class Finder {
  private asked = Infinity;
  private found = -1;

  constructor(private readonly text: string, private readonly needle: string) {}

  /** The offset of the first `needle` at or after `from`; Infinity if none. */
  from(from: number): number {
    if (from < this.asked || from > this.found) {
      const i = this.text.indexOf(this.needle, from);
      this.asked = from;
      this.found = i < 0 ? Infinity : i;
    }
    return this.found;
  }
}

/** A plain scalar's value as the core schema resolves it; numbers other than plain decimals are left to `yaml`. */
function scalar(raw: string): unknown {
  // Most scalars are names and addresses: only these first characters can start anything else.
  if (!MAYBE_NOT_STRING.has(raw[0]!)) return raw;
  if (NULL.test(raw)) return null;
  if (TRUE.test(raw)) return true;
  if (FALSE.test(raw)) return false;
  if (DECIMAL.test(raw)) return Number(raw);
  if (OTHER_NUMBER.test(raw)) throw NOT_PLAIN;
  return raw;
}
