// What is left of a policy the schema refused, so that `guestwall check` reports the mistakes in
// the rest (unknown zones, bad addresses, inverted ranges, ...) in the same run. Unknown keys are
// dropped; a zone, guest, rule, ... with any other problem is left out whole, its name still
// counted as known so that references to it are not reported too.
import type * as z from 'zod/mini';
import type { DocPath } from './diagnostics.js';
import { Policy } from './schema.js';
import { valueAt } from './schema-findings.js';

type Issue = z.core.$ZodIssue;

export interface Salvaged {
  /** Left-out list items are holes (forEach skips them), so the items keep their indexes. */
  policy: Policy;
  /** Names of the entries left out: they exist, only what they say is wrong. */
  known: { zones: Set<string>; guests: Set<string>; bridges: Set<string>; services: Set<string> };
}

/** How deep an entry that can be left out on its own sits: ["rules", 3], ["host", "interfaces", "eth0"]. */
const ENTRY_DEPTH: Record<string, number> = {
  zones: 2, guests: 2, bridges: 2, services: 2, policies: 2, rules: 2, forwards: 2, helpers: 2, host: 3, nat: 3, hosts: 4,
};

/** The policy without what `issues` are about, or undefined when a problem is at the top (no zones, a wrong version). */
export function salvage(data: unknown, issues: readonly Issue[]): Salvaged | undefined {
  if (!isObject(data)) return undefined;
  const copy = structuredClone(data);
  const known: Salvaged['known'] = { zones: new Set(), guests: new Set(), bridges: new Set(), services: new Set() };
  const dropped = new Map<string, { path: DocPath; indexes: Set<number> }>();

  for (const issue of issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const parent = valueAt(copy, path);
      if (isObject(parent)) for (const k of issue.keys) delete parent[k];
      continue;
    }
    const top = String(path[0]);
    const depth = Object.hasOwn(ENTRY_DEPTH, top) ? ENTRY_DEPTH[top] : undefined;
    if (depth === undefined || path.length < depth || (path[0] === 'host' && path[1] !== 'interfaces')) return undefined;
    const container = path.slice(0, depth - 1);
    const key = path[depth - 1]!;
    const holder = valueAt(copy, container);
    if (Array.isArray(holder) && typeof key === 'number') {
      const id = JSON.stringify(container);
      const entry = dropped.get(id) ?? { path: container, indexes: new Set<number>() };
      entry.indexes.add(key);
      dropped.set(id, entry);
    } else if (isObject(holder)) {
      delete holder[String(key)];
      if (depth === 2 && Object.hasOwn(known, top)) known[top as keyof Salvaged['known']].add(String(key));
    }
  }
  for (const { path, indexes } of dropped.values()) {
    const list = valueAt(copy, path) as unknown[];
    setAt(copy, path, list.filter((_, i) => !indexes.has(i)));
  }

  const parsed = Policy.safeParse(copy);
  if (!parsed.success) return undefined;
  for (const { path, indexes } of dropped.values()) {
    const kept = valueAt(parsed.data, path) as unknown[];
    const length = kept.length + indexes.size;
    const withHoles: unknown[] = new Array(length);
    for (let i = 0, j = 0; i < length; i++) if (!indexes.has(i)) withHoles[i] = kept[j++];
    setAt(parsed.data, path, withHoles);
  }
  return { policy: parsed.data, known };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}


function setAt(data: unknown, path: DocPath, value: unknown): void {
  const parent = valueAt(data, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path[path.length - 1]!] = value;
}
