// `linkbert report RUN`: a self-contained HTML report of a pretraining run.
import type { Command } from 'commander';
import { writeReport } from '../train/report.js';

export function register(program: Command): void {
  program
    .command('report')
    .description('write RUN/report.html: loss, accuracy, learning-rate and throughput charts, config and environment (no network)')
    .argument('<run>', 'run folder of `linkbert pretrain`')
    .action((run: string) => {
      process.stdout.write(writeReport(run) + '\n');
    });
}
