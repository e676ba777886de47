// `linkbert demo` (also `npm run demo`): the embedded default, end to end on WordNet + Brown.
import type { Command } from 'commander';
import { runDemo, DEMO_DEFAULTS } from '../demo.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('build a linked corpus from WordNet 3.1 + Brown, train a vocab, prepare shards, pretrain a tiny LinkBERT on CPU, evaluate and fill masks')
    .option('--out <dir>', 'demo folder', DEMO_DEFAULTS.out)
    .option('--budget <seconds>', 'wall-clock budget for the whole demo', String(DEMO_DEFAULTS.budgetS))
    .option('--steps <n>', 'pretraining steps (0 = as many as fit the budget, timed on this machine)', String(DEMO_DEFAULTS.steps))
    .option('--batch-size <n>', 'sequences per step', String(DEMO_DEFAULTS.batchSize))
    .option('--seq-len <n>', 'max_seq_len of the instances', String(DEMO_DEFAULTS.seqLen))
    .option('--vocab-size <n>', 'WordPiece vocab size', String(DEMO_DEFAULTS.vocabSize))
    .option('--seed <n>', 'seed', String(DEMO_DEFAULTS.seed))
    .option('--precision <p>', 'fp32, bf16 (mixed precision: faster where the CPU has AVX512-BF16, see `linkbert info`) or auto (bf16 there, else fp32)', DEMO_DEFAULTS.precision)
    .option('--fresh', 'rebuild corpus, vocab and shards even if an earlier demo left them')
    .action(async (opts: Record<string, string | boolean>) => {
      const n = (k: string, min: number): number => {
        const v = Number(opts[k]);
        if (!Number.isFinite(v) || v < min) throw new Error(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}: "${opts[k]}" must be a number >= ${min}`);
        return v;
      };
      const r = await runDemo({
        out: opts.out as string, budgetS: n('budget', 30), steps: n('steps', 0), batchSize: n('batchSize', 1), seqLen: n('seqLen', 16),
        vocabSize: n('vocabSize', 100), seed: n('seed', 0), reuse: !opts.fresh,
        precision: ['auto', 'fp32', 'bf16'].includes(opts.precision as string)
          ? (opts.precision as 'auto' | 'fp32' | 'bf16')
          : (() => { throw new Error(`--precision: "${opts.precision}" must be auto, fp32 or bf16`); })(), log: (s) => process.stderr.write(s + '\n'),
      });
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      const lines = [
        '',
        'linkbert demo: results on the validation split',
        `  MLM accuracy  ${pct(r.mlmAccuracy).padStart(6)}   (unigram baseline ${pct(r.unigramBaseline)})`,
        `  DRP balanced accuracy ${pct(r.drpBalancedAccuracy).padStart(6)}   (mean of per-class accuracies; chance ${pct(1 / Math.max(1, r.drpClasses))})`,
        `  DRP accuracy  ${pct(r.drpAccuracy).padStart(6)}   (majority-class baseline ${pct(r.drpChance)})`,
        '',
        'fill-mask (top 5):',
        ...r.fillMask.flatMap((f) => [`  ${f.text}`, `    ${f.top.map((t) => `${t.token} ${t.score.toFixed(3)}`).join(' | ')}`]),
        '',
        `checkpoint: ${r.checkpoint}`,
        `report:     ${r.report}`,
        `try:        npx linkbert fill-mask --checkpoint ${r.checkpoint} "a [MASK] is a kind of animal"`,
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
