// Fine-tuning and evaluation of downstream tasks (BLURB / MRQA / MedQA style) on a BERT or LinkBERT encoder.
//
// finetune(): load train/dev(/test) with the task spec (src/tasks/*), featurise with the checkpoint's tokenizer,
// build a BertModel without the pretraining heads plus the task head (src/tasks/heads.ts), train with AdamW and
// a linear warmup/decay schedule, evaluate on dev every --eval-every steps (or every epoch), keep the checkpoint
// that is best on dev (OUT/best, see task-checkpoint.ts), then reload it and score dev (and test):
// OUT/metrics.json, OUT/dev_predictions.jsonl and, with a test file, OUT/predictions.jsonl.
//
// evaluateCheckpoint(): score a fine-tuned checkpoint on a file with the stored task config and featurisation.
//
// The arena's sequence length is the longest feature of the splits being processed (at most
// --max-seq-len); each training batch is padded only to its own longest feature (rounded up to 8), and the
// model runs on that prefix of the arena, so short-sentence batches do not pay for 128/384/512 positions.
// Prediction batches do the same; their per-position logits are laid out with the arena's length.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BertModel } from '../model/bert.js';
import type { BertConfig } from '../model/config.js';
import { loadCheckpoint, matchParams, readSafetensors } from '../model/checkpoint/index.js';
import { WordPieceTokenizer } from '../data/tokenizer/index.js';
import { Rng } from '../data/masking.js';
import { Ops } from '../ops.js';
import { AdamW } from '../train/optim.js';
import { learningRate } from '../train/schedule.js';
import { Bar, formatDuration } from '../train/progress.js';
import { getTask, type AnyTaskSpec } from './index.js';
import { parseTaskConfig } from './config.js';
import {
  formatFeaturizeStats,
  formatReadStats,
  type Batch,
  type ConfigOverrides,
  type FeaturizeOptions,
  type FeaturizeStats,
  type HeadKind,
  type ReadStats,
  type TaskConfig,
  type TaskMetrics,
} from './types.js';
import { TaskHead, bceWithLogits, crossEntropy, headExtraParams, headParamNames, headWidth, mcLoss, mse, spanLoss, type LossResult } from './heads.js';
import { headFromTensors, headKindOf, loadTaskCheckpoint, saveTaskCheckpoint, TASK_CONFIG_FILE, TASK_HEAD_FILE, type FeatureSettings, type TaskMeta } from './task-checkpoint.js';

export interface FinetuneOptions {
  task: string;
  train: string;
  dev: string;
  test?: string;
  /** pretrained (or fine-tuned) checkpoint folder: config.json, weights, vocab.txt / tokenizer.json */
  checkpoint: string;
  out: string;
  epochs: number;
  lr: number;
  batchSize: number;
  /** default: 384 qa, 512 mc, 128 otherwise (capped at max_position_embeddings when not given) */
  maxSeqLen?: number;
  warmupRatio: number;
  weightDecay: number;
  seed: number;
  /** evaluate on dev every N optimizer steps; 0 = at the end of every epoch */
  evalEvery: number;
  device: 'cpu' | 'cuda';
  threads?: number;
  /** qa */
  docStride: number;
  maxQueryLen: number;
  nBest: number;
  maxAnswerLen: number;
  /** seqcls relation mode / ner macro-F1 */
  overrides?: ConfigOverrides;
  /** only the checkpoint's config and tokenizer are used: the encoder starts from random init */
  randomInit?: boolean;
  /** use only the first N training examples (quick runs, benchmarks) */
  maxTrainExamples?: number;
  /** override hidden/attention dropout */
  dropout?: number;
  progress: boolean;
  /**
   * CLI flag names (without --) the user passed; the CLI fills it from commander's option sources. It tells a
   * chosen value from a default (QA defaults are scaled for short models; flags of other tasks are warned
   * about). Absent (API callers): a value that differs from FINETUNE_DEFAULTS counts as chosen.
   */
  explicit?: readonly string[];
}

export const FINETUNE_DEFAULTS = {
  epochs: 3, lr: 5e-5, batchSize: 32, warmupRatio: 0.1, weightDecay: 0.01, seed: 42, evalEvery: 0, device: 'cpu' as const,
  docStride: 128, maxQueryLen: 64, nBest: 20, maxAnswerLen: 30, progress: true,
};

export function defaultMaxSeqLen(type: string): number {
  return type === 'qa' ? 384 : type === 'mc' ? 512 : 128;
}

export interface SplitResult {
  file: string;
  examples: number;
  features: number;
  main: string;
  metrics: Record<string, number>;
  notes: Record<string, number>;
  report?: string;
}

export interface EvalRecord {
  step: number;
  epoch: number;
  train_loss: number;
  dev: Record<string, number>;
  main: number;
  best: boolean;
}

export interface FinetuneResult {
  out: string;
  bestCheckpoint: string;
  best: { step: number; epoch: number; metric: string; value: number };
  dev: SplitResult;
  test?: SplitResult;
  history: EvalRecord[];
  /** mean training loss of each epoch */
  lossCurve: number[];
  steps: number;
  trainSeconds: number;
  totalSeconds: number;
}

type Log = (s: string) => void;
const stderrLog: Log = (s) => process.stderr.write(s + '\n');

// ---- shared pieces ----------------------------------------------------------------------------------

/** Rows one feature contributes to a model batch (mc: one per choice). */
function featureRows(spec: AnyTaskSpec, config: TaskConfig): number {
  return spec.headKind === 'mc' ? (config.numChoices ?? 0) : 1;
}

/** Longest sequence of any feature (mc: any choice). */
function longestFeature(spec: AnyTaskSpec, features: readonly unknown[]): number {
  let m = 0;
  for (const f of features as { inputIds?: Int32Array; choices?: { inputIds: Int32Array }[] }[]) {
    if (spec.headKind === 'mc') for (const c of f.choices!) m = Math.max(m, c.inputIds.length);
    else m = Math.max(m, f.inputIds!.length);
  }
  return m;
}

function featureOptions(type: string, f: FeatureSettings, train: boolean): FeaturizeOptions {
  return {
    maxSeqLength: f.maxSeqLength,
    train,
    ...(type === 'qa' ? { docStride: f.docStride, maxQueryLength: f.maxQueryLength } : {}),
  };
}

/** Host loss + dlogits for one batch, by head kind. */
export function batchLoss(kind: HeadKind, logits: Float32Array, batch: Batch & Record<string, unknown>, width: number): LossResult {
  const B = batch.batchSize, T = batch.seqLen;
  switch (kind) {
    case 'cls':
      return crossEntropy(logits, B, width, batch.labels as Int32Array);
    case 'multilabel':
      return bceWithLogits(logits, batch.labels as Float32Array);
    case 'regression':
      return mse(logits, batch.labels as Float32Array);
    case 'token':
      return crossEntropy(logits, B * T, width, batch.labels as Int32Array);
    case 'span':
      return spanLoss(logits, B, T, batch.attentionMask, batch.startPositions as Int32Array, batch.endPositions as Int32Array);
    case 'mc': {
      const K = batch.numChoices as number;
      return mcLoss(logits, batch.examples as number, K, batch.labels as Int32Array);
    }
  }
}

/** Runs features through the model in order and builds the spec's outputs object. */
function predictOutputs(
  spec: AnyTaskSpec,
  config: TaskConfig,
  head: TaskHead,
  features: readonly unknown[],
  batchSize: number,
  T: number,
  bar: Bar,
): unknown {
  const kind = spec.headKind, C = head.width, N = features.length;
  const K = featureRows(spec, config);
  const perFeature = kind === 'span' || kind === 'token' ? T * C : kind === 'mc' ? K : C;
  const all = new Float32Array(N * perFeature);
  for (let i = 0; i < N; i += batchSize) {
    const chunk = features.slice(i, i + batchSize);
    // padded to the chunk's own longest feature, as in training; per-position logits are then laid out
    // with the common stride T (positions past a feature's length are never read by the decoders)
    const Tb = Math.min(T, Math.ceil(longestFeature(spec, chunk) / 8) * 8);
    const batch = spec.collate(chunk, Tb);
    head.model.setInputs(batch);
    const logits = head.forward(false, 0);
    if ((kind === 'span' || kind === 'token') && Tb < T) {
      for (let f = 0; f < chunk.length; f++) all.set(logits.subarray(f * Tb * C, (f + 1) * Tb * C), (i + f) * perFeature);
    } else {
      all.set(logits, i * perFeature);
    }
    bar.update(Math.min(N, i + batchSize));
  }
  bar.done();
  switch (kind) {
    case 'span': {
      const s = new Float32Array(N * T), e = new Float32Array(N * T);
      for (let r = 0; r < N * T; r++) {
        s[r] = all[2 * r]!;
        e[r] = all[2 * r + 1]!;
      }
      return { startLogits: s, endLogits: e, seqLen: T };
    }
    case 'token':
      return { logits: all, seqLen: T };
    case 'cls':
    case 'multilabel':
      return { logits: all };
    case 'regression':
      return { predictions: all };
    case 'mc':
      return { scores: all };
  }
}

interface Split {
  file: string;
  examples: unknown[];
  features: unknown[];
  read: ReadStats;
  feat: FeaturizeStats;
}

function evaluateSplit(
  spec: AnyTaskSpec,
  config: TaskConfig,
  head: TaskHead,
  split: Split,
  batchSize: number,
  T: number,
  decode: { nBest: number; maxAnswerLength: number },
  progress: boolean,
  label: string,
): { result: SplitResult; predictions: unknown[]; score: TaskMetrics } {
  const bar = new Bar(progress, label, split.features.length);
  const outputs = predictOutputs(spec, config, head, split.features, batchSize, T, bar);
  const predictions = spec.decodePredictions(split.examples, split.features, outputs, config, decode);
  const score = spec.score(split.examples, predictions, config);
  return {
    result: {
      file: split.file, examples: split.examples.length, features: split.features.length,
      main: score.main, metrics: score.metrics, notes: score.notes, ...(score.report ? { report: score.report } : {}),
    },
    predictions,
    score,
  };
}

function writePredictions(file: string, spec: AnyTaskSpec, config: TaskConfig, examples: readonly unknown[], predictions: readonly unknown[]): void {
  if (examples.length !== predictions.length) throw new Error(`predictions: ${predictions.length} for ${examples.length} examples`);
  const lines = examples.map((e, i) => JSON.stringify(spec.predictionLine(e, predictions[i], config)));
  writeFileSync(file, lines.join('\n') + (lines.length ? '\n' : ''));
}

/** A metric value to maximise; NaN (e.g. Pearson of constant predictions) ranks lowest. */
const rank = (v: number | undefined): number => (v === undefined || Number.isNaN(v) ? -Infinity : v);

function loadSplit(spec: AnyTaskSpec, file: string, config: TaskConfig | undefined, log: Log): { examples: unknown[]; read: ReadStats } {
  const r = spec.loadExamples(file, config);
  log(`  ${formatReadStats(r.stats)}`);
  if (r.examples.length === 0) throw new Error(`${file}: no usable examples (${formatReadStats(r.stats)})`);
  return { examples: r.examples, read: r.stats };
}

function checkVocab(tok: WordPieceTokenizer, config: BertConfig, where: string): void {
  if (tok.vocabSize > config.vocabSize) {
    throw new Error(`${where}: the tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${config.vocabSize}`);
  }
}

function makeOps(device: 'cpu' | 'cuda', threads?: number): Ops {
  if (device !== 'cpu' && device !== 'cuda') throw new Error(`--device: "${String(device)}" must be cpu or cuda`);
  let ops: Ops;
  try {
    ops = new Ops(device);
    // a CUDA build without a usable GPU only fails at its first allocation: probe it now, before any data is read
    if (device === 'cuda') ops.native.dispose(ops.native.alloc([1], 'f32', 'cuda'));
  } catch (e) {
    throw new Error(`--device ${device}: cannot load the ${device} backend: ${(e as Error).message}`);
  }
  if (threads) ops.native.setNumThreads(threads);
  return ops;
}

// ---- finetune ---------------------------------------------------------------------------------------

export async function finetune(opts: FinetuneOptions, log: Log = stderrLog): Promise<FinetuneResult> {
  const t0 = Date.now();
  const spec = getTask(opts.task);
  const kind = spec.headKind;
  validateOptions(opts);
  const out = resolve(opts.out);
  const chosen = chosenFlags(opts);
  warnOtherTaskFlags(spec.name, chosen, opts.overrides, log);
  // the backend first: a missing CUDA build must fail before minutes of reading and tokenising
  const ops = makeOps(opts.device, opts.threads);

  // Model config, tokenizer, weights.
  const ckDir = resolve(opts.checkpoint);
  const ck = loadCheckpoint(ckDir);
  let config: BertConfig = ck.config;
  if (opts.dropout !== undefined) config = { ...config, hiddenDropout: opts.dropout, attentionDropout: opts.dropout };
  const tok = WordPieceTokenizer.fromDir(ckDir);
  checkVocab(tok, config, ckDir);

  // Data.
  log(`task ${spec.name} (${kind} head); reading data`);
  const train = loadSplit(spec, opts.train, undefined, log);
  if (opts.maxTrainExamples && train.examples.length > opts.maxTrainExamples) {
    log(`  using the first ${opts.maxTrainExamples} of ${train.examples.length} training examples (--max-train-examples)`);
    train.examples = train.examples.slice(0, opts.maxTrainExamples);
  }
  const taskConfig = spec.buildConfig(train.examples, opts.overrides);
  if (taskConfig.labels.length) log(`  labels (${taskConfig.labels.length}): ${taskConfig.labels.join(', ')}`);
  const dev = loadSplit(spec, opts.dev, taskConfig, log);
  const test = opts.test ? loadSplit(spec, opts.test, taskConfig, log) : undefined;

  let maxSeq = opts.maxSeqLen ?? defaultMaxSeqLen(spec.name);
  if (maxSeq > config.maxPositionEmbeddings) {
    if (opts.maxSeqLen !== undefined) {
      throw new Error(`--max-seq-len ${opts.maxSeqLen} exceeds the model's max_position_embeddings (${config.maxPositionEmbeddings})`);
    }
    log(`  --max-seq-len ${maxSeq} (default) capped to the model's max_position_embeddings ${config.maxPositionEmbeddings}`);
    maxSeq = config.maxPositionEmbeddings;
  }
  let docStride = opts.docStride, maxQueryLen = opts.maxQueryLen;
  if (spec.name === 'qa' && maxSeq < defaultMaxSeqLen('qa') && opts.maxSeqLen === undefined) {
    // the QA defaults (stride 128, question 64) are sized for 384 tokens: on a small model's capped length they
    // cannot work, so defaults the user did not choose shrink with it; chosen values are kept (and checked)
    const scale = (v: number) => Math.max(1, Math.floor((v * maxSeq) / defaultMaxSeqLen('qa')));
    const notes: string[] = [];
    if (!chosen.has('doc-stride')) {
      docStride = scale(FINETUNE_DEFAULTS.docStride);
      notes.push(`--doc-stride ${FINETUNE_DEFAULTS.docStride} → ${docStride}`);
    }
    if (!chosen.has('max-query-len')) {
      maxQueryLen = scale(FINETUNE_DEFAULTS.maxQueryLen);
      notes.push(`--max-query-len ${FINETUNE_DEFAULTS.maxQueryLen} → ${maxQueryLen}`);
    }
    if (notes.length) log(`  qa defaults scaled to --max-seq-len ${maxSeq}: ${notes.join(', ')} (pass the flags to choose)`);
  }
  const fs: FeatureSettings = { maxSeqLength: maxSeq, ...(spec.name === 'qa' ? { docStride, maxQueryLength: maxQueryLen } : {}) };
  const feat = (name: string, examples: unknown[], isTrain: boolean, file: string): Split => {
    const r = spec.featurize(examples, tok, taskConfig, featureOptions(spec.name, fs, isTrain));
    log(`  ${name}: ${formatFeaturizeStats(r.stats)}`);
    if (r.features.length === 0) throw new Error(`${file}: no features could be built (${formatFeaturizeStats(r.stats)})`);
    return { file, examples, features: r.features, read: { file, records: 0, examples: examples.length, skipped: {}, notes: {} }, feat: r.stats };
  };
  const trS = feat('train', train.examples, true, opts.train);
  trS.read = train.read;
  const devS = feat('dev', dev.examples, false, opts.dev);
  devS.read = dev.read;
  const testS = test && opts.test ? feat('test', test.examples, false, opts.test) : undefined;
  if (testS) testS.read = test!.read;

  const T = Math.max(longestFeature(spec, trS.features), longestFeature(spec, devS.features), testS ? longestFeature(spec, testS.features) : 0);
  const K = featureRows(spec, taskConfig);
  const numLabels = spec.numLabels(taskConfig);
  const width = headWidth(kind, numLabels);

  // Inputs are read and checked: only now create --out (a failed run must not leave an empty folder behind).
  const createdOut = prepareOut(out, log);
  try {
    // Model + head.
    const model = new BertModel(config, ops, { batchSize: opts.batchSize * K, seqLen: T, maxPredictions: 0 }, {
      pretrainingHeads: false,
      extra: headExtraParams(kind, width, config.hiddenSize),
    });
    const head = new TaskHead(model, kind, numLabels);
    const names = headParamNames(kind);
    model.initParams(opts.seed);
    const source: Record<string, unknown> = { checkpoint: ckDir, init: opts.randomInit ? 'random' : 'checkpoint' };
    if (!opts.randomInit) {
      const match = matchParams(config, ck.tensors, { source: ckDir, strict: true });
      model.loadParams(match.params);
      const pooler = match.initialised.filter((n) => n.startsWith('bert.pooler.'));
      log(`encoder from ${ckDir}: ${match.params.size} tensors${pooler.length && head.pooled ? '; the pooler is not in the checkpoint: initialised' : ''}`);
      for (const n of match.notes) if (!/NSP head|initialised \(not in checkpoint\)/.test(n)) log(`  ${n}`);
      const prior = priorHead(ckDir, ck.tensors, kind, width, config.hiddenSize, taskConfig, log);
      if (prior) {
        model.param(names.weight).setData(prior.weight);
        model.param(names.bias).setData(prior.bias);
        log(`  task head ${names.hfWeight} taken from the checkpoint`);
      } else {
        log(`  task head ${names.hfWeight} [${width},${config.hiddenSize}] initialised (not in the checkpoint)`);
      }
    } else {
      log(`random init (config and tokenizer from ${ckDir}; --random-init)`);
    }
    log(`model: ${config.numLayers} layers, hidden ${config.hiddenSize}; sequence length ${T}; batch ${opts.batchSize}${K > 1 ? ` × ${K} choices` : ''}; device ${opts.device}`);

    // Parameters the task never uses (the pretraining heads; the pooler under token/span heads) get no gradient,
    // but AdamW's decoupled weight decay would still shrink them: save them as they were loaded.
    const unused = new Map<string, Float32Array>();
    for (const n of model.paramNames()) {
      if (n.startsWith('cls.') || (!head.pooled && n.startsWith('bert.pooler.'))) unused.set(n, model.param(n).toArray() as Float32Array);
    }
    const optim = new AdamW(ops, model.groups, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: opts.weightDecay, maxGradNorm: 1 });
    const nTrain = trS.features.length;
    const stepsPerEpoch = Math.ceil(nTrain / opts.batchSize);
    const totalSteps = stepsPerEpoch * opts.epochs;
    const schedule = { kind: 'linear' as const, peakLr: opts.lr, warmupSteps: Math.round(opts.warmupRatio * totalSteps), totalSteps };
    const decode = { nBest: opts.nBest, maxAnswerLength: opts.maxAnswerLen };
    const bestDir = join(out, 'best');
    const meta: TaskMeta = { task: taskConfig, head: kind, numLabels, features: fs, source };
    const history: EvalRecord[] = [];
    const lossCurve: number[] = [];
    let best: FinetuneResult['best'] | undefined;
    let step = 0;
    let trainSeconds = 0;
    let sinceEval = { sum: 0, n: 0 };

    const runEval = (epoch: number): void => {
      const tEval = Date.now();
      const r = evaluateSplit(spec, taskConfig, head, devS, opts.batchSize, T, decode, opts.progress, `dev @${step}`);
      const value = r.result.metrics[r.result.main]!;
      const isBest = best === undefined || rank(value) > rank(best.value);
      history.push({ step, epoch, train_loss: sinceEval.n ? sinceEval.sum / sinceEval.n : NaN, dev: r.result.metrics, main: value, best: isBest });
      sinceEval = { sum: 0, n: 0 };
      if (isBest) {
        best = { step, epoch, metric: r.result.main, value };
        const params = model.exportParams(false);
        for (const [n, v] of unused) params.set(n, v);
        saveTaskCheckpoint(bestDir, config, params, {
          weight: model.param(names.weight).toArray() as Float32Array,
          bias: model.param(names.bias).toArray() as Float32Array,
        }, { ...meta, source: { ...source, step, epoch, dev_metric: r.result.main, dev_value: value } }, ckDir);
      }
      log(`eval step ${step} (epoch ${epoch}): dev ${r.result.main} ${fmt(value)}${isBest ? ' (best, saved)' : ''} [${((Date.now() - tEval) / 1000).toFixed(1)} s]`);
    };

    log(`training: ${nTrain} features, ${opts.epochs} epoch(s) × ${stepsPerEpoch} steps = ${totalSteps} steps; lr ${opts.lr}, warmup ${schedule.warmupSteps}`);
    model.zeroGrads();
    const order = Array.from({ length: nTrain }, (_, i) => i);
    const rng = new Rng(opts.seed, 0xf17e);
    for (let epoch = 1; epoch <= opts.epochs; epoch++) {
      rng.shuffle(order);
      const bar = new Bar(opts.progress, `epoch ${epoch}/${opts.epochs}`, stepsPerEpoch);
      let epochSum = 0, epochN = 0;
      const tEpoch = Date.now();
      let seen = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const tStep = Date.now();
        const idx = order.slice(s * opts.batchSize, (s + 1) * opts.batchSize);
        const chunk = idx.map((i) => trS.features[i]);
        // padded to this batch's longest feature (a multiple of 8, at most T): short-sentence batches do not
        // pay for the longest feature of the whole split
        const batch = spec.collate(chunk, Math.min(T, Math.ceil(longestFeature(spec, chunk) / 8) * 8)) as Batch & Record<string, unknown>;
        model.setInputs(batch);
        const logits = head.forward(true, step);
        const l = batchLoss(kind, logits, batch, width);
        if (!Number.isFinite(l.loss)) {
          throw new Error(`non-finite training loss ${l.loss} at step ${step + 1} (epoch ${epoch}); try a lower --lr`);
        }
        head.backward(l.dlogits);
        const norm = optim.gradNorm();
        const lr = learningRate(schedule, step);
        if (Number.isFinite(norm)) optim.update(lr, norm);
        else log(`step ${step + 1}: non-finite gradient norm, update skipped`);
        model.zeroGrads();
        step++;
        seen += idx.length;
        epochSum += l.loss;
        epochN++;
        sinceEval.sum += l.loss;
        sinceEval.n++;
        const elapsed = (Date.now() - tEpoch) / 1000;
        bar.update(s + 1, [`loss ${(epochSum / epochN).toFixed(4)}`, `lr ${lr.toExponential(2)}`, `${(seen / Math.max(elapsed, 1e-9)).toFixed(1)} ex/s`]);
        trainSeconds += (Date.now() - tStep) / 1000;
        if (opts.evalEvery > 0 && step % opts.evalEvery === 0 && step < totalSteps) {
          bar.done();
          runEval(epoch);
        }
      }
      bar.done();
      lossCurve.push(epochSum / Math.max(1, epochN));
      log(`epoch ${epoch}: mean train loss ${fmt(lossCurve[lossCurve.length - 1]!)}`);
      if (opts.evalEvery === 0 || epoch === opts.epochs) runEval(epoch);
    }

    // Reload the best checkpoint from disk (what `evaluate` will see) and score dev and test with it.
    const saved = loadTaskCheckpoint(bestDir);
    model.loadParams(saved.match.params);
    model.param(names.weight).setData(saved.head.weight);
    model.param(names.bias).setData(saved.head.bias);
    const devEval = evaluateSplit(spec, taskConfig, head, devS, opts.batchSize, T, decode, opts.progress, 'dev (best)');
    writePredictions(join(out, 'dev_predictions.jsonl'), spec, taskConfig, devS.examples, devEval.predictions);
    let testEval: ReturnType<typeof evaluateSplit> | undefined;
    if (testS) {
      testEval = evaluateSplit(spec, taskConfig, head, testS, opts.batchSize, T, decode, opts.progress, 'test (best)');
      writePredictions(join(out, 'predictions.jsonl'), spec, taskConfig, testS.examples, testEval.predictions);
    }
    head.dispose();
    optim.dispose();
    model.dispose();

    const totalSeconds = (Date.now() - t0) / 1000;
    const result: FinetuneResult = {
      out, bestCheckpoint: bestDir, best: best!, dev: devEval.result, ...(testEval ? { test: testEval.result } : {}),
      history, lossCurve, steps: step, trainSeconds, totalSeconds,
    };
    const metricsJson = {
      task: spec.name,
      head: kind,
      checkpoint: ckDir,
      init: source.init,
      best_checkpoint: bestDir,
      best: result.best,
      dev: result.dev,
      ...(result.test ? { test: result.test } : {}),
      // predictions.jsonl holds the test file's predictions only (as --help says); dev's are in dev_predictions.jsonl
      predictions: { ...(testS ? { file: join(out, 'predictions.jsonl'), split: 'test' } : {}), dev_file: join(out, 'dev_predictions.jsonl') },
      history,
      loss_curve: lossCurve,
      train: {
        examples: train.examples.length, features: nTrain, steps: step, epochs: opts.epochs, batch_size: opts.batchSize, lr: opts.lr,
        warmup_steps: schedule.warmupSteps, seq_len: T, max_seq_len: maxSeq, device: opts.device, seed: opts.seed, seconds: round3(trainSeconds),
      },
      data: {
        train: { read: train.read, featurize: trS.feat },
        dev: { read: dev.read, featurize: devS.feat },
        ...(testS ? { test: { read: test!.read, featurize: testS.feat } } : {}),
      },
      seconds: round3(totalSeconds),
    };
    writeFileSync(join(out, 'metrics.json'), JSON.stringify(metricsJson, null, 2) + '\n');
    log(`best dev ${result.best.metric} ${fmt(result.best.value)} at step ${result.best.step}; ${result.test ? `test ${result.test.main} ${fmt(result.test.metrics[result.test.main]!)}; ` : ''}${formatDuration(totalSeconds)}`);
    return result;
  } catch (e) {
    if (createdOut && existsSync(out) && readdirSync(out).length === 0) rmdirSync(out);
    throw e;
  }
}

/** Flags (CLI names) the user chose; without `explicit`, values that differ from the defaults. */
function chosenFlags(o: FinetuneOptions): Set<string> {
  if (o.explicit) return new Set(o.explicit);
  const d = FINETUNE_DEFAULTS;
  const c = new Set<string>();
  if (o.docStride !== d.docStride) c.add('doc-stride');
  if (o.maxQueryLen !== d.maxQueryLen) c.add('max-query-len');
  if (o.nBest !== d.nBest) c.add('n-best');
  if (o.maxAnswerLen !== d.maxAnswerLen) c.add('max-answer-len');
  return c;
}

/** Task-specific flags and the task types they apply to. */
const TASK_FLAGS: Record<string, string[]> = {
  'doc-stride': ['qa'], 'max-query-len': ['qa'], 'n-best': ['qa'], 'max-answer-len': ['qa'],
  relation: ['seqcls'], 'negative-label': ['seqcls'], macro: ['ner'],
};

/** One warning per chosen flag that the task ignores (commander accepts them all). */
function warnOtherTaskFlags(task: string, chosen: Set<string>, overrides: ConfigOverrides | undefined, log: Log): void {
  const given = new Set(chosen);
  if (overrides?.macro) given.add('macro');
  if (overrides?.negativeLabel !== undefined) given.add('negative-label');
  else if (overrides?.relation) given.add('relation');
  for (const [flag, tasks] of Object.entries(TASK_FLAGS)) {
    if (given.has(flag) && !tasks.includes(task)) log(`warning: --${flag} applies to --task ${tasks.join('/')} only; ignored for --task ${task}`);
  }
}

/** Creates --out (true when this run created it); notes a previous run whose results will be replaced. */
function prepareOut(out: string, log: Log): boolean {
  if (!existsSync(out)) {
    mkdirSync(out, { recursive: true });
    return true;
  }
  if (!statSync(out).isDirectory()) throw new Error(`--out ${out}: exists and is not a folder`);
  const old = ['best', 'metrics.json', 'predictions.jsonl', 'dev_predictions.jsonl'].filter((f) => existsSync(join(out, f)));
  if (old.length) {
    let task = '';
    try {
      const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { task?: unknown };
      if (typeof m.task === 'string') task = ` (task ${m.task})`;
    } catch {
      // no or unreadable metrics.json: the note names the files instead
    }
    log(`--out ${out}: replacing a previous run${task}: ${old.join(', ')}`);
    // a stale predictions.jsonl from a run with --test would otherwise sit next to this run's results
    if (existsSync(join(out, 'predictions.jsonl'))) rmSync(join(out, 'predictions.jsonl'));
  }
  return false;
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(4) : String(v));
const round3 = (v: number): number => Math.round(v * 1000) / 1000;

function validateOptions(o: FinetuneOptions): void {
  const posInt = (name: string, v: number, min = 1) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${v}`);
  };
  posInt('epochs', o.epochs);
  posInt('batch-size', o.batchSize);
  posInt('eval-every', o.evalEvery, 0);
  posInt('seed', o.seed, 0);
  // 8, as prepare: below that a sequence holds [CLS], [SEP] and a word or two, and trains to nothing
  if (o.maxSeqLen !== undefined) posInt('max-seq-len', o.maxSeqLen, 8);
  if (!(o.lr > 0) || !Number.isFinite(o.lr)) throw new Error(`--lr: expected a positive number, got ${o.lr}`);
  if (!(o.warmupRatio >= 0 && o.warmupRatio <= 1)) throw new Error(`--warmup-ratio: expected a number in [0, 1], got ${o.warmupRatio}`);
  if (!(o.weightDecay >= 0)) throw new Error(`--weight-decay: expected a number >= 0, got ${o.weightDecay}`);
  if (o.dropout !== undefined && !(o.dropout >= 0 && o.dropout < 1)) throw new Error(`--dropout: expected a probability in [0, 1), got ${o.dropout}`);
  if (o.maxTrainExamples !== undefined) posInt('max-train-examples', o.maxTrainExamples);
  posInt('doc-stride', o.docStride);
  posInt('max-query-len', o.maxQueryLen);
  posInt('n-best', o.nBest);
  posInt('max-answer-len', o.maxAnswerLen);
}

/**
 * A head already in the checkpoint: HF fine-tuned weights (classifier.* / qa_outputs.* in model.safetensors),
 * or our task_head.safetensors when its task config has the same type and labels. Mismatches are reported
 * and the head is initialised instead.
 */
function priorHead(
  dir: string,
  tensors: Parameters<typeof headFromTensors>[0],
  kind: HeadKind,
  width: number,
  hidden: number,
  task: TaskConfig,
  log: Log,
): { weight: Float32Array; bias: Float32Array } | undefined {
  const ours = join(dir, TASK_HEAD_FILE);
  const ourCfg = join(dir, TASK_CONFIG_FILE);
  if (existsSync(ours) && existsSync(ourCfg)) {
    let same = false;
    try {
      const c = parseTaskConfig(JSON.parse(readFileSync(ourCfg, 'utf8')), ourCfg);
      same = c.type === task.type && c.labels.length === task.labels.length && c.labels.every((l, i) => l === task.labels[i]);
    } catch (e) {
      log(`  ${ourCfg}: ignored (${(e as Error).message})`);
    }
    if (same) {
      const r = headFromTensors(readSafetensors(ours).tensors, kind, width, hidden, ours, true);
      if (r && 'weight' in r) return r;
      if (r) log(`  ${r.wrongShape}; initialising the head`);
    } else {
      log(`  ${ourCfg}: a different task or label set; the task head is initialised`);
    }
    return undefined;
  }
  const r = headFromTensors(tensors, kind, width, hidden, dir, true);
  if (r && 'weight' in r) {
    if (task.labels.length) log(`  note: reusing ${dir}'s ${headParamNames(kind).hfWeight}; its label order must be the sorted training labels`);
    return r;
  }
  if (r) log(`  ${r.wrongShape}; initialising the head`);
  return undefined;
}

// ---- evaluate ---------------------------------------------------------------------------------------

export interface EvaluateOptions {
  /** when given, must match the checkpoint's task */
  task?: string;
  data: string;
  checkpoint: string;
  device: 'cpu' | 'cuda';
  batchSize: number;
  threads?: number;
  nBest: number;
  maxAnswerLen: number;
  /** write one prediction line per example here */
  predictions?: string;
  progress: boolean;
}

export interface EvaluateResult extends SplitResult {
  task: string;
  checkpoint: string;
  seconds: number;
}

export async function evaluateCheckpoint(opts: EvaluateOptions, log: Log = stderrLog): Promise<EvaluateResult> {
  const t0 = Date.now();
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`--batch-size: expected an integer >= 1, got ${opts.batchSize}`);
  if (opts.predictions !== undefined) {
    // checked before the (possibly long) evaluation, not when the file is written at its end
    const folder = dirname(resolve(opts.predictions));
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`--predictions ${opts.predictions}: folder ${folder} does not exist`);
  }
  const dir = resolve(opts.checkpoint);
  const saved = loadTaskCheckpoint(dir);
  const meta = saved.meta;
  if (opts.task !== undefined && opts.task !== meta.task.type) {
    getTask(opts.task); // unknown names get the registry's message
    throw new Error(`--task ${opts.task}: ${dir} was fine-tuned for ${meta.task.type}`);
  }
  const spec = getTask(meta.task.type);
  if (spec.headKind !== headKindOf(meta.task.type)) throw new Error(`${dir}: head kind mismatch`);
  const tok = WordPieceTokenizer.fromDir(dir);
  checkVocab(tok, saved.config, dir);
  const data = loadSplit(spec, opts.data, meta.task, log);
  const fr = spec.featurize(data.examples, tok, meta.task, featureOptions(spec.name, meta.features, false));
  log(`  ${formatFeaturizeStats(fr.stats)}`);
  if (fr.features.length === 0) throw new Error(`${opts.data}: no features could be built (${formatFeaturizeStats(fr.stats)})`);
  const T = longestFeature(spec, fr.features);
  const K = featureRows(spec, meta.task);
  const ops = makeOps(opts.device, opts.threads);
  const model = new BertModel(saved.config, ops, { batchSize: opts.batchSize * K, seqLen: T, maxPredictions: 0 }, {
    pretrainingHeads: false,
    extra: headExtraParams(meta.head, headWidth(meta.head, meta.numLabels), saved.config.hiddenSize),
  });
  const head = new TaskHead(model, meta.head, meta.numLabels);
  const names = headParamNames(meta.head);
  model.initParams(0);
  model.loadParams(saved.match.params);
  model.param(names.weight).setData(saved.head.weight);
  model.param(names.bias).setData(saved.head.bias);
  try {
    const split: Split = { file: opts.data, examples: data.examples, features: fr.features, read: data.read, feat: fr.stats };
    const r = evaluateSplit(spec, meta.task, head, split, opts.batchSize, T, { nBest: opts.nBest, maxAnswerLength: opts.maxAnswerLen }, opts.progress, 'evaluate');
    if (opts.predictions) writePredictions(opts.predictions, spec, meta.task, data.examples, r.predictions);
    return { task: meta.task.type, checkpoint: dir, ...r.result, seconds: round3((Date.now() - t0) / 1000) };
  } finally {
    head.dispose();
    model.dispose();
  }
}
