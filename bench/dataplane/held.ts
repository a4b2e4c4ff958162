// What a dataplane run holds, its namespaces and its compiled load generators, released once: at
// the end, on failure, or on Ctrl-C, so that nothing the bench made outlives it.
import type { BenchTopology } from './topology.js';
import { type Binaries, killRunning } from './traffic.js';

export interface Held {
  topology?: BenchTopology;
  binaries?: Binaries;
}

/**
 * Fill `held` in as the run builds. The returned function stops the senders and removes what is
 * held; a signal does the same, then exits 130.
 */
export function releaseOnExit(held: Held): () => Promise<void> {
  const release = async () => {
    killRunning();
    await held.topology?.dispose();
    held.topology = undefined;
    await held.binaries?.remove();
    held.binaries = undefined;
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: removing the bench namespaces...\n`);
      void release().finally(() => process.exit(130));
    });
  }
  return release;
}
