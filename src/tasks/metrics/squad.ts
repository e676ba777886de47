// Official SQuAD v1.1 evaluation (evaluate-v1.1.py), re-implemented from its definition:
//   normalize_answer(s) = white_space_fix(remove_articles(remove_punc(lower(s))))
//   exact_match = normalize(pred) == normalize(gold)
//   f1 = token-bag F1 with Counter intersection; 0 when nothing is shared
//   per question: max over gold answers; corpus: mean over ALL gold questions × 100
//   (an unanswered question scores 0 and is still counted in the denominator).

// Python's string.punctuation (ASCII only; Unicode punctuation such as “ ” – is kept, as in the script).
const PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

// Python's `re` \b with str patterns is Unicode-aware: a word char is alnum (letters L*, numbers N*) or '_'.
// JS \b is ASCII-only even with /u, so articles are matched with explicit Unicode lookarounds instead;
// 'the' inside 'éthe' or 'théatre' must not be removed.
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

// Python str.split() with no argument splits on str.isspace() characters. This differs from JS \s:
// Python includes \x1c-\x1f and \x85, and does NOT include U+FEFF.
const PY_WS = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

function pySplit(s: string): string[] {
  return s.split(PY_WS).filter((t) => t.length > 0);
}

export function normalizeAnswer(s: string): string {
  const lower = s.toLowerCase();
  let noPunc = '';
  for (const ch of lower) if (!PUNCT.has(ch)) noPunc += ch;
  const noArticles = noPunc.replace(ARTICLES, ' ');
  return pySplit(noArticles).join(' ');
}

export function exactMatchScore(prediction: string, groundTruth: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(groundTruth) ? 1 : 0;
}

export function f1Score(prediction: string, groundTruth: string): number {
  const predTokens = pySplit(normalizeAnswer(prediction));
  const goldTokens = pySplit(normalizeAnswer(groundTruth));
  // Counter(pred) & Counter(gold): multiset intersection.
  const goldCounts = new Map<string, number>();
  for (const t of goldTokens) goldCounts.set(t, (goldCounts.get(t) ?? 0) + 1);
  let numSame = 0;
  for (const t of predTokens) {
    const c = goldCounts.get(t) ?? 0;
    if (c > 0) {
      numSame++;
      goldCounts.set(t, c - 1);
    }
  }
  // v1.1 returns 0 whenever nothing is shared, including when both sides normalise to empty.
  if (numSame === 0) return 0;
  const precision = numSame / predTokens.length;
  const recall = numSame / goldTokens.length;
  return (2 * precision * recall) / (precision + recall);
}

/** metric_max_over_ground_truths. Throws on an empty gold list (the official script would crash on max([])). */
export function maxOverGroundTruths(
  fn: (pred: string, gold: string) => number,
  prediction: string,
  groundTruths: readonly string[],
): number {
  if (groundTruths.length === 0) throw new Error('SQuAD metric: a question has no gold answers');
  let best = -Infinity;
  for (const g of groundTruths) best = Math.max(best, fn(prediction, g));
  return best;
}

export interface SquadGold {
  id: string;
  answers: readonly string[];
}

export interface SquadResult {
  exactMatch: number; // ×100
  f1: number; // ×100
  total: number;
  /** gold questions with no prediction (scored 0, as the official script does) */
  unanswered: number;
}

export function squadEvaluate(
  gold: readonly SquadGold[],
  predictions: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
): SquadResult {
  const get = (id: string): string | undefined =>
    predictions instanceof Map ? predictions.get(id) : (predictions as Record<string, string>)[id];
  let em = 0;
  let f1 = 0;
  let unanswered = 0;
  for (const q of gold) {
    const pred = get(q.id);
    if (pred === undefined) {
      unanswered++;
      continue;
    }
    em += maxOverGroundTruths(exactMatchScore, pred, q.answers);
    f1 += maxOverGroundTruths(f1Score, pred, q.answers);
  }
  const total = gold.length;
  return {
    exactMatch: total ? (100 * em) / total : 0,
    f1: total ? (100 * f1) / total : 0,
    total,
    unanswered,
  };
}
