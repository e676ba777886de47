// Shared types for downstream tasks: what the readers produce, what the fine-tune loop batches, and
// which head outputs each task expects back for decoding.

/**
 * The subset of src/data/tokenizer WordPieceTokenizer that task featurisation needs. Structural, so the
 * real tokenizer satisfies it without an import cycle (and tests can pass a tiny one).
 */
export interface TaskTokenizer {
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  /** ids without special tokens */
  encode(text: string): Int32Array;
  /** offsets: 2n [start,end) UTF-16 offsets into `text` */
  encodeWithOffsets(text: string): { ids: Int32Array; offsets: Int32Array };
  /** pre-split words; wordIndex[i] = index of the word that produced ids[i] */
  encodeWords(words: string[]): { ids: Int32Array; wordIndex: Int32Array };
}

export type TaskType = 'qa' | 'seqcls' | 'multilabel' | 'regression' | 'ner' | 'mc';

/**
 * What the head must output, per collated batch of B features with padded length T:
 *  span:       startLogits (B,T), endLogits (B,T)            → SpanOutputs
 *  cls:        logits (B,C), softmax cross-entropy             → ClsOutputs
 *  multilabel: logits (B,C), independent sigmoid + BCE         → MultilabelOutputs
 *  regression: one value per row (B), MSE                      → RegressionOutputs
 *  token:      logits (B,T,C), CE ignoring label -100          → TokenOutputs
 *  mc:         one score per choice row (B*K), CE over K       → McOutputs
 */
export type HeadKind = 'span' | 'cls' | 'multilabel' | 'regression' | 'token' | 'mc';

export interface SourceRef {
  file: string;
  /** 1-based line in the file (for SQuAD JSON: the 1-based index of the question in file order) */
  line: number;
}

/** Bad input: always names the file, the line (or record) and, when known, the field. */
export class TaskDataError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string | undefined,
    detail: string,
    lineWord = 'line',
  ) {
    super(`${file}:${lineWord === 'line' ? '' : lineWord + ' '}${line}: ${field !== undefined ? `field "${field}": ` : ''}${detail}`);
    this.name = 'TaskDataError';
  }
}

/** Named counters for anything skipped, truncated or repaired. */
export type Counts = Record<string, number>;

export function bump(c: Counts, key: string, n = 1): void {
  c[key] = (c[key] ?? 0) + n;
}

export interface ReadStats {
  file: string;
  /** physical lines (JSONL/TSV) or questions (SQuAD JSON) seen */
  records: number;
  examples: number;
  skipped: Counts;
  /** kept but noteworthy (e.g. QA answer_start mismatch kept for evaluation) */
  notes: Counts;
  /** the first few places (e.g. `"q7" at line 12`) behind a notes or skipped key, so they can be found */
  where?: Record<string, string[]>;
}

export interface Loaded<E> {
  examples: E[];
  stats: ReadStats;
}

export interface FeaturizeStats {
  examples: number;
  features: number;
  /** examples that produced no feature, by reason */
  skipped: Counts;
  /** truncations and other lossy steps, by kind */
  truncated: Counts;
}

export function formatCounts(c: Counts): string {
  const parts = Object.entries(c)
    .filter(([, v]) => v > 0)
    // phrases read as "282 sentences truncated to --max-seq-len"; bare keys as "no_answer=3"
    .map(([k, v]) => (k.includes(' ') ? `${v} ${k}` : `${k}=${v}`));
  return parts.length ? parts.join(', ') : 'none';
}

export function formatReadStats(s: ReadStats): string {
  const at = (c: Counts): string =>
    formatCounts(c) + Object.keys(c).filter((k) => s.where?.[k]?.length).map((k) => ` (${k}: in ${s.where![k]!.join(', ')}${s.where![k]!.length < c[k]! ? ', …' : ''})`).join('');
  return `${s.file}: ${s.examples} examples from ${s.records} records; skipped: ${at(s.skipped)}; notes: ${at(s.notes)}`;
}

export function formatFeaturizeStats(s: FeaturizeStats): string {
  return `${s.features} features from ${s.examples} examples; skipped: ${formatCounts(s.skipped)}; truncated: ${formatCounts(s.truncated)}`;
}

/**
 * Per-run task configuration, built from the TRAIN split and stored with the fine-tuned checkpoint so that
 * dev/test use the same label ids.
 */
export interface TaskConfig {
  type: TaskType;
  /** sorted label names (seqcls, multilabel, ner); [] for qa / regression / mc */
  labels: string[];
  /** seqcls: relation mode (ChemProt/DDI/GAD): main metric is micro P/R/F1 ignoring `negativeLabel` */
  relation?: boolean;
  negativeLabel?: string;
  /** ner: main metric is macro-F1 over entity types (PICO) instead of micro-F1 */
  macro?: boolean;
  /** mc: number of choices per example */
  numChoices?: number;
}

export interface ConfigOverrides {
  relation?: boolean;
  negativeLabel?: string;
  macro?: boolean;
}

export interface FeaturizeOptions {
  /** default 384 for qa, 128 otherwise; 512 for mc in LinkBERT's MedQA scripts */
  maxSeqLength?: number;
  /** training features: QA examples whose answer_start does not match the context are skipped */
  train?: boolean;
  /** qa: overlap between consecutive windows, in tokens (HF run_qa `doc_stride`, default 128) */
  docStride?: number;
  /** qa: question truncated to this many tokens (default 64) */
  maxQueryLength?: number;
}

export interface DecodeOptions {
  /** qa: candidates per side (default 20) */
  nBest?: number;
  /** qa: longest answer in tokens (default 30) */
  maxAnswerLength?: number;
}

export interface BaseFeature {
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  /** index into the examples array this feature came from */
  exampleIndex: number;
}

export interface Batch {
  batchSize: number;
  /** padded length T; every row of inputIds has T entries */
  seqLen: number;
  /** (B*T) row-major */
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  /** 1 for real tokens, 0 for padding */
  attentionMask: Int32Array;
}

export interface TaskMetrics {
  /** name of the headline metric in `metrics` (what model selection should maximise) */
  main: string;
  metrics: Record<string, number>;
  /** counters that affected scoring (e.g. NER words predicted 'O' because they were truncated) */
  notes: Counts;
  /** optional human-readable report (e.g. seqeval per-type table) */
  report?: string;
}

export interface TaskSpec<E, F, B extends Batch, O, P> {
  readonly name: TaskType;
  readonly headKind: HeadKind;
  /** Reads a file; with `config`, labels outside config.labels are an error naming file, line and label. */
  loadExamples(file: string, config?: TaskConfig): Loaded<E>;
  /** Builds the label set etc. from TRAIN examples. */
  buildConfig(trainExamples: readonly E[], overrides?: ConfigOverrides): TaskConfig;
  /** Output width of the head: classes (cls, token, multilabel), 1 (regression, mc score), 2 (span start/end). */
  numLabels(config: TaskConfig): number;
  featurize(
    examples: readonly E[],
    tokenizer: TaskTokenizer,
    config: TaskConfig,
    opts?: FeaturizeOptions,
  ): { features: F[]; stats: FeaturizeStats };
  /** Pads to `seqLen` (default: longest feature in the batch); throws if a feature is longer. */
  collate(features: readonly F[], seqLen?: number): B;
  /** outputs cover ALL features in order; returns one prediction per example, in example order. */
  decodePredictions(
    examples: readonly E[],
    features: readonly F[],
    outputs: O,
    config: TaskConfig,
    opts?: DecodeOptions,
  ): P[];
  score(examples: readonly E[], predictions: readonly P[], config: TaskConfig): TaskMetrics;
  /** One JSON object for predictions.jsonl. */
  predictionLine(example: E, prediction: P, config: TaskConfig): Record<string, unknown>;
}
