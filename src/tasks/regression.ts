// Sentence-pair regression (BLURB BIOSSES): JSONL {id?, sentence1, sentence2, label: number}.
// Metric: Pearson r (LinkBERT run_seqcls.py metric "pearsonr"), plus MSE.
import { Fields, jsonLines, uniqueId, newStats } from './io.js';
import { checkOutputLength, oneFeaturePerExample, padBatch } from './common.js';
import { featurizeText, readTextFields, type TextExample } from './seqcls.js';
import { meanSquaredError, pearsonReport } from './metrics/pearson.js';
import type { Batch, BaseFeature, Loaded, TaskConfig, TaskMetrics, TaskSpec } from './types.js';

export interface RegressionExample extends TextExample {
  label: number;
}

export interface RegressionFeature extends BaseFeature {
  label: number;
}

export interface RegressionBatch extends Batch {
  /** (B) targets */
  labels: Float32Array;
}

/** (N) predicted values, one per feature. */
export interface RegressionOutputs {
  predictions: ArrayLike<number>;
}

export function loadRegression(file: string): Loaded<RegressionExample> {
  const stats = newStats(file);
  const examples: RegressionExample[] = [];
  const ids = new Map<string, number>(); // id -> line
  for (const { rec, line } of jsonLines(file, stats)) {
    const f = new Fields(rec, file, line);
    const t = readTextFields(f, stats.skipped);
    if (!t) continue;
    examples.push({ id: uniqueId(f, ids) ?? `${examples.length}`, ...t, label: f.num('label'), src: { file, line } });
  }
  stats.examples = examples.length;
  return { examples, stats };
}

export const regressionTask: TaskSpec<RegressionExample, RegressionFeature, RegressionBatch, RegressionOutputs, number> = {
  name: 'regression',
  headKind: 'regression',
  loadExamples: (file) => loadRegression(file),
  buildConfig: () => ({ type: 'regression', labels: [] }),
  numLabels: () => 1,
  featurize: (examples, tok, _config, opts) =>
    featurizeText<RegressionExample, RegressionFeature>(examples, tok, opts, (e) => ({ label: e.label })),
  collate(features, seqLen) {
    return { ...padBatch(features, 0, seqLen), labels: Float32Array.from(features, (f) => f.label) };
  },
  decodePredictions(examples, features, outputs) {
    oneFeaturePerExample(examples.length, features, 'regression');
    checkOutputLength('regression predictions (N)', outputs.predictions.length, features.length);
    return Array.from({ length: features.length }, (_, i) => Number(outputs.predictions[i]));
  },
  score(examples, predictions): TaskMetrics {
    const gold = examples.map((e) => e.label);
    const r = pearsonReport(gold, predictions);
    return {
      main: 'pearson',
      metrics: { pearson: r.pearson, mse: meanSquaredError(gold, predictions) },
      notes: r.undefined ? { 'pearson undefined (constant series), reported as 0': 1 } : {},
    };
  },
  predictionLine: (e, p) => ({ id: e.id, label: e.label, prediction: p }),
};
