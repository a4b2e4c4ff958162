// The bad-input corpus: one folder per mistake under tests/cases/, with the policy and the
// diagnostics `guestwall check` prints for it, exactly as formatDiagnostic prints them.
// UPDATE_GOLDEN=1 rewrites the golden files instead of comparing; review the diff like code.
//
// Folder numbers say what a case is: 00-09 valid (no diagnostics), 60-69 warnings only, every
// other number at least one error.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../../../src/compile/pipeline.js';
import { MAX_ZONES } from '../../../src/policy/checks.js';
import { type Diagnostic, formatDiagnostic, printable } from '../../../src/policy/diagnostics.js';
import { MAX_ALIAS_COUNT, MAX_POLICY_BYTES } from '../../../src/policy/load.js';

const CASES = fileURLToPath(new URL('../../cases/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const cases = readdirSync(CASES, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

function render(ds: readonly Diagnostic[]): string {
  return ds.map((d) => `${formatDiagnostic(d)}\n`).join('');
}

function kindOf(name: string): 'valid' | 'warnings' | 'errors' {
  const n = Number(name.slice(0, 2));
  return n < 10 ? 'valid' : n >= 60 && n < 70 ? 'warnings' : 'errors';
}

/** The YAML token that starts at line:col: a key, a plain or quoted scalar, or a bracket. */
function tokenAt(text: string, line: number, col: number): string {
  const rest = (text.split('\n')[line - 1] ?? '').slice(col - 1);
  const quote = rest[0];
  if (quote === '"' || quote === "'") return rest.slice(1, Math.max(1, rest.indexOf(quote, 1)));
  if (quote === '{' || quote === '[' || quote === '-') return quote;
  let end = 0;
  while (end < rest.length && !/[,\]}]/.test(rest[end]!) && !(rest[end] === ':' && /\s|$/.test(rest[end + 1] ?? '')) && !(rest[end] === ' ' && rest[end + 1] === '#')) end++;
  return rest.slice(0, end).trim();
}

/** Is line:col the first token of a list item (a mistake about the whole item is placed there)? */
function atItemStart(text: string, line: number, col: number): boolean {
  const prefix = (text.split('\n')[line - 1] ?? '').slice(0, col - 1);
  return /^\s*(-\s+)+$/.test(prefix) || /^[{[-]/.test(tokenAt(text, line, col));
}

/** Is line:col inside a comment (or past the end of its line)? */
function inComment(text: string, line: number, col: number): boolean {
  const l = text.split('\n')[line - 1] ?? '';
  const hash = l.search(/(^|\s)#/);
  return col > l.length || (hash >= 0 && col - 1 >= hash + (l[hash] === '#' ? 0 : 1));
}

describe('the bad-input corpus (tests/cases)', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThan(40);
  });

  for (const name of cases) {
    describe(name, () => {
      const dir = join(CASES, name);
      const text = readFileSync(join(dir, 'policy.yaml'), 'utf8');
      const result = compilePolicyText('policy.yaml', text);
      const golden = join(dir, 'diagnostics.txt');

      it('prints the golden diagnostics', () => {
        const got = render(result.diagnostics);
        if (UPDATE) writeFileSync(golden, got);
        else expect(got, `${golden} (UPDATE_GOLDEN=1 rewrites it)`).toBe(existsSync(golden) ? readFileSync(golden, 'utf8') : '<missing>');
      });

      it(`is ${kindOf(name) === 'valid' ? 'valid' : kindOf(name) === 'warnings' ? 'valid, with warnings' : 'refused with errors'}`, () => {
        const errors = result.diagnostics.filter((d) => d.severity === 'error');
        const warnings = result.diagnostics.filter((d) => d.severity === 'warning');
        if (kindOf(name) === 'valid') expect(result.diagnostics).toEqual([]);
        if (kindOf(name) === 'warnings') {
          expect(errors).toEqual([]);
          expect(warnings.length).toBeGreaterThan(0);
        }
        if (kindOf(name) === 'errors') {
          expect(errors.length).toBeGreaterThan(0);
          expect(result.compiled).toBeUndefined();
        } else {
          expect(result.compiled).toBeDefined();
        }
      });

      it('points every diagnostic at a token, and names the token in the message', () => {
        for (const d of result.diagnostics) {
          const where = `${d.line}:${d.col} ${d.message}`;
          expect(inComment(text, d.line, d.col), `${where}: in a comment or past the end of the line`).toBe(false);
          for (const r of d.related ?? []) expect(inComment(text, r.line, r.col), `${r.line}:${r.col} ${r.message}`).toBe(false);
          if (d.kind === 'yaml-syntax') continue; // the parser's own positions: at the tab, the stray bracket
          const token = tokenAt(text, d.line, d.col);
          expect(token.trim(), `${where}: not at a token`).not.toBe('');
          // A mistake in one value or key names it; one about a whole item ("rule 1 needs
          // 'action'") points at the item's first token.
          if (!atItemStart(text, d.line, d.col)) {
            const said = `${d.message} ${d.hint ?? ''}`;
            // A double-quoted token with escapes ("la\nn") is named as diagnostics print it (la\u000an).
            const decoded = /\\/.test(token) ? (() => { try { return printable(JSON.parse(`"${token}"`) as string); } catch { return token; } })() : token;
            const named = said.includes(token) || said.includes(`${token}:`) || said.includes(`'${token}'`) || said.includes(decoded);
            expect(named, `${where}: the token at the location, '${token}', is not named in the message`).toBe(true);
          }
        }
      });
    });
  }
});

// Inputs that must be refused quickly rather than expanded or parsed at length. They are made
// here, not committed: vitest's timeout is the guard against a hang.
describe('hostile input is refused, not expanded', () => {
  it('refuses a billion-laughs alias bomb (9 levels of 9 aliases each)', () => {
    const levels = 'abcdefghi'.split('');
    const lines = ['version: 1', `${levels[0]}: &${levels[0]} [${Array(9).fill('"lol"').join(', ')}]`];
    for (let i = 1; i < levels.length; i++) lines.push(`${levels[i]}: &${levels[i]} [${Array(9).fill(`*${levels[i - 1]}`).join(', ')}]`);
    const result = compilePolicyText('policy.yaml', `${lines.join('\n')}\n`);
    expect(result.diagnostics).toHaveLength(1);
    expect(result.diagnostics[0]).toMatchObject({ kind: 'alias-bomb', code: 'GW003', severity: 'error', line: 3, col: 8 });
    expect(result.diagnostics[0]!.message).toContain(String(MAX_ALIAS_COUNT));
  });

  it('refuses one anchor used more often than the limit', () => {
    const text = `version: 1\nzones:\n  net: &z { description: x }\n${Array.from({ length: MAX_ALIAS_COUNT + 1 }, (_, i) => `  z${i}: *z`).join('\n')}\n`;
    expect(compilePolicyText('policy.yaml', text).diagnostics.map((d) => d.kind)).toEqual(['alias-bomb']);
  });

  it('reads a few aliases as usual', () => {
    const text = [
      'version: 1',
      'host: { interfaces: { eth0: { zone: net } } }',
      'zones: { net: {}, lan: { networks: [192.168.1.0/24] } }',
      'bridges: { br-lan: { zone: lan, addresses: [192.168.1.1/24] } }',
      'policies:',
      '  - { from: lan, to: &everywhere all, action: accept }',
      '  - { from: host, to: *everywhere, action: accept }',
      '  - { from: all, to: *everywhere, action: drop }',
      '',
    ].join('\n');
    expect(compilePolicyText('policy.yaml', text).diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });

  it('refuses an oversized file before parsing it', () => {
    const text = `version: 1\n# ${'x'.repeat(MAX_POLICY_BYTES)}\n`;
    const result = compilePolicyText('policy.yaml', text);
    expect(result.diagnostics).toHaveLength(1);
    expect(result.diagnostics[0]).toMatchObject({ kind: 'input-too-large', code: 'GW002', severity: 'error' });
    expect(result.diagnostics[0]!.message).toContain(String(MAX_POLICY_BYTES));
  });

  it('refuses more zones than the compiler can pair up, at the zones: key', () => {
    const zones = Array.from({ length: MAX_ZONES + 1 }, (_, i) => `  z${i}: {}`).join('\n');
    const result = compilePolicyText('policy.yaml', `version: 1\nzones:\n${zones}\n`);
    expect(result.diagnostics).toHaveLength(1);
    expect(result.diagnostics[0]).toMatchObject({ kind: 'input-too-large', severity: 'error', line: 2, col: 1 });
  });

  it('refuses lists nested too deeply to read, without crashing', () => {
    const depth = 100_000;
    const result = compilePolicyText('policy.yaml', `version: 1\nzones: ${'['.repeat(depth)}${']'.repeat(depth)}\n`);
    expect(result.diagnostics.length).toBeGreaterThan(0);
    expect(result.diagnostics.every((d) => d.severity === 'error')).toBe(true);
  });
});
