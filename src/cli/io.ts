// What the commands need from the outside world, passed in so that tests run them in-process.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { ApplyError } from '../apply/errors.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  readFile(path: string): string;
  /** `mode` for files that must be executable (hooks); the default is the umask's. */
  writeFile(path: string, text: string, mode?: number): void;
  mkdir(path: string): void;
  /**
   * true when out and err are this process's stdout and stderr (processIo), so that a command may
   * draw on them when they are a terminal (preview's TUI). A mark, not `io === processIo`: each
   * command is a bundle of its own (build/bundle.mjs), with its own copy of this module.
   */
  processStreams?: true;
}

export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
  readFile: (p) => readFileSync(p, 'utf8'),
  writeFile: (p, t, mode) => {
    writeFileSync(p, t);
    if (mode !== undefined) chmodSync(p, mode);
  },
  mkdir: (p) => mkdirSync(p, { recursive: true }),
  processStreams: true,
};

/** Exit codes: 0 fine, 1 the policy has errors (or warnings with --strict), 2 the command line or a file is wrong. */
export const EXIT = { ok: 0, policy: 1, usage: 2 } as const;

/** Read a policy file, or say why not in one line. */
export function readPolicy(io: Io, file: string): { text: string } | { error: string } {
  try {
    return { text: io.readFile(file) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' ? 'permission denied' : String(e);
    return { error: `guestwall: cannot read ${file}: ${why}` };
  }
}

/** Print an error a user can meet on a host (what happened, what to do) and return its exit code; rethrow bugs. */
export function reportError(io: Io, e: unknown): number {
  if (e instanceof ApplyError) {
    io.err(`guestwall: ${e.message}`);
    if (e.hint) io.err(`  hint: ${e.hint}`);
    return e.exitCode;
  }
  throw e;
}
