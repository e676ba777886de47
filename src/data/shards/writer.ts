// Shard writer: appends framed records to OUT/<split>/shard-NNNNN.pb, cutting a new shard once the
// current one reaches the size target. Each shard and its .idx go to temp files first and are renamed
// only when complete, so an interrupted run never leaves a shard that looks whole.
import fs from 'node:fs';
import path from 'node:path';
import type { ShardEntry } from './manifest.js';

const FLUSH_BYTES = 1 << 22;

export class ShardWriter {
  private shards: ShardEntry[] = [];
  private fd = -1;
  private tmpPath = '';
  private buf = Buffer.allocUnsafe(FLUSH_BYTES);
  private bufLen = 0;
  private offsets: number[] = [];
  private bytes = 0;

  /**
   * @param outDir the prepare output directory
   * @param split subdirectory name ("train" / "valid")
   * @param targetBytes cut a shard once it holds at least this many bytes
   */
  constructor(private outDir: string, private split: string, private targetBytes: number) {
    if (!(targetBytes > 0)) throw new Error(`shard size must be positive, got ${targetBytes}`);
    fs.mkdirSync(path.join(outDir, split), { recursive: true });
  }

  write(record: Uint8Array): void {
    if (this.fd < 0) this.open();
    this.offsets.push(this.bytes);
    if (this.bufLen + record.length > this.buf.length) this.flush();
    if (record.length > this.buf.length) fs.writeSync(this.fd, record);
    else {
      this.buf.set(record, this.bufLen);
      this.bufLen += record.length;
    }
    this.bytes += record.length;
    if (this.bytes >= this.targetBytes) this.closeShard();
  }

  /** Finish the last shard; returns every shard written, in order. */
  finish(): ShardEntry[] {
    if (this.fd >= 0) this.closeShard();
    return this.shards;
  }

  /** Drop the shard in progress (its temp file) after an error. */
  abort(): void {
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already failing */
      }
      fs.rmSync(this.tmpPath, { force: true });
      this.fd = -1;
    }
  }

  private name(): string {
    return `shard-${String(this.shards.length).padStart(5, '0')}`;
  }

  private open(): void {
    this.tmpPath = path.join(this.outDir, this.split, `.${this.name()}.pb.tmp`);
    this.fd = fs.openSync(this.tmpPath, 'w');
    this.offsets = [];
    this.bytes = 0;
    this.bufLen = 0;
  }

  private flush(): void {
    let off = 0;
    while (off < this.bufLen) off += fs.writeSync(this.fd, this.buf, off, this.bufLen - off);
    this.bufLen = 0;
  }

  private closeShard(): void {
    this.flush();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = -1;
    const base = this.name();
    const rel = `${this.split}/${base}`;
    const idx = Buffer.allocUnsafe(this.offsets.length * 8);
    for (let i = 0; i < this.offsets.length; i++) idx.writeBigUInt64LE(BigInt(this.offsets[i]), i * 8);
    const idxTmp = path.join(this.outDir, this.split, `.${base}.idx.tmp`);
    const ifd = fs.openSync(idxTmp, 'w');
    try {
      fs.writeSync(ifd, idx);
      fs.fsyncSync(ifd);
    } finally {
      fs.closeSync(ifd);
    }
    fs.renameSync(this.tmpPath, path.join(this.outDir, rel + '.pb'));
    fs.renameSync(idxTmp, path.join(this.outDir, rel + '.idx'));
    this.shards.push({ file: rel + '.pb', index: rel + '.idx', records: this.offsets.length, bytes: this.bytes });
  }
}
