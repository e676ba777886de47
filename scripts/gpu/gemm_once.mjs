// gemm_once.mjs: a few bf16 GEMMs of one shape on the CUDA addon, nothing else: the program to run under
// a profiler (ncu) on the GPU machine.  node scripts/gpu/gemm_once.mjs [M N K [NT|NN|TN] [reps]]
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const addon = require('../../build-cuda/Release/linkbert_cuda.node');
const [M, N, K] = [2, 3, 4].map((i) => Number(process.argv[i] ?? 4096));
const layout = process.argv[5] ?? 'NT';
const reps = Number(process.argv[6] ?? 3);
const ta = layout[0] === 'T', tb = layout[1] === 'T';
const a = addon.alloc(ta ? [K, M] : [M, K], 'bf16', 'cuda');
const b = addon.alloc(tb ? [N, K] : [K, N], 'bf16', 'cuda');
const c = addon.alloc([M, N], 'bf16', 'cuda');
addon.run('fill', 'forward', 'cuda', { x: a, value: 0.01 });
addon.run('fill', 'forward', 'cuda', { x: b, value: 0.02 });
const args = { a, b, c, M, N, K, trans_a: ta, trans_b: tb, beta: 0 };
const ms = [];
for (let i = 0; i < reps; i++) {
  addon.cudaTimerStart();
  addon.run('matmul', 'forward', 'cuda', args);
  ms.push(addon.cudaTimerStop());
}
await addon.synchronize();
ms.sort((x, y) => x - y);
const med = ms[ms.length >> 1];
console.log(`gemm_once: ${layout} ${M}x${N}x${K} bf16 x${reps} on ${addon.cudaMatmulPath()}: median ${med.toFixed(4)} ms, ` +
  `${((2 * M * N * K) / med / 1e9).toFixed(1)} TFLOP/s (min ${ms[0].toFixed(4)} ms; back-to-back, L2 warm)`);
