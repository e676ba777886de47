import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { WordPieceTokenizer, trainWordPieceVocab, learnWordPiece, SPECIAL_TOKENS, type TokenizerConfig } from '../src/data/tokenizer/index.js';
import { fuzzStrings } from './helpers/fuzz-text.js';

const fixDir = fileURLToPath(new URL('../../test/fixtures/tokenizer/', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const sharedData = path.resolve(repoRoot, '../shared/data');
const require = createRequire(import.meta.url);

interface Expected {
  hardCases: string[];
  modes: Record<string, { vocab: string; hard: { ids: number[]; offsets: [number, number][] }[]; corpusIds: number[][] }>;
}
const expected = JSON.parse(fs.readFileSync(path.join(fixDir, 'expected.json'), 'utf8')) as Expected;
const corpus = fs.readFileSync(path.join(fixDir, 'corpus.txt'), 'utf8').split('\n').slice(0, -1);
const vocabOf = (mode: string) => fs.readFileSync(path.join(fixDir, `vocab-${mode}.txt`), 'utf8').split('\n').slice(0, -1);

// The reference: HF `tokenizers` configured exactly as BertTokenizerFast.
interface RefEncoding {
  getIds(): number[];
  getOffsets(): number[][];
  getWordIds(): (number | null)[];
}
interface RefTokenizer {
  encodeBatch(s: string[], o: { addSpecialTokens: boolean }): Promise<RefEncoding[]>;
  save(p: string): void;
}
function loadTk(): any | null {
  try {
    return require('tokenizers');
  } catch {
    return null;
  }
}
const tk = loadTk();
function refTokenizer(vocab: string[], c: { lower: boolean; strip: boolean; cjk: boolean }): RefTokenizer {
  const v: Record<string, number> = {};
  vocab.forEach((t, i) => (v[t] = i));
  const t = new tk.Tokenizer(tk.WordPiece.init(v, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }));
  t.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: c.cjk, stripAccents: c.strip, lowercase: c.lower }));
  t.setPreTokenizer(tk.bertPreTokenizer());
  t.addSpecialTokens([...SPECIAL_TOKENS]);
  return t;
}

/** UTF-16 offsets -> code point offsets (the binding reports code points). */
function toCodePointOffsets(text: string, offs: Int32Array): number[][] {
  const cpAt = new Int32Array(text.length + 1);
  let cp = 0;
  for (let i = 0; i < text.length; i++) {
    cpAt[i] = cp;
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      cpAt[i + 1] = cp;
      i++;
    }
    cp++;
  }
  cpAt[text.length] = cp;
  const out: number[][] = [];
  for (let k = 0; k < offs.length; k += 2) out.push([cpAt[offs[k]], cpAt[offs[k + 1]]]);
  return out;
}

for (const mode of ['uncased', 'cased']) {
  const lower = mode === 'uncased';
  test(`fixture ids (${mode}): hard cases and corpus match the committed HF output`, (t) => {
    const tok = WordPieceTokenizer.fromVocabFile(path.join(fixDir, `vocab-${mode}.txt`), { doLowerCase: lower });
    const exp = expected.modes[mode];
    expected.hardCases.forEach((s, k) => {
      const e = tok.encodeWithOffsets(s);
      t.deepEqual(Array.from(e.ids), exp.hard[k].ids, `ids of hard case ${k}: ${JSON.stringify(s)}`);
      t.deepEqual(toCodePointOffsets(s, e.offsets), exp.hard[k].offsets, `offsets of hard case ${k}`);
    });
    t.is(corpus.length, exp.corpusIds.length);
    let bad = 0;
    corpus.forEach((line, k) => {
      const ids = Array.from(tok.encode(line));
      if (JSON.stringify(ids) !== JSON.stringify(exp.corpusIds[k])) {
        if (bad++ < 3) t.deepEqual(ids, exp.corpusIds[k], `corpus line ${k + 1}`);
      }
    });
    t.is(bad, 0, 'corpus lines with different ids');
    // encode and encodeWithOffsets agree
    t.deepEqual(tok.encode(corpus[3]), tok.encodeWithOffsets(corpus[3]).ids);
  });
}

const variants: { name: string; cfg: Partial<TokenizerConfig>; ref: { lower: boolean; strip: boolean; cjk: boolean }; vocab: string }[] = [
  { name: 'uncased', cfg: { doLowerCase: true }, ref: { lower: true, strip: true, cjk: true }, vocab: 'uncased' },
  { name: 'cased', cfg: { doLowerCase: false }, ref: { lower: false, strip: false, cjk: true }, vocab: 'cased' },
  { name: 'lowercase, keep accents', cfg: { doLowerCase: true, stripAccents: false }, ref: { lower: true, strip: false, cjk: true }, vocab: 'uncased' },
  { name: 'cased, strip accents', cfg: { doLowerCase: false, stripAccents: true }, ref: { lower: false, strip: true, cjk: true }, vocab: 'cased' },
  { name: 'no CJK split', cfg: { doLowerCase: true, tokenizeChineseChars: false }, ref: { lower: true, strip: true, cjk: false }, vocab: 'uncased' },
];

for (const v of variants) {
  test(`live parity with tokenizers (${v.name}): hard cases + fuzz, ids, offsets and word ids`, async (t) => {
    if (!tk) return t.pass('tokenizers binding not installed; fixture tests cover ids');
    const vocab = vocabOf(v.vocab);
    const ours = WordPieceTokenizer.fromVocab(vocab, v.cfg);
    const ref = refTokenizer(vocab, v.ref);
    const texts = [...expected.hardCases, ...fuzzStrings(400, 7 + v.name.length)];
    const encs = await ref.encodeBatch(texts, { addSpecialTokens: false });
    let bad = 0;
    texts.forEach((s, k) => {
      const e = ours.encodeWithOffsets(s);
      const same =
        JSON.stringify(Array.from(e.ids)) === JSON.stringify(encs[k].getIds()) &&
        JSON.stringify(toCodePointOffsets(s, e.offsets)) === JSON.stringify(encs[k].getOffsets()) &&
        JSON.stringify(Array.from(e.wordIds)) === JSON.stringify(encs[k].getWordIds());
      if (!same && bad++ < 3) {
        t.deepEqual(Array.from(e.ids), encs[k].getIds(), `ids for ${JSON.stringify(s)}`);
        t.deepEqual(toCodePointOffsets(s, e.offsets), encs[k].getOffsets(), `offsets for ${JSON.stringify(s)}`);
        t.deepEqual(Array.from(e.wordIds), encs[k].getWordIds(), `word ids for ${JSON.stringify(s)}`);
      }
    });
    t.is(bad, 0);
  });
}

function ncbiSentences(): string[] | null {
  const f = path.join(sharedData, 'ner/ncbi-disease/train.tsv');
  if (!fs.existsSync(f)) return null;
  const out: string[][] = [[]];
  for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
    if (line.trim() === '') {
      if (out[out.length - 1].length) out.push([]);
    } else out[out.length - 1].push(line.split('\t')[0]);
  }
  return out.filter((s) => s.length).map((s) => s.join(' '));
}

test('real text: NCBI-disease train sentences match tokenizers, cased and uncased', async (t) => {
  const sents = ncbiSentences();
  if (!sents) return t.pass(`skipped: ${sharedData}/ner/ncbi-disease/train.tsv absent`);
  if (!tk) return t.pass('skipped: tokenizers binding not installed');
  for (const v of variants.slice(0, 2)) {
    const vocab = vocabOf(v.vocab);
    const ours = WordPieceTokenizer.fromVocab(vocab, v.cfg);
    const encs = await refTokenizer(vocab, v.ref).encodeBatch(sents, { addSpecialTokens: false });
    let bad = 0;
    sents.forEach((s, k) => {
      if (JSON.stringify(Array.from(ours.encode(s))) !== JSON.stringify(encs[k].getIds()) && bad++ < 3)
        t.deepEqual(Array.from(ours.encode(s)), encs[k].getIds(), `${v.name}: ${s}`);
    });
    t.is(bad, 0, `${v.name}: ${sents.length} sentences`);
  }
});

test('offsets slice back to the token text (modulo case and accents); wordIds follow words', (t) => {
  const tok = WordPieceTokenizer.fromVocabFile(path.join(fixDir, 'vocab-uncased.txt'));
  const fold = (s: string) => s.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
  let checked = 0;
  for (const text of [...corpus, ...expected.hardCases]) {
    const { ids, offsets, wordIds } = tok.encodeWithOffsets(text);
    for (let k = 0; k < ids.length; k++) {
      const [s, e] = [offsets[2 * k], offsets[2 * k + 1]];
      t.true(s >= 0 && s < e && e <= text.length, `offsets in range in ${JSON.stringify(text)}`);
      if (k > 0) t.true(wordIds[k] === wordIds[k - 1] || wordIds[k] === wordIds[k - 1] + 1);
      const id = ids[k];
      if (id === tok.unkId || tok.isSpecial(id)) continue;
      const piece = tok.idToToken(id).replace(/^##/, '');
      const orig = fold(text.slice(s, e));
      // compatibility characters (ﬁ, ｆ, ǅ...) normalize differently under NFD vs NFKD; only check pieces
      // whose source folds to something of the same length
      if (orig.length === piece.length) {
        t.is(orig, piece, `piece ${JSON.stringify(piece)} at [${s},${e}) of ${JSON.stringify(text)}`);
        checked++;
      }
    }
  }
  t.true(checked > 10000, `checked ${checked} pieces`);
  // combining marks removed by strip_accents are not part of any piece; spaces never are
  const text = 'Ce\u0301line  , wörld';
  const e = tok.encodeWithOffsets(text);
  t.deepEqual(Array.from(e.wordIds).filter((w, k, a) => k === 0 || w !== a[k - 1]), [0, 1, 2]);
  t.is(text.slice(e.offsets[0], e.offsets[1])[0], 'C');
  t.is(text.slice(e.offsets[2 * (e.ids.length - 1)], e.offsets[2 * e.ids.length - 1]).slice(-1), 'd');
});

test('encodeWords: each word tokenized on its own, wordIndex points into the input', (t) => {
  const tok = WordPieceTokenizer.fromVocabFile(path.join(fixDir, 'vocab-cased.txt'), { doLowerCase: false });
  const words = ['Identification', 'of', 'APC2', ',', 'a', 'homologue', "don't", '\u0001', 'café', '日本'];
  const { ids, wordIndex } = tok.encodeWords(words);
  const expectIds: number[] = [];
  const expectIdx: number[] = [];
  words.forEach((w, i) => {
    for (const id of tok.encode(w)) {
      expectIds.push(id);
      expectIdx.push(i);
    }
  });
  t.deepEqual(Array.from(ids), expectIds);
  t.deepEqual(Array.from(wordIndex), expectIdx);
  t.false(Array.from(wordIndex).includes(7), 'a word of control characters has no pieces');
  t.true(Array.from(wordIndex).filter((i) => i === 6).length >= 3, "don't splits at the apostrophe");
});

test('special tokens in text, decode, isWordStart, ids of specials', (t) => {
  const tok = WordPieceTokenizer.fromVocabFile(path.join(fixDir, 'vocab-uncased.txt'));
  t.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId], [0, 1, 2, 3, 4]);
  const ids = tok.encode('Paris is the [MASK] of France.');
  t.true(Array.from(ids).includes(tok.maskId));
  t.false(Array.from(tok.encode('the [mask] x')).includes(tok.maskId), 'special tokens are case-sensitive');
  const text = 'the holin proteins were observed';
  const enc = tok.encode(text);
  t.is(tok.decode(enc), text);
  t.is(tok.decode([tok.clsId, ...enc, tok.sepId], { skipSpecial: true }), text);
  t.is(tok.decode([tok.clsId, ...enc, tok.sepId]), `[CLS] ${text} [SEP]`);
  const pieces = Array.from(tok.encode('holinization')).map((i) => tok.idToToken(i));
  Array.from(tok.encode('holinization')).forEach((id, k) => t.is(tok.isWordStart(id), !pieces[k].startsWith('##')));
  t.true(tok.isWordStart(tok.clsId));
  t.throws(() => tok.idToToken(tok.vocabSize), { message: /out of range/ });
  t.is(tok.tokenToId('[MASK]'), 4);
  t.is(tok.tokenToId('no-such-token-xyz'), undefined);
  t.deepEqual(tok.basicTokenize('Héllo, [MASK]!'), ['hello', ',', '[MASK]', '!']);
});

test('save / fromDir round trip; hash depends on vocab and config; tokenizer.json loading', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-test-'));
  try {
    const a = WordPieceTokenizer.fromVocabFile(path.join(fixDir, 'vocab-cased.txt'), { doLowerCase: false });
    a.save(path.join(dir, 'a'));
    for (const f of ['vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json']) t.true(fs.existsSync(path.join(dir, 'a', f)), f);
    const b = WordPieceTokenizer.fromDir(path.join(dir, 'a'));
    t.is(b.hash(), a.hash());
    t.deepEqual(b.config, a.config);
    t.deepEqual(b.encode(corpus[40]), a.encode(corpus[40]));
    const c = WordPieceTokenizer.fromVocabFile(path.join(fixDir, 'vocab-cased.txt'), { doLowerCase: true });
    t.not(c.hash(), a.hash());
    t.regex(a.hash(), /^[0-9a-f]{64}$/);
    if (tk) {
      const vocab = vocabOf('uncased');
      const ref = refTokenizer(vocab, { lower: true, strip: true, cjk: true });
      const jf = path.join(dir, 'tokenizer.json');
      ref.save(jf);
      const j = WordPieceTokenizer.fromTokenizerJson(jf);
      t.is(j.config.doLowerCase, true);
      t.is(j.vocabSize, vocab.length);
      const plain = WordPieceTokenizer.fromVocab(vocab);
      for (const line of corpus.slice(0, 50)) t.deepEqual(j.encode(line), plain.encode(line));
      // directory with tokenizer.json + a tokenizer_config.json overriding the normalizer (as BertTokenizerFast)
      fs.mkdirSync(path.join(dir, 'j'));
      fs.copyFileSync(jf, path.join(dir, 'j', 'tokenizer.json'));
      fs.writeFileSync(path.join(dir, 'j', 'tokenizer_config.json'), JSON.stringify({ do_lower_case: false, mask_token: { content: '[MASK]' } }));
      t.is(WordPieceTokenizer.fromDir(path.join(dir, 'j')).config.doLowerCase, false);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad inputs give clear errors naming the file and field', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-bad-'));
  try {
    const missing = path.join(dir, 'nope.txt');
    t.throws(() => WordPieceTokenizer.fromVocabFile(missing), { message: new RegExp(`vocab file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist`) });
    const noUnk = path.join(dir, 'nounk.txt');
    fs.writeFileSync(noUnk, '[PAD]\n[CLS]\n[SEP]\n[MASK]\nhello\n');
    t.throws(() => WordPieceTokenizer.fromVocabFile(noUnk), { message: /nounk\.txt: unk token '\[UNK\]' is not in the vocabulary/ });
    fs.writeFileSync(path.join(dir, 'latin1.txt'), Buffer.concat([Buffer.from('[PAD]\n[UNK]\ncaf'), Buffer.from([0xe9]), Buffer.from('\n')]));
    t.throws(() => WordPieceTokenizer.fromVocabFile(path.join(dir, 'latin1.txt')), { message: /latin1\.txt:3: token is not valid UTF-8/ });
    fs.writeFileSync(path.join(dir, 'empty.txt'), '');
    t.throws(() => WordPieceTokenizer.fromVocabFile(path.join(dir, 'empty.txt')), { message: /empty\.txt is empty/ });
    t.throws(() => WordPieceTokenizer.fromDir(path.join(dir, 'none')), { message: /does not exist/ });
    fs.mkdirSync(path.join(dir, 'emptydir'));
    t.throws(() => WordPieceTokenizer.fromDir(path.join(dir, 'emptydir')), { message: /no tokenizer found \(looked for .*vocab\.txt and .*tokenizer\.json\)/ });
    fs.mkdirSync(path.join(dir, 'badcfg'));
    fs.writeFileSync(path.join(dir, 'badcfg', 'vocab.txt'), SPECIAL_TOKENS.join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'badcfg', 'tokenizer_config.json'), '{"do_lower_case": "yes"}');
    t.throws(() => WordPieceTokenizer.fromDir(path.join(dir, 'badcfg')), { message: /tokenizer_config\.json: field 'do_lower_case' must be a boolean/ });
    fs.writeFileSync(path.join(dir, 'badcfg', 'tokenizer_config.json'), '{"do_lower_case": tru');
    t.throws(() => WordPieceTokenizer.fromDir(path.join(dir, 'badcfg')), { message: /tokenizer_config\.json: invalid JSON/ });
    const bpe = path.join(dir, 'bpe.json');
    fs.writeFileSync(bpe, JSON.stringify({ model: { type: 'BPE', vocab: {} } }));
    t.throws(() => WordPieceTokenizer.fromTokenizerJson(bpe), { message: /bpe\.json: field 'model\.type' is "BPE", only WordPiece/ });
    const gap = path.join(dir, 'gap.json');
    fs.writeFileSync(gap, JSON.stringify({ model: { type: 'WordPiece', vocab: { '[UNK]': 0, a: 2 } }, normalizer: { type: 'BertNormalizer' }, pre_tokenizer: { type: 'BertPreTokenizer' } }));
    t.throws(() => WordPieceTokenizer.fromTokenizerJson(gap), { message: /gap\.json: field 'model\.vocab': no token has id 1/ });
    t.throws(() => WordPieceTokenizer.fromVocab(['[UNK]'], { doLowerCase: 'no' as unknown as boolean }), { message: /'doLowerCase' must be a boolean/ });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vocab training: specials at 0-4, no duplicates, from files and from memory, usable by the tokenizer', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-train-'));
  try {
    const lines = corpus.slice(20, 200);
    const file = path.join(dir, 'a.txt');
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const fromFile = await trainWordPieceVocab([file], { vocabSize: 600, doLowerCase: true });
    const fromMem = await trainWordPieceVocab({ lines }, { vocabSize: 600, doLowerCase: true });
    for (const v of [fromFile, fromMem]) {
      t.deepEqual(v.slice(0, 5), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
      t.is(v.length, 600);
      t.is(new Set(v).size, v.length, 'no duplicates');
      t.is(v.filter((x) => SPECIAL_TOKENS.includes(x)).length, 5);
      t.true(v.some((x) => x.startsWith('##')));
      t.false(v.slice(5).some((x) => /[A-Z]/.test(x)), 'uncased vocab has no uppercase');
    }
    t.deepEqual(new Set(fromFile.slice(0, 5)), new Set(fromMem.slice(0, 5)));
    const tok = WordPieceTokenizer.fromVocab(fromFile);
    const ids = tok.encode(lines[0]);
    t.true(ids.length > 0);
    t.false(Array.from(ids).includes(tok.unkId), 'training text is covered by its own vocab');
    const cased = await trainWordPieceVocab({ lines }, { vocabSize: 400, doLowerCase: false, limitAlphabet: 40 });
    t.true(cased.some((x) => /[A-Z]/.test(x)), 'cased vocab keeps uppercase');
    t.true(cased.filter((x) => !x.startsWith('[') && [...x].length === 1).length <= 40 + 1, 'alphabet limited'); // '[' itself may be a char
    const small = await trainWordPieceVocab({ lines }, { vocabSize: 400, doLowerCase: true, minFrequency: 3 });
    t.is(new Set(small).size, small.length);
    await t.throwsAsync(trainWordPieceVocab([path.join(dir, 'missing.txt')], { vocabSize: 100, doLowerCase: true }), { message: /missing\.txt does not exist/ });
    // any size: BERT's 30522 and more (the tokenizers binding's own trainer stops at 30000)
    const logs: string[] = [];
    const all = await trainWordPieceVocab({ lines }, { vocabSize: 40000, doLowerCase: true, log: (m) => logs.push(m) });
    t.true(all.length < 40000 && all.length > 600, `${all.length} tokens`);
    t.true(logs.some((m) => m.includes(`the corpus only supports ${all.length} tokens (asked for 40000)`)), logs.join(' | '));
    t.deepEqual(all.slice(0, 600), fromMem, 'a smaller vocab is a prefix of a larger one');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('learnWordPiece: BPE merges with the ## prefix, worked by hand; ties to the pair of smaller ids; deterministic', (t) => {
  const counts = new Map([['hug', 10], ['pug', 5], ['pun', 12], ['bun', 4], ['hugs', 5]]);
  const r = learnWordPiece(counts, 100);
  // alphabet by code point, then the continuation characters by code point, then one token per merge:
  // ##u ##g 20, ##u ##n 16, h ##ug 15, p ##un 12, then p ##ug and hug ##s tie at 5 (p has the smaller id)
  t.deepEqual(r.tokens, ['b', 'g', 'h', 'n', 'p', 's', 'u', '##g', '##n', '##s', '##u', '##ug', '##un', 'hug', 'pun', 'pug', 'hugs', 'bun']);
  t.is(r.alphabet, 7);
  t.is(r.merges, 7);
  t.deepEqual(learnWordPiece(counts, 13).tokens, r.tokens.slice(0, 13), 'stops at size');
  t.deepEqual(learnWordPiece(counts, 3).tokens, r.tokens.slice(0, 11), 'the alphabet is kept whole');
  const shuffled = new Map([...counts].reverse());
  t.deepEqual(learnWordPiece(shuffled, 100).tokens, r.tokens, 'insertion order of the counts does not matter');
  // a ##a ##a ##a: ##a ##a (6) merges left to right into a ##aa ##a, then a ##aa and ##aa ##a tie at 3
  t.deepEqual(learnWordPiece(new Map([['aaaa', 3]]), 100).tokens, ['a', '##a', '##aa', 'aaa', 'aaaa']);
  for (const bad of [1.5, 0, -2, NaN]) t.throws(() => learnWordPiece(new Map([['y', 1], ['x', bad]]), 10), { message: /count of 'x' must be a positive integer/ });
});

// The algorithm written the slow, obvious way: every merge recounts every pair of every word.
function learnWordPieceNaive(counts: Map<string, number>, size: number): string[] {
  const byCp = (x: string, y: string) => x.codePointAt(0)! - y.codePointAt(0)!;
  const first = new Set<string>(), cont = new Set<string>();
  for (const w of counts.keys()) [...w].forEach((ch, k) => (k === 0 ? first : cont).add(ch));
  const tokens = [...new Set([...first, ...cont])].sort(byCp);
  tokens.push(...[...cont].sort(byCp).map((ch) => '##' + ch));
  const id = new Map(tokens.map((x, i) => [x, i]));
  const words = [...counts].map(([w, c]) => ({ sym: [...w].map((ch, k) => id.get(k === 0 ? ch : '##' + ch)!), c }));
  while (tokens.length < size) {
    const pc = new Map<number, number>(); // a * 2^16 + b
    for (const { sym, c } of words) for (let i = 0; i + 1 < sym.length; i++) pc.set(sym[i]! * 65536 + sym[i + 1]!, (pc.get(sym[i]! * 65536 + sym[i + 1]!) ?? 0) + c);
    let best: [number, number, number] | undefined;
    for (const [k, c] of pc) {
      const a = Math.floor(k / 65536), b = k % 65536;
      if (!best || c > best[0] || (c === best[0] && (a < best[1] || (a === best[1] && b < best[2])))) best = [c, a, b];
    }
    if (!best) break;
    const [, a, b] = best;
    const merged = tokens[a]! + tokens[b]!.replace(/^##/, '');
    if (!id.has(merged)) {
      id.set(merged, tokens.length);
      tokens.push(merged);
    }
    const nid = id.get(merged)!;
    for (const w of words) {
      const out: number[] = [];
      for (let i = 0; i < w.sym.length; i++) {
        if (i + 1 < w.sym.length && w.sym[i] === a && w.sym[i + 1] === b) { out.push(nid); i++; } else out.push(w.sym[i]!);
      }
      w.sym = out;
    }
  }
  return tokens;
}

test('learnWordPiece equals the algorithm written naively, on 40K word types over a 600-character alphabet (its pair table and list pool grow many times)', (t) => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const chars = Array.from({ length: 600 }, (_, i) => String.fromCodePoint(0x61 + (i < 26 ? i : 0x3b1 - 0x61 + i)));
  const counts = new Map<string, number>();
  while (counts.size < 40000) {
    const L = 1 + Math.floor(rnd() * 7);
    let w = '';
    // skewed towards the first characters, so that pairs repeat and merges chain
    for (let k = 0; k < L; k++) w += chars[Math.floor(rnd() ** 3 * chars.length)];
    counts.set(w, (counts.get(w) ?? 0) + 1 + Math.floor(rnd() ** 8 * 50));
  }
  const size = 1300; // the alphabet (~1200 tokens) and ~100 merges
  const ours = learnWordPiece(counts, size);
  t.true(ours.merges >= 80, `${ours.merges} merges`);
  t.deepEqual(ours.tokens, learnWordPieceNaive(counts, size));
});

test('learnWordPiece against the tokenizers binding\'s WordPieceTrainer: the same tokens up to ties', async (t) => {
  if (!tk) return t.pass('skipped: tokenizers binding not installed');
  const basic = WordPieceTokenizer.fromVocab([...SPECIAL_TOKENS], { doLowerCase: true });
  const counts = new Map<string, number>();
  for (const line of corpus) for (const w of basic.basicTokenize(line)) counts.set(w, (counts.get(w) ?? 0) + 1);
  for (const sp of SPECIAL_TOKENS) counts.delete(sp);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-learn-'));
  try {
    const words = path.join(dir, 'words.txt');
    fs.writeFileSync(words, [...counts].map(([w, c]) => Array(c).fill(w).join(' ')).join('\n') + '\n');
    // the binding's default trainer (30000 tokens) in a child: it prints progress on stdout
    const out = path.join(dir, 'v.json');
    const { execFileSync } = await import('node:child_process');
    execFileSync(process.execPath, ['-e', `const tk = require(${JSON.stringify(require.resolve('tokenizers'))}); const t = new tk.Tokenizer(tk.WordPiece.empty()); t.setPreTokenizer(tk.bertPreTokenizer()); t.train([${JSON.stringify(words)}]); require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.entries(t.getVocab(false)).sort((a, b) => a[1] - b[1]).map((e) => e[0])));`], { stdio: 'ignore' });
    const theirs = JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
    for (const size of [1000, 2000, theirs.length]) {
      const ours = learnWordPiece(counts, size).tokens.slice(0, size), ref = theirs.slice(0, size);
      const so = new Set(ours), sr = new Set(ref);
      const onlyOurs = ours.filter((x) => !sr.has(x)), onlyRef = ref.filter((x) => !so.has(x));
      t.log(`${size} tokens: ${onlyOurs.length} only ours ${JSON.stringify(onlyOurs.slice(0, 5))}, ${onlyRef.length} only the binding's ${JSON.stringify(onlyRef.slice(0, 5))}`);
      // HF numbers its ##x tokens in hash-map order, which decides some ties between equal counts; in
      // the last merges (pairs seen once or twice) nearly every merge is such a tie
      const bound = size === theirs.length ? 0.03 : 0.01;
      t.true(onlyOurs.length <= Math.ceil(bound * size), `${size}: ${onlyOurs.length} tokens differ`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vocab training reads corpora as prepare does: document text, not markup; unreadable input is an error naming the file', async (t) => {
  const readers = path.join(repoRoot, 'test', 'fixtures', 'readers');
  const dump = path.join(readers, 'wiki', 'tricky.xml');
  const markup = ['revision', 'namespace', 'siteinfo', 'xmlns'];
  // control: the dump's raw lines do teach the markup words
  const raw = await trainWordPieceVocab({ lines: fs.readFileSync(dump, 'utf8').split('\n') }, { vocabSize: 1000, doLowerCase: true });
  t.true(markup.every((w) => raw.includes(w)));
  const logs: string[] = [];
  const fromDump = await trainWordPieceVocab([dump], { vocabSize: 1000, doLowerCase: true, log: (m) => logs.push(m) });
  t.deepEqual(markup.filter((w) => fromDump.includes(w)), [], 'no XML markup in a vocab trained on a MediaWiki dump');
  t.true(['alphabet', 'greek', 'portal'].every((w) => fromDump.includes(w)), 'article words are learned');
  t.true(logs.some((m) => /tricky\.xml: mediawiki, 4 documents, \d+ lines; skipped .*redirect 2/.test(m)), logs.join(' | '));
  // a directory of HTML pages and the UTF-16, bz2-compressed dump: detected per input, mixed
  const mixed = await trainWordPieceVocab([path.join(readers, 'html'), path.join(readers, 'wiki', 'tricky-utf16.xml.bz2')], { vocabSize: 1000, doLowerCase: true });
  t.true(mixed.includes('welcome') && !mixed.includes('href') && !mixed.includes('xmlns'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-train-'));
  try {
    const junk = path.join(dir, 'junk.bin');
    fs.writeFileSync(junk, Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 131 + 7) & 255)));
    await t.throwsAsync(trainWordPieceVocab([junk], { vocabSize: 100, doLowerCase: true }), { message: /junk\.bin: offset 0: format: unrecognised corpus format/ });
    await t.throwsAsync(trainWordPieceVocab([junk], { vocabSize: 100, doLowerCase: true, format: 'pdf' as never }), { message: /format must be one of .*got 'pdf'/ });
    // plain text streams by line from every .txt under a directory (UTF-16 with a BOM decoded); other files are counted
    fs.mkdirSync(path.join(dir, 'txt'));
    fs.writeFileSync(path.join(dir, 'txt', 'a.txt'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('zebra quagga\nokapi\n', 'utf16le')]));
    fs.writeFileSync(path.join(dir, 'txt', 'notes.md'), 'markdown words');
    const tlogs: string[] = [];
    const fromText = await trainWordPieceVocab([path.join(dir, 'txt')], { vocabSize: 100, doLowerCase: true, log: (m) => tlogs.push(m) });
    t.true(['zebra', 'quagga', 'okapi'].every((w) => fromText.includes(w)) && !fromText.includes('markdown'), fromText.join(' '));
    t.true(tlogs.some((m) => /txt: text, 1 file, 2 lines; skipped 1 file \(non_document_file 1\)$/.test(m)), tlogs.join(' | '));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vocab training with worker threads: the same vocab, per-input logs and errors as in one thread', async (t) => {
  const readers = path.join(repoRoot, 'test', 'fixtures', 'readers');
  const inputs = [
    path.join(readers, 'wiki', 'tricky.xml'), path.join(readers, 'html'), path.join(readers, 'wiki', 'tricky-utf16.xml.bz2'),
    path.join(readers, 'jats'), path.join(readers, 'jsonl', 'good.jsonl'), path.join(readers, 'medline', 'pubmed.xml'), path.join(readers, 'text'),
  ];
  const run = async (workers: number) => {
    const logs: string[] = [];
    const vocab = await trainWordPieceVocab(inputs, { vocabSize: 700, doLowerCase: true, workers, log: (m) => logs.push(m) });
    return { vocab, logs };
  };
  const inline = await run(0);
  for (const w of [1, 3]) {
    const threaded = await run(w);
    t.deepEqual(threaded.vocab, inline.vocab, `${w} workers: same vocab`);
    t.deepEqual(threaded.logs, inline.logs, `${w} workers: same per-input lines and skip counts`);
  }
  t.is(inline.logs.filter((m) => m.startsWith(readers)).length, inputs.length, inline.logs.join(' | '));
  // bad input found in a worker fails the same way, naming the file and line; --skip-bad counts it
  const bad = path.join(readers, 'jsonl', 'bad.jsonl');
  await t.throwsAsync(trainWordPieceVocab([bad], { vocabSize: 100, doLowerCase: true, workers: 2 }), { message: /bad\.jsonl: line 2: json: malformed JSON/ });
  const skipLogs: string[][] = [[], []];
  const skipped = await Promise.all([0, 2].map((workers, i) => trainWordPieceVocab([bad], { vocabSize: 100, doLowerCase: true, skipBad: true, workers, log: (m) => skipLogs[i]!.push(m) })));
  t.deepEqual(skipped[1], skipped[0]);
  t.deepEqual(skipLogs[1], skipLogs[0]);
  await t.throwsAsync(trainWordPieceVocab([bad], { vocabSize: 100, doLowerCase: true, workers: -1 }), { message: /workers must be a non-negative integer/ });
});

test('tokenize CLI core: one line per input line, --json/--special/--offsets, vocab/dir/json loading with --lowercase override', async (t) => {
  const { tokenizeStream, loadTokenizer } = await import('../src/cli/tokenize.js');
  const { Readable } = await import('node:stream');
  const vocabFile = path.join(fixDir, 'vocab-uncased.txt');
  const tok = loadTokenizer(vocabFile);
  const run = async (opts: { json?: boolean; special?: boolean; offsets?: boolean }, text: string) => {
    let out = '';
    const n = await tokenizeStream(tok, Readable.from([text]), (c) => (out += c), opts);
    return { n, lines: out.split('\n').slice(0, -1) };
  };
  const text = 'Hello, World!\n\nthe [MASK] holin\r\n';
  const j = await run({ json: true }, text);
  t.is(j.n, 3);
  t.deepEqual(j.lines.map((l) => JSON.parse(l)), ['Hello, World!', '', 'the [MASK] holin'].map((l) => Array.from(tok.encode(l))));
  const sp = await run({ json: true, special: true }, text);
  t.deepEqual(JSON.parse(sp.lines[1]), [tok.clsId, tok.sepId]);
  const toks = await run({}, text);
  t.is(toks.lines[0], Array.from(tok.encode('Hello, World!')).map((i) => tok.idToToken(i)).join(' '));
  t.is(toks.lines[1], '');
  const off = await run({ json: true, offsets: true, special: true }, 'Héllo!\n');
  const o = JSON.parse(off.lines[0]) as { ids: number[]; offsets: [number, number][] };
  t.is(o.ids.length, o.offsets.length);
  t.deepEqual(o.offsets[0], [0, 0]);
  t.deepEqual(o.offsets[o.offsets.length - 2], [5, 6]); // the '!'
  // --no-lowercase on a vocab.txt, and on a saved directory
  t.false(loadTokenizer(vocabFile, false).config.doLowerCase);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-cli-'));
  try {
    tok.save(dir);
    t.true(loadTokenizer(dir).config.doLowerCase);
    const cased = loadTokenizer(dir, false);
    t.false(cased.config.doLowerCase);
    t.is(cased.vocabSize, tok.vocabSize);
    t.throws(() => loadTokenizer(path.join(dir, 'missing')), { message: /missing does not exist/ });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('word cache: ids stay right after the cache fills up and is cleared', (t) => {
  const vocab = vocabOf('uncased');
  const tok = WordPieceTokenizer.fromVocab(vocab);
  const fresh = () => WordPieceTokenizer.fromVocab(vocab);
  // 280k distinct words (one normalized-cache entry each) > the 2^18-entry limit
  const words: string[] = [];
  for (let i = 0; i < 280000; i++) {
    const w = i.toString(36);
    words.push(i % 3 === 0 ? w.toUpperCase() : i % 3 === 1 ? w : 'ж' + w + 'Ё');
  }
  const chunk = 10000;
  let compared = 0;
  for (let i = 0, c = 0; i < words.length; i += chunk, c++) {
    const text = words.slice(i, i + chunk).join(' ');
    const ids = tok.encode(text);
    // every 4th chunk (the cache clears somewhere past the middle) against a tokenizer with an empty cache
    if (c % 4 === 3) {
      t.deepEqual(ids, fresh().encode(text), `chunk ${c}`);
      compared++;
    }
  }
  t.is(compared, 7);
  const ref = fresh();
  for (const i of [0, 1, 2, 3, 90000, 150000, 279999]) t.deepEqual(tok.encode(words[i]), ref.encode(words[i]), words[i]);
});

test('long inputs: a 2 MB line and a 100k-character word', (t) => {
  const tok = WordPieceTokenizer.fromVocabFile(path.join(fixDir, 'vocab-uncased.txt'));
  const line = corpus.slice(20, 120).join(' ');
  const big = Array(Math.ceil(2e6 / line.length)).fill(line).join(' ');
  const ids = tok.encode(big);
  const one = tok.encode(line).length;
  t.is(ids.length, one * Math.ceil(2e6 / line.length));
  const e = tok.encodeWithOffsets(big);
  t.is(e.offsets[e.offsets.length - 1], big.length);
  const huge = 'é'.repeat(100000);
  t.deepEqual(Array.from(tok.encode(`a ${huge} b`)), [...tok.encode('a'), tok.unkId, ...tok.encode('b')]);
  t.deepEqual(Array.from(tok.encodeWithOffsets(huge).offsets), [0, huge.length]);
});
