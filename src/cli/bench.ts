// `linkbert bench <what>`: benchmarks print JSON with --json. Each benchmark lives in src/bench/<what>.ts
// and exports `register(bench: Command)`; add one import and one call below.
import type { Command } from 'commander';
// bench imports
import { register as registerTrainBench } from '../bench/train.js';
import { register as registerStepBench } from '../bench/step.js';
import { register as registerKernelsBench } from '../bench/kernels.js';
import { register as registerNerBench } from '../bench/ner.js';
import { register as registerPrepareBench } from '../bench/prepare.js';
import { register as registerShardsBench } from '../bench/shards.js';
import { register as registerTokenize } from '../bench/tokenize.js';

export function register(program: Command): void {
  const bench = program.command('bench').description('benchmarks (kernels, step, train, ner, prepare, tokenize, shards); JSON with --json');
  // bench registrations
  registerTrainBench(bench);
  registerStepBench(bench);
  registerKernelsBench(bench);
  registerNerBench(bench);
  registerPrepareBench(bench);
  registerShardsBench(bench);
  registerTokenize(bench);
}
