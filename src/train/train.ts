// train.ts: the LinkBERT pretraining loop (MLM + DRP), one flat loop in the nanoGPT / llm.c style.
import { existsSync, mkdirSync, writeFileSync, appendFileSync, statSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import os from 'node:os';
import { ShardDataset, BatchLoader, DEFAULT_SHUFFLE } from '../data/batch.js';
import { resolveConfig, PRESETS, type BertConfig } from '../model/config.js';
import { WordPieceTokenizer, type TokenizerConfig } from '../data/tokenizer/index.js';
import type { Manifest } from '../data/shards/manifest.js';
import { loadCheckpoint, matchParams } from '../model/checkpoint/index.js';
import { BertModel } from '../model/bert.js';
import { countParams } from '../model/param-names.js';
import { Ops } from '../ops.js';
import { AdamW } from './optim.js';
import { learningRate, type ScheduleKind } from './schedule.js';
import { evaluatePretrain, type PretrainEval } from './evaluate.js';
import { saveRunCheckpoint, loadRunCheckpoint, latestCheckpoint, type TrainerState } from './state.js';
import { Progress } from './progress.js';
import { readMetricsLog } from './metrics-log.js';

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
  /** stop (and save, without the final eval) after this step (tests: simulate a crash point); 0 = off */
  stopAfterStep: number;
}

export const PRETRAIN_DEFAULTS: Omit<PretrainConfig, 'data' | 'out'> = {
  model: 'tiny', device: 'cpu', precision: 'fp32', batchSize: 32, gradAccum: 1, lr: 5e-4, warmupSteps: null, warmupRatio: 0.1,
  maxSteps: 1000, schedule: 'linear', weightDecay: 0.01, adamBetas: [0.9, 0.98], adamEps: 1e-6, maxGradNorm: 1.0, seed: 42,
  evalEvery: 200, evalBatches: 50, saveEvery: 500, saveTotalLimit: 3, logEvery: 10, initFrom: null, resume: false, resumeFrom: null,
  maxNonFinite: 10, timeBudgetS: 0, hiddenDropout: null, attentionDropout: null, threads: null, progress: true, stopAfterStep: 0,
};

// What each setting must be: [its flag, the check]. A check returns what was expected, or null when v is fine.
type Check = (v: unknown) => string | null;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const intAtLeast = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v) =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max ? null : max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
const positive: Check = (v) => (isNum(v) && v > 0 ? null : 'a positive number');
const nonNegative: Check = (v) => (isNum(v) && v >= 0 ? null : 'a number >= 0');
const fraction: Check = (v) => (isNum(v) && v >= 0 && v <= 1 ? null : 'a number in [0, 1]');
const probability: Check = (v) => (isNum(v) && v >= 0 && v < 1 ? null : 'a probability in [0, 1)');
const orNull = (c: Check): Check => (v) => (v === null ? null : c(v));
const oneOf = (...xs: string[]): Check => (v) => (xs.includes(v as string) ? null : xs.join(' or '));
const text: Check = (v) => (typeof v === 'string' && v !== '' ? null : 'a non-empty string');
const bool: Check = (v) => (typeof v === 'boolean' ? null : 'true or false');
const betas: Check = (v) => (Array.isArray(v) && v.length === 2 && v.every((x) => isNum(x) && x >= 0 && x < 1) ? null : 'two numbers in [0, 1), e.g. 0.9,0.98');

export const PRETRAIN_CHECKS: Record<keyof PretrainConfig, [flag: string, check: Check]> = {
  data: ['data', text], out: ['out', text], model: ['config', text], device: ['device', oneOf('cpu', 'cuda')],
  precision: ['precision', oneOf('fp32', 'bf16')], batchSize: ['batch-size', intAtLeast(1)], gradAccum: ['grad-accum', intAtLeast(1)],
  lr: ['lr', positive], warmupSteps: ['warmup-steps', orNull(intAtLeast(0))], warmupRatio: ['warmup-ratio', fraction],
  maxSteps: ['max-steps', intAtLeast(0)], schedule: ['lr-schedule', oneOf('linear', 'cosine', 'constant')], weightDecay: ['weight-decay', nonNegative],
  adamBetas: ['adam-betas', betas], adamEps: ['adam-eps', positive], maxGradNorm: ['max-grad-norm', nonNegative], seed: ['seed', intAtLeast(0)],
  evalEvery: ['eval-every', intAtLeast(0)], evalBatches: ['eval-batches', intAtLeast(0)], saveEvery: ['save-every', intAtLeast(0)],
  saveTotalLimit: ['save-total-limit', intAtLeast(0)], logEvery: ['log-every', intAtLeast(1)], initFrom: ['init-from', orNull(text)],
  resume: ['resume', bool], resumeFrom: ['resume-from', orNull(text)], maxNonFinite: ['max-non-finite', intAtLeast(1)],
  timeBudgetS: ['time-budget', nonNegative], hiddenDropout: ['hidden-dropout', orNull(probability)],
  attentionDropout: ['attention-dropout', orNull(probability)], threads: ['threads', orNull(intAtLeast(1, 1024))], // the addon's limit
  progress: ['no-progress', bool], stopAfterStep: ['stop-after-step', intAtLeast(0)],
};

/** Throws on the first setting out of range or of the wrong type, e.g. "--lr: expected a positive number, got -1".
 * where(key) names the setting's source (the flag by default; the CLI names a --config-file key instead). */
export function validatePretrainConfig(cfg: PretrainConfig, where: (key: keyof PretrainConfig) => string = (k) => `--${PRETRAIN_CHECKS[k][0]}`): void {
  for (const key of Object.keys(PRETRAIN_CHECKS) as (keyof PretrainConfig)[]) {
    const v = cfg[key];
    const want = PRETRAIN_CHECKS[key][1](v);
    if (want) throw new Error(`${where(key)}: expected ${want}, got ${typeof v === 'number' ? String(v) : JSON.stringify(v) ?? 'nothing'}`);
  }
}

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
  return readMetricsLog(join(run, 'metrics.jsonl')).records.filter((r) => r.split === undefined) as unknown as TrainMetrics[];
}

/** --init-from: a checkpoint whose vocab has the data's size but other tokens would give every embedding
 * another token's meaning. The manifest's hash covers the vocab and the tokenizer settings, so the
 * checkpoint's vocab.txt is hashed with the data's settings: the vocabs alone are compared. */
function checkInitVocab(initFrom: string, vocab: Manifest['vocab'], dataVocab: string, log: (s: string) => void): void {
  const file = join(statSync(initFrom).isDirectory() ? initFrom : dirname(initFrom), 'vocab.txt');
  if (!existsSync(file)) {
    log(`note: --init-from ${initFrom} has no vocab.txt, so its vocab could not be checked against the data's (${dataVocab}); only the sizes (${vocab.size}) match`);
    return;
  }
  if (WordPieceTokenizer.fromVocabFile(file, vocab.config as Partial<TokenizerConfig>).hash() !== vocab.hash)
    throw new Error(`--init-from ${initFrom}: its vocab ${file} differs from the data's vocab ${dataVocab} (same size, ${vocab.size}, but other tokens or order); prepare the data with the checkpoint's vocab.txt (linkbert prepare --vocab ${file})`);
}

/** A macrotask turn: lets signal handlers run between steps (see the loop). */
const yieldToEventLoop = () => new Promise<void>((r) => setImmediate(r));

export async function pretrain(cfg: PretrainConfig, log: (s: string) => void = (s) => process.stderr.write(s + '\n')): Promise<PretrainResult> {
  validatePretrainConfig(cfg);
  const run = resolve(cfg.out);
  mkdirSync(run, { recursive: true });
  const train = ShardDataset.open(cfg.data, 'train');
  const valid = ShardDataset.open(cfg.data, 'valid');
  const manifest = train.manifest;
  const seqLen = manifest.max_seq_len, maxPred = manifest.max_predictions;
  const tokenizerDir = manifest.vocab.dir ? resolve(cfg.data, manifest.vocab.dir) : undefined;
  // nothing to evaluate: no evaluation rows at all (an empty one would log loss 0 and become the best)
  const noEval = valid.size === 0 ? `the valid split of ${cfg.data} is empty` : cfg.evalBatches === 0 ? '--eval-batches 0' : '';
  if (noEval) log(`note: ${noEval}: no evaluation`);

  // Model config: preset/path, vocab from the data; or the --init-from checkpoint's own config.
  let init: ReturnType<typeof matchParams> | undefined;
  let config: BertConfig;
  if (cfg.initFrom) {
    const ck = loadCheckpoint(cfg.initFrom);
    config = ck.config;
    if (config.vocabSize !== manifest.vocab.size)
      throw new Error(`--init-from ${cfg.initFrom}: vocab_size ${config.vocabSize} differs from the data's vocab (${manifest.vocab.size}); prepare the data with the checkpoint's vocab.txt`);
    checkInitVocab(cfg.initFrom, manifest.vocab, tokenizerDir ? join(tokenizerDir, 'vocab.txt') : join(cfg.data, 'manifest.json'), log);
    init = matchParams(config, ck.tensors, { source: cfg.initFrom, strict: true });
  } else {
    config = resolveConfig(cfg.model, { vocabSize: manifest.vocab.size });
    if (!Object.prototype.hasOwnProperty.call(PRESETS, cfg.model)) {
      const own = resolveConfig(cfg.model).vocabSize;
      if (own !== config.vocabSize) log(`note: --config ${cfg.model} has vocab_size ${own}; using the data's vocab size ${config.vocabSize} instead`);
    }
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
  const resumeDir = cfg.resumeFrom ?? (cfg.resume ? latestCheckpoint(run, (dir, why) => log(`--resume: ${dir}: ${why}, skipped`)) : undefined);
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

  const metricsPath = join(run, 'metrics.jsonl');
  let keptLog: string[] = []; // a fresh run starts a fresh log
  if (state && existsSync(metricsPath)) {
    // Drop log lines past the checkpoint (they belong to the interrupted segment, replayed now).
    // An evaluation at the checkpoint's own step ran after that checkpoint was written, unless the
    // checkpoint's eval history has it: otherwise it is replayed too.
    const evalAtStep = state.eval_history.some((e) => (e as { step?: number }).step === state!.step);
    const m = readMetricsLog(metricsPath);
    if (m.torn) log(`${metricsPath}: dropped a partial last line at byte ${m.torn.offset} (${m.torn.bytes} bytes, an interrupted write)`);
    const kept = m.lines.filter((_, i) => {
      const r = m.records[i]!;
      return r.split === 'valid' ? r.step < state!.step || (r.step === state!.step && evalAtStep) : r.step <= state!.step;
    });
    keptLog = kept;
  }
  // the loader last before the loop's try: its worker thread is closed only by the finally below
  let loader: BatchLoader;
  try {
    loader = new BatchLoader(train, { batchSize: cfg.batchSize, seqLen, seed: cfg.seed }, state?.loader_position);
  } catch (e) {
    if (!state || !/^loader position/.test((e as Error).message)) throw e;
    const was = state.config as { data?: unknown; seed?: unknown };
    throw new Error(
      `${cfg.resumeFrom ? '--resume-from' : '--resume'}: checkpoint ${resumeDir} does not fit --data ${cfg.data} and --seed ${cfg.seed} (${(e as Error).message}); ` +
        `resume with the data and seed the run was trained with (its trainer_state.json records data ${JSON.stringify(was.data)}, seed ${JSON.stringify(was.seed)}), ` +
        `or start a new run from its weights with --init-from ${resumeDir}`,
    );
  }
  if (existsSync(metricsPath)) writeFileSync(metricsPath, keptLog.map((l) => l + '\n').join('')); // only once the resume is sure to go on
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
  const runEval = (): PretrainEval | null => {
    if (noEval) return null;
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
      if (!noEval && cfg.evalEvery > 0 && step > 0 && step % cfg.evalEvery === 0 && evalHistory.at(-1)?.step !== step) runEval();

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

      // With prefetched batches queued, `await loader.next()` resumes through microtasks only, inside the
      // worker-message callback, and a signal would wait for Node's ~1000-message drain limit; one
      // macrotask turn per step (microseconds) lets the SIGINT/SIGTERM handlers run here.
      await yieldToEventLoop();

      // once in a while: checkpoint (atomic), prune old ones
      const outOfTime = cfg.timeBudgetS > 0 && (Date.now() - t0) / 1000 >= cfg.timeBudgetS;
      const stopAfter = cfg.stopAfterStep > 0 && step >= cfg.stopAfterStep;
      // a run that ends here saves once, after its final eval (below), not also here; a stop (signal,
      // --stop-after-step) saves at its step
      const ends = !stopSignal && (outOfTime || (step === cfg.maxSteps && !stopAfter));
      if (stopSignal || (!ends && (stopAfter || (cfg.saveEvery > 0 && step % cfg.saveEvery === 0) || step === cfg.maxSteps))) save();
      if (stopSignal) { stoppedBy = 'signal'; break; }
      if (outOfTime) { stoppedBy = 'time_budget'; progress.note(`time budget of ${cfg.timeBudgetS}s reached at step ${step}`); break; }
      if (stopAfter) { stoppedBy = 'stop_after_step'; break; }
    }
    progress.done();
    if (stoppedBy !== 'signal' && stoppedBy !== 'stop_after_step') {
      finalEval = noEval ? null : evalHistory.at(-1)?.step === step ? (evalHistory.at(-1) as unknown as PretrainEval) : runEval();
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
