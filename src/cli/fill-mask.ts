// `linkbert fill-mask`: top-k predictions for each [MASK], like Hugging Face's fill-mask pipeline.
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { FillMasker } from '../model/fill-mask.js';
import { Ops, defaultBackend } from '../ops.js';

// as finetune's --threads, with the addon's upper bound, so that its setNumThreads error never shows
const threads = (v: string): number => {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < 1 || x > 1024) throw new Error(`--threads: "${v}" is not an integer in [1, 1024]`);
  return x;
};

// the loader takes a folder or one weights file in it; any other file (vocab.txt, config.json) used to be
// parsed as a PyTorch zip and fail with a zip-signature error
const WEIGHTS_FILE = /\.(safetensors|bin)(\.index\.json)?$/;

export function checkCheckpointArg(path: string): void {
  if (existsSync(path) && !statSync(path).isDirectory() && !WEIGHTS_FILE.test(path))
    throw new Error(`--checkpoint ${path}: not a checkpoint folder (expected config.json and model.safetensors or pytorch_model.bin)`);
}

export function register(program: Command): void {
  program
    .command('fill-mask')
    .description('predict the tokens behind [MASK] with a checkpoint (its own vocab and casing)')
    .requiredOption('--checkpoint <dir>', 'a checkpoint folder (ours or a Hugging Face BERT with its MLM head)')
    .option('--top-k <n>', 'candidates per mask', '5')
    .option('--device <device>', 'cpu, cuda or ref (the slow reference kernels)', 'cpu')
    .option('--threads <n>', 'CPU threads (default: all cores)', threads)
    .option('--json', 'print JSON (a list per mask when there are several)')
    .argument('<text>', 'text containing [MASK]')
    .action((text: string, opts: { checkpoint: string; topK: string; device: string; threads?: number; json?: boolean }) => {
      const k = Number(opts.topK);
      if (!Number.isInteger(k) || k < 1) throw new Error(`--top-k: "${opts.topK}" must be a positive integer`);
      if (!['cpu', 'cuda', 'ref'].includes(opts.device)) throw new Error(`--device: "${opts.device}" must be cpu, cuda or ref`);
      checkCheckpointArg(opts.checkpoint);
      const ops = new Ops(defaultBackend(opts.device));
      if (opts.threads) ops.native.setNumThreads(opts.threads);
      const f = new FillMasker(opts.checkpoint, ops);
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
