// bert.ts: the LinkBERT encoder (Hugging Face BertForPreTraining with a 3-way DRP head) on the engine.
// Forward and backward are scheduled by hand (llm.c style) over one preallocated arena: parameters,
// gradients, AdamW moments and every activation are carved once at construction, so a training step
// allocates nothing. Parameter gradients accumulate (+=), so gradient accumulation is just several
// forward/backward calls before one optimizer step; activation gradients are written (=).
//
// Shapes: B batch, T sequence, H hidden, NH heads, D = H/NH, I intermediate, V vocab,
// P masked slots per sequence (sparse MLM: only gathered masked rows reach the vocab projection).
import type { BertConfig } from './config.js';
import { paramSpecs, numel, WORD_EMBEDDINGS, MLM_BIAS, type ParamSpec } from './param-names.js';
import { Arena, Tensor } from '../tensor.js';
import type { Ops } from '../ops.js';
import { Rng } from '../data/masking.js';

export interface ModelShape {
  /** Largest batch the arena holds; smaller batches reuse the same buffers. */
  batchSize: number;
  seqLen: number;
  /** Masked slots per sequence (sparse MLM); 0 when the pretraining heads are not used. */
  maxPredictions: number;
}

/** Host-side inputs for one (micro)batch; flat row-major int32 arrays. */
export interface ModelInputs {
  batchSize: number;
  inputIds: Int32Array; // (B*T)
  tokenTypeIds: Int32Array; // (B*T)
  attentionMask: Int32Array; // (B*T) 1 real, 0 pad
  /** padded length of this batch, at most the arena's seqLen (default: the arena's); inputs are (B, seqLen) */
  seqLen?: number;
  maskedPositions?: Int32Array; // (B*P) flat b*T+t
  maskedLabels?: Int32Array; // (B*P) -1 = unused slot
  drpLabels?: Int32Array; // (B)
}

export interface PretrainOutputs {
  loss: number;
  mlmLoss: number;
  drpLoss: number;
  mlmCorrect: number;
  mlmCount: number;
  drpCorrect: number;
  drpCount: number;
  /** Per-sequence DRP prediction (argmax), for confusion matrices. */
  drpPred: Int32Array;
}

/** A flat span of parameters with the same weight-decay rule (HF: no decay on biases and LayerNorm). */
export interface ParamGroupSpan {
  name: string;
  param: Tensor;
  grad: Tensor;
  m: Tensor;
  v: Tensor;
  weightDecay: boolean;
  /** bf16 copy of `param` refreshed by AdamW (mixed precision only) */
  lowp?: Tensor;
}

const noDecay = (name: string): boolean => name.endsWith('.bias') || name.includes('LayerNorm');

interface LayerActs {
  hin: Tensor; // (B*T,H) layer input (previous output)
  qkv: Tensor; // (B*T,3H) the fused Q|K|V projection; attention reads its column slices (ld_qkv 3H)
  q: Tensor; k: Tensor; v: Tensor; // views of qkv at columns 0, H, 2H
  att: Tensor; // (B*T,H) attention output
  lse: Tensor; // (B,NH,T)
  ao: Tensor; // (B*T,H) attention.output.dense (after dropout, in place); LN1's input is ao + hin
  mean1: Tensor; rstd1: Tensor; // (B*T)
  h1: Tensor; // (B*T,H) LN1 output
  fpre: Tensor; // (B*T,I) intermediate pre-GELU (its GELU output is not kept: see fTmp)
  fo: Tensor; // (B*T,H) output.dense (after dropout, in place); LN2's input is fo + h1
  mean2: Tensor; rstd2: Tensor; // (B*T)
  out: Tensor; // (B*T,H) LN2 output = next layer's hin
}

/** A linear layer's tensors: the weight matmuls read (W (N,K)), its bias (N), and their gradients. */
interface LinearParams { w: Tensor; b: Tensor; gw: Tensor; gb: Tensor }

/** Extra parameters a task head brings (allocated in the same arena, optimised together). */
export interface ExtraParam {
  name: string;
  shape: number[];
  init: 'normal' | 'zeros' | 'ones';
}

export class BertModel {
  readonly arena: Arena;
  readonly specs: ParamSpec[];
  readonly extra: ExtraParam[];
  readonly groups: ParamGroupSpan[] = [];
  readonly H: number; readonly NH: number; readonly D: number; readonly I: number; readonly V: number; readonly L: number;
  readonly B: number; readonly T: number; readonly P: number;
  readonly pretrainingHeads: boolean;
  private readonly layers: LayerActs[] = [];
  private readonly dropSeed: bigint;
  private curB = 0;
  private curT = 0; // the current batch's padded length (<= T): activations use the (curB, curT) prefix
  private clsT = 0; // the T that clsIndex (b * T) was written for
  readonly precision: 'fp32' | 'bf16';
  private training = false;
  private step = 0;

  // inputs
  readonly ids: Tensor; readonly types: Tensor; readonly mask: Tensor; // (B*T) i32
  readonly clsIndex: Tensor; // (B) i32, b*T
  readonly mpos: Tensor; readonly mlabels: Tensor; // (B*P) i32
  readonly drpLabels: Tensor; // (B) i32
  // activations outside the layers
  readonly emb: Tensor; readonly x0: Tensor; readonly mean0: Tensor; readonly rstd0: Tensor;
  readonly pooledIn: Tensor; readonly pooled: Tensor; // (B,H)
  readonly hidden: Tensor; // (B*T,H) the encoder's output (alias of the last layer's out)
  // backward scratch, shared by all layers
  readonly dHidden: Tensor; // (B*T,H) d(loss)/d(encoder output): heads write or add into it
  readonly dPooled: Tensor; // (B,H) d(loss)/d(pooled output): heads write it
  private readonly dA: Tensor; private readonly dB: Tensor; private readonly dS: Tensor; // (B*T,H)
  private readonly dF: Tensor; // (B*T,I)
  /** (B*T,I) GELU output of the layer being computed: forward input of output.dense, formed again in backward */
  private readonly fTmp: Tensor;
  private readonly dqkv: Tensor; // (B*T,3H) attention's dq|dk|dv per token, for the fused QKV backward
  private readonly dq: Tensor; private readonly dk: Tensor; private readonly dv: Tensor; // views of dqkv at columns 0, H, 2H
  /** Per layer, query/key/value parameters as one (3H, H) weight and (3H) bias: they are adjacent in the arena. */
  private readonly qkvParams: LinearParams[] = [];
  private readonly views: Tensor[] = []; // disposed with the model
  private readonly delta: Tensor; // (B,NH,T)
  private readonly dPoolIn: Tensor; // (B,H)
  // pretraining heads
  readonly mh: Tensor; readonly t1pre: Tensor; readonly t1: Tensor; readonly t2: Tensor; // (B*P,H)
  readonly tmean: Tensor; readonly trstd: Tensor; // (B*P)
  readonly mlmLogits: Tensor; // (B*P,V) row stride mlmLd, dlogits in place
  /** Row stride of mlmLogits: V rounded up to 8, so every GEMM on it has 16-byte aligned rows (tensor cores on CUDA). */
  readonly mlmLd: number;
  readonly mlmLosses: Tensor; readonly mlmCorrect: Tensor; // (B*P)
  readonly drpLogits: Tensor; // (B,3), dlogits in place
  readonly drpLosses: Tensor; readonly drpCorrect: Tensor; // (B)
  private readonly dT: Tensor; // (B*P,H)
  private lossScale = 1;
  private mlmValid = 0;

  constructor(
    readonly config: BertConfig,
    readonly ops: Ops,
    shape: ModelShape,
    opts: { pretrainingHeads?: boolean; extra?: ExtraParam[]; precision?: 'fp32' | 'bf16' } = {},
  ) {
    const c = config;
    this.H = c.hiddenSize; this.NH = c.numHeads; this.D = c.hiddenSize / c.numHeads; this.I = c.intermediateSize;
    this.V = c.vocabSize; this.L = c.numLayers; this.mlmLd = Math.ceil(c.vocabSize / 8) * 8;
    this.B = shape.batchSize; this.T = shape.seqLen; this.P = shape.maxPredictions;
    if (this.T > c.maxPositionEmbeddings) throw new RangeError(`seqLen ${this.T} exceeds max_position_embeddings ${c.maxPositionEmbeddings}`);
    if (!Number.isInteger(this.D)) throw new RangeError(`hidden ${this.H} is not divisible by heads ${this.NH}`);
    this.pretrainingHeads = opts.pretrainingHeads ?? true;
    // bf16 mixed precision: activations and matmul weights in bf16 (tensor cores on CUDA), fp32 master
    // weights, gradients, AdamW moments, LayerNorm/softmax statistics and losses.
    this.precision = opts.precision ?? 'fp32';
    const act = this.precision === 'bf16' ? 'bf16' : 'f32';
    this.specs = paramSpecs(c);
    this.extra = opts.extra ?? [];
    this.dropSeed = 0x5eedn;
    const arena = (this.arena = new Arena(ops.device, ops.native));
    const { B, T, P, H, I, V, NH } = this;
    const BT = B * T;

    // Parameters (and grads, m, v) as contiguous flat groups: decay first, then no-decay.
    const all = [...this.specs.map((s) => ({ name: s.name, shape: s.shape })), ...this.extra];
    const decay = all.filter((p) => !noDecay(p.name));
    const nodecay = all.filter((p) => noDecay(p.name));
    for (const kind of ['p', 'g', 'm', 'v']) {
      for (const group of [decay, nodecay]) group.forEach((p, i) => arena.reserve(`${kind}:${p.name}`, p.shape, 'f32', i === 0));
    }
    if (act === 'bf16') for (const group of [decay, nodecay]) group.forEach((p, i) => arena.reserve(`w:${p.name}`, p.shape, 'bf16', i === 0));
    const r = (name: string, shp: number[], dtype: 'f32' | 'i32' | 'bf16' = 'f32') => arena.reserve(name, shp, dtype);
    const ra = (name: string, shp: number[]) => arena.reserve(name, shp, act); // an activation
    r('ids', [BT], 'i32'); r('types', [BT], 'i32'); r('mask', [BT], 'i32'); r('cls', [B], 'i32');
    ra('emb', [BT, H]); ra('x0', [BT, H]); r('mean0', [BT]); r('rstd0', [BT]);
    for (let l = 0; l < this.L; l++) {
      // no copy of the layernorms' inputs (ao + hin, fo + h1): the backward adds them again into a scratch
      // buffer, the same bits, and the arena holds two arrays fewer per layer
      ra(`L${l}.qkv`, [BT, 3 * H]);
      for (const n of ['att', 'ao', 'h1', 'fo', 'out']) ra(`L${l}.${n}`, [BT, H]);
      r(`L${l}.lse`, [B, NH, T]);
      for (const n of ['mean1', 'rstd1', 'mean2', 'rstd2']) r(`L${l}.${n}`, [BT]);
      ra(`L${l}.fpre`, [BT, I]);
    }
    ra('pooledIn', [B, H]); ra('pooled', [B, H]);
    ra('dHidden', [BT, H]); ra('dPooled', [B, H]); ra('dA', [BT, H]); ra('dB', [BT, H]); ra('dS', [BT, H]);
    ra('dF', [BT, I]); ra('fTmp', [BT, I]); ra('dqkv', [BT, 3 * H]); r('delta', [B, NH, T]); ra('dPoolIn', [B, H]);
    const BP = Math.max(1, B * P);
    if (this.pretrainingHeads) {
      if (P < 1) throw new RangeError('the pretraining heads need maxPredictions >= 1');
      r('mpos', [BP], 'i32'); r('mlabels', [BP], 'i32'); r('drpLabels', [B], 'i32');
      for (const n of ['mh', 't1pre', 't1', 't2', 'dT']) ra(n, [BP, H]);
      r('tmean', [BP]); r('trstd', [BP]);
      ra('mlmLogits', [BP, this.mlmLd]); r('mlmLosses', [BP]); r('mlmCorrect', [BP], 'i32');
      ra('drpLogits', [B, c.numDrpLabels]); r('drpLosses', [B]); r('drpCorrect', [B], 'i32');
    }
    arena.allocate();

    const span = (group: { name: string }[], kind: string) => arena.span(`${kind}:${group[0]!.name}`, `${kind}:${group[group.length - 1]!.name}`);
    for (const [group, wd, name] of [[decay, true, 'decay'], [nodecay, false, 'no_decay']] as const) {
      if (!group.length) continue;
      this.groups.push({
        name, param: span(group, 'p'), grad: span(group, 'g'), m: span(group, 'm'), v: span(group, 'v'), weightDecay: wd,
        lowp: act === 'bf16' ? arena.span(`w:${group[0]!.name}`, `w:${group[group.length - 1]!.name}`, 'bf16') : undefined,
      });
    }

    const g = (n: string) => arena.get(n);
    this.ids = g('ids'); this.types = g('types'); this.mask = g('mask'); this.clsIndex = g('cls');
    this.clsIndex.setData(Int32Array.from({ length: B }, (_, b) => b * T));
    this.emb = g('emb'); this.x0 = g('x0'); this.mean0 = g('mean0'); this.rstd0 = g('rstd0');
    // Column slices of a (B*T, 3H) array: q at 0, k at H, v at 2H, each reaching to the last row's slice.
    const slices = (t: Tensor): [Tensor, Tensor, Tensor] => {
      const v3 = [0, 1, 2].map((i) => t.view(i * H, [BT * 3 * H - i * H]).keep()) as [Tensor, Tensor, Tensor];
      this.views.push(...v3);
      return v3;
    };
    for (let l = 0; l < this.L; l++) {
      const a = (n: string) => g(`L${l}.${n}`);
      const [q, k, v] = slices(a('qkv'));
      this.layers.push({
        hin: l === 0 ? this.x0 : g(`L${l - 1}.out`),
        qkv: a('qkv'), q, k, v, att: a('att'), lse: a('lse'), ao: a('ao'),
        mean1: a('mean1'), rstd1: a('rstd1'), h1: a('h1'), fpre: a('fpre'), fo: a('fo'),
        mean2: a('mean2'), rstd2: a('rstd2'), out: a('out'),
      });
    }
    // Query, key and value sit next to each other in their parameter groups (paramSpecs' order; a group
    // packs its regions), so each layer's three projections run as one (B*T, 3H) GEMM.
    for (let l = 0; l < this.L; l++) {
      const sp = `${this.layerPrefix(l)}.attention.self`;
      const qkvSpan = (kind: string, what: 'weight' | 'bias', dtype: 'f32' | 'bf16' = 'f32'): Tensor => {
        const t = arena.span(`${kind}:${sp}.query.${what}`, `${kind}:${sp}.value.${what}`, dtype);
        this.views.push(t);
        if (t.numel !== (what === 'weight' ? 3 * H * H : 3 * H)) throw new Error(`internal: ${sp} query/key/value ${what}s are not adjacent`);
        return t;
      };
      this.qkvParams.push({
        w: qkvSpan(act === 'bf16' ? 'w' : 'p', 'weight', act), b: qkvSpan('p', 'bias'), gw: qkvSpan('g', 'weight'), gb: qkvSpan('g', 'bias'),
      });
    }
    this.hidden = this.L > 0 ? this.layers[this.L - 1]!.out : this.x0;
    this.pooledIn = g('pooledIn'); this.pooled = g('pooled');
    this.dHidden = g('dHidden'); this.dPooled = g('dPooled'); this.dA = g('dA'); this.dB = g('dB'); this.dS = g('dS');
    this.dF = g('dF'); this.fTmp = g('fTmp'); this.dqkv = g('dqkv');
    [this.dq, this.dk, this.dv] = slices(this.dqkv); this.delta = g('delta'); this.dPoolIn = g('dPoolIn');
    const h = (n: string) => (this.pretrainingHeads ? g(n) : (undefined as unknown as Tensor));
    this.mpos = h('mpos'); this.mlabels = h('mlabels'); this.drpLabels = h('drpLabels');
    this.mh = h('mh'); this.t1pre = h('t1pre'); this.t1 = h('t1'); this.t2 = h('t2'); this.dT = h('dT');
    this.tmean = h('tmean'); this.trstd = h('trstd');
    this.mlmLogits = h('mlmLogits'); this.mlmLosses = h('mlmLosses'); this.mlmCorrect = h('mlmCorrect');
    this.drpLogits = h('drpLogits'); this.drpLosses = h('drpLosses'); this.drpCorrect = h('drpCorrect');
  }

  // ---- parameters -------------------------------------------------------------------------------
  param(name: string): Tensor { return this.arena.get(`p:${name}`); }
  grad(name: string): Tensor { return this.arena.get(`g:${name}`); }
  /** The copy matmuls read: the bf16 copy under mixed precision, else the fp32 parameter. */
  weight(name: string): Tensor { return this.precision === 'bf16' ? this.arena.get(`w:${name}`) : this.param(name); }
  /** Refreshes the bf16 weight copies from the fp32 masters (after init or loading; AdamW keeps them in step). */
  syncLowp(): void {
    for (const g of this.groups) if (g.lowp) this.ops.copy({ src: g.param, dst: g.lowp });
  }
  paramNames(): string[] { return [...this.specs.map((s) => s.name), ...this.extra.map((e) => e.name)]; }

  /** HF BertPreTrainedModel._init_weights: N(0, initializer_range) for weights, 0 for biases, LayerNorm 1/0. */
  initParams(seed: number, only?: Set<string>): void {
    const rng = new Rng(seed, 0x1417);
    const std = this.config.initializerRange;
    for (const s of [...this.specs, ...this.extra]) {
      if (only && !only.has(s.name)) continue;
      const n = numel(s.shape);
      const data = new Float32Array(n);
      if (s.init === 'ones') data.fill(1);
      else if (s.init === 'normal') {
        for (let i = 0; i < n; i += 2) {
          // Box-Muller: two normals per pair of uniforms
          const u1 = Math.max(rng.next(), 1e-12), u2 = rng.next();
          const rad = Math.sqrt(-2 * Math.log(u1)) * std;
          data[i] = rad * Math.cos(2 * Math.PI * u2);
          if (i + 1 < n) data[i + 1] = rad * Math.sin(2 * Math.PI * u2);
        }
      }
      this.param(s.name).setData(data);
    }
    this.syncLowp();
  }

  /** Copies host values into parameters (e.g. from a checkpoint); names must be ours. */
  loadParams(params: Map<string, Float32Array>): void {
    for (const [name, data] of params) {
      const t = this.param(name);
      if (data.length !== t.numel) throw new RangeError(`parameter ${name}: ${data.length} values for ${t.numel} elements`);
      t.setData(data);
    }
    this.syncLowp();
  }

  /** All parameters as host arrays (for checkpoints); task-head extras only with `includeExtra`. */
  exportParams(includeExtra = false): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const s of this.specs) out.set(s.name, this.param(s.name).toArray() as Float32Array);
    if (includeExtra) for (const e of this.extra) out.set(e.name, this.param(e.name).toArray() as Float32Array);
    return out;
  }

  zeroGrads(): void {
    for (const g of this.groups) this.ops.fill({ x: g.grad, value: 0 });
  }

  // ---- inputs -----------------------------------------------------------------------------------
  /** Uploads one batch; `batchSize` may be smaller than the arena's. */
  setInputs(x: ModelInputs): void {
    const B = x.batchSize, T = x.seqLen ?? this.T;
    if (B < 1 || B > this.B) throw new RangeError(`batch size ${B} outside [1, ${this.B}]`);
    if (!Number.isInteger(T) || T < 1 || T > this.T) throw new RangeError(`seqLen ${T} outside [1, ${this.T}] (the model's arena length)`);
    for (const [n, a] of [['inputIds', x.inputIds], ['tokenTypeIds', x.tokenTypeIds], ['attentionMask', x.attentionMask]] as const) {
      if (a.length !== B * T) throw new RangeError(`${n}: expected ${B * T} values (B=${B}, T=${T}), got ${a.length}`);
    }
    this.curB = B;
    this.curT = T;
    if (this.clsT !== T) {
      this.clsIndex.setData(Int32Array.from({ length: this.B }, (_, b) => b * T));
      this.clsT = T;
    }
    this.ids.setData(x.inputIds);
    this.types.setData(x.tokenTypeIds);
    this.mask.setData(x.attentionMask);
    if (this.pretrainingHeads && x.maskedPositions && x.maskedLabels && x.drpLabels) {
      const BP = B * this.P;
      if (x.maskedPositions.length !== BP || x.maskedLabels.length !== BP)
        throw new RangeError(`masked positions/labels: expected ${BP} values (B=${B}, P=${this.P})`);
      if (x.drpLabels.length !== B) throw new RangeError(`drpLabels: expected ${B} values`);
      let valid = 0;
      for (let i = 0; i < BP; i++) {
        const pos = x.maskedPositions[i]!, lab = x.maskedLabels[i]!;
        if (pos < 0 || pos >= B * T) throw new RangeError(`maskedPositions[${i}] = ${pos} outside [0, ${B * T})`);
        if (lab !== -1) {
          if (lab < 0 || lab >= this.V) throw new RangeError(`maskedLabels[${i}] = ${lab} outside the vocab [0, ${this.V})`);
          valid++;
        }
      }
      for (let b = 0; b < B; b++) {
        const d = x.drpLabels[b]!;
        if (d < 0 || d >= this.config.numDrpLabels) throw new RangeError(`drpLabels[${b}] = ${d} outside [0, ${this.config.numDrpLabels})`);
      }
      this.mlmValid = valid;
      this.mpos.setData(x.maskedPositions);
      this.mlabels.setData(x.maskedLabels);
      this.drpLabels.setData(x.drpLabels);
    }
  }

  // ---- helpers ----------------------------------------------------------------------------------
  /** A layer's tensors by its parameter name prefix, or as given (the fused QKV spans). */
  private lin(w: string | LinearParams): LinearParams {
    if (typeof w !== 'string') return w;
    return { w: this.weight(`${w}.weight`), b: this.param(`${w}.bias`), gw: this.grad(`${w}.weight`), gb: this.grad(`${w}.bias`) };
  }
  /** y (M,N) = x (M,K) W^T + b, W stored (N,K) like nn.Linear. */
  private linear(x: Tensor, w: string | LinearParams, y: Tensor, M: number, N: number, K: number, gelu?: Tensor): void {
    const p = this.lin(w);
    this.ops.matmul({ a: x, b: p.w, c: y, bias: p.b, M, N, K, trans_b: true, epilogue: gelu ? 'bias_gelu' : 'bias', pre_gelu: gelu ?? null });
  }
  /** dW += dy^T x; db += colsum(dy); dx = dy W. dx null skips it. */
  private linearBackward(dy: Tensor, x: Tensor, w: string | LinearParams, dx: Tensor | null, M: number, N: number, K: number): void {
    const p = this.lin(w);
    this.ops.matmul({ a: dy, b: x, c: p.gw, M: N, N: K, K: M, trans_a: true, beta: 1 });
    this.ops.biasBackward({ dout: dy, dbias: p.gb, M, N });
    if (dx) this.ops.matmul({ a: dy, b: p.w, c: dx, M, N: K, K: N });
  }
  /** Counter-based dropout seed for (step, site): masks are regenerated in backward, never stored. */
  private seedFor(site: number): bigint {
    return (this.dropSeed ^ (BigInt(this.step) << 20n) ^ BigInt(site)) & 0xffffffffffffffffn;
  }
  private dropout(x: Tensor, n: number, site: number): void {
    const p = this.config.hiddenDropout;
    if (!this.training || p <= 0) return;
    this.ops.dropout({ x, out: x, p, seed: this.seedFor(site), offset: 0, n });
  }
  private dropoutBackward(d: Tensor, n: number, site: number): void {
    const p = this.config.hiddenDropout;
    if (!this.training || p <= 0) return;
    this.ops.dropoutBackward({ dout: d, dx: d, p, seed: this.seedFor(site), offset: 0, n });
  }
  /** dst = dropout'(src) in one pass (a copy when dropout is off); src is left as it was. */
  private dropoutBackwardInto(src: Tensor, dst: Tensor, n: number, site: number): void {
    const p = this.config.hiddenDropout;
    if (!this.training || p <= 0) this.ops.copy({ src, dst, n });
    else this.ops.dropoutBackward({ dout: src, dx: dst, p, seed: this.seedFor(site), offset: 0, n });
  }
  private layerPrefix(l: number): string {
    return `bert.encoder.layer.${l}`;
  }

  // ---- forward ----------------------------------------------------------------------------------
  /** Embeddings and the encoder layers; leaves the output in `hidden` (B*T,H). */
  encode(training: boolean, step: number): void {
    const B = this.curB, T = this.curT, H = this.H, I = this.I, BT = B * T, c = this.config;
    if (!B) throw new Error('setInputs() first');
    this.training = training;
    this.step = step;
    const ops = this.ops;
    ops.embedding({
      ids: this.ids, type_ids: this.types, wte: this.param(WORD_EMBEDDINGS),
      wpe: this.param('bert.embeddings.position_embeddings.weight'), wtt: this.param('bert.embeddings.token_type_embeddings.weight'),
      out: this.emb, B, T, C: H, V: this.V, max_pos: c.maxPositionEmbeddings, type_vocab: c.typeVocabSize,
    });
    ops.layernorm({
      x: this.emb, out: this.x0, mean: this.mean0, rstd: this.rstd0, gamma: this.param('bert.embeddings.LayerNorm.weight'),
      beta: this.param('bert.embeddings.LayerNorm.bias'), rows: BT, cols: H, eps: c.layerNormEps,
    });
    this.dropout(this.x0, BT * H, 1);
    for (let l = 0; l < this.L; l++) {
      const a = this.layers[l]!, p = this.layerPrefix(l);
      this.linear(a.hin, this.qkvParams[l]!, a.qkv, BT, 3 * H, H);
      ops.attention({
        q: a.q, k: a.k, v: a.v, ld_qkv: 3 * H, out: a.att, lse: a.lse, key_mask: this.mask, B, T, NH: this.NH, D: this.D,
        dropout_p: training ? c.attentionDropout : 0, seed: this.seedFor(100 + l), offset: 0,
      });
      this.linear(a.att, `${p}.attention.output.dense`, a.ao, BT, H, H);
      this.dropout(a.ao, BT * H, 200 + l);
      ops.layernorm({
        x: a.ao, residual: a.hin, out: a.h1, mean: a.mean1, rstd: a.rstd1,
        gamma: this.param(`${p}.attention.output.LayerNorm.weight`), beta: this.param(`${p}.attention.output.LayerNorm.bias`),
        rows: BT, cols: H, eps: c.layerNormEps,
      });
      this.linear(a.h1, `${p}.intermediate.dense`, this.fTmp, BT, I, H, a.fpre);
      this.linear(this.fTmp, `${p}.output.dense`, a.fo, BT, H, I);
      this.dropout(a.fo, BT * H, 300 + l);
      ops.layernorm({
        x: a.fo, residual: a.h1, out: a.out, mean: a.mean2, rstd: a.rstd2,
        gamma: this.param(`${p}.output.LayerNorm.weight`), beta: this.param(`${p}.output.LayerNorm.bias`),
        rows: BT, cols: H, eps: c.layerNormEps,
      });
    }
  }

  /** Pooler: tanh(dense(hidden[:, 0])) into `pooled` (B,H). */
  pool(): void {
    const B = this.curB, H = this.H;
    this.ops.gatherRows({ src: this.hidden, dst: this.pooledIn, index: this.clsIndex, M: B, C: H, n_src: B * this.curT });
    this.linear(this.pooledIn, 'bert.pooler.dense', this.pooled, B, H, H);
    this.ops.tanh({ x: this.pooled, out: this.pooled, n: B * H });
  }

  /** Pretraining forward: encoder, pooler, sparse MLM and DRP heads, and their fused losses + dlogits. */
  forwardPretrain(training: boolean, step: number, opts: { withGrad?: boolean; lossScale?: number } = {}): void {
    if (!this.pretrainingHeads) throw new Error('model built without pretraining heads');
    const B = this.curB, H = this.H, V = this.V, BP = B * this.P, c = this.config, ops = this.ops;
    this.encode(training, step);
    this.pool();
    // MLM: gather masked rows first, so the vocabulary projection runs only on them.
    ops.gatherRows({ src: this.hidden, dst: this.mh, index: this.mpos, M: BP, C: H, n_src: B * this.curT });
    this.linear(this.mh, 'cls.predictions.transform.dense', this.t1, BP, H, H, this.t1pre);
    ops.layernorm({
      x: this.t1, out: this.t2, mean: this.tmean, rstd: this.trstd, gamma: this.param('cls.predictions.transform.LayerNorm.weight'),
      beta: this.param('cls.predictions.transform.LayerNorm.bias'), rows: BP, cols: H, eps: c.layerNormEps,
    });
    ops.matmul({ a: this.t2, b: this.weight(WORD_EMBEDDINGS), c: this.mlmLogits, ldc: this.mlmLd, bias: this.param(MLM_BIAS), M: BP, N: V, K: H, trans_b: true, epilogue: 'bias' });
    this.lossScale = opts.lossScale ?? 1;
    const withGrad = opts.withGrad ?? training;
    // dlogits in place: the logits are not needed after the loss.
    ops.softmaxXent({
      logits: this.mlmLogits, labels: this.mlabels, losses: this.mlmLosses, correct: this.mlmCorrect, dlogits: withGrad ? this.mlmLogits : null,
      N: BP, V, ld: this.mlmLd, ignore_index: -1, grad_scale: this.mlmValid > 0 ? this.lossScale / this.mlmValid : 0,
    });
    // DRP: 3-way classifier on the pooled [CLS].
    const K3 = c.numDrpLabels;
    this.linear(this.pooled, 'cls.drp', this.drpLogits, B, K3, H);
    ops.softmaxXent({
      logits: this.drpLogits, labels: this.drpLabels, losses: this.drpLosses, correct: this.drpCorrect, dlogits: null,
      N: B, V: K3, ignore_index: -1, grad_scale: 1 / B,
    });
  }

  /** The MLM logits of the last forward as (B*P, V), without the row padding (before the backward overwrites them). */
  readMlmLogits(): Float32Array {
    const all = this.mlmLogits.toArray() as Float32Array, V = this.V, ld = this.mlmLd;
    if (ld === V) return all;
    const rows = all.length / ld, out = new Float32Array(rows * V);
    for (let r = 0; r < rows; r++) out.set(all.subarray(r * ld, r * ld + V), r * V);
    return out;
  }

  /**
   * Reads the losses back (the step's one sync point). Must run before backwardPretrain, which
   * overwrites the DRP logits with their gradient.
   */
  readPretrainOutputs(): PretrainOutputs {
    const B = this.curB, BP = B * this.P, K3 = this.config.numDrpLabels;
    const ml = this.mlmLosses.toArray() as Float32Array, mc = this.mlmCorrect.toArray() as Int32Array;
    const dl = this.drpLosses.toArray() as Float32Array, dc = this.drpCorrect.toArray() as Int32Array;
    const logits = this.drpLogits.toArray() as Float32Array;
    let mlmSum = 0, mlmCorrect = 0, drpSum = 0, drpCorrect = 0;
    for (let i = 0; i < BP; i++) { mlmSum += ml[i]!; mlmCorrect += mc[i]!; }
    const drpPred = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      drpSum += dl[b]!; drpCorrect += dc[b]!;
      let best = 0;
      for (let k = 1; k < K3; k++) if (logits[b * K3 + k]! > logits[b * K3 + best]!) best = k;
      drpPred[b] = best;
    }
    const mlmLoss = this.mlmValid > 0 ? mlmSum / this.mlmValid : 0;
    const drpLoss = drpSum / B;
    return { loss: mlmLoss + drpLoss, mlmLoss, drpLoss, mlmCorrect, mlmCount: this.mlmValid, drpCorrect, drpCount: B, drpPred };
  }

  /** Backward of forwardPretrain(withGrad): parameter grads +=, scaled by its lossScale (grad accumulation). */
  backwardPretrain(): void {
    const lossScale = this.lossScale;
    const B = this.curB, H = this.H, V = this.V, BP = B * this.P, K3 = this.config.numDrpLabels, ops = this.ops;
    // DRP dlogits = (softmax - onehot) / B, recomputed here so the forward can be read first.
    ops.softmaxXent({
      logits: this.drpLogits, labels: this.drpLabels, losses: this.drpLosses, dlogits: this.drpLogits,
      N: B, V: K3, ignore_index: -1, grad_scale: lossScale / B,
    });
    // MLM decoder (tied to the word embeddings): dWte += dlogits^T t2, dbias += colsum, dt2 = dlogits Wte.
    ops.matmul({ a: this.mlmLogits, lda: this.mlmLd, b: this.t2, c: this.grad(WORD_EMBEDDINGS), M: V, N: H, K: BP, trans_a: true, beta: 1 });
    ops.biasBackward({ dout: this.mlmLogits, ld: this.mlmLd, dbias: this.grad(MLM_BIAS), M: BP, N: V });
    ops.matmul({ a: this.mlmLogits, lda: this.mlmLd, b: this.weight(WORD_EMBEDDINGS), c: this.dT, M: BP, N: H, K: V });
    // t2 and t1 are dead after the decoder grads: reuse them as gradient buffers. The layernorm backward
    // runs in place (dx over dout: no third array through the cache).
    ops.layernormBackward({
      x: this.t1, mean: this.tmean, rstd: this.trstd, gamma: this.param('cls.predictions.transform.LayerNorm.weight'),
      dout: this.dT, dx: this.dT, dgamma: this.grad('cls.predictions.transform.LayerNorm.weight'),
      dbeta: this.grad('cls.predictions.transform.LayerNorm.bias'), rows: BP, cols: H,
    });
    ops.geluBackward({ x: this.t1pre, dout: this.dT, dx: this.t2, n: BP * H });
    this.linearBackward(this.t2, this.mh, 'cls.predictions.transform.dense', this.t1, BP, H, H);
    ops.fill({ x: this.dHidden, value: 0, n: B * this.curT * H });
    ops.scatterAddRows({ src: this.t1, dst: this.dHidden, index: this.mpos, M: BP, C: H, n_dst: B * this.curT });
    // DRP head -> dPooled
    this.linearBackward(this.drpLogits, this.pooled, 'cls.drp', this.dPooled, B, K3, H);
    this.backwardEncoder(true);
  }

  /** Backward of pool() + encode(): reads dHidden (and dPooled when `withPooler`); parameter grads +=. */
  backwardEncoder(withPooler: boolean): void {
    const B = this.curB, T = this.curT, H = this.H, I = this.I, BT = B * T, ops = this.ops;
    if (withPooler) {
      ops.tanhBackward({ out: this.pooled, dout: this.dPooled, dx: this.dPooled, n: B * H });
      this.linearBackward(this.dPooled, this.pooledIn, 'bert.pooler.dense', this.dPoolIn, B, H, H);
      ops.scatterAddRows({ src: this.dPoolIn, dst: this.dHidden, index: this.clsIndex, M: B, C: H, n_dst: BT });
    }
    // Every layernorm backward runs in place (dx over dout), which saves a third array's trip through the
    // cache; the residual gradient then lives in the buffer that held d(LN output).
    const dOut = this.dHidden; // d(layer output)
    for (let l = this.L - 1; l >= 0; l--) {
      const a = this.layers[l]!, p = this.layerPrefix(l);
      // LN2, in place: dOut becomes dS2 = d(fo + h1); its input fo + h1 is formed again in dS
      ops.axpby({ a: a.fo, b: a.h1, out: this.dS, alpha: 1, beta: 1, n: BT * H });
      ops.layernormBackward({
        x: this.dS, mean: a.mean2, rstd: a.rstd2, gamma: this.param(`${p}.output.LayerNorm.weight`), dout: dOut, dx: dOut,
        dgamma: this.grad(`${p}.output.LayerNorm.weight`), dbeta: this.grad(`${p}.output.LayerNorm.bias`), rows: BT, cols: H,
      });
      // dfo = dropout'(dS2) into dA (dS2 is still needed for the residual)
      this.dropoutBackwardInto(dOut, this.dA, BT * H, 300 + l);
      // GELU(fpre) again for output.dense's weight gradient: one (B*T,I) buffer for all layers instead of one each
      ops.gelu({ x: a.fpre, out: this.fTmp, n: BT * I });
      this.linearBackward(this.dA, this.fTmp, `${p}.output.dense`, this.dF, BT, H, I);
      ops.geluBackward({ x: a.fpre, dout: this.dF, dx: this.dF, n: BT * I });
      // dh1 = dF Wi + dS2 (residual)
      this.linearBackward(this.dF, a.h1, `${p}.intermediate.dense`, this.dB, BT, I, H);
      ops.axpby({ a: this.dB, b: dOut, out: this.dB, alpha: 1, beta: 1, n: BT * H });
      // LN1, in place: dB becomes dS1 = d(ao + hin); its input ao + hin formed again in dS
      ops.axpby({ a: a.ao, b: a.hin, out: this.dS, alpha: 1, beta: 1, n: BT * H });
      ops.layernormBackward({
        x: this.dS, mean: a.mean1, rstd: a.rstd1, gamma: this.param(`${p}.attention.output.LayerNorm.weight`), dout: this.dB, dx: this.dB,
        dgamma: this.grad(`${p}.attention.output.LayerNorm.weight`), dbeta: this.grad(`${p}.attention.output.LayerNorm.bias`), rows: BT, cols: H,
      });
      this.dropoutBackwardInto(this.dB, this.dA, BT * H, 200 + l);
      // d(attention context) into dS (free at this point)
      this.linearBackward(this.dA, a.att, `${p}.attention.output.dense`, this.dS, BT, H, H);
      ops.attentionBackward({
        q: a.q, k: a.k, v: a.v, ld_qkv: 3 * H, out: a.att, lse: a.lse, key_mask: this.mask, B, T, NH: this.NH, D: this.D,
        dropout_p: this.training ? this.config.attentionDropout : 0, seed: this.seedFor(100 + l), offset: 0,
        dout: this.dS, dq: this.dq, dk: this.dk, dv: this.dv, delta: this.delta,
      });
      // the fused QKV projection's grads from dqkv (B*T,3H); d(hin) = dqkv Wqkv + dS1 (residual),
      // written into dA, then into dOut for the layer below.
      const dIn = this.dA;
      this.linearBackward(this.dqkv, a.hin, this.qkvParams[l]!, dIn, BT, 3 * H, H);
      ops.axpby({ a: dIn, b: this.dB, out: dOut, alpha: 1, beta: 1, n: BT * H });
    }
    // embeddings: dropout', LayerNorm' (in place), then the three tables
    const c = this.config;
    this.dropoutBackward(dOut, BT * H, 1);
    ops.layernormBackward({
      x: this.emb, mean: this.mean0, rstd: this.rstd0, gamma: this.param('bert.embeddings.LayerNorm.weight'), dout: dOut, dx: dOut,
      dgamma: this.grad('bert.embeddings.LayerNorm.weight'), dbeta: this.grad('bert.embeddings.LayerNorm.bias'), rows: BT, cols: H,
    });
    ops.embeddingBackward({
      ids: this.ids, type_ids: this.types, dout: dOut, dwte: this.grad(WORD_EMBEDDINGS),
      dwpe: this.grad('bert.embeddings.position_embeddings.weight'), dwtt: this.grad('bert.embeddings.token_type_embeddings.weight'),
      B, T, C: H, V: this.V, max_pos: c.maxPositionEmbeddings, type_vocab: c.typeVocabSize,
    });
  }

  /** Rows of the current batch (set by setInputs; may be below the arena's B). */
  get batchSize(): number {
    return this.curB;
  }

  /** Padded length of the current batch (set by setInputs; may be below the arena's T). */
  get seqLen(): number {
    return this.curT || this.T;
  }

  dispose(): void {
    for (const t of this.views) t.dispose();
    this.arena.dispose();
  }
}
