// bench-flags.test.ts: the bench commands refuse bad flag values before doing any work, naming the flag
// as typed (--seq-len, not seqLen), with a non-zero exit and no stack trace; and their help text.
import test from 'ava';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(repoRoot, 'bin/linkbert.js');
const bench = (...args: string[]) => spawnSync(process.execPath, [CLI, 'bench', ...args], { encoding: 'utf8' });

const cases: [string[], string][] = [
  [['kernels', '--only', 'nosuchop', '--quick'], '--only: unknown op "nosuchop"; valid ops: matmul, attention, '],
  [['kernels', '--only', 'fill,nosuch', '--quick'], '--only: unknown op "nosuch"; valid ops: '],
  [['kernels', '--only', 'fill', '--min-time', 'abc', '--quick'], '--min-time: "abc" must be a positive number'],
  [['kernels', '--only', 'fill', '--threads', '0', '--quick'], '--threads: "0" must be an integer in [1, 1024]'],
  [['kernels', '--device', 'foo'], '--device: "foo" must be cpu or cuda'],
  [['step', '--seq-len', 'abc'], '--seq-len: "abc" must be a positive integer'],
  [['step', '--batch-size', '-1'], '--batch-size: "-1" must be a positive integer'],
  [['step', '--vocab-size', '0'], '--vocab-size: "0" must be a positive integer'],
  [['step', '--warmup', 'x'], '--warmup: "x" must be a non-negative integer'],
  [['step', '--device', 'foo'], '--device: "foo" must be cpu, cuda or ref'],
  [['prepare', '--vocab-size', 'abc'], '--vocab-size: "abc" must be an integer >= 6'],
  [['prepare', '--max-seq-len', 'x'], '--max-seq-len: "x" must be a positive integer'],
  [['prepare', '--repeat', '0'], '--repeat: "0" must be a positive integer'],
  [['prepare', '--token-memory-mb', '-1'], '--token-memory-mb: "-1" must be a non-negative number'],
  [['shards', '--seconds', 'abc'], '--seconds: "abc" must be a positive number'],
  [['shards', '--batch-size', '0'], '--batch-size: "0" must be a positive integer'],
  [['shards', '--dupe-factor', 'x'], '--dupe-factor: "x" must be a positive integer'],
  [['tokenize', '--max-mb', 'abc'], '--max-mb: "abc" must be a positive number'],
  [['tokenize', '--batch', '1.5'], '--batch: "1.5" must be a positive integer'],
  [['tokenize', '--repeat', 'x'], '--repeat: "x" must be a positive integer'],
  [['tokenize', '--vocab-size', '3'], '--vocab-size: "3" must be an integer >= 6'],
  [['ner', '--checkpoint', 'x', '--threads', '0'], '--threads: "0" must be an integer in [1, 1024]'],
  [['ner', '--checkpoint', 'x', '--batch-size', 'x'], '--batch-size: "x" is not a positive integer'],
  [['train', '--steps', 'x'], '--steps: "x" must be a positive integer'],
  [['train', '--batch-size', '0'], '--batch-size: "0" must be a positive integer'],
  [['train', '--device', 'foo'], '--device: "foo" must be cpu or cuda'],
];

for (const [args, msg] of cases) {
  test(`bench ${args.join(' ')}`, (t) => {
    const r = bench(...args);
    t.is(r.status, 1, r.stdout);
    t.true(r.stderr.startsWith(`linkbert: ${msg}`), r.stderr);
    t.false(/\n\s+at /.test(r.stderr), 'no stack trace');
  });
}

test('bench ner --help: the default --data relative to the clone, as the other benches say it', (t) => {
  const help = bench('ner', '--help').stdout.replace(/\s+/g, ' ');
  t.true(help.includes('(default: ../shared/data/ner/ncbi-disease)'), help);
  t.false(help.includes(repoRoot), 'no absolute path');
});

test('bench step --help and kernels --help list the devices each accepts', (t) => {
  t.regex(bench('step', '--help').stdout, /--device <d>\s+cpu, cuda or ref/);
  t.regex(bench('kernels', '--help').stdout, /--device <device>\s+cpu or cuda/);
});
