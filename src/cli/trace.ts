// guestwall trace FILE --from --to [--proto] [--port] [--seconds N] [--netns NS]: follow real
// packets through the live ruleset for a while and print each trace event as chain, rule and the
// YAML place that wrote the rule (the rule comment, looked up in the compiled policy's origins).
import { join } from 'node:path';
import { DEFAULT_STATE_DIR, statePaths } from '../apply/state.js';
import { type System, realSystem } from '../apply/system.js';
import { traceLive } from '../apply/trace.js';
import { type TraceQuery, traceSelectors } from '../compile/trace.js';
import { originMap } from '../nft/ruleset.js';
import { type TraceEvent, packetSummary } from '../nft/trace.js';
import { EXIT, type Io, reportError } from './io.js';
import { compiledPolicy, kernelFeaturesFor } from './policy-file.js';

export interface TraceOptions extends TraceQuery {
  seconds: number;
  netns?: string;
  stateDir?: string;
  /** Which host of a fleet policy. */
  host?: string;
}

type Origins = ReturnType<typeof originMap>;

/** One trace event as a line of the story; a packet's first event names the packet. `seen` holds the packets named so far. */
export function traceEventLines(e: TraceEvent, origins: Origins, seen: Set<string>): string[] {
  const out: string[] = [];
  const where = `${e.family} ${e.table === 'guestwall' ? '' : `${e.table} `}${e.chain}`;
  if (e.kind === 'packet') {
    if (!seen.has(e.id)) {
      seen.add(e.id);
      out.push(`packet ${e.id}: ${packetSummary(e.text)}`);
    }
    return out;
  }
  if (e.kind === 'rule') {
    const o = e.comment !== undefined ? origins[e.comment] : undefined;
    const why = o ? `${o.what} (${o.line > 0 ? `${o.file.split('/').pop()}:${o.line}` : e.comment})` : e.comment;
    // The live counters say nothing about this packet: the rule as the policy wrote it.
    const rule = e.text.replace(/\bcounter packets \d+ bytes \d+/, 'counter');
    out.push(`  ${where}: ${rule} -> ${e.verdict}${why ? `  [${why}]` : ''}`);
  } else if (e.kind === 'policy') out.push(`  ${where}: no rule decided: the chain's policy ${e.verdict}`);
  else out.push(`  ${where}: ${e.text}`);
  return out;
}

export async function traceCommand(io: Io, file: string, opts: TraceOptions, sys: System = realSystem(opts.netns), stop: AbortSignal = interrupted()): Promise<number> {
  const features = await kernelFeaturesFor(io, 'auto', sys, false);
  const loaded = compiledPolicy(io, file, 'nothing traced', false, features, opts.host);
  if ('exit' in loaded) return loaded.exit;
  const selectors = traceSelectors(loaded.model, opts);
  if (!selectors.ok) {
    io.err(`guestwall: ${selectors.error}`);
    return EXIT.usage;
  }
  const origins = originMap(loaded.ruleset);
  const seen = new Set<string>();
  const state = statePaths(opts.stateDir ?? DEFAULT_STATE_DIR, opts.netns);
  try {
    const events = await traceLive(sys, selectors.value, {
      seconds: opts.seconds,
      stop,
      file: join(state.dir, 'trace.json'),
      onStart: () => io.err(`guestwall: following ${opts.proto ?? 'all'} packets from ${opts.from} to ${opts.to}${opts.port !== undefined ? ` port ${opts.port}` : ''} for ${opts.seconds} s${sys.netns ? ` in network namespace ${sys.netns}` : ''} (Ctrl-C stops)`),
      onEvent: (e) => {
        for (const l of traceEventLines(e, origins, seen)) io.out(l);
      },
    });
    io.err(`guestwall: ${seen.size} packet${seen.size === 1 ? '' : 's'} followed (${events} events); the trace table is removed`);
    return EXIT.ok;
  } catch (e) {
    return reportError(io, e);
  }
}

/** Aborted on the first Ctrl-C (SIGINT) or SIGTERM, so the trace table is removed before exit. */
function interrupted(): AbortSignal {
  const c = new AbortController();
  const stop = () => c.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return c.signal;
}
