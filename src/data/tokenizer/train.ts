// WordPiece vocabulary training: the corpus's words counted with our BERT basic tokenizer (the documents'
// text, read as `prepare` reads it), then learned by learnWordPiece (wordpiece-trainer.ts: Hugging Face's
// WordPieceTrainer algorithm, any vocab size, deterministic), plus the BERT special tokens at fixed ids.
// limitAlphabet follows HF (the characters outside the alphabet are dropped from each word); minFrequency
// is applied to whole words before training (see TrainVocabOptions).
import fs from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { WordPieceTokenizer } from './wordpiece.js';
import { learnWordPiece } from './wordpiece-trainer.js';
import type { CountInit, CountJob, CountReply } from './count-worker.js';
import { SkipCounter, describeSkips } from '../document.js';
import { detectFormat, fileFilter, FORMATS, inputSize, isArchive, readDocuments, type Format } from '../readers/index.js';
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
  /** corpus inputs: worker threads that convert the documents' markup and count their words; 0 does it all
   * in the calling thread. Default: one per core, none below 16 MB of input. The vocab is the same. */
  workers?: number;
  /** progress / warnings (default: none) */
  log?: (msg: string) => void;
}

/**
 * Corpus inputs (files, directories or archives in any format `prepare` reads: plain text, JSONL,
 * MediaWiki dumps, PMC JATS, MEDLINE, HTML; detected per input unless `format` is given), whose
 * documents' text is trained on; or lines held in memory.
 */
export type TrainVocabInput = string[] | { lines: Iterable<string> | AsyncIterable<string> };

/** A plain-text input's files: the file itself, or the text files under a directory (the others are
 *  counted as non_document_file). */
async function plainTextFiles(file: string, skips: SkipCounter): Promise<string[]> {
  if (!fs.statSync(file).isDirectory()) return [file];
  const all = await listFiles(file);
  const files = all.filter(fileFilter('text'));
  skips.add('non_document_file', all.length - files.length);
  return files;
}

/** The per-input log line: format, documents (files for plain text), lines, what was skipped. */
function inputSummary(file: string, format: Format, docs: number, lines: number, skips: SkipCounter): string {
  // grouped by what each reason counts (documents, files, links, …), as prepare reports them
  const skipped = skips.total() ? `; skipped ${describeSkips(skips.toJSON())}` : '';
  return `${file}: ${format}, ${docs} ${format === 'text' ? 'file' : 'document'}${docs === 1 ? '' : 's'}, ${lines} lines${skipped}`;
}

async function* linesOf(input: TrainVocabInput, opts: TrainVocabOptions, log: (m: string) => void): AsyncGenerator<string> {
  if (Array.isArray(input)) {
    for (const file of input) {
      // (trainWordPieceVocab has checked that every input exists.) The documents' text, read by the same readers as `prepare` (markup stripped, archives unpacked,
      // UTF-16 decoded), so a vocab is never learned from a dump's XML or an archive's compressed bytes;
      // every document counts, however short (minChars 1), and what the readers skip is reported.
      const format = opts.format ?? (await detectFormat(file));
      const skips = new SkipCounter();
      let docs = 0, lines = 0;
      if (format === 'text' && !isArchive(file)) {
        // plain text streams line by line: a file of one sentence per line and no blank lines would
        // otherwise be one document held whole in memory
        const files = await plainTextFiles(file, skips);
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
      log(inputSummary(file, format, docs, lines, skips));
    }
  } else {
    for await (const line of input.lines as AsyncIterable<string>) {
      if (typeof line !== 'string') throw new Error(`training input: expected lines of text, got ${typeof line}`);
      yield line;
    }
  }
}

/** input bytes per default worker: below this much input, the words are counted in the calling thread */
const SMALL_INPUT_BYTES = 16 << 20;
const CORES = os.availableParallelism?.() ?? os.cpus().length;
/** a job: documents until this many characters or bytes of markup */
const JOB_BYTES = 1 << 20;

/**
 * What linesOf + counting do, with the documents' markup converted and their words counted in `n` worker
 * threads (count-worker.ts) while this thread reads: the same counts, lines and per-input log lines.
 */
async function countWithWorkers(files: string[], opts: TrainVocabOptions, log: (m: string) => void, n: number, init: CountInit): Promise<{ counts: Map<string, number>; lines: number }> {
  const pool = Array.from({ length: n }, () => new Worker(new URL('./count-worker.js', import.meta.url), { workerData: init }));
  const counts = new Map<string, number>();
  const load = new Array<number>(n).fill(0);
  const pending = new Map<number, (r: CountReply | undefined) => void>();
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const fail = (e: Error) => {
    failed ??= e;
    for (const resolve of pending.values()) resolve(undefined);
    pending.clear();
    wake?.();
  };
  pool.forEach((w, k) => {
    w.on('message', (m: CountReply) => {
      const resolve = pending.get(m.id);
      if (!resolve) return;
      pending.delete(m.id);
      load[k]!--;
      if (m.error) fail(new Error(m.error));
      else for (let i = 0; i < m.words.length; i++) counts.set(m.words[i]!, (counts.get(m.words[i]!) ?? 0) + m.counts[i]!);
      resolve(m);
      wake?.();
    });
    w.on('error', (e) => fail(e));
    w.on('exit', (code) => {
      if (code !== 0) fail(new Error(`vocab count worker exited with code ${code}`));
    });
  });
  let nextId = 0;
  // waits for a free slot (two jobs per worker: one running, one queued), then sends the job
  const send = (k: number, docs: CountJob['docs'], flush = false): Promise<CountReply | undefined> => {
    load[k]!++;
    const id = nextId++;
    const reply = new Promise<CountReply | undefined>((resolve) => pending.set(id, resolve));
    pool[k]!.postMessage({ id, docs, flush } satisfies CountJob);
    return reply;
  };
  const submit = async (docs: CountJob['docs']): Promise<{ reply: Promise<CountReply | undefined> }> => {
    while (!failed && Math.min(...load) >= 2) await new Promise<void>((r) => (wake = r));
    if (failed) throw failed;
    return { reply: send(load.indexOf(Math.min(...load)), docs) };
  };
  try {
    let lines = 0;
    for (const file of files) {
      const format = opts.format ?? (await detectFormat(file));
      const plain = format === 'text' && !isArchive(file);
      const skips = new SkipCounter();
      let docs = 0;
      const replies: Promise<CountReply | undefined>[] = [];
      let batch: CountJob['docs'] = [], size = 0;
      const flush = async () => {
        if (batch.length) replies.push((await submit(batch)).reply);
        batch = [];
        size = 0;
      };
      if (plain) {
        // plain text: lines read here and sent in blocks (counted as lines, never as documents)
        const files = await plainTextFiles(file, skips);
        for (const f of files) {
          docs++;
          let block: string[] = [];
          for await (const [line] of splitLines(await openText(f, skips))) {
            block.push(line);
            size += line.length + 1;
            if (size >= JOB_BYTES) {
              batch.push({ text: block.join('\n') });
              block = [];
              await flush();
            }
          }
          if (block.length) batch.push({ text: block.join('\n') });
          await flush();
        }
      } else {
        for await (const d of readDocuments(file, { format, skips, skipBad: opts.skipBad, minChars: 1, deferMarkup: true })) {
          batch.push(d.deferred ? { text: d.text, deferred: d.deferred, id: d.id, title: d.title, aliases: d.aliases } : { text: d.text });
          size += d.text.length + (d.deferred && 'bytes' in d.deferred ? d.deferred.bytes.length : 0);
          if (size >= JOB_BYTES) await flush();
        }
        await flush();
      }
      let fileLines = 0;
      for (const r of await Promise.all(replies)) {
        if (!r) continue;
        if (!plain) docs += r.docs;
        fileLines += r.lines;
        for (const [k, v] of r.skips) skips.add(k, v);
      }
      if (failed) throw failed;
      lines += fileLines;
      log(inputSummary(file, format, docs, fileLines, skips));
    }
    // the counts the workers still hold
    await Promise.all(pool.map((_, k) => send(k, [], true)));
    if (failed) throw failed;
    return { counts, lines };
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

export async function trainWordPieceVocab(inputFiles: TrainVocabInput, opts: TrainVocabOptions): Promise<string[]> {
  const { vocabSize, doLowerCase } = opts;
  const minFrequency = opts.minFrequency ?? 1;
  const log = opts.log ?? (() => {});
  if (!Number.isInteger(vocabSize) || vocabSize <= SPECIAL_TOKENS.length)
    throw new Error(`--size (vocab size) must be an integer > ${SPECIAL_TOKENS.length} (the special tokens), got ${vocabSize}`);
  if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new Error(`--min-frequency must be a positive integer, got ${minFrequency}`);
  if (opts.limitAlphabet !== undefined && (!Number.isInteger(opts.limitAlphabet) || opts.limitAlphabet < 1))
    throw new Error(`--limit-alphabet must be a positive integer, got ${opts.limitAlphabet}`);
  if (Array.isArray(inputFiles) && inputFiles.length === 0) throw new Error('no training input files given');
  if (opts.format !== undefined && !FORMATS.includes(opts.format)) throw new Error(`--format must be one of ${FORMATS.join(', ')}, got '${opts.format}'`);

  // Our basic tokenizer is id-for-id HF's BertNormalizer + BertPreTokenizer (tested), so the words counted
  // here are the words HF's trainer would count.
  const basic = WordPieceTokenizer.fromVocab([...SPECIAL_TOKENS], {
    doLowerCase,
    stripAccents: opts.stripAccents ?? null,
    tokenizeChineseChars: opts.tokenizeChineseChars ?? true,
  });
  let counts = new Map<string, number>();
  let nLines = 0;
  let workers = 0;
  if (Array.isArray(inputFiles)) {
    if (opts.workers !== undefined && !(Number.isInteger(opts.workers) && opts.workers >= 0))
      throw new Error(`--workers must be a non-negative integer, got ${opts.workers}`);
    for (const f of inputFiles) if (!fs.existsSync(f)) throw new Error(`--input: training input ${f} does not exist`);
    let total = 0;
    for (const f of inputFiles) total += await inputSize(f);
    workers = opts.workers ?? Math.min(CORES, Math.floor(total / SMALL_INPUT_BYTES));
  }
  if (workers > 0) {
    const init: CountInit = { doLowerCase, stripAccents: opts.stripAccents ?? null, tokenizeChineseChars: opts.tokenizeChineseChars ?? true, specials: [...SPECIAL_TOKENS] };
    ({ counts, lines: nLines } = await countWithWorkers(inputFiles as string[], opts, log, workers, init));
  } else {
    for await (const line of linesOf(inputFiles, opts, log)) {
      nLines++;
      for (const w of basic.basicTokenize(line)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
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
      log(`--limit-alphabet ${opts.limitAlphabet}: dropped ${charCounts.size - keep.size} rare characters`);
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
