// A globally shuffled split, as BERT's create_pretraining_data shuffles all its instances before writing.
// prepare produces records document by document; in that order a training loader's shuffle buffer mixes
// only neighbouring documents, and a model trained on it drifts with the corpus (a stretch of one
// input, one part of a dump) instead of seeing a sample of the whole.
//   - write(): each record goes, length-prefixed, to one of B bucket files picked at random. Buckets are
//     buffered in memory and appended in blocks, so the number of open files stays at one.
//   - finish(): one bucket at a time is loaded, shuffled and written through a ShardWriter, which cuts
//     shards at the size target as before; then the bucket file is removed.
// Every bucket is a uniform random sample of the split, so any run of records in the output is too.
// Deterministic: the draws follow the write order, which prepare fixes whatever its worker count.
// Memory: the bucket buffers (BUFFER_BUDGET in all at most: 4096 buckets of 16 KiB) while writing; one
// bucket while finishing.
import fs from 'node:fs';
import path from 'node:path';
import { Rng } from '../masking.js';
import type { ShardEntry } from './manifest.js';
import { ShardWriter } from './writer.js';

/** bytes of records per bucket file: what finish() holds in memory at once */
export const BUCKET_BYTES = 256 << 20;
const MAX_BUCKETS = 4096;
const BUFFER_BUDGET = 64 << 20;

export interface ShuffleOptions {
  seed: number;
  /** an estimate of the split's bytes, which sets the bucket count (over-estimating only makes buckets smaller) */
  expectedBytes: number;
  /** bucket size target (default BUCKET_BYTES; tests set it small) */
  bucketBytes?: number;
  /** in-memory buffer per bucket before it is appended to its file (default: BUFFER_BUDGET over the buckets, 16 KiB-1 MiB; tests set it small) */
  bufferBytes?: number;
}

export class ShuffledShardWriter {
  private readonly shards: ShardWriter;
  private readonly rng: Rng;
  private readonly nb: number;
  private readonly bufs: (Buffer | null)[];
  private readonly lens: Int32Array; // bytes buffered per bucket
  private readBuf: Buffer | null = null; // finish(): one bucket's bytes, reused (fresh pages cost more than the read)
  private readonly bufBytes: number;
  private readonly dir: string;
  private readonly splitId: number; // the rng streams' key: train 0, valid 1

  constructor(outDir: string, split: string, targetBytes: number, private opts: ShuffleOptions) {
    this.shards = new ShardWriter(outDir, split, targetBytes);
    const bucketBytes = opts.bucketBytes ?? BUCKET_BYTES;
    if (!(bucketBytes > 0)) throw new Error(`bucket size must be positive, got ${bucketBytes}`);
    this.nb = Math.min(MAX_BUCKETS, Math.max(1, Math.ceil(Math.max(0, opts.expectedBytes) / bucketBytes)));
    this.splitId = split === 'train' ? 0 : 1;
    this.rng = new Rng(opts.seed, this.splitId, 0x5b0f);
    this.bufs = new Array<Buffer | null>(this.nb).fill(null);
    this.lens = new Int32Array(this.nb);
    this.bufBytes = opts.bufferBytes ?? Math.max(16 << 10, Math.min(1 << 20, Math.floor(BUFFER_BUDGET / this.nb)));
    this.dir = path.join(outDir, split);
    fs.mkdirSync(this.dir, { recursive: true });
    // bucket files an interrupted run left behind would be appended to
    for (const f of fs.readdirSync(this.dir)) if (/^\.bucket-\d+\.tmp$/.test(f)) fs.rmSync(path.join(this.dir, f), { force: true });
  }

  /** number of bucket files (1 for a split under the bucket size) */
  get buckets(): number {
    return this.nb;
  }

  private bucketPath(b: number): string {
    return path.join(this.dir, `.bucket-${String(b).padStart(4, '0')}.tmp`);
  }

  write(record: Uint8Array): void {
    const b = this.nb === 1 ? 0 : this.rng.int(this.nb);
    const need = 4 + record.length;
    let buf = this.bufs[b];
    if (buf && this.lens[b] + need > buf.length) this.spill(b);
    if (!buf || need > buf.length) buf = this.bufs[b] = Buffer.allocUnsafe(Math.max(this.bufBytes, need)); // (empty after the spill)
    buf.writeUInt32LE(record.length, this.lens[b]);
    buf.set(record, this.lens[b] + 4);
    this.lens[b] += need;
  }

  private spill(b: number): void {
    const buf = this.bufs[b];
    if (!buf || this.lens[b] === 0) return;
    fs.appendFileSync(this.bucketPath(b), buf.subarray(0, this.lens[b]));
    this.lens[b] = 0;
  }

  /** Shuffle every bucket into shards; returns the shards written, in order. */
  finish(): ShardEntry[] {
    for (let b = 0; b < this.nb; b++) {
      const file = this.bucketPath(b);
      let data: Buffer;
      if (fs.existsSync(file)) {
        this.spill(b);
        data = this.readBucket(file);
      } else data = this.bufs[b] ? this.bufs[b]!.subarray(0, this.lens[b]) : Buffer.alloc(0);
      // record k of the bucket: data[off[k] + 4, off[k + 1])
      let n = 0;
      for (let o = 0; o < data.length; n++) {
        if (o + 4 > data.length) throw new Error(`${file}: truncated bucket at byte ${o}`);
        const len = data.readUInt32LE(o);
        if (o + 4 + len > data.length) throw new Error(`${file}: record at byte ${o} runs past the end (${len} bytes)`);
        o += 4 + len;
      }
      const off = new Float64Array(n + 1);
      for (let k = 0, o = 0; k < n; k++) off[k + 1] = o += 4 + data.readUInt32LE(o);
      const order = new Int32Array(n);
      for (let k = 0; k < n; k++) order[k] = k;
      new Rng(this.opts.seed, this.splitId, b, 0x5b10).shuffle(order);
      for (let i = 0; i < n; i++) {
        const k = order[i];
        this.shards.write(data.subarray(off[k] + 4, off[k + 1]));
      }
      this.bufs[b] = null;
      fs.rmSync(file, { force: true });
    }
    this.readBuf = null;
    return this.shards.finish();
  }

  private readBucket(file: string): Buffer {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (!this.readBuf || this.readBuf.length < size) this.readBuf = Buffer.allocUnsafe(Math.max(size, Math.round(1.25 * (this.readBuf?.length ?? 0))));
      for (let o = 0; o < size; ) {
        const n = fs.readSync(fd, this.readBuf, o, Math.min(size - o, 1 << 30), o);
        if (n === 0) throw new Error(`${file}: bucket file ended at byte ${o} of ${size}`);
        o += n;
      }
      return this.readBuf.subarray(0, size);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Drop everything written so far (bucket files and the shard in progress) after an error. */
  abort(): void {
    this.shards.abort();
    for (let b = 0; b < this.nb; b++) {
      this.bufs[b] = null;
      fs.rmSync(this.bucketPath(b), { force: true });
    }
  }
}
