// Start the preview on the real terminal; the CLI hands in each new state as the file changes.
import { render } from 'ink';
import { App } from './app.js';
import type { HostDoor } from './host.js';
import type { PreviewState } from './state.js';

export function startPreview(state: PreviewState, opts: { color: boolean; host?: HostDoor }) {
  const app = (s: PreviewState) => <App state={s} color={opts.color} {...(opts.host ? { host: opts.host } : {})} />;
  const instance = render(app(state), { exitOnCtrlC: true });
  return {
    update: (next: PreviewState) => instance.rerender(app(next)),
    waitUntilExit: () => instance.waitUntilExit(),
  };
}
