// Byte → text plumbing shared by the readers: transparent decompression (by magic bytes), BOM-aware
// streaming decoding with counted replacement characters, line splitting and directory listing.
import { createReadStream, promises as fsp, readFileSync, statSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import path from 'node:path';
import { createRequire } from 'node:module';
import { InputError, SkipCounter } from '../document.js';

const require = createRequire(import.meta.url);
// unbzip2-stream is CommonJS and untyped: a `through` stream factory.
const unbzip2 = require('unbzip2-stream') as () => NodeJS.ReadWriteStream;

export type Compression = 'none' | 'bz2' | 'gzip' | 'xz';

export async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export function compressionOf(head: Buffer): Compression {
  if (head.length >= 3 && head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return 'bz2'; // "BZh"
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** Strips a compression suffix: 'a.xml.bz2' → 'a.xml'. */
export function stripCompressionExt(p: string): string {
  return p.replace(/\.(bz2|gz|xz)$/i, '');
}

/** Files up to this size are read with one call: per-file stream setup dominates for many small pages. */
const SMALL_FILE = 4 << 20;

let systemBzip2: boolean | undefined;
function hasSystemBzip2(): boolean {
  if (systemBzip2 === undefined) systemBzip2 = spawnSync('bzip2', ['--help'], { stdio: 'ignore' }).status === 0;
  return systemBzip2;
}

export interface OpenOptions {
  /** bz2 decoder: the system `bzip2 -dc` (a separate process, several times faster than JS, handles
   *  multistream dumps) when installed, else the unbzip2-stream package. Default 'auto'. */
  bz2?: 'auto' | 'system' | 'js';
}

/**
 * Opens a file as a stream of decompressed bytes. Compression is detected from magic bytes, not the name.
 * onBytes sees raw (compressed) bytes as they are read from disk. xz has no Node decoder, so it is piped
 * through the system `xz -dc`; bz2 goes through `bzip2 -dc` when available (see OpenOptions).
 */
export async function openBytes(file: string, onBytes?: (n: number) => void, oo: OpenOptions = {}): Promise<AsyncIterable<Buffer>> {
  const st = statSync(file);
  let raw: Readable;
  let comp: Compression;
  let bytesRead: () => number;
  if (st.size <= SMALL_FILE) {
    // Synchronous on purpose: for many small pages the thread-pool round trips cost more than the reads.
    const buf = readFileSync(file);
    if (onBytes) onBytes(buf.length);
    comp = compressionOf(buf);
    if (comp === 'none') return (async function* () { if (buf.length) yield buf; })();
    raw = Readable.from([buf]);
    bytesRead = () => buf.length;
  } else {
    comp = compressionOf(await readHead(file, 6));
    const rs = createReadStream(file, { highWaterMark: 1 << 20 });
    if (onBytes) rs.on('data', (c) => onBytes((c as Buffer).length));
    raw = rs;
    bytesRead = () => rs.bytesRead;
  }
  const fail = (what: string) => (e: Error) => new InputError(file, `offset ${bytesRead()}`, what, e.message);
  if (comp === 'none') return raw;
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  // A consumer that stops early (format sniffing, a break) must not leave the file or a child process open.
  out.on('close', () => {
    raw.destroy();
    if (child && child.exitCode === null) child.kill();
  });
  let child: ReturnType<typeof spawn> | undefined;
  const pipeErr = (what: string) => (e: Error) => out.destroy(fail(what)(e));
  raw.on('error', pipeErr('file'));
  if (comp === 'gzip') {
    const gz = createGunzip();
    gz.on('error', pipeErr('gzip'));
    raw.pipe(gz).pipe(out);
  } else if (comp === 'bz2' && (oo.bz2 === 'js' || (oo.bz2 !== 'system' && !hasSystemBzip2()))) {
    const bz = unbzip2();
    bz.on('error', pipeErr('bz2'));
    raw.pipe(bz).pipe(out);
  } else {
    const cmd = comp === 'bz2' ? 'bzip2' : 'xz';
    const c = spawn(cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', (e) => out.destroy(new InputError(file, 'offset 0', comp, `cannot run ${cmd} (${e.message}); install it`)));
    // `out` ends only once the exit status is known, so a corrupt archive cannot pass for a short one.
    c.on('close', (code, signal) => {
      if (out.destroyed) return;
      if (code === 0) out.end();
      else out.destroy(new InputError(file, `offset ${bytesRead()}`, comp, `${cmd} -dc failed (${code ?? signal}): ${stderr.trim()}`));
    });
    raw.pipe(c.stdin);
    c.stdin.on('error', () => {}); // reported via exit code
    c.stdout.pipe(out, { end: false });
  }
  return out;
}

export type Encoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'legacy';

/**
 * Encoding declared by an XML/HTML head (`<?xml encoding=..>`, `<meta charset=..>`, `<meta content="..; charset=..">`)
 * when it is neither UTF-8 nor UTF-16 and TextDecoder knows it (e.g. windows-1252, iso-8859-2, shift_jis).
 */
export function declaredEncoding(head: Buffer): string | undefined {
  const s = head.subarray(0, 2048).toString('latin1');
  if (!/^\s*</.test(s)) return undefined;
  const m = /<\?xml[^>]*\bencoding\s*=\s*["']([\w.:-]+)["']/i.exec(s) ?? /<meta[^>]*\bcharset\s*=\s*["']?([\w.:-]+)/i.exec(s);
  if (!m) return undefined;
  let label: string;
  try {
    label = new TextDecoder(m[1]).encoding;
  } catch {
    return undefined;
  }
  return label === 'utf-8' || label.startsWith('utf-16') ? undefined : label;
}

/** Detects a BOM (or BOM-less UTF-16 from NUL bytes around ASCII '<' / '{'); returns the encoding and BOM length. */
export function sniffEncoding(head: Buffer): { enc: Encoding; bom: number } {
  if (head.length >= 3 && head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { enc: 'utf-8', bom: 3 };
  if (head.length >= 2 && head[0] === 0xff && head[1] === 0xfe) return { enc: 'utf-16le', bom: 2 };
  if (head.length >= 2 && head[0] === 0xfe && head[1] === 0xff) return { enc: 'utf-16be', bom: 2 };
  if (head.length >= 4 && head[0] !== 0 && head[1] === 0 && head[2] !== 0 && head[3] === 0) return { enc: 'utf-16le', bom: 0 };
  if (head.length >= 4 && head[0] === 0 && head[1] !== 0 && head[2] === 0 && head[3] !== 0) return { enc: 'utf-16be', bom: 0 };
  return { enc: 'utf-8', bom: 0 };
}

function countChar(s: string, ch: string): number {
  let n = 0;
  for (let i = s.indexOf(ch); i !== -1; i = s.indexOf(ch, i + 1)) n++;
  return n;
}

const FFFD_UTF8 = Buffer.from([0xef, 0xbf, 0xbd]);

/**
 * Decodes a byte stream to text chunks, handling multi-byte sequences split across chunks and a leading BOM.
 * Without a BOM, an XML/HTML head that declares a legacy encoding (declaredEncoding) is decoded with it.
 * Malformed sequences become U+FFFD and are counted under `invalid_utf8` / `invalid_utf16` (occurrences,
 * i.e. one per maximal ill-formed subsequence, as the WHATWG decoder replaces them). U+FFFD already present
 * in the input is not counted.
 */
export async function* decodeText(bytes: AsyncIterable<Buffer>, skips: SkipCounter): AsyncGenerator<string> {
  let decoder: TextDecoder | undefined;
  let enc: Encoding = 'utf-8';
  let pending: Buffer | undefined; // bytes held back until we can sniff the BOM / for UTF-16 alignment
  let tail = Buffer.alloc(0); // last 2 bytes of the previous UTF-8 chunk, to find U+FFFD split across chunks
  let legit = 0;
  let produced = 0;
  const emit = (buf: Buffer, flush: boolean): string => {
    if (enc === 'utf-8') {
      const joined = tail.length ? Buffer.concat([tail, buf]) : buf;
      for (let i = joined.indexOf(FFFD_UTF8); i !== -1; i = joined.indexOf(FFFD_UTF8, i + 1)) if (i + 3 > tail.length) legit++;
      tail = Buffer.from(joined.subarray(Math.max(0, joined.length - 2)));
    } else if (enc !== 'legacy') {
      for (let i = 0; i + 1 < buf.length; i += 2) {
        const u = enc === 'utf-16le' ? buf[i] | (buf[i + 1] << 8) : (buf[i] << 8) | buf[i + 1];
        if (u === 0xfffd) legit++;
      }
    }
    const s = decoder!.decode(buf, { stream: !flush });
    produced += countChar(s, '\ufffd');
    return s;
  };
  let oddByte: Buffer | undefined;
  for await (const chunk0 of bytes) {
    let chunk = chunk0;
    if (!decoder) {
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      // Enough of the head to see a BOM and an XML/HTML encoding declaration.
      if (pending.length < 1024) continue;
      const { enc: e, bom } = sniffEncoding(pending);
      enc = e;
      const legacy = bom === 0 && enc === 'utf-8' ? declaredEncoding(pending) : undefined;
      if (legacy) enc = 'legacy';
      decoder = new TextDecoder(legacy ?? enc, { fatal: false, ignoreBOM: true });
      chunk = pending.subarray(bom);
      pending = undefined;
    }
    if (enc === 'utf-16le' || enc === 'utf-16be') {
      // Keep UTF-16 chunks code-unit aligned so the U+FFFD scan above sees whole units.
      if (oddByte) chunk = Buffer.concat([oddByte, chunk]);
      oddByte = chunk.length % 2 ? Buffer.from(chunk.subarray(chunk.length - 1)) : undefined;
      if (oddByte) chunk = chunk.subarray(0, chunk.length - 1);
    }
    const s = emit(chunk, false);
    if (s) yield s;
  }
  if (!decoder) {
    const buf = pending ?? Buffer.alloc(0);
    const { enc: e, bom } = sniffEncoding(buf);
    enc = e;
    const legacy = bom === 0 && enc === 'utf-8' ? declaredEncoding(buf) : undefined;
    if (legacy) enc = 'legacy';
    decoder = new TextDecoder(legacy ?? enc, { fatal: false, ignoreBOM: true });
    const s = emit(buf.subarray(bom), true);
    if (s) yield s;
  } else {
    const s = emit(oddByte ?? Buffer.alloc(0), true);
    if (s) yield s;
  }
  const bad = produced - legit;
  if (bad > 0) skips.add(enc === 'utf-8' ? 'invalid_utf8' : enc === 'legacy' ? 'invalid_legacy_encoding' : 'invalid_utf16', bad);
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** A whole UTF-8 buffer (no BOM handling), counting malformed sequences as decodeText does. */
export function decodeUtf8(bytes: Uint8Array, skips: SkipCounter): string {
  const s = utf8.decode(bytes);
  if (s.indexOf('\ufffd') !== -1) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let legit = 0;
    for (let i = b.indexOf(FFFD_UTF8); i !== -1; i = b.indexOf(FFFD_UTF8, i + 1)) legit++;
    const bad = countChar(s, '\ufffd') - legit;
    if (bad > 0) skips.add('invalid_utf8', bad);
  }
  return s;
}

/** Opens, decompresses and decodes a file. */
export async function openText(file: string, skips: SkipCounter, onBytes?: (n: number) => void, oo?: OpenOptions): Promise<AsyncIterable<string>> {
  return decodeText(await openBytes(file, onBytes, oo), skips);
}

/** Synchronous line splitter over text chunks ('\n' or '\r\n'); keeps the partial last line between pushes. */
export class LineSplitter {
  private carry = '';

  push(c: string, out: string[]): void {
    const s = this.carry + c;
    let start = 0;
    for (let i = s.indexOf('\n'); i !== -1; i = s.indexOf('\n', start)) {
      out.push(s.charCodeAt(i - 1) === 13 && i > start ? s.slice(start, i - 1) : s.slice(start, i));
      start = i + 1;
    }
    this.carry = s.slice(start);
  }

  end(out: string[]): void {
    if (this.carry.length) out.push(this.carry.endsWith('\r') ? this.carry.slice(0, -1) : this.carry);
    this.carry = '';
  }
}

/** Splits text chunks into lines (without the terminator). Line numbers start at 1. */
export async function* splitLines(chunks: AsyncIterable<string>): AsyncGenerator<[string, number]> {
  const sp = new LineSplitter();
  const batch: string[] = [];
  let lineNo = 0;
  for await (const c of chunks) {
    sp.push(c, batch);
    for (const l of batch) yield [l, ++lineNo];
    batch.length = 0;
  }
  sp.end(batch);
  for (const l of batch) yield [l, ++lineNo];
}

/** All regular files under dir (recursively), sorted by relative path so every run sees the same order. */
export async function listFiles(dir: string, keep: (rel: string) => boolean = () => true): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await fsp.readdir(d, { withFileTypes: true });
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile() && keep(path.relative(dir, full))) out.push(full);
    }
  };
  await walk(dir);
  const rel = (f: string) => path.relative(dir, f).split(path.sep).join('/');
  return out.sort((a, b) => (rel(a) < rel(b) ? -1 : rel(a) > rel(b) ? 1 : 0));
}

