// An Io for running CLI commands in-process: files from a map, output captured.
import type { Io } from '../../src/cli/io.js';

export function memoryIo(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const written: Record<string, string> = {};
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    readFile: (p) => {
      if (p in files) return files[p]!;
      throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    },
    writeFile: (p, t) => {
      written[p] = t;
    },
    mkdir: () => {},
  };
  return { io, out, err, written, stdout: () => out.join(''), stderr: () => err.join('') };
}
