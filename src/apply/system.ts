// The one door to the host. Everything guestwall does to a machine (run nft and ip, read and
// write its state files, start the rollback timer, look at the clock) goes through a System,
// so tests hand apply/ a System bound to a throwaway network namespace and a temporary
// state directory. Only this file and its twin for tests spawn programs or import node:fs.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ApplyError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface System {
  /**
   * Run a program (argument array, never a shell string) in the target network namespace;
   * `input`, when given, is its stdin (`ip -batch -`).
   */
  run(cmd: string, args: string[], input?: string): Promise<RunResult>;
  /**
   * Run a program that reports as it goes (`nft monitor trace`): each line of its stdout to
   * `onLine` as it comes, until it exits or `stop` is aborted (then it is ended with SIGTERM).
   * `onStart` runs once the process is there.
   */
  watch(cmd: string, args: string[], on: { onLine: (line: string) => void; onStart?: () => void; stop: AbortSignal }): Promise<RunResult>;
  /** The file's text, or undefined when it does not exist. */
  readFile(path: string): Promise<string | undefined>;
  /**
   * Write atomically and durably: a temporary file in the same directory, written and fsynced,
   * renamed over the target, then the directory fsynced. A crash leaves the old file or the new
   * one, never a mix. With `durable` false, the same without the two fsyncs: for files nothing
   * reads after a crash (the document nft is about to load, the free-space check).
   */
  writeFile(path: string, text: string, mode?: number, durable?: boolean): Promise<void>;
  /**
   * Take the lock on `path` if nobody holds it (flock(2), exclusive, held by the kernel for as
   * long as this process keeps the file open: it dies with the process); undefined when held.
   */
  tryLock(path: string): Promise<{ release(): Promise<void> } | undefined>;
  /** Create a file only if it does not exist yet; false when it already does. */
  createExclusive(path: string, text: string): Promise<boolean>;
  remove(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  /** Start a process that outlives this one (its own session, no stdio); returns its pid. */
  spawnDetached(cmd: string, args: string[]): number;
  /** Whether a process with this pid is alive. */
  alive(pid: number): boolean;
  /** The command line of a process, to make sure a pid is still the process we started. */
  cmdline(pid: number): Promise<string | undefined>;
  kill(pid: number): void;
  now(): number;
  sleep(ms: number): Promise<void>;
  env(name: string): string | undefined;
  isRoot(): boolean;
  /** The network namespace commands run in, or undefined for the host's own. */
  netns?: string;
}

/** The real machine, optionally entering a named network namespace for every command. */
export function realSystem(netns?: string): System {
  const wrap = (cmd: string, args: string[]): [string, string[]] => (netns ? ['ip', ['netns', 'exec', netns, cmd, ...args]] : [cmd, args]);
  return {
    ...(netns !== undefined ? { netns } : {}),
    run(cmd, args, input) {
      const [c, a] = wrap(cmd, args);
      // node:child_process, not execa: execa's import alone took 140 ms of a 400 ms apply
      // (issue 17), and this is all guestwall needs of it: argument arrays, output as text.
      return new Promise((done) => {
        const child = spawn(c, a, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout!.on('data', (b: Buffer) => out.push(b));
        child.stderr!.on('data', (b: Buffer) => err.push(b));
        if (input !== undefined) {
          child.stdin!.on('error', () => {}); // a program that exits without reading all of it says why itself
          child.stdin!.end(input);
        }
        child.once('error', (e: NodeJS.ErrnoException) => done({ code: 127, stdout: '', stderr: `${cmd}: ${e.code === 'ENOENT' ? 'not found' : e.message}` }));
        child.once('close', (code, signal) => {
          const stderr = Buffer.concat(err).toString('utf8');
          done({
            code: code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0),
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: signal ? `${stderr}${cmd}: killed by ${signal}\n` : stderr,
          });
        });
      });
    },
    watch(cmd, args, on) {
      const [c, a] = wrap(cmd, args);
      return new Promise((done) => {
        const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        let rest = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          const lines = (rest + chunk).split('\n');
          rest = lines.pop() ?? '';
          for (const l of lines) on.onLine(l);
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        const stop = () => child.kill('SIGTERM');
        if (on.stop.aborted) stop();
        else on.stop.addEventListener('abort', stop, { once: true });
        child.once('spawn', () => on.onStart?.());
        child.once('error', (e: NodeJS.ErrnoException) => done({ code: 127, stdout: '', stderr: `${cmd}: ${e.code === 'ENOENT' ? 'not found' : e.message}` }));
        child.once('close', (code) => {
          on.stop.removeEventListener('abort', stop);
          if (rest) on.onLine(rest);
          // Ended by us (SIGTERM, no exit code) is how a watch normally ends.
          done({ code: code ?? 0, stdout: '', stderr });
        });
      });
    },
    async readFile(path) {
      try {
        return await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    async writeFile(path, text, mode = 0o644, durable = true) {
      const dir = dirname(path);
      await mkdir(dir, { recursive: true });
      const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      try {
        const fh = await open(tmp, 'wx', mode);
        try {
          await fh.writeFile(text);
          if (durable) await fh.sync();
        } finally {
          await fh.close();
        }
        await chmod(tmp, mode); // the umask must not narrow a unit file to 0600
        await rename(tmp, path);
      } catch (e) {
        await rm(tmp, { force: true }).catch(() => {});
        throw e;
      }
      if (!durable) return;
      const d = await open(dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    },
    async tryLock(path) {
      await mkdir(dirname(path), { recursive: true });
      // Node has no flock(2): the flock utility takes it on the descriptor it inherits as fd 3.
      // The lock belongs to the open file description, which this process keeps open after
      // flock exits; closing it, or dying, releases it. Never unlinked, so no one can take a
      // lock on a file that another has already replaced.
      const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
      const code = await new Promise<number>((resolve) => {
        const child = spawn('flock', ['-x', '-n', '3'], { stdio: ['ignore', 'ignore', 'pipe', fh.fd] });
        child.on('error', () => resolve(127));
        child.on('exit', (c) => resolve(c ?? 1));
      });
      if (code !== 0) {
        await fh.close();
        if (code === 1) return undefined;
        throw new ApplyError(code === 127 ? 'flock is not installed, and guestwall locks its state with it' : `cannot lock ${path}: flock exited with ${code}`, 'install util-linux', 2);
      }
      // Who holds it, for the message of a process that waits: written over the old text, then cut to length.
      const who = `${process.pid}\n`;
      await fh.write(who, 0);
      await fh.truncate(Buffer.byteLength(who));
      return { release: () => fh.close() };
    },
    async createExclusive(path, text) {
      await mkdir(dirname(path), { recursive: true });
      try {
        const fh = await open(path, 'wx');
        await fh.writeFile(text);
        await fh.close();
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw e;
      }
    },
    remove: (path) => rm(path, { force: true, recursive: true }),
    mkdir: async (path) => {
      await mkdir(path, { recursive: true });
    },
    spawnDetached(cmd, args) {
      const child = spawn(cmd, args, { detached: true, stdio: 'ignore' });
      child.unref();
      if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
      return child.pid;
    },
    alive(pid) {
      try {
        process.kill(pid, 0);
        return true;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'EPERM';
      }
    },
    async cmdline(pid) {
      try {
        return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      } catch {
        return undefined;
      }
    },
    kill(pid) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    },
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    env: (name) => process.env[name],
    isRoot: () => process.getuid?.() === 0,
  };
}
