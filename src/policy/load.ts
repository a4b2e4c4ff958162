// YAML text -> validated Policy + located diagnostics. The YAML document is kept so that every
// finding, from the parser, the schema or a cross-reference check, points at file:line:col.
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { checkPolicy } from './checks.js';
import { CODES, type Diagnostic, type DocPath, type Finding, type Location } from './diagnostics.js';
import { Policy } from './schema.js';
import { schemaFindings } from './schema-findings.js';

/** Policies are small; anything bigger is refused before parsing. */
export const MAX_POLICY_BYTES = 1024 * 1024;
/** Aliases a document may expand; a "billion laughs" document needs far more. */
export const MAX_ALIAS_COUNT = 200;

export interface LoadedPolicy {
  file: string;
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
          message: `the policy is ${bytes} bytes; guestwall reads at most ${MAX_POLICY_BYTES}`, hint: 'split generated parts out, or check that this is the right file' },
      ],
    };
  }

  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  const at = (offset: number): Location => {
    const p = lines.linePos(offset);
    return { file, line: p.line, col: p.col };
  };
  const locate = (path: DocPath, atKey = false): Location => {
    const offset = offsetOf(doc, path, atKey);
    return offset === undefined ? top : at(offset);
  };
  const place = (f: Finding): Diagnostic => placeFinding(f, locate);

  const syntax: Diagnostic[] = doc.errors.map((e) => {
    const dup = e.code === 'DUPLICATE_KEY';
    return {
      ...at(e.pos[0]),
      code: dup ? CODES['duplicate-name'] : CODES['yaml-syntax'],
      kind: dup ? 'duplicate-name' : 'yaml-syntax',
      severity: 'error',
      message: dup ? `duplicate key: ${firstLine(e.message)}; every name may appear once` : `YAML syntax: ${firstLine(e.message)}`,
    };
  });
  if (syntax.length > 0) return { file, locate, diagnostics: syntax };

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const bomb = e instanceof ReferenceError || /alias/i.test(String(e));
    return {
      file,
      locate,
      diagnostics: [
        { ...top, code: bomb ? CODES['alias-bomb'] : CODES['input-too-large'], kind: bomb ? 'alias-bomb' : 'input-too-large', severity: 'error',
          message: bomb ? `the policy expands YAML aliases more than ${MAX_ALIAS_COUNT} times; refusing it` : `the policy cannot be read: ${firstLine(String(e))}`,
          hint: bomb ? 'write the repeated parts out, or use fewer anchors' : undefined },
      ],
    };
  }

  const parsed = Policy.safeParse(data);
  if (!parsed.success) {
    return { file, locate, diagnostics: sortDiagnostics(schemaFindings(parsed.error.issues, data).map(place)) };
  }
  const findings = checkPolicy(parsed.data);
  const diagnostics = sortDiagnostics(findings.map(place));
  const failed = diagnostics.some((d) => d.severity === 'error');
  return failed ? { file, locate, diagnostics } : { file, locate, diagnostics, policy: parsed.data };
}

export function placeFinding(f: Finding, locate: (path: DocPath, atKey?: boolean) => Location): Diagnostic {
  const d: Diagnostic = { ...locate(f.path, f.atKey), code: CODES[f.kind], kind: f.kind, severity: f.severity, message: f.message };
  if (f.hint !== undefined) d.hint = f.hint;
  if (f.related && f.related.length > 0) d.related = f.related.map((r) => ({ ...locate(r.path), message: r.message }));
  return d;
}

export function sortDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.code.localeCompare(b.code));
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}

/** The source offset of the node at `path` (of its key with atKey), or of its closest existing parent. */
function offsetOf(doc: Document, path: DocPath, atKey: boolean): number | undefined {
  let node: unknown = doc.contents;
  let best = rangeStart(node);
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    if (!node || typeof node !== 'object' || !('items' in node)) break;
    const items = (node as { items: unknown[] }).items;
    let next: unknown;
    let keyNode: unknown;
    if (isMap(node)) {
      const pair = items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!isPair(pair)) break;
      keyNode = pair.key;
      next = pair.value;
    } else if (typeof seg === 'number') {
      next = items[seg];
    } else break;
    const last = i === path.length - 1;
    if (last && atKey && keyNode) return rangeStart(keyNode);
    const start = rangeStart(next) ?? rangeStart(keyNode);
    if (start === undefined) break;
    best = start;
    node = next;
  }
  return best;
}

function rangeStart(n: unknown): number | undefined {
  const r = (n as YamlNode | undefined)?.range;
  return Array.isArray(r) ? r[0] : undefined;
}

