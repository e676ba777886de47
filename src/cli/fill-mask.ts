// `linkbert fill-mask`: top-k predictions for each [MASK], like Hugging Face's fill-mask pipeline.
import type { Command } from 'commander';
import { FillMasker } from '../model/fill-mask.js';
import { Ops, defaultBackend } from '../ops.js';

export function register(program: Command): void {
  program
    .command('fill-mask')
    .description('predict the tokens behind [MASK] with a checkpoint (its own vocab and casing)')
    .requiredOption('--checkpoint <dir>', 'a checkpoint folder (ours or a Hugging Face BERT with its MLM head)')
    .option('--top-k <n>', 'candidates per mask', '5')
    .option('--device <device>', 'cpu or cuda', 'cpu')
    .option('--json', 'print JSON (a list per mask when there are several)')
    .argument('<text>', 'text containing [MASK]')
    .action((text: string, opts: { checkpoint: string; topK: string; device: string; json?: boolean }) => {
      const k = Number(opts.topK);
      if (!Number.isInteger(k) || k < 1) throw new Error(`--top-k: "${opts.topK}" must be a positive integer`);
      const f = new FillMasker(opts.checkpoint, new Ops(defaultBackend(opts.device)));
      try {
        const res = f.fill(text, k);
        if (opts.json) {
          process.stdout.write(JSON.stringify(res.length === 1 ? res[0] : res, null, 2) + '\n');
          return;
        }
        res.forEach((cands, m) => {
          if (res.length > 1) process.stdout.write(`[MASK] #${m + 1}\n`);
          for (const c of cands) process.stdout.write(`${c.score.toFixed(4)}  ${c.token_str.padEnd(16)} ${c.sequence}\n`);
        });
      } finally {
        f.dispose();
      }
    });
}
