// Zod issues -> findings that read like advice: "unknown key 'prots' in rule; did you mean
// 'ports'?" rather than "Unrecognized key". The known keys come from the schema itself.
import type { z } from 'zod';
import { type DocPath, type Finding, error, suggestion } from './diagnostics.js';
import { Policy } from './schema.js';

type Issue = z.core.$ZodIssue;

export function schemaFindings(issues: readonly Issue[], data: unknown): Finding[] {
  return issues.flatMap((i) => issueFindings(i, data));
}

function issueFindings(issue: Issue, data: unknown): Finding[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const what = describe(path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = keysAt(path);
      return issue.keys.map((key) =>
        ({ ...error('unknown-key', [...path, key], `unknown key '${key}' in ${what}${suggestion(key, known)}`,
          known.length ? `known keys here: ${known.join(', ')}` : undefined), atKey: true }),
      );
    }
    case 'invalid_type': {
      const value = valueAt(data, path);
      if (value === undefined) {
        const parent = path.slice(0, -1);
        return [{ ...error('missing-key', parent, `${describe(parent)} needs '${String(path[path.length - 1])}'`) }];
      }
      return [error('wrong-type', path, `${what} must be ${article(issue.expected)}, not ${typeName(value)}`)];
    }
    case 'invalid_value': {
      const value = valueAt(data, path);
      const options = issue.values.map((v) => `'${String(v)}'`);
      const hint = typeof value === 'string' ? suggestion(value, issue.values.map(String)) : '';
      return [error('wrong-type', path, `${what} must be ${options.length === 1 ? options[0] : `one of ${options.join(', ')}`}${hint}`)];
    }
    case 'invalid_union': {
      if ('discriminator' in issue && issue.discriminator) {
        const options = ('options' in issue ? (issue.options as unknown[]) : []).map((o) => `'${String(o)}'`);
        return [error('wrong-type', path, `${what} must be ${options.join(' or ')}`)];
      }
      // The branch that got furthest (an issue below the top, or a format check) says most.
      const branches = issue.errors;
      const specific = branches.find((b) => b.some((i) => i.path.length > 0 || i.code !== 'invalid_type'));
      if (specific) {
        return specific.flatMap((i) => issueFindings({ ...i, path: [...issue.path, ...i.path] } as Issue, data));
      }
      const expected = [...new Set(branches.flatMap((b) => b.map((i) => (i.code === 'invalid_type' ? i.expected : ''))).filter(Boolean))];
      return [error('wrong-type', path, `${what} must be ${expected.map(article).join(' or ')}, not ${typeName(valueAt(data, path))}`)];
    }
    case 'invalid_key': {
      const key = String(path[path.length - 1]);
      const inner = issue.issues[0]?.message ?? 'is not a valid name';
      return [{ ...error('wrong-type', path, `name '${key}' in ${describe(path.slice(0, -1))} ${inner}`), atKey: true }];
    }
    case 'too_small':
    case 'too_big':
    case 'invalid_format':
    case 'custom':
    default:
      return [error('wrong-type', path, `${what} ${lowerFirst(issue.message)}`)];
  }
}

/** "'zone' of guest 'web'", "rule 3", "'ports' of forward 2". Rules are numbered from 1 for people. */
export function describe(path: DocPath): string {
  if (path.length === 0) return 'the policy';
  const names: Record<string, string> = {
    rules: 'rule', policies: 'policy', forwards: 'forward', guests: 'guest', zones: 'zone', bridges: 'bridge',
    services: 'service', helpers: 'helper', masquerade: 'masquerade', snat: 'snat', interfaces: 'interface',
  };
  const parts: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const prev = path[i - 1];
    if (typeof prev === 'string' && names[prev] && i > 0) {
      parts[parts.length - 1] = typeof seg === 'number' ? `${names[prev]} ${seg + 1}` : `${names[prev]} '${seg}'`;
    } else {
      parts.push(typeof seg === 'number' ? `item ${seg + 1}` : `'${seg}'`);
    }
  }
  return parts.reverse().join(' of ');
}

function article(t: string): string {
  const map: Record<string, string> = { array: 'a list', object: 'a mapping', string: 'a string', number: 'a number', boolean: 'true or false', int: 'a whole number' };
  return map[t] ?? t;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string '${v}'`;
  return `${typeof v} ${String(v)}`;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function valueAt(data: unknown, path: DocPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** The keys the schema allows at `path`, for "did you mean". */
export function keysAt(path: DocPath): string[] {
  let schemas: z.ZodType[] = [Policy];
  for (const seg of path) schemas = schemas.flatMap((s) => child(unwrap(s), seg));
  return [...new Set(schemas.flatMap((s) => objectKeys(unwrap(s))))].sort();
}

type Def = { type: string; innerType?: z.ZodType; valueType?: z.ZodType; element?: z.ZodType; options?: z.ZodType[]; shape?: Record<string, z.ZodType> };
const def = (s: z.ZodType): Def => (s as unknown as { def: Def }).def;

function unwrap(s: z.ZodType): z.ZodType[] {
  const d = def(s);
  if ((d.type === 'optional' || d.type === 'nullable' || d.type === 'default') && d.innerType) return unwrap(d.innerType);
  if (d.type === 'union' && d.options) return d.options.flatMap(unwrap);
  return [s];
}

function child(list: z.ZodType[], seg: string | number): z.ZodType[] {
  return list.flatMap((s) => {
    const d = def(s);
    if (d.type === 'object' && typeof seg === 'string' && d.shape?.[seg]) return [d.shape[seg]!];
    if (d.type === 'record' && d.valueType) return [d.valueType];
    if (d.type === 'array' && d.element && typeof seg === 'number') return [d.element];
    return [];
  });
}

function objectKeys(list: z.ZodType[]): string[] {
  return list.flatMap((s) => (def(s).type === 'object' ? Object.keys(def(s).shape ?? {}) : []));
}
