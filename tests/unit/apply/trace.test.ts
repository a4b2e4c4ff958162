// traceLive over a fake System: the trace table is loaded, followed and removed again however the
// watch ends, and nothing is loaded where tracing cannot run.
import { describe, expect, it } from 'vitest';
import { ApplyError } from '../../../src/apply/errors.js';
import { traceLive } from '../../../src/apply/trace.js';
import type { TraceEvent } from '../../../src/nft/trace.js';
import { fakeSystem } from '../../support/fake-system.js';

const LINES = [
  'trace id 1 inet guestwall_trace prerouting rule meta nftrace set 1 comment "guestwall trace" (verdict continue)',
  'trace id 1 inet guestwall input rule tcp dport 22 accept comment "h.yaml:3 rules[0]" (verdict accept)',
];

function host(opts: { root?: boolean; refuse?: boolean; monitor?: string[] } = {}) {
  const loaded: string[] = [];
  const f = fakeSystem({
    root: opts.root ?? true,
    ...(opts.monitor ? { watch: { 'nft monitor trace': opts.monitor } } : {}),
    answer(cmd, args, files) {
      const line = [cmd, ...args].join(' ');
      if (line === 'nft --version') return 'nftables v1.0.6';
      if (line === 'nft -j -f /s/trace.json') {
        const doc = files.get('/s/trace.json')!;
        if (opts.refuse && doc.includes('nftrace')) return { code: 1, stderr: 'Error: Could not process rule: No such file or directory' };
        loaded.push(doc.includes('nftrace') ? 'trace table' : 'removal');
        return '';
      }
      return undefined;
    },
  });
  return { ...f, loaded };
}

const ONE = [{ hook: 'prerouting' as const, stmts: [] }];
const run = (stop: AbortSignal, onEvent: (e: TraceEvent) => void = () => {}) => ({ seconds: 30, stop, file: '/s/trace.json', onEvent });

describe('guestwall trace on a host', () => {
  it('loads the trace table, hands on the events of the other tables, and removes the table when stopped', async () => {
    const h = host({ monitor: LINES });
    const stop = new AbortController();
    const events: TraceEvent[] = [];
    const done = traceLive(h.sys, ONE, { ...run(stop.signal, (e) => events.push(e)), onStart: () => stop.abort() });
    expect(await done).toBe(1);
    expect(events.map((e) => e.comment)).toEqual(['h.yaml:3 rules[0]']);
    expect(h.loaded).toEqual(['trace table', 'removal']);
    expect(h.calls).toEqual(['nft --version', 'nft -j -f /s/trace.json', 'nft monitor trace', 'nft -j -f /s/trace.json']);
    expect(h.files.has('/s/trace.json')).toBe(false);
  });

  it('removes the trace table when the monitor cannot run', async () => {
    const h = host(); // no `nft monitor trace` here: it exits 127
    await expect(traceLive(h.sys, ONE, run(new AbortController().signal))).rejects.toThrow(/nft monitor trace stopped/);
    expect(h.loaded).toEqual(['trace table', 'removal']);
  });

  it('loads nothing without root, and says what the kernel refused', async () => {
    const h = host({ root: false, monitor: [] });
    await expect(traceLive(h.sys, ONE, run(new AbortController().signal))).rejects.toBeInstanceOf(ApplyError);
    expect(h.loaded).toEqual([]);
    const r = host({ refuse: true, monitor: [] });
    await expect(traceLive(r.sys, ONE, run(new AbortController().signal))).rejects.toThrow('the kernel refuses the trace table: Error: Could not process rule: No such file or directory');
    expect(r.calls).not.toContain('nft monitor trace');
  });
});
