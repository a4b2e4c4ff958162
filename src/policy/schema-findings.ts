// Zod issues -> findings that read like advice: "unknown key 'prots' in rule; did you mean
// 'ports'?" rather than "Unrecognized key". The known keys come from the schema itself.
import type * as z from 'zod/mini';
import { type DocPath, type Finding, didYouMean, error, suggestion } from './diagnostics.js';
import { NAME, Name, Policy } from './schema.js';
import { BUILTIN_SERVICES } from './services.js';

type Issue = z.core.$ZodIssue;

export function schemaFindings(issues: readonly Issue[], data: unknown): Finding[] {
  // A misspelled required key shows up twice: as an unknown key and as a missing one. The
  // "did you mean" on the unknown key says it all, so the missing key is not reported again.
  const suggested = new Set<string>();
  for (const i of issues) {
    if (i.code !== 'unrecognized_keys') continue;
    const path = cleanPath(i.path);
    for (const key of i.keys) {
      const s = didYouMean(key, absentKeys(path, data));
      if (s !== undefined) suggested.add(JSON.stringify([...path, s]));
    }
  }
  return issues.flatMap((i) => issueFindings(i, data, suggested));
}

function cleanPath(path: readonly PropertyKey[]): (string | number)[] {
  return path.filter((p): p is string | number => typeof p !== 'symbol');
}

function issueFindings(issue: Issue, data: unknown, suggested: ReadonlySet<string>): Finding[] {
  const path = cleanPath(issue.path);
  const what = describe(path);
  const value = valueAt(data, path);
  const missing = () => (suggested.has(JSON.stringify(path)) ? [] : [missingKey(path, issue, data)]);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = keysAt(path);
      const absent = absentKeys(path, data);
      return issue.keys.map((key) =>
        ({ ...error('unknown-key', [...path, key], `unknown key '${key}' in ${what}${suggestion(key, absent)}`,
          known.length ? `known keys here: ${known.join(', ')}` : undefined), atKey: true }),
      );
    }
    case 'invalid_type': {
      if (value === undefined) return missing();
      return [atKeyIfBlock(path, value, error('wrong-type', path, `${what} must be ${article(issue.expected)}, not ${typeName(value)}`, typeHint(issue.expected, value)))];
    }
    case 'invalid_value': {
      if (value === undefined) return missing();
      return [error('wrong-type', path, `${what} must be ${oneOf(issue.values)}, not ${show(value)}${valueSuggestion(value, issue.values)}`)];
    }
    case 'invalid_union': {
      if ('discriminator' in issue && issue.discriminator) {
        if (value === undefined) return missing();
        const options = 'options' in issue ? (issue.options as unknown[]) : [];
        return [error('wrong-type', path, `${what} must be ${oneOf(options)}, not ${show(value)}${valueSuggestion(value, options)}`)];
      }
      // The branch that got furthest (an issue below the top, or a format check) says most.
      const branches = issue.errors;
      const specific = branches.find((b) => b.some((i) => i.path.length > 0 || i.code !== 'invalid_type'));
      if (specific) {
        return specific.flatMap((i) => issueFindings({ ...i, path: [...issue.path, ...i.path] } as Issue, data, suggested));
      }
      if (value === undefined) return missing();
      const expected = [...new Set(branches.flatMap((b) => b.map((i) => (i.code === 'invalid_type' ? i.expected : ''))).filter(Boolean))];
      return [atKeyIfBlock(path, value, error('wrong-type', path, `${what} must be ${expected.map(article).join(' or ')}, not ${typeName(value)}`, typeHint(expected[expected.length - 1]!, value)))];
    }
    case 'invalid_key': {
      const key = String(path[path.length - 1]);
      const inner = issue.issues[0];
      const problem = inner ? sizeProblem(inner as Issue, key) ?? lowerFirst(inner.message) : 'is not a valid name';
      const hint = nameHint(key);
      return [{ ...error('wrong-type', path, `${nameOf(path.slice(0, -1))} '${key}' ${problem}`, hint && `${hint} (here and wherever the name is used)`), atKey: true }];
    }
    case 'invalid_format': {
      const hint = 'pattern' in issue && issue.pattern === String(NAME) && typeof value === 'string' ? nameHint(value) : formatHint(path, value);
      return [error('wrong-type', path, `${what} is ${show(value)}; it ${lowerFirst(issue.message)}`, hint)];
    }
    case 'too_small':
    case 'too_big':
      return [error('wrong-type', path, `${what} ${sizeProblem(issue, value) ?? lowerFirst(issue.message)}`)];
    default:
      return [error('wrong-type', path, `${what} ${lowerFirst(issue.message)}`)];
  }
}

/** A mapping or list where a value belongs is pointed at by its key: its first token would be some inner key. */
function atKeyIfBlock(path: DocPath, value: unknown, f: Finding): Finding {
  return value !== null && typeof value === 'object' && typeof path[path.length - 1] === 'string' ? { ...f, atKey: true } : f;
}

/** "rule 1 needs 'action'", placed at the rule (or at the name of a zone, guest, ...). */
function missingKey(path: DocPath, issue: Issue, data: unknown): Finding {
  const parent = path.slice(0, -1);
  const key = String(path[path.length - 1]);
  const options = issue.code === 'invalid_value' ? issue.values : 'options' in issue && Array.isArray(issue.options) ? (issue.options as unknown[]) : [];
  const zones = Object.keys((valueAt(data, ['zones']) as object | undefined) ?? {});
  const hint = options.length > 0
    ? `add ${key}: ${oneOf(options).replace(/'/g, '')}`
    : key === 'zone' && zones.length > 0 ? `add zone: with one of ${zones.join(', ')}` : undefined;
  const f = error('missing-key', parent, `${describe(parent)} needs '${key}'`, hint);
  return typeof parent[parent.length - 1] === 'string' ? { ...f, atKey: true } : f;
}

/** "'zone' of guest 'web'", "rule 3", "'ports' of forward 2". Rules are numbered from 1 for people. */
export function describe(path: DocPath): string {
  if (path.length === 0) return 'the policy';
  const parts: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const prev = path[i - 1];
    const one = typeof prev === 'string' ? singular(prev) : undefined;
    if (one !== undefined) {
      parts[parts.length - 1] = typeof seg === 'number' ? `${one} ${seg + 1}` : `${one} '${seg}'`;
    } else {
      parts.push(typeof seg === 'number' ? `item ${seg + 1}` : `'${seg}'`);
    }
  }
  return parts.reverse().join(' of ');
}

const SINGULAR = new Map(Object.entries({
  rules: 'rule', policies: 'policy', forwards: 'forward', guests: 'guest', zones: 'zone', bridges: 'bridge',
  services: 'service', helpers: 'helper', masquerade: 'masquerade', snat: 'snat', interfaces: 'interface',
}));
const singular = (key: string): string | undefined => SINGULAR.get(key);

/** "zone name", "guest name": what the keys of the mapping at `path` name. */
function nameOf(path: DocPath): string {
  const last = path[path.length - 1];
  const one = typeof last === 'string' ? singular(last) : undefined;
  return one ? `${one} name` : `name in ${describe(path)}`;
}

/** Words people bring from other firewalls, and what guestwall calls them. */
const SYNONYMS = new Map(Object.entries({ allow: 'accept', permit: 'accept', pass: 'accept', deny: 'drop', block: 'drop', qemu: 'kvm' }));

function valueSuggestion(value: unknown, options: readonly unknown[]): string {
  if (typeof value !== 'string') return '';
  const synonym = SYNONYMS.get(value.toLowerCase());
  if (synonym !== undefined && options.includes(synonym)) return `; did you mean '${synonym}'?`;
  return suggestion(value, options.map(String));
}

function oneOf(options: readonly unknown[]): string {
  const texts = options.map((o) => (typeof o === 'string' ? `'${o}'` : String(o)));
  if (texts.length <= 1) return texts[0] ?? 'something else';
  return `${texts.slice(0, -1).join(', ')} or ${texts[texts.length - 1]}`;
}

/** Length and bounds, in words: "has 30 characters; at most 24", "is empty; list at least one". */
function sizeProblem(issue: Issue, value: unknown): string | undefined {
  if (issue.code !== 'too_big' && issue.code !== 'too_small') return undefined;
  const bound = Number(issue.code === 'too_big' ? issue.maximum : issue.minimum);
  if (issue.origin === 'string' && typeof value === 'string') {
    if (issue.code === 'too_small' && value.length === 0) return 'is empty';
    return `has ${value.length} characters; at most ${bound} are allowed`;
  }
  if (issue.origin === 'array') return issue.code === 'too_small' ? 'is empty; list at least one' : `has more than ${bound} items`;
  if (issue.origin === 'number') return issue.code === 'too_small' ? `must be at least ${bound}` : `must be at most ${bound}`;
  return undefined;
}

/** What to write when the shape is wrong: "write [10.0.0.0/24]" for a list written as one value. */
function typeHint(expected: string, value: unknown): string | undefined {
  if (expected === 'array' && (typeof value === 'string' || typeof value === 'number')) return `write [${String(value)}]`;
  if (expected === 'array' && value !== null && typeof value === 'object') return "write a list: one item per line, each starting with '- '";
  return undefined;
}

/** "write 'lan'" for 'LAN': the name made valid, when that is close. */
function nameHint(name: string): string | undefined {
  const fixed = name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^[^a-z]+/, '').slice(0, 24);
  return fixed !== name && Name.safeParse(fixed).success ? `write '${fixed}'` : undefined;
}

/** Ports written the way other tools write them. */
function formatHint(path: DocPath, value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const colon = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(value);
  if (colon) return `write "${colon[1]}-${colon[2]}"`;
  if (path.includes('ports') && BUILTIN_SERVICES[value]) return `write service: ${value} instead of proto: and ports:`;
  return undefined;
}

function article(t: string): string {
  const map: Record<string, string> = { array: 'a list', object: 'a mapping', string: 'a string', number: 'a number', boolean: 'true or false', int: 'a whole number' };
  return map[t] ?? t;
}

function typeName(v: unknown): string {
  if (v === null) return 'null (an empty value)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string '${v}'`;
  return `${typeof v} ${String(v)}`;
}

/** A value as written: 'qemu', 2, [...]. */
function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v !== null && typeof v === 'object') return Array.isArray(v) ? 'a list' : 'a mapping';
  return String(v);
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** The value at a document path in parsed data, or undefined. */
export function valueAt(data: unknown, path: DocPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

/** Keys the schema allows at `path` that the mapping there does not have yet: what a typo may have meant. */
function absentKeys(path: DocPath, data: unknown): string[] {
  const here = valueAt(data, path);
  const present = here !== null && typeof here === 'object' ? Object.keys(here) : [];
  return keysAt(path).filter((k) => !present.includes(k));
}

/** The keys the schema allows at `path`, for "did you mean". */
export function keysAt(path: DocPath): string[] {
  let schemas: z.ZodMiniType[] = [Policy];
  for (const seg of path) schemas = schemas.flatMap((s) => child(unwrap(s), seg));
  return [...new Set(schemas.flatMap((s) => objectKeys(unwrap(s))))].sort();
}

type Def = { type: string; innerType?: z.ZodMiniType; valueType?: z.ZodMiniType; element?: z.ZodMiniType; options?: z.ZodMiniType[]; shape?: Record<string, z.ZodMiniType> };
const def = (s: z.ZodMiniType): Def => (s as unknown as { def: Def }).def;

function unwrap(s: z.ZodMiniType): z.ZodMiniType[] {
  const d = def(s);
  if ((d.type === 'optional' || d.type === 'nullable' || d.type === 'default') && d.innerType) return unwrap(d.innerType);
  if (d.type === 'union' && d.options) return d.options.flatMap(unwrap);
  return [s];
}

function child(list: z.ZodMiniType[], seg: string | number): z.ZodMiniType[] {
  return list.flatMap((s) => {
    const d = def(s);
    if (d.type === 'object' && typeof seg === 'string' && d.shape?.[seg]) return [d.shape[seg]!];
    if (d.type === 'record' && d.valueType) return [d.valueType];
    if (d.type === 'array' && d.element && typeof seg === 'number') return [d.element];
    return [];
  });
}

function objectKeys(list: z.ZodMiniType[]): string[] {
  return list.flatMap((s) => (def(s).type === 'object' ? Object.keys(def(s).shape ?? {}) : []));
}
