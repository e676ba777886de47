// fill-mask.test.ts: `linkbert fill-mask` on the tiny golden checkpoint: the sequence text of each
// candidate with several masks, --checkpoint pointing at a file, and the --threads and --device flags.
import test from 'ava';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { FillMasker } from '../src/model/fill-mask.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const CLI = path.join(repoRoot, 'bin/linkbert.js');
const TINY = path.join(repoRoot, 'test/fixtures/golden/tiny');

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'fill-mask', ...args], { encoding: 'utf8' });

test('two masks: each candidate fills its own mask and keeps the other [MASK] in the sequence', (t) => {
  const f = new FillMasker(TINY);
  try {
    const [first, second] = f.fill('a [MASK] is [MASK] here', 3);
    for (const c of first!) t.is(c.sequence, `a ${c.token_str} is [MASK] here`);
    // a candidate that is itself a special token ([UNK]) is still left out, as with one mask
    for (const c of second!) t.is(c.sequence, f.tokenizer.isSpecial(c.token) ? 'a [MASK] is here' : `a [MASK] is ${c.token_str} here`);
    const [one] = f.fill('a [MASK] is here', 2);
    for (const c of one!) if (!f.tokenizer.isSpecial(c.token)) t.is(c.sequence, `a ${c.token_str} is here`, 'one mask: unchanged');
  } finally {
    f.dispose();
  }
});

test('--checkpoint a file that is not a weights file: says it is not a checkpoint folder', (t) => {
  const vocab = path.join(TINY, 'vocab.txt');
  const r = cli('--checkpoint', vocab, 'a [MASK]');
  t.is(r.status, 1);
  t.is(r.stderr, `linkbert: --checkpoint ${vocab}: not a checkpoint folder (expected config.json and model.safetensors or pytorch_model.bin)\n`);
});

test('--checkpoint a weights file: its folder holds the tokenizer', (t) => {
  const r = cli('--checkpoint', path.join(TINY, 'model.safetensors'), '--top-k', '1', '--json', 'a [MASK]');
  t.is(r.status, 0, r.stderr);
  t.is((JSON.parse(r.stdout) as { token_str: string }[]).length, 1);
});

test('--threads: taken, and a bad value is named as --threads', (t) => {
  const ok = cli('--checkpoint', TINY, '--threads', '1', '--top-k', '1', 'a [MASK]');
  t.is(ok.status, 0, ok.stderr);
  for (const v of ['0', 'abc', '2000']) {
    const r = cli('--checkpoint', TINY, '--threads', v, 'a [MASK]');
    t.is(r.status, 1);
    t.is(r.stderr, `linkbert: --threads: "${v}" is not an integer in [1, 1024]\n`);
  }
});

test('--device: a bad value is named as --device, with what the help lists', (t) => {
  const r = cli('--checkpoint', TINY, '--device', 'foo', 'a [MASK]');
  t.is(r.status, 1);
  t.is(r.stderr, 'linkbert: --device: "foo" must be cpu, cuda or ref\n');
  t.regex(spawnSync(process.execPath, [CLI, 'fill-mask', '--help'], { encoding: 'utf8' }).stdout, /--device <device>\s+cpu, cuda or ref/);
});
