// WordPiece vocabulary training with Hugging Face's `tokenizers` binding (its WordPieceTrainer, which is a
// BPE trainer with the '##' continuation prefix), plus the BERT special tokens at fixed ids.
//
// The Node binding only exposes the model's default trainer (vocab_size 30000, min_frequency 0, no
// alphabet limit, no special tokens). Because BPE adds merges in a fixed order and simply stops at
// vocab_size, the first N learned tokens are exactly what a trainer with vocab_size N would produce, so we
// truncate. limitAlphabet is emulated exactly (HF drops the characters outside the alphabet from each
// word); minFrequency is applied to whole words before training (see TrainVocabOptions).
// The HF trainer numbers the '##x' alphabet and breaks ties between equally frequent merges in hash-map
// order, so two runs on the same text can order (rarely: choose) tokens differently.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { WordPieceTokenizer } from './wordpiece.js';
import { SkipCounter } from '../document.js';
import { detectFormat, fileFilter, FORMATS, isArchive, readDocuments, type Format } from '../readers/index.js';
import { listFiles, openText, splitLines } from '../readers/io.js';

export const SPECIAL_TOKENS: readonly string[] = Object.freeze(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
/** The binding's default trainer learns at most 30000 tokens. */
export const MAX_TRAIN_VOCAB = 30000 + SPECIAL_TOKENS.length;

export interface TrainVocabOptions {
  /** total size including the 5 special tokens */
  vocabSize: number;
  doLowerCase: boolean;
  /** default: follows doLowerCase */
  stripAccents?: boolean | null;
  tokenizeChineseChars?: boolean;
  /** words seen fewer times than this are left out of training (a word-level filter: the binding's
   * trainer has min_frequency fixed at 0, so HF's pair-level threshold is not available). Default 1. */
  minFrequency?: number;
  /** keep only the N most frequent characters in the initial alphabet (HF semantics: other characters
   * are dropped from the words they occur in). */
  limitAlphabet?: number;
  /** corpus inputs: the reader format for all of them (default: detected per input, as `prepare` does) */
  format?: Format;
  /** corpus inputs: skip (and count) malformed records instead of failing */
  skipBad?: boolean;
  /** progress / warnings (default: none) */
  log?: (msg: string) => void;
}

/**
 * Corpus inputs (files, directories or archives in any format `prepare` reads: plain text, JSONL,
 * MediaWiki dumps, PMC JATS, MEDLINE, HTML; detected per input unless `format` is given), whose
 * documents' text is trained on; or lines held in memory.
 */
export type TrainVocabInput = string[] | { lines: Iterable<string> | AsyncIterable<string> };

// The binding's trainer writes progress newlines to stdout (even without a TTY), which would corrupt
// `--json` output and piped data, so it runs in a child process with stdout discarded.
const TRAIN_CHILD = `
const tk = require(process.argv[1]);
const t = new tk.Tokenizer(tk.WordPiece.empty());
t.setPreTokenizer(tk.bertPreTokenizer()); // words are already normalized; this only splits on spaces
t.train([process.argv[2]]);
const v = Object.entries(t.getVocab(false)).sort((a, b) => a[1] - b[1]).map((e) => e[0]);
require('fs').writeFileSync(process.argv[3], JSON.stringify(v));
`;

function resolveBinding(): string {
  const require = createRequire(import.meta.url);
  try {
    return require.resolve('tokenizers');
  } catch (e) {
    throw new Error(`vocab training needs the 'tokenizers' npm package: ${(e as Error).message}`);
  }
}

/** Trains on a file of space-separated, already-normalized words; returns the learned tokens by id. */
function runBindingTrainer(wordsFile: string, outFile: string): Promise<string[]> {
  const binding = resolveBinding();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', TRAIN_CHILD, binding, wordsFile, outFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) {
        reject(new Error(`tokenizers trainer failed (${signal ?? 'exit ' + code}): ${err.replace(/\s+/g, ' ').trim().slice(-1000)}`));
        return;
      }
      try {
        resolve(JSON.parse(fs.readFileSync(outFile, 'utf8')) as string[]);
      } catch (e) {
        reject(new Error(`tokenizers trainer wrote no readable vocab to ${outFile}: ${(e as Error).message}`));
      }
    });
  });
}

async function* linesOf(input: TrainVocabInput, opts: TrainVocabOptions, log: (m: string) => void): AsyncGenerator<string> {
  if (Array.isArray(input)) {
    for (const file of input) {
      if (!fs.existsSync(file)) throw new Error(`training input ${file} does not exist`);
      // The documents' text, read by the same readers as `prepare` (markup stripped, archives unpacked,
      // UTF-16 decoded), so a vocab is never learned from a dump's XML or an archive's compressed bytes;
      // every document counts, however short (minChars 1), and what the readers skip is reported.
      const format = opts.format ?? (await detectFormat(file));
      const skips = new SkipCounter();
      let docs = 0, lines = 0;
      if (format === 'text' && !isArchive(file)) {
        // plain text streams line by line: a file of one sentence per line and no blank lines would
        // otherwise be one document held whole in memory
        let files = [file];
        if (fs.statSync(file).isDirectory()) {
          const all = await listFiles(file);
          files = all.filter(fileFilter('text'));
          skips.add('non_document_file', all.length - files.length);
        }
        for (const f of files) {
          docs++;
          for await (const [line] of splitLines(await openText(f, skips))) {
            lines++;
            yield line;
          }
        }
      } else {
        for await (const d of readDocuments(file, { format, skips, skipBad: opts.skipBad, minChars: 1 })) {
          docs++;
          for (const line of d.text.split('\n')) {
            lines++;
            yield line;
          }
        }
      }
      const skipped = skips.total() ? `; skipped ${Object.entries(skips.toJSON()).map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
      log(`${file}: ${format}, ${docs} ${format === 'text' ? 'file' : 'document'}${docs === 1 ? '' : 's'}, ${lines} lines${skipped}`);
    }
  } else {
    for await (const line of input.lines as AsyncIterable<string>) {
      if (typeof line !== 'string') throw new Error(`training input: expected lines of text, got ${typeof line}`);
      yield line;
    }
  }
}

export async function trainWordPieceVocab(inputFiles: TrainVocabInput, opts: TrainVocabOptions): Promise<string[]> {
  const { vocabSize, doLowerCase } = opts;
  const minFrequency = opts.minFrequency ?? 1;
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(vocabSize) || vocabSize <= SPECIAL_TOKENS.length)
    throw new Error(`vocab size must be an integer > ${SPECIAL_TOKENS.length}, got ${vocabSize}`);
  if (vocabSize > MAX_TRAIN_VOCAB)
    throw new Error(`vocab size ${vocabSize} is larger than the tokenizers binding's trainer can learn (at most ${MAX_TRAIN_VOCAB} including the ${SPECIAL_TOKENS.length} special tokens)`);
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new Error(`minFrequency must be a positive integer, got ${minFrequency}`);
  if (opts.limitAlphabet !== undefined && (!Number.isInteger(opts.limitAlphabet) || opts.limitAlphabet < 1))
    throw new Error(`limitAlphabet must be a positive integer, got ${opts.limitAlphabet}`);
  if (Array.isArray(inputFiles) && inputFiles.length === 0) throw new Error('no training input files given');
  if (opts.format !== undefined && !FORMATS.includes(opts.format)) throw new Error(`format must be one of ${FORMATS.join(', ')}, got '${opts.format}'`);
  resolveBinding(); // fail before reading the corpus if the package is missing

  // Our basic tokenizer is id-for-id the binding's BertNormalizer + BertPreTokenizer (tested), so we count
  // words once here and hand the binding pre-normalized words.
  const basic = WordPieceTokenizer.fromVocab([...SPECIAL_TOKENS], {
    doLowerCase,
    stripAccents: opts.stripAccents ?? null,
    tokenizeChineseChars: opts.tokenizeChineseChars ?? true,
  });
  const counts = new Map<string, number>();
  let nLines = 0;
  for await (const line of linesOf(inputFiles, opts, log)) {
    nLines++;
    for (const w of basic.basicTokenize(line)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  for (const s of SPECIAL_TOKENS) counts.delete(s); // they get their own ids below
  if (counts.size === 0) throw new Error(`training input has no words (${nLines} lines read)`);

  let dropped = 0;
  if (minFrequency > 1) {
    for (const [w, c] of counts) if (c < minFrequency) {
      counts.delete(w);
      dropped++;
    }
    log(`minFrequency ${minFrequency}: left out ${dropped} rare word types, ${counts.size} remain`);
    if (counts.size === 0) throw new Error(`no word occurs at least ${minFrequency} times`);
  }

  if (opts.limitAlphabet !== undefined) {
    const charCounts = new Map<string, number>();
    for (const [w, c] of counts) for (const ch of w) charCounts.set(ch, (charCounts.get(ch) ?? 0) + c);
    if (charCounts.size > opts.limitAlphabet) {
      const keep = new Set([...charCounts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, opts.limitAlphabet).map((e) => e[0]));
      const filtered = new Map<string, number>();
      for (const [w, c] of counts) {
        let nw = '';
        for (const ch of w) if (keep.has(ch)) nw += ch;
        if (nw.length > 0) filtered.set(nw, (filtered.get(nw) ?? 0) + c);
      }
      log(`limitAlphabet ${opts.limitAlphabet}: dropped ${charCounts.size - keep.size} rare characters`);
      counts.clear();
      for (const [w, c] of filtered) counts.set(w, c);
    }
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-vocab-'));
  const tmp = path.join(dir, 'words.txt');
  try {
    // one line per 256 words; a word appears as often as it was counted
    const fd = fs.openSync(tmp, 'w');
    try {
      let buf: string[] = [];
      const flush = () => {
        if (buf.length) fs.writeSync(fd, buf.join(' ') + '\n');
        buf = [];
      };
      for (const [w, c] of counts) {
        for (let k = 0; k < c; k++) {
          buf.push(w);
          if (buf.length === 256) flush();
        }
      }
      flush();
    } finally {
      fs.closeSync(fd);
    }
    const learned = await runBindingTrainer(tmp, path.join(dir, 'learned.json'));
    const special = new Set(SPECIAL_TOKENS);
    const out = [...SPECIAL_TOKENS];
    const seen = new Set<string>(SPECIAL_TOKENS);
    for (const tok of learned) {
      if (out.length >= vocabSize) break;
      if (special.has(tok) || seen.has(tok)) continue;
      seen.add(tok);
      out.push(tok);
    }
    if (out.length < vocabSize) log(`the corpus only supports ${out.length} tokens (asked for ${vocabSize})`);
    const alphabet = learned.filter((t) => [...t].length === 1).length;
    if (vocabSize - SPECIAL_TOKENS.length < alphabet)
      log(`vocab size ${vocabSize} cuts into the ${alphabet}-character alphabet: some characters will become [UNK]`);
    log(`trained on ${nLines} lines, ${counts.size} word types; vocab ${out.length}`);
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
