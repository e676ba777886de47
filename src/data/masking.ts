// Masked-LM masking (BERT recipe) and the seeded PRNG every data stage uses.
// Used at prepare time (static masks stored in the shards) and at load time (dynamic masking).

/** murmur3 fmix32: a bijective 32-bit mixer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hash a list of non-negative integers (each < 2^53) into one 32-bit seed. Used to derive independent
 * streams, e.g. mixSeed(seed, docIndex, round): the stream for a document never depends on which worker
 * handles it or in what order.
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    if (!(p >= 0) || !Number.isSafeInteger(p)) throw new RangeError(`seed component must be a non-negative safe integer, got ${p}`);
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = fmix32((h ^ fmix32(lo + 0x6a09e667)) + 0x3c6ef372);
    h = fmix32((h ^ fmix32(hi + 0xbb67ae85)) + 0xa54ff53a);
  }
  return h;
}

/** xoshiro128** (32-bit arithmetic only), seeded through splitmix32. Deterministic across platforms. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number, ...more: number[]) {
    let x = mixSeed(seed, ...more);
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  static fromState(state: readonly number[]): Rng {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff))
      throw new Error(`bad rng state ${JSON.stringify(state)}: expected 4 uint32`);
    const r = new Rng(0);
    [r.s0, r.s1, r.s2, r.s3] = state;
    return r;
  }

  state(): number[] {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  /** uniform in [0, 1) with 53 random bits */
  next(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** uniform integer in [0, n), n <= 2^32 (bias below n / 2^32, negligible for the sizes used here) */
  int(n: number): number {
    return Math.floor((this.nextU32() * n) / 4294967296);
  }

  shuffle<T>(a: T[] | Int32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export interface MaskSpec {
  vocabSize: number;
  maskId: number;
  /** ids never selected for prediction ([CLS], [SEP], [PAD], [MASK]) */
  neverMask: readonly number[];
  /** ids never used as random replacement (all special tokens) */
  randomExclude: readonly number[];
  /** fraction of maskable tokens to predict (0.15) */
  maskProb: number;
  /** cap on predictions per instance (ceil(0.15 * max_seq_len) by default) */
  maxPredictions: number;
  /** mask whole words: a token that does not start a word joins the group of the token before it */
  wholeWord: boolean;
  /** wordStart[id] = 1 when the id starts a word; required for wholeWord */
  wordStart?: Uint8Array;
}

export interface MaskResult {
  /** ascending positions chosen for prediction */
  positions: Int32Array;
  /** the id fed to the model at each position: [MASK] 80%, random non-special id 10%, unchanged 10% */
  replacements: Int32Array;
}

export function defaultMaxPredictions(maxSeqLen: number, maskProb = 0.15): number {
  // ceil of the product computed in integer-friendly form: 0.15 * 512 = 76.80000000000001 in floats
  return Math.ceil(Math.round(maskProb * maxSeqLen * 1e9) / 1e9);
}

export class Masker {
  private never: Uint8Array;
  private pool: Int32Array;
  private groupStart: Int32Array;
  private groupLen: Int32Array;
  private order: Int32Array;
  private picked = new Uint8Array(0); // positions drawn for the current sequence (cleared as they are read)

  constructor(readonly spec: MaskSpec) {
    if (!(spec.maskProb > 0 && spec.maskProb < 1)) throw new RangeError(`mask probability must be in (0, 1), got ${spec.maskProb}`);
    if (!(spec.maxPredictions >= 1)) throw new RangeError(`maxPredictions must be >= 1, got ${spec.maxPredictions}`);
    if (spec.wholeWord && (!spec.wordStart || spec.wordStart.length < spec.vocabSize))
      throw new Error('whole-word masking needs a wordStart table covering the vocabulary');
    this.never = new Uint8Array(spec.vocabSize);
    for (const id of spec.neverMask) if (id >= 0 && id < spec.vocabSize) this.never[id] = 1;
    const excl = new Uint8Array(spec.vocabSize);
    for (const id of spec.randomExclude) if (id >= 0 && id < spec.vocabSize) excl[id] = 1;
    const pool: number[] = [];
    for (let i = 0; i < spec.vocabSize; i++) if (!excl[i]) pool.push(i);
    if (pool.length === 0) throw new Error('no non-special vocabulary ids to draw random replacements from');
    this.pool = Int32Array.from(pool);
    this.groupStart = new Int32Array(0);
    this.groupLen = new Int32Array(0);
    this.order = new Int32Array(0);
  }

  /** The tables mask() draws from (for the addon's instance builder, which masks the same way). */
  tables(): { never: Uint8Array; pool: Int32Array } {
    return { never: this.never, pool: this.pool };
  }

  /** Choose masked positions for one sequence. Consumes `rng` deterministically. */
  mask(ids: Int32Array, rng: Rng): MaskResult {
    const n = ids.length;
    if (this.groupStart.length < n) {
      this.groupStart = new Int32Array(n);
      this.groupLen = new Int32Array(n);
      this.order = new Int32Array(n);
      this.picked = new Uint8Array(n);
    }
    const { never, groupStart, groupLen, order, picked } = this;
    const { vocabSize, wholeWord, maskProb, maxPredictions, maskId } = this.spec;
    const ws = this.spec.wordStart;
    let groups = 0;
    let candidates = 0;
    let prevCand = false;
    for (let t = 0; t < n; t++) {
      const id = ids[t];
      if (!(id >= 0 && id < vocabSize)) throw new RangeError(`token id ${id} at position ${t} is outside the vocabulary (${vocabSize})`);
      if (never[id]) {
        prevCand = false;
        continue;
      }
      candidates++;
      if (wholeWord && prevCand && !ws![id]) groupLen[groups - 1]++;
      else {
        groupStart[groups] = t;
        groupLen[groups] = 1;
        groups++;
      }
      prevCand = true;
    }
    const target = Math.min(maxPredictions, Math.max(1, Math.round(candidates * maskProb)));
    if (candidates === 0) return { positions: new Int32Array(0), replacements: new Int32Array(0) };
    for (let g = 0; g < groups; g++) order[g] = g;
    let covered = 0;
    // Partial Fisher-Yates: draw groups in random order only until the budget is filled.
    for (let k = 0; k < groups && covered < target; k++) {
      const j = k + rng.int(groups - k);
      const g = order[j];
      order[j] = order[k];
      order[k] = g;
      const len = groupLen[g];
      // a whole word that would overshoot the budget is skipped, as in BERT's create_masked_lm_predictions
      if (covered + len > target) continue;
      for (let q = 0; q < len; q++) picked[groupStart[g] + q] = 1;
      covered += len;
    }
    // ascending positions: a scan of the flags (cheaper than sorting the drawn ones)
    const positions = new Int32Array(covered);
    for (let t = 0, k = 0; k < covered; t++) {
      if (picked[t]) {
        picked[t] = 0;
        positions[k++] = t;
      }
    }
    const replacements = new Int32Array(covered);
    const pool = this.pool;
    for (let k = 0; k < covered; k++) {
      const r = rng.next();
      if (r < 0.8) replacements[k] = maskId;
      else if (r < 0.9) replacements[k] = ids[positions[k]];
      else replacements[k] = pool[rng.int(pool.length)];
    }
    return { positions, replacements };
  }
}

/** Pack a 0/1 byte-per-id table into a base64 bitmap (for manifest.json). */
export function packBitmap(bits: Uint8Array): string {
  const out = Buffer.alloc(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i]) out[i >> 3] |= 1 << (i & 7);
  return out.toString('base64');
}

export function unpackBitmap(b64: string, n: number): Uint8Array {
  const raw = Buffer.from(b64, 'base64');
  if (raw.length * 8 < n) throw new Error(`bitmap has ${raw.length * 8} bits, need ${n}`);
  const bits = new Uint8Array(n);
  for (let i = 0; i < n; i++) bits[i] = (raw[i >> 3] >> (i & 7)) & 1;
  return bits;
}
