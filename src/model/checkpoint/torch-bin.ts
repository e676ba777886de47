// PyTorch `torch.save` checkpoints (zip format, torch >= 1.6) read without Python:
// <dir>/data.pkl is a pickle whose tensors reference storages <dir>/data/<key> through
// persistent ids ('storage', StorageType, key, location, numel); tensors are rebuilt by
// torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...).
import { closeSync, openSync, readSync } from 'node:fs';
import { CheckpointFormatError } from './safetensors.js';
import { DTYPE_SIZE, HostData, HostDType, HostTensor, allocData, numelOf, viewAs } from './tensor.js';
import { PyCallable, PyTuple, describe, pyCallable, unpickle } from './pickle.js';
import { ZipReader } from './zip.js';

interface Storage {
  key: string;
  dtype: HostDType;
  data: HostData;
}

class StorageType {
  constructor(
    readonly pyName: string,
    readonly dtype: HostDType,
  ) {}
}

const STORAGE_DTYPES: Record<string, HostDType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  DoubleStorage: 'F64',
  IntStorage: 'I32',
};

/** A tensor marker for torch.Tensor / Parameter classes (only ever passed to _rebuild_from_type_v2). */
const TENSOR_CLASS = Symbol('torch.Tensor class');

export interface TorchBinFile {
  tensors: Map<string, HostTensor>;
  /** Non-tensor entries that were not loaded ("key: type"), e.g. a stray step counter. */
  skipped: string[];
  /** Archive folder name inside the zip (torch uses the file stem). */
  archiveName: string;
}

function isTensor(v: unknown): v is HostTensor {
  return typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v && !(v instanceof Map);
}

function asIntList(v: unknown, what: string, fail: (m: string) => never): number[] {
  if (!(v instanceof PyTuple) && !Array.isArray(v)) fail(`${what} must be a tuple of ints, got ${describe(v)}`);
  const items = v instanceof PyTuple ? v.items : (v as unknown[]);
  return items.map((x) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) fail(`${what} must hold non-negative ints, got ${String(x)}`);
    return x as number;
  });
}

/** Gathers a (possibly non-contiguous) strided view of a storage into a contiguous tensor. */
function rebuildTensor(storage: Storage, offset: number, size: number[], stride: number[], fail: (m: string) => never): HostTensor {
  if (size.length !== stride.length) fail(`tensor in storage "${storage.key}": size has ${size.length} dims but stride has ${stride.length}`);
  const n = numelOf(size);
  const len = storage.data.length;
  if (n > 0) {
    let last = offset;
    for (let d = 0; d < size.length; d++) last += (size[d] - 1) * stride[d];
    if (last >= len) {
      fail(`tensor [${size.join(', ')}] with stride [${stride.join(', ')}] and offset ${offset} reads element ${last} of storage "${storage.key}", which has ${len}`);
    }
  }
  let contiguous = true;
  for (let d = size.length - 1, expect = 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expect) contiguous = false;
    expect *= size[d];
  }
  if (contiguous) {
    // Share the storage's memory when the view covers all of it (the common case), else copy the window.
    const data = offset === 0 && n === len ? storage.data : storage.data.slice(offset, offset + n);
    return { dtype: storage.dtype, shape: size, data };
  }
  const out = allocData(storage.dtype, n);
  const src = storage.data as unknown as { [i: number]: number | bigint };
  const dst = out as unknown as { [i: number]: number | bigint };
  const idx = new Array<number>(size.length).fill(0);
  let s = offset;
  for (let i = 0; i < n; i++) {
    dst[i] = src[s];
    // odometer increment over the dims, innermost fastest
    for (let d = size.length - 1; d >= 0; d--) {
      idx[d]++;
      s += stride[d];
      if (idx[d] < size[d]) break;
      s -= stride[d] * size[d];
      idx[d] = 0;
    }
  }
  return { dtype: storage.dtype, shape: size, data: out };
}

export function readTorchBin(file: string): TorchBinFile {
  const fd = openSync(file, 'r');
  const magic = Buffer.alloc(4);
  try {
    readSync(fd, magic, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (magic.readUInt32LE(0) !== 0x04034b50) {
    if (magic[0] === 0x80) {
      throw new CheckpointFormatError(`${file}: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with torch >= 1.6 or convert it to safetensors`);
    }
    throw new CheckpointFormatError(`${file}: not a PyTorch zip checkpoint (offset 0: expected zip signature PK\\x03\\x04, got 0x${magic.toString('hex')})`);
  }
  const zip = new ZipReader(file);
  try {
    const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) {
      throw new CheckpointFormatError(`${file}: expected exactly one <folder>/data.pkl in the archive, found ${pkls.length ? pkls.join(', ') : 'none'}`);
    }
    const prefix = pkls[0].slice(0, -'data.pkl'.length);
    const byteorderName = `${prefix}byteorder`;
    if (zip.entries.has(byteorderName)) {
      const bo = new TextDecoder().decode(zip.readEntry(byteorderName)).trim();
      if (bo !== 'little') throw new CheckpointFormatError(`${file}: storages are ${bo}-endian; only little-endian checkpoints are supported`);
    }
    const source = `${file}: ${pkls[0]}`;
    const storages = new Map<string, Storage>();
    let failOffset = 0;
    const fail = (m: string): never => {
      throw new CheckpointFormatError(`${source} at byte offset ${failOffset}: ${m}`);
    };

    const persistentLoad = (pid: unknown, offset: number): Storage => {
      failOffset = offset;
      if (!(pid instanceof PyTuple) || pid.items.length < 5 || pid.items[0] !== 'storage') {
        fail(`unsupported persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`);
      }
      const [, type, key, , numelRaw] = (pid as PyTuple).items;
      if (!(type instanceof StorageType)) fail(`persistent id storage type is ${describe(type)}, not a torch storage class`);
      if (typeof key !== 'string') fail(`persistent id storage key is ${describe(key)}, not a string`);
      const st = type as StorageType;
      const cached = storages.get(key as string);
      if (cached) return cached;
      const entry = `${prefix}data/${key as string}`;
      if (!zip.entries.has(entry)) fail(`storage "${key as string}" (${st.pyName}) has no archive entry ${entry}`);
      const bytes = zip.readEntry(entry);
      const numel = typeof numelRaw === 'number' ? numelRaw : Number(numelRaw);
      const want = numel * DTYPE_SIZE[st.dtype];
      if (bytes.byteLength !== want) {
        fail(`storage "${key as string}" (${st.pyName}, ${numel} elements) should be ${want} bytes but ${entry} has ${bytes.byteLength}`);
      }
      const s: Storage = { key: key as string, dtype: st.dtype, data: viewAs(st.dtype, bytes) };
      storages.set(key as string, s);
      return s;
    };

    const rebuildV2 = (args: unknown[], offset: number): HostTensor => {
      failOffset = offset;
      if (args.length < 4) fail(`_rebuild_tensor expects (storage, offset, size, stride, ...), got ${args.length} args`);
      const [storage, off, size, stride] = args;
      if (!storage || typeof storage !== 'object' || !('key' in storage)) fail(`tensor storage is ${describe(storage)}`);
      if (typeof off !== 'number' || !Number.isInteger(off) || off < 0) fail(`tensor storage offset is ${String(off)}`);
      return rebuildTensor(storage as Storage, off as number, asIntList(size, 'tensor size', fail), asIntList(stride, 'tensor stride', fail), fail);
    };

    const findClass = (module: string, name: string, offset: number): PyCallable | undefined => {
      failOffset = offset;
      const full = `${module}.${name}`;
      if (module === 'torch' && name.endsWith('Storage')) {
        const dt = STORAGE_DTYPES[name];
        if (!dt) fail(`unsupported tensor storage type torch.${name} (supported: ${Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`).join(', ')})`);
        return Object.assign(new StorageType(full, dt), { call: () => fail(`cannot construct ${full}`) });
      }
      switch (full) {
        case 'collections.OrderedDict':
        case 'builtins.dict':
        case '__builtin__.dict':
          return pyCallable(full, (args, off) => {
            failOffset = off;
            const m = new Map<unknown, unknown>();
            if (args.length === 0) return m;
            const init = args[0];
            const pairs = init instanceof PyTuple ? init.items : init;
            if (!Array.isArray(pairs)) fail(`${full}(${describe(init)}) is not supported`);
            for (const p of pairs as unknown[]) {
              const kv = p instanceof PyTuple ? p.items : p;
              if (!Array.isArray(kv) || kv.length !== 2) fail(`${full}: initialiser item is not a pair`);
              m.set((kv as unknown[])[0], (kv as unknown[])[1]);
            }
            return m;
          });
        case 'torch._utils._rebuild_tensor_v2':
        case 'torch._utils._rebuild_tensor':
          return pyCallable(full, rebuildV2);
        case 'torch._utils._rebuild_parameter':
        case 'torch._utils._rebuild_parameter_with_state':
          return pyCallable(full, (args, off) => {
            failOffset = off;
            if (!isTensor(args[0])) fail(`${full}: data is ${describe(args[0])}, not a tensor`);
            return args[0];
          });
        case 'torch._tensor._rebuild_from_type_v2':
          // (func, new_type, args, state): rebuild with func; the subclass (Parameter) is irrelevant here.
          return pyCallable(full, (args, off) => {
            failOffset = off;
            const [fn, , fargs] = args;
            if (!fn || typeof (fn as PyCallable).call !== 'function' || !(fargs instanceof PyTuple)) fail(`${full}: unexpected arguments`);
            return (fn as PyCallable).call((fargs as PyTuple).items, off);
          });
        case 'torch.Tensor':
        case 'torch.nn.parameter.Parameter':
          return Object.assign(pyCallable(full, () => fail(`constructing ${full} directly is not supported`)), { [TENSOR_CLASS]: true });
        case '_codecs.encode':
          // Protocol-2 pickles encode bytes as _codecs.encode(text, 'latin1').
          return pyCallable(full, (args, off) => {
            failOffset = off;
            if (typeof args[0] !== 'string') fail('_codecs.encode of a non-string');
            return Uint8Array.from(args[0] as string, (c) => c.charCodeAt(0) & 0xff);
          });
        default:
          return undefined;
      }
    };

    let root = unpickle(zip.readEntry(pkls[0]), { source, findClass, persistentLoad });
    const tensors = new Map<string, HostTensor>();
    const skipped: string[] = [];
    // Training checkpoints often wrap the weights: {'state_dict': {...}, 'epoch': ...}.
    if (root instanceof Map && ![...root.values()].some(isTensor)) {
      const wrapper = ['state_dict', 'model', 'model_state_dict'].find((k) => root instanceof Map && root.get(k) instanceof Map);
      if (wrapper) {
        for (const [k, v] of root) if (k !== wrapper) skipped.push(`${String(k)}: ${describe(v)} (outside '${wrapper}')`);
        root = root.get(wrapper);
      }
    }
    const walk = (v: unknown, key: string): void => {
      if (isTensor(v)) {
        tensors.set(key, v);
      } else if (v instanceof Map) {
        for (const [k, x] of v) {
          if (typeof k !== 'string') {
            skipped.push(`${key ? `${key}.` : ''}${String(k)}: non-string key`);
            continue;
          }
          walk(x, key ? `${key}.${k}` : k);
        }
      } else {
        skipped.push(`${key || '(root)'}: ${describe(v)}`);
      }
    };
    walk(root, '');
    return { tensors, skipped, archiveName: prefix.slice(0, -1) };
  } finally {
    zip.close();
  }
}
