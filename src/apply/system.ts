// The one door to the host. Everything guestwall does to a machine (run nft and ip, read and
// write its state files, start the rollback timer, look at the clock) goes through a System,
// so tests hand apply/ a System bound to a throwaway network namespace and a temporary
// state directory. Only this file and its twin for tests import execa or node:fs.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ApplyError } from './errors.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface System {
  /** Run a program (argument array, never a shell string) in the target network namespace. */
  run(cmd: string, args: string[]): Promise<RunResult>;
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
   * one, never a mix.
   */
  writeFile(path: string, text: string, mode?: number): Promise<void>;
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
    async run(cmd, args) {
      const [c, a] = wrap(cmd, args);
      // Loaded on first use: commands that run nothing (check, compile, explain) start faster.
      const { execa } = await import('execa');
      const r = await execa(c, a, { reject: false, stdin: 'ignore', stripFinalNewline: false });
      if (r.failed && r.exitCode === undefined) {
        return { code: 127, stdout: '', stderr: `${cmd}: ${r.code === 'ENOENT' ? 'not found' : (r.shortMessage ?? 'could not start')}` };
      }
      return { code: r.exitCode ?? 1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
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
    async writeFile(path, text, mode = 0o644) {
      const dir = dirname(path);
      await mkdir(dir, { recursive: true });
      const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
      try {
        const fh = await open(tmp, 'wx', mode);
        try {
          await fh.writeFile(text);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await chmod(tmp, mode); // the umask must not narrow a unit file to 0600
        await rename(tmp, path);
      } catch (e) {
        await rm(tmp, { force: true }).catch(() => {});
        throw e;
      }
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
