// Host-memory tensors as read from / written to checkpoint files.
import { endianness } from 'node:os';

export type HostDType = 'F32' | 'F16' | 'BF16' | 'I64' | 'F64' | 'I32';
export type HostData = Float32Array | BigInt64Array | Int32Array | Float64Array | Uint16Array;

export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  /** Row-major, contiguous. F16 and BF16 hold the raw 16-bit patterns. */
  data: HostData;
}

export const DTYPE_SIZE: Readonly<Record<HostDType, number>> = Object.freeze({ F32: 4, F16: 2, BF16: 2, I64: 8, F64: 8, I32: 4 });

export function isHostDType(s: string): s is HostDType {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

// All readers reinterpret little-endian file bytes in place.
if (endianness() !== 'LE') throw new Error('linkbert checkpoint I/O requires a little-endian host');

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Typed-array view over `bytes` (which must start at an aligned offset: callers pass freshly
 * allocated buffers) for `dtype`.
 */
export function viewAs(dtype: HostDType, bytes: Uint8Array): HostData {
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength % size !== 0) throw new Error(`byte length ${bytes.byteLength} is not a multiple of ${dtype} size ${size}`);
  if (bytes.byteOffset % size !== 0) bytes = bytes.slice(); // copy to an aligned buffer
  const n = bytes.byteLength / size;
  switch (dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'F64':
      return new Float64Array(bytes.buffer, bytes.byteOffset, n);
    case 'I32':
      return new Int32Array(bytes.buffer, bytes.byteOffset, n);
    case 'I64':
      return new BigInt64Array(bytes.buffer, bytes.byteOffset, n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  }
}

export function allocData(dtype: HostDType, n: number): HostData {
  switch (dtype) {
    case 'F32':
      return new Float32Array(n);
    case 'F64':
      return new Float64Array(n);
    case 'I32':
      return new Int32Array(n);
    case 'I64':
      return new BigInt64Array(n);
    case 'F16':
    case 'BF16':
      return new Uint16Array(n);
  }
}

export function bytesOf(data: HostData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// IEEE half → float: every half value is exactly representable in float32.
const HALF_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    let v: number;
    if (e === 0) v = s * m * 2 ** -24;
    else if (e === 31) v = m === 0 ? s * Infinity : NaN;
    else v = s * (1 + m / 1024) * 2 ** (e - 15);
    t[h] = v;
  }
  return t;
})();

export function halfToFloat(h: number): number {
  return HALF_TABLE[h & 0xffff];
}

/**
 * Converts a tensor to float32: F16/BF16 exactly, F64 rounded, integers exactly (values beyond
 * ±2^24 are refused since float32 cannot hold them). F32 data is returned as is (no copy).
 */
export function toFloat32(t: HostTensor, name = 'tensor'): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F64':
      return Float32Array.from(t.data as Float64Array);
    case 'F16': {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = HALF_TABLE[src[i]];
      return out;
    }
    case 'BF16': {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
      return out;
    }
    case 'I32':
    case 'I64': {
      const src = t.data as Int32Array | BigInt64Array;
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        const v = Number(src[i]);
        if (Math.abs(v) > 2 ** 24) throw new Error(`${name}: ${t.dtype} value ${src[i]} at index ${i} is not exactly representable as float32`);
        out[i] = v;
      }
      return out;
    }
  }
}

/** Integer tensor (I32/I64) → Int32Array; I64 values outside the int32 range are refused. */
export function toInt32(t: HostTensor, name = 'tensor'): Int32Array {
  if (t.dtype === 'I32') return t.data as Int32Array;
  if (t.dtype !== 'I64') throw new Error(`${name}: expected an integer tensor (I32/I64), got ${t.dtype}`);
  const src = t.data as BigInt64Array;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (v < -2147483648n || v > 2147483647n) throw new Error(`${name}: I64 value ${v} at index ${i} does not fit in int32`);
    out[i] = Number(v);
  }
  return out;
}

export function describeTensor(t: HostTensor): string {
  return `${t.dtype}[${t.shape.join(', ')}]`;
}
