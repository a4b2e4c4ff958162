// Diagnostics are values: every mistake a user can make becomes one of these, collected and
// never thrown. Checks report a `path` into the policy document; load.ts turns paths into
// file:line:col, so checks never need to know about YAML nodes.

export type Severity = 'error' | 'warning';

/** Stable codes: users, `--json` consumers and docs refer to these. Never renumber. */
export const CODES = {
  'yaml-syntax': 'GW001',
  'input-too-large': 'GW002',
  'alias-bomb': 'GW003',
  'unknown-key': 'GW010',
  'wrong-type': 'GW011',
  'unknown-zone': 'GW012',
  'unknown-guest': 'GW013',
  'unknown-bridge': 'GW014',
  'unknown-service': 'GW015',
  'unknown-endpoint': 'GW016',
  'missing-key': 'GW017',
  'duplicate-name': 'GW020',
  'invalid-address': 'GW021',
  'overlapping-networks': 'GW022',
  'address-outside-zone': 'GW023',
  'invalid-mac': 'GW024',
  'duplicate-mac': 'GW025',
  'duplicate-address': 'GW026',
  'invalid-ifname': 'GW027',
  'ifname-too-long': 'GW028',
  'port-out-of-range': 'GW029',
  'inverted-range': 'GW030',
  'forward-conflict': 'GW031',
  'duplicate-interface': 'GW032',
  'invalid-rule': 'GW033',
  'reserved-name': 'GW034',
  'unstable-ifname': 'GW035',
  'hairpin-needs-address': 'GW036',
  'unknown-icmp-type': 'GW037',
  'forward-without-ports': 'GW038',
  'invalid-text': 'GW039',
  // Fleet policies (hosts:), checked in fleet-checks.ts.
  'unknown-host': 'GW040',
  'fleet-shape': 'GW041',
  'fleet-duplicate-interface': 'GW042',
  'fleet-duplicate-mac': 'GW043',
  'fleet-duplicate-address': 'GW044',
  'fleet-missing-bridge': 'GW045',
  'fleet-unreachable-address': 'GW046',
  'invalid-hairpin-mark': 'GW047',
  'shadowed-rule': 'GW100',
  'unreachable-zone': 'GW101',
  'permissive-public-zone': 'GW102',
  'empty-zone': 'GW103',
  // GW104 'bridged-unfiltered' is retired: guests on one bridge are filtered in the bridge family now.
  'antispoof-incomplete': 'GW105',
  'bridge-stateless': 'GW106',
  'bridge-reject-drop': 'GW107',
  'forward-icmp-ignored': 'GW108',
} as const;

export type DiagnosticKind = keyof typeof CODES;
export type DiagnosticCode = (typeof CODES)[DiagnosticKind];

/** A path into the policy document: keys and list indexes, e.g. ["guests", "web", "interfaces", 0, "mac"]. */
export type DocPath = readonly (string | number)[];

/** What a check reports: where (as a path) and what. */
export interface Finding {
  kind: DiagnosticKind;
  severity: Severity;
  message: string;
  /** What to write instead, when there is something to say beyond the message. */
  hint?: string;
  path: DocPath;
  /** Point at the key of the last path element rather than its value (e.g. an unknown key). */
  atKey?: boolean;
  /** Other places that matter (e.g. the first of two duplicates); atKey as above. */
  related?: { path: DocPath; message: string; atKey?: boolean }[];
}

export interface Location {
  file: string;
  line: number;
  col: number;
}

/** What users see: a finding placed in a file. */
export interface Diagnostic extends Location {
  code: DiagnosticCode;
  kind: DiagnosticKind;
  severity: Severity;
  message: string;
  hint?: string;
  related?: (Location & { message: string })[];
}

export function error(kind: DiagnosticKind, path: DocPath, message: string, hint?: string): Finding {
  return hint === undefined ? { kind, severity: 'error', path, message } : { kind, severity: 'error', path, message, hint };
}

export function warning(kind: DiagnosticKind, path: DocPath, message: string, hint?: string): Finding {
  return hint === undefined ? { kind, severity: 'warning', path, message } : { kind, severity: 'warning', path, message, hint };
}

/**
 * Text as a terminal shows it unchanged: control characters, bidi controls and other invisible
 * format characters (U+202E would turn the rest of the line around, a newline would forge a
 * diagnostic line) are written as \\uXXXX escapes. Names with them are refused anyway; the
 * message that says so must not itself be garbled.
 */
export function printable(s: string): string {
  return s.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`);
}

/** A diagnostic whose message, hint and notes are printable(). */
export function printableDiagnostic(d: Diagnostic): Diagnostic {
  const out: Diagnostic = { ...d, file: printable(d.file), message: printable(d.message) };
  if (d.hint !== undefined) out.hint = printable(d.hint);
  if (d.related) out.related = d.related.map((r) => ({ ...r, file: printable(r.file), message: printable(r.message) }));
  return out;
}

/** `file:line:col: error: message (GW012)` plus the hint and related places on their own lines. */
export function formatDiagnostic(d: Diagnostic): string {
  const lines = [`${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message} [${d.code} ${d.kind}]`];
  if (d.hint) lines.push(`  hint: ${d.hint}`);
  for (const r of d.related ?? []) lines.push(`  ${r.file}:${r.line}:${r.col}: note: ${r.message}`);
  return lines.join('\n');
}

export function hasErrors(ds: readonly { severity: Severity }[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

/**
 * "did you mean" by edit distance: the closest candidate within a third of the word's length
 * (at least one edit). A swap of two neighbouring letters counts as one edit ('wbe' -> 'web').
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && best !== word && bestDist <= limit ? best : undefined;
}

export function suggestion(word: string, candidates: Iterable<string>): string {
  const s = didYouMean(word, candidates);
  return s === undefined ? '' : `; did you mean '${s}'?`;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, sub);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j]!, before[j - 2]! + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}
