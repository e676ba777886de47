// `linkbert bench ner`: fine-tune on NCBI-disease (BLURB NER, CoNLL TSV) twice: from a pretrained checkpoint and
// from random init with the same config and tokenizer, and report dev/test entity-level F1 (seqeval micro) and
// time for both as JSON. A small budget (--max-train-examples, --epochs 1, a tiny model, CPU) keeps it quick;
// the numbers then measure how much the pretrained encoder helps, not the state of the art.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { Option, type Command } from 'commander';
import { FINETUNE_DEFAULTS, finetune, type FinetuneOptions, type FinetuneResult } from '../tasks/finetune.js';
import { sharedData } from './prepare.js';
import { threads as threadsFlag } from './flags.js';

interface Opts {
  checkpoint: string;
  data: string;
  epochs: string;
  lr: string;
  batchSize: string;
  maxSeqLen: string;
  maxTrainExamples?: string;
  warmupRatio: string;
  seed: string;
  device: string;
  threads?: string;
  out?: string;
  keep?: boolean;
  json?: boolean;
  progress: boolean;
}

function posInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${name}: "${v}" is not a positive integer`);
  return x;
}
function nonNegInt(name: string, v: string): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new Error(`--${name}: "${v}" is not a non-negative integer`);
  return x;
}
function posNum(name: string, v: string): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new Error(`--${name}: "${v}" is not a non-negative number`);
  return x;
}

function summarise(r: FinetuneResult) {
  const m = (x: Record<string, number> | undefined, k: string) => (x && x[k] !== undefined ? Math.round(x[k]! * 10000) / 10000 : null);
  return {
    dev_f1: m(r.dev.metrics, 'f1'),
    dev_precision: m(r.dev.metrics, 'precision'),
    dev_recall: m(r.dev.metrics, 'recall'),
    test_f1: m(r.test?.metrics, 'f1'),
    test_precision: m(r.test?.metrics, 'precision'),
    test_recall: m(r.test?.metrics, 'recall'),
    best_step: r.best.step,
    steps: r.steps,
    loss_curve: r.lossCurve.map((x) => Math.round(x * 10000) / 10000),
    train_s: Math.round(r.trainSeconds * 10) / 10,
    total_s: Math.round(r.totalSeconds * 10) / 10,
  };
}

export function register(bench: Command): void {
  bench
    .command('ner')
    .description('NCBI-disease NER fine-tuning: pretrained checkpoint vs random init (dev/test entity F1, time)')
    .requiredOption('--checkpoint <dir>', 'pretrained checkpoint folder (config.json, weights, vocab.txt), e.g. the demo\'s')
    // the help shows the default as the other benches do (relative to the clone), not this clone's absolute path
    .addOption(new Option('--data <dir>', 'folder with train.tsv, devel.tsv (or dev.tsv), test.tsv').default(join(sharedData, 'ner/ncbi-disease'), '../shared/data/ner/ncbi-disease'))
    .option('--epochs <n>', 'epochs', '1')
    .option('--lr <x>', 'peak learning rate', '5e-4')
    .option('--batch-size <n>', 'batch size', '16')
    .option('--max-seq-len <n>', 'max tokens per sentence', '128')
    .option('--max-train-examples <n>', 'use only the first N training sentences')
    .option('--warmup-ratio <x>', 'warmup fraction', '0.1')
    .option('--seed <n>', 'seed', '42')
    .option('--device <d>', 'cpu or cuda', 'cpu')
    .option('--threads <n>', 'CPU threads')
    .option('--out <dir>', 'keep the two runs here (default: a temporary folder, removed afterwards)')
    .option('--json', 'print JSON only (progress still goes to stderr)')
    .option('--no-progress', 'no progress bars')
    .action(async (o: Opts) => {
      // flags first: a bad number is reported as such even when the data folder is missing too
      if (o.device !== 'cpu' && o.device !== 'cuda') throw new Error(`--device: "${o.device}" must be cpu or cuda`);
      const nums = {
        epochs: posInt('epochs', o.epochs)!, lr: posNum('lr', o.lr), batchSize: posInt('batch-size', o.batchSize)!,
        maxSeqLen: posInt('max-seq-len', o.maxSeqLen), maxTrainExamples: posInt('max-train-examples', o.maxTrainExamples),
        warmupRatio: posNum('warmup-ratio', o.warmupRatio), seed: nonNegInt('seed', o.seed),
        threads: o.threads !== undefined ? threadsFlag(o.threads) : undefined,
      };
      const data = resolve(o.data);
      const train = join(data, 'train.tsv');
      const dev = [join(data, 'devel.tsv'), join(data, 'dev.tsv')].find(existsSync);
      const test = join(data, 'test.tsv');
      if (!existsSync(train) || !dev || !existsSync(test)) throw new Error(`${data}: expected train.tsv, devel.tsv (or dev.tsv) and test.tsv`);
      const out = o.out ? resolve(o.out) : mkdtempSync(join(tmpdir(), 'linkbert-bench-ner-'));
      const log = (s: string) => process.stderr.write(s + '\n');
      const base: Omit<FinetuneOptions, 'out' | 'randomInit'> = {
        ...FINETUNE_DEFAULTS,
        task: 'ner', train, dev, test, checkpoint: resolve(o.checkpoint),
        ...nums, device: o.device as 'cpu' | 'cuda', evalEvery: 0, progress: o.progress,
      };
      try {
        log(`== pretrained: ${base.checkpoint}`);
        const pre = await finetune({ ...base, out: join(out, 'pretrained') }, log);
        log('== random init (same config and tokenizer)');
        const rnd = await finetune({ ...base, out: join(out, 'random'), randomInit: true }, log);
        const p = summarise(pre), r = summarise(rnd);
        const result = {
          bench: 'ner',
          data,
          checkpoint: base.checkpoint,
          settings: {
            epochs: base.epochs, lr: base.lr, batch_size: base.batchSize, max_seq_len: base.maxSeqLen ?? null,
            max_train_examples: base.maxTrainExamples ?? null, device: base.device, seed: base.seed,
          },
          pretrained: p,
          random_init: r,
          delta_dev_f1: p.dev_f1 !== null && r.dev_f1 !== null ? Math.round((p.dev_f1 - r.dev_f1) * 10000) / 10000 : null,
          delta_test_f1: p.test_f1 !== null && r.test_f1 !== null ? Math.round((p.test_f1 - r.test_f1) * 10000) / 10000 : null,
          ...(o.out ? { out } : {}),
        };
        if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
        else process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      } finally {
        if (!o.out) rmSync(out, { recursive: true, force: true });
      }
    });
}
