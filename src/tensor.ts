// tensor.ts: typed handles over native tensors. Data stays native; toArray() is the one way back.
// Temporary tensors: dispose() them, or create them inside tidy(() => ...) which disposes whatever
// was created in the scope and not returned. The Arena carves many tensors out of one allocation
// at init, so the training step allocates nothing.
import { loadNative, type DType, type Device, type NativeAddon } from './native.js';

export type { DType, Device } from './native.js';

type Data = Float32Array | Int32Array;

const scopes: Set<Tensor>[] = [];

export class Tensor {
  private disposed = false;
  private constructor(
    readonly id: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly device: Device,
    private readonly native: NativeAddon,
  ) {
    scopes[scopes.length - 1]?.add(this);
  }

  static wrap(native: NativeAddon, id: number, shape: readonly number[], dtype: DType, device: Device): Tensor {
    return new Tensor(id, Object.freeze([...shape]), dtype, device, native);
  }

  /** A zero-filled tensor. */
  static zeros(shape: readonly number[], dtype: DType = 'f32', device: Device = 'cpu', native = loadNative()): Tensor {
    return Tensor.wrap(native, native.alloc(shape, dtype, device), shape, dtype, device);
  }

  /** A tensor holding `data` (Float32Array for f32/bf16, Int32Array for i32). */
  static fromArray(data: Data | number[], shape: readonly number[], dtype?: DType, device: Device = 'cpu', native = loadNative()): Tensor {
    const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : 'f32');
    const arr = Array.isArray(data) ? (dt === 'i32' ? Int32Array.from(data) : Float32Array.from(data)) : data;
    const t = Tensor.zeros(shape, dt, device, native);
    t.setData(arr);
    return t;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Copies the data back to JS (waits for the device). bf16 comes back widened to f32. */
  toArray(): Data {
    return this.native.toArray(this.id);
  }
  /** A single scalar (the first element). */
  item(): number {
    return this.toArray()[0]!;
  }
  setData(data: Data, offsetElements = 0): void {
    this.native.setData(this.id, data, offsetElements);
  }
  /** A view sharing this tensor's storage, `offsetElements` elements of `dtype` from its start. */
  view(offsetElements: number, shape: readonly number[], dtype: DType = this.dtype): Tensor {
    return Tensor.wrap(this.native, this.native.view(this.id, offsetElements, shape, dtype), shape, dtype, this.device);
  }
  /** Same storage, another shape with the same element count. */
  reshape(shape: readonly number[]): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== this.numel) throw new RangeError(`reshape: [${shape}] has ${n} elements, tensor has ${this.numel}`);
    return this.view(0, shape);
  }
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.native.dispose(this.id);
    for (const s of scopes) s.delete(this);
  }
  /** Keeps this tensor alive past the enclosing tidy() scope. */
  keep(): this {
    scopes[scopes.length - 1]?.delete(this);
    return this;
  }
  toString(): string {
    return `Tensor(id=${this.id}, shape=[${this.shape.join(',')}], ${this.dtype}, ${this.device})`;
  }
}

/** Runs fn; disposes every tensor created inside it except those returned (a Tensor, or an array/object of them). */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keep = new Set<Tensor>();
  const collect = (v: unknown): void => {
    if (v instanceof Tensor) keep.add(v);
    else if (Array.isArray(v)) v.forEach(collect);
    else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach(collect);
  };
  collect(result!);
  for (const t of scope) if (!keep.has(t)) t.dispose();
  // returned tensors belong to the enclosing scope, if any
  for (const t of keep) scopes[scopes.length - 1]?.add(t);
  return result!;
}

/**
 * One allocation carved into named tensors: reserve everything first, then allocate() once.
 * Each region is aligned to 64 bytes. Regions reserved consecutively in one group are contiguous,
 * so a whole group (e.g. all parameters that take weight decay) can be addressed as one flat tensor.
 */
export class Arena {
  private regions: { name: string; shape: number[]; dtype: DType; offsetBytes: number; bytes: number }[] = [];
  private sizeBytes = 0;
  private base?: Tensor;
  private readonly tensors = new Map<string, Tensor>();
  constructor(readonly device: Device = 'cpu', private readonly native = loadNative()) {}

  private static bytesOf(dtype: DType): number {
    return dtype === 'bf16' ? 2 : 4;
  }

  /** Reserves a region; `align` false packs it right after the previous one (for flat groups). */
  reserve(name: string, shape: readonly number[], dtype: DType = 'f32', align = true): void {
    if (this.base) throw new Error(`arena: reserve('${name}') after allocate()`);
    if (this.regions.some((r) => r.name === name)) throw new Error(`arena: '${name}' reserved twice`);
    const el = Arena.bytesOf(dtype);
    let off = this.sizeBytes;
    off = align ? Math.ceil(off / 64) * 64 : Math.ceil(off / el) * el;
    const bytes = shape.reduce((a, b) => a * b, 1) * el;
    this.regions.push({ name, shape: [...shape], dtype, offsetBytes: off, bytes });
    this.sizeBytes = off + bytes;
  }

  /** Allocates the arena (zero-filled) and creates every reserved tensor. */
  allocate(): void {
    if (this.base) return;
    const words = Math.max(1, Math.ceil(this.sizeBytes / 4));
    this.base = Tensor.zeros([words], 'f32', this.device, this.native).keep();
    for (const r of this.regions) {
      const el = Arena.bytesOf(r.dtype);
      this.tensors.set(r.name, this.base.view(r.offsetBytes / el, r.shape, r.dtype).keep());
    }
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(this.base ? `arena: no region '${name}'` : `arena: get('${name}') before allocate()`);
    return t;
  }
  has(name: string): boolean {
    return this.regions.some((r) => r.name === name);
  }

  /** A flat view spanning regions first..last (which must be contiguous: reserved with align=false after first). */
  span(first: string, last: string, dtype: DType = 'f32'): Tensor {
    const a = this.regions.find((r) => r.name === first);
    const b = this.regions.find((r) => r.name === last);
    if (!a || !b || !this.base) throw new Error(`arena: span(${first}, ${last}) unknown region or not allocated`);
    const el = Arena.bytesOf(dtype);
    const n = (b.offsetBytes + b.bytes - a.offsetBytes) / el;
    return this.base.view(a.offsetBytes / el, [n], dtype).keep();
  }

  get bytes(): number {
    return this.sizeBytes;
  }
  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
    this.base?.dispose();
    this.base = undefined;
  }
}
