// guestwall doctor [FILE]: what on this host would keep guestwall's rules from working, one line
// per finding with its fix. Exit 1 when something fails, 0 otherwise (warnings included).
import { type HostFinding, doctor } from '../apply/doctor.js';
import { type System, realSystem } from '../apply/system.js';
import { compilePolicyText } from '../compile/pipeline.js';
import type { HostModel } from '../model/host.js';
import { formatDiagnostic } from '../policy/diagnostics.js';
import { EXIT, type Io, readPolicy } from './io.js';

export interface DoctorCliOptions {
  netns?: string;
  json?: boolean;
}

/** Exit code when a check fails: the host cannot run the policy as it is. */
const FAILED = 1;

const LABEL: Record<HostFinding['status'], string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL', info: 'info' };

export async function doctorCommand(io: Io, file: string | undefined, opts: DoctorCliOptions, sys: System = realSystem(opts.netns)): Promise<number> {
  let model: HostModel | undefined;
  if (file !== undefined) {
    const read = readPolicy(io, file);
    if ('error' in read) {
      io.err(read.error);
      return EXIT.usage;
    }
    const result = compilePolicyText(file, read.text);
    if (!result.model) {
      for (const d of result.diagnostics) io.err(formatDiagnostic(d));
      io.err(`guestwall: ${file} has errors; fix them first (guestwall check ${file})`);
      return EXIT.policy;
    }
    model = result.model;
  }
  if (opts.netns !== undefined && !sys.isRoot()) {
    io.err(`guestwall: doctor --netns needs root to enter network namespace ${opts.netns}`);
    io.err('  hint: run it with sudo, or as root');
    return EXIT.usage;
  }

  const findings = await doctor(sys, model);
  if (opts.json) io.out(JSON.stringify(findings, null, 2));
  else {
    for (const f of findings) {
      io.out(`${LABEL[f.status]}  ${f.message}`);
      if (f.fix) io.out(`      fix: ${f.fix}`);
    }
  }
  return findings.some((f) => f.status === 'fail') ? FAILED : EXIT.ok;
}
