#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm install` / `npm run build:ts`).
import { main } from '../dist/src/cli/index.js';
// a reader that stops early (`linkbert inspect | head`) closes the pipe: end quietly, as cat and grep do
process.stdout.on('error', (err) => {
  if (err && err.code === 'EPIPE') process.exit(0);
  throw err;
});
main(process.argv).catch((err) => {
  process.stderr.write(`linkbert: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
