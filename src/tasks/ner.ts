// Named-entity recognition / sequence labelling (BLURB: BC5-chem, BC5-disease, NCBI-disease, BC2GM,
// JNLPBA; PICO uses macro-F1). Input:
//   CoNLL TSV: `token<TAB>...<TAB>tag` per line (first column = token, last = tag), blank line between
//   sentences, `-DOCSTART-` lines skipped. A line without a tab is accepted only if it splits into
//   exactly two space-separated fields (otherwise the token/tag split is ambiguous → error).
//   JSONL: {id?, tokens: [..], ner_tags: [..] (tag strings)}.
// Features (LinkBERT src/tokcls/run_ner.py tokenize_and_align_labels): the word's label goes on its FIRST
// subword, -100 on the others and on [CLS]/[SEP]. Words cut by truncation (or with no subword at all) are
// predicted 'O' and scored against the full gold sequence; both are counted.
import { Fields, jsonLines, uniqueId, newStats, readText, sortLabels } from './io.js';
import { argmax, checkOutputLength, newFeatStats, oneFeaturePerExample, padBatch } from './common.js';
import { formatSeqevalReport, seqevalEvaluate } from './metrics/seqeval.js';
import {
  bump,
  TaskDataError,
  type Batch,
  type BaseFeature,
  type ConfigOverrides,
  type Loaded,
  type ReadStats,
  type SourceRef,
  type TaskConfig,
  type TaskMetrics,
  type TaskSpec,
} from './types.js';

export const IGNORE_INDEX = -100;

export interface NerExample {
  id: string;
  tokens: string[];
  tags: string[];
  /** file and line of the first token */
  src: SourceRef;
}

export interface TokenFeature extends BaseFeature {
  /** (T) label id on each word's first subword, IGNORE_INDEX elsewhere */
  labels: Int32Array;
  /** (T) word index of each position, -1 for [CLS]/[SEP] */
  wordIds: Int32Array;
  /** words whose first subword is inside the sequence */
  coveredWords: number;
}

export interface TokenBatch extends Batch {
  /** (B*T) label ids, IGNORE_INDEX on non-first subwords, specials and padding */
  labels: Int32Array;
}

/** (N, T, C) logits with T = `seqLen` (the padded length used at collate time), C = config.labels.length. */
export interface TokenOutputs {
  logits: ArrayLike<number>;
  seqLen: number;
}

export interface NerPrediction {
  tags: string[];
  /** words predicted 'O' because truncation (or an empty tokenisation) left them without a subword */
  uncoveredWords: number;
}

// IOB1/IOB2/IOE/IOBES prefixes: what seqeval's default get_entities understands (BILOU's U-/L- it does not).
const TAG_RE = /^(O|[BIES]-.+)$/;

function checkTag(tag: string, file: string, line: number, field: string, config?: TaskConfig, lineWord = 'line'): void {
  if (!TAG_RE.test(tag)) {
    throw new TaskDataError(file, line, field, `tag ${JSON.stringify(tag)} is not O or B-/I-/E-/S-<type>`, lineWord);
  }
  if (config && !config.labels.includes(tag)) {
    throw new TaskDataError(file, line, field, `tag ${JSON.stringify(tag)} is not in the training label set [${config.labels.join(', ')}]`, lineWord);
  }
}

export function loadConll(file: string, config?: TaskConfig): Loaded<NerExample> {
  const stats: ReadStats = newStats(file);
  const examples: NerExample[] = [];
  const lines = readText(file).split(/\r?\n/);
  let tokens: string[] = [];
  let tags: string[] = [];
  let first = 0;
  const flush = () => {
    if (tokens.length > 0) {
      examples.push({ id: String(examples.length), tokens, tags, src: { file, line: first } });
      tokens = [];
      tags = [];
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const ln = i + 1;
    if (raw.trim() === '') {
      flush();
      continue;
    }
    stats.records++;
    if (raw.trimStart().startsWith('-DOCSTART-')) {
      flush();
      bump(stats.skipped, '-DOCSTART- lines');
      continue;
    }
    let cols: string[];
    if (raw.includes('\t')) {
      cols = raw.split('\t');
    } else {
      cols = raw.trim().split(/ +/);
      if (cols.length !== 2) {
        throw new TaskDataError(file, ln, undefined, `expected "token<TAB>tag"; a space-separated line must have exactly 2 fields, got ${cols.length}`);
      }
    }
    const token = cols[0]!;
    if (cols.length < 2) throw new TaskDataError(file, ln, 'tag', 'missing (line has a token but no tag column)');
    const tag = cols[cols.length - 1]!.trim();
    if (token.trim() === '') throw new TaskDataError(file, ln, 'token', 'empty token');
    checkTag(tag, file, ln, 'tag', config);
    if (tokens.length === 0) first = ln;
    tokens.push(token);
    tags.push(tag);
  }
  flush();
  stats.examples = examples.length;
  return { examples, stats };
}

export function loadNerJsonl(file: string, config?: TaskConfig): Loaded<NerExample> {
  const stats = newStats(file);
  const examples: NerExample[] = [];
  const ids = new Map<string, number>(); // id -> line
  for (const { rec, line } of jsonLines(file, stats)) {
    const f = new Fields(rec, file, line);
    const tokens = f.strArray('tokens');
    const tagField = f.pick('ner_tags', 'tags', 'labels') ?? 'ner_tags';
    const rawTags = f.array(tagField);
    rawTags.forEach((t, j) => {
      if (typeof t !== 'string') {
        throw f.err(`${tagField}[${j}]`, `expected a tag string such as "B-Disease", got ${typeof t} (integer tag ids need their names)`);
      }
    });
    const tags = rawTags as string[];
    if (tags.length !== tokens.length) throw f.err(tagField, `${tags.length} tags for ${tokens.length} tokens`);
    if (tokens.length === 0) {
      bump(stats.skipped, 'empty sentences');
      continue;
    }
    tags.forEach((t, j) => checkTag(t, file, line, `${tagField}[${j}]`, config));
    examples.push({ id: uniqueId(f, ids) ?? String(examples.length), tokens, tags, src: { file, line } });
  }
  stats.examples = examples.length;
  return { examples, stats };
}

/** .jsonl / .json → JSONL reader; anything else (.tsv, .txt, .conll, .iob2) → CoNLL TSV. */
export function loadNer(file: string, config?: TaskConfig): Loaded<NerExample> {
  return /\.jsonl?$/i.test(file) ? loadNerJsonl(file, config) : loadConll(file, config);
}

export const nerTask: TaskSpec<NerExample, TokenFeature, TokenBatch, TokenOutputs, NerPrediction> = {
  name: 'ner',
  headKind: 'token',
  loadExamples: loadNer,
  buildConfig(train, overrides?: ConfigOverrides) {
    const labels = sortLabels(train.flatMap((e) => e.tags));
    if (labels.length < 2) throw new Error(`ner: training data has ${labels.length} distinct tag(s); need at least 2`);
    return { type: 'ner', labels, ...(overrides?.macro ? { macro: true } : {}) };
  },
  numLabels: (config) => config.labels.length,
  featurize(examples, tok, config, opts) {
    const maxLen = opts?.maxSeqLength ?? 128;
    const budget = maxLen - 2;
    if (budget < 1) throw new Error(`maxSeqLength ${maxLen} leaves no room for tokens`);
    const ids = new Map(config.labels.map((l, i) => [l, i]));
    const stats = newFeatStats(examples.length);
    const features = examples.map((e, ei): TokenFeature => {
      const enc = tok.encodeWords(e.tokens);
      let n = enc.ids.length;
      if (n > budget) {
        n = budget;
        bump(stats.truncated, 'sentences truncated to --max-seq-len');
      }
      const T = n + 2;
      const inputIds = new Int32Array(T);
      const labels = new Int32Array(T).fill(IGNORE_INDEX);
      const wordIds = new Int32Array(T).fill(-1);
      inputIds[0] = tok.clsId;
      inputIds[T - 1] = tok.sepId;
      let covered = 0;
      let prev = -1;
      for (let p = 0; p < n; p++) {
        const w = enc.wordIndex[p]!;
        inputIds[p + 1] = enc.ids[p]!;
        wordIds[p + 1] = w;
        if (w !== prev) {
          const tag = e.tags[w];
          if (tag === undefined) throw new Error(`ner featurize: tokenizer returned word index ${w} for a ${e.tokens.length}-word sentence`);
          const id = ids.get(tag);
          if (id === undefined) throw new TaskDataError(e.src.file, e.src.line, 'tag', `tag ${JSON.stringify(tag)} is not in the training label set`);
          labels[p + 1] = id;
          covered++;
        }
        prev = w;
      }
      if (covered < e.tokens.length) {
        bump(stats.truncated, 'words without a subword in the sequence (predicted O)', e.tokens.length - covered);
      }
      return { inputIds, tokenTypeIds: new Int32Array(T), labels, wordIds, coveredWords: covered, exampleIndex: ei };
    });
    stats.features = features.length;
    return { features, stats };
  },
  collate(features, seqLen) {
    const b = padBatch(features, 0, seqLen);
    const labels = new Int32Array(b.batchSize * b.seqLen).fill(IGNORE_INDEX);
    features.forEach((f, i) => labels.set(f.labels, i * b.seqLen));
    return { ...b, labels };
  },
  decodePredictions(examples, features, outputs, config) {
    oneFeaturePerExample(examples.length, features, 'ner');
    const C = config.labels.length;
    const T = outputs.seqLen;
    checkOutputLength('token logits (N*T*C)', outputs.logits.length, features.length * T * C);
    return features.map((f, i) => {
      const e = examples[i]!;
      const tags = new Array<string>(e.tokens.length).fill('O');
      const seen = new Uint8Array(e.tokens.length);
      if (f.inputIds.length > T) throw new Error(`ner decode: feature ${i} has ${f.inputIds.length} tokens but outputs.seqLen is ${T}`);
      for (let p = 0; p < f.inputIds.length; p++) {
        const w = f.wordIds[p]!;
        if (w < 0 || seen[w]) continue; // specials and non-first subwords
        seen[w] = 1;
        tags[w] = config.labels[argmax(outputs.logits, (i * T + p) * C, C)]!;
      }
      return { tags, uncoveredWords: e.tokens.length - f.coveredWords };
    });
  },
  score(examples, predictions, config): TaskMetrics {
    const r = seqevalEvaluate(
      examples.map((e) => e.tags),
      predictions.map((p) => p.tags),
    );
    const metrics: Record<string, number> = {
      precision: r.precision,
      recall: r.recall,
      f1: r.f1,
      accuracy: r.accuracy,
      macro_precision: r.macroPrecision,
      macro_recall: r.macroRecall,
      macro_f1: r.macroF1,
    };
    for (const [type, p] of Object.entries(r.perType)) {
      metrics[`${type}_precision`] = p.precision;
      metrics[`${type}_recall`] = p.recall;
      metrics[`${type}_f1`] = p.f1;
      metrics[`${type}_number`] = p.support;
    }
    const uncovered = predictions.reduce((s, p) => s + p.uncoveredWords, 0);
    return {
      main: config.macro ? 'macro_f1' : 'f1',
      metrics,
      notes: uncovered ? { 'words predicted O (truncated or no subword)': uncovered } : {},
      report: formatSeqevalReport(r),
    };
  },
  predictionLine: (e, p) => ({ tokens: e.tokens, labels: e.tags, predictions: p.tags }),
};
