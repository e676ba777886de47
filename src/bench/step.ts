// `linkbert bench step`: one full pretraining step (forward, backward, grad-norm + clip, AdamW) of a
// LinkBERT model on random data, median over repeats. With --peer torch the same step is timed in
// PyTorch (scripts/bench_step_torch.py, Debian's python3-torch) in the same run and the ratio printed.
import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveConfig } from '../model/config.js';
import { BertModel } from '../model/bert.js';
import { Ops, defaultBackend } from '../ops.js';
import { AdamW } from '../train/optim.js';
import { Rng } from '../data/masking.js';
import { repoRoot } from '../native.js';
import { OpProfiler, byOp, type OpProfileRow } from './op-profile.js';
import { posInt, nonNegInt } from './flags.js';

// the backends a step runs on (defaultBackend's names): the help and the --device error list the same
const STEP_DEVICES = ['cpu', 'cuda', 'ref'];

export interface StepBenchOptions { config: string; seqLen: number; batchSize: number; device: string; vocabSize: number; repeats: number; warmup: number; predictions: number; precision?: 'fp32' | 'bf16'; profile?: boolean }

export interface StepBenchResult { bench: 'step'; config: string; device: string; precision: 'fp32' | 'bf16'; seq_len: number; batch_size: number; vocab_size: number; max_predictions: number; median_ms: number; min_ms: number; tokens_per_s: number; repeats: number;
  /** the model's arena: parameters, gradients, AdamW moments, bf16 weight copies, activations (bytes) */
  arena_bytes: number;
  /** --profile: time per op and shape per step, and the step time the ops do not account for */
  profile?: { ops: OpProfileRow[]; by_op: OpProfileRow[]; unattributed_ms: number } }

export async function benchStep(o: StepBenchOptions): Promise<StepBenchResult> {
  const config = resolveConfig(o.config, { vocabSize: o.vocabSize, hiddenDropout: 0.1, attentionDropout: 0.1 });
  const base = new Ops(defaultBackend(o.device));
  const profiler = o.profile ? new OpProfiler(base.native, base.device) : null;
  const ops = profiler ? new Ops(base.backend, profiler.native) : base;
  const B = o.batchSize, T = o.seqLen, P = o.predictions;
  const precision = o.precision ?? 'fp32';
  const model = new BertModel(config, ops, { batchSize: B, seqLen: T, maxPredictions: P }, { precision });
  const optim = new AdamW(ops, model.groups, { beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: 0.01, maxGradNorm: 1 });
  try {
    model.initParams(1);
    const rng = new Rng(7);
    const ids = Int32Array.from({ length: B * T }, () => 5 + rng.int(o.vocabSize - 5));
    const types = Int32Array.from({ length: B * T }, (_, i) => ((i % T) < T / 2 ? 0 : 1));
    const mask = new Int32Array(B * T).fill(1);
    const mpos = Int32Array.from({ length: B * P }, (_, i) => Math.floor(i / P) * T + 1 + ((i % P) * 5) % (T - 1));
    const mlab = Int32Array.from({ length: B * P }, () => 5 + rng.int(o.vocabSize - 5));
    const drp = Int32Array.from({ length: B }, () => rng.int(3));
    model.setInputs({ batchSize: B, inputIds: ids, tokenTypeIds: types, attentionMask: mask, maskedPositions: mpos, maskedLabels: mlab, drpLabels: drp });
    const times: number[] = [];
    for (let i = 0; i < o.warmup + o.repeats; i++) {
      if (profiler) profiler.enabled = i >= o.warmup;
      const t0 = performance.now();
      model.forwardPretrain(true, i);
      model.readPretrainOutputs();
      model.backwardPretrain();
      const norm = optim.gradNorm();
      optim.update(1e-4, norm);
      model.zeroGrads();
      await ops.synchronize();
      if (i >= o.warmup) times.push(performance.now() - t0);
      profiler?.endStep(); // after the step's time is taken: resolving CUDA marks waits on events
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    return {
      bench: 'step', config: o.config, device: ops.backend, precision, seq_len: T, batch_size: B, vocab_size: o.vocabSize, max_predictions: P,
      median_ms: median, min_ms: times[0]!, tokens_per_s: (B * T) / (median / 1000), repeats: o.repeats, arena_bytes: model.arena.bytes,
      ...(profiler ? { profile: profileOf(profiler, times) } : {}),
    };
  } finally {
    optim.dispose();
    model.dispose();
  }
}

function profileOf(p: OpProfiler, times: number[]): { ops: OpProfileRow[]; by_op: OpProfileRow[]; unattributed_ms: number } {
  const mean = times.reduce((a, b) => a + b, 0) / times.length; // the op times are means over the same steps
  const ops = p.rows(mean);
  return { ops, by_op: byOp(ops), unattributed_ms: mean - ops.reduce((a, r) => a + r.ms_per_step, 0) };
}

function printProfile(pr: NonNullable<StepBenchResult['profile']>, top: number): void {
  const line = (r: OpProfileRow) =>
    `  ${(r.op + ' ' + r.pass).padEnd(26)} ${r.detail.padEnd(30)} ${r.calls_per_step.toFixed(0).padStart(5)} ${r.ms_per_step.toFixed(2).padStart(9)} ms ${r.pct_of_step.toFixed(1).padStart(6)}%` +
    `${r.gflops !== undefined ? (r.gflops >= 1000 ? `${(r.gflops / 1000).toFixed(1)} TFLOP/s` : `${r.gflops.toFixed(0)} GFLOP/s`).padStart(14) : ''}\n`;
  process.stdout.write(`per op (mean per step):\n`);
  for (const r of pr.by_op) process.stdout.write(line(r));
  process.stdout.write(`  ${'not in any op'.padEnd(57)} ${pr.unattributed_ms.toFixed(2).padStart(15)} ms\n`);
  process.stdout.write(`top ${top} op shapes:\n`);
  for (const r of pr.ops.slice(0, top)) process.stdout.write(line(r));
}

export function register(bench: Command): void {
  bench
    .command('step')
    .description('one full training step (forward, backward, clip, AdamW): median ms and tokens/s; --peer torch compares with PyTorch')
    .option('--config <name>', 'model preset or config.json', 'mini')
    .option('--seq-len <n>', 'sequence length', '128')
    .option('--batch-size <n>', 'batch size', '32')
    .option('--vocab-size <n>', 'vocab size', '30522')
    .option('--predictions <n>', 'masked slots per sequence (sparse MLM)', '20')
    .option('--device <d>', 'cpu, cuda or ref (the slow reference kernels)', 'cpu')
    .option('--precision <p>', 'fp32, or bf16 (mixed precision: bf16 activations and matmul weights, fp32 master weights)', 'fp32')
    .option('--repeats <n>', 'timed steps', '5')
    .option('--profile', 'time every op of the timed steps (per op and per GEMM shape; CUDA: device time from events)')
    .option('--warmup <n>', 'untimed steps first', '1')
    .option('--peer <name>', "time the same step in another framework in the same run: 'torch'")
    .option('--python <exe>', "python with torch for --peer (default: Debian's /usr/bin/python3 when present)")
    .option('--json', 'print JSON')
    .action(async (opts: Record<string, string | boolean>) => {
      const n = (flag: string, key: string) => posInt(flag, opts[key] as string);
      if (!STEP_DEVICES.includes(opts.device as string)) throw new Error(`--device: "${opts.device}" must be cpu, cuda or ref`);
      const o: StepBenchOptions = {
        config: opts.config as string, seqLen: n('seq-len', 'seqLen'), batchSize: n('batch-size', 'batchSize'), vocabSize: n('vocab-size', 'vocabSize'),
        predictions: n('predictions', 'predictions'), device: opts.device as string, repeats: n('repeats', 'repeats'), warmup: nonNegInt('warmup', opts.warmup as string),
        profile: !!opts.profile,
        precision: opts.precision === 'bf16' ? 'bf16' : opts.precision === 'fp32' ? 'fp32' : (() => { throw new Error(`--precision: "${opts.precision}" must be fp32 or bf16`); })(),
      };
      const ours = await benchStep(o);
      const out: Record<string, unknown> = { ...ours };
      if (opts.peer === 'torch') {
        const cfg = resolveConfig(o.config, { vocabSize: o.vocabSize });
        const args = [join(repoRoot, 'scripts', 'bench_step_torch.py'), '--layers', cfg.numLayers, '--hidden', cfg.hiddenSize, '--heads', cfg.numHeads,
          '--ffn', cfg.intermediateSize, '--vocab', o.vocabSize, '--seq-len', o.seqLen, '--batch-size', o.batchSize, '--predictions', o.predictions,
          '--repeats', o.repeats, '--warmup', o.warmup, '--threads', new Ops(defaultBackend(o.device)).info().threads,
          '--device', ours.device === 'cuda' ? 'cuda' : 'cpu', ...(o.precision === 'bf16' ? ['--bf16'] : [])].map(String);
        // CPU: Debian's python3-torch; cuda: the python3 on PATH (a GPU machine's torch is built with CUDA)
        const python = (opts.python as string | undefined) ?? (ours.device !== 'cuda' && existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
        // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE work around old OpenBLAS bugs but slow a current one: unset for timing only
        const env = { ...process.env };
        delete env.OPENBLAS_CORETYPE;
        delete env.OPENBLAS_L2_SIZE;
        const r = spawnSync(python, args, { encoding: 'utf8', env });
        if (r.status !== 0) out.peer = { name: 'torch', skipped: `python3 ${args[0]} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` };
        else {
          const peer = JSON.parse(r.stdout.trim().split('\n').pop()!) as { median_ms: number };
          out.peer = { name: 'torch', ...peer };
          out.ratio_vs_peer = ours.median_ms / peer.median_ms;
        }
      } else if (opts.peer !== undefined) throw new Error(`--peer: unknown peer '${opts.peer}' (only 'torch')`);
      if (opts.json) process.stdout.write(JSON.stringify(out) + '\n');
      else {
        process.stdout.write(`step ${o.config} ${ours.precision} B=${o.batchSize} T=${o.seqLen} on ${ours.device}: ${ours.median_ms.toFixed(1)} ms median, ${Math.round(ours.tokens_per_s)} tokens/s, arena ${(ours.arena_bytes / 2 ** 20).toFixed(1)} MiB\n`);
        const p = out.peer as { median_ms?: number; skipped?: string } | undefined;
        if (p?.median_ms) process.stdout.write(`torch: ${p.median_ms.toFixed(1)} ms median; ours / torch = ${(out.ratio_vs_peer as number).toFixed(2)}\n`);
        else if (p?.skipped) process.stdout.write(`torch peer skipped: ${p.skipped}\n`);
        if (ours.profile) printProfile(ours.profile, 15);
      }
    });
}
