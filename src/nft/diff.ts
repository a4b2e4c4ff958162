// Rule-by-rule and element-by-element differences between two listings of guestwall's tables
// made by the same nft (the live one, and the compiled ruleset loaded in a scratch namespace),
// so that both sides are spelled the same way. Counters are ignored: they are state, not rules.

export interface TableListing {
  /** Chain name -> rule lines, as `nft list` prints them. */
  chains: Map<string, string[]>;
  /** Set or map name -> elements, as comparable text. */
  sets: Map<string, string[]>;
}

export interface Change {
  where: string;
  kind: '+' | '-';
  text: string;
}

/** Parse `nft list table F N` text (rules) and `nft -j list table F N` (elements). */
export function parseListing(text: string | undefined, json: string | undefined): TableListing {
  const chains = new Map<string, string[]>();
  let chain: string | undefined;
  let header = false;
  for (const raw of (text ?? '').split('\n')) {
    const line = raw.trim();
    const open = /^chain (\S+) \{$/.exec(line);
    if (open) {
      chain = open[1]!;
      chains.set(chain, []);
      header = true;
      continue;
    }
    if (line === '}') {
      chain = undefined;
      continue;
    }
    if (chain === undefined || line === '') continue;
    if (header && /^type \S+ hook /.test(line)) {
      chains.get(chain)!.push(line);
      continue;
    }
    header = false;
    chains.get(chain)!.push(line.replace(/\bcounter packets \d+ bytes \d+/, 'counter'));
  }
  const sets = new Map<string, string[]>();
  if (json !== undefined) {
    for (const item of (JSON.parse(json) as { nftables: Record<string, Record<string, unknown>>[] }).nftables) {
      const s = item.set ?? item.map;
      if (!s) continue;
      const elems = (s.elem as unknown[] | undefined) ?? [];
      sets.set(String(s.name), elems.map((e) => JSON.stringify(e)).sort());
    }
  }
  return { chains, sets };
}

/** What loading `next` over `live` changes, in the order a reader wants: chains, then sets. */
export function diffListings(live: TableListing, next: TableListing): Change[] {
  const out: Change[] = [];
  const names = [...new Set([...next.chains.keys(), ...live.chains.keys()])];
  for (const name of names) {
    const a = live.chains.get(name);
    const b = next.chains.get(name);
    if (!a) out.push({ where: `chain ${name}`, kind: '+', text: `new chain (${b!.length} lines)` });
    if (!b) out.push({ where: `chain ${name}`, kind: '-', text: 'chain removed' });
    for (const c of lineDiff(a ?? [], b ?? [])) out.push({ where: `chain ${name}`, ...c });
  }
  const setNames = [...new Set([...next.sets.keys(), ...live.sets.keys()])];
  for (const name of setNames) {
    const a = new Set(live.sets.get(name) ?? []);
    const b = new Set(next.sets.get(name) ?? []);
    for (const e of b) if (!a.has(e)) out.push({ where: `set ${name}`, kind: '+', text: e });
    for (const e of a) if (!b.has(e)) out.push({ where: `set ${name}`, kind: '-', text: e });
  }
  return out;
}

/** Line diff by longest common subsequence: rules keep their order, so moves show as -/+. */
function lineDiff(a: string[], b: string[]): { kind: '+' | '-'; text: string }[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: { kind: '+' | '-'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < m && (i === n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) out.push({ kind: '+', text: b[j++]! });
    else out.push({ kind: '-', text: a[i++]! });
  }
  return out;
}

export function formatChanges(changes: Change[]): string {
  const lines: string[] = [];
  let where = '';
  for (const c of changes) {
    if (c.where !== where) {
      where = c.where;
      lines.push(`${where}:`);
    }
    lines.push(`  ${c.kind} ${c.text}`);
  }
  return lines.join('\n');
}
