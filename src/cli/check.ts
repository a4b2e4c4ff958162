// guestwall check FILE...: every problem in every file at once, as file:line:col, exit 1 on errors.
import { compilePolicyText } from '../compile/pipeline.js';
import { type Diagnostic, formatDiagnostic } from '../policy/diagnostics.js';
import { sortDiagnostics } from '../policy/load.js';
import { EXIT, type Io, readPolicy } from './io.js';

export interface CheckOptions {
  json?: boolean;
  strict?: boolean;
  /** For fleet policies: check this host's part only (default: every host). */
  host?: string;
}

/** A fleet checked whole: the policy's diagnostics, and what compiling each host adds (said once, with the hosts it is about). */
function fleetDiagnostics(file: string, text: string, loaded: Diagnostic[], hosts: string[]): Diagnostic[] {
  const key = (d: Diagnostic) => JSON.stringify([d.line, d.col, d.code, d.message]);
  const known = new Set(loaded.map(key));
  const added = new Map<string, { d: Diagnostic; hosts: string[] }>();
  for (const h of hosts) {
    for (const d of compilePolicyText(file, text, undefined, h).diagnostics) {
      const k = key(d);
      if (known.has(k)) continue;
      const seen = added.get(k);
      if (seen) seen.hosts.push(h);
      else added.set(k, { d, hosts: [h] });
    }
  }
  const extra = [...added.values()].map(({ d, hosts: on }) => (on.length === hosts.length ? d : { ...d, message: `${d.message} (on host${on.length === 1 ? '' : 's'} ${on.join(', ')})` }));
  return sortDiagnostics([...loaded, ...extra]);
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
    const r = compilePolicyText(file, read.text, undefined, opts.host);
    if (r.hostError !== undefined && (opts.host !== undefined || !r.fleet)) {
      io.err(`guestwall: ${r.hostError}`);
      unreadable = true;
      continue;
    }
    all.push(...(r.fleet && !r.compiled ? fleetDiagnostics(file, read.text, r.diagnostics, r.fleet.hosts) : r.diagnostics));
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
