// evaluate.ts: pretraining evaluation on the validation split: MLM loss, accuracy and perplexity;
// DRP accuracy overall and per class, with a confusion matrix.
import type { BertModel } from '../model/bert.js';
import { iterateBatches, type ShardDataset } from '../data/batch.js';
import { DRP_LABELS } from '../data/shards/format.js';

export interface PretrainEval {
  mlm_loss: number;
  mlm_accuracy: number;
  mlm_perplexity: number;
  mlm_tokens: number;
  drp_loss: number;
  drp_accuracy: number;
  /** mean of the per-class accuracies (macro recall): chance is 1/K whatever the label mix, which
   * matters because a validation split's label mix depends on how many links stay inside it */
  drp_balanced_accuracy: number;
  drp_per_class: Record<string, { accuracy: number; count: number }>;
  /** confusion[gold][pred] over contiguous, random, linked */
  drp_confusion: number[][];
  loss: number;
  sequences: number;
}

export function evaluatePretrain(model: BertModel, ds: ShardDataset, opts: { maxBatches?: number; seed?: number } = {}): PretrainEval {
  const K = model.config.numDrpLabels;
  const conf = Array.from({ length: K }, () => new Array<number>(K).fill(0));
  let mlmSum = 0, mlmCorrect = 0, mlmCount = 0, drpSum = 0, drpCorrect = 0, seqs = 0, batches = 0;
  for (const batch of iterateBatches(ds, { batchSize: model.B, seqLen: model.T, seed: opts.seed ?? 0, prefetch: 0 })) {
    if (opts.maxBatches !== undefined && batches >= opts.maxBatches) break;
    model.setInputs(batch);
    model.forwardPretrain(false, 0, { withGrad: false });
    const o = model.readPretrainOutputs();
    mlmSum += o.mlmLoss * o.mlmCount; mlmCorrect += o.mlmCorrect; mlmCount += o.mlmCount;
    drpSum += o.drpLoss * o.drpCount; drpCorrect += o.drpCorrect; seqs += o.drpCount;
    for (let b = 0; b < batch.batchSize; b++) conf[batch.drpLabels[b]!]![o.drpPred[b]!]!++;
    batches++;
  }
  const perClass: PretrainEval['drp_per_class'] = {};
  for (let k = 0; k < K; k++) {
    const row = conf[k]!;
    const n = row.reduce((a, b) => a + b, 0);
    perClass[DRP_LABELS[k] ?? String(k)] = { accuracy: n ? row[k]! / n : 0, count: n };
  }
  const present = Object.values(perClass).filter((c) => c.count > 0);
  const balanced = present.length ? present.reduce((a, c) => a + c.accuracy, 0) / present.length : 0;
  const mlmLoss = mlmCount ? mlmSum / mlmCount : 0;
  const drpLoss = seqs ? drpSum / seqs : 0;
  return {
    mlm_loss: mlmLoss, mlm_accuracy: mlmCount ? mlmCorrect / mlmCount : 0, mlm_perplexity: Math.exp(mlmLoss), mlm_tokens: mlmCount,
    drp_loss: drpLoss, drp_accuracy: seqs ? drpCorrect / seqs : 0, drp_balanced_accuracy: balanced, drp_per_class: perClass, drp_confusion: conf,
    loss: mlmLoss + drpLoss, sequences: seqs,
  };
}
