// Golden test: our LinkBERT forward/backward against PyTorch (scripts/golden/make_golden.py, fixtures
// committed). fp32 results must match the float64 PyTorch reference with relative error <= 1e-4
// (max |ours - ref| / max |ref| per tensor); the largest error of each tensor is logged.
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { loadModelParams } from '../src/model/checkpoint/index.js';
import { readSafetensors } from '../src/model/checkpoint/safetensors.js';
import { toFloat32 } from '../src/model/checkpoint/tensor.js';
import { BertModel } from '../src/model/bert.js';
import { Ops, type BackendName } from '../src/ops.js';
import { loadNative } from '../src/native.js';
import { cpuIsaLevels, type CpuIsa } from './helpers/cpu-isa.js';

const dir = fileURLToPath(new URL('../../test/fixtures/golden/tiny/', import.meta.url));
const golden = readSafetensors(dir + 'golden.safetensors');
const g = (name: string): Float32Array => {
  const t = golden.tensors.get(name);
  if (!t) throw new Error(`golden tensor ${name} missing`);
  return toFloat32(t, name);
};
const gi = (name: string): Int32Array => {
  const t = golden.tensors.get(name);
  if (!t || t.dtype !== 'I32') throw new Error(`golden tensor ${name} missing or not I32`);
  return Int32Array.from(t.data as Int32Array);
};

// max |ours - ref| / max(max |ref|, floor). The floor matters for tensors that are analytically zero:
// the key biases' gradient is exactly 0 (softmax is invariant to a per-row shift of the scores), so
// PyTorch's float64 value is ~1e-17 round-off and ours ~1e-9; those are judged against `floor`.
function relErr(ours: ArrayLike<number>, ref: ArrayLike<number>, floor = 1e-30): number {
  let maxErr = 0, maxRef = 0;
  if (ours.length !== ref.length) return Infinity;
  for (let i = 0; i < ref.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(ours[i]! - ref[i]!));
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  return maxErr / Math.max(maxRef, floor);
}
const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};

const wantCuda = process.env.LINKBERT_TEST_DEVICE === 'cuda';
// bf16 mixed precision (bf16 activations and matmul weights, fp32 masters and grads) is checked on ref
// (which supports bf16 everywhere) and on cuda, with a bf16-sized tolerance; the CPU backend is fp32.
// The cpu backend also at each smaller ISA level the CPU runs (setCpuIsa: the AVX2 GEMM kernel, the
// portable loops), so an AVX-512 machine checks what a smaller CPU computes; each cpu run sets its level.
const cpuLevels = wantCuda ? [] : cpuIsaLevels(loadNative());
type Run = [BackendName, 'fp32' | 'bf16', CpuIsa?];
const runs: Run[] = wantCuda
  ? [['cuda', 'fp32'], ['cuda', 'bf16']]
  : [['ref', 'fp32'], ...cpuLevels.map((isa): Run => ['cpu', 'fp32', isa]), ['ref', 'bf16']];

for (const [backend, precision, isa] of runs) {
  const tol = precision === 'bf16' ? 5e-2 : 1e-4;
  test(`golden: tiny LinkBERT forward, losses and every gradient match PyTorch (${backend}${isa && isa !== cpuLevels[0] ? `, isa ${isa}` : ''}, ${precision})`, (t) => {
    const native = loadNative(backend === 'cuda' ? 'cuda' : undefined);
    if (isa) t.log(`simd: ${native.setCpuIsa(isa)}`);
    const info = native.info();
    if (backend === 'cuda' && !(info.cuda_compiled && info.cuda_devices > 0)) {
      t.fail(`LINKBERT_TEST_DEVICE=cuda but ${info.cuda_compiled ? 'no CUDA device' : 'the addon was built without CUDA'}`);
      return;
    }
    const { checkpoint, match } = loadModelParams(dir);
    const config = { ...checkpoint.config, hiddenDropout: 0, attentionDropout: 0 };
    const ops = new Ops(backend, native);
    const B = 2, T = 16, P = 4;
    const model = new BertModel(config, ops, { batchSize: B, seqLen: T, maxPredictions: P }, { precision });
    try {
      model.initParams(1); // heads absent from the checkpoint would keep these; the tiny fixture has them all
      t.deepEqual(match.missing, []);
      model.loadParams(match.params);
      const inputs = {
        batchSize: B,
        inputIds: gi('input_ids'), tokenTypeIds: gi('token_type_ids'), attentionMask: gi('attention_mask'),
        maskedPositions: Int32Array.from(gi('masked_positions'), (p, i) => Math.floor(i / P) * T + p),
        maskedLabels: gi('masked_labels'), drpLabels: gi('drp_labels'),
      };
      model.setInputs(inputs);
      const errs: [string, number][] = [];
      let floor = 1e-30;
      const check = (name: string, ours: ArrayLike<number>, ref: Float32Array) => errs.push([name, relErr(ours, ref, floor)]);

      // Forward without gradients: logits stay readable.
      model.forwardPretrain(false, 0, { withGrad: false });
      check('sequence_output', model.hidden.toArray(), g('sequence_output'));
      check('pooled_output', model.pooled.toArray(), g('pooled_output'));
      check('mlm_logits', model.readMlmLogits(), g('mlm_logits'));
      check('drp_logits', model.drpLogits.toArray(), g('drp_logits'));
      const out = model.readPretrainOutputs();
      check('mlm_loss', [out.mlmLoss], g('mlm_loss'));
      check('drp_loss', [out.drpLoss], g('drp_loss'));
      check('loss', [out.loss], g('loss'));

      // Forward + backward: every parameter gradient (the tied embedding grad includes the decoder's).
      model.zeroGrads();
      model.forwardPretrain(false, 0, { withGrad: true });
      model.readPretrainOutputs();
      model.backwardPretrain();
      // gradients: the floor is 1e-3 of the largest gradient of any parameter, so an analytically-zero
      // gradient passes when its f32 round-off stays below 1e-7 of that scale (f32 epsilon level); bf16
      // round-off is ~3e4 times larger, so there the floor is 1e-2 of the scale (noise below 5e-4 of it)
      floor = (precision === 'bf16' ? 1e-2 : 1e-3) * Math.max(...model.paramNames().map((n) => maxAbs(g(`grad.${n}`))));
      for (const name of model.paramNames()) check(`grad.${name}`, model.grad(name).toArray(), g(`grad.${name}`));

      errs.sort((a, b) => b[1] - a[1]);
      t.log(`largest relative errors (${backend}, ${precision}): ${errs.slice(0, 5).map(([n, e]) => `${n}=${e.toExponential(2)}`).join(', ')}`);
      for (const [name, e] of errs) t.true(e <= tol, `${name}: relative error ${e.toExponential(3)} > ${tol}`);
    } finally {
      model.dispose();
    }
  });
}
