// matmul-bf16.test.ts: the CPU's bf16 GEMM without the vdpbf16ps kernel. LINKBERT_CPU_BF16_DOT=0 (set
// here before the first bf16 matmul; the addon reads it once) makes it widen A and B to f32, the path a CPU
// without AVX512-BF16 takes. The op table's bf16 matmul rows must pass it by ops.test.ts's bf16 rule:
//   max |cpu_bf16 - ref_fp64| <= 2 * max |bf16-on-ref - ref_fp64| + 1e-5 * max |ref_fp64|.
// (On a CPU with AVX512-BF16, ops.test.ts covers the vdpbf16ps kernel with the same rows.)
import test from 'ava';

process.env.LINKBERT_CPU_BF16_DOT = '0';
const { loadNative } = await import('../src/native.js');
const { execute, maxAbs, maxDiff, opTable, roundedInputs } = await import('./ops-table.js');

const addon = loadNative();
for (const row of opTable().filter((r) => r.op === 'matmul' && r.dtypes.includes('bf16'))) {
  test(`matmul bf16 (A and B widened to f32): ${row.name}`, (t) => {
    const inputs = roundedInputs(row, 'bf16');
    const ref64 = execute(addon, 'ref', row, 'f32', inputs, row.check);
    const refLow = execute(addon, 'ref', row, 'bf16', inputs, row.check);
    const got = execute(addon, 'cpu', row, 'bf16', inputs, row.check);
    for (const name of row.check) {
      const want = ref64[name]!;
      const bound = 2 * maxDiff(refLow[name]!, want) + 1e-5 * maxAbs(want);
      const err = maxDiff(got[name]!, want);
      t.log(`${name}: max |err| ${err.toExponential(2)} (bound ${bound.toExponential(2)})`);
      t.true(err <= bound, `${name}: ${err} > ${bound}`);
    }
  });
}
