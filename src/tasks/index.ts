// Downstream task registry: one TaskSpec per task type. The fine-tune loop (src/tasks/finetune.ts) works
// against `AnyTaskSpec`; the head it must build is given by `spec.headKind` (see HeadKind in types.ts for
// the output shapes) and its width by `spec.numLabels(config)`.
//
// Flow:
//   const spec = getTask('ner');
//   const train = spec.loadExamples(trainFile);                 // stats: formatReadStats(train.stats)
//   const config = spec.buildConfig(train.examples, { macro }); // save as task_config.json; readTaskConfig()
//   const dev = spec.loadExamples(devFile, config);              // labels outside the train set → error
//   const tr = spec.featurize(train.examples, tok, config, { maxSeqLength, train: true });
//   batch = spec.collate(tr.features.slice(i, i + B))            // inputIds/tokenTypeIds/attentionMask + labels
//   loss by headKind: span = (CE(start)+CE(end))/2 over T; cls = CE over C; multilabel = BCE-with-logits;
//                     regression = MSE; token = CE ignoring IGNORE_INDEX (-100); mc = CE over the K rows.
//   eval: run dev features in order, gather outputs (PaddedRows for per-token outputs), then
//     outputs = span {startLogits, endLogits, seqLen} | token {logits, seqLen} | cls/multilabel {logits}
//               | regression {predictions} | mc {scores}
//     preds = spec.decodePredictions(dev.examples, devFeatures, outputs, config)
//     metrics = spec.score(dev.examples, preds, config)     // metrics.metrics[metrics.main] is the headline
//     predictions.jsonl lines: spec.predictionLine(example, pred, config)
import { qaTask } from './qa.js';
import { seqclsTask } from './seqcls.js';
import { multilabelTask } from './multilabel.js';
import { regressionTask } from './regression.js';
import { nerTask } from './ner.js';
import { mcTask } from './mc.js';
import type { Batch, TaskSpec, TaskType } from './types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTaskSpec = TaskSpec<any, any, Batch, any, any>;

export const TASKS: Record<TaskType, AnyTaskSpec> = {
  qa: qaTask,
  seqcls: seqclsTask,
  multilabel: multilabelTask,
  regression: regressionTask,
  ner: nerTask,
  mc: mcTask,
};

export const TASK_TYPES = Object.keys(TASKS) as TaskType[];

export function getTask(name: string): AnyTaskSpec {
  const t = (TASKS as Record<string, AnyTaskSpec>)[name];
  if (!t) throw new Error(`unknown task type ${JSON.stringify(name)}; expected one of ${TASK_TYPES.join(', ')}`);
  return t;
}

export * from './types.js';
export { qaTask, loadQa, type QaExample, type QaAnswer, type SpanFeature, type SpanBatch, type SpanOutputs, type QaPrediction } from './qa.js';
export {
  seqclsTask,
  loadSeqcls,
  resolveNegativeLabel,
  type SeqclsExample,
  type ClsFeature,
  type ClsBatch,
  type ClsOutputs,
  type ClsPrediction,
} from './seqcls.js';
export {
  multilabelTask,
  loadMultilabel,
  type MultilabelExample,
  type MultilabelFeature,
  type MultilabelBatch,
  type MultilabelOutputs,
  type MultilabelPrediction,
} from './multilabel.js';
export { regressionTask, loadRegression, type RegressionExample, type RegressionFeature, type RegressionBatch, type RegressionOutputs } from './regression.js';
export {
  nerTask,
  loadNer,
  loadConll,
  loadNerJsonl,
  IGNORE_INDEX,
  type NerExample,
  type TokenFeature,
  type TokenBatch,
  type TokenOutputs,
  type NerPrediction,
} from './ner.js';
export { mcTask, loadMc, type McExample, type McFeature, type McBatch, type McOutputs, type McPrediction } from './mc.js';
export { longestFirst } from './common.js';
export { parseTaskConfig, readTaskConfig, PaddedRows } from './config.js';
export * as metrics from './metrics/index.js';
