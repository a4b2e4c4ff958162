// guestwall trace on a host: load the small marking table for a bounded time, follow the marked
// packets with `nft monitor trace`, and remove the table again however the watch ends (time up,
// Ctrl-C, an error). Everything goes through the System door, inside --netns when given.
import { TRACE_TABLE, type TraceEvent, type TraceSelector, parseTraceLine, removeTraceDocument, traceTableDocument } from '../nft/trace.js';
import { ApplyError } from './errors.js';
import { loadJson, nftMessage, nftVersion } from './nft.js';
import type { System } from './system.js';

export interface TraceRun {
  /** How long to follow packets at most. */
  seconds: number;
  /** Aborted to stop early (Ctrl-C). */
  stop: AbortSignal;
  /** Where the marking and removing documents are written for nft to read. */
  file: string;
  onEvent(e: TraceEvent): void;
  /** Once the monitor listens: packets sent from now on are followed. */
  onStart?(): void;
}

/** Follow the packets `selectors` pick; returns how many trace events came. The trace table is gone afterwards. */
export async function traceLive(sys: System, selectors: TraceSelector[], run: TraceRun): Promise<number> {
  await nftVersion(sys);
  if (!sys.isRoot()) throw new ApplyError('tracing packets needs root (it loads a marking table and listens to the kernel)', 'run guestwall trace as root', 2);
  await sys.writeFile(run.file, JSON.stringify(traceTableDocument(selectors)), 0o600);
  const loaded = await loadJson(sys, run.file);
  if (loaded.code !== 0) throw new ApplyError(`the kernel refuses the trace table: ${nftMessage(loaded)}`);
  let events = 0;
  try {
    const until = AbortSignal.any([run.stop, AbortSignal.timeout(run.seconds * 1000)]);
    const r = await sys.watch('nft', ['monitor', 'trace'], {
      stop: until,
      ...(run.onStart ? { onStart: run.onStart } : {}),
      onLine: (line) => {
        const e = parseTraceLine(line);
        // The marking table's own events say only that the mark was set.
        if (e && e.table !== TRACE_TABLE.name) {
          events++;
          run.onEvent(e);
        }
      },
    });
    if (!until.aborted && r.code !== 0) throw new ApplyError(`nft monitor trace stopped: ${nftMessage(r)}`);
  } finally {
    await sys.writeFile(run.file, JSON.stringify(removeTraceDocument()), 0o600);
    const removed = await loadJson(sys, run.file);
    await sys.remove(run.file);
    if (removed.code !== 0) {
      // eslint-disable-next-line no-unsafe-finally -- a table left behind must be said, over any other error
      throw new ApplyError(`could not remove the trace table: ${nftMessage(removed)}`, `remove it with: nft delete table ${TRACE_TABLE.family} ${TRACE_TABLE.name}`);
    }
  }
  return events;
}
