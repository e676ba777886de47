// prepare's on-disk token store. Stage 1 appends every document's tokens to one temporary file in the
// output directory; stage 3 (instance building, in any thread) reads segments back by offset. So memory
// holds per-document and per-segment offsets, never the corpus's tokens: at Wikipedia scale that is
// gigabytes kept on disk (and in the page cache, when there is room) instead of in the heap.
//
// Layout: little-endian uint16 (vocab ≤ 65536) or int32 tokens, documents back to back in the order
// they were appended; `append` returns the document's offset in tokens.
import fs from 'node:fs';

const BUF_BYTES = 4 << 20;

export class TokenFileWriter {
  private fd: number;
  private buf: Buffer;
  private used = 0;
  /** tokens written so far (= offset of the next document) */
  length = 0;

  constructor(readonly file: string, readonly width: 2 | 4) {
    this.fd = fs.openSync(file, 'w');
    this.buf = Buffer.allocUnsafeSlow(BUF_BYTES); // unpooled: byteOffset 0, aligned views
  }

  append(tokens: Int32Array): number {
    const off = this.length;
    const bytes = tokens.length * this.width;
    if (this.used + bytes > this.buf.length) this.flush();
    if (bytes > this.buf.length) this.buf = Buffer.allocUnsafeSlow(bytes);
    if (this.width === 2) {
      const v = new Uint16Array(this.buf.buffer, this.buf.byteOffset + this.used, tokens.length);
      v.set(tokens);
    } else new Int32Array(this.buf.buffer, this.buf.byteOffset + this.used, tokens.length).set(tokens);
    this.used += bytes;
    this.length += tokens.length;
    return off;
  }

  private flush(): void {
    let o = 0;
    while (o < this.used) o += fs.writeSync(this.fd, this.buf, o, this.used - o);
    this.used = 0;
  }

  /** Flushes and closes; the file is then ready for readers. */
  finish(): void {
    this.flush();
    fs.closeSync(this.fd);
  }

  /** Closes without flushing (on failure; the caller removes the file). */
  abort(): void {
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}

/** Random access to a finished token file: tokens [start, end) of document d, relative to its offset. */
export class TokenFileReader {
  private fd: number;
  // Two scratch slots, so that segment A and segment B of one instance can be held at once.
  private scratch: Buffer[] = [Buffer.allocUnsafeSlow(4096), Buffer.allocUnsafeSlow(4096)]; // unpooled: byteOffset 0, aligned views

  // Documents [pre0, pre1) read in one go (preload): an instance-building job's anchors are a run of
  // consecutive documents, so their segments (and contiguous partners) cost no further reads.
  private pre0 = 0;
  private pre1 = 0;
  private preTok0 = 0;
  private pre: Uint16Array | Int32Array = new Int32Array(0);

  /**
   * `docEnd(d)` is the token offset just past document d (= docOffset[d] + its token count). With
   * `inMemory` (the whole file, e.g. from loadTokenFile), reads are views into it and the file is unused.
   */
  constructor(
    readonly file: string,
    readonly width: 2 | 4,
    private docOffset: Float64Array,
    private docEnd: (d: number) => number,
    private inMemory?: Uint16Array | Int32Array,
  ) {
    this.fd = inMemory ? -1 : fs.openSync(file, 'r');
  }

  /** Reads documents [d0, d1) into memory for the following reads; replaces the previous preload. */
  preload(d0: number, d1: number): void {
    if (this.inMemory) return;
    this.pre0 = this.pre1 = 0;
    if (d1 <= d0) return;
    const t0 = this.docOffset[d0];
    const n = this.docEnd(d1 - 1) - t0;
    const buf = Buffer.allocUnsafeSlow(n * this.width);
    this.readInto(buf, n * this.width, t0 * this.width);
    this.pre = this.width === 2 ? new Uint16Array(buf.buffer, 0, n) : new Int32Array(buf.buffer, 0, n);
    this.pre0 = d0;
    this.pre1 = d1;
    this.preTok0 = t0;
  }

  private readInto(buf: Buffer, bytes: number, pos: number): void {
    let got = 0;
    while (got < bytes) {
      const r = fs.readSync(this.fd, buf, got, bytes - got, pos + got);
      if (r === 0) throw new Error(`${this.file}: truncated token store (offset ${pos + got})`);
      got += r;
    }
  }

  /** A view valid until the next read into the same slot (or the next preload). */
  read(d: number, start: number, end: number, slot: 0 | 1): Uint16Array | Int32Array {
    if (this.inMemory) return this.inMemory.subarray(this.docOffset[d] + start, this.docOffset[d] + end);
    if (d >= this.pre0 && d < this.pre1) {
      const o = this.docOffset[d] - this.preTok0;
      return this.pre.subarray(o + start, o + end);
    }
    const n = end - start;
    const bytes = n * this.width;
    if (this.scratch[slot].length < bytes) this.scratch[slot] = Buffer.allocUnsafeSlow(Math.max(bytes, 2 * this.scratch[slot].length));
    const buf = this.scratch[slot];
    this.readInto(buf, bytes, (this.docOffset[d] + start) * this.width);
    return this.width === 2 ? new Uint16Array(buf.buffer, buf.byteOffset, n) : new Int32Array(buf.buffer, buf.byteOffset, n);
  }

  /** Where the tokens are, for the addon's instance builder: the in-memory copy, or the file. */
  source(): { inMemory?: Uint16Array | Int32Array; file: string; width: 2 | 4; docOffset: Float64Array } {
    return { inMemory: this.inMemory, file: this.file, width: this.width, docOffset: this.docOffset };
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * The whole token file in a SharedArrayBuffer (instance builders in every thread read it without
 * copies). prepare does this when the file fits its memory budget (--token-memory-mb): a read per
 * partner segment costs more than the rest of building an instance.
 */
export function loadTokenFile(file: string, width: 2 | 4, tokens: number): Uint16Array | Int32Array {
  const sab = new SharedArrayBuffer(Math.max(1, tokens * width));
  const bytes = new Uint8Array(sab, 0, tokens * width);
  const fd = fs.openSync(file, 'r');
  try {
    for (let got = 0; got < bytes.length; ) {
      const r = fs.readSync(fd, bytes, got, Math.min(bytes.length - got, 1 << 30), got);
      if (r === 0) throw new Error(`${file}: truncated token store (offset ${got} of ${bytes.length})`);
      got += r;
    }
  } finally {
    fs.closeSync(fd);
  }
  return width === 2 ? new Uint16Array(sab, 0, tokens) : new Int32Array(sab, 0, tokens);
}

/**
 * A typed array that grows by doubling (stage 1 collects per-document offsets and per-segment bounds
 * without a JS object each).
 */
class Growable<A extends Int32Array | Float64Array> {
  length = 0;
  constructor(public data: A, private make: (n: number) => A) {}
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = this.make(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
  pushAll(a: ArrayLike<number>): void {
    for (let k = 0; k < a.length; k++) this.push(a[k]);
  }
}

export class GrowableI32 extends Growable<Int32Array> {
  constructor() {
    super(new Int32Array(1024), (n) => new Int32Array(n));
  }
}

export class GrowableF64 extends Growable<Float64Array> {
  constructor() {
    super(new Float64Array(1024), (n) => new Float64Array(n));
  }
}
