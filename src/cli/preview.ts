// guestwall preview: the interactive views of a policy in the terminal, reloaded when the file
// changes; a plain summary when stdout is not a terminal.
import { watch } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { applyRuleset, confirm, rollback } from '../apply/apply.js';
import { diffRuleset } from '../apply/diff.js';
import { sshGuard } from '../apply/guard.js';
import { DEFAULT_STATE_DIR, type StatePaths, statePaths } from '../apply/state.js';
import { type System, realSystem } from '../apply/system.js';
import { hasErrors } from '../policy/diagnostics.js';
import type { HostDoor } from '../tui/host.js';
import { type PreviewState, nextState } from '../tui/state.js';
import { plainSummary } from '../tui/summary.js';
import { timerCommand } from './apply.js';
import { EXIT, type Io, readPolicy } from './io.js';
import type { FeatureChoice } from '../compile/features.js';
import { kernelFeaturesFor } from './policy-file.js';

export interface PreviewOptions {
  /** Default: both stdin and stdout are terminals (and the Io is the real one). */
  interactive?: boolean;
  /** Default: on unless NO_COLOR is set to something. */
  color?: boolean;
  /** Default baseline here (tests); the command line's default is auto. */
  kernelFeatures?: FeatureChoice;
  /** Also say on stderr which kernel features the ruleset is compiled for. */
  verbose?: boolean;
  /** Diff against and apply to this network namespace instead of the host. */
  netns?: string;
  stateDir?: string;
  /** Seconds an apply from the preview waits for confirmation before rolling back (default 60). */
  confirm?: number;
  /** Apply even if the lockout guard objects. */
  force?: boolean;
  /** Which host of a fleet policy. */
  host?: string;
}

export interface PreviewHostOptions {
  /** The System of the host (or namespace) diffed and applied to. */
  live: System;
  /** The machine's own System, which creates the scratch namespace the diff needs. */
  host: System;
  state: StatePaths;
  confirmSeconds: number;
  timerCommand: string[];
  force?: boolean;
  /** The System of a scratch namespace (default: the real one). */
  enter?: (netns: string) => System;
}

/** The live diff and apply of the preview: `guestwall diff` and `guestwall apply --confirm` for the views. */
export function previewHost(o: PreviewHostOptions): HostDoor {
  const where = o.live.netns ? `network namespace ${o.live.netns}` : 'this host';
  return {
    where,
    ...(o.live.isRoot() ? {} : { unavailable: `not running as root: reading the live ruleset of ${where} and applying to it need root (run guestwall preview with sudo; --netns NAME works on a lab namespace)` }),
    confirmSeconds: o.confirmSeconds,
    diff: (ruleset) => diffRuleset(o.live, o.host, ruleset, join(o.state.dir, 'diff.json'), o.enter),
    async apply(ruleset) {
      const guard = o.force ? undefined : await sshGuard(o.live);
      const r = await applyRuleset(o.live, ruleset, { state: o.state, confirmSeconds: o.confirmSeconds, timerCommand: o.timerCommand, ...(guard ? { guard } : {}) });
      return { changed: r.changed, ...(r.pending ? { deadline: r.pending.deadline } : {}) };
    },
    confirm: async () => {
      await confirm(o.live, o.state);
    },
    rollback: async () => {
      await rollback(o.live, o.state, 'on demand from preview');
    },
    now: () => o.live.now(),
  };
}

export async function previewCommand(io: Io, file: string, opts: PreviewOptions = {}, sys: System = realSystem()): Promise<number> {
  const read = readPolicy(io, file);
  if ('error' in read) {
    io.err(read.error);
    return EXIT.usage;
  }
  const features = await kernelFeaturesFor(io, opts.kernelFeatures ?? 'baseline', opts.netns !== undefined ? realSystem(opts.netns) : sys, opts.verbose === true);
  let state: PreviewState = nextState(undefined, file, read, features, opts.host);
  if (state.readError !== undefined) {
    io.err(`guestwall: ${state.readError}`);
    return EXIT.usage;
  }
  const interactive = opts.interactive ?? (io.processStreams === true && Boolean(process.stdout.isTTY && process.stdin.isTTY));
  if (!interactive) {
    io.out(plainSummary(state));
    return hasErrors(state.diagnostics) ? EXIT.policy : EXIT.ok;
  }
  // Ink draws only the last frame when it thinks it runs in CI (is-in-ci reads CI,
  // CONTINUOUS_INTEGRATION and CI_*); at a real terminal the user wants every frame.
  process.env.CI = '0';
  delete process.env.CONTINUOUS_INTEGRATION;
  for (const key of Object.keys(process.env)) if (key.startsWith('CI_')) delete process.env[key];
  // React's development build checks every element and keeps a task per fiber: several times
  // slower per frame. A user's terminal wants the production build (NODE_ENV=development still wins).
  process.env.NODE_ENV ??= 'production';
  // Loaded here so that the other commands never pay for React.
  const { startPreview } = await import('../tui/start.js');
  const host = previewHost({
    live: realSystem(opts.netns),
    host: realSystem(),
    state: statePaths(opts.stateDir ?? DEFAULT_STATE_DIR, opts.netns),
    confirmSeconds: opts.confirm ?? 60,
    timerCommand: timerCommand(),
    ...(opts.force ? { force: true } : {}),
  });
  const ui = startPreview(state, { color: opts.color ?? !process.env.NO_COLOR, host });
  const stopWatching = watchFile(file, () => {
    state = nextState(state, file, readPolicy(io, file), features, opts.host);
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
