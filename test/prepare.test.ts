import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { prepare } from '../src/data/prepare.js';
import { ShardDataset } from '../src/data/shards/reader.js';
import type { Instance } from '../src/data/shards/format.js';
import type { Manifest } from '../src/data/shards/manifest.js';
import { syntheticCorpus } from './fixtures/prepare/synthetic.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const VOCAB = path.join(repoRoot, 'test/fixtures/prepare/vocab.txt');
const CLI = path.join(repoRoot, 'bin/linkbert.js');
const SHARED = path.resolve(repoRoot, '../shared/data');

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-prepare-'));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

function all(dir: string, split: 'train' | 'valid'): Instance[] {
  const ds = ShardDataset.open(dir, split);
  const out = Array.from({ length: ds.size }, (_, i) => ds.get(i));
  ds.close();
  return out;
}

function readTsv(file: string): string[][] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}

test('output is byte-identical for 0, 1 and 2 workers', async (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 80, 3);
  const outs: string[] = [];
  for (const workers of [1, 2, 0]) {
    const out = path.join(dir, `out${workers}`);
    await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers, seed: 9, shardBytes: 20000, dupeFactor: 2, wholeWordMask: true });
    outs.push(out);
  }
  const files = listFiles(outs[0]);
  t.true(files.includes('manifest.json') && files.includes(path.join('train', 'shard-00001.pb')) && files.includes(path.join('graph', 'edges.tsv')));
  for (const o of outs.slice(1)) {
    t.deepEqual(listFiles(o), files);
    for (const f of files) t.true(fs.readFileSync(path.join(o, f)).equals(fs.readFileSync(path.join(outs[0], f))), `${f} differs in ${o}`);
  }
});

test('instances are shuffled across the whole split by default (as BERT does); --no-shuffle keeps document order', async (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 120, 5);
  const docIndex = (x: Instance) => Number(x.docA.slice('Doc '.length));
  const outs: Record<string, Instance[]> = {};
  for (const shuffle of [true, false]) {
    const out = path.join(dir, `out-${shuffle}`);
    // 2 KB buckets: several of them, so the bucket files are exercised inside prepare too
    const m = await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, seed: 3, shardBytes: 8000, validFraction: 0.1, shuffle, shuffleBucketBytes: 2048 });
    t.is(m.config.shuffle, shuffle);
    t.deepEqual(listFiles(out).filter((f) => path.basename(f).startsWith('.')), [], 'no temporary files left');
    outs[String(shuffle)] = all(out, 'train');
  }
  const key = (x: Instance) => `${x.docA}/${x.segA}/${x.docB}/${x.segB}/${x.drpLabel}/${x.inputIds.join(',')}`;
  t.deepEqual(outs.true.map(key).sort(), outs.false.map(key).sort(), 'the same instances either way');
  const ascending = (xs: Instance[]) => xs.slice(1).filter((x, i) => docIndex(x) >= docIndex(xs[i])).length / (xs.length - 1);
  t.true(ascending(outs.false) > 0.99, `document order: ${ascending(outs.false)}`);
  t.true(ascending(outs.true) < 0.6, `shuffled: ${ascending(outs.true)} of neighbours in document order`);
  // the first tenth of the shuffled split already draws on documents from all over the corpus
  const head = outs.true.slice(0, Math.ceil(outs.true.length / 10)).map(docIndex);
  t.true(Math.min(...head) < 20 && Math.max(...head) > 100, `first tenth spans docs ${Math.min(...head)}..${Math.max(...head)}`);
});

test('the addon and TypeScript give the same bytes (LINKBERT_NATIVE_TOKENIZER/INSTANCES=0), tokens in memory and on disk', (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 60, 5);
  const run = (name: string, env: Record<string, string>, extra: string[]) => {
    const out = path.join(dir, name);
    const args = [CLI, 'prepare', '--input', corpus, '--vocab', VOCAB, '--out', out, '--max-seq-len', '64', '--seed', '4', '--dupe-factor', '2', '--whole-word-mask', ...extra];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, ...env } });
    t.is(r.status, 0, r.stderr);
    return out;
  };
  for (const extra of [[], ['--token-memory-mb', '0']]) {
    const a = run(`native${extra.length}`, {}, extra);
    const b = run(`ts${extra.length}`, { LINKBERT_NATIVE_TOKENIZER: '0', LINKBERT_NATIVE_INSTANCES: '0' }, extra);
    const files = listFiles(a);
    t.deepEqual(listFiles(b), files);
    for (const f of files) t.true(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${f} differs (${extra.join(' ') || 'tokens in memory'})`);
  }
});

test('instances agree with the graph: linked pairs are edges, contiguous adjacent, splits disjoint, labels ~1/3', async (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 150, 4);
  const out = path.join(dir, 'out');
  const m = await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 1, seed: 2, validFraction: 0.1, dupeFactor: 3 });
  const edges = new Set(readTsv(path.join(out, 'graph/edges.tsv')).map(([a, b]) => `${a}\t${b}`));
  const nodes = readTsv(path.join(out, 'graph/nodes.tsv'));
  t.true(edges.size > 100);
  t.is(nodes.length, 150);
  const train = all(out, 'train');
  const valid = all(out, 'valid');
  t.is(train.length + valid.length, m.counts.instances);
  const docsOf = (xs: Instance[]) => new Set(xs.flatMap((x) => [x.docA, x.docB]));
  const trainDocs = docsOf(train);
  const validDocs = docsOf(valid);
  t.true(validDocs.size >= 2);
  for (const d of validDocs) t.false(trainDocs.has(d), `${d} in both splits`);
  t.is(m.splits.valid.documents, 15);
  const counts = [0, 0, 0];
  for (const x of [...train, ...valid]) {
    counts[x.drpLabel]++;
    if (x.drpLabel === 0) {
      t.is(x.docA, x.docB);
      t.is(x.segB, x.segA + 1);
    } else if (x.drpLabel === 1) t.not(x.docA, x.docB);
    else t.true(edges.has(`${x.docA}\t${x.docB}`), `linked pair ${x.docA} -> ${x.docB} is not in edges.tsv`);
    t.true(x.inputIds.length <= 64);
    t.true(x.maskedPositions.length <= m.max_predictions);
  }
  t.deepEqual(m.counts.labels, { contiguous: counts[0], random: counts[1], linked: counts[2] });
  for (const c of counts) t.true(Math.abs(c / m.counts.instances - 1 / 3) < 0.04, `labels ${counts}`);
  t.is(m.inputs[0].linked, true);
  t.is(m.token_width, 2);
  t.is(m.vocab.size, 260);
  t.is(m.config.seed, 2);
  t.is(typeof (m.graph as { inDegree: { max: number } }).inDegree.max, 'number');
});

test('mixing a linked and an unlinked corpus by weight; unlinked part is 50/50', async (t) => {
  const dir = tmp(t);
  const linked = path.join(dir, 'wiki.jsonl');
  syntheticCorpus(linked, 60, 5);
  // plain text: documents separated by blank lines, no links
  const lines = fs.readFileSync(linked, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { text: string }).text);
  const books = path.join(dir, 'books.txt');
  fs.writeFileSync(books, lines.map((x) => x.replace(/Doc/g, 'Book')).join('\n\n') + '\n');
  const out = path.join(dir, 'out');
  const m = await prepare({ inputs: [linked, books], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, mix: [0.7, 0.3], dupeFactor: 4, validFraction: 0 });
  t.is(m.inputs[1].format, 'text');
  t.false(m.inputs[1].linked);
  t.deepEqual(m.inputs[1].label_probs, [0.5, 0.5, 0]);
  t.is(m.inputs[1].labels.linked, 0);
  const share = m.inputs[0].instances / m.counts.instances;
  t.true(Math.abs(share - 0.7) < 0.03, `share of the linked corpus ${share}`);
  const l = m.inputs[1].labels;
  t.true(Math.abs(l.contiguous / m.inputs[1].instances - 0.5) < 0.06, JSON.stringify(l));
  t.is(m.splits.valid.instances, 0);
  t.throws(() => ShardDataset.open(out, 'valid').get(0), { instanceOf: RangeError });
});

test('CLI: prepare --json, inspect text and --json fields, missing manifest error', (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 30, 6);
  const out = path.join(dir, 'out');
  const summary = JSON.parse(
    execFileSync('node', [CLI, 'prepare', '--input', corpus, '--vocab', VOCAB, '--out', out, '--max-seq-len', '128', '--workers', '1', '--label-probs', '1,1,2', '--json'], { encoding: 'utf8' }),
  ) as { instances: number; labels: Record<string, number> };
  t.true(summary.instances > 0);
  t.true(summary.labels.linked > summary.labels.random);
  const lines = execFileSync('node', [CLI, 'inspect', out, '--n', '3', '--json'], { encoding: 'utf8' }).trim().split('\n');
  t.is(lines.length, 3);
  for (const l of lines) {
    const j = JSON.parse(l) as Record<string, unknown>;
    for (const k of ['input_ids', 'token_type_ids', 'masked_positions', 'masked_labels', 'drp_label', 'doc_a', 'doc_b']) t.true(k in j, `missing ${k}`);
    const ids = j.input_ids as number[];
    t.is((j.token_type_ids as number[]).length, ids.length);
    t.true(['contiguous', 'random', 'linked'].includes(j.drp_label as string));
    const pos = j.masked_positions as number[];
    t.is((j.masked_labels as number[]).length, pos.length);
    t.true(pos.length > 0);
  }
  const text = execFileSync('node', [CLI, 'inspect', out, '--n', '2', '--split', 'valid'], { encoding: 'utf8' });
  t.regex(text, /\[CLS\] .* \[SEP\] .* \[SEP\]/);
  t.regex(text, /#0 (contiguous|random|linked) {2}A=Doc \d+#\d+ {2}B=Doc \d+#\d+/);
  t.regex(text, /masked \(\d+\): /);
  // a --start past the end is an error naming the split's size, not an empty listing
  const size = ShardDataset.open(out, 'train').size;
  for (const start of [size, 99999999]) {
    const past = spawnSync('node', [CLI, 'inspect', out, '--start', String(start)], { encoding: 'utf8' });
    t.is(past.status, 1);
    t.regex(past.stderr, new RegExp(`--start ${start} is past the end \\(${size} instances in train\\)`));
  }
  t.regex(execFileSync('node', [CLI, 'inspect', out, '--start', String(size - 1)], { encoding: 'utf8' }), new RegExp(`#${size - 1} `));
  fs.rmSync(path.join(out, 'manifest.json'));
  const r = spawnSync('node', [CLI, 'inspect', out], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.regex(r.stderr, /no manifest\.json/);
});

/** Every file under `dir` with its bytes, to compare a directory before and after. */
function snapshot(dir: string): Map<string, Buffer> {
  return new Map(listFiles(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
}

test('a failed run leaves the old dataset in --out as it was; a good one replaces only what prepare writes', async (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 20, 7);
  const out = path.join(dir, 'out');
  await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0 });
  fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
  const before = snapshot(out);
  const size = ShardDataset.open(out, 'train').size;
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, fs.readFileSync(corpus, 'utf8') + '{"id": "x", "text": 5}\n');
  const leftovers = () => [...fs.readdirSync(dir), ...fs.readdirSync(out)].filter((f) => f.startsWith('.'));
  for (const workers of [0, 1]) {
    await t.throwsAsync(prepare({ inputs: [bad], vocab: VOCAB, out, maxSeqLen: 64, workers }), { message: /bad\.jsonl: line 21: text/ });
    t.deepEqual(snapshot(out), before, `workers ${workers}: every file of the old dataset is still there, unchanged`);
    t.deepEqual(leftovers(), [], 'the work folder (in --out) is removed after a failure');
  }
  t.is(ShardDataset.open(out, 'train').size, size);
  // a failed run into a new folder does not create it
  await t.throwsAsync(prepare({ inputs: [bad], vocab: VOCAB, out: path.join(dir, 'new'), maxSeqLen: 64, workers: 0 }));
  t.false(fs.existsSync(path.join(dir, 'new')));
  // --skip-bad counts it instead; the new dataset replaces train/ etc. (no stale shard survives), notes.txt stays
  fs.writeFileSync(path.join(out, 'train', 'shard-00099.pb'), 'stale');
  const m = await prepare({ inputs: [bad], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, skipBad: true, seed: 99 });
  t.is(m.skipped.bad_field_text, 1, JSON.stringify(m.skipped));
  t.false(fs.existsSync(path.join(out, 'train', 'shard-00099.pb')));
  t.is(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8'), 'mine');
  t.is(ShardDataset.open(out, 'train').manifest.seed, 99);
  t.deepEqual(leftovers(), [], 'no work folder or old dataset left after a good run');
  // a work folder of a run that was killed outright (its process is gone) is cleaned up by the next run
  const stale = path.join(out, '.prepare-999999999-abc');
  fs.mkdirSync(stale);
  await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0 });
  t.false(fs.existsSync(stale));
  await t.throwsAsync(prepare({ inputs: [path.join(dir, 'missing.jsonl')], vocab: VOCAB, out, workers: 0 }), { message: /missing\.jsonl: no such file/ });
  await t.throwsAsync(prepare({ inputs: [corpus], vocab: VOCAB, out, workers: 0, mix: [1, 2] }), { message: /--mix has 2 weights for 1 inputs/ });
});

test('input that yields no documents or no train instances fails, naming the input, format and what was skipped; an empty valid split is a warning', async (t) => {
  const dir = tmp(t);
  const out = path.join(dir, 'out');
  const jats = path.join(repoRoot, 'test/fixtures/readers/jats');
  // the JATS fixtures read as MediaWiki: no file has a MediaWiki name
  await t.throwsAsync(prepare({ inputs: [jats], format: 'mediawiki', vocab: VOCAB, out, workers: 0 }), {
    message: /no documents read from .*jats \(format mediawiki, from --format\): skipped 3 files \(non_document_file 3\).*is --format right\?.*--out .*out is left as it was/,
  });
  const empty = path.join(dir, 'empty.txt');
  fs.writeFileSync(empty, '');
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 10, 3);
  // one empty input among good ones is named on its own
  await t.throwsAsync(prepare({ inputs: [corpus, empty], vocab: VOCAB, out, workers: 0 }), { message: /^no documents read from .*empty\.txt \(format text, detected\): it is empty \(0 bytes\)/ });
  t.false(fs.existsSync(out));
  // one document of one segment: no pair can be made
  const one = path.join(dir, 'one.jsonl');
  fs.writeFileSync(one, JSON.stringify({ id: 'a', text: 'The one.' }) + '\n');
  await t.throwsAsync(prepare({ inputs: [one], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, minChars: 0 }), {
    message: /no train instances from 1 document: the train split's 1 document with 1 segment make no pairs \(anchor_without_any_partner 1\)/,
  });
  // one document of several segments: trains, but there is nothing to hold out
  const lines = fs.readFileSync(corpus, 'utf8').trim().split('\n');
  const single = path.join(dir, 'single.jsonl');
  fs.writeFileSync(single, lines[0] + '\n');
  let m = await prepare({ inputs: [single], vocab: VOCAB, out, maxSeqLen: 32, workers: 0 });
  t.true(m.splits.train.instances > 0);
  t.is(m.splits.valid.instances, 0);
  t.deepEqual(m.warnings, ['the valid split is empty: there is only 1 document with text, and holding one out needs at least 2; pretrain will run without evaluation']);
  m = await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, validMinDocs: 0 });
  t.regex(m.warnings.join('\n'), /the valid split is empty: --valid-fraction 0\.01 of 10 documents rounds to 0 and --valid-min-docs is 0/);
  m = await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, validMinDocs: 8 });
  t.regex(m.warnings.join('\n'), /the valid split has 5 documents, fewer than --valid-min-docs 8: at most half of the 10 documents/);
  m = await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, validFraction: 0 });
  t.deepEqual(m.warnings, [], 'no validation asked for, none warned about');
});

test('options are checked with the flag the user typed: no derived flag, no negative counts, --out not a file', async (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 10, 3);
  const out = path.join(dir, 'out');
  const base = { inputs: [corpus], vocab: VOCAB, out, workers: 0 };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ maskProb: 2 }, /^--mask-prob must be in \(0, 1\], got 2$/],
    [{ maskProb: 0 }, /^--mask-prob must be in \(0, 1\], got 0$/],
    [{ maxPredictions: 600 }, /^--max-predictions must be an integer in \[1, --max-seq-len 512\], got 600$/],
    [{ validFraction: 1 }, /^--valid-fraction must be in \[0, 1\), got 1$/],
    [{ validFraction: NaN }, /^--valid-fraction must be in \[0, 1\), got NaN$/],
    [{ validMinDocs: -1 }, /^--valid-min-docs must be a non-negative integer, got -1$/],
    [{ minChars: -5 }, /^--min-chars must be a non-negative integer, got -5$/],
    [{ shardSizeMb: 0 }, /^--shard-size-mb must be positive/],
    [{ shardSizeMb: 1e-9 }, /^--shard-size-mb must be positive \(at least one byte\), got 1e-9$/],
  ];
  for (const [o, re] of cases) await t.throwsAsync(prepare({ ...base, ...o }), { message: re }, JSON.stringify(o));
  const file = path.join(dir, 'afile');
  fs.writeFileSync(file, 'x');
  await t.throwsAsync(prepare({ ...base, out: file }), { message: `--out: ${file} exists and is not a directory` });
  t.is(fs.readFileSync(file, 'utf8'), 'x');
  // the CLI rejects negative counts at parse time, naming the flag
  for (const [flag, v] of [['--valid-min-docs', '-1'], ['--min-chars', '-5'], ['--dupe-factor', '0']]) {
    const r = spawnSync(process.execPath, [CLI, 'prepare', '--input', corpus, '--vocab', VOCAB, '--out', out, flag, v], { encoding: 'utf8' });
    t.is(r.status, 1);
    t.regex(r.stderr, new RegExp(`${flag} must be (non-negative|at least 1), got ${v}`));
  }
  const r = spawnSync(process.execPath, [CLI, 'prepare', '--input', corpus, '--vocab', VOCAB, '--out', out, '--mask-prob', '2'], { encoding: 'utf8' });
  t.regex(r.stderr, /--mask-prob must be in \(0, 1\], got 2/);
  t.notRegex(r.stderr, /max-predictions/);
  // vocab train names its flags too
  const v = spawnSync(process.execPath, [CLI, 'vocab', 'train', '--input', corpus, '--size', '100', '--out', path.join(dir, 'v.txt'), '--limit-alphabet', '0'], { encoding: 'utf8' });
  t.is(v.status, 1);
  t.regex(v.stderr, /--limit-alphabet must be a positive integer, got '0'/);
  const v2 = spawnSync(process.execPath, [CLI, 'vocab', 'train', '--input', corpus, '--size', '3', '--out', path.join(dir, 'v.txt')], { encoding: 'utf8' });
  t.regex(v2.stderr, /--size \(vocab size\) must be an integer > 5/);
});

test('--mix: per-input documents, segments, dropped and repeated anchors in the manifest, the text summary and --json, with warnings', (t) => {
  const dir = tmp(t);
  const big = path.join(dir, 'big.jsonl');
  const small = path.join(dir, 'small.jsonl');
  syntheticCorpus(big, 60, 3);
  syntheticCorpus(small, 6, 4);
  // distinct ids in the small input, so no document is a duplicate of the big one's
  fs.writeFileSync(small, fs.readFileSync(small, 'utf8').replace(/Doc /g, 'Small '));
  const out = path.join(dir, 'out');
  const args = [CLI, 'prepare', '--input', big, '--input', small, '--mix', '0.5,0.5', '--vocab', VOCAB, '--out', out, '--max-seq-len', '64', '--workers', '0'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
  const [b, s] = m.inputs;
  t.is(b.documents, 60);
  t.is(s.documents, 6);
  t.is(b.anchors, b.segments);
  t.true(b.keep_rate < 0.8 && b.anchors_dropped > b.anchors / 5, JSON.stringify(b));
  t.true(s.keep_rate > 2 && s.anchors_dropped === 0, JSON.stringify(s));
  t.is(b.instances + b.anchors_dropped + (b.skipped.anchor_without_any_partner ?? 0), b.anchors, 'every anchor is used, dropped or without a partner');
  t.is(m.warnings.length, 2);
  t.regex(m.warnings[0], new RegExp(`--mix drops ${b.anchors_dropped} of the ${b.anchors} anchors of .*big\\.jsonl`));
  t.regex(m.warnings[1], new RegExp(`--mix repeats each anchor of .*small\\.jsonl ${s.keep_rate.toFixed(1)}x on average`));
  t.regex(r.stdout, new RegExp(`input 1: .*big\\.jsonl \\(jsonl, weight 0\\.5\\): 60 documents, ${b.segments} segments, ${b.instances} instances; ${b.anchors_dropped} of ${b.anchors} anchors dropped`));
  t.regex(r.stdout, new RegExp(`input 2: .*small\\.jsonl \\(jsonl, weight 0\\.5\\): 6 documents, ${s.segments} segments, ${s.instances} instances; each anchor used ${s.keep_rate.toFixed(2)}x on average`));
  t.regex(r.stderr, /warning: --mix drops .*\nwarning: --mix repeats/);
  const j = JSON.parse(execFileSync('node', [...args, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as {
    inputs: { anchors_dropped: number; keep_rate: number }[];
    warnings: string[];
  };
  t.deepEqual(j.inputs.map((x) => [x.anchors_dropped, x.keep_rate]), [[b.anchors_dropped, b.keep_rate], [s.anchors_dropped, s.keep_rate]]);
  t.deepEqual(j.warnings, m.warnings);
});

test('skip report: counts per unit (documents, files, links, ...) with the reasons as detail; every reason the code counts has a unit and is snake_case', async (t) => {
  const { describeSkips, skipTotals, skipUnit } = await import('../src/data/document.js');
  // a truncated article: one document lost, however many XML errors it raised
  const dir = tmp(t);
  const jats = path.join(dir, 'jats');
  fs.mkdirSync(jats);
  const fixtures = path.join(repoRoot, 'test/fixtures/readers/jats');
  fs.copyFileSync(path.join(fixtures, 'article-a.nxml'), path.join(jats, 'a.nxml'));
  const b = fs.readFileSync(path.join(fixtures, 'article-a.nxml'), 'utf8').replace(/pmid">\d+/, 'pmid">4242');
  fs.writeFileSync(path.join(jats, 'b.nxml'), b);
  fs.writeFileSync(path.join(jats, 'cut.nxml'), b.slice(0, Math.floor(b.length / 2)));
  const m = await prepare({ inputs: [jats], vocab: VOCAB, out: path.join(dir, 'out'), maxSeqLen: 32, workers: 0, skipBad: true, validFraction: 0 });
  t.is(m.skipped.article_malformed, 1, JSON.stringify(m.skipped));
  t.true(m.skipped.malformed_xml >= 1);
  t.is(skipTotals(m.skipped).documents, 1);
  t.regex(describeSkips(m.skipped), /^1 document \(article_malformed 1\);.* also noted \(nothing further dropped\): malformed_xml \d+$/);
  t.deepEqual(m.inputs[0].skipped, m.skipped);
  t.is(describeSkips({}), 'nothing');
  t.is(describeSkips({ too_short: 2, redirect: 1, link_not_article: 5, namespace_14: 1 }), '4 documents (too_short 2, redirect 1, namespace_14 1); 5 links (link_not_article 5)');
  // every literal reason in the source
  const reasons = new Set<string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (f.endsWith('.ts'))
        for (const line of fs.readFileSync(f, 'utf8').split('\n'))
          if (/skips/i.test(line)) for (const x of line.matchAll(/(?:add\(|\? |: |\[)'([\w-]+)'(?=[,)]| :)/g)) reasons.add(x[1]);
    }
  };
  walk(path.join(repoRoot, 'src/data'));
  t.true(reasons.size > 25, [...reasons].join(' '));
  for (const r of reasons) {
    t.regex(r, /^[a-z0-9_]+$/, `${r} is snake_case`);
    t.not(skipUnit(r), 'other', `${r} has a unit`);
  }
});

test('real corpora from shared/data: MediaWiki (incl. UTF-16) and JATS', async (t) => {
  const wiki = path.join(SHARED, 'wiki');
  const pmc = path.join(SHARED, 'pmc');
  if (!fs.existsSync(wiki) || !fs.existsSync(pmc)) {
    t.log(`skipped: ${SHARED} not found`);
    t.pass();
    return;
  }
  const dir = tmp(t);
  const out = path.join(dir, 'out');
  const m = await prepare({ inputs: [wiki, pmc], vocab: VOCAB, out, maxSeqLen: 128, workers: 1, validFraction: 0.2 });
  t.is(m.inputs[0].format, 'mediawiki');
  t.is(m.inputs[1].format, 'jats');
  t.true(m.counts.documents >= 8, `documents ${m.counts.documents}`);
  t.true(m.counts.instances > 500);
  const ds = ShardDataset.open(out, 'train');
  for (let i = 0; i < Math.min(ds.size, 200); i++) {
    const x = ds.get(i);
    t.true(x.inputIds.length <= 128);
  }
  ds.close();
});

/** A small MediaWiki dump with the cases the deferred conversion must get right. */
function edgeCaseDump(file: string): void {
  const long = (w: string) => Array.from({ length: 40 }, (_, k) => `${w} sentence number ${k} talks about ${w}.`).join(' ');
  const page = (title: string, text: string, ns = 0) => `<page><title>${title}</title><ns>${ns}</ns><id>${title.length}</id><revision><text>${text}</text></revision></page>\n`;
  fs.writeFileSync(
    file,
    '<mediawiki><siteinfo><namespaces><namespace key="0" /><namespace key="14">Category</namespace></namespaces></siteinfo>\n' +
      page('Alpha', `${long('alpha')} See [[Beta]], [[Gamma]], [[Via redirect|the redirect]] and [[Category:Things]].`) +
      page('Beta', `${long('beta')} Back to [[alpha#History|Alpha]].`) +
      page('Gamma', 'Too short.') + // dropped by the converter: too_short
      page('Alpha', `${long('again')} A second page titled Alpha.`) + // duplicate id: the first Alpha stays
      page('Via redirect', '#REDIRECT [[Beta]]') +
      page('Talk:Alpha', 'not an article', 1) +
      '</mediawiki>\n',
  );
}

test('deferred parsing (MediaWiki pages, PubMed records, JSON lines, JATS and HTML files) in the workers: same documents, links and counts as in the reader; same bytes for 0/1/2 workers, tokens in memory or on disk', async (t) => {
  const dir = tmp(t);
  const dump = path.join(dir, 'edge.xml');
  edgeCaseDump(dump);
  const { writeSyntheticWiki } = await import('../src/bench/synthetic-wiki.js');
  const syn = path.join(dir, 'syn.xml');
  const synInfo = writeSyntheticWiki(syn, { pages: 120, words: 150, links: 8 });
  const { readDocuments } = await import('../src/data/readers/index.js');
  const { convertDeferred } = await import('../src/data/readers/deferred.js');
  const { SkipCounter } = await import('../src/data/document.js');
  const realWiki = path.join(SHARED, 'wiki');
  const utf16 = path.join(dir, 'edge16.xml');
  fs.writeFileSync(utf16, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(fs.readFileSync(dump, 'utf8'), 'utf16le')]));
  const fixtures = path.join(repoRoot, 'test/fixtures/readers');
  const realPmc = path.join(SHARED, 'pmc');
  const others = [path.join(fixtures, 'jats'), path.join(fixtures, 'html'), ...(fs.existsSync(realPmc) ? [realPmc] : [])];
  const medline = path.join(fixtures, 'medline');
  const jsonLines = [path.join(fixtures, 'jsonl'), path.join(fixtures, 'wikiextractor')];
  // a JSONL file with CRLF endings, blank lines, a bad record and invalid UTF-8, read with --skip-bad
  const messy = path.join(dir, 'messy.jsonl');
  fs.writeFileSync(
    messy,
    Buffer.concat([
      Buffer.from('{"id":"a","text":"' + 'alpha text, long enough to keep. '.repeat(3) + '","links":["b"]}\r\n\r\n'),
      Buffer.from('{"id":"b","text":"beta \u00e9 '),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(' ' + 'more beta text here. '.repeat(3) + '"}\n{"id": 5, "text": 7}\n{"id":"c","text":"short"}\n'),
    ]),
  );
  for (const f of [dump, utf16, syn, ...(fs.existsSync(realWiki) ? [realWiki] : []), ...others, medline, ...jsonLines, messy]) {
    const skipBad = f === messy || jsonLines.includes(f);
    const direct = new SkipCounter();
    const directRedirects = new Map<string, string>();
    const want = [];
    for await (const d of readDocuments(f, { skips: direct, redirects: directRedirects, skipBad })) want.push({ id: d.id, title: d.title, text: d.text, links: d.links, aliases: d.aliases });
    const deferredSkips = new SkipCounter();
    const deferredRedirects = new Map<string, string>();
    const got = [];
    const kinds = new Set<string>();
    for await (const d of readDocuments(f, { skips: deferredSkips, redirects: deferredRedirects, deferMarkup: true, skipBad })) {
      if (!d.deferred) {
        // read on the main thread as before (WikiExtractor <doc> blocks)
        kinds.add('none');
        got.push({ id: d.id, title: d.title, text: d.text, links: d.links, aliases: d.aliases });
        continue;
      }
      kinds.add(d.deferred.kind);
      const c = await convertDeferred(d, d.deferred);
      for (const [k, v] of c.skips) deferredSkips.add(k, v);
      for (const [k, v] of c.redirects) deferredRedirects.set(k, v);
      if (c.doc) got.push(c.doc);
    }
    // UTF-8 dumps are split into page records; the UTF-16 one is parsed and only its wikitext deferred;
    // WikiExtractor's <doc>-block file (wiki_01) is read on the main thread
    const expectKinds =
      f === utf16 ? ['wikitext']
      : f === realWiki ? ['mediawiki-page', 'wikitext']
      : others.includes(f) ? ['file']
      : f === medline ? ['medline-record']
      : f === jsonLines[1] ? ['jsonl-line', 'none']
      : f === messy || f === jsonLines[0] ? ['jsonl-line']
      : ['mediawiki-page'];
    t.deepEqual([...kinds].sort(), expectKinds, f);
    t.deepEqual(got, want, f);
    t.deepEqual(deferredSkips.toJSON(), direct.toJSON(), f);
    t.deepEqual([...deferredRedirects].sort(), [...directRedirects].sort(), f);
  }
  const outs: string[] = [];
  // tokens held in memory (default budget) and read from the token file (budget 0) give the same bytes
  for (const [workers, tokenMemoryMb] of [[0, undefined], [1, 0], [2, undefined], [2, 0]]) {
    const out = path.join(dir, `out${workers}-${tokenMemoryMb}`);
    const m = await prepare({ inputs: [dump, syn], vocab: VOCAB, out, maxSeqLen: 64, workers, seed: 3, validFraction: 0.1, tokenMemoryMb });
    t.is(m.skipped.too_short, 1);
    t.is(m.skipped.duplicate_document_id, 1);
    t.is(m.skipped.redirect, 1 + synInfo.redirects);
    t.is(m.skipped.namespace_1, 1);
    t.is(m.inputs[1].documents, synInfo.articles);
    t.is(m.inputs[0].documents, 2); // Alpha and Beta
    t.false(fs.existsSync(path.join(out, '.tokens.tmp')), 'the token store is removed');
    outs.push(out);
  }
  const nodes = readTsv(path.join(outs[0], 'graph/nodes.tsv')).map((r) => r[0]);
  t.true(nodes.includes('Alpha') && nodes.includes('Beta') && !nodes.includes('Gamma'));
  const edges = readTsv(path.join(outs[0], 'graph/edges.tsv')).map((r) => r.join('→'));
  t.true(edges.includes('Alpha→Beta') && edges.includes('Beta→Alpha'), edges.slice(0, 5).join(' '));
  const files = listFiles(outs[0]);
  for (const o of outs.slice(1)) {
    t.deepEqual(listFiles(o), files);
    for (const f of files) t.true(fs.readFileSync(path.join(o, f)).equals(fs.readFileSync(path.join(outs[0], f))), `${f} differs in ${o}`);
  }
});

test('token store: segments read back by offset (uint16 and int32), with and without a preload', async (t) => {
  const { TokenFileWriter, TokenFileReader } = await import('../src/data/token-store.js');
  const dir = tmp(t);
  for (const width of [2, 4] as const) {
    const file = path.join(dir, `tok${width}`);
    const w = new TokenFileWriter(file, width);
    const docs: Int32Array[] = [];
    const off: number[] = [];
    for (let d = 0; d < 300; d++) {
      // one empty document, one larger than the write buffer's share, the rest small
      const n = d === 7 ? 0 : d === 11 ? 3_000_000 : 1 + ((d * 37) % 500);
      const a = new Int32Array(n);
      for (let k = 0; k < n; k++) a[k] = (d * 131 + k * 7) % (width === 2 ? 65536 : 1 << 30);
      docs.push(a);
      off.push(w.append(a));
    }
    w.finish();
    const docOffset = Float64Array.from(off);
    const r = new TokenFileReader(file, width, docOffset, (d) => off[d] + docs[d].length);
    const same = (got: ArrayLike<number>, want: Int32Array, what: string) => {
      t.is(got.length, want.length, what);
      for (let k = 0; k < want.length; k++) if (got[k] !== want[k]) return t.fail(`${what}: token ${k} is ${got[k]}, expected ${want[k]}`);
    };
    for (const d of [0, 7, 11, 12, 299]) {
      const n = docs[d].length;
      same(r.read(d, 0, n, 0), docs[d], `width ${width} doc ${d}`);
      same(r.read(d, n >> 2, n >> 1, 1), docs[d].subarray(n >> 2, n >> 1), `width ${width} doc ${d} middle`);
    }
    r.preload(10, 20);
    for (const d of [10, 11, 15, 19, 20, 3]) same(r.read(d, 0, docs[d].length, d % 2 ? 1 : 0), docs[d], `width ${width} doc ${d} after preload`);
    r.close();
  }
  t.pass();
});

test('MediaWiki page records: a truncated dump or a malformed page names the file, line and byte offset; --skip-bad counts them', async (t) => {
  const dir = tmp(t);
  const dump = path.join(dir, 'edge.xml');
  edgeCaseDump(dump);
  const good = fs.readFileSync(dump, 'utf8');
  const cut = path.join(dir, 'cut.xml');
  fs.writeFileSync(cut, good.slice(0, good.lastIndexOf('<page>') + 40));
  const off = Buffer.byteLength(good.slice(0, good.lastIndexOf('<page>')));
  const out = path.join(dir, 'out');
  const lineOf = (text: string, i: number) => text.slice(0, i).split('\n').length;
  await t.throwsAsync(prepare({ inputs: [cut], vocab: VOCAB, out, maxSeqLen: 64, workers: 1 }), {
    message: new RegExp(`cut\\.xml: line ${lineOf(good, good.lastIndexOf('<page>'))} \\(offset ${off}\\): page: .*truncated`),
  });
  let m = await prepare({ inputs: [cut], vocab: VOCAB, out, maxSeqLen: 64, workers: 1, skipBad: true });
  t.is(m.skipped.page_malformed, 1);
  const bad = path.join(dir, 'bad.xml');
  const second = good.indexOf('<page>', good.indexOf('<page>') + 1);
  fs.writeFileSync(bad, good.slice(0, second) + good.slice(second).replace('<title>Beta</title>', '<title>Beta</titel>'));
  // the same place the direct reader names (its sax line), plus the page's offset
  const direct = await (async () => {
    const { readDocuments } = await import('../src/data/readers/index.js');
    const { SkipCounter } = await import('../src/data/document.js');
    try {
      for await (const _ of readDocuments(bad, { skips: new SkipCounter() })) {
        /* read all */
      }
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  })();
  const where = /bad\.xml: (line \d+): /.exec(direct);
  t.truthy(where, direct);
  await t.throwsAsync(prepare({ inputs: [bad], vocab: VOCAB, out, maxSeqLen: 64, workers: 1 }), {
    message: new RegExp(`bad\\.xml: ${where![1]} \\(page at offset ${Buffer.byteLength(good.slice(0, second))}\\): .*malformed XML`),
  });
  m = await prepare({ inputs: [bad], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, skipBad: true });
  t.true((m.skipped.malformed_xml ?? 0) + (m.skipped.page_malformed ?? 0) >= 1, JSON.stringify(m.skipped));
  t.false(fs.existsSync(path.join(out, '.tokens.tmp')));
});

test('Ctrl-C or a kill during prepare removes its work folder and an unpacked archive', (t) => {
  // The child unpacks a tar.gz corpus and opens a work folder, then kills itself mid-read: the signal
  // handler must remove both, then let the signal end the process (no exit code, killed by SIGTERM).
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-prepare-kill-'));
  const tmp = path.join(d, 'tmp'), out = path.join(d, 'out'), site = path.join(d, 'site');
  fs.mkdirSync(tmp);
  fs.mkdirSync(site);
  for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(site, `p${i}.html`), `<html><title>P${i}</title><body><p>page ${i} text</p></body></html>`);
  const tgz = path.join(d, 'site.tar.gz');
  execFileSync('tar', ['-czf', tgz, '-C', d, 'site']);
  const script = `
    import fs from 'node:fs';
    const { readDocuments } = await import(${JSON.stringify(path.join(repoRoot, 'dist/src/data/readers/index.js'))});
    const { WorkDir } = await import(${JSON.stringify(path.join(repoRoot, 'dist/src/data/out-dir.js'))});
    const { SkipCounter } = await import(${JSON.stringify(path.join(repoRoot, 'dist/src/data/document.js'))});
    const work = new WorkDir(${JSON.stringify(out)});
    for await (const doc of readDocuments(${JSON.stringify(tgz)}, { format: 'html', skips: new SkipCounter(), minChars: 1 })) {
      console.log(JSON.stringify({ work: fs.existsSync(work.dir), unpacked: fs.readdirSync(${JSON.stringify(tmp)}).length }));
      process.kill(process.pid, 'SIGTERM');
      await new Promise((r) => setTimeout(r, 5000));
    }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, TMPDIR: tmp }, encoding: 'utf8', timeout: 30000 });
  t.is(r.signal, 'SIGTERM', r.stderr);
  t.deepEqual(JSON.parse(r.stdout.trim().split('\n')[0]!), { work: true, unpacked: 1 }); // both existed mid-read
  t.deepEqual(fs.readdirSync(tmp), [], 'the unpacked archive is gone');
  t.false(fs.existsSync(out), 'the work folder is gone, and --out with it (the run had made it)');
  fs.rmSync(d, { recursive: true, force: true });
});
