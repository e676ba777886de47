// The addon's instance builder (native/instances.cc, behind InstanceBuilder.buildRecords) against the
// TypeScript make() + encodeRecord(): the same bytes, record for record.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InstanceBuilder, type SegmentedDoc, type InstanceOptions, type AnchorPlan } from '../src/data/instances.js';
import { Masker, type MaskSpec } from '../src/data/masking.js';
import { TokenFileWriter, TokenFileReader } from '../src/data/token-store.js';
import { decodeRecord } from '../src/data/shards/format.js';
import { loadNative } from '../src/native.js';

const CLS = 2, SEP = 3, PAD = 0, MASK = 4, UNK = 1;

/** Documents of 0-7 segments of 1-90 tokens, links to random others (some dangling to docs without
 * segments, some self links), two inputs; ids below `vocab`. */
function corpus(n: number, vocab: number, seed: number): SegmentedDoc[] {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const docs: SegmentedDoc[] = [];
  for (let i = 0; i < n; i++) {
    const nseg = i % 9 === 4 ? 0 : 1 + Math.floor(rnd() * 7);
    const bounds = [0];
    for (let k = 0; k < nseg; k++) bounds.push(bounds[k] + 1 + Math.floor(rnd() * 90));
    const tokens = new Int32Array(bounds[nseg]);
    for (let k = 0; k < tokens.length; k++) tokens[k] = rnd() < 0.03 ? [CLS, SEP, MASK, UNK][k & 3] : 5 + Math.floor(rnd() * (vocab - 5));
    const links: number[] = [];
    const nl = Math.floor(rnd() * 5);
    for (let k = 0; k < nl; k++) links.push(Math.floor(rnd() * n));
    if (i % 7 === 0) links.push(i);
    docs.push({ id: i % 5 === 0 ? `d${i}·é` : `doc-${i}`, input: i % 3 === 0 ? 1 : 0, tokens, bounds: Int32Array.from(bounds), links: Int32Array.from(new Set(links)), inDegree: 0 });
  }
  for (const d of docs) for (const j of d.links) docs[j].inDegree++;
  return docs;
}

function maskSpec(vocab: number, wholeWord: boolean): MaskSpec {
  const wordStart = new Uint8Array(vocab);
  for (let i = 0; i < vocab; i++) wordStart[i] = i % 4 === 0 ? 0 : 1;
  return { vocabSize: vocab, maskId: MASK, neverMask: [CLS, SEP, PAD, MASK], randomExclude: [PAD, UNK, CLS, SEP, MASK], maskProb: 0.15, maxPredictions: 20, wholeWord, wordStart };
}

function options(nIn: number, extra: Partial<InstanceOptions>): InstanceOptions {
  return {
    seed: 2 ** 40 + 12345,
    maxSeqLen: 128,
    dupeFactor: 2,
    labelProbs: [
      [1 / 3, 1 / 3, 1 / 3],
      [0.2, 0.3, 0.5],
    ].slice(0, nIn) as [number, number, number][],
    keepRate: [1, 1.5].slice(0, nIn),
    clsId: CLS,
    sepId: SEP,
    ...extra,
  };
}

/** plan() every round in chunks, then both builders make the records of every chunk. */
function compare(t: import('ava').ExecutionContext, docs: SegmentedDoc[], split: Uint8Array, opts: InstanceOptions, width: 2 | 4, mkTokens?: () => TokenFileReader) {
  const ts = new InstanceBuilder(docs, split, { ...opts, native: false, tokens: mkTokens?.() });
  const nat = new InstanceBuilder(docs, split, { ...opts, tokens: mkTokens?.() });
  let records = 0, bad = 0;
  for (let round = 0; round < opts.dupeFactor; round++)
    for (let d0 = 0; d0 < docs.length; d0 += 37) {
      const plan: AnchorPlan = ts.plan(round, d0, Math.min(docs.length, d0 + 37));
      const plan2 = nat.plan(round, d0, Math.min(docs.length, d0 + 37));
      t.deepEqual(plan2, plan);
      const a = ts.buildRecords(round, plan, width);
      const b = nat.buildRecords(round, plan, width, 1 + (d0 % 3));
      records += plan.label.length;
      if (Buffer.compare(Buffer.from(a.records), Buffer.from(b.records)) !== 0 || a.lens.join() !== b.lens.join() || a.ntok.join() !== b.ntok.join()) {
        if (bad++ === 0) {
          // name the first record that differs
          for (let k = 0, off = 0; k < a.lens.length; off += a.lens[k], k++) {
            const ra = Buffer.from(a.records.subarray(off, off + a.lens[k]));
            const rb = Buffer.from(b.records.subarray(off, off + b.lens[k]));
            if (!ra.equals(rb)) {
              t.deepEqual(decodeRecord(rb, 0, false), decodeRecord(ra, 0), `round ${round}, anchor ${k} of chunk ${d0}`);
              break;
            }
          }
        }
      }
    }
  t.is(bad, 0, 'chunks whose records differ');
  t.true(records > 500, `${records} records`);
  return records;
}

test('native = TypeScript records: in-memory documents, static masks, widths 2 and 4, 1-3 threads', (t) => {
  t.truthy((loadNative() as unknown as Record<string, unknown>).instanceBuilderBuild, 'the addon has the instance builder');
  const docs = corpus(300, 5000, 1);
  const split = new Uint8Array(docs.length);
  for (let i = 0; i < docs.length; i += 6) split[i] = 1;
  for (const wholeWord of [false, true]) {
    compare(t, docs, split, options(2, { masker: new Masker(maskSpec(5000, wholeWord)) }), 2);
    compare(t, docs, split, options(2, { masker: new Masker(maskSpec(5000, wholeWord)) }), 4);
  }
});

test('native = TypeScript records: dynamic masks (none stored), one input, short sequences (truncation)', (t) => {
  const docs = corpus(200, 70000, 2).map((d) => ({ ...d, input: 0 }));
  compare(t, docs, new Uint8Array(docs.length), options(1, { maxSeqLen: 16 }), 4);
});

test('native = TypeScript records: tokens from the token file, on disk and in memory', (t) => {
  const docs = corpus(250, 3000, 3);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-inst-native-'));
  try {
    const file = path.join(dir, 'tokens.bin');
    const w = new TokenFileWriter(file, 2);
    const off = new Float64Array(docs.length);
    docs.forEach((d, i) => (off[i] = w.append(d.tokens!)));
    w.finish();
    const end = (d: number) => off[d] + docs[d].tokens!.length;
    const bare = docs.map((d) => ({ ...d, tokens: undefined }));
    const split = new Uint8Array(docs.length);
    for (let i = 1; i < docs.length; i += 5) split[i] = 1;
    const opts = options(2, { masker: new Masker(maskSpec(3000, false)) });
    compare(t, bare, split, opts, 2, () => new TokenFileReader(file, 2, off, end));
    // close() lets go of the token file; the builder goes on in TypeScript, with the same bytes
    const b = new InstanceBuilder(bare, split, { ...opts, tokens: new TokenFileReader(file, 2, off, end) });
    const plan = b.plan(0, 0, 50);
    const before = b.buildRecords(0, plan, 2);
    b.close();
    t.deepEqual(b.buildRecords(0, plan, 2), before);
    const mem = new Uint16Array(fs.readFileSync(file).buffer.slice(0));
    compare(t, bare, split, opts, 2, () => new TokenFileReader(file, 2, off, end, mem));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('native instance builder: anchors plan() could not have made, and bad config, throw RangeError/TypeError', (t) => {
  const docs = corpus(40, 1000, 4);
  const b = new InstanceBuilder(docs, new Uint8Array(docs.length), options(2, {}));
  const plan = b.plan(0, 0, 40);
  const k = plan.label.findIndex((l) => l === 0);
  const bad = (f: (p: AnchorPlan) => void) => {
    const p = { doc: plan.doc.slice(), seg: plan.seg.slice(), copy: plan.copy.slice(), label: plan.label.slice() };
    f(p);
    return p;
  };
  t.throws(() => b.buildRecords(0, bad((p) => (p.doc[0] = 999)), 2), { instanceOf: RangeError, message: /anchor 0: doc/ });
  t.throws(() => b.buildRecords(0, bad((p) => (p.seg[k] = docs[p.doc[k]].bounds.length - 2)), 2), { instanceOf: RangeError, message: /contiguous, but seg is the last/ });
  t.throws(() => b.buildRecords(0, bad((p) => (p.label[0] = 5)), 2), { instanceOf: RangeError, message: /label must be/ });
  const noLinks = docs.findIndex((d, i) => d.bounds.length > 1 && !b.hasLinks(i));
  t.throws(() => b.buildRecords(0, { doc: Int32Array.of(noLinks), seg: Int32Array.of(0), copy: Int32Array.of(0), label: Int8Array.of(2) }, 2), { instanceOf: RangeError, message: /no link targets/ });
  t.notThrows(() => b.buildRecords(0, plan, 2));
  const a = loadNative() as unknown as Record<string, (...x: unknown[]) => unknown>;
  t.throws(() => a.instanceBuilderCreate(null), { instanceOf: TypeError });
  t.throws(() => a.instanceBuilderCreate({ seed: -1 }), { instanceOf: RangeError, message: /cfg.seed/ });
  t.throws(() => a.instanceBuilderBuild({}, 0, new Int32Array(0), new Int32Array(0), new Int32Array(0), new Int8Array(0), 1), { instanceOf: TypeError, message: /handle/ });
});

test('native instance builder boundary: 600 random bad configs and calls throw TypeError/RangeError (or name a missing file), never crash', (t) => {
  const docs = corpus(30, 500, 5);
  const split = new Uint8Array(docs.length);
  split[3] = split[4] = 1;
  const b = new InstanceBuilder(docs, split, options(2, { masker: new Masker(maskSpec(500, true)) }));
  // the config the builder would hand over (a private method: this test is about the addon's boundary)
  const cfg = (b as unknown as { nativeConfig(w: number): Record<string, unknown> }).nativeConfig(2);
  const a = loadNative() as unknown as Record<string, (...x: unknown[]) => unknown>;
  t.truthy(a.instanceBuilderCreate(cfg), 'the template config is valid');
  let s = 99;
  const rnd = (n: number) => Math.floor(((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * n);
  const keys = Object.keys(cfg);
  const bad = [NaN, -1, 1.5, 2 ** 40, 'x', null, {}, [], new Float32Array(3), new Int32Array(0), true];
  let thrown = 0;
  for (let k = 0; k < 500; k++) {
    const c: Record<string, unknown> = { ...cfg };
    const key = keys[rnd(keys.length)];
    const v = c[key];
    const what = rnd(4);
    if (what === 0) delete c[key];
    else if (what === 1) c[key] = bad[rnd(bad.length)];
    else if (ArrayBuffer.isView(v) && (v as Int32Array).length > 0) {
      // a typed array one entry short, or with one entry out of range
      const arr = (v as Int32Array).slice();
      if (what === 2) c[key] = arr.subarray(0, arr.length - 1);
      else {
        arr[rnd(arr.length)] = [-5, 1e6, 2 ** 31 - 1][rnd(3)];
        c[key] = arr;
      }
    } else if (key === 'mask' && v) {
      const m = { ...(v as Record<string, unknown>) };
      const mk = Object.keys(m)[rnd(Object.keys(m).length)];
      m[mk] = bad[rnd(bad.length)];
      c[key] = m;
    } else c[key] = bad[rnd(bad.length)];
    try {
      a.instanceBuilderCreate(c);
    } catch (e) {
      // a path that does not exist is an I/O error, which names the file
      t.true(e instanceof TypeError || e instanceof RangeError || /cannot open token file/.test((e as Error).message), `${key}: ${(e as Error).message}`);
      thrown++;
    }
  }
  t.true(thrown > 300, `${thrown} of 500 mutated configs were rejected (some mutations are harmless)`);
  const h = a.instanceBuilderCreate(cfg);
  const plan = b.plan(0, 0, docs.length);
  for (let k = 0; k < 100; k++) {
    const args: unknown[] = [h, 0, plan.doc, plan.seg, plan.copy, plan.label, 1];
    const i = rnd(args.length);
    const badArgs = bad.filter((x) => x !== 2 ** 40); // a valid round
    args[i] = i === 0 ? {} : badArgs[rnd(badArgs.length)];
    t.throws(() => a.instanceBuilderBuild(...args), { instanceOf: Error }, `argument ${i}`);
  }
  const r = a.instanceBuilderBuild(h, 0, plan.doc, plan.seg, plan.copy, plan.label, 2) as { lens: Int32Array };
  t.is(r.lens.length, plan.label.length);
});
