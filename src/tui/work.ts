// Work too long for one keypress (the matrix runs explain for every cell) done a slice at a
// time between the turns of the event loop, so keys keep being read and frames drawn meanwhile.

/**
 * Run `steps` at most `sliceMs` at a time, with the event loop free in between; `done` gets the
 * generator's result, `failed` what it threw. Returns a function that stops it.
 */
export function runInSlices<P, T>(
  steps: Generator<P, T, void>,
  on: { progress?: (p: P) => void; done: (value: T) => void; failed: (e: unknown) => void },
  sliceMs = 10,
): () => void {
  let stopped = false;
  let timer: NodeJS.Immediate | undefined;
  const turn = () => {
    if (stopped) return;
    const end = performance.now() + sliceMs;
    try {
      for (;;) {
        const r = steps.next();
        if (r.done) return on.done(r.value);
        if (performance.now() >= end) {
          on.progress?.(r.value);
          break;
        }
      }
    } catch (e) {
      return on.failed(e);
    }
    timer = setImmediate(turn);
  };
  timer = setImmediate(turn);
  return () => {
    stopped = true;
    if (timer) clearImmediate(timer);
  };
}
