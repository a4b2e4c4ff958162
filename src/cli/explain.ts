// guestwall explain / matrix: why a packet is accepted or dropped, and the zone-to-zone table.
import type { Proto } from '../explain/flow.js';
import { type ConnState, type IcmpError, explainPacket } from '../explain/state.js';
import { formatMatrix, reachabilityMatrix } from '../explain/matrix.js';
import { EXIT, type Io } from './io.js';
import { compiledPolicy } from './policy-file.js';


export interface ExplainOptions {
  from: string;
  to: string;
  proto: Proto;
  port?: number;
  family?: 4 | 6;
  src?: string;
  srcMac?: string;
  direct?: boolean;
  state?: ConnState;
  reply?: boolean;
  icmpError?: IcmpError;
  /** Whether bridged IP also passes the inet hooks (br_netfilter; explain's default: yes). */
  brNetfilter?: boolean;
  json?: boolean;
  /** Which host of a fleet policy. */
  host?: string;
}

/** Exit 0 when the packet is accepted, 1 when it is dropped or rejected, 2 when the question is wrong. */
export function explainCommand(io: Io, file: string, opts: ExplainOptions): number {
  const c = compiledPolicy(io, file, 'nothing to explain', false, undefined, opts.host);
  if ('exit' in c) return EXIT.usage;
  const r = explainPacket(c.model, c.ruleset, {
    from: opts.from, to: opts.to, proto: opts.proto,
    ...(opts.port !== undefined ? { port: opts.port } : {}), ...(opts.family !== undefined ? { family: opts.family } : {}),
    ...(opts.src !== undefined ? { src: opts.src } : {}), ...(opts.srcMac !== undefined ? { srcMac: opts.srcMac } : {}), ...(opts.direct ? { direct: true } : {}),
    ...(opts.state !== undefined ? { state: opts.state } : {}), ...(opts.reply ? { reply: true } : {}), ...(opts.icmpError !== undefined ? { icmpError: opts.icmpError } : {}),
    ...(opts.brNetfilter !== undefined ? { brNetfilter: opts.brNetfilter } : {}),
  });
  if (!r.ok) {
    io.err(`guestwall: ${r.error}`);
    return EXIT.usage;
  }
  const e = r.value;
  if (opts.json) {
    io.out(JSON.stringify({
      packet: e.packet,
      from: e.fromZone,
      to: e.toZone,
      ...(e.nat?.translation ? { nat: { kind: e.nat.translation.kind, addr: e.nat.translation.addr, port: e.nat.translation.port, origin: e.nat.translation.origin } } : {}),
      path: e.path,
      verdict: e.evaluation.verdict,
      decidedBy: e.evaluation.decidedBy ?? null,
      ...(e.forward ? { forward: e.forward } : {}),
      ...(e.declaration ? { declaration: e.declaration } : {}),
      ...(e.connection ? { connection: { firstPacket: e.connection.first.packet, firstVerdict: e.connection.first.evaluation.verdict, entry: e.connection.entry, facts: e.connection.facts } } : {}),
      steps: e.evaluation.steps.map((s) => ({ chain: s.chain, rule: s.rule ?? null, text: s.text, outcome: s.outcome, origin: s.origin ?? null })),
      notes: e.evaluation.notes,
    }, null, 2));
  } else io.out(e.story.join('\n'));
  return e.evaluation.verdict === 'accept' ? EXIT.ok : EXIT.policy;
}

export function matrixCommand(io: Io, file: string, opts: { json?: boolean; family?: 4 | 6; host?: string }): number {
  const c = compiledPolicy(io, file, 'nothing to explain', false, undefined, opts.host);
  if ('exit' in c) return EXIT.usage;
  const m = reachabilityMatrix(c.model, c.ruleset, opts.family ?? 4);
  io.out(opts.json ? JSON.stringify(m, null, 2) : formatMatrix(m));
  return EXIT.ok;
}
