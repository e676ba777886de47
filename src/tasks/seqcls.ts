// Sentence / sentence-pair classification (BLURB: ChemProt, DDI, GAD, PubMedQA, BioASQ; GLUE-style).
// Input: JSONL {id?, sentence, label} or {id?, sentence1, sentence2, label}; label string or number.
// Labels: sorted set from TRAIN (LinkBERT run_seqcls.py sorts `unique("label")`), stored in TaskConfig.
import { Fields, jsonLines, uniqueId, newStats, sortLabels } from './io.js';
import { argmax, buildSequence, checkOutputLength, newFeatStats, oneFeaturePerExample, padBatch } from './common.js';
import { accuracy, macroF1, relationPRF1 } from './metrics/prf1.js';
import {
  bump,
  type Batch,
  type BaseFeature,
  type ConfigOverrides,
  type FeaturizeOptions,
  type Loaded,
  type SourceRef,
  type TaskConfig,
  type TaskSpec,
  type TaskTokenizer,
  TaskDataError,
} from './types.js';

export interface TextExample {
  id: string;
  text: string;
  textPair?: string;
  src: SourceRef;
}

export interface SeqclsExample extends TextExample {
  label: string;
}

export interface ClsFeature extends BaseFeature {
  /** class id in config.labels */
  label: number;
}

export interface ClsBatch extends Batch {
  /** (B) class ids */
  labels: Int32Array;
}

/** (N, C) logits for all features in order, C = config.labels.length. */
export interface ClsOutputs {
  logits: ArrayLike<number>;
}

export interface ClsPrediction {
  label: string;
  labelId: number;
}

/**
 * Reads the text fields shared by seqcls / multilabel / regression. Returns null (and counts it) for an
 * example whose text is empty after trimming.
 */
export function readTextFields(f: Fields, counts: Record<string, number>, textKeys = ['sentence', 'text']): Omit<TextExample, 'src' | 'id'> | null {
  let text: string;
  let textPair: string | undefined;
  if (f.has('sentence1')) {
    text = f.str('sentence1');
    if (!f.has('sentence2')) throw f.err('sentence2', 'missing (sentence1 given, so a pair is expected)');
    textPair = f.str('sentence2');
  } else {
    const k = f.pick(...textKeys);
    if (!k) throw f.err(textKeys.join('|'), `missing: expected one of ${textKeys.join(', ')} or sentence1+sentence2`);
    text = f.str(k);
  }
  if (text.trim() === '' || (textPair !== undefined && textPair.trim() === '')) {
    bump(counts, 'empty text');
    return null;
  }
  return textPair !== undefined ? { text, textPair } : { text };
}

export function checkLabel(label: string, config: TaskConfig | undefined, src: SourceRef, field = 'label'): void {
  if (config && !config.labels.includes(label)) {
    throw new TaskDataError(src.file, src.line, field, `label ${JSON.stringify(label)} is not in the training label set [${config.labels.join(', ')}]`);
  }
}

const NEGATIVE_NAMES = /^(false|0|none|negative|other|no[-_ ]?relation|.*[-_:]false)$/i;

/** The negative class for relation mode: given explicitly, else the one label that looks negative. */
export function resolveNegativeLabel(labels: readonly string[], given?: string): string {
  if (given !== undefined) {
    if (!labels.includes(given)) throw new Error(`negative label ${JSON.stringify(given)} is not in the label set [${labels.join(', ')}]`);
    return given;
  }
  const cands = labels.filter((l) => NEGATIVE_NAMES.test(l));
  if (cands.length !== 1) {
    throw new Error(
      `relation mode: cannot tell the negative label among [${labels.join(', ')}]` +
        (cands.length ? ` (candidates: ${cands.join(', ')})` : '') + '; pass negativeLabel explicitly',
    );
  }
  return cands[0]!;
}

export function featurizeText<E extends TextExample, F extends BaseFeature>(
  examples: readonly E[],
  tok: TaskTokenizer,
  opts: FeaturizeOptions | undefined,
  label: (e: E) => Omit<F, keyof BaseFeature>,
) {
  const maxLen = opts?.maxSeqLength ?? 128;
  const stats = newFeatStats(examples.length);
  const features: F[] = examples.map((e, i) => {
    const a = tok.encode(e.text);
    const b = e.textPair !== undefined ? tok.encode(e.textPair) : null;
    const seq = buildSequence(tok.clsId, tok.sepId, a, b, maxLen, stats);
    return { ...seq, exampleIndex: i, ...label(e) } as F;
  });
  stats.features = features.length;
  return { features, stats };
}

export function loadSeqcls(file: string, config?: TaskConfig): Loaded<SeqclsExample> {
  const stats = newStats(file);
  const examples: SeqclsExample[] = [];
  const ids = new Map<string, number>(); // id -> line
  for (const { rec, line } of jsonLines(file, stats)) {
    const f = new Fields(rec, file, line);
    const t = readTextFields(f, stats.skipped);
    if (!t) continue;
    const src = { file, line };
    const label = f.label('label');
    checkLabel(label, config, src);
    examples.push({ id: uniqueId(f, ids) ?? `${examples.length}`, ...t, label, src });
  }
  stats.examples = examples.length;
  return { examples, stats };
}

export const seqclsTask: TaskSpec<SeqclsExample, ClsFeature, ClsBatch, ClsOutputs, ClsPrediction> = {
  name: 'seqcls',
  headKind: 'cls',
  loadExamples: loadSeqcls,
  buildConfig(train, overrides?: ConfigOverrides): TaskConfig {
    const labels = sortLabels(train.map((e) => e.label));
    if (labels.length < 2) throw new Error(`seqcls: training data has ${labels.length} distinct label(s); need at least 2`);
    const config: TaskConfig = { type: 'seqcls', labels };
    if (overrides?.relation) {
      config.relation = true;
      config.negativeLabel = resolveNegativeLabel(labels, overrides.negativeLabel);
    }
    return config;
  },
  numLabels: (config) => config.labels.length,
  featurize(examples, tok, config, opts) {
    const ids = new Map(config.labels.map((l, i) => [l, i]));
    return featurizeText<SeqclsExample, ClsFeature>(examples, tok, opts, (e) => {
      const id = ids.get(e.label);
      if (id === undefined) checkLabel(e.label, config, e.src);
      return { label: id! };
    });
  },
  collate(features, seqLen) {
    const b = padBatch(features, 0, seqLen);
    return { ...b, labels: Int32Array.from(features, (f) => f.label) };
  },
  decodePredictions(examples, features, outputs, config) {
    oneFeaturePerExample(examples.length, features, 'seqcls');
    const C = config.labels.length;
    checkOutputLength('seqcls logits (N*C)', outputs.logits.length, features.length * C);
    return features.map((_, i) => {
      const labelId = argmax(outputs.logits, i * C, C);
      return { labelId, label: config.labels[labelId]! };
    });
  },
  score(examples, predictions, config) {
    const ids = new Map(config.labels.map((l, i) => [l, i]));
    const gold = examples.map((e) => ids.get(e.label) ?? -1);
    const pred = predictions.map((p) => p.labelId);
    const metrics: Record<string, number> = { accuracy: accuracy(gold, pred), macro_f1: macroF1(gold, pred) };
    let main = 'accuracy';
    if (config.relation) {
      const neg = ids.get(resolveNegativeLabel(config.labels, config.negativeLabel))!;
      const r = relationPRF1(gold, pred, neg);
      Object.assign(metrics, { precision: r.precision, recall: r.recall, f1: r.f1 });
      main = 'f1';
    }
    return { main, metrics, notes: {} };
  },
  predictionLine(e, p) {
    return { id: e.id, label: e.label, prediction: p.label };
  },
};
