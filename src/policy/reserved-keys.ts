// Keys a policy cannot use as names: the properties every JavaScript object has
// (`__proto__`, `constructor`, `toString`, ...). As a key of a plain object `__proto__` sets the
// prototype instead of adding an entry, and a lookup of `constructor` finds a function: the
// validator would drop the entry or the checks would see a name nobody declared. Both YAML
// readers keep such keys as data; this reports every one at its place and hands on the document
// without them, so the rest of the policy is still checked.
import { type DocPath, type Finding, error } from './diagnostics.js';

/** Every property name Object.prototype has, in any case: no name may be one of them. */
export const OBJECT_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

export function isObjectKey(name: string): boolean {
  return OBJECT_KEYS.has(name);
}

/** The findings for every reserved key in `data`, and a copy of `data` without those keys. */
export function withoutReservedKeys(data: unknown): { findings: Finding[]; data: unknown } {
  const findings: Finding[] = [];
  const walk = (v: unknown, path: DocPath): unknown => {
    if (Array.isArray(v)) {
      // Most of a policy has no reserved key: copy only where something changes.
      let copy: unknown[] | undefined;
      v.forEach((item, i) => {
        const w = walk(item, [...path, i]);
        if (w !== item) (copy ??= [...v])[i] = w;
      });
      return copy ?? v;
    }
    if (v === null || typeof v !== 'object') return v;
    const keys = Object.keys(v);
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const item = (v as Record<string, unknown>)[k];
      if (OBJECT_KEYS.has(k)) {
        changed = true;
        findings.push({
          ...error('reserved-name', [...path, k], `'${k}' cannot be a name or key in a policy: every JavaScript object has a property '${k}', so guestwall could not tell the two apart`,
            `rename it (e.g. '${k.replace(/^_+|_+$/g, '').toLowerCase() || 'x'}-1')`),
          atKey: true,
        });
        continue;
      }
      const w = walk(item, [...path, k]);
      if (w !== item) changed = true;
      out[k] = w;
    }
    return changed ? out : v;
  };
  const out = walk(data, []);
  return { findings, data: out };
}
