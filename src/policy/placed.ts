// Where each part of a policy is written, as offsets into its text: what turns a finding's document
// path (guests.web.interfaces[0].mac) into file:line:col. Built by the block reader
// (block-yaml.ts) as it reads, or from the `yaml` library's document for anything else.
import { isMap, isScalar, isSeq } from 'yaml';
import type { DocPath } from './diagnostics.js';

/** Where a node is written: a scalar's offset, or a collection's with where its children are. */
export type Placed = number | PlacedMapping | PlacedSequence;

export interface PlacedMapping {
  /** The offset of its first key. */
  start: number;
  /** Its entries by key (the first, if a key is written twice): where the key is, and its value. */
  entries: Map<string, { keyStart: number; value: Placed | undefined }>;
}

export interface PlacedSequence {
  /** The offset of its first '-', or of its '['. */
  start: number;
  items: (Placed | undefined)[];
}

const startOf = (p: Placed | undefined): number | undefined => (typeof p === 'number' ? p : p?.start);

/** The places of a node of a `yaml` document (its contents, a collection or a scalar). */
export function placedFromYaml(node: unknown): Placed | undefined {
  const start = (node as { range?: unknown } | null)?.range;
  if (!Array.isArray(start)) return undefined;
  if (isMap(node)) {
    const entries: PlacedMapping['entries'] = new Map();
    for (const pair of node.items) {
      if (!isScalar(pair.key) || !Array.isArray(pair.key.range)) continue;
      const key = String(pair.key.value);
      if (!entries.has(key)) entries.set(key, { keyStart: pair.key.range[0], value: placedFromYaml(pair.value) });
    }
    return { start: start[0] as number, entries };
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
    if ('entries' in node) {
      const entry = node.entries.get(String(seg));
      if (!entry) break;
      keyStart = entry.keyStart;
      next = entry.value;
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
