// `linkbert evaluate`: score a fine-tuned task checkpoint (from `linkbert finetune`) on a data file.
import { Command, Option } from 'commander';
import { evaluateCheckpoint, FINETUNE_DEFAULTS } from '../tasks/finetune.js';
import { TASK_TYPES } from '../tasks/index.js';
import { device, int } from './finetune.js';

export function register(program: Command): void {
  program
    .command('evaluate')
    .description('score a fine-tuned checkpoint (folder with task_config.json + task_head.safetensors) on a file; prints metrics JSON')
    .addOption(new Option('--task <type>', 'task type (checked against the checkpoint)').choices(TASK_TYPES))
    .requiredOption('--data <file>', 'data file in the task format (labels must be in the checkpoint label set)')
    .requiredOption('--checkpoint <dir>', 'fine-tuned checkpoint folder, e.g. OUT/best from `linkbert finetune`')
    .option('--batch-size <n>', 'examples per forward pass', int('batch-size', 1), FINETUNE_DEFAULTS.batchSize)
    .option('--device <cpu|cuda>', 'backend', device, FINETUNE_DEFAULTS.device)
    .option('--threads <n>', 'CPU threads (default: all cores)', int('threads', 1))
    .option('--n-best <n>', 'qa: start/end candidates per window', int('n-best', 1), FINETUNE_DEFAULTS.nBest)
    .option('--max-answer-len <n>', 'qa: longest answer in tokens', int('max-answer-len', 1), FINETUNE_DEFAULTS.maxAnswerLen)
    .option('--predictions <file>', 'also write one prediction per example (JSONL, input order)')
    .option('--report', 'print the per-type report (ner) to stderr')
    .option('--no-progress', 'no progress bar')
    .action(async (o: Record<string, unknown>) => {
      const r = await evaluateCheckpoint({
        task: o.task as string | undefined, data: o.data as string, checkpoint: o.checkpoint as string,
        device: o.device as 'cpu' | 'cuda', batchSize: o.batchSize as number, threads: o.threads as number | undefined,
        nBest: o.nBest as number, maxAnswerLen: o.maxAnswerLen as number, predictions: o.predictions as string | undefined,
        progress: o.progress !== false,
      });
      if (o.report && r.report) process.stderr.write(r.report + '\n');
      const { report: _report, ...rest } = r;
      void _report;
      process.stdout.write(JSON.stringify(rest) + '\n');
    });
}
