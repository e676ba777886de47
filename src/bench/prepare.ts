// `linkbert bench prepare`: throughput of `prepare` (corpus files → shards) on the shared corpora, per
// worker count. Reports MB/s of input files, documents/s, instances/s and tokens/s.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { prepare, type Manifest } from '../data/prepare.js';
import { readDocuments } from '../data/readers/index.js';
import { SkipCounter } from '../data/document.js';
import { trainWordPieceVocab } from '../data/tokenizer/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const sharedData = path.resolve(repoRoot, '../shared/data');

/** Default inputs: the shared MediaWiki dumps, PMC articles and PostgreSQL HTML docs that exist. */
export function defaultInputs(): string[] {
  const c = [path.join(sharedData, 'wiki'), path.join(sharedData, 'pmc'), path.join(sharedData, 'html/postgresql-15-html.tar.xz')];
  const found = c.filter((p) => fs.existsSync(p));
  if (found.length === 0) throw new Error(`no benchmark corpora under ${sharedData}; pass --input`);
  return found;
}

/** A WordPiece vocab trained on the inputs themselves (cached in `dir`), when none is given. */
export async function benchVocab(inputs: string[], dir: string, size: number, log: (m: string) => void): Promise<string> {
  const file = path.join(dir, `vocab-${size}.txt`);
  const texts: string[] = [];
  for (const p of inputs) {
    const skips = new SkipCounter();
    for await (const d of readDocuments(p, { skips, skipBad: true })) texts.push(...d.text.split('\n'));
  }
  log(`training a ${size}-token WordPiece vocab on ${texts.length} lines`);
  const vocab = await trainWordPieceVocab({ lines: texts }, { vocabSize: size, doLowerCase: true });
  fs.writeFileSync(file, vocab.join('\n') + '\n');
  return file;
}

interface Opts {
  json?: boolean;
  input?: string[];
  vocab?: string;
  vocabSize: string;
  workers: string;
  maxSeqLen: string;
  dupeFactor: string;
  repeat: string;
}

export function register(bench: Command): void {
  bench
    .command('prepare')
    .description('prepare throughput (MB/s of input to shards) per worker count on ../shared/data corpora')
    .option('--json', 'print JSON')
    .option('--input <paths...>', 'corpora (default: shared wiki, pmc and html)')
    .option('--vocab <file>', 'vocab.txt (default: train one on the inputs)')
    .option('--vocab-size <n>', 'size of the trained vocab', '8000')
    .option('--workers <list>', 'comma-separated worker counts to time', `1,${Math.max(1, os.availableParallelism() - 1)}`)
    .option('--max-seq-len <n>', 'sequence length', '128')
    .option('--dupe-factor <n>', 'dupe factor', '2')
    .option('--repeat <n>', 'timed runs per worker count (best is reported)', '2')
    .action(async (o: Opts) => {
      const inputs = o.input ?? defaultInputs();
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-bench-prepare-'));
      const log = (m: string) => {
        if (!o.json) process.stderr.write(m + '\n');
      };
      try {
        const vocab = o.vocab ?? (await benchVocab(inputs, tmp, Number(o.vocabSize), log));
        const workerCounts = [...new Set(o.workers.split(',').map((x) => Number(x)))];
        if (workerCounts.some((w) => !Number.isInteger(w) || w < 0)) throw new Error(`--workers: expected comma-separated non-negative integers, got "${o.workers}"`);
        const runs = [];
        let m: Manifest | null = null;
        for (const workers of workerCounts) {
          let best = Infinity;
          for (let r = 0; r < Math.max(1, Number(o.repeat)); r++) {
            const t0 = performance.now();
            m = await prepare({ inputs, vocab, out: path.join(tmp, 'out'), workers, maxSeqLen: Number(o.maxSeqLen), dupeFactor: Number(o.dupeFactor) });
            best = Math.min(best, (performance.now() - t0) / 1000);
          }
          const bytes = m!.inputs.reduce((a, i) => a + i.bytes, 0);
          const run = {
            workers,
            seconds: Number(best.toFixed(3)),
            input_mb_per_s: Number((bytes / 1e6 / best).toFixed(3)),
            documents_per_s: Math.round(m!.counts.documents / best),
            instances_per_s: Math.round(m!.counts.instances / best),
            tokens_per_s: Math.round(m!.counts.tokens / best),
          };
          runs.push(run);
          log(`workers ${workers}: ${run.seconds}s, ${run.input_mb_per_s} MB/s input, ${run.instances_per_s} instances/s, ${run.tokens_per_s} tokens/s`);
        }
        const out = {
          bench: 'prepare',
          inputs: m!.inputs.map((i) => ({ path: i.path, format: i.format, bytes: i.bytes, documents: i.documents })),
          input_bytes: m!.inputs.reduce((a, i) => a + i.bytes, 0),
          documents: m!.counts.documents,
          instances: m!.counts.instances,
          tokens: m!.counts.tokens,
          max_seq_len: Number(o.maxSeqLen),
          dupe_factor: Number(o.dupeFactor),
          vocab_size: m!.vocab.size,
          runs,
          machine: { cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version },
        };
        if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
        else process.stdout.write(`prepare: ${out.documents} documents, ${out.instances} instances, ${(out.input_bytes / 1e6).toFixed(2)} MB input\n`);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
}
