// Start the preview on the real terminal; the CLI hands in each new state as the file changes.
import { render } from 'ink';
import { App } from './app.js';
import type { PreviewState } from './state.js';

export function startPreview(state: PreviewState, opts: { color: boolean }) {
  const instance = render(<App state={state} color={opts.color} />, { exitOnCtrlC: true });
  return {
    update: (next: PreviewState) => instance.rerender(<App state={next} color={opts.color} />),
    waitUntilExit: () => instance.waitUntilExit(),
  };
}
