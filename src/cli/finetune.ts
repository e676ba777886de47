// `linkbert finetune`: fine-tune a BERT/LinkBERT checkpoint on a downstream task and keep the best-on-dev checkpoint.
import { Command, Option } from 'commander';
import { FINETUNE_DEFAULTS, finetune, type FinetuneOptions } from '../tasks/finetune.js';
import { TASK_TYPES } from '../tasks/index.js';

export const num = (name: string) => (v: string): number => {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new Error(`--${name}: "${v}" is not a number`);
  return x;
};
export const int = (name: string, min = 0) => (v: string): number => {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < min) throw new Error(`--${name}: "${v}" is not an integer >= ${min}`);
  return x;
};
export const device = (v: string): 'cpu' | 'cuda' => {
  if (v !== 'cpu' && v !== 'cuda') throw new Error(`--device: "${v}" must be cpu or cuda`);
  return v;
};

export function register(program: Command): void {
  const d = FINETUNE_DEFAULTS;
  program
    .command('finetune')
    .description('fine-tune a checkpoint on a task (qa, seqcls, multilabel, regression, ner, mc); keeps the best-on-dev checkpoint in OUT/best')
    .addOption(new Option('--task <type>', 'task type').choices(TASK_TYPES).makeOptionMandatory())
    .requiredOption('--train <file>', 'training file (SQuAD JSON / MRQA JSONL, JSONL, CoNLL TSV)')
    .requiredOption('--dev <file>', 'dev file: model selection')
    .option('--test <file>', 'test file: scored with the best checkpoint; its predictions go to OUT/predictions.jsonl')
    .requiredOption('--checkpoint <dir>', 'pretrained checkpoint folder (ours or a Hugging Face BERT/LinkBERT folder with vocab.txt)')
    .requiredOption('--out <dir>', 'output folder: metrics.json, dev_predictions.jsonl, best/ (and predictions.jsonl with --test); a previous run there is replaced')
    .option('--epochs <n>', 'training epochs', int('epochs', 1), d.epochs)
    .option('--lr <x>', 'peak learning rate (linear warmup, then linear decay to 0)', num('lr'), d.lr)
    .option('--batch-size <n>', 'examples per optimizer step', int('batch-size', 1), d.batchSize)
    .option('--max-seq-len <n>', 'max tokens per sequence (default 384 qa, 512 mc, 128 otherwise)', int('max-seq-len', 8))
    .option('--warmup-ratio <x>', 'warmup as a fraction of all steps', num('warmup-ratio'), d.warmupRatio)
    .option('--weight-decay <x>', 'AdamW weight decay (not on biases / LayerNorm)', num('weight-decay'), d.weightDecay)
    .option('--seed <n>', 'seed for head init, data order and dropout', int('seed'), d.seed)
    .option('--eval-every <n>', 'evaluate on dev every N steps (0 = every epoch)', int('eval-every'), d.evalEvery)
    .option('--device <cpu|cuda>', 'backend', device, d.device)
    .option('--threads <n>', 'CPU threads (default: all cores)', int('threads', 1))
    .option('--doc-stride <n>', 'qa: overlap between context windows, in tokens (default scaled down when --max-seq-len is capped to the model)', int('doc-stride', 1), d.docStride)
    .option('--max-query-len <n>', 'qa: question truncated to this many tokens (default scaled down like --doc-stride)', int('max-query-len', 1), d.maxQueryLen)
    .option('--n-best <n>', 'qa: start/end candidates per window', int('n-best', 1), d.nBest)
    .option('--max-answer-len <n>', 'qa: longest answer in tokens', int('max-answer-len', 1), d.maxAnswerLen)
    .option('--relation', 'seqcls: relation extraction mode (micro P/R/F1 ignoring the negative class)')
    .option('--negative-label <name>', 'seqcls relation mode: the negative class (default: guessed, e.g. "false", "0", "NA")')
    .option('--macro', 'ner: macro-F1 over entity types as the main metric (PICO)')
    .option('--random-init', 'use only the checkpoint config and tokenizer; start the encoder from random weights')
    .option('--max-train-examples <n>', 'use only the first N training examples', int('max-train-examples', 1))
    .option('--dropout <p>', 'override hidden and attention dropout', num('dropout'))
    .option('--no-progress', 'no progress bars')
    .action(async (o: Record<string, unknown>, command: Command) => {
      const overrides: FinetuneOptions['overrides'] = {};
      if (o.relation) overrides.relation = true;
      if (typeof o.negativeLabel === 'string') {
        overrides.relation = true;
        overrides.negativeLabel = o.negativeLabel;
      }
      if (o.macro) overrides.macro = true;
      const opts: FinetuneOptions = {
        task: o.task as string, train: o.train as string, dev: o.dev as string, test: o.test as string | undefined,
        checkpoint: o.checkpoint as string, out: o.out as string,
        epochs: o.epochs as number, lr: o.lr as number, batchSize: o.batchSize as number, maxSeqLen: o.maxSeqLen as number | undefined,
        warmupRatio: o.warmupRatio as number, weightDecay: o.weightDecay as number, seed: o.seed as number, evalEvery: o.evalEvery as number,
        device: o.device as 'cpu' | 'cuda', threads: o.threads as number | undefined,
        docStride: o.docStride as number, maxQueryLen: o.maxQueryLen as number, nBest: o.nBest as number, maxAnswerLen: o.maxAnswerLen as number,
        overrides, randomInit: !!o.randomInit, maxTrainExamples: o.maxTrainExamples as number | undefined,
        dropout: o.dropout as number | undefined, progress: o.progress !== false,
        // flags typed on the command line, as opposed to defaults (attribute names → flag names)
        explicit: command.options
          .filter((opt) => command.getOptionValueSource(opt.attributeName()) === 'cli')
          .map((opt) => opt.long!.replace(/^--(no-)?/, '')),
      };
      const r = await finetune(opts);
      const summary = {
        out: r.out, best_checkpoint: r.bestCheckpoint, best: r.best,
        dev: { main: r.dev.main, metrics: r.dev.metrics },
        ...(r.test ? { test: { main: r.test.main, metrics: r.test.metrics } } : {}),
        steps: r.steps, train_seconds: Math.round(r.trainSeconds * 10) / 10,
      };
      process.stdout.write(JSON.stringify(summary) + '\n');
    });
}
