// Random access to the records of one split of a prepared shard directory, through the .idx offsets.
// Whole shard files are cached (a small LRU) because shuffled training reads them nearly sequentially.
import fs from 'node:fs';
import path from 'node:path';
import { decodeRecord, recordBounds, RecordError, type Instance } from './format.js';
import { readManifest, ManifestError, type Manifest, type ShardEntry } from './manifest.js';

export class ShardDataset {
  readonly manifest: Manifest;
  readonly size: number;
  readonly dir: string;
  readonly split: 'train' | 'valid';
  private shards: ShardEntry[];
  /** cumulative record counts: shard s holds records [starts[s], starts[s+1]) */
  private starts: Float64Array;
  private offsets: (Float64Array | null)[];
  private cache = new Map<number, Buffer>();
  private closed = false;
  /** whether get() verifies each record's CRC-32C (on by default) */
  verify = true;
  /** how many whole shards to keep in memory */
  cacheShards = 2;

  private constructor(dir: string, split: 'train' | 'valid') {
    this.dir = dir;
    this.split = split;
    this.manifest = readManifest(dir);
    const info = this.manifest.splits[split];
    if (!info) throw new ManifestError(`${path.join(dir, 'manifest.json')}: no split "${split}"`);
    this.shards = info.shards;
    this.starts = new Float64Array(this.shards.length + 1);
    for (let s = 0; s < this.shards.length; s++) {
      const sh = this.shards[s];
      const file = path.join(dir, sh.file);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        throw new ManifestError(`${file}: shard listed in manifest.json is missing`);
      }
      if (st.size !== sh.bytes)
        throw new ManifestError(`${file}: ${st.size} bytes but manifest.json says ${sh.bytes} (truncated or replaced shard)`);
      this.starts[s + 1] = this.starts[s] + sh.records;
    }
    this.size = this.starts[this.shards.length];
    if (this.size !== info.instances)
      throw new ManifestError(`${path.join(dir, 'manifest.json')}: split ${split} lists ${info.instances} instances but its shards hold ${this.size}`);
    this.offsets = this.shards.map(() => null);
  }

  static open(dir: string, split: 'train' | 'valid'): ShardDataset {
    return new ShardDataset(dir, split);
  }

  /** Which shard holds record i, and its index inside that shard. */
  locate(i: number): { shard: number; record: number } {
    if (!(i >= 0 && i < this.size) || !Number.isInteger(i)) throw new RangeError(`record ${i} out of range [0, ${this.size}) in ${this.dir} ${this.split}`);
    let lo = 0;
    let hi = this.shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return { shard: lo, record: i - this.starts[lo] };
  }

  get(i: number): Instance {
    if (this.closed) throw new Error(`ShardDataset ${this.dir} (${this.split}) is closed`);
    const { shard, record } = this.locate(i);
    const offs = this.index(shard);
    const buf = this.shardBuffer(shard);
    const off = offs[record];
    // the record must end where the next one starts (or at the end of the shard): else the offset is off
    const next = record + 1 < offs.length ? offs[record + 1] : buf.length;
    let fault: string | undefined;
    try {
      if (recordBounds(buf, off).end !== next) fault = `record ${record} at byte offset ${off} does not end where the index says the next one starts (byte ${next})`;
      else return decodeRecord(buf, off, this.verify);
    } catch (e) {
      if (!(e instanceof RecordError)) throw e;
      fault = `record ${record} at byte offset ${off}: ${e.message}`;
    }
    throw this.diagnose(shard, fault);
  }

  /**
   * A record that does not decode where the index points: either the .pb or the .idx is damaged. The
   * .pb's own framing decides: when its records, walked from byte 0, are whole (each CRC-checked) and as
   * many as the manifest says, the .pb is sound and the first index entry off that walk is the fault.
   */
  private diagnose(s: number, fault: string): Error {
    const sh = this.shards[s];
    const buf = this.shardBuffer(s);
    const offs = this.index(s);
    const pb = path.join(this.dir, sh.file);
    let pos = 0;
    let k = 0;
    let badIdx = -1;
    let badPos = -1;
    try {
      for (; pos < buf.length && k < sh.records; k++) {
        if (badIdx < 0 && offs[k] !== pos) [badIdx, badPos] = [k, pos];
        decodeRecord(buf, pos, true);
        pos = recordBounds(buf, pos).end;
      }
    } catch {
      return new RecordError(`${pb}: ${fault}`); // the .pb itself is damaged
    }
    if (pos !== buf.length || k !== sh.records || badIdx < 0) return new RecordError(`${pb}: ${fault}`);
    return new ManifestError(
      `${path.join(this.dir, sh.index)}: entry ${badIdx} says record ${badIdx} of ${sh.file} starts at byte ${offs[badIdx]}, ` +
        `but it starts at byte ${badPos}: the index is corrupt (the .pb's records are intact; prepare the data again)`,
    );
  }

  close(): void {
    this.closed = true;
    this.cache.clear();
    this.offsets = this.offsets.map(() => null);
  }

  private index(s: number): Float64Array {
    let o = this.offsets[s];
    if (o) return o;
    const sh = this.shards[s];
    const file = path.join(this.dir, sh.index);
    let raw: Buffer;
    try {
      raw = fs.readFileSync(file);
    } catch {
      throw new ManifestError(`${file}: index file listed in manifest.json is missing`);
    }
    if (raw.length !== sh.records * 8)
      throw new ManifestError(`${file}: ${raw.length} bytes, expected 8 per record for ${sh.records} records`);
    o = new Float64Array(sh.records);
    let prev = -1;
    for (let r = 0; r < sh.records; r++) {
      const v = Number(raw.readBigUInt64LE(r * 8));
      if (v <= prev || v >= sh.bytes)
        throw new ManifestError(`${file}: entry ${r} (offset ${v}) is not increasing or lies past the shard's ${sh.bytes} bytes`);
      o[r] = prev = v;
    }
    this.offsets[s] = o;
    return o;
  }

  private shardBuffer(s: number): Buffer {
    const hit = this.cache.get(s);
    if (hit) {
      // refresh LRU order
      this.cache.delete(s);
      this.cache.set(s, hit);
      return hit;
    }
    const sh = this.shards[s];
    const file = path.join(this.dir, sh.file);
    const buf = fs.readFileSync(file);
    if (buf.length !== sh.bytes) throw new ManifestError(`${file}: ${buf.length} bytes but manifest.json says ${sh.bytes}`);
    this.cache.set(s, buf);
    while (this.cache.size > Math.max(1, this.cacheShards)) {
      const oldest = this.cache.keys().next().value as number;
      this.cache.delete(oldest);
    }
    return buf;
  }
}
