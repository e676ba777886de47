// fuzz.test.ts: the native boundary never crashes on bad input. Thousands of random bad calls to
// run / alloc / view / setData / toArray / dispose (wrong types, disposed ids, negative / huge / NaN /
// fractional dims, overflowing sizes, wrong dtypes and devices, missing fields, undersized tensors,
// out-of-range labels / ids / row indices) must each throw a TypeError or RangeError (or an Error
// naming CUDA, for cuda on a CPU-only build). Every run() mutation starts from a template call that is
// checked to be valid first, so each bad call has exactly the one fault that was injected. At the end
// the process is alive, no tensor leaked, and a valid op still returns the right numbers.
import test from 'ava';

import { loadNative, type DType } from '../src/native.js';
import { Rng } from './ops-table.js';

const addon = loadNative();
const cudaBuild = addon.info().cuda_compiled && addon.info().cuda_devices > 0;

type Tpl = {
  op: string;
  pass: 'forward' | 'backward';
  tensors: Record<string, { shape: number[]; dtype: DType; data?: Float32Array | Int32Array }>;
  ints: Record<string, number>; // every integer argument (dims, strides, n, step)
  floats?: Record<string, number>;
  flags?: Record<string, boolean | string>;
  noDtypeSwap?: string[]; // tensors for which an i32 <-> f32 swap can be valid (fill's x)
  bad?: { tensor: string; data: Int32Array }[]; // data-dependent faults
};

const f = (shape: number[], data?: Float32Array) => ({ shape, dtype: 'f32' as DType, data });
const b = (shape: number[]) => ({ shape, dtype: 'bf16' as DType });
const i = (shape: number[], data?: Int32Array) => ({ shape, dtype: 'i32' as DType, data });

// Small valid calls: every tensor holds exactly the extent the op touches, and n is explicit, so
// shrinking any tensor (or growing any dim) is a fault.
const templates: Tpl[] = [
  { op: 'matmul', pass: 'forward', tensors: { a: f([6]), b: f([12]), c: f([8]), bias: f([4]) }, ints: { M: 2, N: 4, K: 3 }, flags: { trans_b: true, epilogue: 'bias' } },
  { op: 'bias_backward', pass: 'forward', tensors: { dout: f([6]), dbias: f([3]) }, ints: { M: 2, N: 3 } },
  {
    op: 'attention', pass: 'forward',
    tensors: { q: f([24]), k: f([24]), v: f([24]), out: f([24]), lse: f([6]), key_mask: i([3], Int32Array.from([1, 1, 0])) },
    ints: { B: 1, T: 3, NH: 2, D: 4 }, floats: { scale: 0.5, dropout_p: 0.1 },
  },
  {
    op: 'attention', pass: 'backward',
    tensors: { q: f([24]), k: f([24]), v: f([24]), out: f([24]), lse: f([6]), dout: f([24]), dq: f([24]), dk: f([24]), dv: f([24]), delta: f([6]) },
    ints: { B: 1, T: 3, NH: 2, D: 4 },
  },
  {
    op: 'layernorm', pass: 'forward',
    tensors: { x: f([6]), residual: f([6]), sum: f([6]), out: f([6]), mean: f([2]), rstd: f([2]), gamma: f([3]), beta: f([3]) },
    ints: { rows: 2, cols: 3 }, floats: { eps: 1e-5 },
  },
  {
    op: 'layernorm', pass: 'backward',
    tensors: { x: f([6]), mean: f([2]), rstd: f([2]), gamma: f([3]), dout: f([6]), dx: f([6]), dgamma: f([3]), dbeta: f([3]) },
    ints: { rows: 2, cols: 3 },
  },
  { op: 'gelu', pass: 'forward', tensors: { x: f([5]), out: f([5]) }, ints: { n: 5 } },
  { op: 'gelu', pass: 'backward', tensors: { x: f([5]), dout: f([5]), dx: f([5]) }, ints: { n: 5 } },
  { op: 'tanh', pass: 'backward', tensors: { out: f([5]), dout: f([5]), dx: f([5]) }, ints: { n: 5 } },
  {
    op: 'softmax_xent', pass: 'forward',
    tensors: { logits: f([8]), labels: i([2], Int32Array.from([1, -1])), losses: f([2]), correct: i([2]), dlogits: f([8]) },
    ints: { N: 2, V: 4 }, floats: { grad_scale: 0.5 },
    bad: [{ tensor: 'labels', data: Int32Array.from([4, 0]) }, { tensor: 'labels', data: Int32Array.from([0, -2]) }],
  },
  {
    op: 'embedding', pass: 'forward',
    tensors: { ids: i([4], Int32Array.from([0, 1, 2, 1])), type_ids: i([4], Int32Array.from([0, 1, 0, 1])), wte: f([6]), wpe: f([4]), wtt: f([4]), out: f([8]) },
    ints: { B: 2, T: 2, C: 2, V: 3, max_pos: 2, type_vocab: 2 },
    bad: [{ tensor: 'ids', data: Int32Array.from([0, 3, 0, 0]) }, { tensor: 'ids', data: Int32Array.from([-1, 0, 0, 0]) }, { tensor: 'type_ids', data: Int32Array.from([0, 0, 2, 0]) }],
  },
  {
    op: 'embedding', pass: 'backward',
    tensors: { ids: i([4], Int32Array.from([0, 1, 2, 1])), dout: f([8]), dwte: f([6]), dwpe: f([4]), dwtt: f([4]) },
    ints: { B: 2, T: 2, C: 2, V: 3, max_pos: 2, type_vocab: 2 },
    bad: [{ tensor: 'ids', data: Int32Array.from([0, 1, 2, 7]) }],
  },
  {
    op: 'gather_rows', pass: 'forward', tensors: { src: f([6]), dst: f([4]), index: i([2], Int32Array.from([2, 0])) }, ints: { M: 2, C: 2, n_src: 3 },
    bad: [{ tensor: 'index', data: Int32Array.from([3, 0]) }],
  },
  {
    op: 'scatter_add_rows', pass: 'forward', tensors: { src: f([4]), dst: f([6]), index: i([2], Int32Array.from([2, 2])) }, ints: { M: 2, C: 2, n_dst: 3 },
    bad: [{ tensor: 'index', data: Int32Array.from([0, -5]) }],
  },
  { op: 'dropout', pass: 'forward', tensors: { x: f([7]), out: f([7]) }, ints: { n: 7 }, floats: { p: 0.3 } },
  { op: 'dropout', pass: 'backward', tensors: { dout: f([7]), dx: f([7]) }, ints: { n: 7 }, floats: { p: 0.3 } },
  {
    op: 'adamw', pass: 'forward', tensors: { param: f([5]), grad: f([5]), m: f([5]), v: f([5]), param_lowp: b([5]) }, ints: { n: 5, step: 1 },
    floats: { lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.01, grad_scale: 1 },
  },
  { op: 'grad_norm', pass: 'forward', tensors: { x: f([9]), out: f([1]) }, ints: { n: 9 } },
  { op: 'axpby', pass: 'forward', tensors: { a: f([4]), b: f([4]), out: f([4]) }, ints: { n: 4 }, floats: { alpha: 2, beta: 3 } },
  { op: 'scale', pass: 'forward', tensors: { x: f([4]) }, ints: { n: 4 }, floats: { s: 2 } },
  { op: 'fill', pass: 'forward', tensors: { x: f([4]) }, ints: { n: 4 }, floats: { value: 2 }, noDtypeSwap: ['x'] },
  { op: 'copy', pass: 'forward', tensors: { src: f([4]), dst: b([4]) }, ints: { n: 4 } },
];

type Outcome = 'type' | 'range' | 'cuda' | 'ok' | string;
function classify(fn: () => unknown): Outcome {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (e instanceof TypeError) return 'type';
    if (e instanceof RangeError) return 'range';
    if (e instanceof Error && /CUDA/.test(e.message)) return 'cuda';
    return `unexpected ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
  }
}

const junk: unknown[] = [undefined, null, NaN, -1, 0.5, 1e300, -Infinity, 'x', '', true, {}, [], [1], { id: 'x' }, { id: -3 }, Symbol('s'), 2 ** 53, () => 1, 10n];
const badDims: unknown[] = [-1, NaN, 1.5, 'abc', 2 ** 31, 1e20, Infinity, {}, true, [3]];

test('fuzz: >= 1000 bad calls throw TypeError / RangeError and the process survives', (t) => {
  const r = new Rng(4242);
  const pick = <T>(a: readonly T[]): T => a[r.int(0, a.length)]!;
  const liveBefore = addon.stats().live_tensors;
  const disposed = addon.alloc([3], 'f32', 'cpu');
  addon.dispose(disposed);
  const counts = new Map<string, number>();
  const failures: string[] = [];
  let calls = 0;
  const expectBad = (what: string, fn: () => unknown): void => {
    calls++;
    const o = classify(fn);
    counts.set(o, (counts.get(o) ?? 0) + 1);
    if (o === 'ok' || o.startsWith('unexpected') || (o === 'cuda' && cudaBuild)) failures.push(`${what}: ${o}`);
  };

  // The templates must be valid as given, or the mutations below would prove nothing.
  const materialise = (tpl: Tpl) => {
    const ids: Record<string, number> = {};
    for (const [name, s] of Object.entries(tpl.tensors)) {
      ids[name] = addon.alloc(s.shape, s.dtype, 'cpu');
      if (s.data) addon.setData(ids[name]!, s.data);
    }
    return ids;
  };
  const argsOf = (tpl: Tpl, ids: Record<string, number>): Record<string, unknown> => ({ ...ids, ...tpl.ints, ...tpl.floats, ...tpl.flags });
  for (const tpl of templates) {
    const ids = materialise(tpl);
    t.is(classify(() => addon.run(tpl.op, tpl.pass, 'cpu', argsOf(tpl, ids))), 'ok', `template ${tpl.op} ${tpl.pass} is valid`);
    t.is(classify(() => addon.run(tpl.op, tpl.pass, 'ref', argsOf(tpl, ids))), 'ok', `template ${tpl.op} ${tpl.pass} is valid on ref`);
    for (const id of Object.values(ids)) addon.dispose(id);
  }

  const runMutation = (): void => {
    const tpl = pick(templates);
    const ids = materialise(tpl);
    const extra: number[] = [];
    try {
      const args = argsOf(tpl, ids);
      const tnames = Object.keys(tpl.tensors);
      const kinds = ['missing', 'disposed', 'junk', 'undersized', 'dtype', 'dim', 'float', 'backend', 'data', 'shape', 'device'] as const;
      const kind = pick(kinds);
      if (kind === 'device') {
        // a tensor on the wrong device for the backend (only a CUDA build with a device can make one)
        if (!cudaBuild) return runMutation();
        const name = pick(tnames);
        const s = tpl.tensors[name]!;
        const id = addon.alloc(s.shape, s.dtype, 'cuda');
        extra.push(id);
        args[name] = id;
        return expectBad(`${tpl.op}.${tpl.pass} device ${name}`, () => addon.run(tpl.op, tpl.pass, pick(['cpu', 'ref']), args));
      }
      let backend: string = pick(['cpu', 'ref']);
      let what = `${tpl.op}.${tpl.pass} ${kind}`;
      if (kind === 'missing' || kind === 'disposed' || kind === 'junk' || kind === 'undersized' || kind === 'dtype') {
        // only required tensors: every template tensor is required except these optional ones
        const optional = new Set(['bias', 'key_mask', 'residual', 'sum', 'correct', 'dlogits', 'type_ids', 'dwpe', 'dwtt', 'param_lowp', 'b']);
        const req = tnames.filter((n) => !optional.has(n) || kind === 'disposed' || kind === 'undersized' || kind === 'dtype');
        const name = pick(req);
        what += ` ${name}`;
        const s = tpl.tensors[name]!;
        if (kind === 'missing') delete args[name];
        else if (kind === 'disposed') args[name] = pick([disposed, { id: disposed }, 4294967295]);
        else if (kind === 'junk') args[name] = pick(junk.filter((j) => j !== undefined && j !== null));
        else if (kind === 'undersized') {
          const n = s.shape.reduce((x, y) => x * y, 1);
          if (n <= 1) return runMutation();
          const id = addon.alloc([r.int(0, n)], s.dtype, 'cpu');
          extra.push(id);
          args[name] = id;
        } else {
          if (tpl.noDtypeSwap?.includes(name)) return runMutation();
          const id = addon.alloc(s.shape, s.dtype === 'i32' ? 'f32' : 'i32', 'cpu');
          extra.push(id);
          args[name] = id;
        }
      } else if (kind === 'dim') {
        const name = pick(Object.keys(tpl.ints));
        args[name] = pick(badDims);
        what += ` ${name}=${String(args[name])}`;
      } else if (kind === 'float') {
        if (!tpl.floats) return runMutation();
        const name = pick(Object.keys(tpl.floats));
        const probability = name === 'p' || name === 'dropout_p' || name === 'beta1' || name === 'beta2';
        args[name] = probability ? pick([NaN, 'x', 1, 1.5, -0.1]) : pick([NaN, 'x', {}, true]);
        what += ` ${name}=${String(args[name])}`;
      } else if (kind === 'backend') {
        backend = pick(['cuda', 'gpu', '', 'CPU']);
        if (backend === 'cuda' && cudaBuild) backend = 'metal';
        what += ` '${backend}'`;
      } else if (kind === 'data') {
        if (!tpl.bad) return runMutation();
        const bad = pick(tpl.bad);
        addon.setData(ids[bad.tensor]!, bad.data);
        what += ` ${bad.tensor}=[${bad.data.join(',')}]`;
      } else {
        // the call itself is malformed
        const form = r.int(0, 5);
        what += ` form ${form}`;
        if (form === 0) return expectBad(what, () => addon.run(tpl.op, pick(['sideways', '', 'Forward']) as 'forward', 'cpu', args));
        if (form === 1) return expectBad(what, () => (addon.run as (...a: unknown[]) => void)(pick(junk), 'forward', 'cpu', args));
        if (form === 2) return expectBad(what, () => (addon.run as (...a: unknown[]) => void)(tpl.op, 'forward', 'cpu', pick([null, 5, 'args', undefined])));
        if (form === 3) return expectBad(what, () => addon.run(`${tpl.op}_x`, 'forward', 'cpu', args));
        return expectBad(what, () => (addon.run as (...a: unknown[]) => void)(tpl.op));
      }
      expectBad(what, () => addon.run(tpl.op, tpl.pass, backend as 'cpu', args));
    } finally {
      for (const id of [...Object.values(ids), ...extra]) addon.dispose(id);
    }
  };

  const live = addon.alloc([4, 8], 'f32', 'cpu');
  const liveI = addon.alloc([8], 'i32', 'cpu');
  const liveB = addon.alloc([5], 'bf16', 'cpu');
  const view = addon.view(liveB, 1, [2], 'bf16'); // starts 2 bytes in: an f32 view of it is misaligned
  const tensorApi = (): void => {
    const which = r.int(0, 5);
    if (which === 0) {
      const form = r.int(0, 7);
      const dims = [pick([-1, NaN, 1.5, Infinity, 2 ** 41, 'x', null]), 2];
      if (form === 0) return expectBad('alloc bad dim', () => addon.alloc(dims as number[], 'f32', 'cpu'));
      if (form === 1) return expectBad('alloc overflow', () => addon.alloc([2 ** 21, 2 ** 21], 'f32', 'cpu'));
      if (form === 2) return expectBad('alloc 9 dims', () => addon.alloc([1, 1, 1, 1, 1, 1, 1, 1, 1], 'f32', 'cpu'));
      if (form === 3) return expectBad('alloc dtype', () => addon.alloc([2], pick(['f16', 'F32', '', 3, null]) as DType, 'cpu'));
      if (form === 4) return expectBad('alloc device', () => addon.alloc([2], 'f32', pick(cudaBuild ? ['gpu', 'CPU', 1] : ['gpu', 'cuda', 1]) as 'cpu'));
      if (form === 5) return expectBad('alloc shape not array', () => addon.alloc(pick(['3', 3, {}, null]) as unknown as number[], 'f32', 'cpu'));
      return expectBad('alloc missing args', () => (addon.alloc as (...a: unknown[]) => number)([2]));
    }
    if (which === 1) {
      const form = r.int(0, 6);
      if (form === 0) return expectBad('view disposed base', () => addon.view(disposed, 0, [1], 'f32'));
      if (form === 1) return expectBad('view bad offset', () => addon.view(live, pick([-1, NaN, 0.5, 2 ** 50, 'x']) as number, [1], 'f32'));
      if (form === 2) return expectBad('view past the end', () => addon.view(live, r.int(0, 32), [r.int(33, 100)], 'f32'));
      if (form === 3) return expectBad('view misaligned', () => addon.view(view, 0, [1], 'f32'));
      if (form === 4) return expectBad('view bad dtype', () => addon.view(live, 0, [1], pick(['f64', 2]) as DType));
      return expectBad('view bad shape', () => addon.view(live, 0, pick([[-1], [NaN], 'x', [2 ** 30, 2 ** 30]]) as number[], 'f32'));
    }
    if (which === 2) {
      const form = r.int(0, 6);
      if (form === 0) return expectBad('setData disposed', () => addon.setData(disposed, new Float32Array(1)));
      if (form === 1) return expectBad('setData wrong array', () => addon.setData(pick([live, liveI, liveB]), pick<unknown>([new Float64Array(2), new Uint8Array(2), [1, 2]]) as Float32Array));
      if (form === 2) return expectBad('setData f32 into i32', () => addon.setData(liveI, new Float32Array(2)));
      if (form === 3) return expectBad('setData i32 into f32', () => addon.setData(pick([live, liveB]), new Int32Array(2)));
      if (form === 4) return expectBad('setData too long', () => addon.setData(live, new Float32Array(33)));
      return expectBad('setData bad offset', () => addon.setData(live, new Float32Array(2), pick([-1, NaN, 31, 2 ** 60, 0.5, 'x']) as number));
    }
    if (which === 3) return expectBad('toArray bad id', () => addon.toArray(pick([disposed, 0, -1, NaN, 'x', 2 ** 40, { id: disposed }, null]) as number));
    return expectBad('dispose bad id', () => addon.dispose(pick([0, -1, NaN, 'x', 2 ** 40, 1.5, null, {}]) as number));
  };

  while (calls < 1500) {
    if (r.next() < 0.7) runMutation();
    else tensorApi();
  }
  for (const id of [view, liveB, liveI, live]) addon.dispose(id);

  t.log(`${calls} bad calls: ${[...counts].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  t.deepEqual(failures.slice(0, 20), [], `${failures.length} bad calls did not throw TypeError/RangeError`);
  t.true(calls >= 1000);
  // disposing twice is not an error: it answers false
  t.false(addon.dispose(disposed));
  t.is(addon.stats().live_tensors, liveBefore, 'no tensor leaked');

  // still alive: a valid op gives the right answer
  const a = addon.alloc([3], 'f32', 'cpu');
  const c = addon.alloc([3], 'f32', 'cpu');
  addon.setData(a, Float32Array.from([1, -2, 3.5]));
  addon.setData(c, Float32Array.from([10, 20, 30]));
  addon.run('axpby', 'forward', 'cpu', { a, b: c, out: c, alpha: 2, beta: 0.5 });
  t.deepEqual(Array.from(addon.toArray(c)), [7, 6, 22]);
  addon.dispose(a);
  addon.dispose(c);
});

// Host storage of 4 MB and more is 2 MB aligned and advised for huge pages (native/tensor.cc): the same
// contract as small tensors: zeroed, every element addressable up to the last, views at any offset, and
// host_bytes back where it was after dispose.
test('host storage: large tensors are zeroed, whole, and accounted like small ones', (t) => {
  const before = addon.stats().host_bytes;
  for (const n of [(4 << 20) / 4 - 17, (4 << 20) / 4 + 1, (6 << 20) / 4 + 333]) {
    const id = addon.alloc([n], 'f32', 'cpu');
    const grown = addon.stats().host_bytes - before;
    t.true(grown >= 4 * n && grown <= 4 * n + 128, `n=${n}: host_bytes grew by ${grown}`);
    const z = addon.toArray(id) as Float32Array;
    t.is(z.length, n);
    t.true(z.every((v) => v === 0), `n=${n}: zeroed`);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (i % 1009) - 504;
    addon.setData(id, data);
    const tail = addon.view(id, n - 5, [5], 'f32');
    addon.run('scale', 'forward', 'cpu', { x: tail, s: 2 });
    const back = addon.toArray(id) as Float32Array;
    for (let i = 1; i <= 5; i++) data[n - i] *= 2;
    t.deepEqual(Array.from(back.subarray(0, 8)), Array.from(data.subarray(0, 8)));
    t.deepEqual(Array.from(back.subarray(n - 8)), Array.from(data.subarray(n - 8)));
    t.true(back.every((v, i) => v === data[i]), `n=${n}: every element round-trips`);
    addon.dispose(tail);
    addon.dispose(id);
    t.is(addon.stats().host_bytes, before, `n=${n}: host_bytes back after dispose`);
  }
});
