import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { prepare } from '../src/data/prepare.js';
import { ShardDataset } from '../src/data/shards/reader.js';
import type { Instance } from '../src/data/shards/format.js';
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
  fs.rmSync(path.join(out, 'manifest.json'));
  const r = spawnSync('node', [CLI, 'inspect', out], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.regex(r.stderr, /no manifest\.json/);
});

test('a failed run leaves no manifest: the old one is removed before writing', async (t) => {
  const dir = tmp(t);
  const corpus = path.join(dir, 'c.jsonl');
  syntheticCorpus(corpus, 20, 7);
  const out = path.join(dir, 'out');
  await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0 });
  t.notThrows(() => ShardDataset.open(out, 'train'));
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, fs.readFileSync(corpus, 'utf8') + '{"id": "x", "text": 5}\n');
  await t.throwsAsync(prepare({ inputs: [bad], vocab: VOCAB, out, maxSeqLen: 64, workers: 0 }), { message: /bad\.jsonl: line 21: text/ });
  t.false(fs.existsSync(path.join(out, 'manifest.json')));
  t.false(fs.existsSync(path.join(out, '.tokens.tmp')), 'the token store is removed after a failure too');
  t.throws(() => ShardDataset.open(out, 'train'), { message: /no manifest\.json/ });
  // --skip-bad counts it instead
  const m = await prepare({ inputs: [bad], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, skipBad: true });
  t.true(Object.values(m.skipped).reduce((a, b) => a + b, 0) >= 1, JSON.stringify(m.skipped));
  await t.throwsAsync(prepare({ inputs: [path.join(dir, 'missing.jsonl')], vocab: VOCAB, out, workers: 0 }), { message: /missing\.jsonl: no such file/ });
  await t.throwsAsync(prepare({ inputs: [corpus], vocab: VOCAB, out, workers: 0, mix: [1, 2] }), { message: /--mix has 2 weights for 1 inputs/ });
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
    t.is(m.skipped['duplicate-document-id'], 1);
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
