// The addon's WordPiece (native/wordpiece.cc, behind WordPieceTokenizer.encodeBatch) against the TypeScript
// tokenizer, whose ids test/tokenizer.test.ts checks against Hugging Face: the same ids on every text.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WordPieceTokenizer, type TokenizerConfig } from '../src/data/tokenizer/index.js';
import { segmentText, segmentTexts } from '../src/data/segment.js';
import { loadNative } from '../src/native.js';
import { fuzzStrings } from './helpers/fuzz-text.js';

const fixDir = fileURLToPath(new URL('../../test/fixtures/tokenizer/', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const sharedData = path.resolve(repoRoot, '../shared/data');
const expected = JSON.parse(fs.readFileSync(path.join(fixDir, 'expected.json'), 'utf8')) as { hardCases: string[] };
const corpus = fs.readFileSync(path.join(fixDir, 'corpus.txt'), 'utf8').split('\n').slice(0, -1);
const vocabOf = (mode: string) => fs.readFileSync(path.join(fixDir, `vocab-${mode}.txt`), 'utf8').split('\n').slice(0, -1);

/** Texts (at most 5 reported) whose batch ids differ from encode(). */
function mismatches(tok: WordPieceTokenizer, ref: WordPieceTokenizer, texts: string[], threads: number): string[] {
  const b = tok.encodeBatch(texts, { threads });
  const bad: string[] = [];
  if (b.start.length !== texts.length + 1) return [`start has ${b.start.length} entries for ${texts.length} texts`];
  texts.forEach((s, k) => {
    const want = ref.encode(s);
    const got = b.ids.subarray(b.start[k], b.start[k + 1]);
    if (got.length !== want.length || got.some((x, i) => x !== want[i])) {
      if (bad.length < 5) bad.push(`${JSON.stringify(s).slice(0, 120)}: ${JSON.stringify(Array.from(got).slice(0, 12))} vs ${JSON.stringify(Array.from(want).slice(0, 12))}`);
    }
  });
  return bad;
}

const variants: { name: string; cfg: Partial<TokenizerConfig>; vocab: string }[] = [
  { name: 'uncased', cfg: { doLowerCase: true }, vocab: 'uncased' },
  { name: 'cased', cfg: { doLowerCase: false }, vocab: 'cased' },
  { name: 'lowercase, keep accents', cfg: { doLowerCase: true, stripAccents: false }, vocab: 'uncased' },
  { name: 'cased, strip accents', cfg: { doLowerCase: false, stripAccents: true }, vocab: 'cased' },
  { name: 'no CJK split', cfg: { doLowerCase: true, tokenizeChineseChars: false }, vocab: 'uncased' },
  { name: 'max 8 chars per word', cfg: { doLowerCase: true, maxInputCharsPerWord: 8 }, vocab: 'uncased' },
];

for (const v of variants) {
  test(`native encodeBatch = encode (${v.name}): hard cases, fixture corpus, fuzz; 1 and 3 threads`, (t) => {
    const vocab = vocabOf(v.vocab);
    const tok = WordPieceTokenizer.fromVocab(vocab, v.cfg);
    const ref = WordPieceTokenizer.fromVocab(vocab, v.cfg);
    t.true(tok.nativeBatch, 'the addon is built, so encodeBatch must run natively');
    const texts = [...expected.hardCases, ...corpus, ...fuzzStrings(1500, 11 + v.name.length)];
    // first call: every non-ASCII code point is new to the addon (defined, then those texts again)
    t.deepEqual(mismatches(tok, ref, texts, 1), []);
    // again, all defined, on several threads with their own word caches
    t.deepEqual(mismatches(tok, ref, texts, 3), []);
    t.deepEqual(mismatches(tok, ref, texts.slice().reverse(), 2), []);
    const empty = tok.encodeBatch([], { threads: 4 });
    t.is(empty.ids.length, 0);
    t.deepEqual(Array.from(empty.start), [0]);
  });
}

test('encodeBatchAsync = encodeBatch, one batch at a time per tokenizer', async (t) => {
  const vocab = vocabOf('uncased');
  const tok = WordPieceTokenizer.fromVocab(vocab, { doLowerCase: true });
  const ref = WordPieceTokenizer.fromVocab(vocab, { doLowerCase: true });
  const texts = [...expected.hardCases, ...corpus, ...fuzzStrings(800, 99)];
  for (const threads of [1, 2]) {
    const a = await tok.encodeBatchAsync(texts, { threads });
    const b = ref.encodeBatch(texts, { threads: 1 });
    t.deepEqual(Array.from(a.start), Array.from(b.start));
    t.deepEqual(Array.from(a.ids), Array.from(b.ids));
  }
  const big = Array.from({ length: 200 }, (_, k) => corpus.join(' ') + k);
  const first = tok.encodeBatchAsync(big, { threads: 1 });
  t.throws(() => tok.encodeBatch(['x']), { message: /already encoding a batch/ });
  await t.throwsAsync(tok.encodeBatchAsync(['x']), { message: /already encoding a batch/ });
  const r = await first;
  t.is(r.start.length, big.length + 1);
  t.notThrows(() => tok.encodeBatch(['x']));
});

test('native word cache: ids stay right after it fills up (2^18 words) and starts over', (t) => {
  const vocab = vocabOf('uncased');
  const tok = WordPieceTokenizer.fromVocab(vocab, { doLowerCase: true });
  const ref = WordPieceTokenizer.fromVocab(vocab, { doLowerCase: true });
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const letters = 'abcdefghijklmnopqrstuvwxyzéü';
  const lines: string[] = [];
  for (let l = 0; l < 3000; l++) {
    const words: string[] = [];
    for (let w = 0; w < 100; w++) {
      let x = '';
      const n = 3 + Math.floor(rnd() * 8);
      for (let c = 0; c < n; c++) x += letters[Math.floor(rnd() * letters.length)];
      words.push(x);
    }
    lines.push(words.join(' '));
  }
  t.deepEqual(mismatches(tok, ref, lines, 1), []);
  t.deepEqual(mismatches(tok, ref, lines, 1), []);
});

test('segmentTexts (one batch for many documents) = segmentText per document', (t) => {
  const tok = WordPieceTokenizer.fromVocab(vocabOf('uncased'), { doLowerCase: true });
  const docs = [corpus.slice(0, 40).join('\n'), '', 'One. Two! Three?', corpus.slice(40, 200).join(' '), ...fuzzStrings(50, 3)];
  for (const target of [5, 61, 254]) {
    const batch = segmentTexts(tok, docs, target, 2);
    docs.forEach((d, k) => {
      const one = segmentText({ encode: (x) => tok.encode(x), isWordStart: (id) => tok.isWordStart(id) }, d, target);
      t.deepEqual(Array.from(batch[k].tokens), Array.from(one.tokens), `tokens of document ${k}, target ${target}`);
      t.deepEqual(Array.from(batch[k].bounds), Array.from(one.bounds), `bounds of document ${k}, target ${target}`);
      t.is(batch[k].sentences, one.sentences);
    });
  }
});

test('real text from shared/data: native = TypeScript ids on NCBI-disease and PMC paragraphs', (t) => {
  const ncbi = path.join(sharedData, 'ner/ncbi-disease/train.tsv');
  const pmc = path.join(sharedData, 'pmc');
  if (!fs.existsSync(ncbi) || !fs.existsSync(pmc)) return t.pass(`skipped: ${sharedData} not present`);
  const lines = fs.readFileSync(ncbi, 'utf8').split('\n\n').map((s) => s.split('\n').map((l) => l.split('\t')[0]).join(' '));
  for (const f of fs.readdirSync(pmc).filter((f) => f.endsWith('.nxml')).sort().slice(0, 40))
    for (const m of fs.readFileSync(path.join(pmc, f), 'utf8').matchAll(/<p>([\s\S]*?)<\/p>/g)) lines.push(m[1].replace(/<[^>]+>/g, ' '));
  t.true(lines.length > 1000);
  for (const lower of [true, false]) {
    const vocab = vocabOf(lower ? 'uncased' : 'cased');
    t.deepEqual(mismatches(WordPieceTokenizer.fromVocab(vocab, { doLowerCase: lower }), WordPieceTokenizer.fromVocab(vocab, { doLowerCase: lower }), lines, 2), []);
  }
});

test('LINKBERT_NATIVE_TOKENIZER=0: encodeBatch runs in TypeScript, same ids', (t) => {
  const mod = new URL('../src/data/tokenizer/index.js', import.meta.url).href;
  const vocabFile = path.join(fixDir, 'vocab-uncased.txt');
  const script = `const { WordPieceTokenizer } = await import(${JSON.stringify(mod)});
const tok = WordPieceTokenizer.fromVocabFile(${JSON.stringify(vocabFile)}, { doLowerCase: true });
const b = tok.encodeBatch(['Héllo WORLD, naïve café!', '', '日本語 [MASK] x']);
console.log(JSON.stringify({ native: tok.nativeBatch, ids: Array.from(b.ids), start: Array.from(b.start) }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, LINKBERT_NATIVE_TOKENIZER: '0' } });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { native: boolean; ids: number[]; start: number[] };
  t.false(out.native);
  const tok = WordPieceTokenizer.fromVocabFile(vocabFile, { doLowerCase: true });
  const want = tok.encodeBatch(['Héllo WORLD, naïve café!', '', '日本語 [MASK] x']);
  t.deepEqual(out.ids, Array.from(want.ids));
  t.deepEqual(out.start, Array.from(want.start));
});

test('native tokenizer entry points reject bad input with TypeError/RangeError', (t) => {
  const a = loadNative() as unknown as Record<string, (...args: unknown[]) => unknown>;
  const ascii = new Uint8Array(128); // all word characters, but for space and brackets
  ascii[32] = 1;
  ascii[91] = ascii[93] = 2;
  const cfg = { lower: true, unkId: 0, maxChars: 100, asciiKind: ascii, specials: ['[MASK]'], specialIds: [1] };
  const create = (vocab: string[], c: object) => a.wordpieceCreate(vocab.join(''), Int32Array.from(vocab, (x) => x.length), c);
  const h = create(['[UNK]', '[MASK]', 'a'], cfg);
  t.throws(() => a.wordpieceCreate(['a'], Int32Array.of(1), cfg), { instanceOf: TypeError });
  t.throws(() => a.wordpieceCreate('a', [1], cfg), { instanceOf: TypeError });
  t.throws(() => create([], cfg), { instanceOf: RangeError, message: /1 to 2\^30/ });
  t.throws(() => a.wordpieceCreate('ab', Int32Array.of(1, 2), cfg), { instanceOf: RangeError, message: /lengths\[1\] runs past/ });
  t.throws(() => a.wordpieceCreate('abc', Int32Array.of(1, 1), cfg), { instanceOf: RangeError, message: /add up to 2/ });
  t.throws(() => create(['a'], { ...cfg, unkId: 5 }), { instanceOf: RangeError, message: /cfg.unkId/ });
  t.throws(() => create(['a'], { ...cfg, asciiKind: new Uint8Array(3) }), { instanceOf: TypeError, message: /asciiKind/ });
  t.throws(() => create(['a'], { ...cfg, asciiKind: new Uint8Array(128).fill(9) }), { instanceOf: RangeError, message: /asciiKind\[0\]/ });
  t.throws(() => create(['a', 'b'], { ...cfg, specialIds: [1, 2] }), { instanceOf: TypeError, message: /same length/ });
  t.throws(() => a.wordpieceEncodeBatch({}, ['x'], 1), { instanceOf: TypeError, message: /handle/ });
  t.throws(() => a.wordpieceEncodeBatch(h, ['x', 3], 1), { instanceOf: TypeError, message: /texts\[1\]/ });
  t.throws(() => a.wordpieceEncodeBatch(h, ['x'], 0), { instanceOf: RangeError, message: /threads/ });
  t.throws(() => a.wordpieceEncodeBatch(h, ['x'], 1.5), { instanceOf: RangeError, message: /threads/ });
  const i32 = (xs: number[]) => Int32Array.from(xs);
  t.throws(() => a.wordpieceDefine(h, i32([0xe9]), new Uint8Array(1), i32([0]), new Uint16Array(0), new Uint8Array(0)), { instanceOf: RangeError, message: /normOff/ });
  t.throws(() => a.wordpieceDefine(h, i32([0x41]), new Uint8Array(1), i32([0, 0]), new Uint16Array(0), new Uint8Array(0)), { instanceOf: RangeError, message: /cps\[0\]/ });
  t.throws(() => a.wordpieceDefine(h, i32([0xe9]), Uint8Array.of(7), i32([0, 0]), new Uint16Array(0), new Uint8Array(0)), { instanceOf: RangeError, message: /kinds\[0\]/ });
  t.throws(() => a.wordpieceDefine(h, i32([0xe9]), Uint8Array.of(3), i32([0, 1]), Uint16Array.of(0x65), Uint8Array.of(9)), { instanceOf: RangeError, message: /normCls\[0\]/ });
  t.throws(() => a.wordpieceDefine(h, [0xe9], Uint8Array.of(3), i32([0, 1]), Uint16Array.of(0x65), Uint8Array.of(0)), { instanceOf: TypeError, message: /cps/ });
  // still usable after all that: 'é' -> 'e' (a word char), 'a' in the vocab, the rest [UNK]
  a.wordpieceDefine(h, i32([0xe9]), Uint8Array.of(3), i32([0, 1]), Uint16Array.of(0x61), Uint8Array.of(0));
  const r = a.wordpieceEncodeBatch(h, ['a é [MASK] b', 'ü'], 2) as { ids: Int32Array; lens: Int32Array; missing: Int32Array };
  t.deepEqual(Array.from(r.ids), [2, 2, 1, 0]);
  t.deepEqual(Array.from(r.lens), [4, -1]);
  t.deepEqual(Array.from(r.missing), [0xfc]);
});
