// Sequence building and batching shared by the classification-style tasks.
import { type Batch, type BaseFeature, type FeaturizeStats, bump } from './types.js';

export function newFeatStats(examples: number): FeaturizeStats {
  return { examples, features: 0, skipped: {}, truncated: {} };
}

/**
 * HF `truncation=True` (longest_first) for a pair: remove one token at a time from the longer sequence
 * (from the second on ties, as transformers' truncate_sequences does) until both fit in `budget`.
 * Returns the kept lengths.
 */
export function longestFirst(lenA: number, lenB: number, budget: number): [number, number] {
  let a = lenA;
  let b = lenB;
  const excess = a + b - budget;
  if (excess <= 0) return [a, b];
  // closed form of the one-at-a-time loop
  for (let i = 0; i < excess; i++) {
    if (a > b) a--;
    else b--;
  }
  return [a, b];
}

/** [CLS] a [SEP] (b [SEP])? with token types 0…0 1…1, truncated longest-first to maxLen. */
export function buildSequence(
  clsId: number,
  sepId: number,
  a: Int32Array,
  b: Int32Array | null,
  maxLen: number,
  stats: FeaturizeStats,
): { inputIds: Int32Array; tokenTypeIds: Int32Array } {
  const specials = b ? 3 : 2;
  const budget = maxLen - specials;
  if (budget < 1) throw new Error(`maxSeqLength ${maxLen} leaves no room for text`);
  let la = a.length;
  let lb = b ? b.length : 0;
  if (la + lb > budget) {
    [la, lb] = b ? longestFirst(la, lb, budget) : [budget, 0];
    bump(stats.truncated, 'sequences truncated to --max-seq-len');
  }
  const n = la + lb + specials;
  const inputIds = new Int32Array(n);
  const tokenTypeIds = new Int32Array(n);
  let p = 0;
  inputIds[p++] = clsId;
  inputIds.set(a.subarray(0, la), p);
  p += la;
  inputIds[p++] = sepId;
  if (b) {
    inputIds.set(b.subarray(0, lb), p);
    tokenTypeIds.fill(1, p);
    p += lb;
    inputIds[p++] = sepId;
  }
  return { inputIds, tokenTypeIds };
}

/**
 * Pads inputIds/tokenTypeIds to T (default: longest) and builds the attention mask. Padding uses id
 * `padId` (0 = [PAD] in BERT vocabularies); padded positions are masked out anyway.
 */
export function padBatch(features: readonly BaseFeature[], padId: number, seqLen?: number): Batch {
  const longest = features.reduce((m, f) => Math.max(m, f.inputIds.length), 0);
  const T = seqLen ?? longest;
  if (longest > T) throw new Error(`collate: a feature has ${longest} tokens but seqLen is ${T}`);
  const B = features.length;
  const inputIds = new Int32Array(B * T).fill(padId);
  const tokenTypeIds = new Int32Array(B * T);
  const attentionMask = new Int32Array(B * T);
  features.forEach((f, i) => {
    inputIds.set(f.inputIds, i * T);
    tokenTypeIds.set(f.tokenTypeIds, i * T);
    attentionMask.fill(1, i * T, i * T + f.inputIds.length);
  });
  return { batchSize: B, seqLen: T, inputIds, tokenTypeIds, attentionMask };
}

export function argmax(a: ArrayLike<number>, off: number, n: number): number {
  let best = 0;
  let bv = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = a[off + j]!;
    if (v > bv) {
      bv = v;
      best = j;
    }
  }
  return best;
}

export function checkOutputLength(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: expected ${want} values, got ${got}`);
}

/** Every example has exactly one feature, in order (all tasks but qa). */
export function oneFeaturePerExample(nExamples: number, features: readonly { exampleIndex: number }[], task: string): void {
  if (features.length !== nExamples) {
    throw new Error(`${task}: ${features.length} features for ${nExamples} examples; decode needs the features built from these examples`);
  }
  features.forEach((f, i) => {
    if (f.exampleIndex !== i) throw new Error(`${task}: feature ${i} belongs to example ${f.exampleIndex}`);
  });
}
