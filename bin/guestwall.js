#!/usr/bin/env node
// The installed entry point: runs the bundled CLI (npm run build writes dist/bundle/ from dist/src/).
import { run } from '../dist/bundle/main.js';

process.exitCode = await run(process.argv.slice(2));
