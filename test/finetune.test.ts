// Fine-tuning and evaluation end to end on a tiny model (test/fixtures/golden/tiny: hidden 32, 2 layers,
// 2 heads, FFN 64, 32 positions, a 97-token vocab) with small synthetic, trivially learnable data sets
// written per test, plus the task fixtures in test/fixtures/tasks/ for formats and errors.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FINETUNE_DEFAULTS, batchLoss, evaluateCheckpoint, finetune, type FinetuneOptions, type FinetuneResult } from '../src/tasks/finetune.js';
import { TaskHead, bceWithLogits, crossEntropy, headExtraParams, headParamNames, headWidth, mse, spanLoss, mcLoss, IGNORE } from '../src/tasks/heads.js';
import { BertModel } from '../src/model/bert.js';
import { Ops } from '../src/ops.js';
import type { Batch, HeadKind } from '../src/tasks/types.js';
import { loadTaskCheckpoint, TASK_CONFIG_FILE, TASK_HEAD_FILE } from '../src/tasks/task-checkpoint.js';
import { loadCheckpoint, matchParams } from '../src/model/checkpoint/index.js';
import { Rng } from '../src/data/masking.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TINY = join(ROOT, 'test/fixtures/golden/tiny');
const TASKS = join(ROOT, 'test/fixtures/tasks');
const CLI = join(ROOT, 'bin/linkbert.js');
const quiet = (): void => {};
/** LINKBERT_TEST_DEVICE=cuda runs the fine-tunes on the GPU backend (the finite-difference test stays on ref). */
const DEVICE: 'cpu' | 'cuda' = process.env.LINKBERT_TEST_DEVICE === 'cuda' ? 'cuda' : 'cpu';

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'linkbert-ft-test-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function opts(task: string, train: string, dev: string, out: string, extra: Partial<FinetuneOptions> = {}): FinetuneOptions {
  return {
    ...FINETUNE_DEFAULTS, task, train, dev, checkpoint: TINY, out,
    epochs: 8, lr: 2e-3, batchSize: 8, warmupRatio: 0.1, threads: 1, device: DEVICE, progress: false, ...extra,
  };
}

const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
const readJsonl = (f: string): Record<string, unknown>[] =>
  readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

const POS = ['link', 'graph', 'node', 'wiki'];
const NEG = ['bert', 'doc', 'the', 'of'];
const pick = (r: Rng, a: string[]): string => a[r.int(a.length)]!;

/** Checks shared by every task: loss went down, best checkpoint saved and reloadable, evaluate = dev metrics. */
async function commonChecks(t: import('ava').ExecutionContext, r: FinetuneResult, task: string, dev: string, nDev: number): Promise<void> {
  t.log(`${task}: dev ${JSON.stringify(r.dev.metrics)}; loss ${r.lossCurve.map((x) => x.toFixed(3)).join(' → ')}`);
  t.true(r.lossCurve.length >= 2);
  t.true(r.lossCurve[r.lossCurve.length - 1]! < r.lossCurve[0]!, `loss should go down: ${r.lossCurve.map((x) => x.toFixed(3)).join(' → ')}`);
  for (const f of ['config.json', 'model.safetensors', 'vocab.txt', TASK_CONFIG_FILE, TASK_HEAD_FILE]) t.true(existsSync(join(r.bestCheckpoint, f)), f);
  // the encoder part is a regular checkpoint other tools can load
  const ck = loadCheckpoint(r.bestCheckpoint);
  t.deepEqual(matchParams(ck.config, ck.tensors, { strict: true }).missing, []);
  const metrics = JSON.parse(readFileSync(join(r.out, 'metrics.json'), 'utf8')) as Record<string, any>;
  t.is(metrics.task, task);
  t.deepEqual(metrics.dev.metrics, r.dev.metrics);
  t.is(metrics.best.value, r.dev.metrics[r.dev.main]);
  const best = Math.max(...r.history.map((h) => (Number.isNaN(h.main) ? -Infinity : h.main)));
  t.is(r.best.value, best, 'the kept checkpoint is the best dev evaluation');
  // evaluate on the saved checkpoint reproduces the dev metrics
  const ev = await evaluateCheckpoint({ data: dev, checkpoint: r.bestCheckpoint, device: DEVICE, batchSize: 5, threads: 1, nBest: 20, maxAnswerLen: 30, progress: false }, quiet);
  t.is(ev.task, task);
  t.is(ev.main, r.dev.main);
  for (const [k, v] of Object.entries(r.dev.metrics)) {
    if (Number.isNaN(v)) t.true(Number.isNaN(ev.metrics[k]!), k);
    else t.true(Math.abs(ev.metrics[k]! - v) < 1e-5, `${k}: evaluate ${ev.metrics[k]} vs finetune ${v}`);
  }
  t.is(readJsonl(join(r.out, 'dev_predictions.jsonl')).length, nDev);
  // predictions.jsonl holds test predictions only (none here)
  t.false(existsSync(join(r.out, 'predictions.jsonl')));
  t.false('file' in metrics.predictions);
}

// ---- losses: analytic gradients vs finite differences --------------------------------------------------

function fdCheck(t: import('ava').ExecutionContext, f: (x: Float64Array) => { loss: number; dlogits: Float32Array }, x0: number[]): void {
  const x = Float64Array.from(x0);
  const g = f(x).dlogits;
  const h = 1e-5;
  for (let i = 0; i < x.length; i++) {
    const a = Float64Array.from(x), b = Float64Array.from(x);
    a[i]! += h;
    b[i]! -= h;
    const num = (f(a).loss - f(b).loss) / (2 * h);
    t.true(Math.abs(num - g[i]!) < 1e-4 + 1e-3 * Math.abs(num), `d[${i}] analytic ${g[i]} vs numeric ${num}`);
  }
}

test('head losses: gradients match finite differences', (t) => {
  const r = new Rng(3);
  const rnd = (n: number) => Array.from({ length: n }, () => 2 * r.next() - 1);
  fdCheck(t, (x) => crossEntropy(x, 3, 4, [1, IGNORE, 3]), rnd(12));
  fdCheck(t, (x) => bceWithLogits(x, [1, 0, 0, 1, 1, 0]), rnd(6));
  fdCheck(t, (x) => mse(x, [0.5, -1, 2]), rnd(3));
  fdCheck(t, (x) => mcLoss(x, 2, 4, [2, 0]), rnd(8));
  // span: 2 rows × T=4 × 2 columns; row 1 has 3 real tokens (the padded position gets no gradient)
  const mask = [1, 1, 1, 1, 1, 1, 1, 0];
  fdCheck(t, (x) => spanLoss(x, 2, 4, mask, [1, 0], [2, 2]), rnd(16));
  const s = spanLoss(new Float32Array(16), 2, 4, mask, [1, 0], [2, 2]);
  t.is(s.dlogits[(4 + 3) * 2], 0);
  t.true(Math.abs(s.loss - (Math.log(4) + Math.log(3)) / 2) < 1e-9);
  t.throws(() => spanLoss(new Float32Array(16), 2, 4, mask, [1, 3], [2, 2]), { message: /outside its 3 tokens/ });
  t.is(crossEntropy([0, 0], 1, 2, [IGNORE]).count, 0);
});

test('task heads: backward through head, pooler and encoder matches finite differences (ref backend)', (t) => {
  const ck = loadCheckpoint(TINY);
  const config = { ...ck.config, hiddenDropout: 0, attentionDropout: 0 };
  const loaded = matchParams(config, ck.tensors).params;
  const ops = new Ops('ref');
  const B = 2, T = 6, C = 3;
  const inputIds = Int32Array.from([2, 10, 11, 12, 3, 0, 2, 20, 21, 3, 0, 0]);
  const attentionMask = Int32Array.from([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0]);
  const base = { batchSize: B, seqLen: T, inputIds, tokenTypeIds: new Int32Array(B * T), attentionMask };
  const batches: Record<HeadKind, Batch & Record<string, unknown>> = {
    cls: { ...base, labels: Int32Array.from([1, 2]) },
    multilabel: { ...base, labels: Float32Array.from([1, 0, 1, 0, 0, 1]) },
    regression: { ...base, labels: Float32Array.from([0.5, -1]) },
    token: { ...base, labels: Int32Array.from([IGNORE, 0, 1, 2, IGNORE, IGNORE, IGNORE, 2, 2, IGNORE, IGNORE, IGNORE]) },
    span: { ...base, startPositions: Int32Array.from([1, 2]), endPositions: Int32Array.from([3, 2]) },
    mc: { ...base, numChoices: 2, examples: 1, labels: Int32Array.from([1]) },
  };
  for (const kind of Object.keys(batches) as HeadKind[]) {
    const model = new BertModel(config, ops, { batchSize: B, seqLen: T, maxPredictions: 0 }, { pretrainingHeads: false, extra: headExtraParams(kind, headWidth(kind, C), 32) });
    model.initParams(1);
    model.loadParams(loaded);
    const head = new TaskHead(model, kind, C);
    const batch = batches[kind];
    model.setInputs(batch);
    const lossAt = () => batchLoss(kind, head.forward(false, 0), batch, head.width);
    model.zeroGrads();
    head.backward(lossAt().dlogits);
    const checks: [string, number][] = [[headParamNames(kind).weight, 1], [headParamNames(kind).bias, 0], ['bert.encoder.layer.0.attention.self.query.weight', 37], ['bert.embeddings.LayerNorm.weight', 3]];
    if (head.pooled) checks.push(['bert.pooler.dense.weight', 100]);
    for (const [name, i] of checks) {
      const g = (model.grad(name).toArray() as Float32Array)[i]!;
      const p = model.param(name);
      const v = p.toArray() as Float32Array;
      const h = 1e-3, v0 = v[i]!;
      v[i] = v0 + h;
      p.setData(v);
      const lp = lossAt().loss;
      v[i] = v0 - h;
      p.setData(v);
      const lm = lossAt().loss;
      v[i] = v0;
      p.setData(v);
      const num = (lp - lm) / (2 * h);
      t.true(Math.abs(g - num) <= 2e-5 + 0.02 * Math.abs(num), `${kind} ${name}[${i}]: analytic ${g} vs numeric ${num}`);
    }
    head.dispose();
    model.dispose();
  }
});

// ---- one end-to-end fine-tune per task type --------------------------------------------------------

test('seqcls: learns a keyword rule; predictions in input order; CLI finetune + evaluate agree', async (t) => {
  const d = tmp(t);
  const r = new Rng(1);
  const mk = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => {
      const yes = r.next() < 0.5;
      return { id: `${tag}${i}`, sentence: Array.from({ length: 4 }, () => pick(r, yes ? POS : NEG)).join(' '), label: yes ? 'yes' : 'no' };
    });
  const dev = mk(16, 'd');
  writeFileSync(join(d, 'train.jsonl'), jsonl(mk(64, 't')));
  writeFileSync(join(d, 'dev.jsonl'), jsonl(dev));
  const res = await finetune(opts('seqcls', join(d, 'train.jsonl'), join(d, 'dev.jsonl'), join(d, 'out'), { epochs: 6 }), quiet);
  t.is(res.dev.main, 'accuracy');
  t.true(res.dev.metrics.accuracy! >= 0.8, `accuracy ${res.dev.metrics.accuracy}`);
  t.true('macro_f1' in res.dev.metrics);
  await commonChecks(t, res, 'seqcls', join(d, 'dev.jsonl'), dev.length);
  const preds = readJsonl(join(d, 'out/dev_predictions.jsonl'));
  t.deepEqual(preds.map((p) => p.id), dev.map((e) => e.id));
  const correct = preds.filter((p, i) => p.prediction === dev[i]!.label || p.label === undefined).length;
  t.true(correct / dev.length >= 0.8);
  const tc = JSON.parse(readFileSync(join(res.bestCheckpoint, TASK_CONFIG_FILE), 'utf8'));
  t.deepEqual(tc.labels, ['no', 'yes']);
  t.is(tc.head, 'cls');

  // the CLI: same data through `linkbert finetune` / `linkbert evaluate`
  const out2 = join(d, 'cli');
  const ft = spawnSync(process.execPath, [CLI, 'finetune', '--task', 'seqcls', '--train', join(d, 'train.jsonl'), '--dev', join(d, 'dev.jsonl'),
    '--test', join(d, 'dev.jsonl'), '--checkpoint', TINY, '--out', out2, '--epochs', '2', '--lr', '2e-3', '--batch-size', '8', '--threads', '1', '--no-progress'], { encoding: 'utf8' });
  t.is(ft.status, 0, ft.stderr);
  const summary = JSON.parse(ft.stdout);
  t.is(summary.best_checkpoint, join(out2, 'best'));
  t.deepEqual(summary.test.metrics, summary.dev.metrics); // test = dev file here
  const ev = JSON.parse(execFileSync(process.execPath, [CLI, 'evaluate', '--task', 'seqcls', '--data', join(d, 'dev.jsonl'), '--checkpoint', join(out2, 'best'), '--no-progress'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  t.deepEqual(ev.metrics, summary.dev.metrics);
});

test('ner: entity F1 on a learnable tagging rule; tokens/labels/predictions per sentence in order', async (t) => {
  const d = tmp(t);
  const r = new Rng(2);
  const mk = (n: number) =>
    Array.from({ length: n }, () => {
      const words: string[] = [], tags: string[] = [];
      const len = 3 + r.int(4);
      for (let i = 0; i < len; i++) {
        if (r.next() < 0.3) {
          words.push('link', 'graph');
          tags.push('B-D', 'I-D');
        } else {
          words.push(pick(r, NEG));
          tags.push('O');
        }
      }
      return { words, tags };
    });
  const tsv = (rows: { words: string[]; tags: string[] }[]) => rows.map((s) => s.words.map((w, i) => `${w}\t${s.tags[i]}`).join('\n')).join('\n\n') + '\n';
  const dev = mk(12);
  writeFileSync(join(d, 'train.tsv'), tsv(mk(48)));
  writeFileSync(join(d, 'dev.tsv'), tsv(dev));
  const res = await finetune(opts('ner', join(d, 'train.tsv'), join(d, 'dev.tsv'), join(d, 'out'), { epochs: 8, lr: 3e-3 }), quiet);
  t.is(res.dev.main, 'f1');
  t.true(res.dev.metrics.f1! >= 0.8, `f1 ${res.dev.metrics.f1}`);
  await commonChecks(t, res, 'ner', join(d, 'dev.tsv'), dev.length);
  const preds = readJsonl(join(d, 'out/dev_predictions.jsonl'));
  preds.forEach((p, i) => {
    t.deepEqual(p.tokens, dev[i]!.words);
    t.deepEqual(p.labels, dev[i]!.tags);
    t.is((p.predictions as string[]).length, dev[i]!.words.length);
  });

  // a dev tag outside the training label set: a clear error naming file, line and tag
  writeFileSync(join(d, 'bad-dev.tsv'), 'link\tB-D\ngraph\tI-Chem\n');
  const e = await t.throwsAsync(finetune(opts('ner', join(d, 'train.tsv'), join(d, 'bad-dev.tsv'), join(d, 'out-bad')), quiet));
  t.regex(e!.message, /bad-dev\.tsv:2/);
  t.regex(e!.message, /I-Chem/);
  t.regex(e!.message, /not in the training label set/);
  // and the same file through evaluate
  const e2 = await t.throwsAsync(
    evaluateCheckpoint({ data: join(d, 'bad-dev.tsv'), checkpoint: res.bestCheckpoint, device: 'cpu', batchSize: 4, nBest: 20, maxAnswerLen: 30, progress: false }, quiet),
  );
  t.regex(e2!.message, /bad-dev\.tsv:2.*I-Chem/);
});

test('ner: the CoNLL fixture with truncation (words beyond 32 positions are counted and predicted O)', async (t) => {
  const d = tmp(t);
  const f = join(TASKS, 'ner/train.tsv');
  const res = await finetune(opts('ner', f, f, join(d, 'out'), { epochs: 1 }), quiet);
  const preds = readJsonl(join(d, 'out/dev_predictions.jsonl'));
  t.is(preds.length, res.dev.examples);
  for (const p of preds) t.is((p.predictions as string[]).length, (p.tokens as string[]).length);
  const m = JSON.parse(readFileSync(join(d, 'out/metrics.json'), 'utf8'));
  t.truthy(m.data.train.featurize);
});

test('multilabel: micro-F1 on keyword labels', async (t) => {
  const d = tmp(t);
  const r = new Rng(4);
  const mk = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const a = r.next() < 0.5, b = r.next() < 0.5;
      const words = [a ? 'link' : 'doc', b ? 'graph' : 'the', pick(r, NEG)];
      return { id: `m${i}`, sentence: words.join(' '), labels: [...(a ? ['a'] : []), ...(b ? ['b'] : [])] };
    });
  const dev = mk(16);
  writeFileSync(join(d, 'train.jsonl'), jsonl(mk(64)));
  writeFileSync(join(d, 'dev.jsonl'), jsonl(dev));
  const res = await finetune(opts('multilabel', join(d, 'train.jsonl'), join(d, 'dev.jsonl'), join(d, 'out'), { epochs: 10, lr: 3e-3 }), quiet);
  t.true(res.dev.main.includes('f1'), res.dev.main);
  t.true(res.dev.metrics[res.dev.main]! >= 0.7, `${res.dev.main} ${res.dev.metrics[res.dev.main]}`);
  await commonChecks(t, res, 'multilabel', join(d, 'dev.jsonl'), dev.length);
  const preds = readJsonl(join(d, 'out/dev_predictions.jsonl'));
  t.deepEqual(preds.map((p) => p.id), dev.map((e) => e.id));
  t.deepEqual(preds.map((p) => p.labels), dev.map((e) => e.labels));
});

test('regression: MSE loss falls and Pearson is positive', async (t) => {
  const d = tmp(t);
  const r = new Rng(5);
  const mk = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const k = r.int(4);
      const words = [...Array(k).fill('link'), ...Array(4 - k).fill('doc')];
      return { id: `r${i}`, sentence1: words.join(' '), sentence2: 'the wiki', label: k };
    });
  const dev = mk(16);
  writeFileSync(join(d, 'train.jsonl'), jsonl(mk(64)));
  writeFileSync(join(d, 'dev.jsonl'), jsonl(dev));
  const res = await finetune(opts('regression', join(d, 'train.jsonl'), join(d, 'dev.jsonl'), join(d, 'out'), { epochs: 10, lr: 3e-3 }), quiet);
  t.is(res.dev.main, 'pearson');
  t.true(res.dev.metrics.pearson! > 0.5, `pearson ${res.dev.metrics.pearson}`);
  t.true('mse' in res.dev.metrics);
  await commonChecks(t, res, 'regression', join(d, 'dev.jsonl'), dev.length);
});

test('mc: picks the keyword ending among 4; one line per question with 4 scores', async (t) => {
  const d = tmp(t);
  const r = new Rng(6);
  const mk = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const label = r.int(4);
      const endings = Array.from({ length: 4 }, (_, k) => (k === label ? 'link' : pick(r, NEG)));
      return { id: `q${i}`, sent1: 'the doc of the wiki', sent2: 'is', ending0: endings[0], ending1: endings[1], ending2: endings[2], ending3: endings[3], label };
    });
  const dev = mk(12);
  writeFileSync(join(d, 'train.jsonl'), jsonl(mk(48)));
  writeFileSync(join(d, 'dev.jsonl'), jsonl(dev));
  const res = await finetune(opts('mc', join(d, 'train.jsonl'), join(d, 'dev.jsonl'), join(d, 'out'), { epochs: 8, lr: 3e-3, batchSize: 4 }), quiet);
  t.is(res.dev.main, 'accuracy');
  t.true(res.dev.metrics.accuracy! >= 0.75, `accuracy ${res.dev.metrics.accuracy}`);
  await commonChecks(t, res, 'mc', join(d, 'dev.jsonl'), dev.length);
  const preds = readJsonl(join(d, 'out/dev_predictions.jsonl'));
  t.deepEqual(preds.map((p) => p.id), dev.map((e) => e.id));
  for (const p of preds) t.is((p.scores as number[]).length, 4);
});

test('qa: extracts the keyword span (EM/F1), multi-window SQuAD fixture decodes one answer per question', async (t) => {
  const d = tmp(t);
  const r = new Rng(7);
  const FILL = ['the', 'of', 'and', 'to', 'in', 'is', 'was', 'doc', 'wiki', 'bert', 'node'];
  const mk = (n: number, tag: string) => {
    const lines: unknown[] = [{ header: { dataset: 'synthetic', split: tag } }];
    for (let i = 0; i < n; i++) {
      const words = Array.from({ length: 7 }, () => pick(r, FILL));
      const at = r.int(words.length + 1);
      words.splice(at, 0, 'graph');
      const context = words.join(' ');
      const start = context.split(' ').slice(0, at).join(' ').length + (at ? 1 : 0);
      lines.push({ context, qas: [{ qid: `${tag}${i}`, question: 'what', answers: ['graph'], detected_answers: [{ text: 'graph', char_spans: [[start, start + 4]] }] }] });
    }
    return lines;
  };
  writeFileSync(join(d, 'train.jsonl'), jsonl(mk(64, 't')));
  writeFileSync(join(d, 'dev.jsonl'), jsonl(mk(16, 'd')));
  const qa = { maxSeqLen: 32, docStride: 4, maxQueryLen: 8 };
  const res = await finetune(opts('qa', join(d, 'train.jsonl'), join(d, 'dev.jsonl'), join(d, 'out'), { epochs: 10, lr: 3e-3, ...qa }), quiet);
  t.is(res.dev.main, 'f1');
  t.true('exact_match' in res.dev.metrics);
  t.true(res.dev.metrics.exact_match! >= 50, `EM ${res.dev.metrics.exact_match}`);
  await commonChecks(t, res, 'qa', join(d, 'dev.jsonl'), 16);
  const tc = JSON.parse(readFileSync(join(res.bestCheckpoint, TASK_CONFIG_FILE), 'utf8'));
  t.is(tc.doc_stride, 4);
  t.is(tc.max_query_len, 8);

  // SQuAD v1.1 JSON with contexts longer than one 32-token window
  const sq = join(TASKS, 'qa/squad.json');
  const r2 = await finetune(opts('qa', sq, sq, join(d, 'squad'), { epochs: 1, ...qa }), quiet);
  t.true(r2.dev.features > r2.dev.examples, 'several windows per question');
  const preds = readJsonl(join(d, 'squad/dev_predictions.jsonl'));
  t.is(preds.length, r2.dev.examples);
});

// ---- errors ----------------------------------------------------------------------------------------

test('errors: unknown dev label, non-task checkpoint, task mismatch, bad options', async (t) => {
  const d = tmp(t);
  const train = join(TASKS, 'seqcls/train.jsonl');
  const e = await t.throwsAsync(finetune(opts('seqcls', train, join(TASKS, 'seqcls/dev-unknown-label.jsonl'), join(d, 'o')), quiet));
  t.regex(e!.message, /dev-unknown-label\.jsonl:2: field "label": label "CPR:4" is not in the training label set/);

  const e2 = await t.throwsAsync(evaluateCheckpoint({ data: train, checkpoint: TINY, device: 'cpu', batchSize: 4, nBest: 20, maxAnswerLen: 30, progress: false }, quiet));
  t.regex(e2!.message, /not a fine-tuned task checkpoint \(missing task_config\.json and task_head\.safetensors\)/);

  const res = await finetune(opts('seqcls', train, train, join(d, 'ok'), { epochs: 1 }), quiet);
  const e3 = await t.throwsAsync(evaluateCheckpoint({ task: 'ner', data: train, checkpoint: res.bestCheckpoint, device: 'cpu', batchSize: 4, nBest: 20, maxAnswerLen: 30, progress: false }, quiet));
  t.regex(e3!.message, /was fine-tuned for seqcls/);

  // a damaged task_config.json names the file and field
  const broken = join(d, 'broken');
  cpSync(res.bestCheckpoint, broken, { recursive: true });
  const tc = JSON.parse(readFileSync(join(broken, TASK_CONFIG_FILE), 'utf8'));
  tc.num_labels = 7;
  writeFileSync(join(broken, TASK_CONFIG_FILE), JSON.stringify(tc));
  t.throws(() => loadTaskCheckpoint(broken), { message: /task_config\.json: field "num_labels"/ });

  await t.throwsAsync(finetune(opts('seqcls', train, train, join(d, 'o2'), { maxSeqLen: 64 }), quiet), { message: /--max-seq-len 64 exceeds the model's max_position_embeddings \(32\)/ });
  await t.throwsAsync(finetune(opts('seqcls', train, train, join(d, 'o3'), { lr: 0 }), quiet), { message: /--lr/ });
  await t.throwsAsync(finetune(opts('nope', train, train, join(d, 'o4')), quiet), { message: /unknown task type "nope"/ });
});

test('fine-tuning again from a fine-tuned checkpoint reuses its head (same task and labels)', async (t) => {
  const d = tmp(t);
  const train = join(TASKS, 'seqcls/train.jsonl');
  const first = await finetune(opts('seqcls', train, train, join(d, 'a'), { epochs: 2 }), quiet);
  const logs: string[] = [];
  await finetune(opts('seqcls', train, train, join(d, 'b'), { epochs: 1, checkpoint: first.bestCheckpoint }), (s) => logs.push(s));
  t.true(logs.some((l) => /task head classifier\.weight taken from the checkpoint/.test(l)), logs.join('\n'));
  const logs2: string[] = [];
  await finetune(opts('seqcls', train, train, join(d, 'c'), { epochs: 1, randomInit: true }), (s) => logs2.push(s));
  t.true(logs2.some((l) => /random init/.test(l)));
});

test('options are checked before anything is read, naming the flag', async (t) => {
  const d = tmp(t);
  const cases: [Partial<FinetuneOptions>, string][] = [
    [{ maxSeqLen: 3 }, '--max-seq-len: expected an integer >= 8, got 3'],
    [{ lr: -1 }, '--lr: expected a positive number, got -1'],
    [{ warmupRatio: 5 }, '--warmup-ratio: expected a number in [0, 1], got 5'],
    [{ epochs: 0 }, '--epochs: expected an integer >= 1, got 0'],
  ];
  for (const [extra, message] of cases)
    await t.throwsAsync(finetune(opts('ner', join(d, 'missing-train.jsonl'), join(d, 'missing-dev.jsonl'), join(d, 'out'), extra), quiet), { message });
});

// ---- new-user audit fixes ----------------------------------------------------------------------------

test('qa defaults on a small model: stride and question length scale with the capped --max-seq-len', async (t) => {
  const d = tmp(t);
  const sq = join(TASKS, 'qa/squad.json');
  const logs: string[] = [];
  // FINETUNE_DEFAULTS' doc-stride 128 / max-query-len 64 cannot fit the tiny model's 32 positions
  const r = await finetune(opts('qa', sq, sq, join(d, 'a'), { epochs: 1 }), (s) => logs.push(s));
  t.true(logs.some((l) => l.includes('qa defaults scaled to --max-seq-len 32: --doc-stride 128 → 10, --max-query-len 64 → 5')), logs.join('\n'));
  const tc = JSON.parse(readFileSync(join(r.bestCheckpoint, TASK_CONFIG_FILE), 'utf8'));
  t.is(tc.doc_stride, 10);
  // a value the user chose is kept, and the error names the flags and values that work
  await t.throwsAsync(finetune(opts('qa', sq, sq, join(d, 'b'), { epochs: 1, explicit: ['doc-stride'] }), quiet), {
    message: /--max-seq-len 32 leaves \d+ context tokens .*--doc-stride 128 must be smaller than that: use e\.g\. --max-query-len \d+ --doc-stride \d+/,
  });
  t.false(existsSync(join(d, 'b')));
});

test('a run that fails on its inputs leaves no --out folder behind', async (t) => {
  const d = tmp(t);
  const train = join(TASKS, 'seqcls/train.jsonl');
  writeFileSync(join(d, 'bad.jsonl'), '{"id": "a", "sentence": "x", "label": "no"}\n{oops\n');
  writeFileSync(join(d, 'nofield.jsonl'), '{"id": "a", "label": "no"}\n');
  writeFileSync(join(d, 'empty.jsonl'), '');
  const noConfig = join(d, 'ck');
  cpSync(TINY, noConfig, { recursive: true });
  rmSync(join(noConfig, 'config.json'));
  const cases: [Partial<FinetuneOptions>, RegExp][] = [
    [{ train: join(d, 'missing.jsonl') }, /missing\.jsonl: cannot read/],
    [{ train: join(d, 'bad.jsonl') }, /bad\.jsonl:2: invalid JSON/],
    [{ train: join(d, 'nofield.jsonl') }, /nofield\.jsonl:1: field "sentence\|text": missing/],
    [{ dev: join(TASKS, 'seqcls/dev-unknown-label.jsonl') }, /label "CPR:4" is not in the training label set/],
    [{ train: join(d, 'empty.jsonl') }, /empty\.jsonl: no usable examples/],
    [{ checkpoint: noConfig }, /config\.json/],
  ];
  for (const [i, [extra, message]] of cases.entries()) {
    const out = join(d, `out${i}`);
    await t.throwsAsync(finetune(opts('seqcls', train, train, out, { epochs: 1, ...extra }), quiet), { message });
    t.false(existsSync(out), `case ${i}: ${out} left behind`);
  }
});

test('--out with a previous run: a note names what is replaced; predictions.jsonl only with --test', async (t) => {
  const d = tmp(t);
  const train = join(TASKS, 'seqcls/train.jsonl');
  const out = join(d, 'out');
  await finetune(opts('seqcls', train, train, out, { epochs: 1, test: train }), quiet);
  t.true(existsSync(join(out, 'predictions.jsonl')));
  const m1 = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
  t.is(m1.predictions.split, 'test');
  const logs: string[] = [];
  await finetune(opts('seqcls', train, train, out, { epochs: 1 }), (s) => logs.push(s));
  t.true(logs.some((l) => l.startsWith(`--out ${out}: replacing a previous run (task seqcls): best, metrics.json, predictions.jsonl`)), logs.join('\n'));
  // the first run's test predictions do not survive as if they were this run's
  t.false(existsSync(join(out, 'predictions.jsonl')));
  t.true(existsSync(join(out, 'dev_predictions.jsonl')));
  const logs2: string[] = [];
  await finetune(opts('seqcls', train, train, join(d, 'fresh'), { epochs: 1 }), (s) => logs2.push(s));
  t.false(logs2.some((l) => /replacing/.test(l)));
});

test('flags of other task types are warned about, once each, only when given', async (t) => {
  const d = tmp(t);
  const train = join(TASKS, 'seqcls/train.jsonl');
  const logs: string[] = [];
  await finetune(opts('seqcls', train, train, join(d, 'a'), { epochs: 1, overrides: { macro: true }, explicit: ['macro', 'doc-stride', 'epochs'] }), (s) => logs.push(s));
  t.deepEqual(logs.filter((l) => l.startsWith('warning:')), [
    'warning: --doc-stride applies to --task qa only; ignored for --task seqcls',
    'warning: --macro applies to --task ner only; ignored for --task seqcls',
  ]);
  const logs2: string[] = [];
  await finetune(opts('seqcls', train, train, join(d, 'b'), { epochs: 1 }), (s) => logs2.push(s));
  t.deepEqual(logs2.filter((l) => l.startsWith('warning:')), []);
});

test('CLI: --task multilabel with --relation and --doc-stride warns; defaults do not', (t) => {
  const d = tmp(t);
  const args = ['finetune', '--task', 'seqcls', '--train', join(TASKS, 'seqcls/train.jsonl'), '--dev', join(TASKS, 'seqcls/train.jsonl'),
    '--checkpoint', TINY, '--epochs', '1', '--threads', '1', '--no-progress'];
  const r = spawnSync(process.execPath, [CLI, ...args, '--out', join(d, 'a'), '--macro', '--n-best', '20'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  // --n-best 20 equals its default but was typed: still warned
  t.regex(r.stderr, /warning: --n-best applies to --task qa only; ignored for --task seqcls/);
  t.regex(r.stderr, /warning: --macro applies to --task ner only; ignored for --task seqcls/);
  const r2 = spawnSync(process.execPath, [CLI, ...args, '--out', join(d, 'b')], { encoding: 'utf8' });
  t.is(r2.status, 0, r2.stderr);
  t.notRegex(r2.stderr, /warning:/);
});

test('--device cuda fails before any data is read when the backend cannot load', async (t) => {
  if (DEVICE === 'cuda') return t.pass('the cuda backend is in use here');
  const d = tmp(t);
  // the missing train file would be the error if data were read first
  await t.throwsAsync(finetune(opts('seqcls', join(d, 'missing.jsonl'), join(d, 'missing.jsonl'), join(d, 'out'), { device: 'cuda' }), quiet), {
    message: /^--device cuda: cannot load the cuda backend/,
  });
  t.false(existsSync(join(d, 'out')));
});

test('evaluate: a --predictions folder that does not exist is an error before evaluating', async (t) => {
  const d = tmp(t);
  // TINY is no task checkpoint: reaching it would be a different error
  await t.throwsAsync(
    evaluateCheckpoint({ data: join(TASKS, 'seqcls/train.jsonl'), checkpoint: TINY, device: 'cpu', batchSize: 4, nBest: 20, maxAnswerLen: 30, progress: false, predictions: join(d, 'no/dir/p.jsonl') }, quiet),
    { message: /^--predictions .*p\.jsonl: folder .*no\/dir does not exist/ },
  );
});
