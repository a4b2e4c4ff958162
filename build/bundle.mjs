// npm run build, after tsc: the command line as one bundle in dist/bundle/ (esbuild, ESM, split
// at each command's dynamic import), which bin/guestwall.js runs. Node resolves and reads ~300
// small modules less at each start (zod alone is ~90 files): about a third of the CPU time of a
// `guestwall check` above `node -e 0` (issue 17). The TUI's packages load only when the preview
// runs; `yaml` stays in node_modules, loaded on first need (src/policy/yaml-lib.ts).
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

// Chunk names carry a hash of their content: last build's would stay beside this one's.
rmSync('dist/bundle', { recursive: true, force: true });

await build({
  entryPoints: ['dist/src/cli/main.js'],
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Ink's devtools hook, for React DevTools during development only.
  external: ['react-devtools-core'],
  // CommonJS packages (commander) call require(); an ES module has none of its own.
  banner: { js: "import { createRequire as __gwRequire } from 'node:module'; const require = __gwRequire(import.meta.url);" },
  logLevel: 'warning',
});
