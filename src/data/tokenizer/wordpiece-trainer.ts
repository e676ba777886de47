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
//
// Memory: the words' symbols, the pairs (PairTable), the words holding each pair (ListPool) and the
// queue (MergeHeap) are typed arrays, outside the JS heap's limit; only `counts` itself is on the heap.
// With Maps of boxed keys and arrays of word ids instead, 4.66M word types took 3.0 GB resident (1.9 GB
// now, and 1.31x the time) and ran out of a 1 GB JS heap (this version runs in one).

/** x copied into a typed array twice its length */
function doubled<T extends Float64Array | Int32Array>(x: T): T {
  const y = new (x.constructor as new (n: number) => T)(2 * x.length);
  y.set(x);
  return y;
}

/** A max-heap of candidate merges (count, a, b): larger count first, then smaller a, then smaller b. Typed
 *  arrays that double as it grows (a queued merge: 16 bytes). */
class MergeHeap {
  private count = new Float64Array(1024);
  private a = new Int32Array(1024);
  private b = new Int32Array(1024);
  size = 0;

  private before(i: number, j: number): boolean {
    const c = this.count, a = this.a, b = this.b;
    if (c[i] !== c[j]) return c[i]! > c[j]!;
    if (a[i] !== a[j]) return a[i]! < a[j]!;
    return b[i]! < b[j]!;
  }

  private swap(i: number, j: number): void {
    const c = this.count, a = this.a, b = this.b;
    const tc = c[i]!, ta = a[i]!, tb = b[i]!;
    c[i] = c[j]!; a[i] = a[j]!; b[i] = b[j]!;
    c[j] = tc; a[j] = ta; b[j] = tb;
  }

  push(count: number, a: number, b: number): void {
    if (this.size === this.count.length) {
      this.count = doubled(this.count);
      this.a = doubled(this.a);
      this.b = doubled(this.b);
    }
    let i = this.size++;
    this.count[i] = count;
    this.a[i] = a;
    this.b[i] = b;
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
    const n = --this.size;
    this.swap(0, n);
    let i = 0;
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

/** Lists of word ids (appended to, read whole, then freed) in one pool of fixed-size chunks:
 *  [next chunk, ids used, CHUNK ids]. Freed chunks are reused. */
const CHUNK = 6;
const CHUNK_INTS = CHUNK + 2;
class ListPool {
  pool: Int32Array;
  private used = 0; // chunks carved so far
  private free = -1; // first freed chunk
  /** room for `chunks` chunks before the pool first grows (pages never written cost no memory) */
  constructor(chunks = 1024) {
    this.pool = new Int32Array(CHUNK_INTS * Math.max(1024, chunks));
  }

  /** a new chunk's offset (an empty list's head) */
  alloc(): number {
    let c: number;
    if (this.free >= 0) {
      c = this.free;
      this.free = this.pool[c]!;
    } else {
      if ((this.used + 1) * CHUNK_INTS > this.pool.length) this.pool = doubled(this.pool);
      c = this.used++ * CHUNK_INTS;
    }
    this.pool[c] = -1;
    this.pool[c + 1] = 0;
    return c;
  }

  /** appends w to the list whose last chunk is `tail`; returns the (new) last chunk */
  push(tail: number, w: number): number {
    if (this.pool[tail + 1] === CHUNK) {
      const c = this.alloc();
      this.pool[tail] = c;
      tail = c;
    }
    const n = this.pool[tail + 1]!;
    this.pool[tail + 2 + n] = w;
    this.pool[tail + 1] = n + 1;
    return tail;
  }

  /** frees the list starting at `head` */
  release(head: number): void {
    let c = head;
    while (this.pool[c] !== -1) c = this.pool[c]!;
    this.pool[c] = this.free;
    this.free = head;
  }
}

/** Adjacent pairs (a, b) -> count over word occurrences, and the words holding each (a list in a
 *  ListPool; a word is listed once per occurrence it gained). Open addressing over typed arrays: a pair
 *  costs ~50 bytes where a Map of boxed keys and arrays of word ids cost several times that. A pair
 *  once merged keeps its slot with count 0 (it cannot come back: merges only make pairs with the new
 *  token). */
class PairTable {
  ka = new Int32Array(1 << 16).fill(-1); // -1: empty slot
  kb = new Int32Array(1 << 16);
  count = new Float64Array(1 << 16);
  head = new Int32Array(1 << 16); // list of words, or -1 once merged
  tail = new Int32Array(1 << 16);
  size = 0;
  readonly lists: ListPool;
  /** listChunks: the list pool's first size (see ListPool) */
  constructor(listChunks?: number) {
    this.lists = new ListPool(listChunks);
  }

  private static hash(a: number, b: number): number {
    let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    return h ^ (h >>> 13);
  }

  /** the slot of (a, b), or -1 */
  find(a: number, b: number): number {
    const mask = this.ka.length - 1;
    for (let i = PairTable.hash(a, b) & mask; ; i = (i + 1) & mask) {
      const x = this.ka[i]!;
      if (x === -1) return -1;
      if (x === a && this.kb[i] === b) return i;
    }
  }

  /** the slot of (a, b), made (count 0, empty list) if new */
  slot(a: number, b: number): number {
    if (2 * (this.size + 1) > this.ka.length) this.grow();
    const mask = this.ka.length - 1;
    let i = PairTable.hash(a, b) & mask;
    for (; ; i = (i + 1) & mask) {
      const x = this.ka[i]!;
      if (x === -1) break;
      if (x === a && this.kb[i] === b) return i;
    }
    this.ka[i] = a;
    this.kb[i] = b;
    this.count[i] = 0;
    this.head[i] = this.tail[i] = this.lists.alloc();
    this.size++;
    return i;
  }

  /** lists word w under slot i */
  record(i: number, w: number): void {
    if (this.head[i] === -1) this.head[i] = this.tail[i] = this.lists.alloc();
    this.tail[i] = this.lists.push(this.tail[i]!, w);
  }

  private grow(): void {
    const { ka, kb, count, head, tail } = this;
    const n = ka.length * 2, mask = n - 1;
    this.ka = new Int32Array(n).fill(-1);
    this.kb = new Int32Array(n);
    this.count = new Float64Array(n);
    this.head = new Int32Array(n);
    this.tail = new Int32Array(n);
    for (let j = 0; j < ka.length; j++) {
      const a = ka[j]!;
      if (a === -1) continue;
      let i = PairTable.hash(a, kb[j]!) & mask;
      while (this.ka[i] !== -1) i = (i + 1) & mask;
      this.ka[i] = a;
      this.kb[i] = kb[j]!;
      this.count[i] = count[j]!;
      this.head[i] = head[j]!;
      this.tail[i] = tail[j]!;
    }
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
  const freq = Float64Array.from(words, (w) => counts.get(w)!);

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

  // pair -> count (over occurrences) and the words holding it
  // each word's pairs are listed once at the start: that many ids, plus a part-filled chunk per pair
  // and what merges add later; the pool then rarely grows (each growth copies it)
  const pairs = new PairTable(Math.ceil((1.5 * (total - words.length)) / CHUNK));
  // adds sign * freq[w] to the count of each of w's pairs; records w under those `record` accepts
  const addPairs = (w: number, sign: 1 | -1, record: (slot: number) => boolean) => {
    const s0 = start[w]!, n = len[w]!, f = sign * freq[w]!;
    for (let i = s0; i + 1 < s0 + n; i++) {
      const k = sign > 0 ? pairs.slot(sym[i]!, sym[i + 1]!) : pairs.find(sym[i]!, sym[i + 1]!);
      pairs.count[k] = pairs.count[k]! + f;
      if (sign > 0 && record(k)) pairs.record(k, w);
    }
  };
  for (let w = 0; w < words.length; w++) addPairs(w, 1, () => true);
  const heap = new MergeHeap();
  for (let k = 0; k < pairs.ka.length; k++) if (pairs.ka[k] !== -1) heap.push(pairs.count[k]!, pairs.ka[k]!, pairs.kb[k]!);

  let merges = 0;
  const seenStamp = new Int32Array(words.length).fill(-1);
  const M = 2 ** 24; // ids < M: a pair's key a * M + b is exact
  const touched = new Set<number>(); // pairs holding the new token, this merge
  while (tokens.length < size && heap.size > 0) {
    const [c, a, b] = heap.pop();
    const key = pairs.find(a, b);
    const now = pairs.count[key]!;
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
    touched.clear();
    const head = pairs.head[key]!;
    const pool = pairs.lists; // (its array can grow below: read through it each time)
    for (let ch = head; ch !== -1; ch = pool.pool[ch]!) {
      for (let q = 0, used = pool.pool[ch + 1]!; q < used; q++) {
        const w = pool.pool[ch + 2 + q]!;
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
          const x = pairs.ka[k]!, y = pairs.kb[k]!;
          if (x !== nid && y !== nid) return false;
          touched.add(x * M + y); // a key, not the slot: slots move when the table grows
          return true;
        });
      }
    }
    // the merged pair's list is spent: its chunks go back to the pool (the slot stays, count 0)
    const k2 = pairs.find(a, b);
    if (pairs.head[k2] !== -1) pool.release(pairs.head[k2]!);
    pairs.head[k2] = pairs.tail[k2] = -1;
    pairs.count[k2] = 0;
    for (const t of touched) heap.push(pairs.count[pairs.find(Math.floor(t / M), t % M)]!, Math.floor(t / M), t % M);
  }
  return { tokens, alphabet, merges };
}
