// Pearson correlation (BIOSSES in BLURB; LinkBERT run_seqcls.py uses scipy.stats.pearsonr(labels, preds)).
//   r = Σ(x-x̄)(y-ȳ) / sqrt(Σ(x-x̄)² Σ(y-ȳ)²)
// Computed in float64 with centred sums (two passes) for stability.

export interface PearsonResult {
  pearson: number;
  /** true when r is undefined (n < 2 or a constant series); `pearson` is then reported as 0 */
  undefined: boolean;
}

/** Returns NaN when undefined (n < 2 or zero variance), as scipy does (with a warning). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`pearson: ${x.length} values vs ${y.length} values`);
  const n = x.length;
  if (n < 2) return NaN;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  const r = sxy / Math.sqrt(sxx * syy);
  // scipy clips to [-1, 1] against rounding.
  return Math.max(-1, Math.min(1, r));
}

/** For reporting: NaN becomes 0 with an explicit flag, so metrics JSON never contains NaN. */
export function pearsonReport(gold: ArrayLike<number>, pred: ArrayLike<number>): PearsonResult {
  const r = pearson(gold, pred);
  return Number.isNaN(r) ? { pearson: 0, undefined: true } : { pearson: r, undefined: false };
}

export function meanSquaredError(gold: ArrayLike<number>, pred: ArrayLike<number>): number {
  if (gold.length !== pred.length) throw new Error(`mse: ${gold.length} values vs ${pred.length} values`);
  if (gold.length === 0) return 0;
  let s = 0;
  for (let i = 0; i < gold.length; i++) s += (gold[i]! - pred[i]!) ** 2;
  return s / gold.length;
}
