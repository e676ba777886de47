// determinism.test.ts: the cpu backend is bit-reproducible. Every op (larger rows for the ones with
// reductions: attention backward, layernorm backward, embedding backward, scatter_add_rows, grad_norm,
// dropout) is run twice on the same inputs and every tensor it touches must come back with identical
// bits. The kernels fix their reduction order independently of the thread pool, so the same holds
// with one thread versus the full pool (checked for every op; the GEMM's split-K row is among them),
// at every ISA level the CPU runs.
import test from 'ava';

import { loadNative } from '../src/native.js';
import { cpuIsaLevels } from './helpers/cpu-isa.js';
import { determinismTable, execute, opTable, type OpCase, type Result } from './ops-table.js';

const addon = loadNative();

function rows(): OpCase[] {
  const big = determinismTable();
  const covered = new Set(big.map((r) => r.op));
  const rest = new Map<string, OpCase>();
  const size = (r: OpCase) => Object.values(r.tensors).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  for (const r of opTable()) {
    if (covered.has(r.op)) continue;
    const prev = rest.get(r.op);
    if (!prev || size(r) > size(prev)) rest.set(r.op, r); // the largest row per op
  }
  return [...big, ...rest.values()];
}

function bits(a: Float32Array | Int32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function firstMismatch(x: Result, y: Result): string | undefined {
  for (const name of Object.keys(x)) {
    const a = bits(x[name]!), b = bits(y[name]!);
    if (a.length !== b.length) return `${name}: length ${a.length} vs ${b.length}`;
    for (let i = 0; i < a.length; i++)
      if (a[i] !== b[i]) return `${name}[${i}]: bits ${a[i]!.toString(16)} vs ${b[i]!.toString(16)}`;
  }
  return undefined;
}

// at least 2 threads, so the 1-thread comparison is never vacuous (the pool may exceed the core count)
const threads = Math.max(2, addon.info().threads);
addon.setNumThreads(threads);

// and at each smaller ISA level the CPU runs (setCpuIsa: what a CPU without AVX-512 runs); each test
// sets its level
const levels = cpuIsaLevels(addon);

for (const isa of levels)
for (const row of rows())
  for (const dtype of row.dtypes) {
    const dt = row.supportsDtype ?? dtype;
    if (!addon.supports('cpu', row.op, dt)) continue;
    test.serial(`${row.op}: ${row.name} [${dt}] cpu${isa !== levels[0] ? ` (isa ${isa})` : ''} is bit-reproducible`, (t) => {
      addon.setCpuIsa(isa);
      const first = execute(addon, 'cpu', row, dtype);
      const second = execute(addon, 'cpu', row, dtype);
      t.is(firstMismatch(first, second), undefined, 'two runs differ');
      addon.setNumThreads(1);
      try {
        const serial = execute(addon, 'cpu', row, dtype);
        t.is(firstMismatch(first, serial), undefined, `1 thread vs ${threads} threads differ`);
      } finally {
        addon.setNumThreads(threads);
      }
    });
  }
