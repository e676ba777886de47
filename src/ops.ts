// ops.ts: the typed op layer over native `run(op, pass, backend, args)`. One method per op and pass;
// argument names are those of the params structs in kernels/ops.h (validated natively).
import { loadNative, type BackendName, type DType, type NativeAddon, type NativeInfo } from './native.js';
import type { Tensor } from './tensor.js';

export type { BackendName } from './native.js';

type T = Tensor;
type OptT = Tensor | null | undefined;

export interface MatmulArgs {
  a: T; b: T; c: T; bias?: OptT; pre_gelu?: OptT;
  M: number; N: number; K: number; batch?: number;
  trans_a?: boolean; trans_b?: boolean;
  lda?: number; ldb?: number; ldc?: number; stride_a?: number; stride_b?: number; stride_c?: number;
  alpha?: number; beta?: number; epilogue?: 'none' | 'bias' | 'bias_gelu';
}
export interface AttentionArgs {
  q: T; k: T; v: T; out: T; lse: T; key_mask?: OptT;
  B: number; T: number; NH: number; D: number; scale?: number;
  /** elements between tokens' rows in q, k, v, dq, dk, dv (default NH*D; 3*NH*D for slices of one fused QKV array) */
  ld_qkv?: number;
  dropout_p?: number; seed?: number | bigint; offset?: number | bigint;
}
export interface AttentionBackwardArgs extends AttentionArgs { dout: T; dq: T; dk: T; dv: T; delta: T }
export interface LayernormArgs { x: T; residual?: OptT; sum?: OptT; out: T; mean: T; rstd: T; gamma: T; beta: T; rows: number; cols: number; eps?: number }
export interface LayernormBackwardArgs { x: T; mean: T; rstd: T; gamma: T; dout: T; dx: T; dgamma: T; dbeta: T; rows: number; cols: number }
export interface SoftmaxXentArgs { logits: T; labels: T; losses: T; correct?: OptT; dlogits?: OptT; N: number; V: number; ld?: number; ignore_index?: number; grad_scale?: number }
export interface EmbeddingArgs { ids: T; type_ids?: OptT; wte: T; wpe: T; wtt: T; out: T; B: number; T: number; C: number; V: number; max_pos: number; type_vocab: number }
export interface EmbeddingBackwardArgs { ids: T; type_ids?: OptT; dout: T; dwte: T; dwpe?: OptT; dwtt?: OptT; B: number; T: number; C: number; V: number; max_pos: number; type_vocab: number }
export interface AdamwArgs { param: T; grad: T; m: T; v: T; param_lowp?: OptT; n?: number; lr: number; beta1?: number; beta2?: number; eps?: number; weight_decay?: number; grad_scale?: number; step: number }

/** A backend: ref (the fp64 oracle), cpu (fast) or cuda. */
export class Ops {
  readonly native: NativeAddon;
  constructor(readonly backend: BackendName, native?: NativeAddon) {
    this.native = native ?? loadNative(backend === 'cuda' ? 'cuda' : undefined);
  }
  get device(): 'cpu' | 'cuda' {
    return this.backend === 'cuda' ? 'cuda' : 'cpu';
  }
  info(): NativeInfo {
    return this.native.info();
  }
  supports(op: string, dtype: DType): boolean {
    return this.native.supports(this.backend, op, dtype);
  }
  /** The generic entry point (tests, benchmarks): `op` and `pass` as in kernels/ops.h. */
  run(op: string, pass: 'forward' | 'backward', args: Record<string, unknown>): void {
    this.native.run(op, pass, this.backend, args);
  }

  matmul(a: MatmulArgs): void { this.native.run('matmul', 'forward', this.backend, a as never); }
  /** dbias += column sums of dout (M,N). */
  biasBackward(a: { dout: T; dbias: T; M: number; N: number; ld?: number }): void { this.native.run('bias_backward', 'forward', this.backend, a); }
  attention(a: AttentionArgs): void { this.native.run('attention', 'forward', this.backend, a as never); }
  attentionBackward(a: AttentionBackwardArgs): void { this.native.run('attention', 'backward', this.backend, a as never); }
  layernorm(a: LayernormArgs): void { this.native.run('layernorm', 'forward', this.backend, a as never); }
  layernormBackward(a: LayernormBackwardArgs): void { this.native.run('layernorm', 'backward', this.backend, a as never); }
  gelu(a: { x: T; out: T; n?: number }): void { this.native.run('gelu', 'forward', this.backend, a); }
  geluBackward(a: { x: T; dout: T; dx: T; n?: number }): void { this.native.run('gelu', 'backward', this.backend, a); }
  tanh(a: { x: T; out: T; n?: number }): void { this.native.run('tanh', 'forward', this.backend, a); }
  tanhBackward(a: { out: T; dout: T; dx: T; n?: number }): void { this.native.run('tanh', 'backward', this.backend, a); }
  softmaxXent(a: SoftmaxXentArgs): void { this.native.run('softmax_xent', 'forward', this.backend, a as never); }
  embedding(a: EmbeddingArgs): void { this.native.run('embedding', 'forward', this.backend, a as never); }
  embeddingBackward(a: EmbeddingBackwardArgs): void { this.native.run('embedding', 'backward', this.backend, a as never); }
  gatherRows(a: { src: T; dst: T; index: T; M: number; C: number; n_src: number }): void { this.native.run('gather_rows', 'forward', this.backend, a); }
  scatterAddRows(a: { src: T; dst: T; index: T; M: number; C: number; n_dst: number }): void { this.native.run('scatter_add_rows', 'forward', this.backend, a); }
  dropout(a: { x: T; out: T; p: number; seed: number | bigint; offset: number | bigint; n?: number }): void { this.native.run('dropout', 'forward', this.backend, a); }
  dropoutBackward(a: { dout: T; dx: T; p: number; seed: number | bigint; offset: number | bigint; n?: number }): void { this.native.run('dropout', 'backward', this.backend, a); }
  adamw(a: AdamwArgs): void { this.native.run('adamw', 'forward', this.backend, a as never); }
  /** out[0] = sum of squares of x (deterministic). */
  gradNormSq(a: { x: T; out: T; n?: number }): void { this.native.run('grad_norm', 'forward', this.backend, a); }
  axpby(a: { a: T; b?: OptT; out: T; alpha?: number; beta?: number; n?: number }): void { this.native.run('axpby', 'forward', this.backend, a); }
  scale(a: { x: T; s: number; n?: number }): void { this.native.run('scale', 'forward', this.backend, a); }
  fill(a: { x: T; value: number; n?: number }): void { this.native.run('fill', 'forward', this.backend, a); }
  copy(a: { src: T; dst: T; n?: number }): void { this.native.run('copy', 'forward', this.backend, a); }
  synchronize(): Promise<void> { return this.native.synchronize(); }
}

/** Picks the default backend: cuda when asked and available, else cpu. */
export function defaultBackend(requested?: string): BackendName {
  if (requested === 'ref' || requested === 'cpu') return requested;
  if (requested === 'cuda') return 'cuda';
  if (requested !== undefined && requested !== 'auto') throw new Error(`unknown device '${requested}': use cpu, cuda or ref`);
  return 'cpu';
}
