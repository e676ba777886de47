// The CUDA kernels' host/device helpers that no CPU kernel uses, checked on the CPU: the online softmax
// state (softmax_xent.cu, generic attention) against a two-pass fp64 logsumexp, and the index math of the
// Hopper GEMM (kernels/cuda/gemm_sm90.h: wgmma accumulator fragment, 128B swizzle, shared-memory matrix
// descriptors, tile raster, shape eligibility) against the layouts the PTX ISA documents; Philox4x32-10
// against Random123's published known-answer vectors, and the block / pair forms the CUDA dropout and
// attention kernels use against the one-counter form every backend's dropout uses.
import test from 'ava';
import { loadNative } from '../src/native.js';

interface HostMath {
  onlineSoftmaxLse(x: Float32Array, chunk: number): number;
  wgmmaAccCoords(n: number): Int32Array;
  sw128(offsets: Int32Array): Int32Array;
  wgmmaDesc(start: number, lbo: number, sbo: number, swizzle: number): { bits: bigint; start: number; lbo: number; sbo: number; baseOffset: number; swizzle: number };
  sm90OperandAddrs(mnMajor: boolean, rows: number, row0: number, tile: number): { tma: Int32Array; wgmma: Int32Array };
  sm90Tiles(nm: number, nn: number, group: number): Int32Array;
  sm90Reject(shape: Record<string, number | boolean>): number;
  splitkPlan(shape: Record<string, number | boolean>): { slices: number; kc: number; strideA: number; strideB: number };
  philox4x32(ctr: Uint32Array, key: Uint32Array): Uint32Array;
  dropoutUniforms(seed: bigint, block: bigint): { perCounter: Float32Array; perBlock: Float32Array; perPair: Float32Array };
}
const native = loadNative();
const host = (native as unknown as { hostMath: HostMath }).hostMath;

function lse64(x: Float32Array): number {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const v of x) s += Math.exp(v - m);
  return m + Math.log(s);
}

test('online softmax: logsumexp matches two-pass fp64 for any chunking, incl. ±100 and masked (-inf) values', (t) => {
  let seed = 5;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const cases: [string, Float32Array][] = [
    ['random normal-ish, n=1000', Float32Array.from({ length: 1000 }, () => 4 * (rnd() - 0.5))],
    ['logits at +-100', Float32Array.from({ length: 257 }, (_, i) => (i % 2 ? 100 : -100) + rnd())],
    ['all but one masked', Float32Array.from({ length: 129 }, (_, i) => (i === 77 ? 3.5 : -Infinity))],
    ['increasing (max changes every push)', Float32Array.from({ length: 300 }, (_, i) => i * 0.37)],
    ['single value', Float32Array.of(-2.25)],
  ];
  for (const [name, x] of cases) {
    const want = lse64(x);
    for (const chunk of [1, 3, 32, 128, 100000]) {
      const got = host.onlineSoftmaxLse(x, chunk);
      t.true(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${name}, chunk ${chunk}: ${got} vs ${want}`);
    }
  }
  const masked = Float32Array.from({ length: 10 }, () => -Infinity);
  t.is(host.onlineSoftmaxLse(masked, 4), -Infinity, 'every input masked gives -inf');
  t.throws(() => host.onlineSoftmaxLse(new Float32Array(3), 0), { instanceOf: RangeError });
});

// ---- Hopper GEMM (matmul_sm90.cu) index math

test('wgmma m64nNk16 f32 accumulators: a bijection onto the 64xN tile, laid out as the PTX ISA figure shows', (t) => {
  for (const n of [8, 16, 64, 128, 256]) {
    const rc = host.wgmmaAccCoords(n);
    const per = n / 2;
    t.is(rc.length, 128 * per * 2);
    const seen = new Uint8Array(64 * n);
    for (let th = 0; th < 128; th++) {
      const warp = th >> 5;
      for (let r = 0; r < per; r++) {
        const row = rc[2 * (th * per + r)], col = rc[2 * (th * per + r) + 1];
        t.true(row >= 0 && row < 64 && col >= 0 && col < n, `n=${n} thread ${th} reg ${r}: (${row}, ${col}) outside the tile`);
        seen[row * n + col]++;
        if (row >> 4 !== warp) t.fail(`n=${n}: thread ${th} (warp ${warp}) owns row ${row}; warp w owns rows 16w..16w+15`);
        if (r % 2 === 1) {
          // the epilogue stores registers (r-1, r) as one pair: same row, adjacent columns, even first column
          const prow = rc[2 * (th * per + r - 1)], pcol = rc[2 * (th * per + r - 1) + 1];
          if (prow !== row || pcol + 1 !== col || pcol % 2) t.fail(`n=${n} thread ${th} regs ${r - 1},${r} are not a column pair`);
        }
      }
    }
    t.true(seen.every((c) => c === 1), `n=${n}: every element of the 64x${n} tile is held exactly once`);
  }
  // Documented examples (g = lane/4, q = lane%4): d0,d1 -> (16w+g, 2q..2q+1); d2,d3 -> (16w+g+8, ..); d4.. -> next 8 columns.
  const rc = host.wgmmaAccCoords(256);
  const at = (th: number, r: number) => [rc[2 * (th * 128 + r)], rc[2 * (th * 128 + r) + 1]];
  t.deepEqual(at(0, 0), [0, 0]);
  t.deepEqual(at(0, 1), [0, 1]);
  t.deepEqual(at(0, 2), [8, 0]);
  t.deepEqual(at(0, 3), [8, 1]);
  t.deepEqual(at(0, 4), [0, 8]);
  t.deepEqual(at(5, 0), [1, 2]); // lane 5: g 1, q 1
  t.deepEqual(at(37, 0), [17, 2]); // warp 1, lane 5
  t.deepEqual(at(127, 127), [63, 255]); // warp 3, lane 31, last register
  t.deepEqual(at(66, 42), [16 * 2 + 0 + 8, 8 * 10 + 4 + 0]); // warp 2, lane 2 (g 0, q 2), reg 42 = block 10, d2
});

test('128B swizzle: a permutation of each 1024-byte atom that moves whole 16-byte chunks, chunk c of row r to c ^ r', (t) => {
  const n = 8192;
  const sw = host.sw128(Int32Array.from({ length: n }, (_, i) => i));
  const hit = new Uint8Array(n);
  for (let x = 0; x < n; x++) {
    const y = sw[x];
    t.is(y >> 10, x >> 10, `offset ${x} leaves its atom`);
    if ((y & 15) !== (x & 15)) t.fail(`offset ${x}: byte within the 16-byte chunk changed`);
    const row = (x >> 7) & 7, chunk = (x >> 4) & 7;
    const want = (x & ~0x7f) | ((chunk ^ row) << 4) | (x & 15);
    if (y !== want) t.fail(`offset ${x}: ${y}, expected chunk ${chunk} ^ row ${row}`);
    hit[y]++;
  }
  t.true(hit.every((c) => c === 1), 'a bijection');
  t.deepEqual(Array.from(sw.subarray(0, 128)), Array.from({ length: 128 }, (_, i) => i), 'row 0 of each atom is unchanged');
  const twice = host.sw128(sw);
  t.true(twice.every((v, i) => v === i), 'an involution (TMA writes and wgmma reads with the same pattern)');
});

test('wgmma shared-memory descriptor: fields at bits 0/16/32/62, (x & 0x3FFFF) >> 4 encoding, round trip', (t) => {
  const d = host.wgmmaDesc(1024, 16, 1024, 1);
  t.is(d.bits, 64n | (1n << 16n) | (64n << 32n) | (1n << 62n));
  t.deepEqual([d.start, d.lbo, d.sbo, d.baseOffset, d.swizzle], [1024, 16, 1024, 0, 1]);
  const e = host.wgmmaDesc(0x3fff0, 8192, 0x3fff0, 3);
  t.is(e.bits, 0x3fffn | (512n << 16n) | (0x3fffn << 32n) | (3n << 62n));
  t.is(host.wgmmaDesc(0x40000 + 2048, 0, 0, 0).start, 2048, 'addresses wrap at 2^18 (shared-memory window)');
  t.is(host.wgmmaDesc(1039, 0, 0, 0).start, 1024, 'the low 4 bits are dropped');
  let seed = 7;
  const rnd = (m: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % m);
  for (let i = 0; i < 200; i++) {
    const start = rnd(1 << 14) << 4, lbo = rnd(1 << 14) << 4, sbo = rnd(1 << 14) << 4, sw = rnd(4);
    const f = host.wgmmaDesc(start, lbo, sbo, sw);
    t.deepEqual([f.start, f.lbo, f.sbo, f.swizzle, f.baseOffset], [start, lbo, sbo, sw, 0]);
    if (f.bits >> 46n !== BigInt(sw) << 16n) t.fail('bits 46..61 are zero (base offset 0)');
  }
});

test('sm90 operands: the descriptors the kernel builds read every element where TMA stored it (K- and MN-major, A and B)', (t) => {
  const cases: [string, boolean, number, number][] = [
    ['A K-major, warpgroup 0', false, 64, 0],
    ['A K-major, warpgroup 1', false, 64, 64],
    ['A M-major, warpgroup 0', true, 64, 0],
    ['A M-major, warpgroup 1', true, 64, 64],
    ['B K-major, n128', false, 128, 0],
    ['B K-major, n256', false, 256, 0],
    ['B N-major, n128', true, 128, 0],
    ['B N-major, n256', true, 256, 0],
  ];
  for (const tile of [0, 3 * 1024, 49152 + 16384]) {
    for (const [name, mn, rows, row0] of cases) {
      const { tma, wgmma } = host.sm90OperandAddrs(mn, rows, row0, tile);
      let bad = 0;
      for (let i = 0; i < tma.length; i++) if (tma[i] !== wgmma[i]) bad++;
      t.is(bad, 0, `${name}, tile at ${tile}: ${bad} of ${tma.length} elements read from the wrong address`);
      // non-trivial: the 64 k of each row (4 steps x 16) are 64 distinct bf16 slots of the operand tile
      const uniq = new Set(tma);
      t.is(uniq.size, tma.length, `${name}: distinct addresses`);
      const lo = Math.min(...tma), hi = Math.max(...tma);
      t.true(lo >= tile && hi < tile + (row0 + rows) * 128, `${name}: inside the ${row0 + rows}-row tile`);
      t.true(tma.every((a) => a % 2 === 0), 'bf16 aligned');
    }
  }
  // The swizzle is anchored at 1024-byte boundaries: a tile that is only 512-aligned breaks the agreement,
  // which is why the kernel rounds its shared-memory base up to 1024.
  const { tma, wgmma } = host.sm90OperandAddrs(false, 64, 0, 512);
  t.true(tma.some((a, i) => a !== wgmma[i]), 'a 512-aligned tile is read at other addresses');
});

test('sm90 tile raster: a bijection onto the block grid, walking groups of 8 block-rows column by column', (t) => {
  for (const [nm, nn, g] of [[32, 16, 8], [1, 1, 8], [5, 3, 8], [13, 7, 8], [9, 240, 8], [16, 16, 4], [7, 2, 1]]) {
    const tl = host.sm90Tiles(nm, nn, g);
    const seen = new Uint8Array(nm * nn);
    for (let i = 0; i < nm * nn; i++) {
      const bm = tl[2 * i], bn = tl[2 * i + 1];
      t.true(bm >= 0 && bm < nm && bn >= 0 && bn < nn, `(${nm},${nn},${g}) tile ${i}: (${bm}, ${bn}) outside the grid`);
      seen[bm * nn + bn]++;
      const group = Math.floor(bm / g);
      if (Math.floor(i / (g * nn)) !== group) t.fail(`(${nm},${nn},${g}) tile ${i}: block-row ${bm} is outside its group`);
    }
    t.true(seen.every((c) => c === 1), `(${nm},${nn},${g}): every block exactly once`);
  }
  const tl = host.sm90Tiles(32, 16, 8);
  t.deepEqual(Array.from(tl.subarray(0, 20)), [0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0, 1, 1, 1]);
  const last = host.sm90Tiles(13, 7, 8); // last group has 5 block-rows
  t.deepEqual(Array.from(last.subarray(2 * 56, 2 * 56 + 12)), [8, 0, 9, 0, 10, 0, 11, 0, 12, 0, 8, 1]);
});

test('sm90 shape check: the Hopper path takes TMA-compatible strides and refuses the rest (mma.sync fallback)', (t) => {
  for (const transA of [false, true])
    for (const transB of [false, true]) t.is(host.sm90Reject({ M: 4096, N: 4096, K: 4096, transA, transB }), 0, `4096^3 ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`);
  t.is(host.sm90Reject({ M: 4096, N: 30522, K: 768, transB: true }), 0, 'MLM decoder (N not a multiple of the tile)');
  t.is(host.sm90Reject({ M: 100, N: 30, K: 24 }), 2, 'ldb = N = 30: not a multiple of 8 elements');
  t.is(host.sm90Reject({ M: 100, N: 32, K: 24 }), 0, 'small but aligned: edges are zero-filled by TMA');
  t.is(host.sm90Reject({ M: 64, N: 64, K: 64, alignA: 8 }), 1);
  t.is(host.sm90Reject({ M: 64, N: 64, K: 64, lda: 56 }), 2, 'lda smaller than K');
  t.is(host.sm90Reject({ M: 64, N: 64, K: 64, batch: 4, strideB: 0 }), 3, 'a batch-broadcast operand');
  t.is(host.sm90Reject({ M: 64, N: 64, K: 64, batch: 4, strideA: 64 * 64 + 4 }), 3);
  t.is(host.sm90Reject({ M: 64, N: 64, K: 64, batch: 4 }), 0);
  t.is(host.sm90Reject({ M: 64, N: 64, K: 0 }), 4);
});

test('split K plan (tensor-core paths): the BERT weight gradients (TN, few tiles) split, the rest stay whole', (t) => {
  const plan = (M: number, N: number, K: number, o: Record<string, number | boolean> = {}) => host.splitkPlan({ M, N, K, transA: true, sms: 132, ...o });
  t.like(plan(256, 256, 4096), { slices: 16, kc: 256 }, 'mini attention output / FFN: 4 tiles');
  t.like(plan(768, 256, 4096), { slices: 16, kc: 256 }, 'mini qkv: 12 tiles');
  t.like(plan(768, 768, 4096), { slices: 4, kc: 1024 }, 'base attention output: 36 tiles, 7 and 5 do not divide K');
  t.like(plan(2304, 768, 4096), { slices: 1 }, 'base qkv: 108 tiles, more than half the SMs (split, 0.91x on an H200)');
  t.like(plan(768, 1408, 4096), { slices: 4, kc: 1024 }, '66 tiles: half the SMs still split');
  t.like(plan(768, 1409, 4096), { slices: 1 }, '72 tiles: more than half');
  t.like(plan(3072, 768, 4096), { slices: 1 }, 'base FFN: 144 tiles fill the SMs');
  t.like(plan(256, 256, 1000), { slices: 1 }, 'K below 1024');
  t.like(plan(256, 256, 4096, { batch: 2 }), { slices: 1 }, 'already batched');
  t.like(plan(256, 256, 4160), { slices: 13, kc: 320 }, 'K = 65 k-blocks: the most slices dividing them (13 of 5)');
  t.like(plan(256, 256, 4096 + 8), { slices: 1 }, 'no divisor giving whole 64-deep k-blocks');
  for (const [transA, transB] of [[false, false], [false, true], [true, true]])
    t.like(plan(256, 256, 4096, { transA, transB }), { slices: 1 }, `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}: slices would overlap (off wgmma; 0.78x on mma.sync)`);
  const tn = plan(256, 256, 4096, { lda: 264, ldb: 520 });
  t.is(tn.strideA, 256 * 264, 'A (K,M): kc rows on');
  t.is(tn.strideB, 256 * 520, 'B (K,N): kc rows on');
});

test('split K plan: its slices, run as one batched GEMM on ref and summed in order, give the whole GEMM (TN, padded rows)', (t) => {
  const a = native;
  let seed = 11;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const M = 40, N = 24, K = 1536;
  for (const transA of [true])
    for (const transB of [false]) {
      const lda = (transA ? M : K) + 8, ldb = (transB ? K : N) + 8;
      const s = host.splitkPlan({ M, N, K, transA, transB, lda, ldb, sms: 8 });
      t.true(s.slices > 1 && s.slices * s.kc === K, `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}: split into ${s.slices} x ${s.kc}`);
      const na = (transA ? K : M) * lda, nb = (transB ? N : K) * ldb;
      const A = a.alloc([na], 'f32', 'cpu'), B = a.alloc([nb], 'f32', 'cpu');
      a.setData(A, Float32Array.from({ length: na }, rnd));
      a.setData(B, Float32Array.from({ length: nb }, rnd));
      const whole = a.alloc([M * N], 'f32', 'cpu'), part = a.alloc([s.slices * M * N], 'f32', 'cpu');
      const base = { a: A, b: B, M, N, trans_a: transA, trans_b: transB, lda, ldb };
      a.run('matmul', 'forward', 'ref', { ...base, c: whole, K });
      a.run('matmul', 'forward', 'ref', { ...base, c: part, K: s.kc, batch: s.slices, stride_a: s.strideA, stride_b: s.strideB, stride_c: M * N });
      const w = a.toArray(whole) as Float32Array, p = a.toArray(part) as Float32Array;
      let err = 0, scale = 0;
      for (let i = 0; i < M * N; i++) {
        let v = 0;
        for (let z = 0; z < s.slices; z++) v += p[z * M * N + i]!;
        err = Math.max(err, Math.abs(v - w[i]!));
        scale = Math.max(scale, Math.abs(w[i]!));
      }
      t.true(err <= 1e-5 * scale, `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}: max |sum of slices - whole| = ${err} (scale ${scale})`);
      for (const id of [A, B, whole, part]) a.dispose(id);
    }
});

// Random123 1.09 `examples/kat_vectors`: counter (4 words), key (2 words) -> output (4 words)
const PHILOX_KAT: Array<[number[], number[], number[]]> = [
  [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
  [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
  [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
];

test('philox4x32-10: Random123 known-answer vectors', (t) => {
  for (const [ctr, key, want] of PHILOX_KAT) {
    t.deepEqual([...host.philox4x32(Uint32Array.from(ctr), Uint32Array.from(key))], want);
  }
  t.throws(() => host.philox4x32(new Uint32Array(3), new Uint32Array(2)), { instanceOf: RangeError });
  t.throws(() => host.philox4x32(new Int32Array(4) as unknown as Uint32Array, new Uint32Array(2)), { instanceOf: TypeError });
});

test('dropout uniforms: one Philox block (lb_uniform4) and counter pairs (lb_uniform2) give what lb_uniform gives each counter', (t) => {
  // word k of block b is counter 4 b + k: the zero key and counter give the first known answer
  const kat0 = host.dropoutUniforms(0n, 0n).perCounter;
  t.deepEqual([...kat0], PHILOX_KAT[0][2].map((w) => (w >>> 8) / 16777216));
  let x = 0x9e3779b97f4a7c15n;
  const next = (): bigint => {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    return x;
  };
  let n = 0;
  for (let trial = 0; trial < 500; trial++) {
    const seed = next();
    const block = trial < 4 ? [0n, 1n, 0xffffffffn, 0x100000000n][trial] : next() >> 2n;
    const u = host.dropoutUniforms(seed, block);
    for (let k = 0; k < 4; k++) {
      if (u.perBlock[k] !== u.perCounter[k] || u.perPair[k] !== u.perCounter[k]) {
        t.fail(`seed ${seed} block ${block} word ${k}: per counter ${u.perCounter[k]}, block ${u.perBlock[k]}, pair ${u.perPair[k]}`);
        return;
      }
      t.true(u.perCounter[k] >= 0 && u.perCounter[k] < 1);
      n++;
    }
  }
  t.is(n, 2000);
  t.throws(() => host.dropoutUniforms(1n, 1n << 62n), { instanceOf: RangeError });
  t.throws(() => host.dropoutUniforms(1 as unknown as bigint, 0n), { instanceOf: TypeError });
});
