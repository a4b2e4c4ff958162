// Reading and writing guestwall's state files so that they survive faults: every write is
// atomic and durable (System.writeFile: temporary file, fsync, rename, fsync of the directory),
// every read is validated, and a file that is missing, cut short or not what guestwall wrote is
// one clear line (what is wrong, what to run), never a stack trace or a silent wrong answer.
import { createHash } from 'node:crypto';
import type { LiveAddress, LiveProxy, LiveRoute, NetworkSnapshot, OwnedNetwork, OwnedSysctl } from '../emit/network-plan.js';
import { ApplyError, stateIoError } from './errors.js';
import type { PendingConfirm } from './state.js';
import type { System } from './system.js';

/** A state file that is there but not what guestwall wrote. Exit 2, like any unreadable file. */
export class StateFileError extends ApplyError {
  constructor(path: string, problem: string, todo: string) {
    super(`state file ${path} ${problem}: ${todo}`, undefined, 2);
  }
}

export async function readState(sys: System, path: string): Promise<string | undefined> {
  try {
    return await sys.readFile(path);
  } catch (e) {
    throw stateIoError(e, path, 'read');
  }
}

/** Atomic and durable (fsync'd), or with `durable` false only atomic: for what no one reads after a crash. */
export async function writeState(sys: System, path: string, text: string, durable = true): Promise<void> {
  try {
    await sys.writeFile(path, text, 0o600, durable);
  } catch (e) {
    throw stateIoError(e, path, 'write');
  }
}

export async function removeState(sys: System, path: string): Promise<void> {
  try {
    await sys.remove(path);
  } catch (e) {
    throw stateIoError(e, path, 'write');
  }
}

/**
 * Before anything changes: the state directory takes a file as large as what this change will
 * write (a read-only or full directory is refused here, not halfway through).
 */
export async function checkWritable(sys: System, dir: string, bytes: number): Promise<void> {
  const probe = `${dir}/.guestwall-space-check`;
  // No fsync: ext4, XFS, btrfs and tmpfs reserve the blocks at write(), so a full directory
  // already fails there, and a read-only one at open().
  await writeState(sys, probe, 'x'.repeat(bytes), false);
  await removeState(sys, probe);
}

// ---- previous.nft: an nft script with an end line that seals it ----------------------------

const SEAL = '# guestwall snapshot end';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The snapshot script with its end line: the apply it belongs to and a checksum of all before it. */
export function sealSnapshot(script: string, id: string): string {
  const body = script.endsWith('\n') ? script : `${script}\n`;
  return `${body}${SEAL} id=${id} sha256=${sha256(body)}\n`;
}

/** The apply id of a sealed snapshot, or a StateFileError saying how it is broken. */
export function checkSnapshot(path: string, text: string): string {
  const todo = "rollback cannot restore from it; the ruleset was not changed. Run 'guestwall apply POLICY' to set a known state";
  const cut = text.lastIndexOf(`${SEAL} `);
  if (!text.startsWith('# guestwall snapshot')) throw new StateFileError(path, 'is not a guestwall snapshot (its first line is wrong)', todo);
  if (cut < 0) throw new StateFileError(path, 'is cut short (its end line is missing)', todo);
  const m = /^# guestwall snapshot end id=(\S+) sha256=([0-9a-f]{64})\n$/.exec(text.slice(cut));
  if (!m) throw new StateFileError(path, 'has a damaged end line', todo);
  if (sha256(text.slice(0, cut)) !== m[2]) throw new StateFileError(path, 'does not match its checksum (changed or damaged since guestwall wrote it)', todo);
  return m[1]!;
}

// ---- JSON records ------------------------------------------------------------------------

type Check = (v: unknown) => string | undefined;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str: Check = (v) => (typeof v === 'string' && v.length > 0 ? undefined : 'a non-empty string');
const int: Check = (v) => (Number.isSafeInteger(v) ? undefined : 'an integer');
const obj = (fields: Record<string, Check>, optional: Record<string, Check> = {}): Check => (v) => {
  if (!isObj(v)) return 'an object';
  for (const [k, c] of Object.entries(fields)) {
    const p = c(v[k]);
    if (p) return `${k}: ${p}`;
  }
  for (const [k, c] of Object.entries(optional)) {
    if (v[k] === undefined) continue;
    const p = c(v[k]);
    if (p) return `${k}: ${p}`;
  }
  return undefined;
};
const list = (item: Check): Check => (v) => {
  if (!Array.isArray(v)) return 'a list';
  for (const [i, x] of v.entries()) {
    const p = item(x);
    if (p) return `[${i}] ${p}`;
  }
  return undefined;
};

const pendingCheck = obj({ token: (v) => (typeof v === 'string' && /^[0-9a-f]{8,64}$/.test(v) ? undefined : 'a hex token'), deadline: int }, { timerPid: int, armed: (v) => (typeof v === 'boolean' ? undefined : 'true or false') });
const proxyCheck: Check = obj({ address: str, dev: str });
const addressCheck: Check = obj({ ifname: str, cidr: str });
const sysctlCheck: Check = obj({ key: str, value: (v) => (typeof v === 'string' ? undefined : 'a string'), before: (v) => (typeof v === 'string' ? undefined : 'a string') });
const ownedCheck: Check = obj({ proxies: list(proxyCheck), addresses: list(addressCheck), sysctls: list(sysctlCheck) });
const routeCheck: Check = obj({ dst: str }, { dev: str, metric: int });
const snapshotCheck: Check = obj({ id: str, routes: list(routeCheck), owned: ownedCheck });
const progressCheck: Check = obj({ op: (v) => (v === 'apply' || v === 'rollback' ? undefined : '"apply" or "rollback"'), id: str, pid: int });

/** Parse and check a JSON state file; undefined when it does not exist. */
async function readJson<T>(sys: System, path: string, check: Check, todo: string): Promise<T | undefined> {
  const text = await readState(sys, path);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StateFileError(path, text.trim() === '' ? 'is empty' : 'is not valid JSON (cut short or damaged)', todo);
  }
  const problem = check(value);
  if (problem) throw new StateFileError(path, `is not what guestwall writes there (${problem})`, todo);
  return value as T;
}

const json = (v: unknown) => `${JSON.stringify(v)}\n`;

export const PENDING_TODO = "run 'guestwall rollback' to go back to the state before the last apply, or remove the file to keep what is live";

export function readPending(sys: System, path: string): Promise<PendingConfirm | undefined> {
  return readJson<PendingConfirm>(sys, path, pendingCheck, PENDING_TODO);
}
export const writePending = (sys: System, path: string, p: PendingConfirm) => writeState(sys, path, json(p));

export const NETWORK_TODO = 'guestwall no longer knows which proxy entries, addresses and sysctls it set; move the file aside and apply again (it then removes only routes that carry its protocol, and adopts nothing else)';

/** What guestwall owns on the host network (network.json); nothing when the file is absent. */
export async function readOwned(sys: System, path: string): Promise<OwnedNetwork> {
  return (await readJson<OwnedNetwork>(sys, path, ownedCheck, NETWORK_TODO)) ?? { proxies: [], addresses: [], sysctls: [] };
}
export const writeOwned = (sys: System, path: string, o: OwnedNetwork) => writeState(sys, path, json(tidyOwned(o)));
/** Whether two records would be written alike. */
export const sameOwned = (a: OwnedNetwork, b: OwnedNetwork) => json(tidyOwned(a)) === json(tidyOwned(b));

export interface StoredNetworkSnapshot extends NetworkSnapshot {
  /** The apply this snapshot was taken for; previous.nft carries the same id. */
  id: string;
}

export function readNetworkSnapshot(sys: System, path: string): Promise<StoredNetworkSnapshot | undefined> {
  return readJson<StoredNetworkSnapshot>(sys, path, snapshotCheck, "rollback cannot restore the network from it; run 'guestwall apply POLICY' to set a known state");
}
export const writeNetworkSnapshot = (sys: System, path: string, s: StoredNetworkSnapshot) =>
  writeState(sys, path, json({ id: s.id, routes: s.routes.map(tidyRoute), owned: tidyOwned(s.owned) }));

/** Present while an apply or rollback changes the host: if its process dies, the next one finishes the job. */
export interface InProgress {
  op: 'apply' | 'rollback';
  id: string;
  pid: number;
}

export function readInProgress(sys: System, path: string): Promise<InProgress | undefined> {
  return readJson<InProgress>(sys, path, progressCheck, 'remove it, then run guestwall rollback to go back to the state before the last apply');
}
export const writeInProgress = (sys: System, path: string, p: InProgress) => writeState(sys, path, json(p));

const tidyRoute = (r: LiveRoute): LiveRoute => ({ dst: r.dst, ...(r.dev !== undefined ? { dev: r.dev } : {}), ...(r.metric !== undefined ? { metric: r.metric } : {}) });
const tidyOwned = (o: OwnedNetwork): OwnedNetwork => ({
  proxies: o.proxies.map((p: LiveProxy) => ({ address: p.address, dev: p.dev })),
  addresses: o.addresses.map((a: LiveAddress) => ({ ifname: a.ifname, cidr: a.cidr })),
  sysctls: o.sysctls.map((s: OwnedSysctl) => ({ key: s.key, value: s.value, before: s.before })),
});
