// `linkbert pretrain`: LinkBERT pretraining (MLM + DRP) on prepared shards.
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { pretrain, PRETRAIN_DEFAULTS, type PretrainConfig } from '../train/train.js';

const num = (name: string) => (v: string): number => {
  const x = Number(v);
  if (!Number.isFinite(x)) throw new Error(`--${name}: "${v}" is not a number`);
  return x;
};
const int = (name: string) => (v: string): number => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new Error(`--${name}: "${v}" is not a non-negative integer`);
  return x;
};
const betas = (v: string): [number, number] => {
  const p = v.split(',').map(Number);
  if (p.length !== 2 || p.some((x) => !(x >= 0 && x < 1))) throw new Error(`--adam-betas: "${v}" must be two numbers in [0,1), e.g. 0.9,0.98`);
  return [p[0]!, p[1]!];
};

// flag name -> config key (flags win over --config-file, which wins over defaults)
const FLAGS: [string, keyof PretrainConfig, string, ((v: string) => unknown)?][] = [
  ['config', 'model', 'model size preset (tiny|mini|small|medium|base|large) or a config.json path'],
  ['device', 'device', 'cpu or cuda'],
  ['precision', 'precision', 'fp32 or bf16 (bf16 activations and weight copies, fp32 master weights; on CPU the GEMMs use AVX512-BF16 where the CPU has it)'],
  ['batch-size', 'batchSize', 'sequences per micro-batch', int('batch-size')],
  ['grad-accum', 'gradAccum', 'micro-batches per optimizer step', int('grad-accum')],
  ['lr', 'lr', 'peak learning rate', num('lr')],
  ['warmup-steps', 'warmupSteps', 'linear warmup steps (overrides --warmup-ratio)', int('warmup-steps')],
  ['warmup-ratio', 'warmupRatio', 'warmup as a fraction of --max-steps', num('warmup-ratio')],
  ['max-steps', 'maxSteps', 'optimizer steps', int('max-steps')],
  ['lr-schedule', 'schedule', 'linear (the paper), cosine or constant'],
  ['weight-decay', 'weightDecay', 'AdamW decoupled weight decay', num('weight-decay')],
  ['adam-betas', 'adamBetas', 'AdamW betas "b1,b2"', betas],
  ['adam-eps', 'adamEps', 'AdamW epsilon', num('adam-eps')],
  ['max-grad-norm', 'maxGradNorm', 'clip the global gradient norm (0 = off)', num('max-grad-norm')],
  ['seed', 'seed', 'seed for init, data order and dropout', int('seed')],
  ['eval-every', 'evalEvery', 'evaluate every N steps (0 = only at the end)', int('eval-every')],
  ['eval-batches', 'evalBatches', 'validation batches per evaluation', int('eval-batches')],
  ['save-every', 'saveEvery', 'checkpoint every N steps', int('save-every')],
  ['save-total-limit', 'saveTotalLimit', 'keep the last K checkpoints (0 = all)', int('save-total-limit')],
  ['log-every', 'logEvery', 'write metrics.jsonl every N steps', int('log-every')],
  ['init-from', 'initFrom', 'continue from a Hugging Face BERT/LinkBERT checkpoint folder'],
  ['resume-from', 'resumeFrom', 'resume from this run checkpoint folder'],
  ['max-non-finite', 'maxNonFinite', 'stop after N consecutive non-finite steps', int('max-non-finite')],
  ['time-budget', 'timeBudgetS', 'stop and save after this many seconds (0 = none)', num('time-budget')],
  ['hidden-dropout', 'hiddenDropout', 'override hidden_dropout_prob', num('hidden-dropout')],
  ['attention-dropout', 'attentionDropout', 'override attention_probs_dropout_prob', num('attention-dropout')],
  ['threads', 'threads', 'CPU threads (default: all cores)', int('threads')],
  ['stop-after-step', 'stopAfterStep', 'stop (without the final eval) after this step, keeping the checkpoint', int('stop-after-step')],
];

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function register(program: Command): void {
  const cmd = program
    .command('pretrain')
    .description('pretrain a LinkBERT encoder (MLM + document relation prediction) on shards made by `linkbert prepare`')
    .requiredOption('--data <dir>', 'prepared data folder (manifest.json, train/, valid/)')
    .requiredOption('--out <dir>', 'run folder: config.json, metrics.jsonl, checkpoint-<step>/')
    .option('--config-file <json>', 'JSON file of defaults (keys as in RUN/config.json "train"); flags override it')
    .option('--resume', 'resume from the latest checkpoint in --out')
    .option('--no-progress', 'no progress bar');
  for (const [flag, key, help, parse] of FLAGS) {
    const o = new Option(`--${flag} <value>`, `${help} (default: ${JSON.stringify(PRETRAIN_DEFAULTS[key as keyof typeof PRETRAIN_DEFAULTS])})`);
    if (parse) o.argParser(parse);
    cmd.addOption(o);
  }
  cmd.action(async (opts: Record<string, unknown>) => {
    const cfg = resolvePretrainConfig(opts, cmd);
    const r = await pretrain(cfg);
    const e = r.finalEval;
    process.stdout.write(
      JSON.stringify({ run: r.run, steps: r.steps, stopped_by: r.stoppedBy, checkpoint: r.lastCheckpoint, tokens_per_s: Math.round(r.tokensPerS), eval: e }) + '\n',
    );
  });
}

export function resolvePretrainConfig(opts: Record<string, unknown>, cmd: Command): PretrainConfig {
  let fileCfg: Partial<PretrainConfig> = {};
  if (typeof opts.configFile === 'string') {
    try {
      fileCfg = JSON.parse(readFileSync(opts.configFile, 'utf8')) as Partial<PretrainConfig>;
    } catch (e) {
      throw new Error(`--config-file ${opts.configFile}: ${(e as Error).message}`);
    }
    const known = new Set([...Object.keys(PRETRAIN_DEFAULTS), 'data', 'out']);
    // RUN/config.json's "train" block also records values derived at start: accepted and recomputed
    const derived = new Set(['model_config', 'params', 'seq_len', 'max_predictions']);
    if (fileCfg && typeof fileCfg === 'object' && 'train' in fileCfg) fileCfg = (fileCfg as { train: Partial<PretrainConfig> }).train;
    for (const k of Object.keys(fileCfg)) {
      if (derived.has(k)) delete (fileCfg as Record<string, unknown>)[k];
      else if (!known.has(k)) throw new Error(`--config-file ${opts.configFile}: unknown field "${k}"`);
    }
  }
  const cfg: PretrainConfig = { ...PRETRAIN_DEFAULTS, ...fileCfg, data: opts.data as string, out: opts.out as string };
  for (const [flag, key] of FLAGS) {
    const k = camel(flag);
    if (cmd.getOptionValueSource(k) === 'cli') (cfg as unknown as Record<string, unknown>)[key] = opts[k];
  }
  if (opts.resume) cfg.resume = true;
  if (opts.progress === false) cfg.progress = false;
  if (cfg.device !== 'cpu' && cfg.device !== 'cuda') throw new Error(`--device: "${cfg.device}" must be cpu or cuda`);
  if (cfg.precision !== 'fp32' && cfg.precision !== 'bf16') throw new Error(`--precision: "${cfg.precision}" must be fp32 or bf16`);
  if (!['linear', 'cosine', 'constant'].includes(cfg.schedule)) throw new Error(`--lr-schedule: "${cfg.schedule}" must be linear, cosine or constant`);
  if (cfg.batchSize < 1) throw new Error('--batch-size must be >= 1');
  if (cfg.gradAccum < 1) throw new Error('--grad-accum must be >= 1');
  if (cfg.logEvery < 1) throw new Error('--log-every must be >= 1');
  return cfg;
}
