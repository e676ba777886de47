// WordPiece vocabulary training: the corpus's words counted with our BERT basic tokenizer (the documents'
// text, read as `prepare` reads it), then learned by learnWordPiece (wordpiece-trainer.ts: Hugging Face's
// WordPieceTrainer algorithm, any vocab size, deterministic), plus the BERT special tokens at fixed ids.
// limitAlphabet follows HF (the characters outside the alphabet are dropped from each word); minFrequency
// is applied to whole words before training (see TrainVocabOptions).
import fs from 'node:fs';
import { WordPieceTokenizer } from './wordpiece.js';
import { learnWordPiece } from './wordpiece-trainer.js';
import { SkipCounter } from '../document.js';
import { detectFormat, fileFilter, FORMATS, isArchive, readDocuments, type Format } from '../readers/index.js';
import { listFiles, openText, splitLines } from '../readers/io.js';

export const SPECIAL_TOKENS: readonly string[] = Object.freeze(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);

export interface TrainVocabOptions {
  /** total size including the 5 special tokens */
  vocabSize: number;
  doLowerCase: boolean;
  /** default: follows doLowerCase */
  stripAccents?: boolean | null;
  tokenizeChineseChars?: boolean;
  /** words seen fewer times than this are left out of training (a word-level filter, not HF's
   * pair-level min_frequency). Default 1. */
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
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new Error(`minFrequency must be a positive integer, got ${minFrequency}`);
  if (opts.limitAlphabet !== undefined && (!Number.isInteger(opts.limitAlphabet) || opts.limitAlphabet < 1))
    throw new Error(`limitAlphabet must be a positive integer, got ${opts.limitAlphabet}`);
  if (Array.isArray(inputFiles) && inputFiles.length === 0) throw new Error('no training input files given');
  if (opts.format !== undefined && !FORMATS.includes(opts.format)) throw new Error(`format must be one of ${FORMATS.join(', ')}, got '${opts.format}'`);

  // Our basic tokenizer is id-for-id HF's BertNormalizer + BertPreTokenizer (tested), so the words counted
  // here are the words HF's trainer would count.
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

  const learned = learnWordPiece(counts, vocabSize - SPECIAL_TOKENS.length);
  const out = [...SPECIAL_TOKENS];
  const seen = new Set<string>(SPECIAL_TOKENS);
  for (const tok of learned.tokens) {
    if (out.length >= vocabSize) break;
    if (seen.has(tok)) continue;
    seen.add(tok);
    out.push(tok);
  }
  if (out.length < vocabSize) log(`the corpus only supports ${out.length} tokens (asked for ${vocabSize})`);
  if (vocabSize - SPECIAL_TOKENS.length < learned.alphabet)
    log(`vocab size ${vocabSize} cuts into the ${learned.alphabet}-character alphabet: some characters will become [UNK]`);
  log(`trained on ${nLines} lines, ${counts.size} word types, ${learned.merges} merges; vocab ${out.length}`);
  return out;
}
