// Render the preview with ink-testing-library and press keys the way a terminal sends them.
import { readFileSync } from 'node:fs';
import { render } from 'ink-testing-library';
import { App, type ViewId } from '../../../src/tui/app.js';
import type { HostDoor } from '../../../src/tui/host.js';
import { type PreviewState, nextState } from '../../../src/tui/state.js';

export const HOMELAB = 'policies/homelab-dmz.yaml';
export const homelabText = readFileSync(HOMELAB, 'utf8');
export const homelab = (): PreviewState => nextState(undefined, HOMELAB, { text: homelabText });

export const KEYS = { up: '\x1b[A', down: '\x1b[B', right: '\x1b[C', left: '\x1b[D', pageDown: '\x1b[6~', enter: '\r', escape: '\x1b', backspace: '\x7f', tab: '\t', ctrlC: '\x03' } as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The terminal size a test asks for (ink-testing-library's stdout is 100 columns, no rows). */
export function resize(stdout: NodeJS.EventEmitter, columns: number, rows: number) {
  Object.defineProperty(stdout, 'columns', { value: columns, configurable: true });
  Object.defineProperty(stdout, 'rows', { value: rows, configurable: true });
  stdout.emit('resize');
}

export function preview(state: PreviewState = homelab(), opts: { color?: boolean; view?: ViewId; host?: HostDoor } = {}) {
  const r = render(<App state={state} color={opts.color ?? false} {...(opts.view ? { initialView: opts.view } : {})} {...(opts.host ? { host: opts.host } : {})} />);
  /** Until no new frame came for a while: the background work (the matrix) shares the event loop. */
  const settle = async () => {
    let n = -1;
    for (let i = 0; i < 100 && n !== r.frames.length; i++) {
      n = r.frames.length;
      await sleep(25);
    }
  };
  return {
    ...r,
    frame: () => r.lastFrame() ?? '',
    /** The frame with every run of blanks and line breaks as one space: long messages wrap. */
    flat: () => (r.lastFrame() ?? '').replace(/[\s│┌┐└┘─]+/g, ' '),
    /** Each argument is one key (or a pasted string), sent as a separate chunk like a terminal does. */
    async press(...keys: string[]) {
      await settle();
      for (const k of keys) {
        r.stdin.write(k);
        await settle();
      }
    },
    /** The frame once it shows `text` (fails after 5 s with the frame it shows). */
    async waitFor(text: string | RegExp, ms = 5000): Promise<string> {
      const until = Date.now() + ms;
      for (;;) {
        const f = r.lastFrame() ?? '';
        const flat = f.replace(/[\s│┌┐└┘─]+/g, ' ');
        if (typeof text === 'string' ? f.includes(text) || flat.includes(text) : text.test(f) || text.test(flat)) return f;
        if (Date.now() > until) throw new Error(`the preview never showed ${String(text)}; it shows:\n${f}`);
        await sleep(20);
      }
    },
  };
}
