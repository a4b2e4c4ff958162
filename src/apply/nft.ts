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
  return sys.run('nft', ['-j', '-f', file]);
}

/** Load the nft-syntax script in `file` (what snapshots are): one transaction, all or nothing. */
export async function loadScript(sys: System, file: string): Promise<RunResult> {
  return sys.run('nft', ['-f', file]);
}

/**
 * A script that puts `tables` back exactly as they are now: each present table replaced by its
 * current listing, each absent one deleted. nft's listing is made to be read back (tested).
 */
export async function snapshot(sys: System, tables: TableRef[]): Promise<string> {
  const parts: string[] = ['# guestwall snapshot: restores its tables as they were'];
  // One nft per table, side by side: listing is nft's slow part (seconds for 10,000 guests).
  const listings = await Promise.all(tables.map((t) => sys.run('nft', ['list', 'table', t.family, t.name])));
  tables.forEach((t, i) => {
    const r = listings[i]!;
    parts.push(`table ${t.family} ${t.name} {}`, `delete table ${t.family} ${t.name}`);
    if (r.code === 0) parts.push(r.stdout.trimEnd());
    else if (!absent(r)) throw new ApplyError(`cannot read table ${t.family} ${t.name}: ${nftMessage(r)}`);
  });
  return `${parts.join('\n')}\n`;
}

/** `nft -j list table` for each of `tables`, side by side, as one listing; tables that do not exist are left out. */
export async function listTables(sys: System, tables: TableRef[]): Promise<NftListing> {
  const parts = await Promise.all(tables.map(async (t) => {
    const r = await sys.run('nft', ['-j', 'list', 'table', t.family, t.name]);
    if (r.code === 0) return (JSON.parse(r.stdout) as NftListing).nftables;
    if (absent(r)) return [];
    throw new ApplyError(`cannot list table ${t.family} ${t.name}: ${nftMessage(r)}`);
  }));
  return { nftables: parts.flat() };
}

/** nft's answer when the table asked for does not exist. */
const absent = (r: RunResult) => r.code !== 0 && /No such file or directory/.test(r.stderr);

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
