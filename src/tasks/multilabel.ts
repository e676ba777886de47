// Multi-label sentence classification (BLURB HoC). JSONL {id?, doc_id?, sentence|text, labels|label}
// where labels is either a list of label names or a fixed-width 0/1 vector (LinkBERT's HoC format:
// {"id": "<pmid>_s<k>", "sentence": ..., "label": [0,1,0,...]}).
//
// Evaluation follows LinkBERT src/seqcls/utils_hoc.py eval_hoc: a label is predicted when its logit > 0
// (sigmoid > 0.5, run_seqcls.py `preds > 0`); sentence predictions and gold vectors are aggregated per
// abstract by UNION, the abstract key being `doc_id` if given, else `id.split('_')[0]`; the headline is
// micro P/R/F1 over (abstract, label) cells. Sentence-level micro-F1 is reported alongside.
import { Fields, jsonLines, uniqueId, newStats, sortLabels } from './io.js';
import { checkOutputLength, oneFeaturePerExample, padBatch } from './common.js';
import { featurizeText, readTextFields, type TextExample } from './seqcls.js';
import { hocDocKey, hocEvaluate, multilabelMicroPRF1 } from './metrics/prf1.js';
import { TaskDataError, type Batch, type BaseFeature, type Loaded, type TaskConfig, type TaskSpec } from './types.js';

export interface MultilabelExample extends TextExample {
  docId: string;
  /** label names that are on; for 0/1-vector input the names are the indices ("0", "1", ...) */
  labels: string[];
  /** width of the 0/1 vector when the input used vectors */
  vectorWidth?: number;
}

export interface MultilabelFeature extends BaseFeature {
  /** (C) multi-hot */
  labels: Float32Array;
}

export interface MultilabelBatch extends Batch {
  numLabels: number;
  /** (B*C) multi-hot targets for BCE-with-logits */
  labels: Float32Array;
}

/** (N, C) logits, one row per feature. */
export interface MultilabelOutputs {
  logits: ArrayLike<number>;
}

export interface MultilabelPrediction {
  /** (C) 0/1 */
  bits: Uint8Array;
  labels: string[];
}

export function loadMultilabel(file: string, config?: TaskConfig): Loaded<MultilabelExample> {
  const stats = newStats(file);
  const examples: MultilabelExample[] = [];
  let width: number | undefined;
  let sawNames = false;
  const ids = new Map<string, number>(); // id -> line
  for (const { rec, line } of jsonLines(file, stats)) {
    const f = new Fields(rec, file, line);
    const t = readTextFields(f, stats.skipped);
    if (!t) continue;
    const field = f.pick('labels', 'label');
    if (!field) throw f.err('labels', 'missing (expected a list of label names or a 0/1 vector)');
    const raw = f.array(field);
    let labels: string[];
    let vectorWidth: number | undefined;
    if (raw.length > 0 && raw.every((x) => x === 0 || x === 1)) {
      if (sawNames) throw f.err(field, '0/1 vector given, but earlier lines use label names');
      vectorWidth = raw.length;
      width ??= vectorWidth;
      if (vectorWidth !== width) throw f.err(field, `0/1 vector has ${vectorWidth} entries, earlier lines have ${width}`);
      labels = raw.flatMap((x, j) => (x === 1 ? [String(j)] : []));
    } else {
      labels = f.strArray(field);
      sawNames = true;
      if (width !== undefined) throw f.err(field, 'label names given, but earlier lines use 0/1 vectors');
    }
    const id = uniqueId(f, ids) ?? `${examples.length}`;
    const docId = f.idLike('doc_id') ?? hocDocKey(id);
    const src = { file, line };
    if (config) {
      for (const l of labels) {
        if (!config.labels.includes(l)) {
          throw new TaskDataError(file, line, field, `label ${JSON.stringify(l)} is not in the training label set [${config.labels.join(', ')}]`);
        }
      }
      if (vectorWidth !== undefined && vectorWidth !== config.labels.length) {
        throw f.err(field, `0/1 vector has ${vectorWidth} entries, the training label set has ${config.labels.length}`);
      }
    }
    examples.push({ id, docId, ...t, labels: [...new Set(labels)], ...(vectorWidth !== undefined ? { vectorWidth } : {}), src });
  }
  stats.examples = examples.length;
  return { examples, stats };
}

export const multilabelTask: TaskSpec<MultilabelExample, MultilabelFeature, MultilabelBatch, MultilabelOutputs, MultilabelPrediction> = {
  name: 'multilabel',
  headKind: 'multilabel',
  loadExamples: loadMultilabel,
  buildConfig(train) {
    const w = train.find((e) => e.vectorWidth !== undefined)?.vectorWidth;
    // vectors: every position is a label even if never on in train; names: sorted union
    const labels = w !== undefined ? Array.from({ length: w }, (_, j) => String(j)) : sortLabels(train.flatMap((e) => e.labels));
    if (labels.length < 1) throw new Error('multilabel: training data has no labels');
    return { type: 'multilabel', labels };
  },
  numLabels: (config) => config.labels.length,
  featurize(examples, tok, config, opts) {
    const ids = new Map(config.labels.map((l, i) => [l, i]));
    return featurizeText<MultilabelExample, MultilabelFeature>(examples, tok, opts, (e) => {
      const v = new Float32Array(config.labels.length);
      for (const l of e.labels) {
        const j = ids.get(l);
        if (j === undefined) throw new TaskDataError(e.src.file, e.src.line, 'labels', `label ${JSON.stringify(l)} is not in the training label set`);
        v[j] = 1;
      }
      return { labels: v };
    });
  },
  collate(features, seqLen) {
    const b = padBatch(features, 0, seqLen);
    const C = features[0]?.labels.length ?? 0;
    const labels = new Float32Array(features.length * C);
    features.forEach((f, i) => labels.set(f.labels, i * C));
    return { ...b, numLabels: C, labels };
  },
  decodePredictions(examples, features, outputs, config) {
    oneFeaturePerExample(examples.length, features, 'multilabel');
    const C = config.labels.length;
    checkOutputLength('multilabel logits (N*C)', outputs.logits.length, features.length * C);
    return features.map((_, i) => {
      const bits = new Uint8Array(C);
      for (let j = 0; j < C; j++) bits[j] = outputs.logits[i * C + j]! > 0 ? 1 : 0;
      return { bits, labels: config.labels.filter((_, j) => bits[j] === 1) };
    });
  },
  score(examples, predictions, config) {
    const ids = new Map(config.labels.map((l, i) => [l, i]));
    const gold = examples.map((e) => {
      const v = new Uint8Array(config.labels.length);
      for (const l of e.labels) v[ids.get(l)!] = 1;
      return v;
    });
    const pred = predictions.map((p) => p.bits);
    const doc = hocEvaluate(gold, pred, examples.map((e) => e.docId));
    const sent = multilabelMicroPRF1(gold, pred);
    return {
      main: 'f1',
      metrics: { precision: doc.precision, recall: doc.recall, f1: doc.f1, documents: doc.documents, sentence_f1: sent.f1 },
      notes: {},
    };
  },
  predictionLine: (e, p) => ({ id: e.id, doc_id: e.docId, labels: e.labels, predictions: p.labels }),
};
