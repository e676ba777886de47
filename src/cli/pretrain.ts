// `linkbert pretrain`: LinkBERT pretraining (MLM + DRP) on prepared shards.
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { pretrain, validatePretrainConfig, PRETRAIN_CHECKS, PRETRAIN_DEFAULTS, type PretrainConfig } from '../train/train.js';

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
  ['warmup-steps', 'warmupSteps', 'linear warmup steps (default: from --warmup-ratio; overrides it)', int('warmup-steps')],
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
  ['hidden-dropout', 'hiddenDropout', "override hidden_dropout_prob (default: the model config's)", num('hidden-dropout')],
  ['attention-dropout', 'attentionDropout', "override attention_probs_dropout_prob (default: the model config's)", num('attention-dropout')],
  ['threads', 'threads', 'CPU threads (default: all cores)', int('threads')],
  ['stop-after-step', 'stopAfterStep', 'stop after this step, saving a checkpoint there (no final eval)', int('stop-after-step')],
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
    // a null default means "none" or "derived", which the help text says in words where it matters
    const def = PRETRAIN_DEFAULTS[key as keyof typeof PRETRAIN_DEFAULTS];
    const o = new Option(`--${flag} <value>`, def === null || help.includes('(default:') ? help : `${help} (default: ${JSON.stringify(def)})`);
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

// Run control in a --config-file is ignored (with a note), not rejected: a RUN/config.json, which the help
// invites as a --config-file, always records these keys, and carrying them over would make a new run
// resume or stop early unasked. Say it on the command line instead.
const RUN_CONTROL: (keyof PretrainConfig)[] = ['resume', 'resumeFrom', 'stopAfterStep'];

export function resolvePretrainConfig(
  opts: Record<string, unknown>,
  cmd: Command,
  log: (s: string) => void = (s) => process.stderr.write(s + '\n'),
): PretrainConfig {
  let fileCfg: Partial<PretrainConfig> = {};
  const file = typeof opts.configFile === 'string' ? opts.configFile : undefined;
  if (file) {
    try {
      fileCfg = JSON.parse(readFileSync(file, 'utf8')) as Partial<PretrainConfig>;
    } catch (e) {
      throw new Error(`--config-file ${file}: ${(e as Error).message}`);
    }
    const isObject = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v);
    if (!isObject(fileCfg)) throw new Error(`--config-file ${file}: expected a JSON object`);
    const known = new Set([...Object.keys(PRETRAIN_DEFAULTS), 'data', 'out']);
    // RUN/config.json's "train" block also records values derived at start: accepted and recomputed
    const derived = new Set(['model_config', 'params', 'seq_len', 'max_predictions']);
    if ('train' in fileCfg) fileCfg = (fileCfg as { train: Partial<PretrainConfig> }).train;
    if (!isObject(fileCfg)) throw new Error(`--config-file ${file}: "train": expected a JSON object`);
    for (const k of Object.keys(fileCfg)) {
      if (derived.has(k)) delete (fileCfg as Record<string, unknown>)[k];
      else if (!known.has(k)) throw new Error(`--config-file ${file}: unknown field "${k}"`);
    }
    for (const k of RUN_CONTROL) {
      if (!(k in fileCfg)) continue;
      const v = fileCfg[k];
      if (v !== PRETRAIN_DEFAULTS[k as keyof typeof PRETRAIN_DEFAULTS])
        log(`note: --config-file ${file}: ignoring "${k}": ${JSON.stringify(v)} (run control is taken from the command line only)`);
      delete fileCfg[k];
    }
  }
  const cfg: PretrainConfig = { ...PRETRAIN_DEFAULTS, ...fileCfg, data: opts.data as string, out: opts.out as string };
  const fromCli = new Set<string>();
  for (const [flag, key] of FLAGS) {
    const k = camel(flag);
    if (cmd.getOptionValueSource(k) === 'cli') {
      (cfg as unknown as Record<string, unknown>)[key] = opts[k];
      fromCli.add(key);
    }
  }
  if (opts.resume) cfg.resume = true;
  if (opts.progress === false) cfg.progress = false;
  // a bad value from the file names the file and key; one from a flag or a default names the flag
  validatePretrainConfig(cfg, (k) => (file && k in fileCfg && !fromCli.has(k) ? `--config-file ${file}: "${k}"` : `--${PRETRAIN_CHECKS[k][0]}`));
  return cfg;
}
