// guestwall check FILE...: every problem in every file at once, as file:line:col, exit 1 on errors.
import { compilePolicyText } from '../compile/pipeline.js';
import { type Diagnostic, formatDiagnostic } from '../policy/diagnostics.js';
import { EXIT, type Io, readPolicy } from './io.js';

export interface CheckOptions {
  json?: boolean;
  strict?: boolean;
}

export function check(io: Io, files: string[], opts: CheckOptions): number {
  const all: Diagnostic[] = [];
  let unreadable = false;
  for (const file of files) {
    const read = readPolicy(io, file);
    if ('error' in read) {
      io.err(read.error);
      unreadable = true;
      continue;
    }
    all.push(...compilePolicyText(file, read.text).diagnostics);
  }
  const errors = all.filter((d) => d.severity === 'error').length;
  const warnings = all.length - errors;
  if (opts.json) {
    io.out(JSON.stringify(all, null, 2));
  } else {
    for (const d of all) io.out(formatDiagnostic(d));
    const summary = `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} in ${files.length} file${files.length === 1 ? '' : 's'}`;
    (errors > 0 ? io.err : io.out)(errors + warnings === 0 && !unreadable ? `ok: ${summary}` : summary);
  }
  if (unreadable) return EXIT.usage;
  return errors > 0 || (opts.strict && warnings > 0) ? EXIT.policy : EXIT.ok;
}
