// An in-memory System for unit tests: programs answer from a script, files live in a map, the
// clock moves only when something sleeps, and detached processes are entries in a table. Every
// command line run is recorded, so tests can assert what was (and was not) done to the host.
import type { RunResult, System } from '../../src/apply/system.js';

/** What a scripted program says: its stdout (exit 0), or a whole result (missing fields: 0 and ''). */
export type Answer = string | Partial<RunResult>;

export interface FakeSystemOptions {
  /** Answers by exact command line, e.g. `'nft --version': 'nftables v1.0.6'`. */
  run?: Record<string, Answer>;
  /** Asked for command lines not in `run`; undefined means the program is not installed (exit 127). `input` is what it gets on stdin. */
  answer?: (cmd: string, args: string[], files: Map<string, string>, input?: string) => Answer | undefined;
  files?: Record<string, string>;
  root?: boolean;
  netns?: string;
  env?: Record<string, string>;
  /** What a watched program (`nft monitor trace`) prints, by command line; it then runs until stopped. */
  watch?: Record<string, string[]>;
  /** Epoch milliseconds the clock starts at. */
  now?: number;
}

export interface FakeSystem {
  sys: System;
  /** Every command line run, in order. */
  calls: string[];
  files: Map<string, string>;
  clock: { now: number };
  /** Detached processes by pid: their command line, and whether they still run. */
  processes: Map<number, { cmdline: string; alive: boolean }>;
}

const result = (a: Answer): RunResult => (typeof a === 'string' ? { code: 0, stdout: a, stderr: '' } : { code: 0, stdout: '', stderr: '', ...a });

export function fakeSystem(opts: FakeSystemOptions = {}): FakeSystem {
  const calls: string[] = [];
  const files = new Map(Object.entries(opts.files ?? {}));
  const clock = { now: opts.now ?? Date.UTC(2025, 0, 1) };
  const processes = new Map<number, { cmdline: string; alive: boolean }>();
  let nextPid = 4000;
  const locks = new Set<string>();

  const sys: System = {
    ...(opts.netns !== undefined ? { netns: opts.netns } : {}),
    async run(cmd, args, input) {
      const line = [cmd, ...args].join(' ');
      calls.push(line);
      const a = opts.run?.[line] ?? opts.answer?.(cmd, args, files, input);
      return a === undefined ? { code: 127, stdout: '', stderr: `${cmd}: not found` } : result(a);
    },
    async watch(cmd, args, on) {
      const line = [cmd, ...args].join(' ');
      calls.push(line);
      const lines = opts.watch?.[line];
      if (lines === undefined) return { code: 127, stdout: '', stderr: `${cmd}: not found` };
      on.onStart?.();
      for (const l of lines) on.onLine(l);
      if (!on.stop.aborted) await new Promise((r) => on.stop.addEventListener('abort', r, { once: true }));
      return { code: 0, stdout: '', stderr: '' };
    },
    readFile: async (path) => files.get(path),
    async writeFile(path, text) {
      files.set(path, text);
    },
    async createExclusive(path, text) {
      if (files.has(path)) return false;
      files.set(path, text);
      return true;
    },
    async tryLock(path) {
      if (locks.has(path)) return undefined;
      locks.add(path);
      files.set(path, '1\n');
      return { release: async () => void locks.delete(path) };
    },
    async remove(path) {
      for (const p of [...files.keys()]) if (p === path || p.startsWith(`${path}/`)) files.delete(p);
    },
    async mkdir() {},
    spawnDetached(cmd, args) {
      const pid = nextPid++;
      processes.set(pid, { cmdline: [cmd, ...args].join(' '), alive: true });
      return pid;
    },
    alive: (pid) => processes.get(pid)?.alive ?? false,
    cmdline: async (pid) => (processes.get(pid)?.alive ? processes.get(pid)!.cmdline : undefined),
    kill(pid) {
      const p = processes.get(pid);
      if (p) p.alive = false;
    },
    now: () => clock.now,
    async sleep(ms) {
      clock.now += ms;
    },
    env: (name) => opts.env?.[name],
    isRoot: () => opts.root ?? true,
  };
  return { sys, calls, files, clock, processes };
}
