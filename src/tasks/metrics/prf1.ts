// Classification metrics used by BLURB / LinkBERT src/seqcls/run_seqcls.py (compute_metrics) and
// src/seqcls/utils_hoc.py. All divisions by zero yield 0, never NaN.

const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);

export interface PRF1 {
  precision: number;
  recall: number;
  f1: number;
}

function checkLengths(gold: ArrayLike<number>, pred: ArrayLike<number>, what: string): void {
  if (gold.length !== pred.length) {
    throw new Error(`${what}: ${gold.length} gold labels but ${pred.length} predictions`);
  }
}

/** run_seqcls.py default metric: mean(preds == labels). Empty input → 0. */
export function accuracy(gold: ArrayLike<number>, pred: ArrayLike<number>): number {
  checkLengths(gold, pred, 'accuracy');
  let ok = 0;
  for (let i = 0; i < gold.length; i++) if (gold[i] === pred[i]) ok++;
  return div(ok, gold.length);
}

/**
 * Macro-F1 as sklearn f1_score(average='macro'): unweighted mean of per-class F1 over the classes that
 * appear in gold ∪ predictions (sklearn's unique_labels), zero_division → 0.
 */
export function macroF1(gold: ArrayLike<number>, pred: ArrayLike<number>): number {
  checkLengths(gold, pred, 'macroF1');
  const stats = new Map<number, { tp: number; p: number; g: number }>();
  const at = (c: number) => {
    let s = stats.get(c);
    if (!s) stats.set(c, (s = { tp: 0, p: 0, g: 0 }));
    return s;
  };
  for (let i = 0; i < gold.length; i++) {
    at(gold[i]!).g++;
    at(pred[i]!).p++;
    if (gold[i] === pred[i]) at(gold[i]!).tp++;
  }
  if (stats.size === 0) return 0;
  let sum = 0;
  for (const s of stats.values()) {
    const p = div(s.tp, s.p);
    const r = div(s.tp, s.g);
    sum += div(2 * p * r, p + r);
  }
  return sum / stats.size;
}

/**
 * Relation-extraction micro P/R/F1 (ChemProt, DDI, GAD in BLURB), LinkBERT run_seqcls.py metric "PRF1":
 *   TP = #(pred == gold and pred != NEG); P = TP / #(pred != NEG); R = TP / #(gold != NEG)
 * LinkBERT hard-codes NEG as label id 0 of its sorted label list; here the negative class id is a
 * parameter so that e.g. 'false' / 'DDI-false' / '0' can be named explicitly wherever it sorts.
 */
export function relationPRF1(gold: ArrayLike<number>, pred: ArrayLike<number>, negative: number): PRF1 {
  checkLengths(gold, pred, 'relationPRF1');
  let tp = 0;
  let nPred = 0;
  let nGold = 0;
  for (let i = 0; i < gold.length; i++) {
    const g = gold[i]!;
    const p = pred[i]!;
    if (p !== negative) nPred++;
    if (g !== negative) nGold++;
    if (p === g && p !== negative) tp++;
  }
  const precision = div(tp, nPred);
  const recall = div(tp, nGold);
  return { precision, recall, f1: div(2 * precision * recall, precision + recall) };
}

/**
 * Multi-label micro P/R/F1 over all (row, label) cells of 0/1 matrices — utils_hoc.compute_p_r_f:
 *   TP = #(pred == gold and pred != 0); P = TP / #(pred != 0); R = TP / #(gold != 0); F1 = 2PR/(P+R).
 */
export function multilabelMicroPRF1(gold: readonly ArrayLike<number>[], pred: readonly ArrayLike<number>[]): PRF1 {
  if (gold.length !== pred.length) throw new Error(`multilabel: ${gold.length} gold rows but ${pred.length} predicted rows`);
  let tp = 0;
  let nPred = 0;
  let nGold = 0;
  for (let i = 0; i < gold.length; i++) {
    const g = gold[i]!;
    const p = pred[i]!;
    if (g.length !== p.length) throw new Error(`multilabel: row ${i} has ${g.length} gold labels but ${p.length} predicted`);
    for (let j = 0; j < g.length; j++) {
      if (p[j]) nPred++;
      if (g[j]) nGold++;
      if (p[j] && g[j]) tp++;
    }
  }
  const precision = div(tp, nPred);
  const recall = div(tp, nGold);
  return { precision, recall, f1: div(2 * precision * recall, precision + recall) };
}

/** LinkBERT's HoC document key: utils_hoc.eval_hoc uses `id.split('_')[0]` (ids look like "<pmid>_s<k>"). */
export function hocDocKey(id: string): string {
  const u = id.indexOf('_');
  return u >= 0 ? id.slice(0, u) : id;
}

export interface HocResult extends PRF1 {
  documents: number;
}

/**
 * HoC evaluation, LinkBERT src/seqcls/utils_hoc.py eval_hoc: sentence-level 0/1 predictions and gold
 * label vectors are aggregated per abstract by UNION (a label is on for the document if it is on for any
 * of its sentences), then micro P/R/F1 is computed over (document, label) cells with compute_p_r_f.
 * Documents are ordered by first appearance, as the Python dict is.
 */
export function hocEvaluate(
  gold: readonly ArrayLike<number>[],
  pred: readonly ArrayLike<number>[],
  docIds: readonly string[],
): HocResult {
  if (gold.length !== pred.length || gold.length !== docIds.length) {
    throw new Error(`HoC: ${gold.length} gold rows, ${pred.length} predicted rows, ${docIds.length} ids`);
  }
  const docs = new Map<string, { g: Uint8Array; p: Uint8Array }>();
  for (let i = 0; i < gold.length; i++) {
    const g = gold[i]!;
    const p = pred[i]!;
    if (g.length !== p.length) throw new Error(`HoC: row ${i} has ${g.length} gold labels but ${p.length} predicted`);
    let d = docs.get(docIds[i]!);
    if (!d) docs.set(docIds[i]!, (d = { g: new Uint8Array(g.length), p: new Uint8Array(g.length) }));
    if (d.g.length !== g.length) throw new Error(`HoC: row ${i} has ${g.length} labels, its document has ${d.g.length}`);
    for (let j = 0; j < g.length; j++) {
      if (g[j] === 1) d.g[j] = 1;
      if (p[j] === 1) d.p[j] = 1;
    }
  }
  const rows = [...docs.values()];
  const r = multilabelMicroPRF1(
    rows.map((d) => d.g),
    rows.map((d) => d.p),
  );
  return { ...r, documents: docs.size };
}
