// safetensors reader/writer: 8-byte little-endian header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}}), then the raw
// little-endian data; offsets are relative to the start of the data section.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, writeSync } from 'node:fs';
import { DTYPE_SIZE, HostTensor, bytesOf, isHostDType, numelOf, viewAs } from './tensor.js';

export class CheckpointFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointFormatError';
  }
}

// Refuse absurd header sizes before allocating (the reference implementation caps at 100 MB).
const MAX_HEADER = 100_000_000;

interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

function readExact(fd: number, buf: Uint8Array, pos: number, file: string, what: string): void {
  let done = 0;
  while (done < buf.byteLength) {
    const n = readSync(fd, buf, done, buf.byteLength - done, pos + done);
    if (n === 0) throw new CheckpointFormatError(`${file}: unexpected end of file reading ${what} at offset ${pos + done}`);
    done += n;
  }
}

/** Parses and validates the header; returns entries sorted by data offset. */
function parseHeader(file: string, fileSize: number, fd: number): { entries: HeaderEntry[]; metadata: Record<string, string>; dataStart: number } {
  if (fileSize < 8) throw new CheckpointFormatError(`${file}: file is ${fileSize} bytes, too short for a safetensors header length at offset 0`);
  const lenBuf = new Uint8Array(8);
  readExact(fd, lenBuf, 0, file, 'header length');
  const n64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (n64 > BigInt(fileSize - 8)) {
    throw new CheckpointFormatError(`${file}: header length ${n64} at offset 0 runs past the end of the file (${fileSize} bytes; header would end at offset ${8n + n64})`);
  }
  const n = Number(n64);
  if (n > MAX_HEADER) throw new CheckpointFormatError(`${file}: header length ${n} at offset 0 exceeds the ${MAX_HEADER}-byte limit`);
  const hbuf = new Uint8Array(n);
  readExact(fd, hbuf, 8, file, 'header');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hbuf));
  } catch (e) {
    throw new CheckpointFormatError(`${file}: header JSON (offset 8, ${n} bytes) is invalid: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new CheckpointFormatError(`${file}: header (offset 8) is not a JSON object`);
  }
  const dataStart = 8 + n;
  const dataLen = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CheckpointFormatError(`${file}: __metadata__ is not an object`);
      metadata = raw as Record<string, string>;
      continue;
    }
    const where = `${file}: tensor "${name}"`;
    if (raw === null || typeof raw !== 'object') throw new CheckpointFormatError(`${where}: header entry is not an object`);
    const r = raw as Record<string, unknown>;
    if (typeof r.dtype !== 'string') throw new CheckpointFormatError(`${where}: missing or non-string "dtype"`);
    if (!Array.isArray(r.shape) || !r.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new CheckpointFormatError(`${where}: "shape" must be an array of non-negative integers, got ${JSON.stringify(r.shape)}`);
    }
    const off = r.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new CheckpointFormatError(`${where}: "data_offsets" must be [begin, end] integers, got ${JSON.stringify(off)}`);
    }
    const [begin, end] = off as number[];
    if (end < begin) throw new CheckpointFormatError(`${where}: data_offsets [${begin}, ${end}] end before begin`);
    if (end > dataLen) {
      throw new CheckpointFormatError(`${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataLen} bytes; file offset ${dataStart + end} > ${fileSize})`);
    }
    entries.push({ name, dtype: r.dtype, shape: r.shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    const p = entries[i - 1];
    const c = entries[i];
    if (c.begin < p.end) {
      throw new CheckpointFormatError(`${file}: tensors "${p.name}" [${p.begin}, ${p.end}) and "${c.name}" [${c.begin}, ${c.end}) overlap (data section starts at file offset ${dataStart})`);
    }
  }
  return { entries, metadata, dataStart };
}

/** Lists tensor names, dtypes and shapes without reading the data. */
export function inspectSafetensors(file: string): { name: string; dtype: string; shape: number[] }[] {
  const fd = openSync(file, 'r');
  try {
    return parseHeader(file, fstatSync(fd).size, fd).entries.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  } finally {
    closeSync(fd);
  }
}

export function readSafetensors(file: string): SafetensorsFile {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const { entries, metadata, dataStart } = parseHeader(file, size, fd);
    const tensors = new Map<string, HostTensor>();
    for (const e of entries) {
      const where = `${file}: tensor "${e.name}" (file offset ${dataStart + e.begin})`;
      if (!isHostDType(e.dtype)) {
        throw new CheckpointFormatError(`${where}: unsupported dtype "${e.dtype}" (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
      }
      const want = numelOf(e.shape) * DTYPE_SIZE[e.dtype];
      if (e.end - e.begin !== want) {
        throw new CheckpointFormatError(`${where}: ${e.dtype}[${e.shape.join(', ')}] needs ${want} bytes but data_offsets [${e.begin}, ${e.end}] span ${e.end - e.begin}`);
      }
      const bytes = new Uint8Array(want); // fresh buffer: aligned for the typed-array view
      readExact(fd, bytes, dataStart + e.begin, file, `tensor "${e.name}"`);
      tensors.set(e.name, { dtype: e.dtype, shape: [...e.shape], data: viewAs(e.dtype, bytes) });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes tensors in sorted-key order with `__metadata__` (default {format: "pt"}); the header is
 * padded with spaces so the data section starts 8-byte aligned.
 */
export function writeSafetensors(file: string, tensors: Map<string, HostTensor>, metadata: Record<string, string> = { format: 'pt' }): void {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let off = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new Error(`${file}: "__metadata__" is reserved and cannot be a tensor name`);
    const t = tensors.get(name)!;
    const nbytes = numelOf(t.shape) * DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== nbytes) {
      throw new Error(`${file}: tensor "${name}" ${t.dtype}[${t.shape.join(', ')}] needs ${nbytes} bytes, data has ${t.data.byteLength}`);
    }
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + nbytes] };
    off += nbytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fd = openSync(file, 'w');
  try {
    writeAll(fd, len);
    writeAll(fd, json);
    for (const name of names) writeAll(fd, bytesOf(tensors.get(name)!.data));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, buf: Uint8Array): void {
  let done = 0;
  while (done < buf.byteLength) done += writeSync(fd, buf, done, buf.byteLength - done);
}
