// ops-table.ts: the op table. Each row is one op call sequence (steps) over named tensors, the
// outputs to compare against the ref oracle, tolerances, and (for ops with a backward) a finite
// difference spec for checking ref's own gradients. test/ops.test.ts turns every row x dtype x backend
// into a test; test/determinism.test.ts reruns larger rows on cpu and compares bits.
import type { BackendName, DType, NativeAddon } from '../src/native.js';

/** 'data' tensors take the row's dtype (f32 or bf16); the others are fixed. */
export type Kind = 'data' | 'f32' | 'bf16' | 'i32';
export interface TSpec {
  shape: number[];
  kind: Kind;
  init?: Float32Array | Int32Array; // zero-filled when absent
}
/** An argument: a tensor reference { t: name } or a scalar passed through unchanged. */
export type Arg = number | boolean | string | bigint | { t: string };
export interface Step {
  op: string;
  pass: 'forward' | 'backward';
  args: Record<string, Arg>;
}
export interface FdSpec {
  forward: Step[]; // computes `loss` from the inputs
  backward: Step[]; // run after `forward`; writes the grads named in wrt
  loss: string; // L = sum(w * loss), w random (or 1 when there is no dout)
  dout?: string; // receives w before the backward
  wrt: [input: string, grad: string][]; // an input may feed several grads (residual: both x and r get dx)
  zero?: string[]; // parameter grads (+=) zeroed before the backward
  h?: number; // central-difference step (default 1e-3)
}
export interface OpCase {
  op: string;
  name: string;
  dtypes: ('f32' | 'bf16')[];
  /** dtype that supports() is asked about, when not the row dtype (copy i32, fill i32, adamw). */
  supportsDtype?: DType;
  tensors: Record<string, TSpec>;
  steps: Step[];
  check: string[];
  /** checked outputs compared on f32 rows only: f32 scratch derived from rounded bf16 outputs (attention's delta) */
  f32Only?: string[];
  /** f32 rows: max |backend - ref| <= tol * max |ref| (per output; default 2e-6). */
  tol?: number;
  tolFor?: Record<string, number>;
  /** f32 rows: the scale of these outputs is also at least max |input| of the named input. An output
   *  that is a difference of larger terms (gelu' near its root, tanh' near +-1) can be tiny next to
   *  its f32 rounding error, which follows the terms. */
  scaleFrom?: Record<string, string>;
  fd?: FdSpec;
}

// ---------------------------------------------------------------------------------------------
// Deterministic inputs.
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 1;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
  normals(n: number, scale = 1, mean = 0): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = mean + scale * this.normal();
    return a;
  }
  uniforms(n: number, lo: number, hi: number): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * this.next();
    return a;
  }
  ints(n: number, lo: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.int(lo, hi);
    return a;
  }
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const t = (name: string): { t: string } => ({ t: name });
const data = (shape: number[], init?: Float32Array): TSpec => ({ shape, kind: 'data', init });
const f32 = (shape: number[], init?: Float32Array): TSpec => ({ shape, kind: 'f32', init });
const i32 = (shape: number[], init?: Int32Array): TSpec => ({ shape, kind: 'i32', init });

/** Round-to-nearest-even to bf16, returned widened to f32 (what a bf16 tensor will hold). */
export function roundBf16(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  const u = new Uint32Array(out.buffer);
  out.set(a);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x007fffff) !== 0) u[i] = (x | 0x00400000) & 0xffff0000;
    else u[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 0) & 0xffff0000;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Running a row.
export type Result = Record<string, Float32Array | Int32Array>;

function kindDtype(kind: Kind, dtype: 'f32' | 'bf16'): DType {
  return kind === 'data' ? dtype : kind;
}

/**
 * Allocates the row's tensors on the backend's device (data from `init`, or `override`), runs the
 * steps and reads back `read` (default: every tensor). Everything allocated is disposed.
 */
export function execute(
  addon: NativeAddon,
  backend: BackendName,
  row: { tensors: Record<string, TSpec>; steps: Step[] },
  dtype: 'f32' | 'bf16',
  override: Result = {},
  read?: string[],
): Result {
  const device = backend === 'cuda' ? 'cuda' : 'cpu';
  const ids = new Map<string, number>();
  try {
    for (const [name, spec] of Object.entries(row.tensors)) {
      const id = addon.alloc(spec.shape, kindDtype(spec.kind, dtype), device);
      ids.set(name, id);
      const init = override[name] ?? spec.init;
      if (init && init.length) addon.setData(id, init);
    }
    for (const step of row.steps) {
      const args: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(step.args)) {
        if (typeof v === 'object' && v !== null && 't' in v) {
          const id = ids.get(v.t);
          if (id === undefined) throw new Error(`op table: step ${step.op} names unknown tensor '${v.t}'`);
          args[k] = id;
        } else args[k] = v;
      }
      addon.run(step.op, step.pass, backend, args);
    }
    const out: Result = {};
    for (const name of read ?? [...ids.keys()]) out[name] = addon.toArray(ids.get(name)!);
    return out;
  } finally {
    for (const id of ids.values()) addon.dispose(id);
  }
}

/** The row's inputs as a bf16 tensor will hold them (data tensors rounded), so every run sees equal inputs. */
export function roundedInputs(row: OpCase, dtype: 'f32' | 'bf16'): Result {
  const o: Result = {};
  for (const [name, spec] of Object.entries(row.tensors)) {
    if (!spec.init) continue;
    if (spec.init instanceof Float32Array && (spec.kind === 'bf16' || (spec.kind === 'data' && dtype === 'bf16')))
      o[name] = roundBf16(spec.init);
    else o[name] = spec.init;
  }
  return o;
}

/** Max |a - b| over elements; equal infinities and NaN pairs count as 0, a one-sided non-finite as Infinity. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    const d = Math.abs(x - y);
    if (!Number.isFinite(d)) return Infinity;
    if (d > m) m = d;
  }
  return m;
}
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]!);
    if (Number.isFinite(v) && v > m) m = v;
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// The table.

/** Runs `row` on `backend` and on ref and checks every output (the rule at the top of ops.test.ts). */
export function compare(t: import('ava').ExecutionContext, a: NativeAddon, row: OpCase, dtype: 'f32' | 'bf16', backend: BackendName): void {
  const inputs = roundedInputs(row, dtype);
  const ref64 = execute(a, 'ref', row, 'f32', inputs, row.check);
  const got = execute(a, backend, row, dtype, inputs, row.check);
  const refLow = dtype === 'bf16' ? execute(a, 'ref', row, 'bf16', inputs, row.check) : undefined;
  for (const name of row.check) {
    if (refLow && row.f32Only?.includes(name)) continue;
    const want = ref64[name]!, have = got[name]!;
    t.is(have.length, want.length, `${name}: length`);
    if (want instanceof Int32Array) {
      t.deepEqual(Array.from(have), Array.from(want), `${name}: integer output differs`);
      continue;
    }
    const from = row.scaleFrom?.[name];
    const scale = Math.max(maxAbs(want), from ? maxAbs(inputs[from]!) : 0);
    const err = maxDiff(have, want);
    if (!refLow) {
      const tol = row.tolFor?.[name] ?? row.tol ?? 2e-6;
      t.log(`${name}: max |err| ${err.toExponential(2)}, relative ${(err / (scale || 1)).toExponential(2)} (tol ${tol})`);
      t.true(err <= tol * scale || err === 0, `${name}: max |${backend} - ref| = ${err} > ${tol} * ${scale}`);
    } else {
      const lowErr = maxDiff(refLow[name]!, want);
      const bound = 2 * lowErr + 1e-5 * scale;
      t.log(`${name}: bf16 max |err| ${err.toExponential(2)} vs bf16-on-ref ${lowErr.toExponential(2)} (bound ${bound.toExponential(2)})`);
      t.true(err <= bound, `${name}: max |${backend}_bf16 - ref_fp64| = ${err} > 2 * ${lowErr} + floor`);
    }
  }
}

function matmulRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  const mk = (
    name: string,
    o: { M: number; N: number; K: number; batch?: number; ta?: boolean; tb?: boolean; lda?: number; alpha?: number; beta?: number; epi?: string },
  ): OpCase => {
    const batch = o.batch ?? 1;
    const ra = o.ta ? o.K : o.M, ca = o.ta ? o.M : o.K, rb = o.tb ? o.N : o.K, cb = o.tb ? o.K : o.N;
    const lda = o.lda ?? ca;
    const tensors: Record<string, TSpec> = {
      a: data([batch * ra * lda], r.normals(batch * ra * lda)),
      b: data([batch * rb * cb], r.normals(batch * rb * cb)),
      c: data([batch * o.M * o.N], o.beta ? r.normals(batch * o.M * o.N) : undefined),
    };
    const args: Record<string, Arg> = { a: t('a'), b: t('b'), c: t('c'), M: o.M, N: o.N, K: o.K, batch, trans_a: !!o.ta, trans_b: !!o.tb, lda };
    if (o.alpha !== undefined) args.alpha = o.alpha;
    if (o.beta !== undefined) args.beta = o.beta;
    const check = ['c'];
    if (o.epi) {
      tensors.bias = f32([o.N], r.normals(o.N));
      args.bias = t('bias');
      args.epilogue = o.epi;
      if (o.epi === 'bias_gelu') {
        tensors.pre = data([batch * o.M * o.N]);
        args.pre_gelu = t('pre');
        check.push('pre');
      }
    }
    return { op: 'matmul', name, dtypes: ['f32', 'bf16'], tensors, steps: [{ op: 'matmul', pass: 'forward', args }], check, tol: 1e-5 };
  };
  rows.push(mk('1x1x1', { M: 1, N: 1, K: 1 }));
  rows.push(mk('linear x W^T + b, M=17 N=33 K=129', { M: 17, N: 33, K: 129, tb: true, epi: 'bias' }));
  rows.push(mk('trans_a, alpha 0.5, beta 1 (accumulate)', { M: 33, N: 17, K: 3, ta: true, alpha: 0.5, beta: 1 }));
  rows.push(mk('bias_gelu with pre_gelu, M=3 N=129 K=17', { M: 3, N: 129, K: 17, tb: true, epi: 'bias_gelu' }));
  rows.push(mk('batch 3, padded lda, M=5 N=7 K=9', { M: 5, N: 7, K: 9, batch: 3, lda: 12 }));
  rows.push(mk('M=127 N=129 K=65 (partial tiles)', { M: 127, N: 129, K: 65 }));
  // whole and edge tiles of the CPU's 14 x 32 kernel with alpha and the epilogues in one K block (a bf16 C
  // is rounded from each finished tile there)
  rows.push(mk('NT alpha 0.5 + bias, M=20 N=40 K=33 (whole and edge tiles)', { M: 20, N: 40, K: 33, tb: true, alpha: 0.5, epi: 'bias' }));
  rows.push(mk('NT + bias_gelu, M=30 N=70 K=48 (whole and edge tiles)', { M: 30, N: 70, K: 48, tb: true, epi: 'bias_gelu' }));
  // several K blocks and row blocks of the packed CPU GEMM (KC 768, MC up to 168), in the transposes training uses
  rows.push(mk('NT + bias_gelu, M=211 N=45 K=1601 (several K and row blocks)', { M: 211, N: 45, K: 1601, tb: true, epi: 'bias_gelu' }));
  rows.push(mk('TN accumulate (dW +=), M=37 N=41 K=1793', { M: 37, N: 41, K: 1793, ta: true, beta: 1 }));
  // K >= 2048 and the output small next to it: the CPU GEMM splits K in two parts, the second summed in scratch
  rows.push(mk('TN split K (dW +=), alpha 0.5, M=200 N=100 K=2100', { M: 200, N: 100, K: 2100, ta: true, alpha: 0.5, beta: 1 }));
  // even K and row strides: the CPU's bf16 packs take pairs of k as 32-bit words (transposing pack)
  rows.push(mk('NT, even K, M=40 N=70 K=300', { M: 40, N: 70, K: 300, tb: true }));
  // lda a multiple of 4 KB: the CPU packs op(A) 16 k at a time across its panels (kc = 40 leaves a partial chunk)
  rows.push(mk('TN, lda 1024 (4 KB row stride), M=1000 N=5 K=40', { M: 1000, N: 5, K: 40, ta: true, lda: 1024, beta: 1 }));
  // M = 1000: four of the CPU's fixed 256-row chunks, summed in chunk order
  for (const [M, N] of [[129, 33], [1, 1], [3, 1000], [1000, 70]] as const)
    rows.push({
      op: 'bias_backward',
      name: `M=${M} N=${N}, dbias += (nonzero start)`,
      dtypes: ['f32', 'bf16'],
      tensors: { dout: data([M, N], r.normals(M * N)), dbias: f32([N], r.normals(N)) },
      steps: [{ op: 'bias_backward', pass: 'forward', args: { dout: t('dout'), dbias: t('dbias'), M, N } }],
      check: ['dbias'],
      tol: 1e-5,
    });
  // a row stride past N (the model pads the MLM logits' rows to a multiple of 8): the pad must not be summed
  rows.push({
    op: 'bias_backward',
    name: 'M=300 N=61 ld=64 (padded rows)',
    dtypes: ['f32', 'bf16'],
    tensors: { dout: data([300, 64], r.normals(300 * 64)), dbias: f32([61], r.normals(61)) },
    steps: [{ op: 'bias_backward', pass: 'forward', args: { dout: t('dout'), dbias: t('dbias'), M: 300, N: 61, ld: 64 } }],
    check: ['dbias'],
    tol: 1e-5,
  });
  return rows;
}

function attentionRow(
  r: Rng,
  name: string,
  o: {
    B: number; T: number; NH: number; D: number; mask?: (b: number, j: number) => number; dropout?: number; offset?: number; fd?: boolean;
    /** rows of q, k, v, dq, dk, dv this many elements apart */
    ld?: number;
  },
): OpCase {
  const { B, T, NH, D } = o;
  const n = B * T * NH * D;
  const nx = o.ld ? (B * T - 1) * o.ld + NH * D : n;
  const tensors: Record<string, TSpec> = {
    q: data([nx], r.normals(nx)),
    k: data([nx], r.normals(nx)),
    v: data([nx], r.normals(nx)),
    out: data([n]),
    lse: f32([B * NH * T]),
    dout: data([n], r.normals(n)),
    // gaps between strided rows start non-zero (they must come back unchanged), except under the
    // finite-difference check, where a gap's numeric gradient is 0
    dq: data([nx], o.ld && !o.fd ? r.normals(nx) : undefined),
    dk: data([nx], o.ld && !o.fd ? r.normals(nx) : undefined),
    dv: data([nx], o.ld && !o.fd ? r.normals(nx) : undefined),
    delta: f32([B * NH * T]),
  };
  const common: Record<string, Arg> = { B, T, NH, D, q: t('q'), k: t('k'), v: t('v'), out: t('out'), lse: t('lse') };
  if (o.ld) common.ld_qkv = o.ld;
  if (o.mask) {
    const m = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let j = 0; j < T; j++) m[b * T + j] = o.mask(b, j);
    tensors.key_mask = i32([B * T], m);
    common.key_mask = t('key_mask');
  }
  if (o.dropout) Object.assign(common, { dropout_p: o.dropout, seed: 1234, offset: o.offset ?? 99 });
  const fwd: Step = { op: 'attention', pass: 'forward', args: common };
  const bwd: Step = { op: 'attention', pass: 'backward', args: { ...common, dout: t('dout'), dq: t('dq'), dk: t('dk'), dv: t('dv'), delta: t('delta') } };
  return {
    op: 'attention',
    name,
    dtypes: ['f32', 'bf16'],
    tensors,
    steps: [fwd, bwd],
    check: ['out', 'lse', 'dq', 'dk', 'dv', 'delta'],
    f32Only: ['delta'],
    tol: 2e-5,
    fd: o.fd
      ? { forward: [fwd], backward: [bwd], loss: 'out', dout: 'dout', wrt: [['q', 'dq'], ['k', 'dk'], ['v', 'dv']] }
      : undefined,
  };
}

function attentionRows(r: Rng): OpCase[] {
  return [
    attentionRow(r, 'B=1 T=1 NH=1 D=1', { B: 1, T: 1, NH: 1, D: 1, fd: true }),
    attentionRow(r, 'B=2 T=17 NH=3 D=8, no mask', { B: 2, T: 17, NH: 3, D: 8, fd: true }),
    attentionRow(r, 'B=1 T=129 NH=2 D=33, tail padding', { B: 1, T: 129, NH: 2, D: 33, mask: (_b, j) => (j < 100 ? 1 : 0) }),
    // batch 0: every key but one is padding; batch 1: every key is padding (out 0, lse -inf); batch 2: none
    attentionRow(r, 'B=3 T=33 NH=2 D=16, one live key / all padding / none', {
      B: 3, T: 33, NH: 2, D: 16, fd: true,
      mask: (b, j) => (b === 0 ? (j === 20 ? 1 : 0) : b === 1 ? 0 : 1),
    }),
    attentionRow(r, 'B=2 T=65 NH=2 D=64, random padding', { B: 2, T: 65, NH: 2, D: 64, mask: () => (r.next() < 0.8 ? 1 : 0) }),
    // D > 64: the CPU tile kernels take columns 64 at a time (the second chunk here is 16 wide)
    attentionRow(r, 'B=1 T=45 NH=2 D=80', { B: 1, T: 45, NH: 2, D: 80 }),
    attentionRow(r, 'B=2 T=19 NH=2 D=5, dropout 0.2', { B: 2, T: 19, NH: 2, D: 5, dropout: 0.2, fd: true, mask: (_b, j) => (j === 3 ? 0 : 1) }),
    attentionRow(r, 'B=1 T=130 NH=1 D=3, dropout 0.1', { B: 1, T: 130, NH: 1, D: 3, dropout: 0.1 }),
    // bf16 with D = 64 or 128 takes the CUDA mma kernels, which draw the dropout of key pairs (j, j + 1)
    // from one Philox evaluation when the pair's counter is even (offset 4096), two when odd (offset 99)
    attentionRow(r, 'B=2 T=70 NH=2 D=64, padding, dropout 0.15, offset 4096', { B: 2, T: 70, NH: 2, D: 64, dropout: 0.15, offset: 4096, mask: (b, j) => (b === 1 && j > 50 ? 0 : 1) }),
    attentionRow(r, 'B=1 T=40 NH=2 D=128, dropout 0.2', { B: 1, T: 40, NH: 2, D: 128, dropout: 0.2 }),
    // q, k, v as column slices of a fused QKV projection's rows (ld = 3 NH D: the model's layout; the
    // D = 64 bf16 row takes the CUDA mma path), and rows an odd distance apart (the generic paths)
    attentionRow(r, 'B=2 T=70 NH=2 D=64, ld_qkv 384, padding, dropout 0.1', { B: 2, T: 70, NH: 2, D: 64, ld: 384, dropout: 0.1, mask: (b, j) => (b === 1 && j > 40 ? 0 : 1) }),
    attentionRow(r, 'B=2 T=9 NH=2 D=3, ld_qkv 11', { B: 2, T: 9, NH: 2, D: 3, ld: 11, fd: true, mask: (_b, j) => (j === 2 ? 0 : 1) }),
  ];
}

function layernormRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  const chained = (name: string, R: number, C: number, residual: boolean, fd: boolean, mean = 0.5, std = 1, inPlace = false): OpCase => {
    const n = R * C;
    const tensors: Record<string, TSpec> = {
      x: data([n], r.normals(n, std, mean)),
      out: data([n]),
      mean: f32([R]),
      rstd: f32([R]),
      gamma: f32([C], r.normals(C, 0.5, 1)),
      beta: f32([C], r.normals(C, 0.5)),
      dout: data([n], r.normals(n)),
      dx: data([n]),
      dgamma: f32([C], r.normals(C)),
      dbeta: f32([C], r.normals(C)),
    };
    const fa: Record<string, Arg> = { rows: R, cols: C, eps: 1e-5, x: t('x'), out: t('out'), mean: t('mean'), rstd: t('rstd'), gamma: t('gamma'), beta: t('beta') };
    if (residual) {
      tensors.residual = data([n], r.normals(n, std));
      tensors.sum = data([n]);
      Object.assign(fa, { residual: t('residual'), sum: t('sum') });
    }
    const fwd: Step = { op: 'layernorm', pass: 'forward', args: fa };
    const bwd: Step = {
      op: 'layernorm',
      pass: 'backward',
      args: { rows: R, cols: C, eps: 1e-5, x: t(residual ? 'sum' : 'x'), mean: t('mean'), rstd: t('rstd'), gamma: t('gamma'), dout: t('dout'), dx: t(inPlace ? 'dout' : 'dx'), dgamma: t('dgamma'), dbeta: t('dbeta') },
    };
    const wrt: [string, string][] = [['x', 'dx'], ['gamma', 'dgamma'], ['beta', 'dbeta']];
    if (residual) wrt.push(['residual', 'dx']);
    return {
      op: 'layernorm',
      name,
      dtypes: ['f32', 'bf16'],
      tensors,
      steps: [fwd, bwd],
      check: [...(residual ? ['out', 'mean', 'rstd', 'sum'] : ['out', 'mean', 'rstd']), inPlace ? 'dout' : 'dx', 'dgamma', 'dbeta'],
      tol: 1e-5,
      fd: fd && !inPlace ? { forward: [fwd], backward: [bwd], loss: 'out', dout: 'dout', wrt, zero: ['dgamma', 'dbeta'] } : undefined,
    };
  };
  rows.push(chained('rows=1 cols=1', 1, 1, false, false));
  rows.push(chained('rows=3 cols=17', 3, 17, false, true));
  rows.push(chained('rows=17 cols=129, fused residual', 17, 129, true, true));
  rows.push(chained('rows=129 cols=33 (several row chunks)', 129, 33, false, false));
  rows.push(chained('rows=33 cols=768, fused residual', 33, 768, true, false));
  // rows of 64, 128, 192 or 256 values: the CPU forward holds the row in registers
  rows.push(chained('rows=37 cols=256, fused residual', 37, 256, true, false));
  rows.push(chained('rows=5 cols=64', 5, 64, false, true));
  rows.push(chained('rows=9 cols=192, fused residual, backward in place', 9, 192, true, false, 0.5, 1, true));
  // wider than the CUDA warp-per-row backward takes (8 warps' partials in shared memory): its block-per-row kernel
  rows.push(chained('rows=3 cols=4000, fused residual', 3, 4000, true, false));
  // dx written over dout, as the training step runs it
  rows.push(chained('rows=129 cols=33, backward in place', 129, 33, false, false, 0.5, 1, true));
  rows.push(chained('rows=33 cols=768, fused residual, backward in place', 33, 768, true, false, 0.5, 1, true));

  // Hard: mean 1e4, std 0.1. The forward is compared as usual; the backward gets mean and rstd computed
  // here in f64 (rounded to f32), so both backends differentiate at exactly the same point (the f32
  // rounding of a 1e4 mean alone moves xhat by ~1e-2 at this variance).
  // The last shape puts each row's first value 10 std above the rest: the forward's pivot (that value)
  // is then far from the mean, which takes the exact second pass over (d - mean)^2.
  for (const [R, C, outlier] of [[5, 129, 0], [2, 1000, 0], [4, 128, 1]] as const) {
    const n = R * C;
    const x = r.normals(n, 0.1, 1e4);
    for (let i = 0; i < R; i++) x[i * C] = x[i * C]! + outlier;
    const mean = new Float32Array(R), rstd = new Float32Array(R);
    for (let i = 0; i < R; i++) {
      let m = 0;
      for (let c = 0; c < C; c++) m += x[i * C + c]!;
      m /= C;
      let v = 0;
      for (let c = 0; c < C; c++) v += (x[i * C + c]! - m) ** 2;
      mean[i] = m;
      rstd[i] = 1 / Math.sqrt(v / C + 1e-5);
    }
    const base = { rows: R, cols: C, eps: 1e-5, x: t('x'), mean: t('mean'), rstd: t('rstd'), gamma: t('gamma') };
    rows.push({
      op: 'layernorm',
      name: `mean 1e4 std 0.1, rows=${R} cols=${C}${outlier ? ', first value +10 std' : ''}, forward`,
      dtypes: ['f32'],
      tensors: { x: data([n], x), out: data([n]), mean: f32([R]), rstd: f32([R]), gamma: f32([C], r.normals(C, 0.5, 1)), beta: f32([C], r.normals(C)) },
      steps: [{ op: 'layernorm', pass: 'forward', args: { ...base, out: t('out'), beta: t('beta') } }],
      check: ['out', 'mean', 'rstd'],
      // the inputs themselves are quantised at 1e-3 around 1e4 (f32), so out carries ~1e-4 conditioning error
      tol: 1e-4,
    });
    rows.push({
      op: 'layernorm',
      name: `mean 1e4 std 0.1, rows=${R} cols=${C}${outlier ? ', first value +10 std' : ''}, backward at f64 statistics`,
      dtypes: ['f32'],
      tensors: {
        x: data([n], x), mean: f32([R], mean), rstd: f32([R], rstd), gamma: f32([C], r.normals(C, 0.5, 1)),
        dout: data([n], r.normals(n)), dx: data([n]), dgamma: f32([C]), dbeta: f32([C]),
      },
      steps: [{ op: 'layernorm', pass: 'backward', args: { ...base, dout: t('dout'), dx: t('dx'), dgamma: t('dgamma'), dbeta: t('dbeta') } }],
      check: ['dx', 'dgamma', 'dbeta'],
      tol: 1e-4,
    });
  }
  return rows;
}

function activationRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  for (const op of ['gelu', 'tanh'] as const)
    for (const n of [1, 3, 1000, 33333]) {
      const inPlace = n === 1000;
      const fd = n <= 3;
      // finite-difference rows stay where f32 resolves the slope (tanh and gelu are flat in the tails)
      const x = fd ? r.uniforms(n, -2, 2) : r.uniforms(n, -6, 6);
      const fwd: Step = { op, pass: 'forward', args: { x: t('x'), out: t(inPlace ? 'x' : 'out') } };
      const src = op === 'gelu' ? (inPlace ? 'xb' : 'x') : inPlace ? 'x' : 'out';
      const bwd: Step = { op, pass: 'backward', args: { [op === 'gelu' ? 'x' : 'out']: t(src), dout: t('dout'), dx: t(inPlace ? 'dout' : 'dx') } };
      const tensors: Record<string, TSpec> = { x: data([n], x), out: data([n]), dout: data([n], r.normals(n)), dx: data([n]) };
      if (op === 'gelu' && inPlace) tensors.xb = data([n], x);  // the in-place forward overwrote x
      rows.push({
        op,
        name: `n=${n}${inPlace ? ', in place (out = x, dx = dout)' : ''}`,
        dtypes: ['f32', 'bf16'],
        tensors,
        steps: [fwd, bwd],
        check: inPlace ? ['x', 'dout'] : ['out', 'dx'],
        tol: 2e-6,
        scaleFrom: inPlace ? { dout: 'dout' } : { dx: 'dout' },
        fd: fd ? { forward: [fwd], backward: [bwd], loss: 'out', dout: 'dout', wrt: [['x', 'dx']], h: 1e-2 } : undefined,
      });
    }
  return rows;
}

function softmaxRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  const mk = (name: string, N: number, V: number, o: { ld?: number; big?: boolean; ignore?: number[]; inPlace?: boolean; fd?: boolean } = {}): OpCase => {
    const ld = o.ld ?? V;
    const len = (N - 1) * ld + V;
    const logits = o.big ? r.uniforms(len, -1, 1).map((v) => (v < 0 ? -100 : 100) + v) : r.normals(len, 2);
    const labels = r.ints(N, 0, V);
    for (const i of o.ignore ?? []) labels[i] = -100;
    const nvalid = N - (o.ignore?.length ?? 0);
    const args: Record<string, Arg> = {
      N, V, ld, ignore_index: -100, grad_scale: 1 / Math.max(1, nvalid),
      logits: t('logits'), labels: t('labels'), losses: t('losses'), correct: t('correct'), dlogits: t(o.inPlace ? 'logits' : 'dlogits'),
    };
    const step: Step = { op: 'softmax_xent', pass: 'forward', args };
    const fdStep: Step = { op: 'softmax_xent', pass: 'forward', args: { ...args, grad_scale: 1, dlogits: t('dlogits') } };
    return {
      op: 'softmax_xent',
      name,
      dtypes: ['f32', 'bf16'],
      tensors: { logits: data([len], logits), labels: i32([N], labels), losses: f32([N]), correct: i32([N]), dlogits: data([len]) },
      steps: [step],
      check: ['losses', 'correct', o.inPlace ? 'logits' : 'dlogits'],
      tol: 1e-5,
      fd: o.fd ? { forward: [fdStep], backward: [fdStep], loss: 'losses', wrt: [['logits', 'dlogits']] } : undefined,
    };
  };
  rows.push(mk('N=1 V=1', 1, 1));
  rows.push(mk('N=17 V=33', 17, 33, { fd: true }));
  rows.push(mk('N=5 V=129, logits at +-100', 5, 129, { big: true }));
  rows.push(mk('N=33 V=127, ignore_index rows', 33, 127, { ignore: [0, 5, 32], fd: true }));
  rows.push(mk('N=7 V=1000, row stride 1003', 7, 1000, { ld: 1003 }));
  rows.push(mk('N=9 V=31, dlogits in place', 9, 31, { inPlace: true, ignore: [4] }));
  rows.push(mk('N=3 V=30522 (BERT vocab)', 3, 30522));
  return rows;
}

function embeddingRows(r: Rng): OpCase[] {
  const mk = (name: string, B: number, T: number, C: number, V: number, o: { types?: boolean; skipPos?: boolean; fd?: boolean } = {}): OpCase => {
    const maxPos = T + 3, TV = 2;
    const tensors: Record<string, TSpec> = {
      ids: i32([B * T], r.ints(B * T, 0, V)),
      wte: f32([V * C], r.normals(V * C)),
      wpe: f32([maxPos * C], r.normals(maxPos * C)),
      wtt: f32([TV * C], r.normals(TV * C)),
      out: data([B * T * C]),
      dout: data([B * T * C], r.normals(B * T * C)),
      dwte: f32([V * C], r.normals(V * C)),
      dwpe: f32([maxPos * C], r.normals(maxPos * C)),
      dwtt: f32([TV * C], r.normals(TV * C)),
    };
    const dims: Record<string, Arg> = { B, T, C, V, max_pos: maxPos, type_vocab: TV, ids: t('ids') };
    if (o.types) {
      tensors.type_ids = i32([B * T], r.ints(B * T, 0, TV));
      dims.type_ids = t('type_ids');
    }
    const fwd: Step = { op: 'embedding', pass: 'forward', args: { ...dims, wte: t('wte'), wpe: t('wpe'), wtt: t('wtt'), out: t('out') } };
    const bwdArgs: Record<string, Arg> = { ...dims, dout: t('dout'), dwte: t('dwte') };
    if (!o.skipPos) Object.assign(bwdArgs, { dwpe: t('dwpe'), dwtt: t('dwtt') });
    const bwd: Step = { op: 'embedding', pass: 'backward', args: bwdArgs };
    const wrt: [string, string][] = o.skipPos ? [['wte', 'dwte']] : [['wte', 'dwte'], ['wpe', 'dwpe'], ['wtt', 'dwtt']];
    return {
      op: 'embedding',
      name,
      dtypes: ['f32', 'bf16'],
      tensors,
      steps: [fwd, bwd],
      check: ['out', 'dwte', 'dwpe', 'dwtt'],
      tol: 2e-6,
      fd: o.fd ? { forward: [fwd], backward: [bwd], loss: 'out', dout: 'dout', wrt, zero: ['dwte', 'dwpe', 'dwtt'] } : undefined,
    };
  };
  return [
    mk('B=1 T=1 C=1 V=1', 1, 1, 1, 1, { fd: true }),
    mk('B=2 T=17 C=33 V=5 (many duplicate ids), type_ids', 2, 17, 33, 5, { types: true, fd: true }),
    mk('B=3 T=33 C=300 V=50, no type_ids', 3, 33, 300, 50),
    mk('B=2 T=9 C=17 V=7, dwpe/dwtt skipped', 2, 9, 17, 7, { types: true, skipPos: true }),
  ];
}

function rowsRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  for (const [M, C, n] of [[1, 1, 1], [33, 17, 10], [129, 300, 7], [0, 5, 3]] as const) {
    rows.push({
      op: 'gather_rows',
      name: `M=${M} C=${C} n_src=${n}`,
      dtypes: ['f32', 'bf16'],
      tensors: { src: data([n * C], r.normals(n * C)), dst: data([M * C]), index: i32([M], r.ints(M, 0, n)) },
      steps: [{ op: 'gather_rows', pass: 'forward', args: { src: t('src'), dst: t('dst'), index: t('index'), M, C, n_src: n } }],
      check: ['dst'],
      tol: 0,
    });
    rows.push({
      op: 'scatter_add_rows',
      name: `M=${M} C=${C} n_dst=${n}, duplicate indices, dst += (nonzero start)`,
      dtypes: ['f32', 'bf16'],
      tensors: { src: data([M * C], r.normals(M * C)), dst: data([n * C], r.normals(n * C)), index: i32([M], r.ints(M, 0, n)) },
      steps: [{ op: 'scatter_add_rows', pass: 'forward', args: { src: t('src'), dst: t('dst'), index: t('index'), M, C, n_dst: n } }],
      check: ['dst'],
      tol: 1e-5,
    });
  }
  return rows;
}

function dropoutRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  // Philox blocks hold 4 counters: offsets 5 and 2^32 - 37 start inside a block; the 2^34 - 37 row's block
  // index crosses 2^32 (the vectorised Philox carries into the block's high word); offset 8 starts on a
  // block (CUDA's aligned vector path) and n = 1003 ends inside one
  for (const [n, p, inPlace, offset] of [[1, 0.5, false, 5], [1000, 0.1, false, 5], [33333, 0.5, true, 5], [129, 0, false, 5], [200, 0.3, false, 2 ** 32 - 37], [300, 0.4, false, 2 ** 34 - 37], [1003, 0.25, false, 8]] as const) {
    const args = { p, seed: 77, offset };
    const fwd: Step = { op: 'dropout', pass: 'forward', args: { ...args, x: t('x'), out: t(inPlace ? 'x' : 'out') } };
    const bwd: Step = { op: 'dropout', pass: 'backward', args: { ...args, dout: t('dout'), dx: t(inPlace ? 'dout' : 'dx') } };
    rows.push({
      op: 'dropout',
      name: `n=${n} p=${p}${inPlace ? ', in place' : ''}${offset === 2 ** 32 - 37 ? ', offset 2^32 - 37' : offset === 2 ** 34 - 37 ? ', offset 2^34 - 37' : offset !== 5 ? `, offset ${offset}` : ''}`,
      dtypes: ['f32', 'bf16'],
      tensors: { x: data([n], r.normals(n)), out: data([n]), dout: data([n], r.normals(n)), dx: data([n]) },
      steps: [fwd, bwd],
      check: inPlace ? ['x', 'dout'] : ['out', 'dx'],
      tol: 2e-7,
      fd: !inPlace && n <= 1000 ? { forward: [fwd], backward: [bwd], loss: 'out', dout: 'dout', wrt: [['x', 'dx']] } : undefined,
    });
  }
  return rows;
}

function optimRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  for (const [n, lowp] of [[1, false], [1000, true], [100003, false]] as const) {
    const tensors: Record<string, TSpec> = {
      param: f32([n], r.normals(n)),
      grad: f32([n], r.normals(n, 0.1)),
      m: f32([n], r.normals(n, 0.01)),
      v: f32([n], r.uniforms(n, 0, 1e-3)),
    };
    const args: Record<string, Arg> = { param: t('param'), grad: t('grad'), m: t('m'), v: t('v'), lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-6, weight_decay: 0.01, grad_scale: 0.5, step: 3 };
    if (lowp) {
      tensors.param_lowp = { shape: [n], kind: 'bf16' };
      args.param_lowp = t('param_lowp');
    }
    rows.push({
      op: 'adamw',
      name: `n=${n}${lowp ? ', bf16 copy' : ''}`,
      dtypes: ['f32'],
      tensors,
      steps: [{ op: 'adamw', pass: 'forward', args }],
      check: lowp ? ['param', 'm', 'v', 'param_lowp'] : ['param', 'm', 'v'],
      tol: 2e-6,
      // the bf16 copy may round the other way when the f32 master differs by one ulp
      tolFor: { param_lowp: 8e-3 },
    });
  }
  for (const n of [1, 1000, 200003])
    rows.push({
      op: 'grad_norm',
      name: `n=${n}`,
      dtypes: ['f32'],
      tensors: { x: f32([n], r.normals(n)), out: f32([1]) },
      steps: [{ op: 'grad_norm', pass: 'forward', args: { x: t('x'), out: t('out') } }],
      check: ['out'],
      tol: 1e-6,
    });
  return rows;
}

function elementwiseRows(r: Rng): OpCase[] {
  const rows: OpCase[] = [];
  for (const n of [1, 17, 100003]) {
    const tensors = { a: data([n], r.normals(n)), b: data([n], r.normals(n)), out: data([n]) };
    rows.push({
      op: 'axpby', name: `n=${n}, out = 0.5 a - 2 b`, dtypes: ['f32', 'bf16'], tensors,
      steps: [{ op: 'axpby', pass: 'forward', args: { a: t('a'), b: t('b'), out: t('out'), alpha: 0.5, beta: -2 } }], check: ['out'], tol: 2e-7,
    });
    rows.push({
      op: 'axpby', name: `n=${n}, b absent, in place (a = 3 a)`, dtypes: ['f32', 'bf16'], tensors,
      steps: [{ op: 'axpby', pass: 'forward', args: { a: t('a'), out: t('a'), alpha: 3 } }], check: ['a'], tol: 2e-7,
    });
    rows.push({
      op: 'scale', name: `n=${n}`, dtypes: ['f32', 'bf16'], tensors: { x: data([n], r.normals(n)) },
      steps: [{ op: 'scale', pass: 'forward', args: { x: t('x'), s: -0.37 } }], check: ['x'], tol: 2e-7,
    });
    rows.push({
      op: 'fill', name: `n=${n}`, dtypes: ['f32', 'bf16'], tensors: { x: data([n], r.normals(n)) },
      steps: [{ op: 'fill', pass: 'forward', args: { x: t('x'), value: 0.1 } }], check: ['x'], tol: 0,
    });
    rows.push({
      op: 'fill', name: `n=${n}, value 0 (zero bits: memset on cpu)`, dtypes: ['f32', 'bf16'], tensors: { x: data([n], r.normals(n)) },
      steps: [{ op: 'fill', pass: 'forward', args: { x: t('x'), value: 0 } }], check: ['x'], tol: 0,
    });
    rows.push({
      op: 'fill', name: `n=${n}, i32 (value -3.7 truncates to -3)`, dtypes: ['f32'], supportsDtype: 'i32', tensors: { x: i32([n], r.ints(n, -5, 5)) },
      steps: [{ op: 'fill', pass: 'forward', args: { x: t('x'), value: -3.7 } }], check: ['x'], tol: 0,
    });
    const pairs: [Kind, Kind][] = [['f32', 'bf16'], ['bf16', 'f32'], ['f32', 'f32'], ['bf16', 'bf16'], ['i32', 'i32']];
    for (const [s, d] of pairs)
      rows.push({
        op: 'copy', name: `n=${n}, ${s} -> ${d}`, dtypes: ['f32'], supportsDtype: s as DType,
        tensors: { src: { shape: [n], kind: s, init: s === 'i32' ? r.ints(n, -1000, 1000) : r.normals(n, 100) }, dst: { shape: [n], kind: d } },
        steps: [{ op: 'copy', pass: 'forward', args: { src: t('src'), dst: t('dst') } }], check: ['dst'], tol: 0,
      });
  }
  // the f32 -> bf16 rounding at its edges: NaN, infinities, signed zeros, subnormals, the largest finite
  // f32 (rounds to infinity), exact ties (to even: down from 1 + 2^-8, up from 1 + 3 * 2^-8), each in a
  // vector body and in the tail
  const bits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0]!;
  const edge = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -1e-40, 3.4028234663852886e38, -3.4028234663852886e38, bits(0x3f808000), bits(0x3f818000), bits(0xbf808000), bits(0x00008000), 1, -2.5];
  const special = Float32Array.from([...edge, ...r.normals(17, 10), ...edge]);
  rows.push({
    op: 'copy', name: `n=${special.length}, f32 -> bf16, NaN, infinities, subnormals, ties`, dtypes: ['f32'], supportsDtype: 'f32',
    tensors: { src: { shape: [special.length], kind: 'f32', init: special }, dst: { shape: [special.length], kind: 'bf16' } },
    steps: [{ op: 'copy', pass: 'forward', args: { src: t('src'), dst: t('dst') } }], check: ['dst'], tol: 0,
  });
  return rows;
}

/** Every row of the op table (deterministic: the same inputs on every run). */
export function opTable(): OpCase[] {
  // one stream per group, so a row added to one group leaves the other groups' inputs as they were
  const groups = [matmulRows, attentionRows, layernormRows, activationRows, softmaxRows, embeddingRows, rowsRows, dropoutRows, optimRows, elementwiseRows];
  return groups.flatMap((rows, i) => rows(new Rng(20260101 + 7919 * i)));
}

/** Larger rows (several tasks per thread) for the cpu determinism test. */
export function determinismTable(): OpCase[] {
  const r = new Rng(7);
  return [
    attentionRow(r, 'B=2 T=200 NH=3 D=40, padding, dropout 0.1', { B: 2, T: 200, NH: 3, D: 40, dropout: 0.1, mask: (b, j) => (b === 1 && j > 150 ? 0 : 1) }),
    ...layernormRows(r).filter((c) => c.name.includes('cols=768')),
    ...softmaxRows(r).filter((c) => c.name.includes('30522') || c.name.includes('ignore_index')),
    ...embeddingRows(r).filter((c) => c.name.includes('C=300')),
    ...rowsRows(r).filter((c) => c.op === 'scatter_add_rows' && c.name.includes('C=300')),
    ...dropoutRows(r).filter((c) => c.name.includes('33333')),
    ...matmulRows(r).filter((c) => c.op === 'bias_backward' && c.name.startsWith('M=1000')),
    ...optimRows(r).filter((c) => c.name.includes('100003') || c.name.includes('200003')),
    ...activationRows(r).filter((c) => c.name.includes('33333')),
  ];
}

export { numel };
