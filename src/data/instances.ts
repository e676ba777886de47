// LinkBERT instance creation (Yasunaga et al. 2022, §4): for every anchor segment A, pick the
// document-relation label — contiguous / random / linked — and the partner segment B, then build
// [CLS] A [SEP] B [SEP] and (for static masking) choose the masked-LM positions.
//
// Determinism: each document gets its own PRNG stream Rng(seed, docIndex, dupeRound) for its labels,
// and each anchor its own stream for partner, truncation and masks, so the result never depends on how
// documents were spread over workers. The only state carried from one anchor to the next is the
// per-input label deficit (below): plan() decides labels sequentially in the fixed order dupe round,
// document index, segment index (cheap), and make() builds the instances, in any thread.
//
// Label fallback, keeping the overall ratio: a label is drawn with the configured probabilities. When
// the drawn label is impossible for this anchor (A is the last segment → no contiguous; the document
// has no usable out-link → no linked; a lone document in its split → no random), the anchor takes the
// possible label with the largest deficit instead, and the drawn label's deficit grows by one
// (deficit = drawn − assigned, per label, per input). When a later anchor draws a label that is in
// surplus (deficit < 0) and some label with a positive deficit is possible there, it takes that label.
// So deficits are paid back as soon as anchors allow and the final counts track the probabilities;
// what could not be paid back is reported in the manifest (label_fallback.unresolved).
//
// Splits: the anchor's document decides the split, and B is only drawn from documents of the SAME split
// (random and linked alike; linked targets in the other split are ignored), so no document ever
// appears in both train and valid. Random partners come from the same input corpus when it has another
// document in the split (so a mixed corpus cannot be told apart by style alone), else from any input.
import { CONTIGUOUS, RANDOM, LINKED, type Instance, type DrpLabelName, DRP_LABELS, encodeRecord } from './shards/format.js';
import { nativeOptional } from '../native.js';
import { Rng, Masker } from './masking.js';
import { truncatePair } from './segment.js';
import { TokenFileReader } from './token-store.js';

export { DRP_LABELS, CONTIGUOUS, RANDOM, LINKED };
export type { Instance, DrpLabelName };

/** The native instance builder's entry points (native/instances.cc). */
interface NativeInstances {
  instanceBuilderCreate(cfg: Record<string, unknown>): object;
  instanceBuilderClose(h: object): void;
  instanceBuilderBuild(h: object, round: number, doc: Int32Array, seg: Int32Array, copy: Int32Array, label: Int8Array, threads: number): { records: Uint8Array<ArrayBuffer>; lens: Int32Array<ArrayBuffer>; ntok: Int32Array<ArrayBuffer> };
}

let nativeAddon: NativeInstances | null | undefined;
/** The addon's instance builder, or null: not built, or LINKBERT_NATIVE_INSTANCES=0 (TypeScript builds them). */
function nativeInstances(): NativeInstances | null {
  if (nativeAddon === undefined) nativeAddon = nativeOptional<NativeInstances>('instanceBuilderBuild', 'LINKBERT_NATIVE_INSTANCES');
  return nativeAddon;
}

/** A tokenised, segmented document. */
export interface SegmentedDoc {
  id: string;
  /** index of the input (corpus) it came from */
  input: number;
  /** the document's tokens; absent when they live in a token file (InstanceOptions.tokens) */
  tokens?: Int32Array;
  /** segment k = tokens[bounds[k], bounds[k+1]) */
  bounds: Int32Array;
  /** distinct indices (into the SegmentedDoc array) of documents this one links to */
  links: Int32Array;
  /** in-degree in the link graph (all documents), used to weight linked partners ∝ 1/in-degree */
  inDegree: number;
}

export type Split = 0 | 1; // 0 train, 1 valid

export interface InstanceOptions {
  seed: number;
  maxSeqLen: number;
  dupeFactor: number;
  /** per input: [contiguous, random, linked] probabilities (normalised) */
  labelProbs: [number, number, number][];
  /**
   * per input: expected copies of each anchor per dupe round (1 = every anchor once). Fractional parts
   * are drawn per anchor; used to mix corpora with weights.
   */
  keepRate: number[];
  clsId: number;
  sepId: number;
  /** static masking; undefined for dynamic-mask shards */
  masker?: Masker;
  /** where documents without in-memory `tokens` read theirs (prepare's on-disk token store) */
  tokens?: TokenFileReader;
  /** buildRecords() in the addon when it is built (default true; the bytes are the same either way) */
  native?: boolean;
}

export interface BuiltInstance {
  inst: Instance;
  split: Split;
  input: number;
}

export function numSegments(d: SegmentedDoc): number {
  return d.bounds.length - 1;
}

/**
 * Choose the validation documents, count = round(fraction · n) but at least `minDocs` (when
 * fraction > 0) and at most half the documents. Documents without segments are never chosen.
 *
 * Graph-aware: seeds are taken in the order of hash(seed, doc id), and each seed brings its link
 * neighbourhood (breadth-first over out-links, nearest first, ties by hash order) up to
 * max(4, ceil(count / 8)) documents. B is only drawn inside the anchor's split, so a split of scattered
 * single documents would hold almost no linked pairs; whole neighbourhoods keep the linked class in
 * validation. Deterministic: a function of the ids, the links and the seed.
 */
export function splitDocuments(docs: SegmentedDoc[], seed: number, fraction: number, minDocs: number): Uint8Array {
  const split = new Uint8Array(docs.length);
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`valid fraction must be in [0, 1), got ${fraction}`);
  const usable: number[] = [];
  for (let i = 0; i < docs.length; i++) if (numSegments(docs[i]) > 0) usable.push(i);
  if (fraction === 0 || usable.length < 2) return split;
  const n = Math.min(Math.floor(usable.length / 2), Math.max(minDocs, Math.round(fraction * usable.length)));
  const keys = usable.map((i) => ({ i, k: hashString(docs[i].id, seed) }));
  keys.sort((a, b) => a.k - b.k || a.i - b.i);
  const rank = new Int32Array(docs.length).fill(-1); // hash order; -1: no segments
  keys.forEach((x, r) => (rank[x.i] = r));
  const cap = Math.max(4, Math.ceil(n / 8));
  let count = 0;
  for (let r = 0; r < keys.length && count < n; r++) {
    const s0 = keys[r].i;
    if (split[s0]) continue;
    split[s0] = 1;
    count++;
    const queue = [s0];
    for (let q = 0, taken = 1; q < queue.length && count < n && taken < cap; q++) {
      const next = Array.from(docs[queue[q]].links)
        .filter((j) => rank[j] >= 0 && !split[j])
        .sort((a, b) => rank[a] - rank[b]);
      for (const j of next) {
        if (count >= n || taken >= cap) break;
        if (split[j]) continue;
        split[j] = 1;
        count++;
        taken++;
        queue.push(j);
      }
    }
  }
  return split;
}

function hashString(s: string, seed: number): number {
  // FNV-1a over UTF-16 code units, then mixed with the seed
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const r = new Rng(seed, h >>> 0, 0x5eed);
  return r.nextU32();
}

/** Planned anchors, parallel arrays in output order. */
export interface AnchorPlan {
  doc: Int32Array;
  seg: Int32Array;
  copy: Int32Array;
  label: Int8Array;
}

export interface BuildStats {
  labels: [number, number, number];
  perInput: {
    instances: number;
    labels: [number, number, number];
    /** anchor draws: segments × dupe rounds */
    anchors: number;
    /** anchors given no copy (keepRate < 1: down-sampled by the mix) */
    dropped: number;
    /** anchors with a copy but no partner of any kind */
    noPartner: number;
  }[];
  substituted: number;
  unresolved: [number, number, number][];
  /** anchors for which no label at all was possible (single-segment document alone in its split) */
  noPartner: number;
  /** noPartner by split (train, valid) */
  noPartnerBySplit: [number, number];
}

/** Builds instances anchor by anchor; see the file comment for the label and split rules. */
export class InstanceBuilder {
  private split: Uint8Array;
  /** docs with segments, per split, and per (input, split) */
  private splitDocs: Int32Array[] = [];
  private groupDocs = new Map<string, Int32Array>();
  private posInGroup: Int32Array;
  private posInSplit: Int32Array;
  private linkTargets: (Int32Array | null)[];
  private linkCum: (Float64Array | null)[];
  private deficit: Float64Array[];
  readonly stats: BuildStats;

  constructor(private docs: SegmentedDoc[], split: Uint8Array, private opts: InstanceOptions) {
    if (opts.maxSeqLen < 8) throw new RangeError(`max_seq_len must be at least 8, got ${opts.maxSeqLen}`);
    this.split = split;
    const nIn = opts.labelProbs.length;
    this.posInGroup = new Int32Array(docs.length).fill(-1);
    this.posInSplit = new Int32Array(docs.length).fill(-1);
    const bySplit: number[][] = [[], []];
    const byGroup = new Map<string, number[]>();
    for (let i = 0; i < docs.length; i++) {
      if (numSegments(docs[i]) === 0) continue;
      const s = split[i];
      this.posInSplit[i] = bySplit[s].length;
      bySplit[s].push(i);
      const key = `${docs[i].input}:${s}`;
      let g = byGroup.get(key);
      if (!g) byGroup.set(key, (g = []));
      this.posInGroup[i] = g.length;
      g.push(i);
    }
    this.splitDocs = bySplit.map((a) => Int32Array.from(a));
    for (const [k, v] of byGroup) this.groupDocs.set(k, Int32Array.from(v));
    this.linkTargets = new Array(docs.length).fill(null);
    this.linkCum = new Array(docs.length).fill(null);
    for (let i = 0; i < docs.length; i++) {
      const d = docs[i];
      if (numSegments(d) === 0 || opts.labelProbs[d.input][LINKED] === 0) continue;
      const t: number[] = [];
      const seenT = new Set<number>();
      for (const j of d.links)
        if (j !== i && numSegments(docs[j]) > 0 && split[j] === split[i] && !seenT.has(j)) {
          seenT.add(j);
          t.push(j);
        }
      if (t.length === 0) continue;
      const cum = new Float64Array(t.length);
      let acc = 0;
      for (let k = 0; k < t.length; k++) cum[k] = acc += 1 / Math.max(1, docs[t[k]].inDegree);
      this.linkTargets[i] = Int32Array.from(t);
      this.linkCum[i] = cum;
    }
    this.deficit = Array.from({ length: nIn }, () => new Float64Array(3));
    this.stats = {
      labels: [0, 0, 0],
      perInput: Array.from({ length: nIn }, () => ({ instances: 0, labels: [0, 0, 0] as [number, number, number], anchors: 0, dropped: 0, noPartner: 0 })),
      substituted: 0,
      unresolved: [],
      noPartner: 0,
      noPartnerBySplit: [0, 0],
    };
  }

  /** Whether document i has at least one linked partner (same split, has segments). */
  hasLinks(i: number): boolean {
    return this.linkTargets[i] !== null;
  }

  splitOf(i: number): Split {
    return this.split[i] as Split;
  }

  /** All instances, in the fixed order dupe round → document → segment → copy (plan + make inline). */
  *build(): Generator<BuiltInstance> {
    for (let round = 0; round < this.opts.dupeFactor; round++)
      for (let d = 0; d < this.docs.length; d++) {
        const p = this.plan(round, d, d + 1);
        for (let k = 0; k < p.label.length; k++) yield this.make(round, p.doc[k], p.seg[k], p.copy[k], p.label[k]);
      }
    this.finish();
  }

  /** Call once after the last plan(): records the deficits that could not be paid back. */
  finish(): void {
    this.stats.unresolved = this.deficit.map((a) => [Math.max(0, a[0]), Math.max(0, a[1]), Math.max(0, a[2])]);
  }

  /**
   * Decide copies and labels for every anchor of documents [d0, d1) in dupe round `round`. Must be
   * called in order (round, then documents ascending): it carries the label deficits. Cheap; the
   * expensive part, make(), depends only on its arguments and can run anywhere.
   * Streams: Rng(seed, doc, round) for copies and labels; Rng(seed, doc, round, seg + 1, copy + 1) in make().
   */
  plan(round: number, d0: number, d1: number): AnchorPlan {
    const doc: number[] = [];
    const seg: number[] = [];
    const copy: number[] = [];
    const label: number[] = [];
    for (let d = d0; d < d1; d++) {
      const nseg = numSegments(this.docs[d]);
      if (nseg === 0) continue;
      const rng = new Rng(this.opts.seed, d, round);
      const input = this.docs[d].input;
      const rate = this.opts.keepRate[input];
      const whole = Math.floor(rate);
      const frac = rate - whole;
      const st = this.stats.perInput[input];
      st.anchors += nseg;
      for (let s = 0; s < nseg; s++) {
        let copies = whole;
        if (frac > 0 && rng.next() < frac) copies++;
        if (copies === 0) st.dropped++;
        for (let c = 0; c < copies; c++) {
          const l = this.chooseLabel(d, s, rng);
          if (l < 0) {
            st.noPartner++;
            this.stats.noPartnerBySplit[this.split[d]]++;
            continue;
          }
          doc.push(d);
          seg.push(s);
          copy.push(c);
          label.push(l);
          this.stats.labels[l]++;
          st.instances++;
          st.labels[l]++;
        }
      }
    }
    return { doc: Int32Array.from(doc), seg: Int32Array.from(seg), copy: Int32Array.from(copy), label: Int8Array.from(label) };
  }

  /** The label for one anchor, or -1 when no partner of any kind exists (counted in stats.noPartner). */
  private chooseLabel(d: number, seg: number, rng: Rng): number {
    const doc = this.docs[d];
    const input = doc.input;
    const s = this.split[d] as Split;
    const probs = this.opts.labelProbs[input];
    const avail = [
      probs[CONTIGUOUS] > 0 && seg + 1 < numSegments(doc),
      probs[RANDOM] > 0 && this.splitDocs[s].length > 1,
      probs[LINKED] > 0 && this.linkTargets[d] !== null,
    ];
    const def = this.deficit[input];
    const u = rng.next();
    const drawn = u < probs[0] ? 0 : u < probs[0] + probs[1] ? 1 : 2;
    if (avail[drawn]) {
      if (def[drawn] < 0) {
        let best = -1;
        for (let l = 0; l < 3; l++) if (avail[l] && def[l] > 0 && (best < 0 || def[l] > def[best])) best = l;
        if (best >= 0) {
          def[best]--;
          def[drawn]++;
          this.stats.substituted++;
          return best;
        }
      }
      return drawn;
    }
    let best = -1;
    for (let l = 0; l < 3; l++) {
      if (!avail[l]) continue;
      if (best < 0 || def[l] > def[best] || (def[l] === def[best] && probs[l] > probs[best])) best = l;
    }
    if (best < 0) {
      this.stats.noPartner++;
      return -1;
    }
    def[drawn]++;
    def[best]--;
    this.stats.substituted++;
    return best;
  }

  /**
   * The framed records (encodeRecord) of planned anchors `plan`, back to back, with each one's byte length
   * and token count: make() + encodeRecord() for each, or all of it in the addon (native/instances.cc) on
   * `threads` threads, which gives the same bytes (LINKBERT_NATIVE_INSTANCES=0 keeps TypeScript).
   */
  buildRecords(round: number, plan: AnchorPlan, width: 2 | 4, threads = 1): { records: Uint8Array<ArrayBuffer>; lens: Int32Array<ArrayBuffer>; ntok: Int32Array<ArrayBuffer> } {
    const n = plan.label.length;
    const nat = this.native(width);
    if (nat) return nat.addon.instanceBuilderBuild(nat.h, round, plan.doc, plan.seg, plan.copy, plan.label, Math.max(1, Math.min(256, Math.floor(threads))));
    if (n > 0) this.willMake(plan.doc[0], plan.doc[n - 1] + 1);
    const recs: Buffer[] = [];
    const lens = new Int32Array(n);
    const ntok = new Int32Array(n);
    let total = 0;
    for (let k = 0; k < n; k++) {
      const b = this.make(round, plan.doc[k], plan.seg[k], plan.copy[k], plan.label[k]);
      const r = encodeRecord(b.inst, width);
      recs.push(r);
      lens[k] = r.length;
      ntok[k] = b.inst.inputIds.length;
      total += r.length;
    }
    const records = new Uint8Array(total);
    let off = 0;
    for (const r of recs) {
      records.set(r, off);
      off += r.length;
    }
    return { records, lens, ntok };
  }

  private nativeBuilder: { addon: NativeInstances; h: object; width: number } | null | undefined;

  /** Releases the addon's builder (it holds the token file open); buildRecords() then runs in TypeScript. */
  close(): void {
    if (this.nativeBuilder) this.nativeBuilder.addon.instanceBuilderClose(this.nativeBuilder.h);
    this.nativeBuilder = null;
  }

  /** The addon's builder for this one (created on first use), or null: not built, or turned off. */
  private native(width: 2 | 4): { addon: NativeInstances; h: object } | null {
    if (this.nativeBuilder === undefined) {
      this.nativeBuilder = null;
      const addon = this.opts.native === false ? null : nativeInstances();
      if (addon) this.nativeBuilder = { addon, h: addon.instanceBuilderCreate(this.nativeConfig(width)), width };
    }
    if (this.nativeBuilder && this.nativeBuilder.width !== width) throw new Error(`internal: record width ${width}, but the builder was made for ${this.nativeBuilder.width}`);
    return this.nativeBuilder;
  }

  /** Everything make() reads, flattened into arrays (see native/instances.cc). */
  private nativeConfig(width: 2 | 4): Record<string, unknown> {
    const docs = this.docs;
    const nd = docs.length;
    let nb = 0;
    for (const d of docs) nb += d.bounds.length;
    const bounds = new Int32Array(nb);
    const bOff = new Float64Array(nd + 1);
    for (let i = 0, b = 0; i < nd; i++) {
      bounds.set(docs[i].bounds, b);
      b += docs[i].bounds.length;
      bOff[i + 1] = b;
    }
    // tokens: the token file's (in memory or on disk), or the documents' own arrays concatenated
    let tokens: Uint16Array | Int32Array | string;
    let tokOff: Float64Array;
    let tokenWidth: number = width;
    const src = this.opts.tokens?.source();
    if (src) {
      tokens = src.inMemory ?? src.file;
      tokenWidth = src.width;
      tokOff = src.docOffset.subarray(0, nd);
      for (let i = 0; i < nd; i++) if (docs[i].tokens) throw new Error('internal: documents with their own tokens and a token file');
    } else {
      tokOff = new Float64Array(nd);
      let nt = 0;
      for (let i = 0; i < nd; i++) {
        tokOff[i] = nt;
        nt += docs[i].tokens?.length ?? 0;
      }
      const all = new Int32Array(nt);
      for (let i = 0; i < nd; i++) if (docs[i].tokens) all.set(docs[i].tokens!, tokOff[i]);
      tokens = all;
    }
    // random partners: (input, split) groups, numbered
    const keys = [...this.groupDocs.keys()];
    const gIndex = new Map(keys.map((k, g) => [k, g]));
    const gOff = new Float64Array(keys.length + 1);
    keys.forEach((k, g) => (gOff[g + 1] = gOff[g] + this.groupDocs.get(k)!.length));
    const groups = new Int32Array(gOff[keys.length]);
    keys.forEach((k, g) => groups.set(this.groupDocs.get(k)!, gOff[g]));
    const groupOf = new Int32Array(nd).fill(-1);
    for (let i = 0; i < nd; i++) if (numSegments(docs[i]) > 0) groupOf[i] = gIndex.get(`${docs[i].input}:${this.split[i]}`)!;
    // linked partners
    const ltOff = new Float64Array(nd + 1);
    for (let i = 0; i < nd; i++) ltOff[i + 1] = ltOff[i] + (this.linkTargets[i]?.length ?? 0);
    const targets = new Int32Array(ltOff[nd]);
    const cum = new Float64Array(ltOff[nd]);
    for (let i = 0; i < nd; i++)
      if (this.linkTargets[i]) {
        targets.set(this.linkTargets[i]!, ltOff[i]);
        cum.set(this.linkCum[i]!, ltOff[i]);
      }
    const m = this.opts.masker;
    let mask: Record<string, unknown> | null = null;
    if (m) {
      const { never, pool } = m.tables();
      mask = {
        vocabSize: m.spec.vocabSize,
        maskId: m.spec.maskId,
        maxPredictions: m.spec.maxPredictions,
        maskProb: m.spec.maskProb,
        wholeWord: m.spec.wholeWord,
        never,
        pool,
        wordStart: m.spec.wordStart ? m.spec.wordStart.subarray(0, m.spec.vocabSize) : new Uint8Array(m.spec.vocabSize),
      };
    }
    return {
      seed: this.opts.seed,
      maxSeqLen: this.opts.maxSeqLen,
      width,
      clsId: this.opts.clsId,
      sepId: this.opts.sepId,
      docIds: docs.map((d) => d.id),
      bounds,
      bOff,
      tokOff: Float64Array.from(tokOff),
      tokens,
      tokenWidth,
      split: this.split,
      groupOf,
      posInGroup: this.posInGroup,
      posInSplit: this.posInSplit,
      groups,
      gOff,
      trainDocs: this.splitDocs[0],
      validDocs: this.splitDocs[1],
      targets,
      cum,
      ltOff,
      mask,
    };
  }

  /** Hint: the next make() calls anchor in documents [d0, d1) (lets a token file read them at once). */
  willMake(d0: number, d1: number): void {
    this.opts.tokens?.preload(d0, d1);
  }

  /** Build the instance of one planned anchor: partner B, truncation, static masks. Pure. */
  make(round: number, d: number, seg: number, copy: number, label: number): BuiltInstance {
    const rng = new Rng(this.opts.seed, d, round, seg + 1, copy + 1);
    const input = this.docs[d].input;
    const s = this.split[d] as Split;
    let bd: number;
    let bseg: number;
    if (label === CONTIGUOUS) {
      bd = d;
      bseg = seg + 1;
    } else if (label === RANDOM) {
      bd = this.randomDoc(d, s, input, rng);
      bseg = rng.int(numSegments(this.docs[bd]));
    } else {
      const t = this.linkTargets[d]!;
      const cum = this.linkCum[d]!;
      const x = rng.next() * cum[cum.length - 1];
      let k = 0;
      while (k < cum.length - 1 && cum[k] <= x) k++;
      bd = t[k];
      bseg = rng.int(numSegments(this.docs[bd]));
    }
    return { inst: this.makeInstance(d, seg, bd, bseg, label, rng), split: s, input };
  }

  /** A uniformly random other document of the same split, preferring the same input corpus. */
  private randomDoc(d: number, s: Split, input: number, rng: Rng): number {
    const group = this.groupDocs.get(`${input}:${s}`)!;
    if (group.length > 1) {
      const k = rng.int(group.length - 1);
      return group[k >= this.posInGroup[d] ? k + 1 : k];
    }
    const all = this.splitDocs[s];
    const k = rng.int(all.length - 1);
    return all[k >= this.posInSplit[d] ? k + 1 : k];
  }

  private segmentTokens(d: number, seg: number, slot: 0 | 1): Int32Array | Uint16Array {
    const D = this.docs[d];
    if (D.tokens) return D.tokens.subarray(D.bounds[seg], D.bounds[seg + 1]);
    if (!this.opts.tokens) throw new Error(`internal: document ${D.id} has no tokens and no token file was given`);
    return this.opts.tokens.read(d, D.bounds[seg], D.bounds[seg + 1], slot);
  }

  private makeInstance(d: number, seg: number, bd: number, bseg: number, label: number, rng: Rng): Instance {
    const A = this.docs[d];
    const B = this.docs[bd];
    const a = this.segmentTokens(d, seg, 0);
    const b = this.segmentTokens(bd, bseg, 1);
    const [sa, ea, sb, eb] = truncatePair(a.length, b.length, this.opts.maxSeqLen - 3, () => rng.next());
    const lenA = ea - sa;
    const ids = new Int32Array(lenA + (eb - sb) + 3);
    ids[0] = this.opts.clsId;
    ids.set(a.subarray(sa, ea), 1);
    ids[lenA + 1] = this.opts.sepId;
    ids.set(b.subarray(sb, eb), lenA + 2);
    ids[ids.length - 1] = this.opts.sepId;
    let maskedPositions: Int32Array = new Int32Array(0);
    let maskedIds: Int32Array = new Int32Array(0);
    if (this.opts.masker) {
      const m = this.opts.masker.mask(ids, rng);
      maskedPositions = m.positions;
      maskedIds = m.replacements;
    }
    return { inputIds: ids, lenA, maskedPositions, maskedIds, drpLabel: label, docA: A.id, docB: B.id, segA: seg, segB: bseg };
  }
}

/** Parse "c,r,l" into normalised probabilities. */
export function parseLabelProbs(s: string): [number, number, number] {
  const parts = s.split(',').map((x) => x.trim());
  const v = parts.map(Number);
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x) || x < 0))
    throw new Error(`--label-probs: expected three non-negative numbers "contiguous,random,linked", got "${s}"`);
  const sum = v[0] + v[1] + v[2];
  if (!(sum > 0)) throw new Error(`--label-probs: the probabilities sum to 0 in "${s}"`);
  return [v[0] / sum, v[1] / sum, v[2] / sum];
}

/**
 * Label probabilities for a corpus without links: the contiguous and random probabilities renormalised
 * (1/3,1/3,1/3 → 1/2,1/2,0). When both are zero the corpus cannot make pairs: 50/50 is used.
 */
export function unlinkedProbs(p: [number, number, number]): [number, number, number] {
  const s = p[0] + p[1];
  return s > 0 ? [p[0] / s, p[1] / s, 0] : [0.5, 0.5, 0];
}

/**
 * Segmented documents for instance-building workers: metadata in SharedArrayBuffers (read without
 * copies), tokens in prepare's token file (token-store.ts), read by offset.
 */
export interface SharedDocs {
  ids: string[];
  input: Int32Array;
  inDegree: Int32Array;
  /** document i's tokens start at token tokOff[i] of tokenFile */
  tokenFile: string;
  tokenWidth: 2 | 4;
  /** the whole token file, when it fitted prepare's memory budget (shared; then the file is not read) */
  tokensInMemory?: Uint16Array | Int32Array;
  tokOff: Float64Array;
  /** document i's segment bounds (relative to its first token) are bounds[bOff[i] .. bOff[i+1]) */
  bounds: Int32Array;
  bOff: Float64Array;
  links: Int32Array;
  lOff: Float64Array;
}

export function sharedI32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(Math.max(1, n) * 4), 0, n);
}
export function sharedF64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(Math.max(1, n) * 8), 0, n);
}

/** SegmentedDoc views over shared memory (no tokens: pass `tokenReader(sh)` as InstanceOptions.tokens). */
export function docsFromShared(sh: SharedDocs): SegmentedDoc[] {
  return sh.ids.map((id, i) => ({
    id,
    input: sh.input[i],
    inDegree: sh.inDegree[i],
    bounds: sh.bounds.subarray(sh.bOff[i], sh.bOff[i + 1]),
    links: sh.links.subarray(sh.lOff[i], sh.lOff[i + 1]),
  }));
}

export function tokenReader(sh: SharedDocs): TokenFileReader {
  // a document's last bound is its token count
  return new TokenFileReader(sh.tokenFile, sh.tokenWidth, sh.tokOff, (d) => sh.tokOff[d] + sh.bounds[sh.bOff[d + 1] - 1], sh.tokensInMemory);
}
