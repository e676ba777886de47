// ops.test.ts: the one table-driven op test. Every row of test/ops-table.ts x dtype x backend is run
// and compared against ref (the f64-accumulating oracle), forward and backward:
//   f32:  max |backend - ref| <= tol * max |ref|  (per output; the max error is logged)
//   bf16: flash-attention's rule. ref_fp64 = ref on f32 tensors holding the same (bf16-rounded) inputs;
//         bf16-on-ref = ref run with bf16 tensors. Pass when
//         max |backend_bf16 - ref_fp64| <= 2 * max |bf16-on-ref - ref_fp64| + 1e-5 * max |ref_fp64|.
// ref's own gradients are checked by finite differences (see fdCheck).
// cuda rows run when the addon is a CUDA build with a device; otherwise they are registered as skipped.
// LINKBERT_TEST_DEVICE=cuda (npm run test:cuda) loads the CUDA addon, makes cuda rows required and runs
// only the ref-vs-cuda rows.
import test from 'ava';

import { loadNative, type BackendName, type NativeAddon } from '../src/native.js';
import { compare, execute, opTable, roundedInputs, Rng, type OpCase, type Result } from './ops-table.js';

const cudaRequired = process.env.LINKBERT_TEST_DEVICE === 'cuda';
let addon: NativeAddon | undefined;
let loadError = '';
try {
  addon = loadNative(cudaRequired ? 'cuda' : undefined);
} catch (e) {
  loadError = (e as Error).message;
}
const info = addon?.info();
const cudaReason = !info
  ? `addon not loaded: ${loadError}`
  : !info.cuda_compiled
    ? 'skipped (not compiled with CUDA)'
    : info.cuda_devices === 0
      ? `skipped (no GPU): ${info.cuda_unavailable ?? ''}`
      : '';

const table = opTable();

function supportsDtype(row: OpCase, dtype: 'f32' | 'bf16') {
  return row.supportsDtype ?? dtype;
}

/**
 * Finite-difference check of ref's analytic gradients, in the f32 API (ref accumulates in f64
 * internally, so each output is f64-accurate up to one f32 rounding). With random directions u over
 * every differentiated input and random weights w, L(x) = sum(w * loss(x)) is evaluated in float64 in
 * JS, and the central difference (L(x + h u) - L(x - h u)) / 2h (h = 1e-3) is compared with the
 * analytic directional derivative sum <grad, u>. Error budget: truncation O(h^2) ~ 1e-6 and f32
 * rounding of outputs / perturbed inputs ~ 1e-7 |L| / h ~ 1e-4 of the gradient scale, so a relative
 * tolerance of 2e-3 against sum |grad * u| is robust while a wrong gradient (a missing term, a
 * transposed index) misses by O(1).
 */
function fdCheck(t: import('ava').ExecutionContext, row: OpCase): void {
  const a = addon!;
  const fd = row.fd!;
  const r = new Rng(99);
  const h = fd.h ?? 1e-3;
  const base = roundedInputs(row, 'f32');
  const inputs = [...new Set(fd.wrt.map(([x]) => x))];
  const dirs: Result = {};
  for (const x of inputs) dirs[x] = r.normals((base[x] as Float32Array).length);
  const lossLen = execute(a, 'ref', { tensors: row.tensors, steps: fd.forward }, 'f32', base, [fd.loss])[fd.loss]!.length;
  const w = fd.dout ? r.normals(lossLen) : new Float32Array(lossLen).fill(1);
  const L = (sign: number): number => {
    const o: Result = { ...base };
    for (const x of inputs) {
      const b = base[x] as Float32Array, u = dirs[x] as Float32Array;
      o[x] = b.map((v, i) => v + sign * h * u[i]!);
    }
    const out = execute(a, 'ref', { tensors: row.tensors, steps: fd.forward }, 'f32', o, [fd.loss])[fd.loss]!;
    let s = 0;
    for (let i = 0; i < out.length; i++) s += w[i]! * out[i]!;
    return s;
  };
  const numeric = (L(1) - L(-1)) / (2 * h);
  const o: Result = { ...base };
  if (fd.dout) o[fd.dout] = w;
  for (const z of fd.zero ?? []) o[z] = new Float32Array(row.tensors[z]!.shape.reduce((p, q) => p * q, 1));
  const grads = execute(a, 'ref', { tensors: row.tensors, steps: [...fd.forward, ...fd.backward] }, 'f32', o, fd.wrt.map(([, g]) => g));
  let analytic = 0, mag = 0;
  for (const [x, g] of fd.wrt) {
    const gr = grads[g]!, u = dirs[x]!;
    for (let i = 0; i < gr.length; i++) {
      analytic += gr[i]! * u[i]!;
      mag += Math.abs(gr[i]! * u[i]!);
    }
  }
  const err = Math.abs(numeric - analytic);
  t.log(`directional derivative: analytic ${analytic.toPrecision(8)}, central difference ${numeric.toPrecision(8)}, |err| / sum|g u| = ${(err / (mag || 1)).toExponential(2)}`);
  t.true(mag > 0 || numeric === 0, 'gradient is identically zero but the loss moves');
  t.true(err <= 2e-3 * mag + 1e-9, `finite differences disagree: ${numeric} vs ${analytic} (scale ${mag})`);
}

function title(row: OpCase, dtype: string, backend: string): string {
  const dt = row.supportsDtype && row.supportsDtype !== dtype ? row.supportsDtype : dtype;
  return `${row.op}: ${row.name} [${dt}] ${backend} vs ref`;
}

if (!addon) {
  test(`ops: native addon loads`, (t) => {
    t.fail(loadError);
  });
} else {
  for (const row of table) {
    for (const dtype of row.dtypes) {
      if (!addon.supports('ref', row.op, supportsDtype(row, dtype)))
        throw new Error(`ref must support every table row: ${row.op} ${supportsDtype(row, dtype)}`);
      // cpu rows
      if (!cudaRequired && addon.supports('cpu', row.op, supportsDtype(row, dtype)))
        test(title(row, dtype, 'cpu'), (t) => compare(t, addon!, row, dtype, 'cpu'));
      // cuda rows
      const name = title(row, dtype, 'cuda');
      if (cudaReason) {
        if (cudaRequired) test(name, (t) => t.fail(`LINKBERT_TEST_DEVICE=cuda requires a usable CUDA device: ${cudaReason.replace(/^skipped /, '')}`));
        else if (dtype === 'f32') test.skip(`${name}: ${cudaReason}`, () => {});  // shown as skipped, never run
      } else if (addon.supports('cuda', row.op, supportsDtype(row, dtype))) {
        test(name, (t) => compare(t, addon!, row, dtype, 'cuda'));
      }
    }
    if (row.fd && !cudaRequired) test(`${row.op}: ${row.name} ref gradients (finite differences)`, (t) => fdCheck(t, row));
  }
  // A cuda backend may leave a dtype out (supports() says so and those rows are not registered), but
  // with cuda required every op must run on it in at least one dtype.
  if (!cudaReason)
    for (const op of [...new Set(table.map((r) => r.op))])
      test(`cuda supports ${op} in f32 or bf16`, (t) => {
        t.true(addon!.supports('cuda', op, 'f32') || addon!.supports('cuda', op, 'bf16'));
      });
}
