// `linkbert bench kernels`: per op and shape, the median time and GFLOP/s (compute-bound ops: GEMM,
// attention) or GB/s (memory-bound ops: compulsory bytes read + written) on one backend.
//   - memory-bound ops are compared with a plain native copy moving the same number of bytes, in the
//     same run (`vs_memcpy` = op GB/s / copy GB/s), and with the machine's streaming copy bandwidth: a
//     256 MB copy timed before and after the cases (`vs_memcpy_stream` = op GB/s / the faster of the two);
//     the same-bytes copy of a small op runs from cache (bert-mini's 12-16 MB), the streaming one never;
//   - with --peer torch, GEMMs are compared with OpenBLAS sgemm (and torch) timed by
//     scripts/bench_torch.py --serve right after ours, shape by shape (`vs_openblas` = OpenBLAS time /
//     our time: > 1 is faster).
// Machines are shared and noisy: only ratios measured in one run mean anything.
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { loadNative, repoRoot, type BackendName, type DType, type NativeAddon } from '../native.js';
import { posNum, threads as threadsFlag } from './flags.js';

type Shape = Record<string, number | boolean | string>;

export interface KernelResult {
  op: string;
  pass: 'forward' | 'backward';
  device: 'cpu' | 'cuda';
  shape: Shape;
  median_ms: number;
  min_ms: number;
  reps: number;
  flops?: number;
  gflops?: number;
  bytes?: number;
  gbps?: number;
  memcpy_gbps?: number;
  vs_memcpy?: number;
  vs_memcpy_stream?: number; // op GB/s / the 256 MB streaming copy's GB/s in the same run
  peers?: { name: string; blas: string; median_ms: number; gflops: number; ratio: number }[];
  vs_openblas?: number; // OpenBLAS median / our median (> 1: ours is faster)
  vs_openblas_min?: number; // the same for the fastest run of each: less sensitive to a loaded machine
  path?: string; // cuda matmul: the GEMM path that ran (wgmma, mma or simt; LINKBERT_CUDA_GEMM picks)
  error?: string;
}

interface Opts {
  device: string;
  json?: boolean;
  quick?: boolean;
  peer?: string;
  python: string;
  threads?: string;
  only?: string;
  minTime: string;
}

// One op invocation to time: `run` launches it once; flops or bytes give the rate.
interface Case {
  op: string;
  pass: 'forward' | 'backward';
  shape: Shape;
  flops?: number;
  bytes?: number;
  setup: (t: Tensors) => () => void;
}

/** Allocates tensors for one case and frees them all afterwards. */
class Tensors {
  private ids: number[] = [];
  constructor(
    readonly addon: NativeAddon,
    readonly device: 'cpu' | 'cuda',
    private seed = 1,
  ) {}
  private rand(n: number, scale: number): Float32Array {
    // xorshift: fast enough for 100M values, deterministic
    const out = new Float32Array(n);
    let s = this.seed++ * 2654435761 || 1;
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
    }
    return out;
  }
  f32(shape: number[], fill: 'rand' | 'zero' | 'one' | 'pos' = 'rand', scale = 1, dtype: DType = 'f32'): number {
    const id = this.addon.alloc(shape, dtype, this.device);
    this.ids.push(id);
    const n = shape.reduce((a, b) => a * b, 1);
    if (fill === 'rand') this.addon.setData(id, this.rand(n, scale));
    else if (fill === 'one') this.addon.setData(id, new Float32Array(n).fill(1));
    else if (fill === 'pos') this.addon.setData(id, this.rand(n, scale).map((v) => Math.abs(v) + 0.1));
    else this.addon.setData(id, new Float32Array(n));
    return id;
  }
  i32(shape: number[], values: Int32Array): number {
    const id = this.addon.alloc(shape, 'i32', this.device);
    this.ids.push(id);
    this.addon.setData(id, values);
    return id;
  }
  disposeAll(): void {
    for (const id of this.ids) this.addon.dispose(id);
    this.ids = [];
  }
}

const TOKENS = 4096; // 32 sequences x 128 tokens: one training micro-batch
const MASKED = 640; // ~15% of 4096 tokens go through the MLM decoder

interface Config { name: string; hidden: number; inter: number; heads: number; tokens?: number; seq?: number }
const MINI: Config = { name: 'bert-mini', hidden: 256, inter: 1024, heads: 4 };
const BASE: Config = { name: 'bert-base', hidden: 768, inter: 3072, heads: 12 };
// cuda only: the issue #3 target shapes (B*T = 16k tokens of BERT-large, attention at seq 512)
const LARGE: Config = { name: 'bert-large', hidden: 1024, inter: 4096, heads: 16, tokens: 16384, seq: 512 };
const VOCAB = 30522;

export interface GemmShape { M: number; N: number; K: number; trans_a: boolean; trans_b: boolean; beta: number }

/** The GEMMs of one training step for a linear layer fan_in -> fan_out over `rows` tokens. */
function linearGemms(rows: number, fanIn: number, fanOut: number): GemmShape[] {
  return [
    { M: rows, N: fanOut, K: fanIn, trans_a: false, trans_b: true, beta: 0 }, // y = x W^T       (NT)
    { M: rows, N: fanIn, K: fanOut, trans_a: false, trans_b: false, beta: 0 }, // dx = dy W      (NN)
    { M: fanOut, N: fanIn, K: rows, trans_a: true, trans_b: false, beta: 1 }, // dW += dy^T x    (TN)
  ];
}

export function gemmShapes(quick: boolean): { config: string; layer: string; s: GemmShape }[] {
  const out: { config: string; layer: string; s: GemmShape }[] = [];
  for (const c of quick ? [MINI] : [MINI, BASE]) {
    const H = c.hidden;
    const layers: [string, number, number][] = [
      ['qkv', H, 3 * H],
      ['attn_out', H, H],
      ['ffn_up', H, c.inter],
      ['ffn_down', c.inter, H],
    ];
    for (const [layer, fi, fo] of layers) for (const s of linearGemms(TOKENS, fi, fo)) out.push({ config: c.name, layer, s });
    if (!quick || c === MINI) out.push({ config: c.name, layer: 'mlm_decoder', s: linearGemms(MASKED, H, VOCAB)[0] });
  }
  return out;
}

function gemmCase(config: string, layer: string, s: GemmShape, epilogue: 'none' | 'bias' | 'bias_gelu' = 'none', dtype: DType = 'f32'): Case {
  const shape: Shape = { M: s.M, N: s.N, K: s.K, trans_a: s.trans_a, trans_b: s.trans_b, beta: s.beta, config, layer };
  if (epilogue !== 'none') shape.epilogue = epilogue;
  if (dtype !== 'f32') shape.dtype = dtype; // cuda: bf16 A, B and C (the tensor-core paths), f32 accumulation
  return {
    op: 'matmul',
    pass: 'forward',
    shape,
    flops: 2 * s.M * s.N * s.K,
    setup: (t) => {
      const a = t.f32(s.trans_a ? [s.K, s.M] : [s.M, s.K], 'rand', 1, dtype);
      const b = t.f32(s.trans_b ? [s.N, s.K] : [s.K, s.N], 'rand', 0.05, dtype);
      const c = t.f32([s.M, s.N], 'zero', 1, dtype);
      const args: Record<string, unknown> = { a, b, c, M: s.M, N: s.N, K: s.K, trans_a: s.trans_a, trans_b: s.trans_b, beta: s.beta };
      if (epilogue !== 'none') {
        args.epilogue = epilogue;
        args.bias = t.f32([s.N], 'rand', 0.1);
        if (epilogue === 'bias_gelu') args.pre_gelu = t.f32([s.M, s.N], 'zero', 1, dtype);
      }
      return () => t.addon.run('matmul', 'forward', backendOf(t.device), args);
    },
  };
}

function backendOf(device: 'cpu' | 'cuda'): BackendName {
  return device === 'cuda' ? 'cuda' : 'cpu';
}

function memoryCases(quick: boolean, configs: Config[] = quick ? [MINI] : [MINI, BASE]): Case[] {
  const cases: Case[] = [];
  const F = 4; // bytes per f32
  for (const c of configs) {
    const tokens = c.tokens ?? TOKENS;
    const rows = tokens, cols = c.hidden, n = rows * cols;
    // the forward twice: storing the sum x + residual, and without it, as the training step runs it (its
    // backward forms the sum again)
    for (const withSum of [true, false]) {
      cases.push({
        op: 'layernorm', pass: 'forward', shape: { rows, cols, residual: true, ...(withSum ? {} : { sum: false }), config: c.name },
        bytes: F * ((withSum ? 4 : 3) * n + 2 * rows + 2 * cols), // x, residual -> (sum), out; mean, rstd; gamma, beta
        setup: (t) => {
          const args = {
            x: t.f32([rows, cols]), residual: t.f32([rows, cols]), ...(withSum ? { sum: t.f32([rows, cols], 'zero') } : {}), out: t.f32([rows, cols], 'zero'),
            mean: t.f32([rows], 'zero'), rstd: t.f32([rows], 'zero'), gamma: t.f32([cols], 'one'), beta: t.f32([cols], 'zero'), rows, cols, eps: 1e-12,
          };
          return () => t.addon.run('layernorm', 'forward', backendOf(t.device), args);
        },
      });
    }
    // the backward twice: dx into its own array, and dx over dout as the training step runs it (the same
    // compulsory bytes, one array fewer through the cache). Its input is a normalised x (mean 0, rstd 1,
    // gamma 1), where the backward is a projection: run again on its own output (in place) it gives the
    // same values, instead of drifting towards denormals or overflow over the timed runs.
    for (const inPlace of [false, true]) {
      cases.push({
        op: 'layernorm', pass: 'backward', shape: { rows, cols, ...(inPlace ? { in_place: true } : {}), config: c.name },
        bytes: F * (3 * n + 2 * rows + 5 * cols), // x, dout -> dx; mean, rstd; gamma; dgamma, dbeta (+=)
        setup: (t) => {
          const x = t.f32([rows, cols], 'zero'), mean = t.f32([rows], 'zero'), rstd = t.f32([rows], 'zero');
          const gamma = t.f32([cols], 'one'), beta = t.f32([cols], 'zero');
          const dev = backendOf(t.device);
          t.addon.run('layernorm', 'forward', dev, { x: t.f32([rows, cols]), out: x, mean, rstd, gamma, beta, rows, cols, eps: 1e-12 });
          t.addon.run('fill', 'forward', dev, { x: mean, value: 0 });
          t.addon.run('fill', 'forward', dev, { x: rstd, value: 1 });
          const dout = t.f32([rows, cols]);
          const args = {
            x, mean, rstd, gamma, dout, dx: inPlace ? dout : t.f32([rows, cols], 'zero'), dgamma: t.f32([cols], 'zero'), dbeta: t.f32([cols], 'zero'), rows, cols,
          };
          return () => t.addon.run('layernorm', 'backward', dev, args);
        },
      });
    }
    // the residual stream's gradient sums (BertModel's backward): out = a + b into its own array, and
    // over a. Also the simplest op with the layernorm backward's streams (two read, one written), so its
    // vs_memcpy is what an op of that shape reaches with no arithmetic, in the same run.
    for (const inPlace of [false, true]) {
      cases.push({
        op: 'axpby', pass: 'forward', shape: { n, ...(inPlace ? { in_place: true } : {}), config: c.name },
        bytes: F * 3 * n, // a, b -> out
        setup: (t) => {
          const a = t.f32([n]);
          // in place, a grows by b each run: a few hundred runs stay far from overflow
          const args = { a, b: t.f32([n]), out: inPlace ? a : t.f32([n], 'zero'), alpha: 1, beta: 1 };
          return () => t.addon.run('axpby', 'forward', backendOf(t.device), args);
        },
      });
    }
    const ng = tokens * c.inter;
    cases.push({
      op: 'gelu', pass: 'forward', shape: { n: ng, config: c.name }, bytes: F * 2 * ng,
      setup: (t) => {
        const args = { x: t.f32([ng], 'rand', 3), out: t.f32([ng], 'zero') };
        return () => t.addon.run('gelu', 'forward', backendOf(t.device), args);
      },
    });
    // the same on wide inputs, U(-8, 8), as a trained model gives (22% of the demo model's GELU inputs are
    // below -5.5): a kernel with a fast path for small |x| would show it here
    cases.push({
      op: 'gelu', pass: 'forward', shape: { n: ng, x: 'U(-8,8)', config: c.name }, bytes: F * 2 * ng,
      setup: (t) => {
        const args = { x: t.f32([ng], 'rand', 8), out: t.f32([ng], 'zero') };
        return () => t.addon.run('gelu', 'forward', backendOf(t.device), args);
      },
    });
    cases.push({
      op: 'gelu', pass: 'backward', shape: { n: ng, config: c.name }, bytes: F * 3 * ng,
      setup: (t) => {
        const args = { x: t.f32([ng], 'rand', 3), dout: t.f32([ng]), dx: t.f32([ng], 'zero') };
        return () => t.addon.run('gelu', 'backward', backendOf(t.device), args);
      },
    });
    // the plain elementwise ops, at the FFN activation's size: scale in place (gradient scaling), fill
    // (zeroing gradients: written only), and the f32 <-> bf16 casts of mixed precision
    cases.push({
      op: 'scale', pass: 'forward', shape: { n: ng, in_place: true, config: c.name }, bytes: F * 2 * ng,
      setup: (t) => {
        const args = { x: t.f32([ng]), s: 1 }; // s = 1: the timed runs leave x as it is
        return () => t.addon.run('scale', 'forward', backendOf(t.device), args);
      },
    });
    cases.push({
      op: 'fill', pass: 'forward', shape: { n: ng, config: c.name }, bytes: F * ng,
      setup: (t) => {
        const args = { x: t.f32([ng]), value: 0 };
        return () => t.addon.run('fill', 'forward', backendOf(t.device), args);
      },
    });
    for (const [src, dst] of [['f32', 'bf16'], ['bf16', 'f32']] as const) {
      cases.push({
        op: 'copy', pass: 'forward', shape: { n: ng, src, dst, config: c.name }, bytes: (F + 2) * ng,
        setup: (t) => {
          const args = { src: t.f32([ng], 'rand', 1, src), dst: t.f32([ng], 'zero', 1, dst) };
          return () => t.addon.run('copy', 'forward', backendOf(t.device), args);
        },
      });
    }
    // hidden dropout (p = 0.1) on the residual stream: Philox keep bits, 64 per AVX-512 pass
    const nd = tokens * c.hidden;
    cases.push({
      op: 'dropout', pass: 'forward', shape: { n: nd, p: 0.1, config: c.name }, bytes: F * 2 * nd,
      setup: (t) => {
        const args = { x: t.f32([nd]), out: t.f32([nd], 'zero'), p: 0.1, seed: 7, offset: 0 };
        return () => t.addon.run('dropout', 'forward', backendOf(t.device), args);
      },
    });
    cases.push({
      op: 'bias_backward', pass: 'forward', shape: { M: tokens, N: c.inter, config: c.name }, bytes: F * (tokens * c.inter + 2 * c.inter),
      setup: (t) => {
        const args = { dout: t.f32([tokens, c.inter]), dbias: t.f32([c.inter], 'zero'), M: tokens, N: c.inter };
        return () => t.addon.run('bias_backward', 'forward', backendOf(t.device), args);
      },
    });
  }
  // dlogits into their own array, and in place over the logits, as the training step runs it (the model's
  // MLM head): in place, the row being written is the one just read, so no line is fetched for the stores
  for (const inPlace of [false, true]) {
    const N = MASKED, V = VOCAB, nv = N * V;
    cases.push({
      op: 'softmax_xent', pass: 'forward', shape: { N, V, dlogits: true, ...(inPlace ? { in_place: true } : {}) },
      bytes: F * (2 * nv + 3 * N), // logits -> dlogits; labels, losses, correct
      setup: (t) => {
        const labels = new Int32Array(N);
        for (let i = 0; i < N; i++) labels[i] = (i * 7919) % V;
        const logits = t.f32([N, V], 'rand', 4);
        const args = {
          logits, labels: t.i32([N], labels), losses: t.f32([N], 'zero'),
          correct: t.i32([N], new Int32Array(N)), dlogits: inPlace ? logits : t.f32([N, V], 'zero'), N, V, grad_scale: 1 / N,
        };
        return () => t.addon.run('softmax_xent', 'forward', backendOf(t.device), args);
      },
    });
  }
  {
    const n = quick ? 4_194_304 : 11_170_560; // bert-mini's parameter count (full run)
    cases.push({
      op: 'adamw', pass: 'forward', shape: { n }, bytes: F * 7 * n, // param, grad, m, v -> param, m, v
      setup: (t) => {
        const args = { param: t.f32([n]), grad: t.f32([n], 'rand', 0.01), m: t.f32([n], 'zero'), v: t.f32([n], 'zero'), lr: 1e-4, weight_decay: 0.01, step: 10 };
        return () => t.addon.run('adamw', 'forward', backendOf(t.device), args);
      },
    });
  }
  return cases;
}

/** the streaming copy reference: 2^26 f32 (256 MB) copied into another 256 MB */
const STREAM_COPY_N = 2 ** 26;

function copyCase(n: number): Case {
  return {
    op: 'copy', pass: 'forward', shape: { n, src: 'f32', dst: 'f32' }, bytes: 4 * 2 * n,
    setup: (t) => {
      const args = { src: t.f32([n]), dst: t.f32([n], 'zero') };
      return () => t.addon.run('copy', 'forward', backendOf(t.device), args);
    },
  };
}

function attentionCases(quick: boolean, dtype: DType = 'f32', configs: Config[] = quick ? [MINI] : [MINI, BASE], dropout = 0): Case[] {
  const cases: Case[] = [];
  for (const c of configs) {
    const T = c.seq ?? 128, B = c.tokens ? c.tokens / T : quick ? 8 : 32, NH = c.heads, D = c.hidden / c.heads;
    const fwdFlops = 4 * B * NH * T * T * D; // S = Q K^T and O = P V
    const shape: Shape = { B, T, NH, D, config: c.name };
    if (dtype !== 'f32') shape.dtype = dtype; // bf16: the tensor-core (FlashAttention-2 style) kernels
    if (dropout > 0) shape.dropout_p = dropout; // as in pretraining: the mask is drawn in the kernels (Philox)
    const x = (t: Tensors, init?: 'zero') => t.f32([B, T, NH, D], init, 1, dtype);
    const mk = (t: Tensors) => ({
      q: x(t), k: x(t), v: x(t), out: x(t, 'zero'),
      lse: t.f32([B, NH, T], 'zero'), key_mask: t.i32([B, T], new Int32Array(B * T).fill(1)), B, T, NH, D,
      ...(dropout > 0 ? { dropout_p: dropout, seed: 1234, offset: 0 } : {}),
    });
    cases.push({
      op: 'attention', pass: 'forward', shape, flops: fwdFlops,
      setup: (t) => {
        const args = mk(t);
        return () => t.addon.run('attention', 'forward', backendOf(t.device), args);
      },
    });
    cases.push({
      op: 'attention', pass: 'backward', shape, flops: 2.5 * fwdFlops, // recompute S, then dV, dP, dQ, dK
      setup: (t) => {
        const args = { ...mk(t), dout: x(t), dq: x(t, 'zero'), dk: x(t, 'zero'), dv: x(t, 'zero'), delta: t.f32([B, NH, T], 'zero') };
        t.addon.run('attention', 'forward', backendOf(t.device), args); // out and lse for the backward
        return () => t.addon.run('attention', 'backward', backendOf(t.device), args);
      },
    });
  }
  return cases;
}

/** Times `fns` (one op, or an op and its peer), each run of each in turn, so that a peer sees the same
 *  load on a shared machine as the op it is compared with: warm-up, then at least 3 runs each and until
 *  minTime seconds, at most `maxRuns` each. On the CPU the warm-up is at least 3 runs and 20 ms, and up
 *  to 200 runs are timed: the first few runs after a case's setup took 2-6x the steady time (the pool's
 *  threads had gone to sleep during the setup, caches were cold), and with one warm-up and at most 50
 *  runs they moved the median of a 0.1 ms op by 10-20%. On cuda (one warm-up, at most 50 runs, as in
 *  the committed GPU results) each run is timed by events on the stream (the launch and the host's
 *  wait are not counted; the flush is enqueued before the start event). Returns each fn's times, sorted. */
async function timeRuns(addon: NativeAddon, device: 'cpu' | 'cuda', fns: (() => void)[], minTime: number, flush?: () => void): Promise<number[][]> {
  const cuda = device === 'cuda';
  const maxRuns = cuda ? 50 : 200;
  const warm = performance.now();
  for (let i = 0; i < 1 || (!cuda && (i < 3 || (performance.now() - warm < 20 && i < 200))); i++) for (const fn of fns) fn();
  if (cuda) await addon.synchronize();
  const times: number[][] = fns.map(() => []);
  const start = performance.now();
  while (times[0].length < 3 || (performance.now() - start < minTime * 1000 && times[0].length < maxRuns)) {
    for (let k = 0; k < fns.length; k++) {
      if (flush) flush();
      if (cuda) {
        addon.cudaTimerStart();
        fns[k]();
        times[k].push(addon.cudaTimerStop());
        continue;
      }
      const t0 = performance.now();
      fns[k]();
      times[k].push(performance.now() - t0);
    }
  }
  if (cuda) await addon.synchronize(); // surfaces a device error from the timed runs
  return times.map((t) => t.sort((a, b) => a - b));
}

function median(sorted: number[]): number {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

/** Runs case `c`; with `peer` (the memcpy case of the same bytes) the two are timed in turn, and the
 *  peer's result comes back too. */
async function runCase(addon: NativeAddon, device: 'cpu' | 'cuda', c: Case, minTime: number, flush?: () => void, peer?: Case): Promise<KernelResult[]> {
  const cs = peer ? [c, peer] : [c];
  const bases: KernelResult[] = cs.map((k) => ({ op: k.op, pass: k.pass, device, shape: k.shape, median_ms: NaN, min_ms: NaN, reps: 0 }));
  const dtype: DType = c.shape.dtype === 'bf16' ? 'bf16' : 'f32';
  if (!addon.supports(backendOf(device), c.op, dtype)) return [{ ...bases[0], error: `${backendOf(device)} backend does not support ${c.op} ${dtype}` }];
  const t = new Tensors(addon, device);
  try {
    const fns = cs.map((k) => k.setup(t));
    // Memory-bound ops on CUDA would otherwise read from a warm L2 (50 MB on an H100).
    const times = await timeRuns(addon, device, fns, minTime, c.bytes !== undefined ? flush : undefined);
    return cs.map((k, i) => {
      const med = median(times[i]);
      const r: KernelResult = { ...bases[i], median_ms: med, min_ms: times[i][0], reps: times[i].length };
      if (device === 'cuda' && k.op === 'matmul') r.path = (addon as unknown as { cudaMatmulPath?: () => string }).cudaMatmulPath?.();
      if (k.flops !== undefined) {
        r.flops = k.flops;
        r.gflops = k.flops / (med * 1e6);
      }
      if (k.bytes !== undefined) {
        r.bytes = k.bytes;
        r.gbps = k.bytes / (med * 1e6);
      }
      return r;
    });
  } catch (e) {
    return [{ ...bases[0], error: (e as Error).message }];
  } finally {
    t.disposeAll();
  }
}

type PeerTiming = GemmShape & { name: string; blas: string; median_ms: number; min_ms: number; gflops: number; peer_beta?: number };
interface PeerHeader { threads: number; python: string; peers: { name: string; blas: string }[]; skipped: string[] }

/** scripts/bench_torch.py --serve: a child that times one GEMM shape per request, so each peer timing
 * is taken right after ours for the same shape (load on a shared machine drifts over minutes). */
class PeerServer {
  private pending: ((line: string | null) => void)[] = [];
  private buffered: string[] = [];
  private closed = false;
  private constructor(private proc: ChildProcessWithoutNullStreams) {
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const waiter = this.pending.shift();
      if (waiter) waiter(line);
      else this.buffered.push(line);
    });
    proc.on('close', () => {
      this.closed = true;
      for (const w of this.pending.splice(0)) w(null);
    });
  }
  private next(): Promise<string | null> {
    const b = this.buffered.shift();
    if (b !== undefined) return Promise.resolve(b);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.pending.push(resolve));
  }
  /** Starts the peer; null (with a message) if python or the script cannot run. */
  static async start(python: string, threads: number, minTime: number, log: (s: string) => void): Promise<{ server: PeerServer; header: PeerHeader } | null> {
    const script = path.join(repoRoot, 'scripts', 'bench_torch.py');
    if (!existsSync(script)) {
      log(`peer skipped: ${script} not found`);
      return null;
    }
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE; // this command only: let OpenBLAS pick its kernels for this CPU
    delete env.OPENBLAS_L2_SIZE;
    let proc: ChildProcessWithoutNullStreams;
    try {
      proc = spawn(python, [script, '--serve', '--threads', String(threads), '--min-time', String(minTime)], { env, stdio: 'pipe' });
    } catch (e) {
      log(`peer skipped: cannot run ${python} (${(e as Error).message})`);
      return null;
    }
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const failed = new Promise<null>((resolve) => proc.on('error', () => resolve(null)));
    const server = new PeerServer(proc);
    const line = await Promise.race([server.next(), failed]);
    if (line === null) {
      log(`peer skipped: ${python} ${path.relative(repoRoot, script)} did not start${stderr ? ': ' + stderr.trim().split('\n').slice(-2).join(' | ') : ''}`);
      proc.kill();
      return null;
    }
    const header = JSON.parse(line) as PeerHeader;
    for (const sk of header.skipped) log(`peer note: ${sk}`);
    if (!header.peers.length) {
      server.close();
      return null;
    }
    return { server, header };
  }
  async time(s: GemmShape): Promise<PeerTiming[]> {
    if (this.closed) return [];
    this.proc.stdin.write(JSON.stringify(s) + '\n');
    const line = await this.next();
    return line === null ? [] : (JSON.parse(line) as { results: PeerTiming[] }).results;
  }
  close(): void {
    if (!this.closed) this.proc.stdin.end();
  }
}

function machineInfo(addon: NativeAddon, device: 'cpu' | 'cuda'): Record<string, unknown> {
  const info = addon.info();
  const cpus = os.cpus();
  let commit: string | undefined;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    commit = undefined;
  }
  return {
    date: new Date().toISOString(),
    commit,
    device,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    simd: info.simd,
    threads: info.threads,
    cuda_devices: info.cuda_device_names,
    timing: device === 'cuda' ? 'cuda events around each run (L2 flushed before)' : 'performance.now() around each run',
    node: process.version,
  };
}

function fmtShape(s: Shape): string {
  if ('M' in s && 'K' in s) {
    const t = `${s.trans_a ? 'T' : 'N'}${s.trans_b ? 'T' : 'N'}`;
    return `${s.M}x${s.N}x${s.K} ${t}${s.beta ? ' b=1' : ''}${s.epilogue ? ' ' + String(s.epilogue) : ''}${s.dtype ? ' ' + String(s.dtype) : ''} ${s.layer ?? ''}`.trim();
  }
  return Object.entries(s)
    .filter(([k]) => k !== 'config')
    .map(([k, v]) => (typeof v === 'boolean' ? (v ? k : '') : `${k}=${v}`))
    .filter(Boolean)
    .join(' ');
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function printTable(results: KernelResult[], machine: Record<string, unknown>): void {
  const lines: string[] = [];
  lines.push(`linkbert bench kernels  ${machine.date}  ${machine.cpu} x${machine.cores}  simd=${machine.simd} threads=${machine.threads}  load=${(machine.loadavg as number[]).join(',')}`);
  lines.push(
    [pad('op', 14), pad('pass', 8), pad('config', 10), pad('shape', 40), pad('median ms', 10, true), pad('GFLOP/s', 9, true), pad('GB/s', 8, true), pad('vs memcpy', 10, true), pad('vs stream', 10, true), pad('vs OpenBLAS', 12, true), pad('(best runs)', 12, true)].join(' '),
  );
  for (const r of results) {
    const cfg = String(r.shape.config ?? '');
    if (r.error) {
      lines.push([pad(r.op, 14), pad(r.pass, 8), pad(cfg, 10), pad(fmtShape(r.shape), 40), `  skipped: ${r.error}`].join(' '));
      continue;
    }
    lines.push(
      [
        pad(r.path ? `${r.op}/${r.path}` : r.op, 14), pad(r.pass, 8), pad(cfg, 10), pad(fmtShape(r.shape), 40),
        pad(r.median_ms.toFixed(3), 10, true),
        pad(r.gflops !== undefined ? r.gflops.toFixed(1) : '', 9, true),
        pad(r.gbps !== undefined ? r.gbps.toFixed(1) : '', 8, true),
        pad(r.vs_memcpy !== undefined ? `${(100 * r.vs_memcpy).toFixed(0)}%` : '', 10, true),
        pad(r.vs_memcpy_stream !== undefined ? `${(100 * r.vs_memcpy_stream).toFixed(0)}%` : '', 10, true),
        pad(r.vs_openblas !== undefined ? `${r.vs_openblas.toFixed(2)}x` : '', 12, true),
        pad(r.vs_openblas_min !== undefined ? `${r.vs_openblas_min.toFixed(2)}x` : '', 12, true),
      ].join(' '),
    );
  }
  process.stdout.write(lines.join('\n') + '\n');
}

function geomean(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

/** The op names --only takes: every op some case times (the case lists are cheap: tensors come in setup). */
export function kernelOps(): string[] {
  const ops = ['matmul', 'attention', ...memoryCases(false).map((c) => c.op)];
  return [...new Set(ops)];
}

// an unknown name used to be dropped silently (an empty table for a typo): refuse it, listing the valid ones
function onlyOps(list: string): Set<string> {
  const names = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const valid = kernelOps();
  const bad = names.filter((n) => !valid.includes(n));
  if (names.length === 0 || bad.length) {
    throw new Error(`--only: ${bad.length ? `unknown op${bad.length > 1 ? 's' : ''} ${bad.map((b) => `"${b}"`).join(', ')}` : 'no op given'}; valid ops: ${valid.join(', ')}`);
  }
  return new Set(names);
}

export async function benchKernels(opts: Opts): Promise<{ machine: Record<string, unknown>; results: KernelResult[]; summary: Record<string, unknown> }> {
  const device = opts.device === 'cuda' ? 'cuda' : 'cpu';
  if (opts.device !== 'cpu' && opts.device !== 'cuda') throw new Error(`--device: "${opts.device}" must be cpu or cuda`);
  // check every flag before loading the addon: a typo should not cost a run
  const nThreads = opts.threads !== undefined ? threadsFlag(opts.threads) : undefined;
  const minTime = posNum('min-time', opts.minTime);
  const only = opts.only !== undefined ? onlyOps(opts.only) : undefined;
  const addon = loadNative(device === 'cuda' ? 'cuda' : undefined);
  if (nThreads !== undefined) addon.setNumThreads(nThreads);
  const quick = !!opts.quick;
  const log = (s: string) => process.stderr.write(s + '\n');
  const want = (op: string) => !only || only.has(op);
  const machine = machineInfo(addon, device);

  // CUDA: a 256 MiB buffer overwritten before each timed launch of a memory-bound op evicts L2.
  let flush: (() => void) | undefined;
  let flushId: number | undefined;
  if (device === 'cuda') {
    flushId = addon.alloc([64 << 20], 'f32', 'cuda');
    const id = flushId;
    flush = () => addon.run('fill', 'forward', 'cuda', { x: id, value: 0 });
  }

  const results: KernelResult[] = [];
  const gemms = gemmShapes(quick);
  const cases: Case[] = [];
  if (want('matmul')) {
    for (const g of gemms) cases.push(gemmCase(g.config, g.layer, g.s));
    // The FFN up-projection as the forward pass runs it: bias + GELU fused, pre-activation stored.
    const up = gemms.find((g) => g.layer === 'ffn_up' && g.s.trans_b && g.config === (quick ? MINI.name : BASE.name));
    if (up) cases.push(gemmCase(up.config, up.layer, up.s, 'bias_gelu'));
    if (device === 'cpu' && addon.supports('cpu', 'matmul', 'bf16') && !opts.peer) {
      // --precision bf16 on CPU: the model GEMMs with bf16 operands (vdpbf16ps where the CPU has AVX512-BF16)
      for (const g of gemms) cases.push(gemmCase(g.config, g.layer, g.s, 'none', 'bf16'));
    }
    if (device === 'cuda') {
      // bf16, as training runs on the GPU: the model GEMMs, the fused FFN-up, and the 4096^3 rows of the
      // issue #3 target (>= 600 TFLOP/s on H100); `path` says whether wgmma or mma.sync ran.
      for (const g of gemms) cases.push(gemmCase(g.config, g.layer, g.s, 'none', 'bf16'));
      if (up) cases.push(gemmCase(up.config, up.layer, up.s, 'bias_gelu', 'bf16'));
      const n = 4096;
      for (const [ta, tb] of [[false, true], [false, false], [true, false]] as const)
        cases.push(gemmCase('square', '4096^3', { M: n, N: n, K: n, trans_a: ta, trans_b: tb, beta: 0 }, 'none', 'bf16'));
    }
  }
  const large = device === 'cuda' && !quick;
  if (want('attention')) {
    cases.push(...attentionCases(quick), ...(device === 'cuda' ? attentionCases(quick, 'bf16') : []), ...(large ? attentionCases(quick, 'bf16', [LARGE]) : []));
    // with attention dropout 0.1, as the training step runs it (cuda: the bf16 kernels; cpu: f32, full runs)
    if (device === 'cuda') cases.push(...attentionCases(quick, 'bf16', undefined, 0.1));
    else if (!quick) cases.push(...attentionCases(quick, 'f32', [MINI], 0.1));
  }
  cases.push(...memoryCases(quick).filter((c) => want(c.op)), ...(large ? memoryCases(quick, [LARGE]).filter((c) => want(c.op)) : []));

  let peer: { server: PeerServer; header: PeerHeader } | null = null;
  if (opts.peer) {
    if (opts.peer !== 'torch' && opts.peer !== 'openblas') throw new Error(`--peer must be torch (OpenBLAS + torch via scripts/bench_torch.py)`);
    if (device !== 'cpu') log('peer: OpenBLAS/torch time the CPU; ratios against a cuda run are not meaningful');
    if (cases.some((c) => c.op === 'matmul')) peer = await PeerServer.start(opts.python, Number(machine.threads), minTime, log);
  }

  // the machine's streaming copy bandwidth: 256 MB, larger than any cache, before and after the cases
  const streamCopy = async (): Promise<number | undefined> => {
    const [r] = await runCase(addon, device, copyCase(STREAM_COPY_N), minTime, flush);
    return r?.gbps;
  };
  const stream: number[] = [];
  const memoryBound = !quick && cases.some((c) => c.bytes !== undefined);
  if (memoryBound) {
    const g = await streamCopy();
    if (g !== undefined) stream.push(g);
  }
  const copySizes = new Set<number>();
  for (const c of cases) {
    const tty = !opts.json && process.stderr.isTTY;
    if (tty) process.stderr.write(`  ${c.op} ${c.pass} ${fmtShape(c.shape)} ...\r`);
    // OpenBLAS's threads busy-wait for a while after each call (THREAD_TIMEOUT, ~2^28 cycles): timed right
    // after the peer, our small GEMMs shared the cores with them (medians halved, minima unchanged)
    if (peer && c.op === 'matmul') await new Promise((r) => setTimeout(r, 250));
    // The memcpy peer of a memory-bound op: a native f32 copy moving the same bytes (half read, half
    // written), timed in turn with the op. Its row is listed once per size.
    const copyN = c.bytes !== undefined ? Math.max(1, Math.round(c.bytes / 8)) : 0;
    const [r, cp] = await runCase(addon, device, c, minTime, flush, c.bytes !== undefined ? copyCase(copyN) : undefined);
    if (cp && !copySizes.has(copyN)) {
      copySizes.add(copyN);
      results.push(cp);
    }
    if (cp && r.gbps !== undefined && cp.gbps !== undefined) {
      r.memcpy_gbps = cp.gbps;
      r.vs_memcpy = r.gbps / cp.gbps;
    }
    if (peer && r.op === 'matmul' && !r.error && r.shape.epilogue === undefined) {
      const sh = r.shape;
      for (const m of await peer.server.time({ M: sh.M, N: sh.N, K: sh.K, trans_a: sh.trans_a, trans_b: sh.trans_b, beta: sh.beta } as GemmShape)) {
        (r.peers ??= []).push({ name: m.name, blas: m.blas, median_ms: m.median_ms, gflops: m.gflops, ratio: m.median_ms / r.median_ms });
        if (m.name === 'openblas' && /openblas/i.test(m.blas)) {
          r.vs_openblas = m.median_ms / r.median_ms;
          r.vs_openblas_min = m.min_ms / r.min_ms;
        }
      }
    }
    results.push(r);
    if (tty) process.stderr.write(' '.repeat(100) + '\r');
  }
  if (memoryBound) {
    const g = await streamCopy();
    if (g !== undefined) stream.push(g);
  }
  if (flushId !== undefined) addon.dispose(flushId);
  const streamGbps = stream.length ? Math.max(...stream) : undefined;
  if (streamGbps !== undefined) for (const r of results) if (r.gbps !== undefined && !(r.op === 'copy' && r.shape.src === r.shape.dst)) r.vs_memcpy_stream = r.gbps / streamGbps;

  const summary: Record<string, unknown> = {};
  if (device === 'cuda') {
    // issue #3 GEMM target: >= 600 TFLOP/s at 4096^3 bf16 (H100 SXM peak 989)
    const sq = results.filter((r) => r.op === 'matmul' && r.shape.layer === '4096^3' && r.gflops !== undefined);
    if (sq.length) summary.gemm_4096_bf16_tflops = Object.fromEntries(sq.map((r) => [`${r.shape.trans_a ? 'T' : 'N'}${r.shape.trans_b ? 'T' : 'N'}`, { tflops: (r.gflops as number) / 1000, path: r.path }]));
  }
  if (peer) {
    peer.server.close();
    summary.peer = { python: peer.header.python, threads: peer.header.threads, peers: peer.header.peers, skipped: peer.header.skipped };
    const mm = results.filter((r) => r.op === 'matmul');
    const ratios = mm.map((r) => r.vs_openblas).filter((x): x is number => x !== undefined);
    const best = mm.map((r) => r.vs_openblas_min).filter((x): x is number => x !== undefined);
    if (ratios.length) {
      summary.gemm_vs_openblas_geomean = geomean(ratios);
      summary.gemm_vs_openblas_worst = Math.min(...ratios);
      summary.gemm_vs_openblas_best_runs_geomean = geomean(best);
      summary.gemm_vs_openblas_best_runs_worst = Math.min(...best);
    }
  }
  if (streamGbps !== undefined) summary.memcpy_stream_gbps = { before: stream[0], after: stream[1], bytes: 8 * STREAM_COPY_N };
  for (const op of ['layernorm', 'gelu', 'softmax_xent', 'axpby', 'adamw', 'bias_backward']) {
    const rs = results.filter((r) => r.op === op && r.vs_memcpy !== undefined).map((r) => r.vs_memcpy as number);
    if (rs.length) summary[`${op}_vs_memcpy_min`] = Math.min(...rs);
    const ss = results.filter((r) => r.op === op && r.vs_memcpy_stream !== undefined).map((r) => r.vs_memcpy_stream as number);
    if (ss.length) summary[`${op}_vs_memcpy_stream_min`] = Math.min(...ss);
  }
  return { machine, results, summary };
}

export function register(bench: Command): void {
  bench
    .command('kernels')
    .description('per-op median time and GFLOP/s or GB/s; memory-bound ops vs a native copy, GEMMs vs OpenBLAS with --peer torch')
    .option('--device <device>', 'cpu or cuda', 'cpu')
    .option('--json', 'print one JSON document')
    .option('--quick', 'bert-mini shapes only, shorter timing')
    .option('--peer <name>', 'torch: also time the GEMMs with OpenBLAS/torch (scripts/bench_torch.py) and print ratios')
    .option('--python <exe>', 'python for --peer', 'python3')
    .option('--threads <n>', 'CPU threads (default: LINKBERT_NUM_THREADS or all cores)')
    .option('--only <ops>', `comma-separated ops: ${kernelOps().join(', ')}`)
    .option('--min-time <s>', 'time each case for at least this long (seconds)', '0.5')
    .action(async (o: Opts) => {
      if (o.quick && o.minTime === '0.5') o.minTime = '0.2';
      const { machine, results, summary } = await benchKernels(o);
      if (o.json) process.stdout.write(JSON.stringify({ bench: 'kernels', machine, summary, results }, null, 1) + '\n');
      else {
        printTable(results, machine);
        for (const [k, v] of Object.entries(summary)) process.stdout.write(`${k}: ${typeof v === 'number' ? v.toFixed(3) : JSON.stringify(v)}\n`);
      }
    });
}
