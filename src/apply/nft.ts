// nft through the System door: check, load, snapshot and restore guestwall's own tables.
// Documents are read from files in the state directory: nft opens /dev/stdin, which fails when
// stdin is a socket (as Node's pipes are), and a file on disk is also what a user can inspect.
import type { Table } from '../nft/ruleset.js';
import { ApplyError } from './errors.js';
import type { RunResult, System } from './system.js';

export type TableRef = Pick<Table, 'family' | 'name'>;

function nftMissing(r: RunResult): boolean {
  return r.code === 127 || /not found|No such file or directory.*nft/.test(r.stderr);
}

/** The nft version ("1.0.6"), or a clear error when nft is missing. */
export async function nftVersion(sys: System): Promise<string> {
  const r = await sys.run('nft', ['--version']);
  if (r.code !== 0 || nftMissing(r)) {
    throw new ApplyError('nft is not installed or cannot run', 'install nftables (Debian: apt-get install nftables)', 2);
  }
  return /v?(\d+\.\d+(?:\.\d+)?)/.exec(r.stdout)?.[1] ?? r.stdout.trim();
}

/** nft's own words, without the noise of repeated "internal:0:0-0" prefixes. */
export function nftMessage(r: RunResult): string {
  const lines = r.stderr.split('\n').map((l) => l.replace(/^internal:\d+:\d+-\d+:\s*/, '').trim()).filter(Boolean);
  return [...new Set(lines)].slice(0, 6).join('; ') || `nft exited with ${r.code}`;
}

/** Ask the kernel whether it would take the JSON document in `file`, changing nothing (`nft -c`). */
export async function checkJson(sys: System, file: string): Promise<RunResult> {
  return sys.run('nft', ['-c', '-j', '-f', file]);
}

/** Load the JSON document in `file`: one transaction, all or nothing. */
export async function loadJson(sys: System, file: string): Promise<RunResult> {
  return nft(sys, ['-j', '-f', file]);
}

/** Load the nft-syntax script in `file` (what snapshots are): one transaction, all or nothing. */
export async function loadScript(sys: System, file: string): Promise<RunResult> {
  return nft(sys, ['-f', file]);
}

/** Run nft; a missing nft is one clear error wherever it is first met (no `nft --version` first). */
async function nft(sys: System, args: string[]): Promise<RunResult> {
  const r = await sys.run('nft', args);
  if (nftMissing(r)) throw new ApplyError('nft is not installed or cannot run', 'install nftables (Debian: apt-get install nftables)', 2);
  return r;
}

/**
 * A script that puts `tables` back exactly as they are now: each present table replaced by its
 * current listing, each absent one deleted. nft's listing is made to be read back (tested).
 */
export async function snapshot(sys: System, tables: TableRef[]): Promise<string> {
  // One `nft list ruleset`, cut into tables: nft 1.0.6 cannot list several tables in one run
  // ("list table a; list table b" fails), and one process is half the time of one per table.
  const r = await nft(sys, ['list', 'ruleset']);
  if (r.code !== 0) throw new ApplyError(`cannot read guestwall's tables: ${nftMessage(r)}`);
  const listed = tableTexts(r.stdout);
  const parts: string[] = ['# guestwall snapshot: restores its tables as they were'];
  for (const t of tables) {
    parts.push(`table ${t.family} ${t.name} {}`, `delete table ${t.family} ${t.name}`);
    const text = listed.get(`${t.family} ${t.name}`);
    if (text !== undefined) parts.push(text);
  }
  return `${parts.join('\n')}\n`;
}

/** `nft list ruleset` text cut into its tables, by "family name"; each from its `table` line to its closing brace. */
export function tableTexts(listing: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = listing.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^table (\S+) (\S+) \{$/.exec(lines[i]!);
    if (!m) continue;
    const end = lines.indexOf('}', i);
    if (end < 0) throw new ApplyError(`nft's listing of table ${m[1]} ${m[2]} is cut short`);
    out.set(`${m[1]} ${m[2]}`, lines.slice(i, end + 1).join('\n'));
    i = end;
  }
  return out;
}

/** The JSON listing of `tables` (one `nft -j list ruleset`, other tables left out); absent tables are simply not in it. */
export async function listTables(sys: System, tables: TableRef[]): Promise<NftListing> {
  const r = await nft(sys, ['-j', 'list', 'ruleset']);
  if (r.code !== 0) throw new ApplyError(`cannot list guestwall's tables: ${nftMessage(r)}`);
  const wanted = new Set(tables.map((t) => `${t.family} ${t.name}`));
  const all = (JSON.parse(r.stdout) as NftListing).nftables;
  return {
    nftables: all.filter((o) => {
      const [kind, v] = Object.entries(o)[0] ?? [];
      if (kind === 'metainfo' || v === undefined) return false;
      return wanted.has(`${v.family} ${kind === 'table' ? v.name : v.table}`);
    }),
  };
}

/** `nft -j list ruleset`, parsed. */
export async function listRuleset(sys: System): Promise<NftListing> {
  const r = await sys.run('nft', ['-j', 'list', 'ruleset']);
  if (r.code !== 0) throw new ApplyError(`cannot list the ruleset: ${nftMessage(r)}`);
  return JSON.parse(r.stdout) as NftListing;
}

/** The parts of `nft -j list` output guestwall reads (nft 1.0.6 and later). */
export interface NftListing {
  nftables: Record<string, Record<string, unknown>>[];
}
