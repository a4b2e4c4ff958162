// The dataplane bench's load: small C senders and receivers (bench/c), compiled with gcc when
// the bench starts, run inside the bench's namespaces. Every run is capped in packets or bytes
// and in time, and every process is killed by its pid if it outlives its cap.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type ResultPromise, execa } from 'execa';

const PROGRAMS = ['udp-flood', 'udp-count', 'tcp-bulk', 'ct-flush'] as const;
export type Program = (typeof PROGRAMS)[number];

export interface Binaries {
  path(p: Program): string;
  /** A file name in the same scratch directory. */
  scratch(name: string): string;
  remove(): Promise<void>;
}

/** The C sources live in bench/c; this file runs from bench/dataplane or dist/bench/dataplane. */
async function sourceDir(): Promise<string> {
  for (const rel of ['../c/', '../../../bench/c/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if ((await execa('test', ['-f', join(dir, 'udp-flood.c')], { reject: false })).exitCode === 0) return dir;
  }
  throw new Error('cannot find bench/c/*.c next to the bench');
}

export async function compilePrograms(): Promise<Binaries> {
  const src = await sourceDir();
  const out = await mkdtemp(join(tmpdir(), 'gw-dataplane-'));
  for (const p of PROGRAMS) {
    const r = await execa('gcc', ['-O2', '-Wall', '-o', join(out, p), join(src, `${p}.c`)], { reject: false });
    if (r.exitCode !== 0) throw new Error(`gcc ${p}.c failed:\n${r.stderr}`);
  }
  return { path: (p) => join(out, p), scratch: (name) => join(out, name), remove: () => rm(out, { recursive: true, force: true }) };
}

/** Children still running, so that Ctrl-C can kill them by pid before the namespaces go. */
const running = new Set<ResultPromise>();

export function killRunning(): void {
  for (const c of running) c.kill('SIGKILL');
}

function inNs(ns: string, cmd: string, args: string[], capMs: number): ResultPromise<{ reject: false; timeout: number; forceKillAfterDelay: number }> {
  const child = execa('ip', ['netns', 'exec', ns, cmd, ...args], { reject: false, timeout: capMs, forceKillAfterDelay: 1000 });
  running.add(child);
  void child.finally(() => running.delete(child));
  return child;
}

/**
 * Starts a receiver and resolves once it printed "ready" (bound and listening). The child comes
 * back wrapped: a child process is a thenable, and returning it bare would wait for its end.
 */
async function startReceiver(ns: string, cmd: string, args: string[], capMs: number) {
  const child = inNs(ns, cmd, args, capMs);
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (l) => (l === 'ready' ? resolve() : reject(new Error(`${cmd} printed ${l}`))));
    void child.then((r) => reject(new Error(`${cmd} in ${ns} ended before it was ready: ${r.stderr}`)));
  });
  return { child };
}

function lastJson<T>(stdout: string, what: string): T {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${what} printed ${JSON.stringify(stdout)}`);
  }
}

export interface Windows {
  /** Time after the first packet (or the connection) that is not counted. */
  warmupMs: number;
  /** The counted window. */
  windowMs: number;
}

export interface FlowRun {
  /** Datagrams counted at the receiver per second of the window. */
  pps: number;
  received: number;
  windowMs: number;
  sent: number;
  senderMs: number;
  /**
   * The sender's CPU time per packet sent (ns): its syscalls plus the forwarding the kernel does
   * in its context on its CPU (this kernel has no IRQ time accounting, so softirq work run on
   * the way out of sendmmsg is charged to it; work deferred to ksoftirqd is not). Other
   * processes taking the CPU away lower the rate but not this figure.
   */
  cpuNsPerPacket: number;
}

/**
 * New flows: UDP datagrams from SRC_ADDRS source addresses (from `srcBase`) x 64,512 ports,
 * each one a new connection, to `dst`:`port`, counted in the receiver's namespace.
 */
export async function newFlowRun(
  bin: Binaries,
  o: { wanNs: string; rxNs: string; dst: string; port: number; srcBase: string; srcAddrs: number; maxPackets: number; w: Windows; cpus: [number, number]; senderPrefix?: string[] },
): Promise<FlowRun> {
  const senderMs = o.w.warmupMs + o.w.windowMs + 500;
  const { child: rx } = await startReceiver(o.rxNs, bin.path('udp-count'), [String(o.port), '3000', String(o.w.warmupMs), String(o.w.windowMs), String(o.cpus[1])], senderMs + 5000);
  // senderPrefix: a command the sender runs under (the profile runs it under `perf record ... --`).
  const [txCmd, ...txPrefix] = [...(o.senderPrefix ?? []), bin.path('udp-flood')];
  const tx = inNs(o.wanNs, txCmd!, [...txPrefix, o.dst, String(o.port), o.srcBase, String(o.srcAddrs), String(senderMs), String(o.maxPackets), String(o.cpus[0])], senderMs + 5000);
  const [r, s] = await Promise.all([rx, tx]);
  if (s.exitCode !== 0) throw new Error(`udp-flood failed: ${s.stderr}`);
  if (r.exitCode !== 0) throw new Error(`udp-count failed: ${r.stderr}`);
  const got = lastJson<{ packets: number; ms: number; error?: string }>(r.stdout, 'udp-count');
  const sent = lastJson<{ sent: number; ms: number; cpuMs: number }>(s.stdout, 'udp-flood');
  if (got.error) throw new Error(`udp-count: ${got.error} (sent ${sent.sent})`);
  return { pps: got.ms > 0 ? (got.packets / got.ms) * 1000 : 0, received: got.packets, windowMs: got.ms, sent: sent.sent, senderMs: sent.ms, cpuNsPerPacket: sent.sent > 0 ? (sent.cpuMs * 1e6) / sent.sent : 0 };
}

export interface BulkRun {
  /** Bits per second counted at the receiver over its window. */
  bps: number;
  bytes: number;
  windowMs: number;
}

/** One TCP stream from the WAN to `dst`:`port`, capped at `maxBytes` and the window plus a margin. */
export async function bulkRun(bin: Binaries, o: { wanNs: string; rxNs: string; dst: string; port: number; maxBytes: number; w: Windows; cpus: [number, number] }): Promise<BulkRun> {
  const senderMs = o.w.warmupMs + o.w.windowMs + 1000;
  const { child: rx } = await startReceiver(o.rxNs, bin.path('tcp-bulk'), ['recv', String(o.port), '3000', String(o.w.warmupMs), String(o.w.windowMs), String(o.cpus[1])], senderMs + 5000);
  const tx = inNs(o.wanNs, bin.path('tcp-bulk'), ['send', o.dst, String(o.port), String(senderMs), String(o.maxBytes), String(o.cpus[0])], senderMs + 5000);
  const [r, s] = await Promise.all([rx, tx]);
  if (r.exitCode !== 0) throw new Error(`tcp-bulk recv failed: ${r.stderr}`);
  if (s.exitCode !== 0) throw new Error(`tcp-bulk send failed: ${s.stderr}`);
  const got = lastJson<{ bytes: number; ms: number; error?: string }>(r.stdout, 'tcp-bulk recv');
  if (got.error) throw new Error(`tcp-bulk: ${got.error}`);
  return { bps: got.ms > 0 ? (got.bytes * 8 * 1000) / got.ms : 0, bytes: got.bytes, windowMs: got.ms };
}

/** Empties the host namespace's conntrack table, so every run starts from zero entries. */
export async function flushConntrack(bin: Binaries, ns: string): Promise<void> {
  const r = await inNs(ns, bin.path('ct-flush'), [], 10_000);
  if (r.exitCode !== 0) throw new Error(`ct-flush in ${ns} failed: ${r.stderr}`);
}

/** Connection-tracking entries in a namespace right now (0 when conntrack is not on there). */
export async function conntrackCount(ns: string): Promise<number> {
  const r = await execa('ip', ['netns', 'exec', ns, 'cat', '/proc/sys/net/netfilter/nf_conntrack_count'], { reject: false });
  return r.exitCode === 0 ? Number(r.stdout.trim()) : 0;
}

export async function conntrackMax(ns: string): Promise<number> {
  const r = await execa('ip', ['netns', 'exec', ns, 'cat', '/proc/sys/net/netfilter/nf_conntrack_max'], { reject: false });
  return r.exitCode === 0 ? Number(r.stdout.trim()) : 65536;
}
