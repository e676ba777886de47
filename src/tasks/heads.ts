// Task heads for fine-tuning: one Linear layer on the encoder (Hugging Face BertFor* layout) plus the host-side
// losses. The head's parameters are `extra` params of the BertModel arena (optimised with the encoder); the
// logits are read back to the host, where the (small) loss and dlogits are computed in float64, then the
// gradient is uploaded and pushed back through the Linear layer into model.dPooled / model.dHidden.
//
//   kind        input             Linear      loss (host)
//   cls         pooled (B,H)      H → C       softmax CE, mean over B                 (BertForSequenceClassification)
//   multilabel  pooled (B,H)      H → C       BCE-with-logits, mean over B*C
//   regression  pooled (B,H)      H → 1       MSE, mean over B                        (num_labels = 1)
//   mc          pooled (B*K,H)    H → 1       softmax CE over the K rows of each example (BertForMultipleChoice)
//   token       hidden (B*T,H)    H → C       CE over tokens whose label != -100       (BertForTokenClassification)
//   span        hidden (B*T,H)    H → 2       (CE(start) + CE(end)) / 2 over real tokens (BertForQuestionAnswering)
//
// Dropout (hidden_dropout_prob) is applied to the head input during training for every kind but span, as HF does.
import type { BertModel, ExtraParam } from '../model/bert.js';
import { Tensor } from '../tensor.js';
import type { HeadKind } from './types.js';

export const IGNORE = -100;

/** Hugging Face module name of the head: `qa_outputs` for span heads, `classifier` otherwise. */
export function headModuleName(kind: HeadKind): 'qa_outputs' | 'classifier' {
  return kind === 'span' ? 'qa_outputs' : 'classifier';
}

/** Output width of the head's Linear layer. */
export function headWidth(kind: HeadKind, numLabels: number): number {
  if (kind === 'span') return 2;
  if (kind === 'regression' || kind === 'mc') return 1;
  if (!Number.isInteger(numLabels) || numLabels < 1) throw new Error(`${kind} head: need at least one label, got ${numLabels}`);
  return numLabels;
}

/** In-model (arena) names of the head parameters, and their Hugging Face names. */
export function headParamNames(kind: HeadKind): { weight: string; bias: string; hfWeight: string; hfBias: string } {
  const m = headModuleName(kind);
  return { weight: `task.${m}.weight`, bias: `task.${m}.bias`, hfWeight: `${m}.weight`, hfBias: `${m}.bias` };
}

export function headExtraParams(kind: HeadKind, width: number, hidden: number): ExtraParam[] {
  const n = headParamNames(kind);
  return [
    { name: n.weight, shape: [width, hidden], init: 'normal' },
    { name: n.bias, shape: [width], init: 'zeros' },
  ];
}

const usesPooled = (kind: HeadKind): boolean => kind === 'cls' || kind === 'multilabel' || kind === 'regression' || kind === 'mc';

/**
 * The device side of a head: forward (logits to the host) and backward (dlogits from the host, parameter
 * grads +=, input gradient into the model, then the encoder's backward). All buffers are allocated once.
 */
export class TaskHead {
  readonly width: number;
  readonly pooled: boolean;
  readonly dropoutP: number;
  private readonly names: ReturnType<typeof headParamNames>;
  private readonly maxRows: number;
  private readonly logits: Tensor;
  private readonly dlogits: Tensor;
  private readonly headIn: Tensor | null;
  private rows = 0;
  private dropped = false;
  private seed = 0n;

  constructor(
    readonly model: BertModel,
    readonly kind: HeadKind,
    numLabels: number,
  ) {
    this.width = headWidth(kind, numLabels);
    this.pooled = usesPooled(kind);
    this.names = headParamNames(kind);
    this.dropoutP = kind === 'span' ? 0 : model.config.hiddenDropout;
    this.maxRows = this.pooled ? model.B : model.B * model.T;
    const { device, native } = model.ops;
    this.logits = Tensor.zeros([this.maxRows, this.width], 'f32', device, native).keep();
    this.dlogits = Tensor.zeros([this.maxRows, this.width], 'f32', device, native).keep();
    this.headIn = this.dropoutP > 0 ? Tensor.zeros([this.maxRows, model.H], 'f32', device, native).keep() : null;
  }

  /** Rows of logits for the model's current batch: B (pooled heads) or B*T (token heads). */
  get currentRows(): number {
    return this.rows;
  }

  /**
   * Encoder (+ pooler) forward and the head's Linear layer for the batch set with model.setInputs().
   * Returns the logits (rows × width) on the host.
   */
  forward(training: boolean, step: number): Float32Array {
    const m = this.model, ops = m.ops, H = m.H;
    m.encode(training, step);
    if (this.pooled) m.pool();
    const rows = (this.rows = this.pooled ? m.batchSize : m.batchSize * m.seqLen);
    let x = this.pooled ? m.pooled : m.hidden;
    this.dropped = training && this.headIn !== null;
    if (this.dropped) {
      this.seed = (0x7a5c0000n ^ (BigInt(step) << 20n) ^ 0x9bn) & 0xffffffffffffffffn;
      ops.copy({ src: x, dst: this.headIn!, n: rows * H });
      ops.dropout({ x: this.headIn!, out: this.headIn!, p: this.dropoutP, seed: this.seed, offset: 0, n: rows * H });
      x = this.headIn!;
    }
    ops.matmul({
      a: x, b: m.param(this.names.weight), c: this.logits, bias: m.param(this.names.bias),
      M: rows, N: this.width, K: H, trans_b: true, epilogue: 'bias',
    });
    const all = this.logits.toArray() as Float32Array;
    return all.subarray(0, rows * this.width);
  }

  /** Backward of the last forward(training=true): `dlogits` (rows × width) from the loss; parameter grads +=. */
  backward(dlogits: Float32Array): void {
    const m = this.model, ops = m.ops, H = m.H, rows = this.rows, C = this.width;
    if (dlogits.length !== rows * C) throw new RangeError(`head backward: ${dlogits.length} gradient values for ${rows}×${C} logits`);
    this.dlogits.setData(dlogits);
    const x = this.dropped ? this.headIn! : this.pooled ? m.pooled : m.hidden;
    ops.matmul({ a: this.dlogits, b: x, c: m.grad(this.names.weight), M: C, N: H, K: rows, trans_a: true, beta: 1 });
    ops.biasBackward({ dout: this.dlogits, dbias: m.grad(this.names.bias), M: rows, N: C });
    const dx = this.pooled ? m.dPooled : m.dHidden;
    ops.matmul({ a: this.dlogits, b: m.param(this.names.weight), c: dx, M: rows, N: H, K: C });
    if (this.dropped) ops.dropoutBackward({ dout: dx, dx, p: this.dropoutP, seed: this.seed, offset: 0, n: rows * H });
    if (this.pooled) ops.fill({ x: m.dHidden, value: 0, n: m.batchSize * m.seqLen * H });
    m.backwardEncoder(this.pooled);
  }

  dispose(): void {
    this.logits.dispose();
    this.dlogits.dispose();
    this.headIn?.dispose();
  }
}

// ---- losses (host, float64) -------------------------------------------------------------------------

export interface LossResult {
  loss: number;
  /** d(loss)/d(logits), same layout as the logits */
  dlogits: Float32Array;
  /** rows/tokens/examples the loss averaged over (0: nothing to learn from in this batch) */
  count: number;
}

/** Softmax CE of one row segment; adds (softmax - onehot) * scale into d. Returns -log p(target). */
function ceRow(x: ArrayLike<number>, off: number, stride: number, n: number, target: number, d: Float32Array | null, scale: number): number {
  let mx = -Infinity;
  for (let j = 0; j < n; j++) mx = Math.max(mx, x[off + j * stride]!);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += Math.exp(x[off + j * stride]! - mx);
  const lse = mx + Math.log(sum);
  if (d) {
    for (let j = 0; j < n; j++) {
      const p = Math.exp(x[off + j * stride]! - lse);
      d[off + j * stride] += (p - (j === target ? 1 : 0)) * scale;
    }
  }
  return lse - x[off + target * stride]!;
}

/** Mean softmax CE over rows of (rows, C) logits; labels per row (IGNORE skips a row). */
export function crossEntropy(logits: ArrayLike<number>, rows: number, C: number, labels: ArrayLike<number>, withGrad = true): LossResult {
  const d = new Float32Array(rows * C);
  let n = 0;
  for (let r = 0; r < rows; r++) if (labels[r] !== IGNORE) n++;
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    const y = labels[r]!;
    if (y === IGNORE) continue;
    if (!(y >= 0 && y < C)) throw new RangeError(`label ${y} at row ${r} outside [0, ${C})`);
    loss += ceRow(logits, r * C, 1, C, y, withGrad ? d : null, 1 / n);
  }
  return { loss: n ? loss / n : 0, dlogits: d, count: n };
}

/** BCE with logits, mean over all rows*C entries (torch BCEWithLogitsLoss). */
export function bceWithLogits(logits: ArrayLike<number>, targets: ArrayLike<number>): LossResult {
  const n = targets.length;
  const d = new Float32Array(n);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i]!, y = targets[i]!;
    loss += Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
    d[i] = (1 / (1 + Math.exp(-x)) - y) / n;
  }
  return { loss: n ? loss / n : 0, dlogits: d, count: n };
}

/** Mean squared error over rows (one value per row). */
export function mse(pred: ArrayLike<number>, targets: ArrayLike<number>): LossResult {
  const n = targets.length;
  const d = new Float32Array(n);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const e = pred[i]! - targets[i]!;
    loss += e * e;
    d[i] = (2 * e) / n;
  }
  return { loss: n ? loss / n : 0, dlogits: d, count: n };
}

/**
 * Span loss on (B*T, 2) logits (column 0 start, column 1 end): per feature, CE over its real tokens
 * (attentionMask = 1) for the start and for the end; (start + end) / 2, mean over features.
 */
export function spanLoss(logits: ArrayLike<number>, B: number, T: number, attentionMask: ArrayLike<number>, starts: ArrayLike<number>, ends: ArrayLike<number>): LossResult {
  const d = new Float32Array(B * T * 2);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    let L = 0;
    while (L < T && attentionMask[b * T + L]) L++;
    const s = starts[b]!, e = ends[b]!;
    if (!(s >= 0 && s < L && e >= 0 && e < L)) throw new RangeError(`span target (${s}, ${e}) of row ${b} outside its ${L} tokens`);
    loss += ceRow(logits, b * T * 2, 2, L, s, d, 1 / (2 * B));
    loss += ceRow(logits, b * T * 2 + 1, 2, L, e, d, 1 / (2 * B));
  }
  return { loss: B ? loss / (2 * B) : 0, dlogits: d, count: B };
}

/** Multiple choice: (B*K) scores, CE over each example's K scores. */
export function mcLoss(scores: ArrayLike<number>, B: number, K: number, labels: ArrayLike<number>): LossResult {
  return crossEntropy(scores, B, K, labels);
}
