// cuda-gemm.test.ts: the bf16 GEMM shapes that reach the Hopper path (kernels/cuda/matmul_sm90.cu:
// 16-byte aligned strides, see lb_sm90_reject) against ref, with the bf16 rule of ops.test.ts:
//   max |cuda_bf16 - ref_fp64| <= 2 * max |bf16-on-ref - ref_fp64| + 1e-5 * max |ref_fp64|.
// The op table's matmul rows use odd strides, so on an H100 they exercise mma.sync/SIMT, not wgmma;
// these rows cover every transpose, several pipeline wraps (K up to 1200 = 19 k-blocks), partial tiles
// in M, N and K, batch strides, padded lda, alpha/beta, the bias and bias+GELU epilogues, f32 and bf16 C,
// and grids of several waves (the 7-stage ring wrapping many times). Each test logs the path that ran; on
// an H100/H200 (or with LINKBERT_CUDA_GEMM=wgmma) it must be wgmma. The last rows split K (unless
// LINKBERT_CUDA_SPLITK=0; the slices then take wgmma as one batch). Skipped without a CUDA device.
//   LINKBERT_ADDON=cuda LINKBERT_TEST_DEVICE=cuda npx ava dist/test/cuda-gemm.test.js
import test from 'ava';

import { loadNative, type NativeAddon } from '../src/native.js';
import { execute, maxAbs, maxDiff, roundedInputs, Rng, type OpCase, type TSpec, type Arg } from './ops-table.js';

let addon: NativeAddon | undefined;
let why = '';
try {
  addon = loadNative('cuda');
  const info = addon.info();
  if (!info.cuda_compiled) why = 'not a CUDA build';
  else if (info.cuda_devices === 0) why = `no GPU: ${info.cuda_unavailable ?? ''}`;
} catch (e) {
  why = `CUDA addon not loaded: ${(e as Error).message.split('\n')[0]}`;
}
const required = process.env.LINKBERT_TEST_DEVICE === 'cuda';
const mode = process.env.LINKBERT_CUDA_GEMM ?? 'auto';
const gpu = !why ? String(addon!.info().cuda_device_names?.[0] ?? '') : '';
const expectWgmma = mode === 'wgmma' || ((mode === 'auto' || mode === '') && /H100|H200|H800|GH200/i.test(gpu));
const pathOf = () => (addon as unknown as { cudaMatmulPath(): string }).cudaMatmulPath();

interface G { M: number; N: number; K: number; batch?: number; ta?: boolean; tb?: boolean; lda?: number; alpha?: number; beta?: number; epi?: 'bias' | 'bias_gelu'; cF32?: boolean; eligible?: boolean }

function row(name: string, o: G, seed: number): OpCase {
  const r = new Rng(seed);
  const normals = (n: number) => Float32Array.from({ length: n }, () => 2 * r.next() - 1);
  const batch = o.batch ?? 1;
  const ra = o.ta ? o.K : o.M, ca = o.ta ? o.M : o.K, rb = o.tb ? o.N : o.K, cb = o.tb ? o.K : o.N;
  const lda = o.lda ?? ca;
  const cKind = o.cF32 ? 'f32' : 'data';
  const tensors: Record<string, TSpec> = {
    a: { shape: [batch * ra * lda], kind: 'data', init: normals(batch * ra * lda) },
    b: { shape: [batch * rb * cb], kind: 'data', init: normals(batch * rb * cb) },
    c: { shape: [batch * o.M * o.N], kind: cKind, init: o.beta ? normals(batch * o.M * o.N) : undefined },
  };
  const args: Record<string, Arg> = { a: { t: 'a' }, b: { t: 'b' }, c: { t: 'c' }, M: o.M, N: o.N, K: o.K, batch, trans_a: !!o.ta, trans_b: !!o.tb, lda };
  if (o.alpha !== undefined) args.alpha = o.alpha;
  if (o.beta !== undefined) args.beta = o.beta;
  const check = ['c'];
  if (o.epi) {
    tensors.bias = { shape: [o.N], kind: 'f32', init: normals(o.N) };
    args.bias = { t: 'bias' };
    args.epilogue = o.epi;
    if (o.epi === 'bias_gelu') {
      tensors.pre = { shape: [batch * o.M * o.N], kind: cKind };
      args.pre_gelu = { t: 'pre' };
      check.push('pre');
    }
  }
  return { op: 'matmul', name, dtypes: ['bf16'], tensors, steps: [{ op: 'matmul', pass: 'forward', args }], check };
}

const cases: [string, G][] = [
  ['NT + bias_gelu, M=300 N=328 K=1000 (16 k-blocks, partial tiles)', { M: 300, N: 328, K: 1000, tb: true, epi: 'bias_gelu' }],
  ['NN, alpha 0.5, beta 1, f32 C, M=264 N=200 K=520', { M: 264, N: 200, K: 520, alpha: 0.5, beta: 1, cF32: true }],
  ['TN accumulate (dW +=), f32 C, M=136 N=392 K=1200', { M: 136, N: 392, K: 1200, ta: true, beta: 1, cF32: true }],
  ['TT, M=72 N=40 K=136', { M: 72, N: 40, K: 136, ta: true, tb: true }],
  ['batch 3, padded lda 152, bias, M=96 N=80 K=144', { M: 96, N: 80, K: 144, batch: 3, lda: 152, epi: 'bias' }],
  ['M=1 N=8 K=8', { M: 1, N: 8, K: 8 }],
  ['NT, large grid, M=2304 N=2048 K=192', { M: 2304, N: 2048, K: 192, tb: true }],
  ['NN, large grid, M=2304 N=2048 K=136', { M: 2304, N: 2048, K: 136 }],
  ['TN, large grid, bias_gelu, M=2304 N=2048 K=72', { M: 2304, N: 2048, K: 72, ta: true, epi: 'bias_gelu' }],
  ['fallback: N=30 (ldb not 16-byte aligned) takes mma.sync', { M: 64, N: 30, K: 64, eligible: false }],
  // TN shapes that split K (lb_splitk_plan; whole with LINKBERT_CUDA_SPLITK=0)
  ['TN weight gradient (dW +=), f32 C, M=256 N=256 K=4096 (16 slices)', { M: 256, N: 256, K: 4096, ta: true, beta: 1, cF32: true }],
  ['TN + bias, M=128 N=200 K=2048 (8 slices)', { M: 128, N: 200, K: 2048, ta: true, epi: 'bias' }],
  ['TN + bias_gelu, alpha 0.5, M=136 N=128 K=1024 (4 slices)', { M: 136, N: 128, K: 1024, ta: true, alpha: 0.5, epi: 'bias_gelu' }],
];

if (why) {
  if (required) test('cuda gemm: a CUDA device', (t) => t.fail(why));
  else test.skip(`cuda gemm (Hopper path shapes): skipped, ${why}`, () => {});
} else {
  cases.forEach(([name, g], i) => {
    test(`cuda gemm: ${name} [bf16] (LINKBERT_CUDA_GEMM=${mode})`, (t) => {
      const a = addon!;
      const r = row(name, g, 1000 + i);
      const inputs = roundedInputs(r, 'bf16');
      const ref64 = execute(a, 'ref', r, 'f32', inputs, r.check);
      const got = execute(a, 'cuda', r, 'bf16', inputs, r.check);
      const path = pathOf();
      const refLow = execute(a, 'ref', r, 'bf16', inputs, r.check);
      t.log(`path ${path} on ${gpu}`);
      if (g.eligible === false) t.not(path, 'wgmma', 'an unaligned shape must fall back');
      else if (expectWgmma) t.is(path, 'wgmma', `expected the Hopper path on ${gpu}`);
      for (const name of r.check) {
        const want = ref64[name]!, have = got[name]!;
        const err = maxDiff(have, want), lowErr = maxDiff(refLow[name]!, want);
        const bound = 2 * lowErr + 1e-5 * maxAbs(want);
        t.log(`${name}: max |err| ${err.toExponential(2)} vs bf16-on-ref ${lowErr.toExponential(2)} (bound ${bound.toExponential(2)})`);
        t.true(err <= bound, `${name}: max |cuda - ref_fp64| = ${err} > ${bound}`);
      }
    });
  });
}
