// `linkbert bench train`: end-to-end pretraining throughput (data loading included) and the share of
// step time spent waiting on data, from a short real run on prepared shards.
import type { Command } from 'commander';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pretrain, readTrainMetrics, PRETRAIN_DEFAULTS } from '../train/train.js';
import { repoRoot } from '../native.js';
import { posInt } from './flags.js';

export function register(bench: Command): void {
  bench
    .command('train')
    .description('end-to-end training throughput (tokens/s, data loading included) and the share of time waiting on data')
    .option('--data <dir>', 'prepared shards (default: the demo data, runs/demo/data)')
    .option('--config <name>', 'model preset or config.json', 'mini')
    .option('--batch-size <n>', 'batch size', '32')
    .option('--steps <n>', 'timed steps (after 2 warm-up steps)', '20')
    .option('--device <d>', 'cpu or cuda', 'cpu')
    .option('--json', 'print JSON')
    .action(async (opts: { data?: string; config: string; batchSize: string; steps: string; device: string; json?: boolean }) => {
      // flags first: a bad number is reported as such even when the shards are missing too
      const steps = posInt('steps', opts.steps), batch = posInt('batch-size', opts.batchSize);
      if (opts.device !== 'cpu' && opts.device !== 'cuda') throw new Error(`--device: "${opts.device}" must be cpu or cuda`);
      const data = resolve(opts.data ?? join(repoRoot, 'runs', 'demo', 'data'));
      if (!existsSync(join(data, 'manifest.json')))
        throw new Error(`${data}: no prepared shards (manifest.json); pass --data DIR or run \`npm run demo\` first`);
      const out = mkdtempSync(join(tmpdir(), 'linkbert-bench-train-'));
      try {
        const t0 = Date.now();
        await pretrain({
          ...PRETRAIN_DEFAULTS, data, out, model: opts.config, device: opts.device, batchSize: batch, maxSteps: steps + 2, evalEvery: 0,
          saveEvery: 0, logEvery: 1, progress: false, warmupSteps: 1,
        }, () => {});
        const wall = (Date.now() - t0) / 1000;
        const recs = readTrainMetrics(out).filter((r) => r.step > 2);
        // one record per step: aggregate as total tokens / total time between the first and last timed step
        let tok = 0, time = 0, wait = 0;
        for (let i = 1; i < recs.length; i++) {
          const dt = recs[i]!.elapsed_s - recs[i - 1]!.elapsed_s;
          tok += recs[i]!.tokens_seen - recs[i - 1]!.tokens_seen;
          time += dt;
          wait += recs[i]!.data_wait_ms / 1000;
        }
        const res = {
          bench: 'train', config: opts.config, device: opts.device, batch_size: batch, steps: recs.length - 1, tokens_per_s: tok / time,
          data_wait_share: wait / time, wall_s: wall, data,
        };
        if (opts.json) process.stdout.write(JSON.stringify(res) + '\n');
        else process.stdout.write(`train ${opts.config} B=${batch} on ${opts.device}: ${Math.round(res.tokens_per_s)} tokens/s end to end, ${(100 * res.data_wait_share).toFixed(1)}% of step time waiting on data\n`);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
}
