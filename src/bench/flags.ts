// flags.ts: numeric flag checks for the bench commands. Errors name the flag as the user typed it
// (--batch-size, not batchSize) and are thrown before any work starts.

/** v as a number that is an integer (when asked) and in [min, max]; else `--flag: "v" must be <what>`. */
function parse(flag: string, v: string, integer: boolean, min: number, minExclusive: boolean, what: string, max = Infinity): number {
  const x = Number(v);
  const ok = v.trim() !== '' && (integer ? Number.isInteger(x) : Number.isFinite(x)) && (minExclusive ? x > min : x >= min) && x <= max;
  if (!ok) throw new Error(`--${flag}: "${v}" must be ${what}`);
  return x;
}

export const posInt = (flag: string, v: string): number => parse(flag, v, true, 1, false, 'a positive integer');
export const intAtLeast = (flag: string, v: string, min: number): number => parse(flag, v, true, min, false, `an integer >= ${min}`);
export const nonNegInt = (flag: string, v: string): number => parse(flag, v, true, 0, false, 'a non-negative integer');
export const posNum = (flag: string, v: string): number => parse(flag, v, false, 0, true, 'a positive number');
export const nonNegNum = (flag: string, v: string): number => parse(flag, v, false, 0, false, 'a non-negative number');
/** --threads: the addon takes 1..1024 (setNumThreads); say so with the user's flag. */
export const threads = (v: string): number => parse('threads', v, true, 1, false, 'an integer in [1, 1024]', 1024);
