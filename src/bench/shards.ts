// `linkbert bench shards`: shard read throughput — sequential and random record decoding (with CRC
// checks), batch assembly, and the prefetching BatchLoader. Target: ≥ 200k instances/s per core.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { prepare } from '../data/prepare.js';
import { ShardDataset } from '../data/shards/reader.js';
import { BatchLoader, iterateBatches } from '../data/batch.js';
import { Rng } from '../data/masking.js';
import { posInt, posNum } from './flags.js';
import { benchVocab, defaultInputs } from './prepare.js';

const TARGET = 200_000;

interface Opts {
  json?: boolean;
  dir?: string;
  input?: string[];
  vocab?: string;
  dupeFactor: string;
  seconds: string;
  batchSize: string;
}

// Rates per wall second and per CPU second of this process: on a busy shared machine the wall rate
// mostly measures the neighbours, while the CPU-time rate is the per-core throughput the target is about.
function timeLoop(seconds: number, body: () => number): { perS: number; perCpuS: number; n: number; s: number } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) n += body();
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { perS: Math.round(n / s), perCpuS: Math.round(n / ((c.user + c.system) / 1e6)), n, s };
}

export function register(bench: Command): void {
  bench
    .command('shards')
    .description('shard read throughput (instances/s): sequential, random, batches, prefetching loader')
    .option('--json', 'print JSON')
    .option('--dir <dir>', 'an existing prepared directory (default: prepare one from ../shared/data)')
    .option('--input <paths...>', 'corpora to prepare (default: shared wiki, pmc and html)')
    .option('--vocab <file>', 'vocab.txt (default: train one on the inputs)')
    .option('--dupe-factor <n>', 'dupe factor when preparing', '5')
    .option('--seconds <s>', 'time per measurement', '2')
    .option('--batch-size <n>', 'batch size for the loader measurements', '32')
    .action(async (o: Opts) => {
      // checked before preparing shards (minutes): NaN here used to time nothing and print zeros
      const dupeFactor = posInt('dupe-factor', o.dupeFactor);
      const secs = posNum('seconds', o.seconds);
      const B = posInt('batch-size', o.batchSize);
      const log = (m: string) => {
        if (!o.json) process.stderr.write(m + '\n');
      };
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-bench-shards-'));
      try {
        let dir = o.dir;
        if (!dir) {
          const inputs = o.input ?? defaultInputs();
          const vocab = o.vocab ?? (await benchVocab(inputs, tmp, 8000, log));
          dir = path.join(tmp, 'out');
          log('preparing shards…');
          await prepare({ inputs, vocab, out: dir, maxSeqLen: 128, dupeFactor, workers: Math.max(1, os.availableParallelism() - 1) });
        }
        const ds = ShardDataset.open(dir, 'train');
        ds.cacheShards = 1 << 20; // measure decoding, not disk reads
        for (let i = 0; i < ds.size; i++) ds.get(i); // warm: load every shard
        let cur = 0;
        const seq = timeLoop(secs, () => {
          for (let k = 0; k < 1000; k++) {
            ds.get(cur);
            cur = cur + 1 === ds.size ? 0 : cur + 1;
          }
          return 1000;
        });
        const rng = new Rng(1);
        const rand = timeLoop(secs, () => {
          for (let k = 0; k < 1000; k++) ds.get(rng.int(ds.size));
          return 1000;
        });
        ds.verify = false;
        const noCrc = timeLoop(secs, () => {
          for (let k = 0; k < 1000; k++) {
            ds.get(cur);
            cur = cur + 1 === ds.size ? 0 : cur + 1;
          }
          return 1000;
        });
        ds.verify = true;
        const batches = (mask: 'static' | 'dynamic') =>
          timeLoop(secs, () => {
            let n = 0;
            for (const b of iterateBatches(ds, { batchSize: B, seed: 1, mask })) n += b.batchSize;
            return n;
          });
        const staticB = batches('static');
        const dynamicB = batches('dynamic');
        const loader = new BatchLoader(ds, { batchSize: B, seed: 1, prefetch: 8 });
        await loader.next();
        const t0 = performance.now();
        let n = 0;
        while (performance.now() - t0 < secs * 1000) n += (await loader.next()).batchSize;
        const ls = (performance.now() - t0) / 1000;
        const loaderRes = { perS: Math.round(n / ls), waitMs: Number(loader.waitMs().toFixed(1)) };
        await loader.close();
        ds.close();
        const bytes = ds.manifest.splits.train.shards.reduce((a, s) => a + s.bytes, 0);
        const out = {
          bench: 'shards',
          dir: o.dir ?? '(temporary, from shared corpora)',
          instances: ds.size,
          shard_bytes: bytes,
          mean_tokens: Number((ds.manifest.splits.train.tokens / Math.max(1, ds.size)).toFixed(1)),
          sequential_instances_per_s: seq.perS,
          sequential_instances_per_cpu_s: seq.perCpuS,
          random_instances_per_s: rand.perS,
          random_instances_per_cpu_s: rand.perCpuS,
          sequential_no_crc_instances_per_s: noCrc.perS,
          sequential_no_crc_instances_per_cpu_s: noCrc.perCpuS,
          batches_static_instances_per_s: staticB.perS,
          batches_static_instances_per_cpu_s: staticB.perCpuS,
          batches_dynamic_mask_instances_per_s: dynamicB.perS,
          batches_dynamic_mask_instances_per_cpu_s: dynamicB.perCpuS,
          loader_prefetch_instances_per_s: loaderRes.perS,
          loader_wait_ms: loaderRes.waitMs,
          target_instances_per_s_per_core: TARGET,
          meets_target: seq.perCpuS >= TARGET,
          load_average_1m: Number(os.loadavg()[0].toFixed(2)),
          machine: { cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version },
        };
        if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
        else
          process.stdout.write(
            [
              `shards: ${out.instances} instances, ${(bytes / 1e6).toFixed(1)} MB, ${out.mean_tokens} tokens/instance`,
              `sequential get (CRC): ${seq.perS}/s (${seq.perCpuS}/CPU-s)   random get: ${rand.perS}/s (${rand.perCpuS}/CPU-s)   without CRC: ${noCrc.perS}/s (${noCrc.perCpuS}/CPU-s)   target ${TARGET}/CPU-s`,
              `batches (static masks): ${staticB.perS}/s (${staticB.perCpuS}/CPU-s)   batches (dynamic masks): ${dynamicB.perS}/s (${dynamicB.perCpuS}/CPU-s)   prefetching loader: ${loaderRes.perS}/s (waited ${loaderRes.waitMs} ms)`,
            ].join('\n') + '\n',
          );
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
}
