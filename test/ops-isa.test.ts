// The op table's cpu rows again with the cpu backend capped to a smaller ISA (setCpuIsa): "avx2"
// (the AVX2 + FMA GEMM kernel, the portable memory-bound loops) and "generic" (portable code only).
// On an AVX-512 machine ops.test.ts runs only the AVX-512 paths, and these are what a CPU without
// AVX-512 runs. Same rule as ops.test.ts (against ref). A level the CPU lacks, or the one
// ops.test.ts already runs, is registered as skipped with the reason. Each test sets the level it
// needs first: the tests in a file run one at a time in one process (each op call is synchronous),
// and other files run in other processes.
import test from 'ava';

import { loadNative, type NativeAddon } from '../src/native.js';
import { cpuIsaLevels } from './helpers/cpu-isa.js';
import { compare, opTable } from './ops-table.js';

const addon: NativeAddon = loadNative();
const best = addon.info().simd;  // uncapped
const levels = cpuIsaLevels(addon);
const table = opTable();

for (const isa of ['avx2', 'generic'] as const) {
  const why = !levels.includes(isa)
    ? `skipped (this CPU cannot run ${isa})`
    : isa === 'avx2' && !best.startsWith('avx512')
      ? `skipped (ops.test.ts runs it: the CPU's best is ${best})`
      : '';
  for (const row of table)
    for (const dtype of row.dtypes) {
      const dt = row.supportsDtype ?? dtype;
      if (!addon.supports('cpu', row.op, dt)) continue;
      const name = `${row.op}: ${row.name} [${dt}] cpu (isa ${isa}) vs ref`;
      if (why) {
        test.skip(`${name}: ${why}`, () => {});
        continue;
      }
      test(name, (t) => {
        t.log(`simd: ${addon.setCpuIsa(isa)}`);
        compare(t, addon, row, dtype, 'cpu');
      });
    }
}

test('setCpuIsa: a non-string is a TypeError, an unknown name a RangeError; info().simd follows the cap', (t) => {
  t.throws(() => addon.setCpuIsa(3 as never), { instanceOf: TypeError });
  t.throws(() => addon.setCpuIsa('sse9' as never), { instanceOf: RangeError, message: /unknown ISA/ });
  t.is(addon.setCpuIsa('generic'), addon.info().simd);
  t.regex(addon.info().simd, /capped/);
  addon.setCpuIsa(levels[0]!);  // the best level the CPU runs: the uncapped default
  t.is(addon.info().simd, best);
});
