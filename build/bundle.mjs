// npm run build, after tsc: the command line as bundles in dist/bundle/ (esbuild, ESM), which
// bin/guestwall.js runs. Node resolves and reads ~300 small modules less at each start (zod alone
// is ~90 files). One bundle per command, each whole: main.js (the argument parser) imports the
// command's bundle (apply.js, check.js, ...) when that command runs, and preview imports the TUI
// (start.js) only when it starts it. Not esbuild's code splitting: it cut apply into 17 shared
// chunks, and node's ESM loader costs per module (resolve, read, link): the same code as one file
// started ~27 ms of CPU sooner (issue 17). Code the commands share is in each of their bundles;
// only main.js and one command's bundle load in any run. `yaml` stays in node_modules, loaded on
// first need (src/policy/yaml-lib.ts).
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// Last build's files would stay beside this one's.
rmSync('dist/bundle', { recursive: true, force: true });

/**
 * The modules imported when needed, each a bundle of its own, by name: main.ts's commands,
 * preview's TUI, the SSH lockout check (explain's evaluator) that apply needs only over SSH, and
 * Ink's devtools hook.
 */
const COMMANDS = ['check', 'compile', 'guest', 'apply', 'doctor', 'install', 'explain', 'trace', 'preview', 'schema'];
const LAZY = {
  ...Object.fromEntries(COMMANDS.map((c) => [c, { file: 'dist/src/cli/' + c + '.js', from: 'dist/src/cli/main.js' }])),
  start: { file: 'dist/src/tui/start.js', from: 'dist/src/cli/preview.js' },
  lockout: { file: 'dist/src/apply/lockout.js', from: 'dist/src/apply/guard.js' },
  // Ink's hook for React DevTools (DEV=true only): bundled in, its import of the package below would load with the TUI.
  devtools: { file: 'node_modules/ink/build/devtools.js', from: 'node_modules/ink/build/reconciler.js' },
};

await build({
  entryPoints: { main: 'dist/src/cli/main.js', ...Object.fromEntries(Object.entries(LAZY).map(([name, l]) => [name, l.file])) },
  outdir: 'dist/bundle',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Ink's devtools hook, for React DevTools during development only.
  external: ['react-devtools-core'],
  // CommonJS packages (commander) call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __gwRequire } from 'node:module'; const require = __gwRequire(import.meta.url);" },
  plugins: [{
    name: 'guestwall-lazy-bundles',
    setup(b) {
      // main.ts's `import('./apply.js')`, preview.ts's `import('../tui/start.js')`, ...: the
      // sibling bundle, loaded at run time instead of bundled in.
      b.onResolve({ filter: /\.js$/ }, (a) => {
        if (a.kind !== 'dynamic-import') return undefined;
        const name = a.path.split('/').pop().replace(/\.js$/, '');
        const lazy = Object.hasOwn(LAZY, name) && a.importer.endsWith('/' + LAZY[name].from);
        return lazy ? { path: './' + name + '.js', external: true } : undefined;
      });
    },
  }],
  logLevel: 'warning',
});
