#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm install` / `npm run build:ts`).
import { main } from '../dist/src/cli/index.js';
main(process.argv).catch((err) => {
  process.stderr.write(`linkbert: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
