// Render the preview with ink-testing-library and press keys the way a terminal sends them.
import { readFileSync } from 'node:fs';
import { render } from 'ink-testing-library';
import { App, type ViewId } from '../../../src/tui/app.js';
import { type PreviewState, nextState } from '../../../src/tui/state.js';

export const HOMELAB = 'policies/homelab-dmz.yaml';
export const homelabText = readFileSync(HOMELAB, 'utf8');
export const homelab = (): PreviewState => nextState(undefined, HOMELAB, { text: homelabText });

export const KEYS = { up: '\x1b[A', down: '\x1b[B', right: '\x1b[C', left: '\x1b[D', pageDown: '\x1b[6~', enter: '\r', escape: '\x1b', backspace: '\x7f', tab: '\t', ctrlC: '\x03' } as const;

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

export function preview(state: PreviewState = homelab(), opts: { color?: boolean; view?: ViewId } = {}) {
  const r = render(<App state={state} color={opts.color ?? false} {...(opts.view ? { initialView: opts.view } : {})} />);
  return {
    ...r,
    frame: () => r.lastFrame() ?? '',
    /** Each argument is one key (or a pasted string), sent as a separate chunk like a terminal does. */
    async press(...keys: string[]) {
      await tick();
      for (const k of keys) {
        r.stdin.write(k);
        await tick();
      }
    },
  };
}
