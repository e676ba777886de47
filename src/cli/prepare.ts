// `linkbert prepare`: corpus files → LinkBERT pretraining shards (see src/data/prepare.ts).
import type { Command } from 'commander';
import { Option } from 'commander';
import cliProgress from 'cli-progress';
import { prepare, type PrepareOptions, type PrepareProgress, type PrepareTimings } from '../data/prepare.js';
import { parseLabelProbs } from '../data/instances.js';
import { FORMATS, type Format } from '../data/readers/index.js';
import { describeSkips, skipTotals } from '../data/document.js';

/** A numeric flag; `min` rejects what makes no sense (a negative count) at parse time, naming the flag. */
function num(name: string, integer: boolean, min?: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new Error(`${name}: expected ${integer ? 'an integer' : 'a number'}, got "${v}"`);
    if (min !== undefined && n < min) throw new Error(`${name} must be ${min === 0 ? 'non-negative' : `at least ${min}`}, got ${v}`);
    return n;
  };
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

function fmtBytes(n: number): string {
  return n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;
}

interface Opts {
  input: string[];
  format?: Format;
  vocab: string;
  out: string;
  maxSeqLen: number;
  workers?: number;
  seed: number;
  labelProbs?: string;
  dupeFactor: number;
  mix?: string;
  mask: 'static' | 'dynamic';
  wholeWordMask?: boolean;
  maskProb: number;
  maxPredictions?: number;
  validFraction: number;
  validMinDocs: number;
  skipBad?: boolean;
  shardSizeMb: number;
  shuffle: boolean;
  lowercase?: boolean;
  minChars?: number;
  tokenMemoryMb: number;
  json?: boolean;
  progress: boolean;
}

export function register(program: Command): void {
  program
    .command('prepare')
    .description('turn corpora into LinkBERT pretraining shards: segments, contiguous/random/linked pairs, masks, protobuf shards + manifest')
    .requiredOption('--input <paths...>', 'corpus files or directories (repeatable); several inputs are mixed, see --mix', collect)
    .addOption(new Option('--format <format>', 'reader format for all inputs (default: detected per input)').choices(FORMATS))
    .requiredOption('--vocab <file>', 'WordPiece vocab.txt, or a saved tokenizer directory')
    .requiredOption(
      '--out <dir>',
      'output directory; its manifest.json, train/, valid/, graph/ and tokenizer/ are replaced when the run succeeds, other files are left alone. ' +
        'The run builds in a hidden folder inside it (.prepare-*), so a failed or interrupted run leaves the old dataset as it was (both need disk space meanwhile)',
    )
    .option('--max-seq-len <n>', 'sequence length of [CLS] A [SEP] B [SEP] (512; 128 for short runs)', num('--max-seq-len', true), 512)
    .option('--workers <n>', 'worker threads that parse, tokenise and build instances (default: one per core, none below 16 MiB of input; 0 = all in the main thread; output is identical for any value)', num('--workers', true, 0))
    .option('--seed <n>', 'seed for splits, labels, partners and masks', num('--seed', true, 0), 12345)
    .option('--label-probs <c,r,l>', 'probabilities of contiguous,random,linked (default 1/3 each; unlinked corpora use c,r renormalised)')
    .option('--dupe-factor <n>', 'passes over the corpus, each with fresh partners and masks', num('--dupe-factor', true, 1), 1)
    .option('--mix <w1,w2,...>', 'relative share of instances per --input, in order (e.g. 0.7,0.3 for Wikipedia+books); inputs are down-sampled (anchors dropped) or repeated to fit, shown per input in the summary')
    .addOption(new Option('--mask <mode>', 'static: masks chosen now and stored; dynamic: chosen by the loader each epoch').choices(['static', 'dynamic']).default('static'))
    .option('--whole-word-mask', 'mask all WordPiece pieces of a word together')
    .option('--mask-prob <p>', 'fraction of tokens predicted, in (0, 1]', num('--mask-prob', false), 0.15)
    .option('--max-predictions <n>', 'cap on masked positions per instance (default ceil(mask-prob * max-seq-len))', num('--max-predictions', true, 1))
    .option('--valid-fraction <f>', 'fraction of documents held out for validation (0 = none)', num('--valid-fraction', false), 0.01)
    .option('--valid-min-docs <n>', 'at least this many validation documents when --valid-fraction > 0 (but at most half of them; a smaller or empty valid split is warned about)', num('--valid-min-docs', true, 0), 2)
    .option('--skip-bad', 'skip (and count) malformed input records instead of failing')
    .option('--shard-size-mb <n>', 'target shard size in MiB', num('--shard-size-mb', false), 64)
    .option('--no-shuffle', 'keep instances in document order (default: each split shuffled globally before it is sharded, as BERT does)')
    .option('--lowercase', 'lower-case text (overrides the tokenizer config)')
    .option('--no-lowercase', 'keep case (overrides the tokenizer config)')
    .option('--min-chars <n>', 'skip documents with fewer characters (reader default otherwise)', num('--min-chars', true, 0))
    .option('--token-memory-mb <n>', "tokens go to a temporary file (in the run's hidden folder in --out); while building instances they are held in memory if they fit in this many MiB, else read from the file by offset (output is the same)", num('--token-memory-mb', false, 0), 2048)
    .option('--json', 'print the manifest summary as JSON')
    .option('--no-progress', 'no progress bar')
    .action(async (o: Opts, cmd: Command) => {
      const lcSource = cmd.getOptionValueSource('lowercase');
      const opts: PrepareOptions = {
        inputs: o.input,
        format: o.format,
        vocab: o.vocab,
        out: o.out,
        maxSeqLen: o.maxSeqLen,
        workers: o.workers,
        seed: o.seed,
        labelProbs: o.labelProbs ? parseLabelProbs(o.labelProbs) : undefined,
        dupeFactor: o.dupeFactor,
        mix: o.mix ? parseMix(o.mix) : undefined,
        mask: o.mask,
        wholeWordMask: !!o.wholeWordMask,
        maskProb: o.maskProb,
        maxPredictions: o.maxPredictions,
        validFraction: o.validFraction,
        validMinDocs: o.validMinDocs,
        skipBad: !!o.skipBad,
        shardSizeMb: o.shardSizeMb,
        shuffle: o.shuffle,
        // commander defaults --no-lowercase's value to true; only pass what the user actually set
        lowercase: lcSource === 'cli' ? o.lowercase : undefined,
        minChars: o.minChars,
        tokenMemoryMb: o.tokenMemoryMb,
      };
      const t0 = Date.now();
      const tty = o.progress && process.stderr.isTTY;
      const bar = tty
        ? new cliProgress.SingleBar(
            {
              format: 'prepare |{bar}| {percentage}% {done}/{total_h} | {docs} docs | {instances} inst ({rate}/s) | ETA {eta_formatted}',
              stream: process.stderr,
              hideCursor: true,
              etaBuffer: 50,
            },
            cliProgress.Presets.shades_classic,
          )
        : null;
      let started = false;
      const onProgress = (p: PrepareProgress): void => {
        if (!bar) return;
        const payload = {
          done: fmtBytes(p.bytes),
          total_h: fmtBytes(p.totalBytes),
          docs: p.docs,
          instances: p.instances,
          rate: Math.round(p.instances / Math.max(0.001, (Date.now() - t0) / 1000)),
        };
        if (!started) {
          bar.start(Math.max(1, p.totalBytes), 0, payload);
          started = true;
        }
        bar.update(p.bytes, payload);
      };
      let m;
      const timings: PrepareTimings = { setup: 0, tokenize: 0, graph: 0, instances: 0, shuffle: 0, finish: 0 };
      try {
        m = await prepare(opts, onProgress, timings);
      } finally {
        if (started) bar!.stop();
      }
      const secs = (Date.now() - t0) / 1000;
      const totalBytes = m.inputs.reduce((a, i) => a + i.bytes, 0);
      const summary = {
        out: o.out,
        seconds: Number(secs.toFixed(2)),
        mb_per_s: Number((totalBytes / (1 << 20) / Math.max(secs, 1e-9)).toFixed(3)),
        // the whole process: main thread and every worker thread
        cpu_seconds: Number(((process.resourceUsage().userCPUTime + process.resourceUsage().systemCPUTime) / 1e6).toFixed(2)),
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
        stage_seconds: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Number(v.toFixed(3))])),
        documents: m.counts.documents,
        segments: m.counts.segments,
        instances: m.counts.instances,
        tokens: m.counts.tokens,
        labels: m.counts.labels,
        train: { instances: m.splits.train.instances, documents: m.splits.train.documents, shards: m.splits.train.shards.length },
        valid: { instances: m.splits.valid.instances, documents: m.splits.valid.documents, shards: m.splits.valid.shards.length },
        label_fallback: m.label_fallback,
        skipped: m.skipped,
        // reasons count different things (documents, links, XML errors): totals per unit
        skipped_totals: skipTotals(m.skipped),
        inputs: m.inputs.map((x) => ({
          path: x.path,
          format: x.format,
          weight: x.weight,
          documents: x.documents,
          segments: x.segments,
          instances: x.instances,
          keep_rate: x.keep_rate,
          anchors: x.anchors,
          anchors_dropped: x.anchors_dropped,
          skipped: x.skipped,
        })),
        warnings: m.warnings,
      };
      const warn = (): void => {
        for (const w of m.warnings) process.stderr.write(`warning: ${w}\n`);
      };
      if (o.json) {
        process.stdout.write(JSON.stringify(summary) + '\n');
        warn();
        return;
      }
      const l = m.counts.labels;
      const pct = (x: number) => (m.counts.instances ? ((100 * x) / m.counts.instances).toFixed(1) : '0.0');
      const lines = [
        `wrote ${o.out}/manifest.json in ${summary.seconds}s (${summary.mb_per_s} MB/s of input; ${summary.cpu_seconds} CPU-s, peak RSS ${summary.peak_rss_mb} MB)`,
        `documents ${m.counts.documents}, segments ${m.counts.segments}, instances ${m.counts.instances}, tokens ${m.counts.tokens}`,
        `labels: contiguous ${l.contiguous} (${pct(l.contiguous)}%), random ${l.random} (${pct(l.random)}%), linked ${l.linked} (${pct(l.linked)}%)`,
        `train: ${summary.train.instances} instances from ${summary.train.documents} documents in ${summary.train.shards} shards; ` +
          `valid: ${summary.valid.instances} instances from ${summary.valid.documents} documents in ${summary.valid.shards} shards`,
        `skipped: ${describeSkips(m.skipped)}`,
      ];
      // with --mix, what each input gave: down-sampling drops anchors, up-sampling repeats them
      if (o.mix)
        m.inputs.forEach((x, k) => {
          const use =
            x.anchors_dropped > 0 ? `${x.anchors_dropped} of ${x.anchors} anchors dropped (${((100 * x.anchors_dropped) / Math.max(1, x.anchors)).toFixed(1)}%)`
            : x.keep_rate > 1 ? `each anchor used ${x.keep_rate.toFixed(2)}x on average`
            : `all ${x.anchors} anchors used once`;
          lines.push(`input ${k + 1}: ${x.path} (${x.format}, weight ${x.weight}): ${x.documents} documents, ${x.segments} segments, ${x.instances} instances; ${use}`);
        });
      process.stdout.write(lines.join('\n') + '\n');
      warn();
    });
}

function parseMix(s: string): number[] {
  const w = s.split(',').map((x) => Number(x.trim()));
  if (w.some((x) => !Number.isFinite(x) || x < 0)) throw new Error(`--mix: expected comma-separated non-negative weights, got "${s}"`);
  return w;
}
