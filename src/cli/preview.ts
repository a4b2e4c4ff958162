// guestwall preview: the interactive views of a policy in the terminal, reloaded when the file
// changes; a plain summary when stdout is not a terminal.
import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { hasErrors } from '../policy/diagnostics.js';
import { type PreviewState, nextState } from '../tui/state.js';
import { plainSummary } from '../tui/summary.js';
import { type System, realSystem } from '../apply/system.js';
import { EXIT, type Io, processIo, readPolicy } from './io.js';
import { type FeatureChoice, kernelFeaturesFor } from './policy-file.js';

export interface PreviewOptions {
  /** Default: both stdin and stdout are terminals (and the Io is the real one). */
  interactive?: boolean;
  /** Default: on unless NO_COLOR is set to something. */
  color?: boolean;
  /** Default baseline here (tests); the command line's default is auto. */
  kernelFeatures?: FeatureChoice;
}

export async function previewCommand(io: Io, file: string, opts: PreviewOptions = {}, sys: System = realSystem()): Promise<number> {
  const read = readPolicy(io, file);
  if ('error' in read) {
    io.err(read.error);
    return EXIT.usage;
  }
  const features = await kernelFeaturesFor(io, opts.kernelFeatures ?? 'baseline', sys);
  let state: PreviewState = nextState(undefined, file, read, features);
  const interactive = opts.interactive ?? (io === processIo && Boolean(process.stdout.isTTY && process.stdin.isTTY));
  if (!interactive) {
    io.out(plainSummary(state));
    return hasErrors(state.diagnostics) ? EXIT.policy : EXIT.ok;
  }
  // Ink draws only the last frame when it thinks it runs in CI (is-in-ci reads CI,
  // CONTINUOUS_INTEGRATION and CI_*); at a real terminal the user wants every frame.
  process.env.CI = '0';
  delete process.env.CONTINUOUS_INTEGRATION;
  for (const key of Object.keys(process.env)) if (key.startsWith('CI_')) delete process.env[key];
  // Loaded here so that the other commands never pay for React.
  const { startPreview } = await import('../tui/start.js');
  const ui = startPreview(state, { color: opts.color ?? !process.env.NO_COLOR });
  const stopWatching = watchFile(file, () => {
    state = nextState(state, file, readPolicy(io, file), features);
    ui.update(state);
  });
  try {
    await ui.waitUntilExit();
  } finally {
    stopWatching();
  }
  return EXIT.ok;
}

/** Call `changed` once things settle after the file changes; editors often replace the file, so watch its folder. */
function watchFile(file: string, changed: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const name = basename(file);
  const w = watch(dirname(file), (_event, f) => {
    if (f !== null && f !== name) return;
    clearTimeout(timer);
    timer = setTimeout(changed, 50);
  });
  return () => {
    clearTimeout(timer);
    w.close();
  };
}
