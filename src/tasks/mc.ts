// Multiple choice (MedQA-USMLE in LinkBERT): JSONL {id?, sent1, sent2, ending0..ending{K-1}, label}.
// Sequences follow HF run_swag / LinkBERT src/mc/run_multiple_choice.py: for each choice i,
//   first  = sent1 (the context/question stem), second = `${sent2} ${ending_i}`,
//   [CLS] first [SEP] second [SEP], longest-first truncation to maxSeqLength.
// The head gives one score per (example, choice) row; softmax over the K choices; metric: accuracy.
import { Fields, jsonLines, uniqueId, newStats } from './io.js';
import { argmax, buildSequence, checkOutputLength, newFeatStats, oneFeaturePerExample } from './common.js';
import { accuracy } from './metrics/prf1.js';
import { bump, type Batch, type Loaded, type SourceRef, type TaskConfig, type TaskSpec } from './types.js';

export interface McExample {
  id: string;
  context: string;
  question: string;
  endings: string[];
  /** index of the correct ending */
  label: number;
  src: SourceRef;
}

export interface McFeature {
  /** K sequences, one per choice */
  choices: { inputIds: Int32Array; tokenTypeIds: Int32Array }[];
  label: number;
  exampleIndex: number;
}

export interface McBatch extends Batch {
  numChoices: number;
  /** batchSize = B*K rows: example b's choice k is row b*K+k */
  examples: number;
  /** (B) correct choice per example */
  labels: Int32Array;
}

/** (N*K) scores, row n*K+k = example n's choice k. */
export interface McOutputs {
  scores: ArrayLike<number>;
}

export interface McPrediction {
  choice: number;
  scores: number[];
}

export function loadMc(file: string, config?: TaskConfig): Loaded<McExample> {
  const stats = newStats(file);
  const examples: McExample[] = [];
  let K = config?.numChoices;
  const ids = new Map<string, number>(); // id -> line
  for (const { rec, line } of jsonLines(file, stats)) {
    const f = new Fields(rec, file, line);
    const endings: string[] = [];
    while (f.has(`ending${endings.length}`)) endings.push(f.str(`ending${endings.length}`));
    if (endings.length < 2) throw f.err(`ending${endings.length}`, `missing: need at least 2 endings (ending0, ending1, ...), found ${endings.length}`);
    K ??= endings.length;
    if (endings.length !== K) throw f.err(`ending${Math.min(endings.length, K)}`, `this line has ${endings.length} endings, expected ${K}`);
    const context = f.str('sent1');
    const question = f.has('sent2') ? f.str('sent2') : '';
    const label = f.int('label');
    if (label < 0 || label >= K) throw f.err('label', `label ${label} is not a choice index in [0, ${K - 1}]`);
    if (context.trim() === '' && question.trim() === '') {
      bump(stats.skipped, 'empty sent1 and sent2');
      continue;
    }
    examples.push({ id: uniqueId(f, ids) ?? `${examples.length}`, context, question, endings, label, src: { file, line } });
  }
  stats.examples = examples.length;
  return { examples, stats };
}

export const mcTask: TaskSpec<McExample, McFeature, McBatch, McOutputs, McPrediction> = {
  name: 'mc',
  headKind: 'mc',
  loadExamples: loadMc,
  buildConfig(train) {
    const k = train[0]?.endings.length;
    if (!k) throw new Error('mc: no training examples');
    return { type: 'mc', labels: [], numChoices: k };
  },
  numLabels: () => 1,
  featurize(examples, tok, config, opts) {
    const maxLen = opts?.maxSeqLength ?? 512;
    const stats = newFeatStats(examples.length);
    const features = examples.map((e, i): McFeature => {
      if (config.numChoices !== undefined && e.endings.length !== config.numChoices) {
        throw new Error(`${e.src.file}:${e.src.line}: ${e.endings.length} endings, the task has ${config.numChoices}`);
      }
      const a = tok.encode(e.context);
      const choices = e.endings.map((end) => buildSequence(tok.clsId, tok.sepId, a, tok.encode(`${e.question} ${end}`), maxLen, stats));
      return { choices, label: e.label, exampleIndex: i };
    });
    stats.features = features.length;
    return { features, stats };
  },
  collate(features, seqLen) {
    const K = features[0]?.choices.length ?? 0;
    const rows = features.flatMap((f) => {
      if (f.choices.length !== K) throw new Error(`mc collate: features with ${K} and ${f.choices.length} choices in one batch`);
      return f.choices;
    });
    const longest = rows.reduce((m, r) => Math.max(m, r.inputIds.length), 0);
    const T = seqLen ?? longest;
    if (longest > T) throw new Error(`collate: a choice has ${longest} tokens but seqLen is ${T}`);
    const n = rows.length;
    const inputIds = new Int32Array(n * T);
    const tokenTypeIds = new Int32Array(n * T);
    const attentionMask = new Int32Array(n * T);
    rows.forEach((r, i) => {
      inputIds.set(r.inputIds, i * T);
      tokenTypeIds.set(r.tokenTypeIds, i * T);
      attentionMask.fill(1, i * T, i * T + r.inputIds.length);
    });
    return {
      batchSize: n,
      seqLen: T,
      inputIds,
      tokenTypeIds,
      attentionMask,
      numChoices: K,
      examples: features.length,
      labels: Int32Array.from(features, (f) => f.label),
    };
  },
  decodePredictions(examples, features, outputs) {
    oneFeaturePerExample(examples.length, features, 'mc');
    const K = features[0]?.choices.length ?? 0;
    checkOutputLength('mc scores (N*K)', outputs.scores.length, features.length * K);
    return features.map((_, i) => ({
      choice: argmax(outputs.scores, i * K, K),
      scores: Array.from({ length: K }, (_, k) => Number(outputs.scores[i * K + k])),
    }));
  },
  score(examples, predictions) {
    return {
      main: 'accuracy',
      metrics: { accuracy: accuracy(examples.map((e) => e.label), predictions.map((p) => p.choice)) },
      notes: {},
    };
  },
  predictionLine: (e, p) => ({ id: e.id, label: e.label, prediction: p.choice, scores: p.scores }),
};
