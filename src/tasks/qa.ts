// Extractive QA (SQuAD v1.1, MRQA, BioASQ-style) following HF run_qa / LinkBERT src/qa/run_qa.py + utils_qa.py.
// Inputs (auto-detected):
//   SQuAD v1.1 JSON:   {data: [{paragraphs: [{context, qas: [{id, question, answers: [{text, answer_start}]}]}]}]}
//   LinkBERT JSONL:    {id, question, context, answers: {answer_start: [..], text: [..]}}  (also answers as [{text, answer_start}])
//   MRQA original:     header line {"header": ...}, then {context, qas: [{qid, question, answers: [..],
//                      detected_answers: [{text, char_spans: [[start, end_inclusive]]}]}]}
// Features: [CLS] question [SEP] context-window [SEP]; the question is cut to maxQueryLength (64) tokens;
// the context is split into windows that overlap by docStride (128) tokens, as HF's tokenizer `stride`
// does in run_qa.py. Training label = first answer's token span, or (0,0) = [CLS] when the answer is not
// fully inside the window. An answer whose answer_start does not point at its text in the context
// (HF/BERT "Could not find answer") is counted; such examples are skipped for training but still evaluated
// against all their gold answer texts.
// Post-processing (utils_qa.postprocess_qa_predictions, SQuAD v1 = no null answer): per window the nBest
// (20) highest start and end logits; spans must lie in the context, end >= start, length <= maxAnswerLength
// (30) tokens; score = start + end logit; the best span over all windows of the example wins and is mapped
// back to its character span of the original context.
import { Fields, jsonLines, newStats, readText, type JsonRecord } from './io.js';
import { checkOutputLength, newFeatStats, padBatch } from './common.js';
import { squadEvaluate } from './metrics/squad.js';
import { bump, TaskDataError, type Batch, type BaseFeature, type Loaded, type ReadStats, type SourceRef, type TaskMetrics, type TaskSpec } from './types.js';

export interface QaAnswer {
  text: string;
  /** character offset of the answer in the context (UTF-16 code units, as JS and Python's str on BMP text) */
  start: number;
}

export interface QaExample {
  id: string;
  question: string;
  context: string;
  /** gold answers; answers[0] is the training target */
  answers: QaAnswer[];
  /** answers[0].start does not point at answers[0].text in the context */
  answerMismatch: boolean;
  src: SourceRef;
}

export interface SpanFeature extends BaseFeature {
  /** training target token positions; 0 (= [CLS]) when the answer is not inside this window */
  startPosition: number;
  endPosition: number;
  /** (2T) [start,end) character offsets into the example's context for context tokens, -1 elsewhere */
  offsets: Int32Array;
}

export interface SpanBatch extends Batch {
  /** (B) */
  startPositions: Int32Array;
  endPositions: Int32Array;
}

/** (N, T) start and end logits for all features in order; T = `seqLen` used at collate time. */
export interface SpanOutputs {
  startLogits: ArrayLike<number>;
  endLogits: ArrayLike<number>;
  seqLen: number;
}

export interface QaPrediction {
  text: string;
  /** character span in the context, [start, end); -1 when no valid span was found (text '') */
  start: number;
  end: number;
  score: number;
}

const MISMATCH = 'answer_start does not match the answer text';
/** Mismatched examples named in the read stats' `where`, so a user can find and fix them. */
const NAMED_MISMATCHES = 3;

/** Per-load state of addExample: seen ids. */
interface LoadState {
  ids: Map<string, SourceRef>;
}

function addExample(
  out: QaExample[],
  st: LoadState,
  stats: ReadStats,
  f: Fields,
  id: string,
  question: string,
  context: string,
  answers: QaAnswer[],
): void {
  const src = { file: f.file, line: f.line };
  if (question.trim() === '' || context.trim() === '') {
    bump(stats.skipped, 'empty question or context');
    return;
  }
  if (answers.length === 0) throw f.err('answers', 'no answers (SQuAD v1.1-style QA needs at least one gold answer)');
  if (SURROGATE.test(context)) {
    // Python (SQuAD/MRQA producers) counts answer_start in code points, JS strings index UTF-16 units:
    // they differ after any non-BMP character. Convert, but keep a raw start that already matches.
    bump(stats.notes, 'contexts with non-BMP characters (answer_start converted from code points)');
    answers = answers.map((a) => {
      const conv = codePointToUtf16(context, a.start);
      return context.slice(conv, conv + a.text.length) === a.text || context.slice(a.start, a.start + a.text.length) !== a.text
        ? { text: a.text, start: conv }
        : a;
    });
  }
  const prev = st.ids.get(id);
  if (prev) throw f.err('id', `duplicate question id ${JSON.stringify(id)} (first at ${prev.file}:${prev.line})`);
  st.ids.set(id, src);
  let mism = 0;
  for (const a of answers) if (context.slice(a.start, a.start + a.text.length) !== a.text) mism++;
  if (mism) {
    const key = `${MISMATCH} (answers)`;
    bump(stats.notes, key, mism);
    const where = ((stats.where ??= {})[key] ??= []);
    if (where.length < NAMED_MISMATCHES) where.push(`${JSON.stringify(id)} at ${f.lineWord} ${f.line}`);
  }
  const answerMismatch = context.slice(answers[0]!.start, answers[0]!.start + answers[0]!.text.length) !== answers[0]!.text;
  if (answerMismatch) bump(stats.notes, 'examples whose first answer mismatches (skipped for training, still evaluated)');
  out.push({ id, question, context, answers, answerMismatch, src });
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** UTF-16 index of the cp-th code point of s (s.length when past the end). */
export function codePointToUtf16(s: string, cp: number): number {
  let i = 0;
  for (let k = 0; k < cp && i < s.length; k++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
  }
  return i;
}

function answerStart(f: Fields, field: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw f.err(field, `expected a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

function parseAnswers(f: Fields): QaAnswer[] {
  const v = f.rec['answers'];
  if (v === undefined || v === null) throw f.err('answers', 'missing');
  if (Array.isArray(v)) {
    return v.map((a, j) => {
      const af = new Fields(a as JsonRecord, f.file, f.line, f.lineWord);
      if (a === null || typeof a !== 'object') throw f.err(`answers[${j}]`, 'expected {text, answer_start}');
      const text = af.rec['text'];
      if (typeof text !== 'string') throw f.err(`answers[${j}].text`, 'expected a string');
      return { text, start: answerStart(f, `answers[${j}].answer_start`, af.rec['answer_start']) };
    });
  }
  if (typeof v === 'object') {
    const o = v as JsonRecord;
    const starts = o['answer_start'];
    const texts = o['text'];
    if (!Array.isArray(starts)) throw f.err('answers.answer_start', 'expected an array');
    if (!Array.isArray(texts)) throw f.err('answers.text', 'expected an array');
    if (starts.length !== texts.length) throw f.err('answers', `${starts.length} answer_start values for ${texts.length} texts`);
    return texts.map((t, j) => {
      if (typeof t !== 'string') throw f.err(`answers.text[${j}]`, 'expected a string');
      return { text: t, start: answerStart(f, `answers.answer_start[${j}]`, starts[j]) };
    });
  }
  throw f.err('answers', 'expected a list of {text, answer_start} or {answer_start: [...], text: [...]}');
}

function loadSquadJson(file: string, doc: JsonRecord): Loaded<QaExample> {
  const stats = newStats(file);
  const examples: QaExample[] = [];
  const st: LoadState = { ids: new Map() };
  const data = doc['data'];
  if (!Array.isArray(data)) throw new TaskDataError(file, 1, 'data', 'expected an array of articles');
  let q = 0;
  data.forEach((art, ai) => {
    const paras = (art as JsonRecord)?.['paragraphs'];
    if (!Array.isArray(paras)) throw new TaskDataError(file, ai + 1, `data[${ai}].paragraphs`, 'expected an array', 'article');
    paras.forEach((p, pi) => {
      const pr = p as JsonRecord;
      const where = `data[${ai}].paragraphs[${pi}]`;
      if (typeof pr?.['context'] !== 'string') throw new TaskDataError(file, ai + 1, `${where}.context`, 'expected a string', 'article');
      if (!Array.isArray(pr['qas'])) throw new TaskDataError(file, ai + 1, `${where}.qas`, 'expected an array', 'article');
      for (const qa of pr['qas'] as unknown[]) {
        q++;
        stats.records++;
        // errors name the question number in file order (JSON has no useful line numbers)
        const f = new Fields(qa as JsonRecord, file, q, 'question');
        if (qa === null || typeof qa !== 'object') throw f.err(undefined, 'expected a question object');
        addExample(examples, st, stats, f, f.idLike('id') ?? f.str('id'), f.str('question'), pr['context'] as string, parseAnswers(f));
      }
    });
  });
  stats.examples = examples.length;
  return { examples, stats };
}

function loadQaJsonl(file: string): Loaded<QaExample> {
  const stats = newStats(file);
  const examples: QaExample[] = [];
  const st: LoadState = { ids: new Map() };
  for (const { rec, line } of jsonLines(file, stats)) {
    const f = new Fields(rec, file, line);
    if (f.has('header')) {
      bump(stats.skipped, 'MRQA header lines');
      continue;
    }
    if (f.has('qas')) {
      // MRQA original: one context with several questions
      const context = f.str('context');
      f.array('qas').forEach((qa, j) => {
        const qf = new Fields(qa as JsonRecord, file, line);
        const at = (x: string) => `qas[${j}].${x}`;
        if (qa === null || typeof qa !== 'object') throw f.err(`qas[${j}]`, 'expected an object');
        const question = qf.has('question') ? (qf.rec['question'] as unknown) : undefined;
        if (typeof question !== 'string') throw f.err(at('question'), 'expected a string');
        const id = qf.idLike('qid') ?? qf.idLike('id');
        if (id === undefined) throw f.err(at('qid'), 'missing');
        const det = qf.rec['detected_answers'];
        if (!Array.isArray(det) || det.length === 0) throw f.err(at('detected_answers'), 'expected a non-empty array');
        const answers: QaAnswer[] = [];
        det.forEach((d, k) => {
          const spans = (d as JsonRecord)?.['char_spans'];
          if (!Array.isArray(spans) || spans.length === 0) throw f.err(at(`detected_answers[${k}].char_spans`), 'expected a non-empty array');
          const s0 = spans[0];
          if (!Array.isArray(s0) || s0.length !== 2 || !Number.isInteger(s0[0]) || !Number.isInteger(s0[1]) || s0[0] < 0 || s0[1] < s0[0]) {
            throw f.err(at(`detected_answers[${k}].char_spans[0]`), `expected [start, end_inclusive], got ${JSON.stringify(s0)}`);
          }
          // MRQA char spans are inclusive code-point offsets; the detected text is that slice of the context
          // (start stays in code points: addExample converts every start the same way)
          answers.push({ text: context.slice(codePointToUtf16(context, s0[0]), codePointToUtf16(context, s0[1] + 1)), start: s0[0] });
        });
        // gold texts for evaluation: MRQA's `answers` list when present, else the detected ones
        const gold = Array.isArray(qf.rec['answers']) ? (qf.rec['answers'] as unknown[]).filter((x): x is string => typeof x === 'string') : [];
        for (const g of gold) {
          if (answers.some((a) => a.text === g)) continue;
          const at16 = Math.max(0, context.indexOf(g));
          answers.push({ text: g, start: [...context.slice(0, at16)].length }); // code points, like the spans
        }
        addExample(examples, st, stats, new Fields(qa as JsonRecord, file, line), id, question, context, answers);
      });
      continue;
    }
    addExample(examples, st, stats, f, f.idLike('id') ?? String(examples.length), f.str('question'), f.str('context'), parseAnswers(f));
  }
  stats.examples = examples.length;
  return { examples, stats };
}

/** SQuAD JSON if the whole file is one JSON object with `data`, else JSONL (LinkBERT or MRQA). */
export function loadQa(file: string): Loaded<QaExample> {
  const text = readText(file);
  if (text.trimStart().startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      doc = undefined; // not a single JSON document: JSONL
    }
    if (doc && typeof doc === 'object' && 'data' in (doc as JsonRecord)) return loadSquadJson(file, doc as JsonRecord);
  }
  return loadQaJsonl(file);
}

/** The user's flags and values that fit: windows must hold more context tokens than they overlap by. */
function windowError(maxLen: number, maxQ: number, stride: number, qLen: number, avail: number): string {
  // a question of up to a quarter of the sequence, and windows that overlap by half of what is left
  const q = Math.max(1, Math.min(maxQ, Math.floor(maxLen / 4)));
  const s = Math.max(1, Math.floor((maxLen - q - 3) / 2));
  const fix = maxLen - q - 3 > 1 ? `e.g. --max-query-len ${q} --doc-stride ${s}` : `a larger --max-seq-len`;
  return (
    `qa: --max-seq-len ${maxLen} leaves ${avail} context tokens per window after a ${qLen}-token question (--max-query-len ${maxQ}); ` +
    `--doc-stride ${stride} must be smaller than that: use ${fix}`
  );
}

/** Indices of the k largest values of a[off .. off+n), best first (ties: lower index first). */
function topK(a: ArrayLike<number>, off: number, n: number, k: number): number[] {
  const idx: number[] = [];
  for (let j = 0; j < n; j++) {
    const v = a[off + j]!;
    if (idx.length === k && v <= a[off + idx[k - 1]!]!) continue;
    let p = idx.length < k ? idx.length : k - 1;
    if (idx.length < k) idx.push(j);
    while (p > 0 && a[off + idx[p - 1]!]! < v) {
      idx[p] = idx[p - 1]!;
      p--;
    }
    idx[p] = j;
  }
  return idx;
}

export const qaTask: TaskSpec<QaExample, SpanFeature, SpanBatch, SpanOutputs, QaPrediction> = {
  name: 'qa',
  headKind: 'span',
  loadExamples: (file) => loadQa(file),
  buildConfig: () => ({ type: 'qa', labels: [] }),
  numLabels: () => 2,
  featurize(examples, tok, _config, opts) {
    const maxLen = opts?.maxSeqLength ?? 384;
    const stride = opts?.docStride ?? 128;
    const maxQ = opts?.maxQueryLength ?? 64;
    const train = opts?.train ?? false;
    const stats = newFeatStats(examples.length);
    const features: SpanFeature[] = [];
    examples.forEach((e, ei) => {
      if (train && e.answerMismatch) {
        bump(stats.skipped, `${MISMATCH} (training)`);
        return;
      }
      let q = tok.encode(e.question.trimStart()); // run_qa lstrips questions
      if (q.length > maxQ) {
        q = q.subarray(0, maxQ);
        bump(stats.truncated, 'questions truncated to --max-query-len');
      }
      const ctx = tok.encodeWithOffsets(e.context);
      const n = ctx.ids.length;
      if (n === 0) {
        bump(stats.skipped, 'context has no tokens');
        return;
      }
      const avail = maxLen - q.length - 3;
      if (avail <= stride) throw new Error(windowError(maxLen, maxQ, stride, q.length, avail));
      const cs = q.length + 2; // first context position
      const a0 = e.answers[0]!;
      const sc = a0.start;
      const ec = a0.start + a0.text.length;
      let windows = 0;
      for (let ws = 0; ; ws += avail - stride) {
        const L = Math.min(avail, n - ws);
        const T = cs + L + 1;
        const inputIds = new Int32Array(T);
        const tokenTypeIds = new Int32Array(T);
        const offsets = new Int32Array(2 * T).fill(-1);
        inputIds[0] = tok.clsId;
        inputIds.set(q, 1);
        inputIds[cs - 1] = tok.sepId;
        inputIds.set(ctx.ids.subarray(ws, ws + L), cs);
        inputIds[T - 1] = tok.sepId;
        tokenTypeIds.fill(1, cs);
        offsets.set(ctx.offsets.subarray(2 * ws, 2 * (ws + L)), 2 * cs);
        let startPosition = 0;
        let endPosition = 0;
        const last = cs + L - 1;
        // answer fully inside this window (run_qa's check), else both positions stay at [CLS]
        if (!e.answerMismatch && offsets[2 * cs]! <= sc && offsets[2 * last + 1]! >= ec) {
          let s = cs;
          while (s <= last && offsets[2 * s]! <= sc) s++;
          let t = last;
          while (t >= cs && offsets[2 * t + 1]! >= ec) t--;
          startPosition = s - 1;
          endPosition = Math.max(t + 1, startPosition);
        }
        features.push({ inputIds, tokenTypeIds, offsets, startPosition, endPosition, exampleIndex: ei });
        windows++;
        if (ws + L >= n) break;
      }
      if (windows > 1) bump(stats.truncated, 'extra windows for long contexts', windows - 1);
    });
    stats.features = features.length;
    return { features, stats };
  },
  collate(features, seqLen) {
    return {
      ...padBatch(features, 0, seqLen),
      startPositions: Int32Array.from(features, (f) => f.startPosition),
      endPositions: Int32Array.from(features, (f) => f.endPosition),
    };
  },
  decodePredictions(examples, features, outputs, _config, opts) {
    const nBest = opts?.nBest ?? 20;
    const maxAns = opts?.maxAnswerLength ?? 30;
    const T = outputs.seqLen;
    checkOutputLength('span startLogits (N*T)', outputs.startLogits.length, features.length * T);
    checkOutputLength('span endLogits (N*T)', outputs.endLogits.length, features.length * T);
    const best: (QaPrediction | undefined)[] = new Array(examples.length);
    features.forEach((f, fi) => {
      if (f.exampleIndex < 0 || f.exampleIndex >= examples.length) throw new Error(`qa decode: feature ${fi} refers to example ${f.exampleIndex}`);
      const L = f.inputIds.length;
      if (L > T) throw new Error(`qa decode: feature ${fi} has ${L} tokens but outputs.seqLen is ${T}`);
      const off = fi * T;
      // candidates among the feature's real tokens (padding excluded), as in postprocess_qa_predictions
      const starts = topK(outputs.startLogits, off, L, nBest);
      const ends = topK(outputs.endLogits, off, L, nBest);
      const ctx = examples[f.exampleIndex]!.context;
      for (const s of starts) {
        if (f.offsets[2 * s]! < 0) continue;
        for (const e of ends) {
          if (f.offsets[2 * e]! < 0 || e < s || e - s + 1 > maxAns) continue;
          const score = outputs.startLogits[off + s]! + outputs.endLogits[off + e]!;
          const cur = best[f.exampleIndex];
          if (cur && cur.score >= score) continue;
          const cStart = f.offsets[2 * s]!;
          const cEnd = f.offsets[2 * e + 1]!;
          best[f.exampleIndex] = { text: ctx.slice(cStart, cEnd), start: cStart, end: cEnd, score };
        }
      }
    });
    // no valid span anywhere: run_qa falls back to an empty answer
    return best.map((b) => b ?? { text: '', start: -1, end: -1, score: -Infinity });
  },
  score(examples, predictions): TaskMetrics {
    const preds = new Map(examples.map((e, i) => [e.id, predictions[i]!.text]));
    const r = squadEvaluate(
      examples.map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) })),
      preds,
    );
    const notes: Record<string, number> = {};
    const empty = predictions.filter((p) => p.start < 0).length;
    if (empty) notes['examples with no valid span (predicted "")'] = empty;
    const mism = examples.filter((e) => e.answerMismatch).length;
    if (mism) notes['evaluated examples whose answer_start mismatches'] = mism;
    return { main: 'f1', metrics: { exact_match: r.exactMatch, f1: r.f1, total: r.total }, notes };
  },
  predictionLine: (e, p) => ({ id: e.id, question: e.question, prediction: p.text, answers: e.answers.map((a) => a.text) }),
};
