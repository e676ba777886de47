// flags.ts: numeric flag checks for the bench commands. Errors name the flag as the user typed it
// (--batch-size, not batchSize) and are thrown before any work starts.

export function posInt(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < 1) throw new Error(`--${flag}: "${v}" must be a positive integer`);
  return x;
}

export function intAtLeast(flag: string, v: string, min: number): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < min) throw new Error(`--${flag}: "${v}" must be an integer >= ${min}`);
  return x;
}

export function nonNegInt(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < 0) throw new Error(`--${flag}: "${v}" must be a non-negative integer`);
  return x;
}

export function posNum(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x <= 0) throw new Error(`--${flag}: "${v}" must be a positive number`);
  return x;
}

export function nonNegNum(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < 0) throw new Error(`--${flag}: "${v}" must be a non-negative number`);
  return x;
}

/** --threads: the addon takes 1..1024 (setNumThreads); say so with the user's flag. */
export function threads(v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < 1 || x > 1024) throw new Error(`--threads: "${v}" must be an integer in [1, 1024]`);
  return x;
}
