// Batches for the training loop: deterministic shuffling (shard order + shuffle buffer) by seed and
// epoch, rank/world-size sharding, exact resume from a JSON position, static or dynamic masking,
// and prefetching in a worker thread.
//
// The order of an epoch is a pure function of (seed, epoch, shuffleBuffer, dataset layout), and dynamic
// masks of (seed, epoch, record index), so a position is just (epoch, cursor): no RNG state needs saving.
// Each rank takes every worldSize-th element of the epoch order; the epoch is cut to a multiple of
// worldSize so all ranks see the same number of instances (at most worldSize − 1 dropped per epoch,
// different ones each epoch). Batches run across epoch boundaries: there are no partial batches.
import { Worker } from 'node:worker_threads';
import { ShardDataset } from './shards/reader.js';
import { DRP_LABELS, type Instance } from './shards/format.js';
import type { Manifest } from './shards/manifest.js';
import { Masker, Rng, unpackBitmap } from './masking.js';

export { DRP_LABELS, ShardDataset };
export type { Instance, Manifest };
// the programmatic prepare, re-exported so the data API is importable from one module
export { prepare, type PrepareOptions, type PrepareProgress } from './prepare.js';

export interface Batch {
  batchSize: number;
  seqLen: number;
  maxPredictions: number;
  /** (B*T) padded with [PAD] */
  inputIds: Int32Array;
  /** (B*T) */
  tokenTypeIds: Int32Array;
  /** (B*T) 1 = real token, 0 = pad */
  attentionMask: Int32Array;
  /** (B*P) flat index b*T+t into the token grid; unused slots point at b*T ([CLS]) */
  maskedPositions: Int32Array;
  /** (B*P) original token id; -1 for unused slots (ignore index) */
  maskedLabels: Int32Array;
  /** (B) 0 contiguous, 1 random, 2 linked */
  drpLabels: Int32Array;
  /** real (non-pad) tokens in the batch */
  numTokens: number;
}

export interface LoaderOptions {
  batchSize: number;
  /** default manifest max_seq_len; shorter instances are padded */
  seqLen?: number;
  seed: number;
  rank?: number;
  worldSize?: number;
  /** default: the manifest's mask mode. 'static' needs shards prepared with static masks. */
  mask?: 'static' | 'dynamic';
  /** shuffle buffer size in instances (default 10000; 0 or 1 = shard order only) */
  shuffleBuffer?: number;
  /** batches prepared ahead in a worker thread (default 4; 0 = build batches in the calling thread) */
  prefetch?: number;
}

export interface LoaderPosition {
  version: 1;
  seed: number;
  rank: number;
  worldSize: number;
  shuffleBuffer: number;
  mask: 'static' | 'dynamic';
  /** records in the split, to refuse a position taken on another dataset */
  datasetSize: number;
  epoch: number;
  /** instances of this rank's share of `epoch` already consumed */
  cursor: number;
}

export const DEFAULT_SHUFFLE = 10000;

interface Resolved {
  batchSize: number;
  seqLen: number;
  seed: number;
  rank: number;
  worldSize: number;
  mask: 'static' | 'dynamic';
  shuffleBuffer: number;
}

function resolve(ds: ShardDataset, o: LoaderOptions): Resolved {
  const m = ds.manifest;
  const r: Resolved = {
    batchSize: o.batchSize,
    seqLen: o.seqLen ?? m.max_seq_len,
    seed: o.seed,
    rank: o.rank ?? 0,
    worldSize: o.worldSize ?? 1,
    mask: o.mask ?? m.mask,
    shuffleBuffer: o.shuffleBuffer ?? DEFAULT_SHUFFLE,
  };
  if (!Number.isInteger(r.batchSize) || r.batchSize < 1) throw new Error(`batch size must be a positive integer, got ${o.batchSize}`);
  if (!Number.isInteger(r.seqLen) || r.seqLen < 3) throw new Error(`seqLen must be an integer >= 3, got ${r.seqLen}`);
  if (!Number.isSafeInteger(r.seed) || r.seed < 0) throw new Error(`seed must be a non-negative integer, got ${o.seed}`);
  if (!Number.isInteger(r.worldSize) || r.worldSize < 1) throw new Error(`worldSize must be a positive integer, got ${r.worldSize}`);
  if (!Number.isInteger(r.rank) || r.rank < 0 || r.rank >= r.worldSize) throw new Error(`rank must be in [0, ${r.worldSize}), got ${r.rank}`);
  if (!Number.isInteger(r.shuffleBuffer) || r.shuffleBuffer < 0) throw new Error(`shuffleBuffer must be a non-negative integer, got ${r.shuffleBuffer}`);
  if (r.mask !== 'static' && r.mask !== 'dynamic') throw new Error(`mask must be static or dynamic, got ${r.mask}`);
  if (r.mask === 'static' && m.mask !== 'static')
    throw new Error(`${ds.dir}: shards were prepared with --mask ${m.mask}, so they hold no static masks; load them with mask 'dynamic'`);
  return r;
}

/** Masker rebuilt from the manifest, for dynamic masking at load time. */
export function maskerFromManifest(m: Manifest): Masker {
  const v = m.vocab;
  return new Masker({
    vocabSize: v.size,
    maskId: v.mask_id,
    neverMask: [v.cls_id, v.sep_id, v.pad_id, v.mask_id],
    randomExclude: v.special_ids,
    maskProb: m.mask_prob,
    maxPredictions: m.max_predictions,
    wholeWord: m.whole_word_mask,
    wordStart: unpackBitmap(v.word_start, v.size),
  });
}

/**
 * The epoch's record order: shards in an order shuffled by (seed, epoch), records read in order within
 * a shard and passed through a shuffle buffer of `bufferSize`.
 */
export function epochOrder(ds: ShardDataset, seed: number, epoch: number, bufferSize: number): Int32Array {
  const shards = ds.manifest.splits[ds.split].shards;
  const starts: number[] = [];
  let acc = 0;
  for (const s of shards) {
    starts.push(acc);
    acc += s.records;
  }
  const rng = new Rng(seed, epoch, 0x5a4d);
  const perm = shards.map((_, k) => k);
  rng.shuffle(perm);
  const out = new Int32Array(ds.size);
  let n = 0;
  if (bufferSize <= 1) {
    for (const k of perm) for (let r = 0; r < shards[k].records; r++) out[n++] = starts[k] + r;
    return out;
  }
  const buf = new Int32Array(bufferSize);
  let fill = 0;
  for (const k of perm)
    for (let r = 0; r < shards[k].records; r++) {
      const idx = starts[k] + r;
      if (fill < bufferSize) buf[fill++] = idx;
      else {
        const j = rng.int(bufferSize);
        out[n++] = buf[j];
        buf[j] = idx;
      }
    }
  const rest = buf.subarray(0, fill);
  rng.shuffle(rest);
  out.set(rest, n);
  return out;
}

/** Assembles padded batches from instances. */
class Assembler {
  private masker: Masker | null;
  constructor(private ds: ShardDataset, private seqLen: number, private mask: 'static' | 'dynamic', private seed: number) {
    this.masker = mask === 'dynamic' ? maskerFromManifest(ds.manifest) : null;
  }

  build(indices: ArrayLike<number>, epoch: number): Batch {
    const B = indices.length;
    const T = this.seqLen;
    const m = this.ds.manifest;
    const P = m.max_predictions;
    const pad = m.vocab.pad_id;
    const inputIds = new Int32Array(B * T).fill(pad);
    const tokenTypeIds = new Int32Array(B * T);
    const attentionMask = new Int32Array(B * T);
    const maskedPositions = new Int32Array(B * P);
    const maskedLabels = new Int32Array(B * P).fill(-1);
    const drpLabels = new Int32Array(B);
    let numTokens = 0;
    for (let b = 0; b < B; b++) {
      const i = indices[b];
      const inst: Instance = this.ds.get(i);
      const ids = inst.inputIds;
      const L = ids.length;
      if (L > T) throw new Error(`${this.ds.dir} (${this.ds.split}) record ${i}: ${L} tokens do not fit seqLen ${T}`);
      const base = b * T;
      inputIds.set(ids, base);
      tokenTypeIds.fill(1, base + inst.lenA + 2, base + L);
      attentionMask.fill(1, base, base + L);
      numTokens += L;
      drpLabels[b] = inst.drpLabel;
      let pos = inst.maskedPositions;
      let rep = inst.maskedIds;
      if (this.masker) {
        const r = this.masker.mask(ids, new Rng(this.seed, epoch, i, 0xd1));
        pos = r.positions;
        rep = r.replacements;
      }
      if (pos.length > P) throw new Error(`${this.ds.dir} (${this.ds.split}) record ${i}: ${pos.length} masked positions exceed max_predictions ${P}`);
      const pb = b * P;
      for (let k = 0; k < P; k++) maskedPositions[pb + k] = base;
      for (let k = 0; k < pos.length; k++) {
        maskedPositions[pb + k] = base + pos[k];
        maskedLabels[pb + k] = ids[pos[k]];
        inputIds[base + pos[k]] = rep[k];
      }
    }
    return { batchSize: B, seqLen: T, maxPredictions: P, inputIds, tokenTypeIds, attentionMask, maskedPositions, maskedLabels, drpLabels, numTokens };
  }
}

/** Synchronous batch producer: the state machine behind BatchLoader (runs in the worker or inline). */
export class BatchProducer {
  private r: Resolved;
  private asm: Assembler;
  private epoch = 0;
  private cursor = 0;
  private order: Int32Array | null = null;
  private orderEpoch = -1;
  readonly perRank: number;

  constructor(private ds: ShardDataset, opts: LoaderOptions, position?: LoaderPosition) {
    this.r = resolve(ds, opts);
    this.perRank = Math.floor(ds.size / this.r.worldSize);
    if (this.perRank === 0) throw new Error(`${ds.dir} (${ds.split}): ${ds.size} instances cannot be shared among ${this.r.worldSize} ranks`);
    this.asm = new Assembler(ds, this.r.seqLen, this.r.mask, this.r.seed);
    if (position) {
      const want = this.position();
      const bad = (['version', 'seed', 'rank', 'worldSize', 'shuffleBuffer', 'mask', 'datasetSize'] as const).filter((k) => position[k] !== want[k]);
      if (bad.length)
        throw new Error(
          `loader position does not match this loader: ${bad.map((k) => `${k} ${JSON.stringify(position[k])} vs ${JSON.stringify(want[k])}`).join(', ')}`,
        );
      if (!Number.isInteger(position.epoch) || position.epoch < 0 || !Number.isInteger(position.cursor) || position.cursor < 0 || position.cursor > this.perRank)
        throw new Error(`loader position has bad epoch/cursor: ${position.epoch}/${position.cursor} (per-rank epoch length ${this.perRank})`);
      this.epoch = position.epoch;
      this.cursor = position.cursor;
    }
  }

  position(): LoaderPosition {
    return {
      version: 1,
      seed: this.r.seed,
      rank: this.r.rank,
      worldSize: this.r.worldSize,
      shuffleBuffer: this.r.shuffleBuffer,
      mask: this.r.mask,
      datasetSize: this.ds.size,
      epoch: this.epoch,
      cursor: this.cursor,
    };
  }

  next(): Batch {
    const B = this.r.batchSize;
    const idx = new Int32Array(B);
    const epochs = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      if (this.cursor >= this.perRank) {
        this.epoch++;
        this.cursor = 0;
      }
      if (this.orderEpoch !== this.epoch) {
        this.order = epochOrder(this.ds, this.r.seed, this.epoch, this.r.shuffleBuffer);
        this.orderEpoch = this.epoch;
      }
      idx[b] = this.order![this.cursor * this.r.worldSize + this.r.rank];
      epochs[b] = this.epoch;
      this.cursor++;
    }
    // masks depend on the epoch each instance was drawn in (a batch can straddle two epochs)
    if (epochs[0] === epochs[B - 1]) return this.asm.build(idx, epochs[0]);
    const first = epochs.indexOf(epochs[B - 1]);
    const a = this.asm.build(idx.subarray(0, first), epochs[0]);
    const c = this.asm.build(idx.subarray(first), epochs[B - 1]);
    return concatBatches(a, c);
  }
}

function concatBatches(a: Batch, c: Batch): Batch {
  const cat = (x: Int32Array, y: Int32Array): Int32Array => {
    const o = new Int32Array(x.length + y.length);
    o.set(x);
    o.set(y, x.length);
    return o;
  };
  const shift = (pos: Int32Array, by: number): Int32Array => pos.map((v) => v + by);
  return {
    batchSize: a.batchSize + c.batchSize,
    seqLen: a.seqLen,
    maxPredictions: a.maxPredictions,
    inputIds: cat(a.inputIds, c.inputIds),
    tokenTypeIds: cat(a.tokenTypeIds, c.tokenTypeIds),
    attentionMask: cat(a.attentionMask, c.attentionMask),
    maskedPositions: cat(a.maskedPositions, shift(c.maskedPositions, a.batchSize * a.seqLen)),
    maskedLabels: cat(a.maskedLabels, c.maskedLabels),
    drpLabels: cat(a.drpLabels, c.drpLabels),
    numTokens: a.numTokens + c.numTokens,
  };
}

export function batchTransferList(b: Batch): ArrayBuffer[] {
  return [b.inputIds, b.tokenTypeIds, b.attentionMask, b.maskedPositions, b.maskedLabels, b.drpLabels].map((a) => a.buffer as ArrayBuffer);
}

/** Messages of the prefetch worker (src/data/shards/loader-worker.ts). */
export type LoaderRequest = { type: 'want'; n: number } | { type: 'stop' };
export type LoaderReply = { type: 'batch'; batch: Batch; position: LoaderPosition } | { type: 'error'; message: string };
export interface LoaderWorkerInit {
  dir: string;
  split: 'train' | 'valid';
  opts: LoaderOptions;
  position?: LoaderPosition;
}

/** Endless training batches; see the file comment for order, sharding and resume. */
export class BatchLoader {
  private producer: BatchProducer | null = null;
  private worker: Worker | null = null;
  private queue: { batch: Batch; position: LoaderPosition }[] = [];
  private waiting: { resolve: (v: { batch: Batch; position: LoaderPosition }) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private pos: LoaderPosition;
  private waited = 0;
  private closed = false;

  constructor(ds: ShardDataset, opts: LoaderOptions, position?: LoaderPosition) {
    const prefetch = opts.prefetch ?? 4;
    if (!Number.isInteger(prefetch) || prefetch < 0) throw new Error(`prefetch must be a non-negative integer, got ${opts.prefetch}`);
    // validates options and the position in the calling thread, so mistakes throw here
    const p = new BatchProducer(ds, opts, position);
    this.pos = p.position();
    if (prefetch === 0) {
      this.producer = p;
      return;
    }
    const init: LoaderWorkerInit = { dir: ds.dir, split: ds.split, opts, position };
    this.worker = new Worker(new URL('./shards/loader-worker.js', import.meta.url), { workerData: init });
    this.worker.on('message', (m: LoaderReply) => {
      if (m.type === 'error') this.fail(new Error(m.message));
      else if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w.resolve(m);
      } else this.queue.push(m);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`batch loader worker exited (code ${code})`));
    });
    this.worker.postMessage({ type: 'want', n: prefetch } satisfies LoaderRequest);
  }

  async next(): Promise<Batch> {
    if (this.closed) throw new Error('BatchLoader is closed');
    if (this.producer) {
      const batch = this.producer.next();
      this.pos = this.producer.position();
      return batch;
    }
    if (this.failure) throw this.failure;
    let item = this.queue.shift();
    if (!item) {
      const t0 = performance.now();
      item = await new Promise<{ batch: Batch; position: LoaderPosition }>((resolve, reject) => (this.waiting = { resolve, reject }));
      this.waited += performance.now() - t0;
    }
    this.worker!.postMessage({ type: 'want', n: 1 } satisfies LoaderRequest);
    this.pos = item.position;
    return item.batch;
  }

  /** Position after the last batch returned by next(); pass it to a new loader to continue exactly. */
  position(): LoaderPosition {
    return { ...this.pos };
  }

  /** Cumulative milliseconds next() spent waiting for the prefetch worker. */
  waitMs(): number {
    return this.waited;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.worker) {
      const w = this.worker;
      this.worker = null;
      await w.terminate();
    }
    if (this.waiting) this.waiting.reject(new Error('BatchLoader closed'));
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w.reject(e);
    }
  }
}

/**
 * One deterministic pass over the split in record order (for evaluation). With worldSize > 1, rank r
 * takes records r, r + W, … . The last batch may be smaller (its batchSize says so). Dynamic masks use
 * epoch 0 of `seed`.
 */
export function* iterateBatches(ds: ShardDataset, opts: LoaderOptions): Generator<Batch> {
  const r = resolve(ds, opts);
  const asm = new Assembler(ds, r.seqLen, r.mask, r.seed);
  const idx: number[] = [];
  for (let i = r.rank; i < ds.size; i += r.worldSize) {
    idx.push(i);
    if (idx.length === r.batchSize) {
      yield asm.build(idx, 0);
      idx.length = 0;
    }
  }
  if (idx.length) yield asm.build(idx, 0);
}
