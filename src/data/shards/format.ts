// Hand-written protobuf encoding of proto/linkbert.proto (Record + Instance) and its framing.
// Hand-written rather than via protobufjs reflection so that reading stays well above 200k records/s;
// test/shards.test.ts checks the bytes against protobufjs loading the .proto itself.
import { crc32c } from '../crc32c.js';

export const SCHEMA_VERSION = 1;

export const DRP_LABELS = ['contiguous', 'random', 'linked'] as const;
export type DrpLabelName = (typeof DRP_LABELS)[number];
export const CONTIGUOUS = 0;
export const RANDOM = 1;
export const LINKED = 2;

/** One pretraining pair as stored in a shard. */
export interface Instance {
  /** [CLS] A [SEP] B [SEP], unmasked. */
  inputIds: Int32Array;
  /** tokens of A, without [CLS]/[SEP]; token_type is 0 for positions < lenA + 2. */
  lenA: number;
  /** static masking: ascending positions chosen for prediction (empty for dynamic-mask shards). */
  maskedPositions: Int32Array;
  /** static masking: the id fed to the model at each masked position. */
  maskedIds: Int32Array;
  drpLabel: number;
  docA: string;
  docB: string;
  segA: number;
  segB: number;
}

export function tokenTypeIds(inst: Instance): Int32Array {
  const t = new Int32Array(inst.inputIds.length);
  t.fill(1, inst.lenA + 2);
  return t;
}

/** Element width of packed token arrays: uint16 when every id fits, else int32. */
export function tokenWidthFor(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

function writePacked(buf: Buffer, pos: number, a: Int32Array, width: number): number {
  if (width === 2) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      buf[pos++] = v & 0xff;
      buf[pos++] = (v >>> 8) & 0xff;
    }
  } else {
    for (let i = 0; i < a.length; i++) {
      buf.writeInt32LE(a[i], pos);
      pos += 4;
    }
  }
  return pos;
}

/** Bytes of the framed record of `inst` (what encodeRecordInto writes). */
function recordSize(inst: Instance, width: 2 | 4): number {
  return recordLayout(inst, width, Buffer.byteLength(inst.docA, 'utf8'), Buffer.byteLength(inst.docB, 'utf8')).total;
}

function recordLayout(inst: Instance, width: number, docALen: number, docBLen: number): { n: number; recLen: number; total: number } {
  const idsLen = inst.inputIds.length * width;
  const posLen = inst.maskedPositions.length * 2;
  const mIdsLen = inst.maskedIds.length * width;
  let n = 1 + varintSize(idsLen) + idsLen;
  n += 1 + varintSize(width);
  n += 1 + varintSize(inst.lenA);
  if (posLen > 0) n += 1 + varintSize(posLen) + posLen + 1 + varintSize(mIdsLen) + mIdsLen;
  n += 1 + varintSize(inst.drpLabel);
  n += 1 + varintSize(docALen) + docALen;
  n += 1 + varintSize(docBLen) + docBLen;
  n += 1 + varintSize(inst.segA);
  n += 1 + varintSize(inst.segB);
  const recLen = 5 + 1 + varintSize(n) + n;
  return { n, recLen, total: varintSize(recLen) + recLen };
}

/**
 * Encode one framed record: varint(len(Record)) + Record{crc32c, instance}. `width` is the token width.
 * Values must be in range: ids < 2^16 when width is 2, positions < 2^16.
 */
export function encodeRecord(inst: Instance, width: 2 | 4): Buffer {
  const out = Buffer.allocUnsafe(recordSize(inst, width));
  encodeRecordInto(inst, width, out, 0);
  return out;
}

/** encodeRecord into out[at, ...) (it must have recordSize() bytes there); returns the end. */
function encodeRecordInto(inst: Instance, width: 2 | 4, out: Buffer, at: number): number {
  const docALen = Buffer.byteLength(inst.docA, 'utf8');
  const docBLen = Buffer.byteLength(inst.docB, 'utf8');
  const { n, recLen, total } = recordLayout(inst, width, docALen, docBLen);
  if (at + total > out.length) throw new RangeError(`internal: record of ${total} bytes does not fit at ${at} of ${out.length}`);
  let p = writeVarint(out, at, recLen);
  out[p++] = 0x0d; // Record.crc32c, fixed32
  const crcPos = p;
  p += 4;
  out[p++] = 0x12; // Record.instance, bytes
  p = writeVarint(out, p, n);
  const start = p;
  out[p++] = 0x0a;
  p = writeVarint(out, p, inst.inputIds.length * width);
  p = writePacked(out, p, inst.inputIds, width);
  out[p++] = 0x10;
  p = writeVarint(out, p, width);
  out[p++] = 0x18;
  p = writeVarint(out, p, inst.lenA);
  if (inst.maskedPositions.length > 0) {
    out[p++] = 0x22;
    p = writeVarint(out, p, inst.maskedPositions.length * 2);
    p = writePacked(out, p, inst.maskedPositions, 2);
    out[p++] = 0x2a;
    p = writeVarint(out, p, inst.maskedIds.length * width);
    p = writePacked(out, p, inst.maskedIds, width);
  }
  out[p++] = 0x30;
  p = writeVarint(out, p, inst.drpLabel);
  out[p++] = 0x3a;
  p = writeVarint(out, p, docALen);
  p += out.write(inst.docA, p, docALen, 'utf8');
  out[p++] = 0x42;
  p = writeVarint(out, p, docBLen);
  p += out.write(inst.docB, p, docBLen, 'utf8');
  out[p++] = 0x48;
  p = writeVarint(out, p, inst.segA);
  out[p++] = 0x50;
  p = writeVarint(out, p, inst.segB);
  if (p !== at + total) throw new Error(`internal: record size mismatch (${p - at} != ${total})`);
  out.writeUInt32LE(crc32c(out, start, p), crcPos);
  return p;
}

/** A decoding problem; the caller adds the shard file and record offset. */
export class RecordError extends Error {}

// Decoding cursor: one shared object instead of one allocation per record (decoding is synchronous).
interface Cursor {
  pos: number;
}
const CUR: Cursor = { pos: 0 };
const CUR2: Cursor = { pos: 0 };

function readVarint(buf: Uint8Array, c: Cursor, end: number): number {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (c.pos >= end) throw new RecordError('truncated varint');
    const b = buf[c.pos++];
    result += (b & 0x7f) * mul;
    if (b < 0x80) return result;
    mul *= 128;
  }
  throw new RecordError('varint too long');
}

const EMPTY = new Int32Array(0);

function unpack(buf: Buffer, start: number, len: number, width: number, what: string): Int32Array {
  if (len === 0) return EMPTY;
  if (len % width !== 0) throw new RecordError(`${what}: ${len} bytes is not a multiple of width ${width}`);
  const n = len / width;
  const a = new Int32Array(n);
  if (width === 2) for (let i = 0, p = start; i < n; i++, p += 2) a[i] = buf[p] | (buf[p + 1] << 8);
  else for (let i = 0, p = start; i < n; i++, p += 4) a[i] = buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24);
  return a;
}

// Consecutive records mostly share document ids: reuse the last decoded string when the bytes match,
// which saves an allocation per record.
const lastIdBytes = Buffer.alloc(256);
let lastIdLen = -1;
let lastId = '';

function docId(buf: Buffer, start: number, len: number): string {
  if (len === lastIdLen) {
    let same = true;
    for (let k = 0; k < len; k++)
      if (buf[start + k] !== lastIdBytes[k]) {
        same = false;
        break;
      }
    if (same) return lastId;
  }
  const s = buf.toString('utf8', start, Math.min(buf.length, start + len));
  if (len <= lastIdBytes.length) {
    buf.copy(lastIdBytes, 0, start, start + len);
    lastIdLen = len;
    lastId = s;
  }
  return s;
}

/** Read the framing at `offset`: returns the Record's [start, end) or throws RecordError. */
export function recordBounds(buf: Buffer, offset: number): { start: number; end: number } {
  const c = CUR2;
  c.pos = offset;
  const len = readVarint(buf, c, buf.length);
  if (c.pos + len > buf.length) throw new RecordError(`record length ${len} runs past the end of the file (${buf.length} bytes)`);
  return { start: c.pos, end: c.pos + len };
}

/**
 * Decode the framed record at `offset` in `buf`, verifying its CRC-32C. `verify` false skips the check.
 * Throws RecordError describing the fault.
 */
export function decodeRecord(buf: Buffer, offset: number, verify = true): Instance {
  const c = CUR;
  c.pos = offset;
  const len = readVarint(buf, c, buf.length);
  if (c.pos + len > buf.length) throw new RecordError(`record length ${len} runs past the end of the file (${buf.length} bytes)`);
  const end = c.pos + len;
  let crc = -1;
  let iStart = -1;
  let iEnd = -1;
  while (c.pos < end) {
    const tag = readVarint(buf, c, end);
    if (tag === 0x0d) {
      if (c.pos + 4 > end) throw new RecordError('truncated crc32c');
      crc = buf.readUInt32LE(c.pos);
      c.pos += 4;
    } else if (tag === 0x12) {
      const l = readVarint(buf, c, end);
      if (c.pos + l > end) throw new RecordError('instance bytes run past the record');
      iStart = c.pos;
      iEnd = c.pos + l;
      c.pos += l;
    } else skipField(buf, c, end, tag);
  }
  if (crc < 0) throw new RecordError('record has no crc32c field');
  if (iStart < 0) throw new RecordError('record has no instance field');
  if (verify) {
    const actual = crc32c(buf, iStart, iEnd);
    if (actual !== crc)
      throw new RecordError(`CRC-32C mismatch: stored 0x${crc.toString(16).padStart(8, '0')}, computed 0x${actual.toString(16).padStart(8, '0')}`);
  }
  return decodeInstance(buf, iStart, iEnd);
}

function skipField(buf: Uint8Array, c: Cursor, end: number, tag: number): void {
  const wt = tag & 7;
  if (wt === 0) readVarint(buf, c, end);
  else if (wt === 1) c.pos += 8;
  else if (wt === 2) c.pos += readVarint(buf, c, end);
  else if (wt === 5) c.pos += 4;
  else throw new RecordError(`unsupported wire type ${wt} (tag ${tag})`);
  if (c.pos > end) throw new RecordError(`field with tag ${tag} runs past the end`);
}

export function decodeInstance(buf: Buffer, start: number, end: number): Instance {
  const c = CUR2;
  c.pos = start;
  let width = 0;
  let idsS = 0, idsL = 0, posS = 0, posL = 0, mS = 0, mL = 0;
  let lenA = 0, label = 0, segA = 0, segB = 0;
  let docA = '', docB = '';
  while (c.pos < end) {
    const tag = readVarint(buf, c, end);
    switch (tag) {
      case 0x0a: idsL = readVarint(buf, c, end); idsS = c.pos; c.pos += idsL; break;
      case 0x10: width = readVarint(buf, c, end); break;
      case 0x18: lenA = readVarint(buf, c, end); break;
      case 0x22: posL = readVarint(buf, c, end); posS = c.pos; c.pos += posL; break;
      case 0x2a: mL = readVarint(buf, c, end); mS = c.pos; c.pos += mL; break;
      case 0x30: label = readVarint(buf, c, end); break;
      case 0x3a: { const l = readVarint(buf, c, end); docA = docId(buf, c.pos, l); c.pos += l; break; }
      case 0x42: { const l = readVarint(buf, c, end); docB = docId(buf, c.pos, l); c.pos += l; break; }
      case 0x48: segA = readVarint(buf, c, end); break;
      case 0x50: segB = readVarint(buf, c, end); break;
      default: skipField(buf, c, end, tag);
    }
    if (c.pos > end) throw new RecordError(`field with tag ${tag} runs past the end of the instance`);
  }
  if (width !== 2 && width !== 4) throw new RecordError(`token_width is ${width}, expected 2 or 4`);
  if (label > 2) throw new RecordError(`drp_label ${label} is not 0, 1 or 2`);
  const inputIds = unpack(buf, idsS, idsL, width, 'input_ids');
  if (lenA + 3 > inputIds.length) throw new RecordError(`len_a ${lenA} does not fit ${inputIds.length} tokens`);
  const maskedPositions = unpack(buf, posS, posL, 2, 'masked_positions');
  const maskedIds = unpack(buf, mS, mL, width, 'masked_ids');
  if (maskedIds.length !== maskedPositions.length)
    throw new RecordError(`masked_ids has ${maskedIds.length} entries but masked_positions ${maskedPositions.length}`);
  for (let i = 0; i < maskedPositions.length; i++)
    if (maskedPositions[i] >= inputIds.length) throw new RecordError(`masked position ${maskedPositions[i]} is past ${inputIds.length} tokens`);
  return { inputIds, lenA, maskedPositions, maskedIds, drpLabel: label, docA, docB, segA, segB };
}
