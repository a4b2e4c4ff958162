// Where each part of a policy is written, as offsets into its text: what turns a finding's document
// path (guests.web.interfaces[0].mac) into file:line:col. Built by the block reader
// (block-yaml.ts) as it reads, or from the `yaml` library's document for anything else.
import { yamlLib } from './yaml-lib.js';
import type { DocPath } from './diagnostics.js';

/** Where a node is written: a scalar's offset, or a collection's with where its children are. */
export type Placed = number | PlacedMapping | PlacedSequence;

/**
 * A mapping's entries in the order written, as three lists (cheaper to build than a Map for each
 * of a policy's tens of thousands of mappings, few of which are ever looked up).
 */
export interface PlacedMapping {
  /** The offset of its first key. */
  start: number;
  keys: string[];
  /** Where each key is written. */
  keyStarts: number[];
  values: (Placed | undefined)[];
  /** Key -> its first entry, made by the first lookup in a mapping too big to search in order. */
  index?: Map<string, number>;
}

export interface PlacedSequence {
  /** The offset of its first '-', or of its '['. */
  start: number;
  items: (Placed | undefined)[];
}

/** The first entry with this key (`yaml` reports a key written twice), or -1. */
function entryOf(map: PlacedMapping, key: string): number {
  if (map.keys.length <= 16) return map.keys.indexOf(key);
  if (!map.index) {
    map.index = new Map();
    map.keys.forEach((k, i) => map.index!.has(k) || map.index!.set(k, i));
  }
  return map.index.get(key) ?? -1;
}

const startOf = (p: Placed | undefined): number | undefined => (typeof p === 'number' ? p : p?.start);

/** The places of a node of a `yaml` document (its contents, a collection or a scalar). */
export function placedFromYaml(node: unknown): Placed | undefined {
  const start = (node as { range?: unknown } | null)?.range;
  if (!Array.isArray(start)) return undefined;
  const { isMap, isScalar, isSeq } = yamlLib();
  if (isMap(node)) {
    const placed: PlacedMapping = { start: start[0] as number, keys: [], keyStarts: [], values: [] };
    for (const pair of node.items) {
      if (!isScalar(pair.key) || !Array.isArray(pair.key.range)) continue;
      placed.keys.push(String(pair.key.value));
      placed.keyStarts.push(pair.key.range[0]);
      placed.values.push(placedFromYaml(pair.value));
    }
    return placed;
  }
  if (isSeq(node)) return { start: start[0] as number, items: node.items.map(placedFromYaml) };
  return start[0] as number;
}

/**
 * The offset of the node at `path` (of its key with atKey); where the path leaves the document,
 * of the closest node on it that is there.
 */
export function offsetOf(root: Placed | undefined, path: DocPath, atKey = false): number | undefined {
  let node = root;
  let best = startOf(root);
  for (let i = 0; i < path.length && typeof node === 'object'; i++) {
    const seg = path[i]!;
    let next: Placed | undefined;
    let keyStart: number | undefined;
    if ('keys' in node) {
      const k = entryOf(node, String(seg));
      if (k < 0) break;
      keyStart = node.keyStarts[k];
      next = node.values[k];
    } else if (typeof seg === 'number') {
      next = node.items[seg];
    } else break;
    if (atKey && keyStart !== undefined && i === path.length - 1) return keyStart;
    const start = startOf(next) ?? keyStart;
    if (start === undefined) break;
    best = start;
    node = next;
  }
  return best;
}
