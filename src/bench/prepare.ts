// `linkbert bench prepare`: throughput of `prepare` (corpus files → shards) on the shared corpora, per
// worker count. Reports MB/s of input files, documents/s, instances/s and tokens/s.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import type { Manifest } from '../data/prepare.js';
import { writeSyntheticWiki } from './synthetic-wiki.js';
import { readDocuments } from '../data/readers/index.js';
import { SkipCounter } from '../data/document.js';
import { trainWordPieceVocab, SPECIAL_TOKENS } from '../data/tokenizer/index.js';
import { intAtLeast, nonNegNum, posInt } from './flags.js';

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
  syntheticPages?: string;
  tokenMemoryMb?: string;
  shuffle: boolean;
}

/** One `linkbert prepare --json` in a child process, so that its peak RSS and CPU time are its own. */
function runPrepare(args: string[]): { seconds: number; cpu_seconds: number; peak_rss_mb: number; stage_seconds: Record<string, number> } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/linkbert.js'), 'prepare', '--json', ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`linkbert prepare ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

export function register(bench: Command): void {
  bench
    .command('prepare')
    .description('prepare throughput (MB/s of input to shards) per worker count on ../shared/data corpora')
    .option('--json', 'print JSON')
    .option('--input <paths...>', 'corpora (default: shared wiki, pmc and html)')
    .option('--vocab <file>', 'vocab.txt (default: train one on the inputs)')
    .option('--vocab-size <n>', 'size of the trained vocab', '8000')
    .option('--workers <list>', 'comma-separated worker counts to time (0: everything in the main thread)', `0,1,${os.availableParallelism()}`)
    .option('--max-seq-len <n>', 'sequence length', '128')
    .option('--dupe-factor <n>', 'dupe factor', '2')
    .option('--repeat <n>', 'timed runs per worker count (best is reported)', '2')
    .option('--token-memory-mb <n>', 'passed to prepare (0: build instances from the on-disk token file)')
    .option('--no-shuffle', 'passed to prepare: shards in document order (times prepare without its global shuffle)')
    .option('--synthetic-pages <n>', 'instead of the shared corpora: a synthetic MediaWiki dump of n pages (about 6.7 KB each, Zipf words, heavy-tailed links)')
    .action(async (o: Opts) => {
      // numeric flags checked before any work, named as typed (a bad one used to surface late, as NaN or
      // as the vocab trainer's own --size)
      const vocabSize = intAtLeast('vocab-size', o.vocabSize, SPECIAL_TOKENS.length + 1);
      posInt('max-seq-len', o.maxSeqLen);
      posInt('dupe-factor', o.dupeFactor);
      const repeat = posInt('repeat', o.repeat);
      if (o.tokenMemoryMb !== undefined) nonNegNum('token-memory-mb', o.tokenMemoryMb);
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-bench-prepare-'));
      const log = (m: string) => {
        if (!o.json) process.stderr.write(m + '\n');
      };
      try {
        let inputs = o.input ?? [];
        let vocab = o.vocab;
        if (o.syntheticPages !== undefined) {
          const pages = Number(o.syntheticPages);
          if (!Number.isInteger(pages) || pages < 10) throw new Error(`--synthetic-pages: expected an integer >= 10, got "${o.syntheticPages}"`);
          const dump = path.join(tmp, 'synthetic.xml');
          const w = writeSyntheticWiki(dump, { pages });
          log(`synthetic dump: ${pages} pages (${w.articles} articles, ${w.redirects} redirects), ${(w.bytes / 1e6).toFixed(1)} MB`);
          inputs = [dump];
          if (!vocab) {
            // the vocab comes from a small dump of the same distribution, not from reading all of it
            const small = path.join(tmp, 'vocab-sample.xml');
            writeSyntheticWiki(small, { pages: Math.min(pages, 1000) });
            vocab = await benchVocab([small], tmp, vocabSize, log);
          }
        }
        if (inputs.length === 0) inputs = defaultInputs();
        vocab ??= await benchVocab(inputs, tmp, vocabSize, log);
        const workerCounts = [...new Set(o.workers.split(',').map((x) => Number(x)))];
        if (workerCounts.some((w) => !Number.isInteger(w) || w < 0)) throw new Error(`--workers: expected comma-separated non-negative integers, got "${o.workers}"`);
        const runs: { workers: number; seconds: number; cpu_seconds: number; peak_rss_mb: number; stage_seconds: Record<string, number>; input_mb_per_s: number; documents_per_s: number; instances_per_s: number; tokens_per_s: number }[] = [];
        let m: Manifest | null = null;
        const outDir = path.join(tmp, 'out');
        for (const workers of workerCounts) {
          let best: ReturnType<typeof runPrepare> | null = null;
          for (let r = 0; r < repeat; r++) {
            const args = ['--out', outDir, '--vocab', vocab, '--workers', String(workers), '--max-seq-len', o.maxSeqLen, '--dupe-factor', o.dupeFactor, ...(o.tokenMemoryMb !== undefined ? ['--token-memory-mb', o.tokenMemoryMb] : []), ...(o.shuffle === false ? ['--no-shuffle'] : []), '--input', ...inputs];
            const res = runPrepare(args);
            if (!best || res.seconds < best.seconds) best = res;
          }
          m = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8')) as Manifest;
          const secs = best!.seconds;
          const bytes = m.inputs.reduce((a, i) => a + i.bytes, 0);
          const run = {
            workers,
            seconds: secs,
            cpu_seconds: best!.cpu_seconds,
            peak_rss_mb: best!.peak_rss_mb,
            stage_seconds: best!.stage_seconds,
            input_mb_per_s: Number((bytes / 1e6 / secs).toFixed(3)),
            documents_per_s: Math.round(m.counts.documents / secs),
            instances_per_s: Math.round(m.counts.instances / secs),
            tokens_per_s: Math.round(m.counts.tokens / secs),
          };
          runs.push(run);
          log(`workers ${workers}: ${run.seconds}s, ${run.input_mb_per_s} MB/s input, ${run.instances_per_s} instances/s, ${run.tokens_per_s} tokens/s, ${run.cpu_seconds} CPU-s, peak RSS ${run.peak_rss_mb} MB`);
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
          // speed-up of each worker count over the first one timed
          speedup: runs.map((r) => ({ workers: r.workers, vs_first: Number((runs[0].seconds / r.seconds).toFixed(3)) })),
          synthetic_pages: o.syntheticPages !== undefined ? Number(o.syntheticPages) : null,
          token_memory_mb: o.tokenMemoryMb !== undefined ? Number(o.tokenMemoryMb) : 2048,
          machine: { cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadavg: os.loadavg() },
        };
        if (o.json) process.stdout.write(JSON.stringify(out) + '\n');
        else process.stdout.write(`prepare: ${out.documents} documents, ${out.instances} instances, ${(out.input_bytes / 1e6).toFixed(2)} MB input\n`);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
}
