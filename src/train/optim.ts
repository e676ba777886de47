// optim.ts: gradient clipping and fused AdamW over the model's flat parameter groups.
import type { Ops } from '../ops.js';
import type { ParamGroupSpan } from '../model/bert.js';
import { Tensor } from '../tensor.js';

export interface AdamwConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxGradNorm: number; // <= 0 disables clipping
}

export class AdamW {
  private readonly normSq: Tensor[];
  /** Optimizer steps taken (bias correction uses step + 1 for the next one). */
  step = 0;
  constructor(
    private readonly ops: Ops,
    readonly groups: ParamGroupSpan[],
    readonly cfg: AdamwConfig,
  ) {
    this.normSq = groups.map(() => Tensor.zeros([1], 'f32', ops.device, ops.native).keep());
  }

  /** Global L2 norm of all gradients (one small read back: the step's sync point). */
  gradNorm(): number {
    let sum = 0;
    this.groups.forEach((g, i) => this.ops.gradNormSq({ x: g.grad, out: this.normSq[i]! }));
    for (const t of this.normSq) sum += t.item();
    return Math.sqrt(sum);
  }

  /** Clips to maxGradNorm (scaling inside the fused update) and applies one AdamW update. */
  update(lr: number, gradNorm: number): void {
    const clip = this.cfg.maxGradNorm > 0 && gradNorm > this.cfg.maxGradNorm ? this.cfg.maxGradNorm / (gradNorm + 1e-6) : 1;
    this.step++;
    for (const g of this.groups) {
      this.ops.adamw({
        param: g.param, grad: g.grad, m: g.m, v: g.v, param_lowp: g.lowp ?? null, lr, beta1: this.cfg.beta1, beta2: this.cfg.beta2, eps: this.cfg.eps,
        weight_decay: g.weightDecay ? this.cfg.weightDecay : 0, grad_scale: clip, step: this.step,
      });
    }
  }

  dispose(): void {
    for (const t of this.normSq) t.dispose();
  }
}
