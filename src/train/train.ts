// train.ts: the LinkBERT pretraining loop (MLM + DRP), one flat loop in the nanoGPT / llm.c style.
import { existsSync, mkdirSync, writeFileSync, appendFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import os from 'node:os';
import { ShardDataset, BatchLoader, DEFAULT_SHUFFLE } from '../data/batch.js';
import { resolveConfig, type BertConfig } from '../model/config.js';
import { loadCheckpoint, matchParams } from '../model/checkpoint/index.js';
import { BertModel } from '../model/bert.js';
import { countParams } from '../model/param-names.js';
import { Ops } from '../ops.js';
import { AdamW } from './optim.js';
import { learningRate, type ScheduleKind } from './schedule.js';
import { evaluatePretrain, type PretrainEval } from './evaluate.js';
import { saveRunCheckpoint, loadRunCheckpoint, latestCheckpoint, type TrainerState } from './state.js';
import { Progress } from './progress.js';

export interface PretrainConfig {
  data: string;
  out: string;
  /** preset name (tiny, mini, small, medium, base, large) or a config.json path */
  model: string;
  device: 'cpu' | 'cuda';
  precision: 'fp32' | 'bf16';
  batchSize: number;
  gradAccum: number;
  lr: number;
  warmupSteps: number | null;
  warmupRatio: number;
  maxSteps: number;
  schedule: ScheduleKind;
  weightDecay: number;
  adamBetas: [number, number];
  adamEps: number;
  maxGradNorm: number;
  seed: number;
  evalEvery: number;
  evalBatches: number;
  saveEvery: number;
  saveTotalLimit: number;
  logEvery: number;
  initFrom: string | null;
  resume: boolean;
  resumeFrom: string | null;
  /** stop after this many consecutive non-finite steps */
  maxNonFinite: number;
  /** stop (and save) once this much wall time has passed; 0 = no limit */
  timeBudgetS: number;
  hiddenDropout: number | null;
  attentionDropout: number | null;
  threads: number | null;
  /** print progress (a TTY bar, else periodic lines) */
  progress: boolean;
  /** stop before this step (tests: simulate a crash point); 0 = off */
  stopAfterStep: number;
}

export const PRETRAIN_DEFAULTS: Omit<PretrainConfig, 'data' | 'out'> = {
  model: 'tiny', device: 'cpu', precision: 'fp32', batchSize: 32, gradAccum: 1, lr: 5e-4, warmupSteps: null, warmupRatio: 0.1,
  maxSteps: 1000, schedule: 'linear', weightDecay: 0.01, adamBetas: [0.9, 0.98], adamEps: 1e-6, maxGradNorm: 1.0, seed: 42,
  evalEvery: 200, evalBatches: 50, saveEvery: 500, saveTotalLimit: 3, logEvery: 10, initFrom: null, resume: false, resumeFrom: null,
  maxNonFinite: 10, timeBudgetS: 0, hiddenDropout: null, attentionDropout: null, threads: null, progress: true, stopAfterStep: 0,
};

export interface PretrainResult {
  run: string;
  steps: number;
  lastCheckpoint: string;
  finalEval: PretrainEval | null;
  stoppedBy: 'max_steps' | 'time_budget' | 'signal' | 'stop_after_step';
  tokensPerS: number;
  config: BertConfig;
}

export class NonFiniteError extends Error {}

/** One training line of RUN/metrics.jsonl (the validation lines, split 'valid', are left out by readTrainMetrics). */
export interface TrainMetrics {
  step: number;
  tokens_per_s: number;
  tokens_seen: number;
  data_wait_ms: number;
  /** wall seconds since the run began (across resumes), at this line */
  elapsed_s: number;
}

/** The training lines of RUN/metrics.jsonl, in order. */
export function readTrainMetrics(run: string): TrainMetrics[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as TrainMetrics & { split?: string })
    .filter((r) => r.split === undefined);
}

export async function pretrain(cfg: PretrainConfig, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<PretrainResult> {
  const run = resolve(cfg.out);
  mkdirSync(run, { recursive: true });
  const train = ShardDataset.open(cfg.data, 'train');
  const valid = ShardDataset.open(cfg.data, 'valid');
  const manifest = train.manifest;
  const seqLen = manifest.max_seq_len, maxPred = manifest.max_predictions;
  const tokenizerDir = manifest.vocab.dir ? resolve(cfg.data, manifest.vocab.dir) : undefined;

  // Model config: preset/path, vocab from the data; or the --init-from checkpoint's own config.
  let init: ReturnType<typeof matchParams> | undefined;
  let config: BertConfig;
  if (cfg.initFrom) {
    const ck = loadCheckpoint(cfg.initFrom);
    config = ck.config;
    if (config.vocabSize !== manifest.vocab.size)
      throw new Error(`--init-from ${cfg.initFrom}: vocab_size ${config.vocabSize} differs from the data's vocab (${manifest.vocab.size}); prepare the data with the checkpoint's vocab.txt`);
    init = matchParams(config, ck.tensors, { source: cfg.initFrom, strict: true });
  } else {
    config = resolveConfig(cfg.model, { vocabSize: manifest.vocab.size });
  }
  if (cfg.hiddenDropout !== null) config = { ...config, hiddenDropout: cfg.hiddenDropout };
  if (cfg.attentionDropout !== null) config = { ...config, attentionDropout: cfg.attentionDropout };
  if (seqLen > config.maxPositionEmbeddings) throw new Error(`data max_seq_len ${seqLen} exceeds the model's max_position_embeddings ${config.maxPositionEmbeddings}`);

  const ops = new Ops(cfg.device);
  if (cfg.threads) ops.native.setNumThreads(cfg.threads);
  const model = new BertModel(config, ops, { batchSize: cfg.batchSize, seqLen, maxPredictions: maxPred }, { precision: cfg.precision });
  const optim = new AdamW(ops, model.groups, {
    beta1: cfg.adamBetas[0], beta2: cfg.adamBetas[1], eps: cfg.adamEps, weightDecay: cfg.weightDecay, maxGradNorm: cfg.maxGradNorm,
  });
  model.initParams(cfg.seed);
  if (init) {
    model.loadParams(init.params);
    log(`init from ${cfg.initFrom}: ${init.params.size} tensors loaded${init.initialised.length ? `; initialised: ${init.initialised.join(', ')}` : ''}`);
    for (const n of init.notes) log(`  ${n}`);
    if (init.unexpected.length) log(`  unexpected keys (ignored): ${init.unexpected.join(', ')}`);
  }

  // Resume: parameters, moments, step, data position.
  let state: TrainerState | undefined;
  const resumeDir = cfg.resumeFrom ?? (cfg.resume ? latestCheckpoint(run) : undefined);
  if (cfg.resume && !cfg.resumeFrom && !resumeDir) log(`--resume: no checkpoint in ${run}; starting from scratch`);
  if (resumeDir) {
    state = loadRunCheckpoint(resumeDir, model, optim);
    log(`resumed from ${resumeDir} at step ${state.step}`);
  }

  const warmup = cfg.warmupSteps ?? Math.round(cfg.warmupRatio * cfg.maxSteps);
  const sched = { kind: cfg.schedule, peakLr: cfg.lr, warmupSteps: warmup, totalSteps: cfg.maxSteps };
  const resolved = { ...cfg, warmupSteps: warmup, model_config: config, params: countParams(config), seq_len: seqLen, max_predictions: maxPred };
  const env = { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '', ...ops.info(), ops: undefined };
  writeFileSync(join(run, 'config.json'), JSON.stringify({ train: resolved, env }, null, 2) + '\n');
  log(`pretrain config: ${JSON.stringify(resolved)}`);
  // shards prepared before the global shuffle (or with --no-shuffle) hold instances in document order,
  // which the loader's shuffle buffer mixes only locally
  if (manifest.config.shuffle !== true && train.size > DEFAULT_SHUFFLE)
    log(`note: ${cfg.data} holds its instances in document order (prepared ${manifest.config.shuffle === false ? 'with --no-shuffle' : 'before prepare shuffled them'}); training sees stretches of neighbouring documents. Run \`linkbert prepare\` again for a global shuffle.`);

  const loader = new BatchLoader(train, { batchSize: cfg.batchSize, seqLen, seed: cfg.seed }, state?.loader_position);
  const metricsPath = join(run, 'metrics.jsonl');
  if (!state && existsSync(metricsPath)) writeFileSync(metricsPath, ''); // a fresh run starts a fresh log
  if (state && existsSync(metricsPath)) {
    // Drop log lines past the checkpoint (they belong to the interrupted segment, replayed now).
    // An evaluation at the checkpoint's own step ran after that checkpoint was written, unless the
    // checkpoint's eval history has it: otherwise it is replayed too.
    const evalAtStep = state.eval_history.some((e) => (e as { step?: number }).step === state!.step);
    const kept = readFileSync(metricsPath, 'utf8').split('\n').filter((l) => {
      if (!l) return false;
      const r = JSON.parse(l) as { step: number; split?: string };
      return r.split === 'valid' ? r.step < state!.step || (r.step === state!.step && evalAtStep) : r.step <= state!.step;
    });
    writeFileSync(metricsPath, kept.map((l) => l + '\n').join(''));
  }
  let step = state?.step ?? 0;
  let tokensSeen = state?.tokens_seen ?? 0, examplesSeen = state?.examples_seen ?? 0;
  let nonFiniteTotal = state?.non_finite_skipped ?? 0, nonFiniteRun = 0;
  const evalHistory = state?.eval_history ?? [];
  let bestEval = state?.best_eval_loss ?? null;
  const elapsedBefore = state?.elapsed_s ?? 0;
  const t0 = Date.now();
  let stopSignal = false;
  const onSignal = (sig: string) => { if (!stopSignal) log(`\n${sig}: finishing the step, then saving`); stopSignal = true; };
  const sigint = () => onSignal('SIGINT'), sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  const progress = new Progress(cfg.progress, cfg.maxSteps, ops.device === 'cuda');
  const flopsPerToken = 6 * countParams(config) + 12 * config.numLayers * config.hiddenSize * seqLen;
  let winTokens = 0, winStart = Date.now(), winWait = 0, lastWait = loader.waitMs();
  let stoppedBy: PretrainResult['stoppedBy'] = 'max_steps';
  let finalEval: PretrainEval | null = null;
  let lastCheckpoint = resumeDir ?? '';

  const snapshot = (): TrainerState => ({
    version: 1, step, optimizer_step: optim.step, tokens_seen: tokensSeen, examples_seen: examplesSeen, non_finite_skipped: nonFiniteTotal,
    loader_position: loader.position(), rng: { seed: cfg.seed, dropout: 'philox(seed=0x5eed ^ step<<20 ^ site)' }, eval_history: evalHistory,
    best_eval_loss: bestEval, elapsed_s: elapsedBefore + (Date.now() - t0) / 1000, config: resolved as unknown as Record<string, unknown>,
  });
  const save = () => {
    lastCheckpoint = saveRunCheckpoint(run, model, optim, snapshot(), tokenizerDir, cfg.saveTotalLimit);
    progress.note(`saved ${lastCheckpoint}`);
  };
  const runEval = () => {
    const e = evaluatePretrain(model, valid, { maxBatches: cfg.evalBatches, seed: cfg.seed });
    evalHistory.push({ step, ...e });
    if (bestEval === null || e.loss < bestEval) bestEval = e.loss;
    appendFileSync(metricsPath, JSON.stringify({ step, split: 'valid', ...e }) + '\n');
    progress.note(`eval @${step}: loss ${e.loss.toFixed(4)} mlm_acc ${(100 * e.mlm_accuracy).toFixed(2)}% ppl ${e.mlm_perplexity.toFixed(1)} drp_acc ${(100 * e.drp_accuracy).toFixed(2)}% (balanced ${(100 * e.drp_balanced_accuracy).toFixed(2)}%)`);
    return e;
  };

  try {
    for (; step < cfg.maxSteps; ) {
      // once in a while: evaluate on the validation split
      if (cfg.evalEvery > 0 && step > 0 && step % cfg.evalEvery === 0 && evalHistory.at(-1)?.step !== step) runEval();

      // micro-steps: load batch (prefetched in a worker), forward, backward (grads +=)
      let loss = 0, mlmLoss = 0, drpLoss = 0, mlmC = 0, mlmN = 0, drpC = 0, drpN = 0, stepTokens = 0;
      for (let micro = 0; micro < cfg.gradAccum; micro++) {
        const batch = await loader.next();
        model.setInputs(batch);
        model.forwardPretrain(true, step * cfg.gradAccum + micro, { lossScale: 1 / cfg.gradAccum });
        const o = model.readPretrainOutputs();
        model.backwardPretrain();
        loss += o.loss / cfg.gradAccum; mlmLoss += o.mlmLoss / cfg.gradAccum; drpLoss += o.drpLoss / cfg.gradAccum;
        mlmC += o.mlmCorrect; mlmN += o.mlmCount; drpC += o.drpCorrect; drpN += o.drpCount;
        stepTokens += batch.numTokens;
        examplesSeen += batch.batchSize;
      }
      // clip, lr schedule, AdamW, zero grads; a non-finite loss or gradient skips the update
      const gradNorm = optim.gradNorm();
      const lr = learningRate(sched, step);
      if (Number.isFinite(loss) && Number.isFinite(gradNorm)) {
        optim.update(lr, gradNorm);
        nonFiniteRun = 0;
      } else {
        nonFiniteTotal++;
        nonFiniteRun++;
        progress.note(`step ${step}: non-finite ${Number.isFinite(loss) ? 'gradient' : 'loss'} (loss ${loss}, grad norm ${gradNorm}); update skipped (${nonFiniteRun} in a row)`);
        if (nonFiniteRun >= cfg.maxNonFinite) {
          throw new NonFiniteError(`stopping: ${nonFiniteRun} consecutive steps with a non-finite loss or gradient at step ${step} (lower --lr, raise --warmup-steps, or check the data); the last good checkpoint is ${lastCheckpoint || 'none'}`);
        }
      }
      model.zeroGrads();
      step++;
      tokensSeen += stepTokens;
      winTokens += stepTokens;

      // log: metrics.jsonl + progress bar
      const now = Date.now();
      const wait = loader.waitMs();
      winWait += wait - lastWait;
      lastWait = wait;
      if (step % cfg.logEvery === 0 || step === cfg.maxSteps) {
        const secs = Math.max(1e-9, (now - winStart) / 1000);
        const tps = winTokens / secs;
        const rec = {
          step, loss, mlm_loss: mlmLoss, drp_loss: drpLoss, mlm_accuracy: mlmN ? mlmC / mlmN : 0, drp_accuracy: drpN ? drpC / drpN : 0,
          lr, grad_norm: gradNorm, tokens_per_s: tps, tokens_seen: tokensSeen, data_wait_ms: winWait, data_wait_share: winWait / 1000 / secs,
          non_finite_skipped: nonFiniteTotal, elapsed_s: elapsedBefore + (now - t0) / 1000,
          ...(ops.device === 'cuda' ? { mfu: (tps * flopsPerToken) / 989e12 } : {}),
        };
        appendFileSync(metricsPath, JSON.stringify(rec) + '\n');
        progress.update(step, rec);
        winTokens = 0; winStart = now; winWait = 0;
      }

      // once in a while: checkpoint (atomic), prune old ones
      const outOfTime = cfg.timeBudgetS > 0 && (Date.now() - t0) / 1000 >= cfg.timeBudgetS;
      const stopAfter = cfg.stopAfterStep > 0 && step >= cfg.stopAfterStep;
      // a run that ends here saves once, after its final eval (below), not also here
      const ends = !stopSignal && (outOfTime || (step === cfg.maxSteps && !stopAfter));
      if (stopSignal || (!ends && ((cfg.saveEvery > 0 && step % cfg.saveEvery === 0) || step === cfg.maxSteps))) save();
      if (stopSignal) { stoppedBy = 'signal'; break; }
      if (outOfTime) { stoppedBy = 'time_budget'; progress.note(`time budget of ${cfg.timeBudgetS}s reached at step ${step}`); break; }
      if (stopAfter) { stoppedBy = 'stop_after_step'; break; }
    }
    progress.done();
    if (stoppedBy !== 'signal' && stoppedBy !== 'stop_after_step') {
      finalEval = evalHistory.at(-1)?.step === step ? (evalHistory.at(-1) as unknown as PretrainEval) : runEval();
      if (lastCheckpoint || step > (state?.step ?? 0)) save(); // with the final eval in its trainer_state
    }
    const secs = (Date.now() - t0) / 1000;
    return { run, steps: step, lastCheckpoint, finalEval, stoppedBy, tokensPerS: secs > 0 ? (tokensSeen - (state?.tokens_seen ?? 0)) / secs : 0, config };
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
    await loader.close();
    optim.dispose();
    model.dispose();
    train.close();
    valid.close();
  }
}
