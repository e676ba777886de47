// WordPiece vocabulary learning from word counts: the algorithm of Hugging Face's WordPieceTrainer (a BPE
// trainer with the '##' continuation prefix), written here so that any vocab size can be learned (the Node
// binding only runs its default trainer, 30000 tokens) and the counts go in directly (the binding trains
// only from files: one word occurrence per token of the corpus on disk).
//
//   1. the alphabet: every character, by code point; then '##' + every character seen after a word's
//      first, by code point;
//   2. each word is its first character followed by '##' continuation characters;
//   3. repeat until `size` tokens: merge the most frequent adjacent pair (counted over word occurrences),
//      ties to the pair of smaller ids (HF's rule); the merged token is a + b without b's '##'.
//
// Deterministic: no hash-map order decides anything (HF numbers its '##x' tokens and breaks ties in
// hash-map order, so two of its runs can differ).

/** A max-heap of candidate merges (count, a, b): larger count first, then smaller a, then smaller b. */
class MergeHeap {
  private count: number[] = [];
  private a: number[] = [];
  private b: number[] = [];

  get size(): number {
    return this.count.length;
  }

  private before(i: number, j: number): boolean {
    const c = this.count, a = this.a, b = this.b;
    if (c[i] !== c[j]) return c[i]! > c[j]!;
    if (a[i] !== a[j]) return a[i]! < a[j]!;
    return b[i]! < b[j]!;
  }

  private swap(i: number, j: number): void {
    for (const arr of [this.count, this.a, this.b]) {
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
  }

  push(count: number, a: number, b: number): void {
    this.count.push(count);
    this.a.push(a);
    this.b.push(b);
    let i = this.count.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the top; returns [count, a, b]. */
  pop(): [number, number, number] {
    const top: [number, number, number] = [this.count[0]!, this.a[0]!, this.b[0]!];
    const last = this.count.length - 1;
    this.swap(0, last);
    this.count.pop();
    this.a.pop();
    this.b.pop();
    let i = 0;
    const n = this.count.length;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < n && this.before(l, m)) m = l;
      if (r < n && this.before(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return top;
  }
}

export interface LearnedWordPiece {
  /** tokens by id: the alphabet, the '##' alphabet, then one token per merge in merge order */
  tokens: string[];
  /** characters in the alphabet (plain ones) */
  alphabet: number;
  /** merges done */
  merges: number;
}

/**
 * Learns up to `size` tokens from `counts` (word -> occurrences; words already normalised and split as the
 * tokenizer will split them). Stops early when no pair is left to merge. The alphabet is always kept whole,
 * so the result can be longer than `size` when the alphabet alone is (the caller decides what to cut).
 */
export function learnWordPiece(counts: ReadonlyMap<string, number>, size: number, prefix = '##'): LearnedWordPiece {
  if (!Number.isInteger(size) || size < 0) throw new RangeError(`size must be a non-negative integer, got ${size}`);
  for (const [w, c] of counts)
    if (!Number.isSafeInteger(c) || c < 1) throw new RangeError(`count of '${w}' must be a positive integer, got ${c}`);
  // word types in code-unit order, so ids and ties never depend on the Map's insertion order
  const words = [...counts.keys()].filter((w) => w.length > 0).sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const freq = words.map((w) => counts.get(w)!);

  const byCodePoint = (x: string, y: string) => x.codePointAt(0)! - y.codePointAt(0)!;
  const first = new Set<string>(), cont = new Set<string>();
  for (const w of words) {
    let k = 0;
    for (const ch of w) (k++ === 0 ? first : cont).add(ch);
  }
  const tokens: string[] = [...new Set([...first, ...cont])].sort(byCodePoint);
  const alphabet = tokens.length;
  tokens.push(...[...cont].sort(byCodePoint).map((ch) => prefix + ch));
  const id = new Map<string, number>();
  tokens.forEach((t, i) => id.set(t, i));

  // each word as symbol ids, all words in one array: word w is sym[start[w] .. start[w] + len[w]), and
  // merges shorten it in place
  const start = new Int32Array(words.length), len = new Int32Array(words.length);
  let total = 0;
  for (let w = 0; w < words.length; w++) {
    start[w] = total;
    for (const _ of words[w]!) total++;
  }
  const sym = new Int32Array(total);
  for (let w = 0; w < words.length; w++) {
    let k = 0;
    for (const ch of words[w]!) sym[start[w]! + k] = id.get(k++ === 0 ? ch : prefix + ch)!;
    len[w] = k;
  }

  // pair -> count (over occurrences) and pair -> words holding it; a pair is a * 2^24 + b (ids < 2^24)
  const M = 2 ** 24;
  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  const addPairs = (w: number, sign: 1 | -1, record: (key: number) => boolean) => {
    const s0 = start[w]!, n = len[w]!, f = sign * freq[w]!;
    for (let i = s0; i + 1 < s0 + n; i++) {
      const key = sym[i]! * M + sym[i + 1]!;
      pairCount.set(key, (pairCount.get(key) ?? 0) + f);
      if (sign > 0 && record(key)) {
        const list = where.get(key);
        if (list) list.push(w);
        else where.set(key, [w]);
      }
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1, () => true);
  const heap = new MergeHeap();
  for (const [key, c] of pairCount) heap.push(c, Math.floor(key / M), key % M);

  let merges = 0;
  const seenStamp = new Int32Array(words.length).fill(-1);
  while (tokens.length < size && heap.size > 0) {
    const [c, a, b] = heap.pop();
    const key = a * M + b;
    const now = pairCount.get(key) ?? 0;
    if (now !== c) {
      // counts only fall after a pair was queued (merges take its occurrences); requeue at the true count
      if (now > 0) heap.push(now, a, b);
      continue;
    }
    if (c < 1) break;
    const tb = tokens[b]!;
    const merged = tokens[a]! + (tb.startsWith(prefix) ? tb.slice(prefix.length) : tb);
    let nid = id.get(merged);
    if (nid === undefined) {
      nid = tokens.length;
      if (nid >= M) throw new RangeError(`more than ${M} tokens`);
      tokens.push(merged);
      id.set(merged, nid);
    }
    merges++;
    const touched = new Set<number>();
    for (const w of where.get(key) ?? []) {
      if (seenStamp[w] === merges) continue; // listed twice
      seenStamp[w] = merges;
      const s0 = start[w]!, end = s0 + len[w]!;
      let has = false;
      for (let i = s0; i + 1 < end; i++) if (sym[i] === a && sym[i + 1] === b) { has = true; break; }
      if (!has) continue; // an earlier merge took this occurrence
      addPairs(w, -1, () => false);
      let o = s0;
      for (let i = s0; i < end; i++) {
        if (i + 1 < end && sym[i] === a && sym[i + 1] === b) {
          sym[o++] = nid;
          i++;
        } else sym[o++] = sym[i]!;
      }
      len[w] = o - s0;
      // only pairs holding the new token gain occurrences (and positions)
      addPairs(w, 1, (k) => {
        const x = Math.floor(k / M), y = k % M;
        if (x !== nid && y !== nid) return false;
        touched.add(k);
        return true;
      });
    }
    where.delete(key);
    pairCount.delete(key);
    for (const k of [...touched].sort((x, y) => x - y)) heap.push(pairCount.get(k)!, Math.floor(k / M), k % M);
  }
  return { tokens, alphabet, merges };
}
