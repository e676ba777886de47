// Minimal read-only ZIP reader for PyTorch checkpoint archives: central directory (zip64 aware),
// stored and deflated entries, CRC-32 checked. Entries are read on demand from the open file.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as zlib from 'node:zlib';
import { CheckpointFormatError } from './safetensors.js';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  // zlib.crc32 exists from Node 20.15; keep a table fallback for older 20.x.
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private fd: number;
  readonly size: number;

  constructor(readonly file: string) {
    this.fd = openSync(file, 'r');
    try {
      this.size = fstatSync(this.fd).size;
      this.readCentralDirectory();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private fail(offset: number, what: string): never {
    throw new CheckpointFormatError(`${this.file}: corrupt zip archive at offset ${offset}: ${what}`);
  }

  private read(pos: number, len: number, what: string, into?: Uint8Array): Buffer {
    if (pos < 0 || pos + len > this.size) this.fail(pos, `${what} (${len} bytes) runs past the end of the file (${this.size} bytes)`);
    const buf = into ? Buffer.from(into.buffer, into.byteOffset, len) : Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, buf, done, len - done, pos + done);
      if (n === 0) this.fail(pos + done, `unexpected end of file reading ${what}`);
      done += n;
    }
    return buf;
  }

  private readCentralDirectory(): void {
    if (this.size < 22) this.fail(0, `file is ${this.size} bytes, too short for a zip end-of-central-directory record`);
    const tailLen = Math.min(this.size, 22 + 0xffff);
    const tailPos = this.size - tailLen;
    const tail = this.read(tailPos, tailLen, 'archive tail');
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === SIG_EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tailLen) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.fail(this.size, 'no end-of-central-directory record (not a zip file, or truncated)');
    const eocdPos = tailPos + eocd;
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    // zip64: the locator sits right before the classic record. Writers may emit it even when the
    // classic fields are not saturated, and then its values are the authoritative ones.
    const saturated = count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff;
    const locPos = eocdPos - 20;
    const loc = locPos >= 0 ? this.read(locPos, 20, 'zip64 locator') : undefined;
    const hasLocator = loc !== undefined && loc.readUInt32LE(0) === SIG_ZIP64_LOCATOR;
    if (saturated && !hasLocator) this.fail(Math.max(locPos, 0), 'zip64 archive without a valid zip64 end-of-central-directory locator');
    if (hasLocator) {
      const recPos = Number(loc!.readBigUInt64LE(8));
      const rec = this.read(recPos, 56, 'zip64 end-of-central-directory record');
      if (rec.readUInt32LE(0) !== SIG_ZIP64_EOCD) this.fail(recPos, 'bad zip64 end-of-central-directory signature');
      count = Number(rec.readBigUInt64LE(32));
      cdSize = Number(rec.readBigUInt64LE(40));
      cdOffset = Number(rec.readBigUInt64LE(48));
    }
    if (cdOffset + cdSize > this.size) {
      this.fail(cdOffset, `central directory (${cdSize} bytes, ${count} entries) runs past the end of the file (${this.size} bytes); the archive is truncated`);
    }
    const cd = this.read(cdOffset, cdSize, 'central directory');
    let p = 0;
    for (let i = 0; i < count; i++) {
      const at = cdOffset + p;
      if (p + 46 > cdSize) this.fail(at, `central directory entry ${i} of ${count} is truncated`);
      if (cd.readUInt32LE(p) !== SIG_CENTRAL) this.fail(at, `bad central directory entry signature 0x${cd.readUInt32LE(p).toString(16)} (entry ${i} of ${count})`);
      const flags = cd.readUInt16LE(p + 8);
      const method = cd.readUInt16LE(p + 10);
      const crc = cd.readUInt32LE(p + 16);
      let compressedSize = cd.readUInt32LE(p + 20);
      let size = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      let localHeaderOffset = cd.readUInt32LE(p + 42);
      if (p + 46 + nameLen + extraLen + commentLen > cdSize) this.fail(at, `central directory entry ${i} runs past the directory end`);
      const name = cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLen);
      // zip64 extended information: only the fields saturated in the fixed part are present, in this order.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = cd.readUInt16LE(x);
        const len = cd.readUInt16LE(x + 2);
        if (id === 0x0001) {
          let q = x + 4;
          const take = (): number => {
            if (q + 8 > x + 4 + len) this.fail(at, `zip64 extra field of "${name}" is too short`);
            const v = Number(cd.readBigUInt64LE(q));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
        }
        x += 4 + len;
      }
      if (flags & 0x1) this.fail(at, `entry "${name}" is encrypted`);
      this.entries.set(name, { name, method, crc32: crc, compressedSize, size, localHeaderOffset });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** Entry contents in a fresh (offset 0, so aligned) buffer. */
  readEntry(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointFormatError(`${this.file}: zip archive has no entry "${name}"`);
    const lh = this.read(e.localHeaderOffset, 30, `local header of "${name}"`);
    if (lh.readUInt32LE(0) !== SIG_LOCAL) this.fail(e.localHeaderOffset, `bad local file header signature for "${name}"`);
    const dataPos = e.localHeaderOffset + 30 + lh.readUInt16LE(26) + lh.readUInt16LE(28);
    if (dataPos + e.compressedSize > this.size) {
      this.fail(dataPos, `data of "${name}" (${e.compressedSize} bytes) runs past the end of the file (${this.size} bytes)`);
    }
    let out: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) this.fail(e.localHeaderOffset, `stored entry "${name}" has compressed size ${e.compressedSize} != size ${e.size}`);
      out = new Uint8Array(e.size); // read straight into the aligned result: no second copy of big storages
      this.read(dataPos, e.size, `data of "${name}"`, out);
    } else if (e.method === 8) {
      const raw = this.read(dataPos, e.compressedSize, `data of "${name}"`);
      let inflated: Buffer;
      try {
        inflated = zlib.inflateRawSync(raw);
      } catch (err) {
        this.fail(dataPos, `deflate data of "${name}" is corrupt: ${(err as Error).message}`);
      }
      if (inflated.length !== e.size) this.fail(dataPos, `"${name}" inflates to ${inflated.length} bytes, directory says ${e.size}`);
      out = new Uint8Array(e.size);
      out.set(inflated);
    } else {
      this.fail(e.localHeaderOffset, `entry "${name}" uses unsupported compression method ${e.method}`);
    }
    const c = crc32(out);
    if (c !== e.crc32) this.fail(dataPos, `CRC-32 mismatch for "${name}" (stored 0x${e.crc32.toString(16)}, computed 0x${c.toString(16)})`);
    return out;
  }
}
