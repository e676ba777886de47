// `prepare`: corpus files → documents → link graph → segments → LinkBERT instances → protobuf shards.
//
// Stages:
//  1. Read every input with the corpus readers (main thread). Each document's text is sent to a pool of
//     worker threads that split, tokenise and pack it into segments, while reading goes on.
//  2. Build the link graph over all documents (DocGraph: ids, aliases, titles, redirects) and write
//     OUT/graph/{nodes,edges}.tsv.
//  3. Split train/valid by document, then build instances in a fixed order (instances.ts) and write them
//     to OUT/{train,valid}/shard-NNNNN.pb (+ .idx).
//  4. Save the tokenizer to OUT/tokenizer/ and write OUT/manifest.json, last.
// OUT is a hidden work folder inside --out, moved into place only when all of this succeeded (out-dir.ts).
// An input that gives no documents, or a corpus that gives no train instances, is an error.
// Output bytes depend only on the inputs and options, never on the number of workers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { SkipCounter, describeSkips, type Document } from './document.js';
import { detectFormat, inputSize, readDocuments, type Format } from './readers/index.js';
import { DocGraph } from './graph.js';
import { loadTokenizer, SegmentPipeline, type TokenizerSpec, type TextJob, type SegmentedText } from './segment.js';
import { TokenFileWriter, GrowableI32, GrowableF64, loadTokenFile, type TokenFileReader } from './token-store.js';
import type { WordPieceTokenizer } from './tokenizer/index.js';
import type { TokenizeInit, TokenizeJob, TokenizeResult, BuildInit, BuildJob, BuildResult } from './prepare-worker.js';
import {
  InstanceBuilder,
  splitDocuments,
  unlinkedProbs,
  numSegments,
  docsFromShared,
  tokenReader,
  sharedI32,
  sharedF64,
  type SharedDocs,
  type AnchorPlan,
} from './instances.js';
import { Masker, defaultMaxPredictions, packBitmap, type MaskSpec } from './masking.js';
import { tokenWidthFor, DRP_LABELS, SCHEMA_VERSION } from './shards/format.js';
import { ShardWriter } from './shards/writer.js';
import { ShuffledShardWriter } from './shards/shuffle-writer.js';
import { checkOutDir, WorkDir } from './out-dir.js';
import { writeManifest, type Manifest, type SplitInfo, type LabelCounts, type InputInfo } from './shards/manifest.js';

export type { Manifest } from './shards/manifest.js';

export interface PrepareOptions {
  /** corpus files or directories; several are mixed (see `mix`) */
  inputs: string[];
  /** reader format for every input (default: detected per input) */
  format?: Format;
  /** vocab.txt, or a saved tokenizer directory */
  vocab: string;
  out: string;
  maxSeqLen?: number;
  /**
   * worker threads that parse, tokenise and build instances; 0 does it all in the calling thread. Default:
   * one per core (the main thread only splits input and writes shards, so it needs no core of its own),
   * and none below 16 MiB of input.
   */
  workers?: number;
  seed?: number;
  /** [contiguous, random, linked], normalised; default 1/3 each. Unlinked inputs use the first two renormalised. */
  labelProbs?: [number, number, number];
  dupeFactor?: number;
  /**
   * Relative share of instances per input (same length as `inputs`). Without it every anchor is used
   * once per dupe round; with it each input's anchors are down- or up-sampled (fractional copies drawn per
   * anchor) so input i contributes mix[i]/sum(mix) of the instances, keeping the total about the same.
   */
  mix?: number[];
  mask?: 'static' | 'dynamic';
  wholeWordMask?: boolean;
  maskProb?: number;
  maxPredictions?: number;
  validFraction?: number;
  /** minimum number of validation documents when validFraction > 0 (default 2) */
  validMinDocs?: number;
  skipBad?: boolean;
  /**
   * Shuffle each split's instances globally before they go to shards (default true), as BERT's data
   * preparation does; false keeps them in document order (dupe round, document, segment).
   */
  shuffle?: boolean;
  /** bucket size of the global shuffle in bytes (default 256 MiB; for tests) */
  shuffleBucketBytes?: number;
  /** shard size target in MiB (default 64) */
  shardSizeMb?: number;
  /** exact shard size target in bytes (overrides shardSizeMb; for tests) */
  shardBytes?: number;
  /** override the tokenizer's lower-casing */
  lowercase?: boolean;
  /** drop documents with fewer characters (passed to the readers) */
  minChars?: number;
  /**
   * Memory budget for the corpus's tokens while instances are built (MiB, default 2048). Tokens always
   * go to a temporary file first; when it fits the budget it is loaded into shared memory, else every
   * segment is read from the file (page cache) by offset. Output is the same either way.
   */
  tokenMemoryMb?: number;
}

export interface PrepareProgress {
  bytes: number;
  totalBytes: number;
  docs: number;
  instances: number;
}

/** Wall seconds of each stage of a prepare run (`prepare --json` prints them as `stage_seconds`). */
export interface PrepareTimings {
  /** options, tokenizer and input detection */
  setup: number;
  /** stage 1: read, convert markup, split sentences, tokenise, pack segments (workers: their start-up too) */
  tokenize: number;
  /** stage 2: document graph, graph files, shared document tables */
  graph: number;
  /** stage 3: split, label planning, instance building and masking, encoding (and shard writing with --no-shuffle) */
  instances: number;
  /** stage 3b: the global shuffle: buckets loaded, shuffled and written as shards */
  shuffle: number;
  /** stage 4: tokenizer copy and manifest */
  finish: number;
}

/** prepare's temporary token store (token-store.ts), in the work folder; removed before it is moved into --out */
const TOKEN_FILE = '.tokens.tmp';

/** input bytes per default worker: below this much input, prepare runs in the main thread */
const SMALL_INPUT_BYTES = 16 << 20;

/** anchors per instance-building job */
const PLAN_CHUNK = 2048;
const CORES = os.availableParallelism?.() ?? os.cpus().length;

/** Inline tokenising: native threads for a batch while the JS thread reads and splits the next one. */
function pipelineThreads(): number {
  const v = process.env.LINKBERT_PIPELINE_THREADS;
  if (v === undefined || v === '') return Math.max(1, CORES - 1);
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`LINKBERT_PIPELINE_THREADS must be an integer in [1, 256], got '${v}'`);
  return n;
}

const DEFAULTS = {
  maxSeqLen: 512,
  seed: 12345,
  dupeFactor: 1,
  mask: 'static' as const,
  maskProb: 0.15,
  validFraction: 0.01,
  validMinDocs: 2,
  shardSizeMb: 64,
};

function check(cond: boolean, msg: string): void {
  if (!cond) throw new Error(msg);
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/** Run the whole pipeline; returns the manifest it wrote. */
export async function prepare(opts: PrepareOptions, progress?: (p: PrepareProgress) => void, timings?: PrepareTimings): Promise<Manifest> {
  let tStage = performance.now();
  const lap = (k: keyof PrepareTimings): void => {
    const now = performance.now();
    if (timings) timings[k] = (now - tStage) / 1000;
    tStage = now;
  };
  const maxSeqLen = opts.maxSeqLen ?? DEFAULTS.maxSeqLen;
  const seed = opts.seed ?? DEFAULTS.seed;
  const dupeFactor = opts.dupeFactor ?? DEFAULTS.dupeFactor;
  const mask = opts.mask ?? DEFAULTS.mask;
  const maskProb = opts.maskProb ?? DEFAULTS.maskProb;
  const validFraction = opts.validFraction ?? DEFAULTS.validFraction;
  const validMinDocs = opts.validMinDocs ?? DEFAULTS.validMinDocs;
  const labelProbs = opts.labelProbs ?? [1 / 3, 1 / 3, 1 / 3];
  const shuffle = opts.shuffle ?? true;
  const shardSizeMb = opts.shardSizeMb ?? DEFAULTS.shardSizeMb;
  const shardBytes = opts.shardBytes ?? Math.round(shardSizeMb * 1024 * 1024);
  const tokenMemoryMb = opts.tokenMemoryMb ?? 2048;
  // Each message names the flag the user typed (or would type), checked before anything derived from it.
  if (opts.workers !== undefined) check(Number.isInteger(opts.workers) && opts.workers >= 0, `--workers must be a non-negative integer, got ${opts.workers}`);
  check(opts.inputs.length > 0, 'prepare: at least one --input is required');
  check(Number.isInteger(maxSeqLen) && maxSeqLen >= 8 && maxSeqLen <= 65535, `--max-seq-len must be an integer in [8, 65535], got ${maxSeqLen}`);
  check(Number.isSafeInteger(seed) && seed >= 0, `--seed must be a non-negative integer, got ${seed}`);
  check(Number.isInteger(dupeFactor) && dupeFactor >= 1, `--dupe-factor must be a positive integer, got ${dupeFactor}`);
  check(mask === 'static' || mask === 'dynamic', `--mask must be static or dynamic, got ${mask}`);
  check(maskProb > 0 && maskProb <= 1, `--mask-prob must be in (0, 1], got ${maskProb}`);
  const maxPredictions = opts.maxPredictions ?? defaultMaxPredictions(maxSeqLen, maskProb);
  check(
    Number.isInteger(maxPredictions) && maxPredictions >= 1 && maxPredictions <= maxSeqLen,
    opts.maxPredictions === undefined
      ? `internal: default --max-predictions ceil(${maskProb} * ${maxSeqLen}) = ${maxPredictions} is outside [1, ${maxSeqLen}]`
      : `--max-predictions must be an integer in [1, --max-seq-len ${maxSeqLen}], got ${maxPredictions}`,
  );
  check(validFraction >= 0 && validFraction < 1, `--valid-fraction must be in [0, 1), got ${validFraction}`);
  check(Number.isInteger(validMinDocs) && validMinDocs >= 0, `--valid-min-docs must be a non-negative integer, got ${validMinDocs}`);
  if (opts.minChars !== undefined) check(Number.isInteger(opts.minChars) && opts.minChars >= 0, `--min-chars must be a non-negative integer, got ${opts.minChars}`);
  if (opts.shardBytes !== undefined) check(Number.isInteger(shardBytes) && shardBytes >= 1, `shardBytes must be a positive integer, got ${shardBytes}`);
  else check(shardSizeMb > 0 && shardBytes >= 1, `--shard-size-mb must be positive (at least one byte), got ${shardSizeMb}`);
  check(Number.isFinite(tokenMemoryMb) && tokenMemoryMb >= 0, `--token-memory-mb must be a non-negative number, got ${tokenMemoryMb}`);
  check(labelProbs.length === 3 && labelProbs.every((p) => p >= 0) && labelProbs[0] + labelProbs[1] + labelProbs[2] > 0, `--label-probs must be three non-negative numbers, got ${labelProbs}`);
  const lpSum = labelProbs[0] + labelProbs[1] + labelProbs[2];
  const probs: [number, number, number] = [labelProbs[0] / lpSum, labelProbs[1] / lpSum, labelProbs[2] / lpSum];
  if (opts.mix) {
    check(opts.mix.length === opts.inputs.length, `--mix has ${opts.mix.length} weights for ${opts.inputs.length} inputs`);
    check(opts.mix.every((w) => Number.isFinite(w) && w >= 0) && opts.mix.some((w) => w > 0), `--mix weights must be non-negative with a positive sum, got ${opts.mix}`);
  }
  for (const p of opts.inputs) if (!fs.existsSync(p)) throw new Error(`--input ${p}: no such file or directory`);

  /** Why the valid split came out empty or smaller than asked (pretrain then runs without evaluation). */
  const validWarnings = (docsBySplit: number[], validInstances: number, noPartner: number): string[] => {
    if (validFraction === 0) return [];
    const usable = docsBySplit[0] + docsBySplit[1];
    const vd = docsBySplit[1];
    if (validInstances === 0) {
      const why =
        usable < 2 ? `there ${usable === 1 ? 'is only 1 document' : 'are no documents'} with text, and holding one out needs at least 2`
        : vd === 0 ? `--valid-fraction ${validFraction} of ${usable} documents rounds to 0 and --valid-min-docs is ${validMinDocs}`
        : `its ${plural(vd, 'document')} make no instances (anchor_without_any_partner ${noPartner}${opts.mix ? '; the rest dropped by --mix' : ''})`;
      return [`the valid split is empty: ${why}; pretrain will run without evaluation`];
    }
    if (vd < validMinDocs) return [`the valid split has ${plural(vd, 'document')}, fewer than --valid-min-docs ${validMinDocs}: at most half of the ${usable} documents with text are held out`];
    return [];
  };
  /** --mix inputs whose anchors are repeated or dropped a lot (both are easy to miss in the totals). */
  const mixWarnings = (inputs: InputInfo[]): string[] => {
    if (!opts.mix) return [];
    const wsum = opts.mix.reduce((a, b) => a + b, 0);
    const segs = inputs.reduce((a, x) => a + x.segments, 0);
    const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
    const out: string[] = [];
    inputs.forEach((x, k) => {
      const asks = `weight ${opts.mix![k]} asks for ${pct(opts.mix![k] / wsum)} of the instances from ${pct(x.segments / segs)} of the segments`;
      if (x.keep_rate > 2)
        out.push(`--mix repeats each anchor of ${x.path} ${x.keep_rate.toFixed(1)}x on average (${asks}): its instances reuse the same text with new partners and masks`);
      if (x.anchors_dropped > x.anchors / 5)
        out.push(`--mix drops ${x.anchors_dropped} of the ${x.anchors} anchors of ${x.path} (${pct(x.anchors_dropped / x.anchors)}; ${asks}): their text is in no instance`);
    });
    return out;
  };

  const tokSpec: TokenizerSpec = { vocab: opts.vocab, lowercase: opts.lowercase };
  const tok = loadTokenizer(tokSpec);
  const width = tokenWidthFor(tok.vocabSize);
  const target = Math.floor((maxSeqLen - 3) / 2);

  checkOutDir(opts.out);

  const formats: Format[] = [];
  const sizes: number[] = [];
  for (const p of opts.inputs) {
    formats.push(opts.format ?? (await detectFormat(p)));
    sizes.push(await inputSize(p));
  }
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  // Default: one worker per core, but none for small inputs, where starting workers (each loads the
  // modules and the tokenizer) costs more than it saves. The output is the same either way.
  const workers = opts.workers ?? Math.min(CORES, Math.floor(totalBytes / SMALL_INPUT_BYTES));
  const prog: PrepareProgress = { bytes: 0, totalBytes, docs: 0, instances: 0 };
  let lastReport = 0;
  const report = (force = false): void => {
    if (!progress) return;
    const now = Date.now();
    if (force || now - lastReport >= 100) {
      lastReport = now;
      progress({ ...prog });
    }
  };

  // Everything is built in a hidden work folder inside --out and moved into place at the end
  // (out-dir.ts): a failed run leaves the old dataset as it was. Below, `out` is that work folder.
  const work = new WorkDir(opts.out);
  const out = work.dir;
  lap('setup');
  // ---- stage 1: read + tokenise --------------------------------------------------------------------
  // Documents get an index in reading order; workers convert deferred markup, split and tokenise them,
  // and results come back in index order, so their tokens go to the token file in that order and only
  // offsets, segment bounds and link strings (interned: the graph's vocabulary) stay in memory.
  // skips per input (their sum is the manifest's `skipped`), and documents read per input
  const inputSkips = opts.inputs.map(() => new SkipCounter());
  const docsRead = new Array<number>(opts.inputs.length).fill(0);
  const redirects = new Map<string, string>();
  const metas: { id: string; title?: string; links: string[]; aliases?: string[] }[] = [];
  const docInput: number[] = [];
  const tokOff = new GrowableF64();
  const bounds = new GrowableI32();
  const bOff = new GrowableF64();
  bOff.push(0);
  const interned = new Map<string, string>();
  const intern = (l: string): string => {
    const v = interned.get(l);
    if (v !== undefined) return v;
    interned.set(l, l);
    return l;
  };
  const tokenFile = path.join(out, TOKEN_FILE);
  // until the try below owns the work folder
  const guard = <T>(make: () => T, undo?: () => void): T => {
    try {
      return make();
    } catch (e) {
      undo?.();
      work.discard();
      throw e;
    }
  };
  const store = guard(() => new TokenFileWriter(tokenFile, width));
  let storeOpen = true;
  let tokens: TokenFileReader | undefined;
  // Submissions waiting for their result (FIFO; results come back in submission order). A deferred
  // record's document (id, links, …) is only known from its result, and it may be dropped there.
  const subs: ({ input: number; meta?: (typeof metas)[number] } | undefined)[] = [];
  let subHead = 0; // subs[subHead] is the next to come back
  let subBase = 0; // submission number of subs[0] (the answered head is cut off now and then)
  const onSegmented = (q: number, r: SegmentedText): void => {
    if (q !== subBase + subHead) throw new Error(`internal: tokenizer result ${q} arrived out of order (expected ${subBase + subHead})`);
    const sub = subs[subHead]!;
    subs[subHead++] = undefined;
    if (subHead >= 65536) {
      subs.splice(0, subHead);
      subBase += subHead;
      subHead = 0;
    }
    if (r.skips) for (const [k, v] of r.skips) inputSkips[sub.input].add(k, v);
    if (r.redirects) for (const [from, to] of r.redirects) redirects.set(from, to);
    const meta = r.deferred ? r.doc : sub.meta;
    if (!meta) return;
    if (meta.title === meta.id) meta.title = meta.id; // one string, not two equal copies (MediaWiki: id is the title)
    meta.links = meta.links.map(intern);
    metas.push(meta);
    docInput.push(sub.input);
    docsRead[sub.input]++;
    tokOff.push(store.append(r.tokens));
    bounds.pushAll(r.bounds);
    bOff.push(bounds.length);
  };
  const pool = guard(() => new TokenizePool(workers, { mode: 'tokenize', tokenizer: tokSpec, target }, tok, onSegmented), () => store.abort());
  // stage 1's workers, idle between the stages and handed to the build pool in stage 3
  let idle: Worker[] = [];
  try {
    let drained = false;
    try {
      for (let k = 0; k < opts.inputs.length; k++) {
        const it = readDocuments(opts.inputs[k], {
          format: formats[k],
          skipBad: opts.skipBad,
          skips: inputSkips[k],
          minChars: opts.minChars,
          redirects,
          deferMarkup: true,
          onBytes: (n: number) => {
            prog.bytes += n;
            report();
          },
        });
        for await (const doc of it as AsyncIterable<Document>) {
          const q = subBase + subs.length;
          if (doc.deferred) {
            subs.push({ input: k });
            await pool.submit(q, { text: doc.text, deferred: doc.deferred, id: doc.id, title: doc.title, aliases: doc.aliases });
          } else {
            subs.push({ input: k, meta: { id: doc.id, title: doc.title, links: doc.links, aliases: doc.aliases } });
            await pool.submit(q, { text: doc.text });
          }
          prog.docs++;
          report();
        }
      }
      await pool.drain();
      drained = true;
    } finally {
      if (drained) idle = pool.release();
      else await pool.close();
    }
    subs.length = 0;
    store.finish();
    storeOpen = false;
    prog.bytes = totalBytes;
    report(true);
    // An input that gave nothing is a mistake (wrong --format, wrong path, empty file); say what was read.
    const empty = opts.inputs.flatMap((p, k) => {
      if (docsRead[k] > 0) return [];
      const skipped = inputSkips[k].toJSON();
      const why =
        sizes[k] === 0 ? 'it is empty (0 bytes)'
        : inputSkips[k].total() > 0
          ? `skipped ${describeSkips(skipped)}${skipped.non_document_file ? ` (non_document_file: files whose names are not those a ${formats[k]} input reads${opts.format ? '; is --format right?' : ''})` : ''}`
        : `no ${formats[k]} document found in its ${sizes[k]} bytes`;
      return [`no documents read from ${p} (format ${formats[k]}, ${opts.format ? 'from --format' : 'detected'}): ${why}`];
    });
    if (empty.length) throw new Error(`${empty.join('; ')}; --out ${opts.out} is left as it was`);

    lap('tokenize');
    // ---- stage 2: graph -----------------------------------------------------------------------------
    // A repeated id keeps its first document (in reading order).
    const keep: number[] = [];
    const seen = new Set<string>();
    const docsPerInput = new Array<number>(opts.inputs.length).fill(0);
    for (let i = 0; i < metas.length; i++) {
      if (seen.has(metas[i].id)) {
        inputSkips[docInput[i]].add('duplicate_document_id');
        continue;
      }
      seen.add(metas[i].id);
      keep.push(i);
      docsPerInput[docInput[i]]++;
    }
    seen.clear();
    const kept = keep.map((i) => metas[i]);
    const graph = DocGraph.build(kept, { redirects });
    graph.writeTsv(out); // writes OUT/graph/{nodes,edges}.tsv
    interned.clear();
    const n = kept.length;
    const gIndex = new Int32Array(n);
    for (let j = 0; j < n; j++) {
      gIndex[j] = graph.indexOf(kept[j].id);
      if (gIndex[j] < 0) throw new Error(`internal: document ${kept[j].id} is missing from the graph`);
    }
    const mine = new Int32Array(graph.ids.length).fill(-1);
    for (let j = 0; j < n; j++) mine[gIndex[j]] = j;
    // into shared memory, for the instance-building workers
    let nb = 0;
    let nl = 0;
    for (let j = 0; j < n; j++) {
      nb += bOff.data[keep[j] + 1] - bOff.data[keep[j]];
      for (const gj of graph.outLinks[gIndex[j]]) if (mine[gj] >= 0) nl++;
    }
    const shared: SharedDocs = {
      ids: kept.map((m) => m.id),
      input: sharedI32(n),
      inDegree: sharedI32(n),
      tokenFile,
      tokenWidth: width,
      tokOff: sharedF64(n),
      bounds: sharedI32(nb),
      bOff: sharedF64(n + 1),
      links: sharedI32(nl),
      lOff: sharedF64(n + 1),
    };
    for (let j = 0, b = 0, l = 0; j < n; j++) {
      const i = keep[j];
      shared.input[j] = docInput[i];
      shared.inDegree[j] = graph.inDegree[gIndex[j]];
      shared.tokOff[j] = tokOff.data[i];
      shared.bounds.set(bounds.data.subarray(bOff.data[i], bOff.data[i + 1]), b);
      b += bOff.data[i + 1] - bOff.data[i];
      shared.bOff[j + 1] = b;
      for (const gj of graph.outLinks[gIndex[j]]) if (mine[gj] >= 0) shared.links[l++] = mine[gj];
      shared.lOff[j + 1] = l;
    }
    metas.length = 0;
    const tokenBytes = store.length * width;
    if (tokenBytes <= tokenMemoryMb * 1024 * 1024) shared.tokensInMemory = loadTokenFile(tokenFile, width, store.length);
    const docs = docsFromShared(shared);
    tokens = tokenReader(shared);
    let segments = 0;
    for (const d of docs) {
      const n = numSegments(d);
      if (n === 0) inputSkips[d.input].add('document_without_tokens');
      segments += n;
    }

    lap('graph');
    // ---- stage 3: instances ---------------------------------------------------------------------------
    const split = splitDocuments(docs, seed, validFraction, validMinDocs);
    // An input counts as linked when some document has an out-link to another document with text.
    const linked = new Array<boolean>(opts.inputs.length).fill(false);
    const anchors = new Array<number>(opts.inputs.length).fill(0);
    for (let i = 0; i < docs.length; i++) {
      const d = docs[i];
      anchors[d.input] += numSegments(d);
      if (numSegments(d) > 0 && !linked[d.input]) for (const j of d.links) if (j !== i && numSegments(docs[j]) > 0) linked[d.input] = true;
    }
    const inputProbs = linked.map((l) => (l ? probs : unlinkedProbs(probs)));
    let keepRate = anchors.map(() => 1);
    if (opts.mix) {
      const wsum = opts.mix.reduce((a, b) => a + b, 0);
      const total = anchors.reduce((a, b) => a + b, 0);
      keepRate = anchors.map((n, k) => {
        if (opts.mix![k] > 0 && n === 0) throw new Error(`--input ${opts.inputs[k]}: has mix weight ${opts.mix![k]} but produced no segments`);
        return n === 0 ? 0 : ((opts.mix![k] / wsum) * total) / n;
      });
    }
    const specialIds = [...new Set([tok.clsId, tok.sepId, tok.padId, tok.maskId, tok.unkId])].sort((a, b) => a - b);
    const wordStart = new Uint8Array(tok.vocabSize);
    for (let id = 0; id < tok.vocabSize; id++) wordStart[id] = tok.isWordStart(id) ? 1 : 0;
    const maskSpec: MaskSpec = {
      vocabSize: tok.vocabSize,
      maskId: tok.maskId,
      neverMask: [tok.clsId, tok.sepId, tok.padId, tok.maskId],
      randomExclude: specialIds,
      maskProb,
      maxPredictions,
      wholeWord: !!opts.wholeWordMask,
      wordStart,
    };
    const builderOpts = { seed, maxSeqLen, dupeFactor, labelProbs: inputProbs, keepRate, clsId: tok.clsId, sepId: tok.sepId };
    const builder = new InstanceBuilder(docs, split, { ...builderOpts, masker: mask === 'static' ? new Masker(maskSpec) : undefined, tokens });
    // the global shuffle's bucket count comes from the expected bytes of each split: records planned per
    // document, times a generous record size (full sequence, static masks, two document ids)
    const expected = [0, 0];
    for (let i = 0; i < docs.length; i++) expected[split[i]] += numSegments(docs[i]) * keepRate[docs[i].input] * dupeFactor;
    const recordBytes = maxSeqLen * width + maxPredictions * 2 * width + 96;
    const writers = (['train', 'valid'] as const).map((name, s) =>
      shuffle
        ? new ShuffledShardWriter(out, name, shardBytes, { seed, expectedBytes: expected[s] * recordBytes, bucketBytes: opts.shuffleBucketBytes })
        : new ShardWriter(out, name, shardBytes),
    );
    const splitStats = [0, 1].map(() => ({ instances: 0, tokens: 0, labels: [0, 0, 0] }));
    const writeOne = (s: number, label: number, ntok: number, rec: Uint8Array): void => {
      writers[s].write(rec);
      const st = splitStats[s];
      st.instances++;
      st.tokens += ntok;
      st.labels[label]++;
      prog.instances++;
      if ((prog.instances & 1023) === 0) report();
    };
    // Labels are planned here, in order (they carry the deficit state); the instances themselves are made
    // and encoded by workers, and written back in plan order.
    const buildPool =
      workers > 0
        ? new BuildPool(idle, { mode: 'build', shared, split, builder: builderOpts, mask: mask === 'static' ? maskSpec : null, width }, (plan, r) => {
            let off = 0;
            for (let k = 0; k < plan.label.length; k++) {
              writeOne(split[plan.doc[k]], plan.label[k], r.ntok[k], r.records.subarray(off, off + r.lens[k]));
              off += r.lens[k];
            }
          })
        : null;
    idle = []; // the build pool owns them now (and closes them below)
    try {
      for (let round = 0; round < dupeFactor; round++) {
        let d0 = 0;
        while (d0 < docs.length) {
          // chunks of about PLAN_CHUNK anchors
          let d1 = d0;
          let n = 0;
          while (d1 < docs.length && n < PLAN_CHUNK) {
            n += numSegments(docs[d1]) * Math.ceil(keepRate[docs[d1].input]);
            d1++;
          }
          const plan = builder.plan(round, d0, d1);
          d0 = d1;
          if (plan.label.length === 0) continue;
          if (buildPool) await buildPool.submit(round, plan);
          else {
            // inline: the whole chunk at once (in the addon, on every core)
            const r = builder.buildRecords(round, plan, width, CORES);
            for (let k = 0, off = 0; k < plan.label.length; k++) {
              writeOne(split[plan.doc[k]], plan.label[k], r.ntok[k], r.records.subarray(off, off + r.lens[k]));
              off += r.lens[k];
            }
          }
        }
      }
      if (buildPool) await buildPool.drain();
      builder.finish();
    } catch (e) {
      for (const w of writers) w.abort();
      throw e;
    } finally {
      builder.close(); // the addon's builder holds the token file open
      if (buildPool) await buildPool.close();
    }
    report(true);
    lap('instances');
    // Nothing to pretrain on: say why instead of writing a dataset pretrain cannot use.
    if (splitStats[0].instances === 0) {
      for (const w of writers) w.abort();
      let trainDocs = 0;
      let trainSegs = 0;
      for (let i = 0; i < docs.length; i++)
        if (split[i] === 0 && numSegments(docs[i]) > 0) {
          trainDocs++;
          trainSegs += numSegments(docs[i]);
        }
      const np = builder.stats.noPartnerBySplit[0];
      const why =
        segments === 0 ? `none of them has any tokens (document_without_tokens ${docs.length})`
        : np > 0 ? `the train split's ${plural(trainDocs, 'document')} with ${plural(trainSegs, 'segment')} make no pairs (anchor_without_any_partner ${np}): an instance needs a next segment in the same document or a second document`
        : `the train split has ${plural(trainDocs, 'document')} with ${plural(trainSegs, 'segment')}, and --mix kept none of their anchors`;
      throw new Error(`no train instances from ${plural(docs.length, 'document')}: ${why}; --out ${opts.out} is left as it was`);
    }
    let shards: ReturnType<ShardWriter['finish']>[];
    try {
      shards = writers.map((w) => w.finish()); // the shuffled writers write their shards here
    } catch (e) {
      for (const w of writers) w.abort();
      throw e;
    }
    builder.stats.perInput.forEach((st, k) => inputSkips[k].add('anchor_without_any_partner', st.noPartner));
    const skips = new SkipCounter();
    for (const s of inputSkips) skips.merge(s);
    lap('shuffle');
    // ---- stage 4: tokenizer + manifest -----------------------------------------------------------------
    const tokDir = path.join(out, 'tokenizer');
    tok.save(tokDir);
    const labelCounts = (a: number[]): LabelCounts => ({ contiguous: a[0], random: a[1], linked: a[2] });
    const splitDocsCount = [0, 0];
    for (let i = 0; i < docs.length; i++) if (numSegments(docs[i]) > 0) splitDocsCount[split[i]]++;
    const splitInfo = (s: 0 | 1): SplitInfo => ({
      instances: splitStats[s].instances,
      documents: splitDocsCount[s],
      tokens: splitStats[s].tokens,
      labels: labelCounts(splitStats[s].labels),
      shards: shards[s],
    });
    const inputs: InputInfo[] = opts.inputs.map((p, k) => ({
      path: p,
      format: formats[k],
      bytes: sizes[k],
      weight: opts.mix ? opts.mix[k] : 1,
      documents: docsPerInput[k],
      linked: linked[k],
      label_probs: inputProbs[k],
      instances: builder.stats.perInput[k].instances,
      labels: labelCounts(builder.stats.perInput[k].labels),
      segments: anchors[k],
      keep_rate: Number(keepRate[k].toFixed(4)),
      anchors: builder.stats.perInput[k].anchors,
      anchors_dropped: builder.stats.perInput[k].dropped,
      skipped: inputSkips[k].toJSON(),
    }));
    const warnings = [...validWarnings(splitDocsCount, splitStats[1].instances, builder.stats.noPartnerBySplit[1]), ...mixWarnings(inputs)];
    const manifest: Manifest = {
      schema_version: SCHEMA_VERSION,
      kind: 'linkbert-shards',
      max_seq_len: maxSeqLen,
      max_predictions: maxPredictions,
      token_width: width,
      mask,
      whole_word_mask: !!opts.wholeWordMask,
      mask_prob: maskProb,
      seed,
      vocab: {
        hash: tok.hash(),
        size: tok.vocabSize,
        config: tok.config,
        cls_id: tok.clsId,
        sep_id: tok.sepId,
        pad_id: tok.padId,
        mask_id: tok.maskId,
        unk_id: tok.unkId,
        special_ids: specialIds,
        word_start: packBitmap(wordStart),
        dir: 'tokenizer',
      },
      config: {
        inputs: opts.inputs,
        format: opts.format ?? null,
        vocab: opts.vocab,
        max_seq_len: maxSeqLen,
        segment_target_tokens: target,
        seed,
        label_probs: probs,
        dupe_factor: dupeFactor,
        mix: opts.mix ?? null,
        mask,
        whole_word_mask: !!opts.wholeWordMask,
        mask_prob: maskProb,
        max_predictions: maxPredictions,
        valid_fraction: validFraction,
        valid_min_docs: validMinDocs,
        skip_bad: !!opts.skipBad,
        shard_bytes: shardBytes,
        shuffle,
        lowercase: opts.lowercase ?? null,
        min_chars: opts.minChars ?? null,
      },
      inputs,
      counts: {
        instances: splitStats[0].instances + splitStats[1].instances,
        tokens: splitStats[0].tokens + splitStats[1].tokens,
        documents: docs.length,
        segments,
        labels: labelCounts(builder.stats.labels),
      },
      label_fallback: {
        substituted: builder.stats.substituted,
        unresolved: labelCounts(builder.stats.unresolved.reduce<number[]>((a, u) => a.map((x, l) => x + u[l]), [0, 0, 0])),
      },
      splits: { train: splitInfo(0), valid: splitInfo(1) },
      skipped: skips.toJSON(),
      warnings,
      graph: graph.stats(),
    };
    writeManifest(out, manifest);
    tokens?.close();
    tokens = undefined;
    fs.rmSync(tokenFile, { force: true });
    work.commit();
    lap('finish');
    return manifest;
  } finally {
    await Promise.all(idle.map((w) => w.terminate())); // a failure between the stages
    tokens?.close();
    if (storeOpen) store.abort();
    work.discard(); // after a failure (a no-op once committed)
  }
}

export { DRP_LABELS };

/** Stage 1's worker threads, in tokenize mode (stage 3 switches them to build mode). */
function spawnWorkers(n: number, init: TokenizeInit): Worker[] {
  return Array.from({ length: n }, () => new Worker(new URL('./prepare-worker.js', import.meta.url), { workerData: init }));
}

/**
 * What both worker pools share: prepare-worker.js threads, jobs sent to the least-loaded worker with a
 * bound per worker and in total, results handed back strictly in submission order (so the output does
 * not depend on which worker finished first), and the first failure (a worker error, a non-zero exit,
 * or a job error), which every later call rethrows.
 */
abstract class WorkerPool<Result extends { id: number; error?: string; inputError?: boolean }, Meta> {
  protected workers: Worker[] = [];
  private inflight: number[] = [];
  private waiters: (() => void)[] = [];
  protected failure: Error | null = null;
  private jobs = new Map<number, { w: number; meta: Meta; result?: Result }>();
  private nextJob = 0;
  private nextEmit = 0;
  private static MAX_INFLIGHT = 3;

  private detach: (() => void)[] = [];

  /** Adopts `workers` (see spawnWorkers); `switchTo`, when given, is posted to each first (a mode switch). */
  constructor(workers: Worker[], private what: string, switchTo?: BuildInit) {
    for (const w of workers) {
      if (switchTo) w.postMessage(switchTo);
      const onMessage = (m: Result): void => this.onMessage(m);
      const onError = (e: Error): void => this.fail(e);
      const onExit = (code: number): void => {
        if (code !== 0) this.fail(new Error(`${what} worker exited with code ${code}`));
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
      // only our listeners: Worker keeps its port referenced through listeners of its own
      this.detach.push(() => w.off('message', onMessage).off('error', onError).off('exit', onExit));
      this.workers.push(w);
      this.inflight.push(0);
    }
  }

  /** Hands the (idle: call after drain) workers over to another pool, without stopping them. */
  release(): Worker[] {
    for (const d of this.detach) d();
    this.detach = [];
    const ws = this.workers;
    this.workers = [];
    return ws;
  }

  /** Called with each job's result, in submission order. */
  protected abstract emit(meta: Meta, r: Result): void;

  /** Sends `make(id)` to a worker once there is room; `meta` comes back with its result. */
  protected async post(meta: Meta, make: (id: number) => unknown): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      let best = 0;
      for (let k = 1; k < this.workers.length; k++) if (this.inflight[k] < this.inflight[best]) best = k;
      // finished jobs wait here until their turn, so the total is bounded too
      if (this.inflight[best] < WorkerPool.MAX_INFLIGHT && this.nextJob - this.nextEmit < 2 * WorkerPool.MAX_INFLIGHT * this.workers.length) {
        const id = this.nextJob++;
        this.inflight[best]++;
        this.jobs.set(id, { w: best, meta });
        this.workers[best].postMessage(make(id));
        return;
      }
      await this.wait();
    }
  }

  /** Waits until every posted job has been emitted. */
  async drain(): Promise<void> {
    while (this.nextEmit < this.nextJob) await this.wait();
    if (this.failure) throw this.failure;
  }

  private onMessage(m: Result): void {
    const j = this.jobs.get(m.id);
    if (!j) return;
    this.inflight[j.w]--;
    if (m.error) {
      // bad input carries its own message (file, place, field); anything else is a bug in a worker
      this.fail(new Error(m.inputError ? m.error : `${this.what} worker: ${m.error}`));
      return;
    }
    j.result = m;
    try {
      for (let e = this.jobs.get(this.nextEmit); e && e.result; e = this.jobs.get(this.nextEmit)) {
        this.jobs.delete(this.nextEmit);
        this.nextEmit++;
        this.emit(e.meta, e.result);
      }
    } catch (err) {
      this.fail(err as Error);
    }
    this.wake();
  }

  /** Resolves at the next result or failure; throws the failure if there is one. */
  private async wait(): Promise<void> {
    if (this.failure) throw this.failure;
    await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/**
 * Sends documents to worker threads in batches and hands each document's result back in submission
 * order (so the token file is in document order). With 0 workers it tokenises inline.
 */
class TokenizePool extends WorkerPool<TokenizeResult, null> {
  private batch: TokenizeJob['docs'] = [];
  private batchChars = 0;
  private static BATCH_CHARS = 256 * 1024;

  constructor(
    n: number,
    private init: TokenizeInit,
    private tok: WordPieceTokenizer,
    private onResult: (i: number, r: SegmentedText) => void,
  ) {
    super(spawnWorkers(n, init), 'tokenizer');
  }

  async submit(i: number, job: TextJob): Promise<void> {
    if (this.failure) throw this.failure;
    this.batch.push({ i, ...job });
    this.batchChars += (job.deferred && 'bytes' in job.deferred ? job.deferred.bytes.length : job.text.length) + 64;
    if (this.batchChars >= TokenizePool.BATCH_CHARS) await this.flush();
  }

  async drain(): Promise<void> {
    if (this.batch.length) await this.flush();
    if (this.pipeline) this.emitInline(await this.pipeline.finish());
    await super.drain();
  }

  private pipeline: SegmentPipeline | undefined;
  private inlineDocs: TokenizeJob['docs'][] = []; // batches in the pipeline, oldest first

  /** Results of the oldest inline batch (SegmentPipeline hands them back one push later). */
  private emitInline(segs: SegmentedText[]): void {
    if (segs.length === 0) return;
    const docs = this.inlineDocs.shift()!;
    docs.forEach((d, k) => this.onResult(d.i, segs[k]));
  }

  private async flush(): Promise<void> {
    const docs = this.batch;
    this.batch = [];
    this.batchChars = 0;
    if (this.workers.length === 0) {
      // inline: one tokenizer call per batch, off the JS thread, while the next batch is read and split
      this.pipeline ??= new SegmentPipeline(this.tok, this.init.target, pipelineThreads());
      this.inlineDocs.push(docs);
      this.emitInline(await this.pipeline.push(docs));
      return;
    }
    await this.post(null, (id): TokenizeJob => ({ id, docs }));
  }

  protected emit(_: null, r: TokenizeResult): void {
    for (const x of r.results) this.onResult(x.i, x);
  }
}

/** Sends planned anchors to instance-building workers and hands the encoded records back in plan order. */
class BuildPool extends WorkerPool<BuildResult, AnchorPlan> {
  /** `workers`: stage 1's tokenize workers, switched to build mode */
  constructor(workers: Worker[], init: BuildInit, private onResult: (plan: AnchorPlan, r: BuildResult) => void) {
    super(workers, 'instance', init);
  }

  submit(round: number, plan: AnchorPlan): Promise<void> {
    return this.post(plan, (id): BuildJob => ({ id, round, doc: plan.doc, seg: plan.seg, copy: plan.copy, label: plan.label }));
  }

  protected emit(plan: AnchorPlan, r: BuildResult): void {
    this.onResult(plan, r);
  }
}
