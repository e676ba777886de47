import test from 'ava';
import { InstanceBuilder, splitDocuments, parseLabelProbs, unlinkedProbs, type SegmentedDoc, type BuiltInstance, CONTIGUOUS, RANDOM, LINKED } from '../src/data/instances.js';
import { Masker, Rng, mixSeed, defaultMaxPredictions, packBitmap, unpackBitmap, type MaskSpec } from '../src/data/masking.js';
import { splitSentences, packSegments, truncatePair } from '../src/data/segment.js';

const CLS = 2, SEP = 3, PAD = 0, MASK = 4, UNK = 1;
const VOCAB = 1000;

/** A document with `nseg` segments of `len` tokens; token values encode (doc, seg) for checking pairs. */
function doc(i: number, nseg: number, links: number[] = [], input = 0, len = 20): SegmentedDoc {
  const tokens = new Int32Array(nseg * len);
  for (let k = 0; k < tokens.length; k++) tokens[k] = 10 + ((i * 7 + Math.floor(k / len) * 3 + k) % (VOCAB - 10));
  const bounds = Int32Array.from({ length: nseg + 1 }, (_, k) => k * len);
  return { id: `d${i}`, input, tokens, bounds, links: Int32Array.from(links), inDegree: 0 };
}

function withInDegree(docs: SegmentedDoc[]): SegmentedDoc[] {
  for (const d of docs) d.inDegree = 0;
  for (const d of docs) for (const j of new Set(d.links)) docs[j].inDegree++;
  return docs;
}

function build(docs: SegmentedDoc[], opts: Partial<ConstructorParameters<typeof InstanceBuilder>[2]> = {}, split?: Uint8Array) {
  const nIn = Math.max(...docs.map((d) => d.input)) + 1;
  const b = new InstanceBuilder(docs, split ?? new Uint8Array(docs.length), {
    seed: 7,
    maxSeqLen: 64,
    dupeFactor: 1,
    labelProbs: Array.from({ length: nIn }, () => [1 / 3, 1 / 3, 1 / 3] as [number, number, number]),
    keepRate: Array.from({ length: nIn }, () => 1),
    clsId: CLS,
    sepId: SEP,
    ...opts,
  });
  return { builder: b, out: [...b.build()] };
}

/** Linked corpus: every document has 6 segments and links to 3 others. */
function linkedCorpus(n: number): SegmentedDoc[] {
  const docs: SegmentedDoc[] = [];
  for (let i = 0; i < n; i++) docs.push(doc(i, 6, [(i + 1) % n, (i + 5) % n, (i + 11) % n]));
  return withInDegree(docs);
}

test('label ratios are 1/3 each on a linked corpus, despite last segments and unlinked docs', (t) => {
  const docs = linkedCorpus(200);
  // a quarter of the documents have no links: their linked draws must be paid back elsewhere
  for (let i = 0; i < 200; i += 4) docs[i].links = new Int32Array(0);
  const { out, builder } = build(withInDegree(docs), { dupeFactor: 3 });
  const n = out.length;
  t.is(n, 200 * 6 * 3);
  const c = [0, 0, 0];
  for (const o of out) c[o.inst.drpLabel]++;
  for (let l = 0; l < 3; l++) t.true(Math.abs(c[l] / n - 1 / 3) < 0.02, `label ${l}: ${c[l]}/${n}`);
  t.true(builder.stats.substituted > 0);
  t.deepEqual(builder.stats.labels, c as [number, number, number]);
});

test('a corpus without links gets 50/50 contiguous/random', (t) => {
  const docs = withInDegree(Array.from({ length: 300 }, (_, i) => doc(i, 5)));
  const probs = unlinkedProbs([1 / 3, 1 / 3, 1 / 3]);
  t.deepEqual(probs, [0.5, 0.5, 0]);
  const { out } = build(docs, { labelProbs: [probs], dupeFactor: 2 });
  const c = [0, 0, 0];
  for (const o of out) c[o.inst.drpLabel]++;
  t.is(c[LINKED], 0);
  t.true(Math.abs(c[CONTIGUOUS] / out.length - 0.5) < 0.02, JSON.stringify(c));
});

test('pairs are well formed: contiguous adjacent, random other doc, linked a real edge, [CLS] A [SEP] B [SEP]', (t) => {
  const docs = linkedCorpus(60);
  const { out } = build(docs);
  const byId = new Map(docs.map((d, i) => [d.id, i]));
  for (const { inst } of out) {
    const a = byId.get(inst.docA)!;
    const b = byId.get(inst.docB)!;
    if (inst.drpLabel === CONTIGUOUS) {
      t.is(a, b);
      t.is(inst.segB, inst.segA + 1);
    } else if (inst.drpLabel === RANDOM) t.not(a, b);
    else t.true(Array.from(docs[a].links).includes(b), `${inst.docA} -> ${inst.docB} is not an edge`);
    const ids = inst.inputIds;
    t.is(ids[0], CLS);
    t.is(ids[inst.lenA + 1], SEP);
    t.is(ids[ids.length - 1], SEP);
    const A = docs[a];
    const B = docs[b];
    t.deepEqual(Array.from(ids.subarray(1, inst.lenA + 1)), Array.from(A.tokens!.subarray(A.bounds[inst.segA], A.bounds[inst.segA + 1])));
    t.deepEqual(Array.from(ids.subarray(inst.lenA + 2, ids.length - 1)), Array.from(B.tokens!.subarray(B.bounds[inst.segB], B.bounds[inst.segB + 1])));
  }
});

test('linked partners follow 1/in-degree: a hub linked by everyone is rarely chosen', (t) => {
  // star: docs 1..K each link to the hub (doc 0, in-degree K) and to a private leaf (in-degree 1)
  const K = 9;
  const docs: SegmentedDoc[] = [doc(0, 1)];
  for (let i = 1; i <= K; i++) docs.push(doc(i, 1, [0, K + i]));
  for (let i = 1; i <= K; i++) docs.push(doc(K + i, 1));
  withInDegree(docs);
  t.is(docs[0].inDegree, K);
  const { out } = build(docs, { labelProbs: [[0, 0, 1]], dupeFactor: 400 });
  let hub = 0, leaf = 0;
  for (const { inst } of out) {
    if (inst.drpLabel !== LINKED) continue;
    if (inst.docB === 'd0') hub++;
    else leaf++;
  }
  const n = hub + leaf;
  t.is(n, K * 400);
  // expected P(hub) = (1/K) / (1/K + 1) = 1/(K+1)
  const p = 1 / (K + 1);
  const chi2 = (hub - n * p) ** 2 / (n * p) + (leaf - n * (1 - p)) ** 2 / (n * (1 - p));
  t.true(chi2 < 10.83, `chi2 ${chi2.toFixed(2)} (hub ${hub}, leaf ${leaf}), p=0.001 critical value 10.83`);
  // and clearly not uniform over targets (which would give the hub half)
  t.true(hub / n < 0.15);
});

test('split by document: no document in both splits, partners drawn from the anchor split', (t) => {
  const docs = linkedCorpus(100);
  const split = splitDocuments(docs, 3, 0.2, 2);
  const nValid = split.reduce((a, b) => a + b, 0);
  t.is(nValid, 20);
  const { out } = build(docs, { dupeFactor: 2 }, split);
  const byId = new Map(docs.map((d, i) => [d.id, i]));
  let valid = 0;
  for (const o of out) {
    const a = byId.get(o.inst.docA)!;
    const b = byId.get(o.inst.docB)!;
    t.is(o.split as number, split[a]);
    t.is(split[b], split[a], `${o.inst.docA} (split ${split[a]}) paired with ${o.inst.docB} (split ${split[b]})`);
    valid += o.split;
  }
  t.true(valid > 0);
  // split depends on seed and ids only
  t.deepEqual(splitDocuments(docs, 3, 0.2, 2), split);
  t.notDeepEqual(splitDocuments(docs, 4, 0.2, 2), split);
  // graph-aware: validation documents come with their link neighbourhoods, so the valid split keeps
  // linked pairs (a pick of 100 of these 500 documents by hash alone keeps about 20% of their links inside)
  const ring = linkedCorpus(500);
  const vs = splitDocuments(ring, 3, 0.2, 2);
  t.is(vs.reduce((a, b) => a + b, 0), 100);
  let inside = 0;
  let all = 0;
  ring.forEach((d, i) => {
    if (!vs[i]) return;
    for (const j of d.links) {
      all++;
      if (vs[j]) inside++;
    }
  });
  t.true(inside / all > 0.5, `only ${inside} of ${all} links of validation documents stay inside the split`);
  const vb = build(ring, {}, vs).out.filter((o) => o.split === 1);
  t.true(vb.filter((o) => o.inst.drpLabel === LINKED).length / vb.length > 0.2, 'the validation split has linked pairs');
  // minimum number of validation documents
  t.is(splitDocuments(linkedCorpus(30), 3, 0.01, 2).reduce((a, b) => a + b, 0), 2);
  t.is(splitDocuments(linkedCorpus(30), 3, 0, 2).reduce((a, b) => a + b, 0), 0);
});

test('deterministic by seed; keep rates mix inputs by weight', (t) => {
  const a = build(linkedCorpus(40)).out;
  const b = build(linkedCorpus(40)).out;
  t.deepEqual(a, b);
  const c = build(linkedCorpus(40), { seed: 8 }).out;
  t.notDeepEqual(a.map((x) => x.inst.docB), c.map((x) => x.inst.docB));
  // two inputs, 100 anchors each; keep rates 1.4 and 0.6 → about 70/30
  const docs = [...Array.from({ length: 25 }, (_, i) => doc(i, 4, [], 0)), ...Array.from({ length: 25 }, (_, i) => doc(25 + i, 4, [], 1))];
  const { out, builder } = build(withInDegree(docs), { keepRate: [1.4, 0.6], dupeFactor: 10, labelProbs: [[0.5, 0.5, 0], [0.5, 0.5, 0]] });
  const share = builder.stats.perInput[0].instances / out.length;
  t.true(Math.abs(share - 0.7) < 0.02, `share ${share}`);
});

test('label probabilities parse and normalise', (t) => {
  t.deepEqual(parseLabelProbs('1,1,2'), [0.25, 0.25, 0.5]);
  t.throws(() => parseLabelProbs('1,2'), { message: /three non-negative/ });
  t.throws(() => parseLabelProbs('0,0,0'), { message: /sum to 0/ });
});

function maskSpec(over: Partial<MaskSpec> = {}): MaskSpec {
  return { vocabSize: VOCAB, maskId: MASK, neverMask: [CLS, SEP, PAD, MASK], randomExclude: [PAD, UNK, CLS, SEP, MASK], maskProb: 0.15, maxPredictions: 1000, wholeWord: false, ...over };
}

test('masking: 15% of non-special tokens, 80/10/10, never [CLS]/[SEP]/[PAD]', (t) => {
  const m = new Masker(maskSpec());
  const rng = new Rng(1);
  let cand = 0, picked = 0, toMask = 0, kept = 0, random = 0;
  for (let r = 0; r < 400; r++) {
    const ids = new Int32Array(200);
    for (let k = 0; k < ids.length; k++) ids[k] = 10 + rng.int(VOCAB - 10);
    ids[0] = CLS;
    ids[90] = SEP;
    ids[199] = SEP;
    ids.fill(PAD, 180, 199);
    cand += 200 - 3 - 19;
    const res = m.mask(ids, rng);
    picked += res.positions.length;
    for (let k = 0; k < res.positions.length; k++) {
      const p = res.positions[k];
      t.true(![CLS, SEP, PAD].includes(ids[p]), `masked special token at ${p}`);
      if (k > 0 && res.positions[k - 1] >= p) t.fail('positions not ascending');
      const rep = res.replacements[k];
      if (rep === MASK) toMask++;
      else if (rep === ids[p]) kept++;
      else {
        random++;
        t.true(rep >= 5 && rep < VOCAB, `random replacement ${rep} is special`);
      }
    }
  }
  t.true(Math.abs(picked / cand - 0.15) < 0.005, `rate ${picked / cand}`);
  t.true(Math.abs(toMask / picked - 0.8) < 0.02, `mask ${toMask / picked}`);
  t.true(Math.abs(kept / picked - 0.1) < 0.02, `kept ${kept / picked}`);
  t.true(Math.abs(random / picked - 0.1) < 0.02, `random ${random / picked}`);
});

test('masking: cap on predictions, whole words, determinism', (t) => {
  t.is(defaultMaxPredictions(512), 77);
  t.is(defaultMaxPredictions(128), 20);
  const ids = Int32Array.from({ length: 500 }, (_, k) => (k === 0 ? CLS : k === 499 ? SEP : 10 + (k % 900)));
  const capped = new Masker(maskSpec({ maxPredictions: 20 })).mask(ids, new Rng(2));
  t.is(capped.positions.length, 20);
  // whole-word: ids >= 500 are continuation pieces; a masked piece's whole word must be masked
  const ws = new Uint8Array(VOCAB).fill(1);
  for (let id = 500; id < VOCAB; id++) ws[id] = 0;
  const m = new Masker(maskSpec({ wholeWord: true, wordStart: ws }));
  const rng = new Rng(3);
  for (let r = 0; r < 50; r++) {
    const x = new Int32Array(120);
    for (let k = 0; k < x.length; k++) x[k] = rng.next() < 0.5 ? 10 + rng.int(490) : 500 + rng.int(400);
    x[0] = CLS;
    x[60] = SEP;
    x[119] = SEP;
    const res = m.mask(x, rng);
    const set = new Set(res.positions);
    for (const p of res.positions) {
      if (p > 1 && !ws[x[p]] && ![CLS, SEP].includes(x[p - 1])) t.true(set.has(p - 1), `piece at ${p} masked without its word start`);
      if (p + 1 < x.length && !ws[x[p + 1]] && ![CLS, SEP].includes(x[p + 1])) t.true(set.has(p + 1), `word at ${p} only partly masked`);
    }
  }
  const a = new Masker(maskSpec()).mask(ids, new Rng(9, 1));
  const b = new Masker(maskSpec()).mask(ids, new Rng(9, 1));
  t.deepEqual(a, b);
  t.deepEqual(unpackBitmap(packBitmap(ws), VOCAB), ws);
});

test('rng: deterministic, state round-trips, seeds differ', (t) => {
  const r = new Rng(42, 1, 2);
  const first = [r.nextU32(), r.nextU32()];
  const s = r.state();
  const x = r.next();
  t.is(Rng.fromState(s).next(), x);
  const r2 = new Rng(42, 1, 2);
  t.deepEqual([r2.nextU32(), r2.nextU32()], first);
  t.not(mixSeed(1, 2, 3), mixSeed(1, 3, 2));
  t.not(mixSeed(2 ** 40), mixSeed(0));
  let sum = 0;
  for (let i = 0; i < 10000; i++) sum += r.next();
  t.true(Math.abs(sum / 10000 - 0.5) < 0.02);
});

test('sentence splitting, segment packing and pair truncation', (t) => {
  t.deepEqual(splitSentences('Dr. Smith went home. He met J. Doe at 5 p.m. and left! Did he?\n\nNew paragraph here'), [
    'Dr. Smith went home.',
    'He met J. Doe at 5 p.m. and left!',
    'Did he?',
    'New paragraph here',
  ]);
  t.deepEqual(splitSentences('  \n \n'), []);
  const s = (n: number, v: number) => new Int32Array(n).fill(v);
  const { tokens, bounds } = packSegments([s(3, 1), s(4, 2), s(2, 3), s(12, 4), s(1, 5)], 8);
  // [1,1,1,2,2,2,2] | [3,3] | [4 x8] | [4 x4, 5]
  t.deepEqual(Array.from(bounds), [0, 7, 9, 17, 22]);
  t.is(tokens.length, 22);
  for (let k = 0; k + 1 < bounds.length; k++) t.true(bounds[k + 1] - bounds[k] <= 8);
  // over-long sentence with word pieces (ids >= 100 continue a word): cuts land before word starts
  const long = Int32Array.from([1, 2, 100, 101, 3, 4, 102, 103, 104, 5, 6, 7]);
  const cut = packSegments([long], 8, (id) => id < 100);
  t.deepEqual(Array.from(cut.bounds), [0, 5, 12]); // not 8, which would split the word 4·102·103·104
  t.deepEqual(Array.from(cut.tokens), Array.from(long));
  const coin = new Rng(5);
  const [sa, ea, sb, eb] = truncatePair(10, 4, 9, () => coin.next());
  t.is(ea - sa + (eb - sb), 9);
  t.is(eb - sb, 4); // the longer side is cut first
  t.deepEqual(truncatePair(3, 4, 9, () => 0), [0, 3, 0, 4]);
});
