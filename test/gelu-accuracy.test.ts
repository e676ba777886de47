// The cpu GELU forward, value by value against ref (erfc in fp64, rounded to f32), over the points
// where a piecewise form can go wrong: both edges of every interval of the AVX-512 forward's table
// (a = |x| = (k +- 1/2) / 3 and the floats beside them), its clamp at |x| = 10.49, tiny and
// subnormal x (gelu(x) ~ x / 2, where relative accuracy needs the table's interval 0 to have no
// constant term), the rest of [-15, 15] and NaN / +-0 / +inf, at each ISA level the CPU runs
// (setCpuIsa). Also: a value's result does not depend on its neighbours or its offset, in place or
// not (forward and backward); with AVX-512 the GEMM epilogue's GELU is the op's, bit for bit. The
// bounds are the ones kernels/cpu/gemm_gelu.h states, with room for ref's own f32 rounding.
import test from 'ava';

import { loadNative, type NativeAddon } from '../src/native.js';
import { cpuIsaLevels } from './helpers/cpu-isa.js';

const addon: NativeAddon = loadNative();
// every ISA level this CPU runs (setCpuIsa): the AVX-512 table form, and the scalar form the AVX2 and
// portable paths vectorise; each test sets the level it needs first
const levels = cpuIsaLevels(addon, ['avx512', 'avx2']);

function gelu(backend: 'ref' | 'cpu', x: Float32Array, inPlace = false): Float32Array {
  const xi = addon.alloc([x.length], 'f32', 'cpu');
  const oi = inPlace ? xi : addon.alloc([x.length], 'f32', 'cpu');
  try {
    addon.setData(xi, x);
    addon.run('gelu', 'forward', backend, { x: xi, out: oi });
    return addon.toArray(oi) as Float32Array;
  } finally {
    addon.dispose(xi);
    if (!inPlace) addon.dispose(oi);
  }
}

function nextUp(v: number, steps: number): number {
  const f = new Float32Array([v]);
  const u = new Int32Array(f.buffer);
  // float bits are ordered like sign-magnitude integers
  for (let s = 0; s < Math.abs(steps); s++) u[0] += (v >= 0) === steps > 0 ? 1 : -1;
  return f[0]!;
}

function probePoints(): Float32Array {
  const xs: number[] = [];
  // both signs: the table is of |x|
  for (let k = 0; k <= 32; k++)
    for (const edge of [(k - 0.5) / 3, k / 3, -(k - 0.5) / 3, -k / 3, 10.49, -10.49])
      for (let s = -3; s <= 3; s++) xs.push(nextUp(Math.fround(edge), s));
  for (let e = 1; e <= 149; e++) xs.push(2 ** -e, -(2 ** -e), 1.5 * 2 ** -e, -1.5 * 2 ** -e);
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 20000; i++) xs.push(30 * (rnd() - 0.5));
  for (let i = 0; i < 20000; i++) xs.push(11 * (rnd() - 0.5));
  return Float32Array.from(xs.filter((v) => v !== 0 && Math.abs(v) >= 1e-38));
}

for (const isa of levels)
test(`gelu forward (cpu, isa ${isa}): relative error against ref at every interval edge, near 0 and over [-15, 15]`, (t) => {
  addon.setCpuIsa(isa);
  const avx512 = isa === 'avx512';
  const x = probePoints();
  const ref = gelu('ref', x);
  const got = gelu('cpu', x);
  // the documented bounds: [lowest x of the band, bound]; a band holds x >= its lowest and below the
  // band before it (AVX-512: gelu_table16; without it the scalar rational-in-t form of the epilogue)
  const bands: [number, number][] = avx512
    ? [[-4, 3e-7], [-5.5, 8e-7], [-6.5, 4e-6], [-8, 1.7e-5], [-10.49, 1.2e-4]]
    : [[-2, 7.2e-7], [-6, 2.2e-6], [-13, 8e-6]];
  const worst = bands.map(() => 0);
  let worstAbs = 0, past = 0;  // logged: about an f32 ulp of the largest gelu(x); x below the last band
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!, r = ref[i]!, g = got[i]!;
    worstAbs = Math.max(worstAbs, Math.abs(g - r));
    if (xi > 2 && !avx512) continue;  // the scalar form's bounds are stated for |x| <= 2 .. 13
    const b = bands.findIndex(([lo]) => xi >= lo);
    if (b < 0) {
      // below the table's clamp gelu is 0 (AVX-512), |gelu| < 1.5e-23 there
      if (avx512) t.true(g === 0 && Math.abs(r) < 1.5e-23, `x = ${xi}: ${g}, ref ${r}`);
      past++;
      continue;
    }
    if (r === 0) continue;
    worst[b] = Math.max(worst[b]!, Math.abs(g - r) / Math.abs(r));
  }
  t.log(`${x.length} values (${avx512 ? 'AVX-512' : 'no AVX-512'}): ` + bands.map(([lo], i) => `x>=${lo}: ${worst[i]!.toExponential(2)}`).join(', ') + `; ${past} below; max abs ${worstAbs.toExponential(2)}`);
  bands.forEach(([lo, bound], i) => t.true(worst[i]! <= bound, `x >= ${lo}: relative error ${worst[i]} > ${bound}`));
});

for (const isa of levels)
test(`gelu forward (cpu, isa ${isa}): NaN stays NaN, +inf gives +inf, +-0 gives 0, -inf gives 0 or a tiny negative`, (t) => {
  addon.setCpuIsa(isa);
  const got = gelu('cpu', Float32Array.from([NaN, Infinity, 0, -0, -Infinity, NaN, 2]));
  t.true(got[4]! <= 0 && got[4]! > -1e-30, `gelu(-inf) = ${got[4]}`);
  t.true(Number.isNaN(got[0]!) && Number.isNaN(got[5]!));
  t.is(got[1], Infinity);
  t.is(Math.abs(got[2]!), 0);
  t.is(Math.abs(got[3]!), 0);
});

for (const isa of levels)
test(`gelu forward (cpu, isa ${isa}): a value's result does not depend on its neighbours, its offset or in-place`, (t) => {
  addon.setCpuIsa(isa);
  const base = probePoints().subarray(0, 4099);
  const alone = gelu('cpu', base);
  // the same values spread out between wide ones (past the table's clamp and beyond 5.5), at an odd
  // offset, run in place: the vector code must not mix lanes or depend on where a vector starts
  const mixed = new Float32Array(2 * base.length + 5);
  for (let i = 0; i < mixed.length; i++) mixed[i] = i % 2 ? 9.5 : -7.25;
  for (let i = 0; i < base.length; i++) mixed[5 + 2 * i] = base[i]!;
  const out = gelu('cpu', mixed, true);
  let differ = 0;
  for (let i = 0; i < base.length; i++) if (!Object.is(out[5 + 2 * i], alone[i])) differ++;
  t.is(differ, 0);
});

for (const isa of levels)
test(`gelu backward (cpu, isa ${isa}): dx does not depend on aliasing (dx over dout, over x) or offset`, (t) => {
  addon.setCpuIsa(isa);
  const n = 4099;
  const x = probePoints().subarray(0, n), g = Float32Array.from({ length: n }, (_, i) => Math.cos(i));
  const run = (gv: Float32Array, xv: Float32Array, mode: 'own' | 'over dout' | 'over x'): Float32Array => {
    const gi = addon.alloc([xv.length], 'f32', 'cpu'), xi = addon.alloc([xv.length], 'f32', 'cpu');
    const di = mode === 'own' ? addon.alloc([xv.length], 'f32', 'cpu') : mode === 'over dout' ? gi : xi;
    try {
      addon.setData(gi, gv);
      addon.setData(xi, xv);
      addon.run('gelu', 'backward', 'cpu', { x: xi, dout: gi, dx: di });
      return addon.toArray(di) as Float32Array;
    } finally {
      addon.dispose(gi);
      addon.dispose(xi);
      if (mode === 'own') addon.dispose(di);
    }
  };
  const want = run(g, x, 'own');
  const count = (got: Float32Array, at: (i: number) => number) => want.reduce((c, w, i) => c + (Object.is(got[at(i)], w) ? 0 : 1), 0);
  t.is(count(run(g, x, 'over dout'), (i) => i), 0, 'dx over dout');
  t.is(count(run(g, x, 'over x'), (i) => i), 0, 'dx over x');
  const xm = new Float32Array(2 * n + 5).fill(-7.25), gm = new Float32Array(2 * n + 5).fill(1);
  for (let i = 0; i < n; i++) {
    xm[5 + 2 * i] = x[i]!;
    gm[5 + 2 * i] = g[i]!;
  }
  t.is(count(run(gm, xm, 'own'), (i) => 5 + 2 * i), 0, 'spread out at an odd offset');
});

// without AVX-512 the epilogue and the op are two separately vectorised copies of the scalar form
(levels.includes('avx512') ? test : test.skip)('matmul bias_gelu epilogue (cpu, isa avx512): its GELU has the bits of the GELU op on the stored pre-activation', (t) => {
  addon.setCpuIsa('avx512');
  const M = 77, N = 131, K = 50;  // partial tiles in both directions
  const ids: number[] = [];
  const mk = (shape: number[], f: (i: number) => number): number => {
    const id = addon.alloc(shape, 'f32', 'cpu');
    ids.push(id);
    addon.setData(id, Float32Array.from({ length: shape.reduce((p, q) => p * q) }, (_, i) => f(i)));
    return id;
  };
  try {
    const a = mk([M, K], (i) => 2 * Math.sin(i)), b = mk([N, K], (i) => Math.cos(1.3 * i)), bias = mk([N], (i) => (i % 7) - 3);
    const c = mk([M, N], () => 0), pre = mk([M, N], () => 0), out = mk([M, N], () => 0);
    addon.run('matmul', 'forward', 'cpu', { a, b, c, M, N, K, trans_a: false, trans_b: true, epilogue: 'bias_gelu', bias, pre_gelu: pre });
    addon.run('gelu', 'forward', 'cpu', { x: pre, out });
    const fused = addon.toArray(c), op = addon.toArray(out), p = addon.toArray(pre);
    let differ = 0, wide = 0;
    for (let i = 0; i < fused.length; i++) {
      if (!Object.is(fused[i], op[i])) differ++;
      if (Math.abs(p[i]!) > 5.5) wide++;
    }
    t.true(wide > 1000, `inputs past 5.5 in magnitude: ${wide}`);
    t.is(differ, 0);
  } finally {
    for (const id of ids) addon.dispose(id);
  }
});
