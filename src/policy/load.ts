// YAML text -> validated Policy + located diagnostics. The YAML document is kept so that every
// finding, from the parser, the schema or a cross-reference check, points at file:line:col.
import type { Document, Node as YamlNode } from 'yaml';
import { readBlockYaml } from './block-yaml.js';
import { checkAnyPolicy } from './fleet.js';
import { CODES, type Diagnostic, printable, printableDiagnostic, type DocPath, type Finding, type Location } from './diagnostics.js';
import { offsetOf, type Placed, placedFromYaml } from './placed.js';
import { freeTextFindings } from './free-text.js';
import { withoutReservedKeys } from './reserved-keys.js';
import { salvage } from './salvage.js';
import { Policy } from './schema.js';
import { schemaFindings } from './schema-findings.js';
import { yamlLib } from './yaml-lib.js';

/** A 10,000-guest policy is about 2 MiB; anything far bigger is refused before parsing. */
export const MAX_POLICY_BYTES = 16 * 1024 * 1024;
/** Aliases a document may expand; a "billion laughs" document needs far more. */
export const MAX_ALIAS_COUNT = 200;

export interface LoadedPolicy {
  file: string;
  /** Which reader read the text: the fast one for plain block YAML, or the `yaml` library; absent when it was refused unread (too large). */
  reader?: 'block' | 'yaml';
  /** Present when the policy has no errors (warnings may remain). */
  policy?: Policy;
  diagnostics: Diagnostic[];
  /** Where a path into the document is; the top of the file when the path is not in it. */
  locate(path: DocPath, atKey?: boolean): Location;
}

export function loadPolicy(file: string, text: string): LoadedPolicy {
  const top: Location = { file, line: 1, col: 1 };
  const noLocate = () => top;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_POLICY_BYTES) {
    return {
      file,
      locate: noLocate,
      diagnostics: [
        { ...top, code: CODES['input-too-large'], kind: 'input-too-large', severity: 'error',
          message: `the policy is ${bytes} bytes; guestwall reads at most ${MAX_POLICY_BYTES}`, hint: 'check that this is the right file: even a policy for thousands of guests is far smaller' },
      ],
    };
  }

  const at = lineAt(file, text);
  const read = readYaml(text, at, top);
  const { reader } = read;
  const locate = locator(read.placed, top, at);
  if (read.problems) return { file, reader, locate, diagnostics: read.problems.map(printableDiagnostic) };
  const place = (f: Finding): Diagnostic => placeFinding(f, locate);

  // `__proto__`, `constructor` and their kind are refused before the schema, which would drop them silently.
  const reserved = withoutReservedKeys(read.data);
  const data = reserved.data;
  // Descriptions with control or bidi characters: refused where they are written.
  const unsafeText = freeTextFindings(data);
  const parsed = Policy.safeParse(data);
  if (!parsed.success || reserved.findings.length > 0 || unsafeText.length > 0) {
    // Report the rest of the policy's mistakes in the same run, checked without the refused parts.
    const issues = parsed.success ? [] : parsed.error.issues;
    const findings = [...reserved.findings, ...unsafeText, ...schemaFindings(issues, data)];
    const rest = parsed.success ? { policy: parsed.data, known: {} } : salvage(data, issues);
    if (rest) {
      // A refused name is still declared: references to it are not reported as unknown too.
      const known: Partial<Record<'zones' | 'guests' | 'bridges' | 'services', Set<string>>> = { ...rest.known };
      for (const f of reserved.findings) {
        const [top, name] = f.path;
        if (f.path.length === 2 && (top === 'zones' || top === 'guests' || top === 'bridges' || top === 'services')) (known[top] ??= new Set()).add(String(name));
      }
      findings.push(...checkAnyPolicy(rest.policy, known));
    }
    return { file, reader, locate, diagnostics: sortDiagnostics(findings.map(place)) };
  }
  const findings = checkAnyPolicy(parsed.data);
  const diagnostics = sortDiagnostics(findings.map(place));
  const failed = diagnostics.some((d) => d.severity === 'error');
  return failed ? { file, reader, locate, diagnostics } : { file, reader, locate, diagnostics, policy: parsed.data };
}

interface ReadText {
  reader: 'block' | 'yaml';
  placed: Placed | undefined;
  data?: unknown;
  /** Why the text could not be read (then there is no data). */
  problems?: Diagnostic[];
}

/** The policy's data and where each part of it is written: by the block reader when it can, else by `yaml`. */
function readYaml(text: string, at: (offset: number) => Location, top: Location): ReadText {
  const fast = readBlockYaml(text);
  if (fast) return { reader: 'block', placed: fast.placed, data: fast.data };
  // yaml's own duplicate-key check is quadratic in a map's size; duplicateKeys() below is linear.
  const doc = yamlLib().parseDocument(text, { uniqueKeys: false, prettyErrors: false, strict: true });
  const placed = placedFromYaml(doc.contents);
  const syntax = yamlSyntax(doc, text, at);
  if (syntax.length > 0) return { reader: 'yaml', placed, problems: syntax };
  try {
    return { reader: 'yaml', placed, data: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (e) {
    return { reader: 'yaml', placed, problems: [aliasProblem(doc, e, at) ?? { ...top, code: CODES['yaml-syntax'], kind: 'yaml-syntax', severity: 'error',
      message: `the policy cannot be read: ${firstLine(String(e))}` }] };
  }
}

/** file:line:col of an offset into `text`, lines counted as `yaml` counts them: each starts after a newline. */
function lineAt(file: string, text: string): (offset: number) => Location {
  const starts = [0];
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) starts.push(nl + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { file, line: lo + 1, col: offset - starts[lo]! + 1 };
  };
}

function locator(placed: Placed | undefined, top: Location, at: (offset: number) => Location): LoadedPolicy['locate'] {
  return (path, atKey = false) => {
    const offset = offsetOf(placed, path, atKey);
    return offset === undefined ? top : at(offset);
  };
}

/** What `yaml` found wrong with the text: syntax errors, or else keys written twice. */
function yamlSyntax(doc: Document, text: string, at: (offset: number) => Location): Diagnostic[] {
  // An unclosed '[' or '{' leaves every collection around it unclosed too; the first says it.
  const unclosed = (e: { message: string }) => /^Flow (sequence|map) in block collection/.exec(e.message)?.[1];
  let seenUnclosed = false;
  const yamlErrors = doc.errors.filter((e) => {
    const skip = seenUnclosed && unclosed(e) !== undefined;
    seenUnclosed ||= unclosed(e) !== undefined;
    return !skip;
  });
  const syntax: Diagnostic[] = yamlErrors.map((e) => {
    const dup = e.code === 'DUPLICATE_KEY';
    const [open, close] = unclosed(e) === 'sequence' ? ['[', ']'] : ['{', '}'];
    const hint = unclosed(e) ? `a '${open}' before this point is never closed: add the '${close}'` : YAML_HINTS[e.code];
    return {
      ...at(firstToken(text, e.pos[0])),
      code: dup ? CODES['duplicate-name'] : CODES['yaml-syntax'],
      kind: dup ? 'duplicate-name' : 'yaml-syntax',
      severity: 'error',
      message: dup ? `duplicate key: ${firstLine(e.message)}; every name may appear once`
        : /Maximum call stack/.test(e.message) ? 'YAML syntax: lists or mappings are nested too deeply to read' : `YAML syntax: ${firstLine(e.message)}`,
      ...(hint ? { hint } : {}),
    };
  });
  return syntax.length > 0 ? syntax : duplicateKeys(doc, at);
}

export function placeFinding(f: Finding, locate: (path: DocPath, atKey?: boolean) => Location): Diagnostic {
  const d: Diagnostic = { ...locate(f.path, f.atKey), code: CODES[f.kind], kind: f.kind, severity: f.severity, message: printable(f.message) };
  if (f.hint !== undefined) d.hint = printable(f.hint);
  if (f.related && f.related.length > 0) d.related = f.related.map((r) => ({ ...locate(r.path, r.atKey), message: printable(r.message) }));
  return d;
}

export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.code.localeCompare(b.code));
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** yaml reports some errors at the start of the line; the token that is wrong is after the indentation. */
function firstToken(text: string, offset: number): number {
  let i = offset;
  while (text[i] === ' ') i++;
  return text[i] === '\n' || i >= text.length ? offset : i;
}

/** What to do about the YAML mistakes people make most. */
const YAML_HINTS: Partial<Record<string, string>> = {
  TAB_AS_INDENT: 'indent with spaces; YAML does not allow tabs for indentation',
  BAD_INDENT: "line this up with the entries around it (the same number of spaces), and close every '[' and '{'",
  MISSING_CHAR: "add what is missing: a closing quote, ']' or '}', or the '- ' of a list item",
  BLOCK_AS_IMPLICIT_KEY: "start a nested mapping on a new, indented line, or write it as { key: value }",
  MULTILINE_IMPLICIT_KEY: "a key needs ':' after it on the same line",
  BAD_SCALAR_START: 'quote the value ("...")',
  BLOCK_IN_FLOW: "inside [ ] and { }, write nested values in the same style: { key: value }, [a, b]",
};

/**
 * An alias yaml refused to expand: too many expansions (a "billion laughs" document) or no
 * anchor before it. Placed at the alias: the first one for a bomb, the dangling one otherwise.
 */
function aliasProblem(doc: Document, e: unknown, at: (offset: number) => Location): Diagnostic | undefined {
  const text = String(e);
  const dangling = /Unresolved alias[^:]*: (.*)$/.exec(text)?.[1];
  const bomb = /Excessive alias count/.test(text);
  if (!bomb && dangling === undefined) return undefined;
  let where: number | undefined;
  const { visit } = yamlLib();
  visit(doc, {
    Alias(_, node) {
      if (dangling !== undefined && node.source !== dangling) return undefined;
      where = rangeStart(node);
      return visit.BREAK;
    },
  });
  const loc = at(where ?? 0);
  return bomb
    ? { ...loc, code: CODES['alias-bomb'], kind: 'alias-bomb', severity: 'error',
      message: `the policy expands YAML aliases more than ${MAX_ALIAS_COUNT} times; refusing it`, hint: 'write the repeated parts out, or use fewer anchors' }
    : { ...loc, code: CODES['yaml-syntax'], kind: 'yaml-syntax', severity: 'error',
      message: `YAML syntax: alias '*${dangling}' refers to no anchor before it`, hint: `define '&${dangling}' earlier in the file, or write the value out` };
}

/** Every key written twice in one mapping, at the second place, pointing back at the first. */
function duplicateKeys(doc: Document, at: (offset: number) => Location): Diagnostic[] {
  const out: Diagnostic[] = [];
  const { isScalar, visit } = yamlLib();
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, YamlNode>();
      for (const p of map.items) {
        if (!isScalar(p.key)) continue;
        const key = String(p.key.value);
        const first = seen.get(key);
        if (!first) {
          seen.set(key, p.key);
          continue;
        }
        out.push({
          ...at(rangeStart(p.key) ?? 0), code: CODES['duplicate-name'], kind: 'duplicate-name', severity: 'error',
          message: `'${key}' is written twice in this mapping; every name may appear once`,
          hint: 'rename one of them, or merge the two entries',
          related: [{ ...at(rangeStart(first) ?? 0), message: `'${key}' first written here` }],
        });
      }
    },
  });
  return out;
}

function rangeStart(n: unknown): number | undefined {
  const r = (n as YamlNode | undefined)?.range;
  return Array.isArray(r) ? r[0] : undefined;
}

