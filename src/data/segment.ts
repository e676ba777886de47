// Document → sentences → token segments. Sentences are packed greedily into segments of at most
// `target` tokens (about half of max_seq_len − 3), so that a pair [CLS] A [SEP] B [SEP] fills a sequence.
import fs from 'node:fs';
import { WordPieceTokenizer, concatIds } from './tokenizer/index.js';
import type { DeferredMarkup } from './document.js';

// Tokens before a '.' that do not end a sentence.
const ABBREV = new Set(
  (
    'mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al fig figs eq eqs no nos vol vols pp p ca approx dept ' +
    'inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov dec gen col lt sgt capt rev hon est op ed eds ' +
    'u.s u.k ph.d b.c a.d a.m p.m'
  ).split(' '),
);

/**
 * Split plain text into sentences. Paragraphs (lines) never share a sentence. Inside a line, a sentence
 * ends at '.', '!' or '?' (optionally followed by closing quotes/brackets) when whitespace and then an
 * upper-case letter, digit or opening quote/bracket follow — except after a known abbreviation or a single
 * capital initial ("J. Smith"). Empty lines are dropped.
 */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const rawLine of text.split(/\r?\n|\r|\u2029/)) {
    const line = rawLine.trim();
    if (line.length === 0) continue;
    const re = /[.!?…]+["'”’)\]]*\s+(?=["'“‘(\[]?[\p{Lu}\p{Lt}\p{Lo}\d])/gu;
    let start = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(line)) !== null) {
      const end = m.index + m[0].length;
      if (m[0][0] === '.' && m[0].trimEnd().length === 1) {
        // look at the word before the dot
        const before = line.slice(Math.max(start, m.index - 32), m.index); // abbreviations are short
        const w = /([\p{L}.]+)$/u.exec(before);
        if (w) {
          const word = w[1].toLowerCase();
          if (ABBREV.has(word) || (w[1].length === 1 && /\p{Lu}/u.test(w[1]))) continue;
        }
      }
      const s = line.slice(start, end).trim();
      if (s) out.push(s);
      start = end;
    }
    const rest = line.slice(start).trim();
    if (rest) out.push(rest);
  }
  return out;
}

/**
 * Pack tokenised sentences into segments of at most `target` tokens, keeping sentence order. A sentence
 * longer than `target` is cut into pieces of at most `target` tokens, preferably before a word start
 * (`wordStart`). Returns the concatenated tokens and the segment
 * boundaries: segment k is tokens[bounds[k], bounds[k+1]).
 */
export function packSegments(sentences: Int32Array[], target: number, wordStart?: (id: number) => boolean): { tokens: Int32Array; bounds: Int32Array } {
  const { ids, start } = concatIds(sentences);
  return packSegmentRange(ids, start, 0, sentences.length, target, wordStart);
}

/** packSegments over sentences `from` to `to` of a batch: sentence k is ids[start[k], start[k + 1]). */
export function packSegmentRange(
  ids: Int32Array,
  start: Int32Array,
  from: number,
  to: number,
  target: number,
  wordStart?: (id: number) => boolean,
): { tokens: Int32Array; bounds: Int32Array } {
  if (!(target >= 1)) throw new RangeError(`segment target must be >= 1, got ${target}`);
  const base = start[from];
  // the sentences are already back to back: segments only cut them, so the tokens are one copy
  const tokens = ids.slice(base, start[to]);
  const bounds: number[] = [0];
  let cur = 0; // tokens in the open segment
  for (let k = from; k < to; k++) {
    const pos = start[k] - base;
    const len = start[k + 1] - start[k];
    if (len === 0) continue;
    if (cur > 0 && cur + len > target) {
      bounds.push(pos);
      cur = 0;
    }
    if (len <= target) {
      cur += len;
      continue;
    }
    // over-long sentence: pieces of at most `target`, cut before a word start when one lies in the
    // second half of the piece (so words are not split across segments); the remainder stays open
    let off = 0;
    while (off < len) {
      let end = Math.min(len, off + target);
      if (end < len && wordStart) {
        let j = end;
        while (j > off + (target >> 1) && !wordStart(tokens[pos + j])) j--;
        if (j > off + (target >> 1)) end = j;
      }
      if (end < len) {
        bounds.push(pos + end);
        cur = 0;
      } else cur = end - off;
      off = end;
    }
  }
  if (cur > 0) bounds.push(start[to] - base);
  return { tokens, bounds: Int32Array.from(bounds) };
}

/**
 * BERT's truncate_seq_pair: while the pair is longer than `maxTokens`, drop one token from the longer
 * side, from its front or back at random. Returns [startA, endA, startB, endB] offsets into a and b.
 */
export function truncatePair(lenA: number, lenB: number, maxTokens: number, coin: () => number): [number, number, number, number] {
  let sa = 0, ea = lenA, sb = 0, eb = lenB;
  while (ea - sa + (eb - sb) > maxTokens) {
    if (ea - sa >= eb - sb) {
      if (coin() < 0.5) sa++;
      else ea--;
    } else if (coin() < 0.5) sb++;
    else eb--;
  }
  return [sa, ea, sb, eb];
}

/** Anything that turns text into token ids without special tokens. */
export interface Encoder {
  encode(text: string): Int32Array;
  isWordStart(id: number): boolean;
  /** many texts at once, back to back (text t is ids[start[t], start[t + 1])); used when present */
  encodeBatch?(texts: string[], opts?: { threads?: number }): { ids: Int32Array; start: Int32Array };
  /** encodeBatch off the JS thread; used by SegmentPipeline when present */
  encodeBatchAsync?(texts: string[], opts?: { threads?: number }): Promise<{ ids: Int32Array; start: Int32Array }>;
}

/** Split a document into sentences, tokenise each and pack them into segments of at most `target` tokens. */
export function segmentText(enc: Encoder, text: string, target: number): { tokens: Int32Array; bounds: Int32Array; sentences: number } {
  return segmentTexts(enc, [text], target)[0];
}

/** Documents split into sentences, all sentences in one list: document d has sentences first[d] .. first[d + 1]. */
interface SplitTexts {
  sents: string[];
  first: Int32Array;
}

function splitTexts(texts: string[]): SplitTexts {
  const sents: string[] = [];
  const first = new Int32Array(texts.length + 1);
  texts.forEach((t, d) => {
    for (const x of splitSentences(t)) sents.push(x);
    first[d + 1] = sents.length;
  });
  return { sents, first };
}

function encodeAll(enc: Encoder, sents: string[], threads: number): { ids: Int32Array; start: Int32Array } {
  return enc.encodeBatch ? enc.encodeBatch(sents, { threads }) : concatIds(sents.map((x) => enc.encode(x)));
}

function packTexts(enc: Encoder, sp: SplitTexts, e: { ids: Int32Array; start: Int32Array }, target: number): { tokens: Int32Array; bounds: Int32Array; sentences: number }[] {
  const wordStart = (id: number) => enc.isWordStart(id);
  const out = [];
  for (let d = 0; d + 1 < sp.first.length; d++)
    out.push({ ...packSegmentRange(e.ids, e.start, sp.first[d], sp.first[d + 1], target, wordStart), sentences: sp.first[d + 1] - sp.first[d] });
  return out;
}

/** segmentText for many documents, with one tokenizer call for all their sentences (on `threads`
 * threads where the tokenizer runs natively). */
export function segmentTexts(enc: Encoder, texts: string[], target: number, threads = 1): { tokens: Int32Array; bounds: Int32Array; sentences: number }[] {
  const sp = splitTexts(texts);
  return packTexts(enc, sp, encodeAll(enc, sp.sents, threads), target);
}

/** A document for the tokenizer: plain text, or work its reader deferred (Document.deferred). */
export interface TextJob {
  text: string;
  deferred?: DeferredMarkup;
  /** for deferred 'wikitext': the document's id, title and aliases, passed through */
  id?: string;
  title?: string;
  aliases?: string[];
}

export interface SegmentedText {
  tokens: Int32Array;
  bounds: Int32Array;
  sentences: number;
  /** for a deferred job: the document the conversion produced (undefined: dropped, see `skips`) */
  doc?: { id: string; title?: string; links: string[]; aliases?: string[] };
  /** set for deferred jobs */
  deferred?: true;
  /** skip counts from a deferred conversion */
  skips?: [string, number][];
  /** MediaWiki redirects found by a deferred conversion */
  redirects?: [string, string][];
}

// the markup readers, loaded on first use: a worker that only sees plain text never loads them
let deferredReaders: Promise<typeof import('./readers/deferred.js')> | undefined;

/** Jobs after their deferred conversions and sentence splitting, ready for the tokenizer. */
interface SplitJobs {
  out: SegmentedText[];
  /** job of each text */
  at: number[];
  sp: SplitTexts;
}

async function splitJobs(jobs: TextJob[]): Promise<SplitJobs> {
  const out: SegmentedText[] = new Array(jobs.length);
  const texts: string[] = [];
  const at: number[] = [];
  for (let k = 0; k < jobs.length; k++) {
    const job = jobs[k];
    if (!job.deferred) {
      texts.push(job.text);
      at.push(k);
      continue;
    }
    const { convertDeferred } = await (deferredReaders ??= import('./readers/deferred.js'));
    const c = await convertDeferred({ id: job.id ?? '', title: job.title, text: job.text, aliases: job.aliases }, job.deferred);
    const extra = { deferred: true as const, skips: c.skips, redirects: c.redirects };
    if (!c.doc) {
      out[k] = { tokens: new Int32Array(0), bounds: new Int32Array(1), sentences: 0, ...extra };
      continue;
    }
    const { text, ...doc } = c.doc;
    out[k] = { tokens: new Int32Array(0), bounds: new Int32Array(1), sentences: 0, doc, ...extra };
    texts.push(text);
    at.push(k);
  }
  return { out, at, sp: splitTexts(texts) };
}

function packJobs(enc: Encoder, j: SplitJobs, e: { ids: Int32Array; start: Int32Array }, target: number): SegmentedText[] {
  const segs = packTexts(enc, j.sp, e, target);
  segs.forEach((sg, i) => (j.out[j.at[i]] = j.out[j.at[i]] ? { ...j.out[j.at[i]], ...sg } : sg));
  return j.out;
}

/** Segment TextJobs: deferred conversions first (where a job has one), then one tokenizer call for all the text. */
export async function segmentJobs(enc: Encoder, jobs: TextJob[], target: number, threads = 1): Promise<SegmentedText[]> {
  const j = await splitJobs(jobs);
  return packJobs(enc, j, encodeAll(enc, j.sp.sents, threads), target);
}

/**
 * segmentJobs for a stream of batches, pipelined: while the tokenizer encodes one batch off the JS
 * thread (Encoder.encodeBatchAsync), the next batch is converted and split. push() hands back the
 * previous batch's results (in order); finish() the last one's.
 */
export class SegmentPipeline {
  private inflight: { j: SplitJobs; e: Promise<{ ids: Int32Array; start: Int32Array }> } | null = null;

  constructor(private enc: Encoder, private target: number, private threads: number) {}

  async push(jobs: TextJob[]): Promise<SegmentedText[]> {
    const j = await splitJobs(jobs);
    const done = await this.settle();
    const enc = this.enc;
    const e = enc.encodeBatchAsync ? enc.encodeBatchAsync(j.sp.sents, { threads: this.threads }) : Promise.resolve(encodeAll(enc, j.sp.sents, this.threads));
    e.catch(() => {}); // a failure surfaces at the next push() or finish(), not as an unhandled rejection
    this.inflight = { j, e };
    return done;
  }

  finish(): Promise<SegmentedText[]> {
    return this.settle();
  }

  private async settle(): Promise<SegmentedText[]> {
    if (!this.inflight) return [];
    const { j, e } = this.inflight;
    this.inflight = null;
    return packJobs(this.enc, j, await e, this.target);
  }
}

/** How to load the WordPiece tokenizer: a vocab.txt file or a saved tokenizer directory, plus overrides. */
export interface TokenizerSpec {
  vocab: string;
  lowercase?: boolean;
}

/** Load the tokenizer described by `spec` (the same way in the main thread and in workers). */
export function loadTokenizer(spec: TokenizerSpec): WordPieceTokenizer {
  let isDir: boolean;
  try {
    isDir = fs.statSync(spec.vocab).isDirectory();
  } catch {
    throw new Error(`--vocab ${spec.vocab}: no such file or directory`);
  }
  const overrides = spec.lowercase === undefined ? undefined : { doLowerCase: spec.lowercase };
  if (isDir) {
    const t = WordPieceTokenizer.fromDir(spec.vocab);
    if (overrides && t.config.doLowerCase !== spec.lowercase)
      throw new Error(`--vocab ${spec.vocab}: the saved tokenizer has do_lower_case=${t.config.doLowerCase}; pass a vocab.txt file to override it`);
    return t;
  }
  return WordPieceTokenizer.fromVocabFile(spec.vocab, overrides);
}
