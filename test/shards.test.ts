import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { crc32c, crc32cUpdate } from '../src/data/crc32c.js';
import { encodeRecord, decodeRecord, RecordError, type Instance } from '../src/data/shards/format.js';
import { ShardWriter } from '../src/data/shards/writer.js';
import { ShuffledShardWriter } from '../src/data/shards/shuffle-writer.js';
import { ShardDataset } from '../src/data/shards/reader.js';
import { prepare } from '../src/data/prepare.js';
import { syntheticCorpus } from './fixtures/prepare/synthetic.js';
import { BatchLoader, iterateBatches, epochOrder, type Batch, type LoaderPosition } from '../src/data/batch.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/prepare/', import.meta.url));
const PROTO = fileURLToPath(new URL('../../proto/linkbert.proto', import.meta.url));
const VOCAB = path.join(FIXTURES, 'vocab.txt');

function tmp(t: { teardown(fn: () => void): void }, prefix = 'linkbert-shards-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

function inst(k: number, width: 2 | 4): Instance {
  const big = width === 4 ? 70000 : 0;
  const inputIds = Int32Array.from({ length: 10 + (k % 7) }, (_, i) => (i === 0 ? 2 : 5 + ((k * 31 + i * 17) % 200) + big));
  return {
    inputIds,
    lenA: 3,
    maskedPositions: k % 3 === 0 ? new Int32Array(0) : Int32Array.from([1, 4]),
    maskedIds: k % 3 === 0 ? new Int32Array(0) : Int32Array.from([4, 9 + big]),
    drpLabel: k % 3,
    docA: `doc ${k} é`,
    docB: `doc ${k + 1}`,
    segA: k,
    segB: k * 300,
  };
}

test('crc32c: standard check value, incremental, slicing matches bytewise', (t) => {
  const s = Buffer.from('123456789');
  t.is(crc32c(s), 0xe3069283);
  t.is(crc32c(new Uint8Array(0)), 0);
  const big = Buffer.from(Array.from({ length: 1037 }, (_, i) => (i * 131) & 255));
  t.is(crc32cUpdate(crc32c(big, 0, 500), big, 500), crc32c(big));
  // 32 zero bytes: RFC 3720 test vector
  t.is(crc32c(new Uint8Array(32)), 0x8a9136aa);
  t.is(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
});

test('record encoding round-trips and matches protobufjs reading proto/linkbert.proto', (t) => {
  const root = new protobuf.Root().loadSync(PROTO, { keepCase: true });
  const Record = root.lookupType('linkbert.Record');
  const Inst = root.lookupType('linkbert.Instance');
  for (const width of [2, 4] as const) {
    for (let k = 0; k < 6; k++) {
      const x = inst(k, width);
      const buf = encodeRecord(x, width);
      t.deepEqual(decodeRecord(buf, 0), x);
      const reader = protobuf.Reader.create(buf);
      const rec = Record.decodeDelimited(reader) as unknown as { crc32c: number; instance: Uint8Array };
      t.is(reader.pos, buf.length);
      t.is(rec.crc32c, crc32c(rec.instance));
      const p = Inst.toObject(Inst.decode(rec.instance), { enums: Number, defaults: true }) as Record<string, unknown>;
      t.is(p.token_width, width);
      t.is(p.len_a, 3);
      t.is(p.drp_label, k % 3);
      t.is(p.doc_a, x.docA);
      t.is(p.seg_b, x.segB);
      const raw = Buffer.from(p.input_ids as Uint8Array);
      const ids = Array.from({ length: raw.length / width }, (_, i) => (width === 2 ? raw.readUInt16LE(2 * i) : raw.readInt32LE(4 * i)));
      t.deepEqual(ids, Array.from(x.inputIds));
    }
  }
});

test('a flipped byte is caught by the CRC with shard file and offset in the message', (t) => {
  const dir = tmp(t);
  const w = new ShardWriter(dir, 'train', 300);
  const recs = Array.from({ length: 40 }, (_, k) => encodeRecord(inst(k, 2), 2));
  for (const r of recs) w.write(r);
  const shards = w.finish();
  t.true(shards.length > 3, 'small target size cuts several shards');
  t.is(shards.reduce((a, s) => a + s.records, 0), 40);
  for (const s of shards) {
    t.is(fs.statSync(path.join(dir, s.file)).size, s.bytes);
    t.is(fs.statSync(path.join(dir, s.index)).size, s.records * 8);
  }
  t.deepEqual(fs.readdirSync(path.join(dir, 'train')).filter((f) => f.endsWith('.tmp')), []);
  // decode everything back through the index
  const file = path.join(dir, shards[1].file);
  const data = fs.readFileSync(file);
  const idx = fs.readFileSync(path.join(dir, shards[1].index));
  const off = Number(idx.readBigUInt64LE(8));
  t.notThrows(() => decodeRecord(data, off));
  data[off + 12] ^= 0x10; // inside the instance payload
  const err = t.throws(() => decodeRecord(data, off), { instanceOf: RecordError });
  t.regex(err!.message, /CRC-32C mismatch/);
});

test('shuffled writer: a deterministic permutation of every record, mixed across the whole split, in shards at the size target', (t) => {
  const dir = tmp(t);
  const recs = Array.from({ length: 3000 }, (_, k) => encodeRecord(inst(k, 2), 2));
  const total = recs.reduce((a, r) => a + r.length, 0);
  // 4 KB buckets of ~100 records, through 1 KB buffers: each bucket is appended to its file several times
  const run = (name: string, seed: number, bucketBytes: number) => {
    const w = new ShuffledShardWriter(dir, name, 20000, { seed, expectedBytes: total, bucketBytes, bufferBytes: 1024 });
    for (const r of recs) w.write(r);
    const shards = w.finish();
    t.deepEqual(fs.readdirSync(path.join(dir, name)).filter((f) => f.startsWith('.')), [], 'no bucket or temp files left');
    const ds = Buffer.concat(shards.map((s) => fs.readFileSync(path.join(dir, s.file))));
    const order: number[] = [];
    for (const s of shards) {
      const data = fs.readFileSync(path.join(dir, s.file));
      const idx = fs.readFileSync(path.join(dir, s.index));
      for (let i = 0; i < s.records; i++) order.push(decodeRecord(data, Number(idx.readBigUInt64LE(8 * i))).segA);
      t.true(s.bytes >= 20000 || s === shards[shards.length - 1], 'every shard but the last reaches the target');
    }
    return { w, shards, order, bytes: ds };
  };
  const a = run('a', 7, 4096);
  t.is(a.w.buckets, Math.ceil(total / 4096));
  t.true(a.w.buckets >= 20, `${a.w.buckets} buckets`);
  t.deepEqual([...a.order].sort((x, y) => x - y), recs.map((_, k) => k), 'each record exactly once');
  // mixed across the split: the first 300 output records come from all of it, not from a window
  const head = a.order.slice(0, 300);
  t.true(Math.min(...head) < 100 && Math.max(...head) > 2900, `first records span ${Math.min(...head)}..${Math.max(...head)}`);
  const ascending = a.order.slice(1).filter((v, i) => v > a.order[i]).length / (a.order.length - 1);
  t.true(Math.abs(ascending - 0.5) < 0.05, `ascending neighbours ${ascending}`);
  t.true(run('b', 7, 4096).bytes.equals(a.bytes), 'same seed, same bytes');
  t.false(run('c', 8, 4096).bytes.equals(a.bytes), 'another seed, another order');
  const w1 = new ShuffledShardWriter(dir, 'd', 20000, { seed: 7, expectedBytes: total });
  for (const r of recs) w1.write(r);
  t.deepEqual(fs.readdirSync(path.join(dir, 'd')), [], 'one bucket under its buffer: nothing on disk before finish');
  w1.abort();
  const one = run('d', 7, 1 << 30); // one bucket
  t.is(one.w.buckets, 1);
  t.deepEqual([...one.order].sort((x, y) => x - y), recs.map((_, k) => k));
  t.notDeepEqual(one.order, recs.map((_, k) => k));
  // abort removes the bucket files and the shard in progress
  const w = new ShuffledShardWriter(dir, 'e', 20000, { seed: 1, expectedBytes: total, bucketBytes: 4096, bufferBytes: 1024 });
  for (const r of recs) w.write(r);
  t.true(fs.readdirSync(path.join(dir, 'e')).some((f) => f.startsWith('.bucket-')));
  w.abort();
  t.deepEqual(fs.readdirSync(path.join(dir, 'e')), []);
});

// ---- a prepared synthetic corpus for the reader and loader tests ----------------------------------

async function prepared(t: { teardown(fn: () => void): void }, mask: 'static' | 'dynamic', extra: Record<string, unknown> = {}) {
  const dir = tmp(t);
  const corpus = path.join(dir, 'corpus.jsonl');
  syntheticCorpus(corpus, 60);
  const out = path.join(dir, 'out');
  const m = await prepare({ inputs: [corpus], vocab: VOCAB, out, maxSeqLen: 64, workers: 0, seed: 5, mask, shardBytes: 8000, validFraction: 0.1, dupeFactor: 2, ...extra });
  return { out, m };
}

function sameBatch(t: { deepEqual(a: unknown, b: unknown, m?: string): void }, a: Batch, b: Batch, msg: string): void {
  t.deepEqual(a, b, msg);
}

test('reader: random access through the index equals sequential decoding; refuses incomplete dirs', async (t) => {
  const { out, m } = await prepared(t, 'static');
  const ds = ShardDataset.open(out, 'train');
  t.is(ds.size, m.splits.train.instances);
  t.true(m.splits.train.shards.length > 2);
  let n = 0;
  for (const sh of m.splits.train.shards) {
    const buf = fs.readFileSync(path.join(out, sh.file));
    let pos = 0;
    while (pos < buf.length) {
      const x = decodeRecord(buf, pos);
      t.deepEqual(ds.get(n), x);
      // skip the framing: varint length + record
      let len = 0, mul = 1, p = pos;
      for (;;) {
        const b = buf[p++];
        len += (b & 0x7f) * mul;
        if (b < 0x80) break;
        mul *= 128;
      }
      pos = p + len;
      n++;
    }
  }
  t.is(n, ds.size);
  t.throws(() => ds.get(ds.size), { instanceOf: RangeError });
  ds.close();

  // a flipped byte in a shard is reported with the shard file and record offset
  const sh = m.splits.train.shards[1];
  const f = path.join(out, sh.file);
  const bytes = fs.readFileSync(f);
  bytes[40] ^= 1;
  fs.writeFileSync(f, bytes);
  const ds2 = ShardDataset.open(out, 'train');
  const start = m.splits.train.shards[0].records;
  const err = t.throws(() => {
    for (let i = start; i < start + sh.records; i++) ds2.get(i);
  });
  t.regex(err!.message, new RegExp(`shard-00001\\.pb: record \\d+ at byte offset \\d+: (CRC-32C mismatch|.*)`));
  // a truncated shard is refused at open
  fs.writeFileSync(f, bytes.subarray(0, bytes.length - 5));
  t.throws(() => ShardDataset.open(out, 'train'), { message: /shard-00001\.pb: \d+ bytes but manifest\.json says \d+/ });
  // no manifest: not a complete directory
  fs.rmSync(path.join(out, 'manifest.json'));
  t.throws(() => ShardDataset.open(out, 'train'), { message: /no manifest\.json.*interrupted/ });
  t.throws(() => ShardDataset.open(path.join(out, 'nope'), 'train'), { message: /no such directory/ });
});

test('reader: an .idx offset that misses its record is reported as a corrupt index (the .idx file and entry), a damaged record as a .pb fault', async (t) => {
  const { out, m } = await prepared(t, 'static');
  const sh = m.splits.train.shards[1];
  const start = m.splits.train.shards[0].records;
  const idxFile = path.join(out, sh.index);
  const good = fs.readFileSync(idxFile);
  const readAll = (): void => {
    const ds = ShardDataset.open(out, 'train');
    try {
      for (let i = start; i < start + sh.records; i++) ds.get(i);
    } finally {
      ds.close();
    }
  };
  t.notThrows(readAll);
  // entry 5 moved 3 bytes into its record (still increasing, so the index itself looks well-formed)
  for (const shift of [3, -3]) {
    const idx = Buffer.from(good);
    const at = Number(idx.readBigUInt64LE(5 * 8));
    idx.writeBigUInt64LE(BigInt(at + shift), 5 * 8);
    fs.writeFileSync(idxFile, idx);
    const err = t.throws(readAll);
    t.regex(err!.message, new RegExp(`^${idxFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: entry 5 says record 5 of train/shard-00001\\.pb starts at byte ${at + shift}, but it starts at byte ${at}: the index is corrupt`));
    t.notRegex(err!.message, /wire type|CRC/);
  }
  fs.writeFileSync(idxFile, good);
  // the length prefix of record 5 damaged: the .pb is at fault, and named
  const pb = path.join(out, sh.file);
  const bytes = fs.readFileSync(pb);
  const at = Number(good.readBigUInt64LE(5 * 8));
  bytes[at] ^= 0x01;
  fs.writeFileSync(pb, bytes);
  const err = t.throws(readAll);
  t.regex(err!.message, /shard-00001\.pb: record [45] at byte offset \d+/);
  t.notRegex(err!.message, /\.idx/);
});

function assertBatch(t: { true(c: boolean, m?: string): void; is(a: unknown, b: unknown, m?: string): void }, b: Batch, pad: number, cls: number): void {
  const T = b.seqLen, P = b.maxPredictions;
  let real = 0;
  for (let i = 0; i < b.batchSize; i++) {
    t.is(b.inputIds[i * T], cls, '[CLS] first and never masked');
    for (let k = 1; k < T; k++) t.true(b.tokenTypeIds[i * T + k] >= b.tokenTypeIds[i * T + k - 1] || !b.attentionMask[i * T + k], 'token types 0… then 1…');
    for (let k = 0; k < T; k++) {
      const am = b.attentionMask[i * T + k];
      real += am;
      if (!am) t.is(b.inputIds[i * T + k], pad);
    }
    for (let k = 0; k < P; k++) {
      const pos = b.maskedPositions[i * P + k];
      t.true(pos >= i * T && pos < (i + 1) * T, 'masked position inside its row');
      if (b.maskedLabels[i * P + k] === -1) t.is(pos, i * T);
      else t.is(b.attentionMask[pos], 1);
    }
    t.true(b.drpLabels[i] >= 0 && b.drpLabels[i] <= 2);
  }
  t.is(real, b.numTokens);
}

for (const mask of ['static', 'dynamic'] as const) {
  test(`loader (${mask} masks): exact resume from a saved position, prefetch worker = inline`, async (t) => {
    const { out, m } = await prepared(t, mask);
    const ds = ShardDataset.open(out, 'train');
    const opts = { batchSize: 7, seed: 11, shuffleBuffer: 50, mask };
    // inline, uninterrupted: several epochs
    const ref = new BatchLoader(ds, { ...opts, prefetch: 0 });
    const all: Batch[] = [];
    const positions: LoaderPosition[] = [];
    const epochs = Math.ceil((3 * ds.size) / 7);
    for (let k = 0; k < epochs; k++) {
      all.push(await ref.next());
      positions.push(ref.position());
    }
    await ref.close();
    for (const b of all.slice(0, 5)) assertBatch(t, b, m.vocab.pad_id, m.vocab.cls_id);
    t.true(positions[positions.length - 1].epoch >= 2);
    // resume at a few points (mid-epoch and across epoch boundaries), through the worker and inline
    for (const at of [0, 3, Math.floor(ds.size / 7), epochs - 4]) {
      const pos = JSON.parse(JSON.stringify(positions[at]));
      const l = new BatchLoader(ds, { ...opts, prefetch: at % 2 ? 0 : 3 }, pos);
      for (let k = at + 1; k < Math.min(at + 5, epochs); k++) sameBatch(t, await l.next(), all[k], `batch ${k} after resuming at ${at}`);
      t.true(l.waitMs() >= 0);
      await l.close();
    }
    const fresh = new BatchLoader(ds, { ...opts, prefetch: 2 });
    for (let k = 0; k < 4; k++) sameBatch(t, await fresh.next(), all[k], `prefetched batch ${k}`);
    t.deepEqual(fresh.position(), positions[3]);
    await fresh.close();
    // a position from another configuration is refused
    t.throws(() => new BatchLoader(ds, { ...opts, seed: 12, prefetch: 0 }, positions[2]), { message: /seed 11 vs 12/ });
    if (mask === 'dynamic') {
      // different epochs mask the same record differently; static shards cannot be forced static
      t.throws(() => new BatchLoader(ds, { ...opts, mask: 'static', prefetch: 0 }), { message: /--mask dynamic/ });
    }
    ds.close();
  });
}

test('loader: ranks get disjoint equal shares; epochs reshuffle; iterateBatches covers the split once', async (t) => {
  const { out } = await prepared(t, 'static');
  const ds = ShardDataset.open(out, 'train');
  const W = 3;
  const per = Math.floor(ds.size / W);
  const seen = new Set<number>();
  // identify records by (docA, segA, docB) through the instance ids in the batch rows
  for (let r = 0; r < W; r++) {
    const l = new BatchLoader(ds, { batchSize: 1, seed: 4, rank: r, worldSize: W, shuffleBuffer: 20, prefetch: 0 });
    const order = epochOrder(ds, 4, 0, 20);
    for (let k = 0; k < per; k++) {
      await l.next();
      const idx = order[k * W + r];
      t.false(seen.has(idx), `record ${idx} served twice`);
      seen.add(idx);
    }
    t.deepEqual(l.position().cursor, per);
    await l.close();
  }
  t.is(seen.size, per * W);
  const e0 = epochOrder(ds, 4, 0, 20);
  const e1 = epochOrder(ds, 4, 1, 20);
  t.notDeepEqual(e0, e1);
  t.deepEqual(Array.from(e0).sort((a, b) => a - b), Array.from({ length: ds.size }, (_, i) => i));
  let total = 0;
  const batches = [...iterateBatches(ds, { batchSize: 16, seed: 1 })];
  for (const b of batches) total += b.batchSize;
  t.is(total, ds.size);
  t.is(batches[batches.length - 1].batchSize, ds.size % 16 || 16);
  t.is(batches[batches.length - 1].inputIds.length, batches[batches.length - 1].batchSize * 64);
  ds.close();
});

test('dynamic masking at load time: ~15% of real non-special tokens, seeded, labels are the original ids', async (t) => {
  const { out, m } = await prepared(t, 'dynamic');
  const ds = ShardDataset.open(out, 'train');
  t.is(ds.get(0).maskedPositions.length, 0, 'dynamic-mask shards store no masks');
  const run = (seed: number) => [...iterateBatches(ds, { batchSize: 32, seed })];
  const a = run(3);
  t.deepEqual(run(3), a);
  const b = run(4);
  t.notDeepEqual(
    a.map((x) => Array.from(x.maskedPositions)),
    b.map((x) => Array.from(x.maskedPositions)),
  );
  let maskable = 0, masked = 0, i = 0;
  for (const batch of a) {
    for (let r = 0; r < batch.batchSize; r++, i++) {
      const orig = ds.get(i).inputIds;
      maskable += orig.length - 3;
      for (let k = 0; k < batch.maxPredictions; k++) {
        const lab = batch.maskedLabels[r * batch.maxPredictions + k];
        if (lab < 0) continue;
        masked++;
        const pos = batch.maskedPositions[r * batch.maxPredictions + k] - r * batch.seqLen;
        t.is(lab, orig[pos]);
        t.not(lab, m.vocab.cls_id);
        t.not(lab, m.vocab.sep_id);
      }
    }
  }
  t.true(Math.abs(masked / maskable - 0.15) < 0.02, `masked fraction ${masked / maskable}`);
  ds.close();
});
