import test from 'ava';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BertConfig, ConfigError, configFromHf, configToHf, presetConfig, resolveConfig } from '../src/model/config.js';
import { countParams, numel, paramSpecs } from '../src/model/param-names.js';
import {
  HostTensor,
  loadCheckpoint,
  matchParams,
  readSafetensors,
  readTorchBin,
  saveCheckpoint,
  toFloat32,
  toInt32,
  unpickle,
  writeSafetensors,
} from '../src/model/checkpoint/index.js';

const GOLDEN = fileURLToPath(new URL('../../test/fixtures/golden/', import.meta.url));
const TINY = join(GOLDEN, 'tiny');
const FORMATS = join(GOLDEN, 'formats');

function tmp(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'linkbert-ckpt-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

const tinyCheckpoint = loadCheckpoint(TINY);
const tinyConfig = tinyCheckpoint.config;
const tinyParams = matchParams(tinyConfig, tinyCheckpoint.tensors).params;

// Independent float32 → half / bfloat16 encoders (round to nearest even) to check stored bit patterns.
function f32ToHalfBits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && half & 1) ? 1 : 0));
}
function f32ToBf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------- config

test('presets and resolveConfig', (t) => {
  const c = presetConfig('base', { vocabSize: 30522 });
  t.deepEqual([c.numLayers, c.hiddenSize, c.numHeads, c.intermediateSize], [12, 768, 12, 3072]);
  t.is(c.maxPositionEmbeddings, 512);
  t.is(c.numDrpLabels, 3);
  t.is(resolveConfig('tiny', { vocabSize: 100, maxPositionEmbeddings: 128 }).maxPositionEmbeddings, 128);
  t.is(resolveConfig(TINY, {}).hiddenSize, 32);
  t.is(resolveConfig(join(TINY, 'config.json'), { hiddenDropout: 0 }).hiddenDropout, 0);
  t.throws(() => presetConfig('tiny', {}), { message: /preset tiny.*vocabSize/ });
  t.throws(() => resolveConfig('huge', { vocabSize: 10 }), { message: /"huge" is neither a preset/ });
});

test('BERT-base parameter count matches BertForPreTraining with the 3-way DRP head', (t) => {
  const c = presetConfig('base', { vocabSize: 30522 });
  const specs = paramSpecs(c);
  // BertModel (with pooler): 109,482,240; + MLM head 622,650; + DRP 768*3+3.
  t.is(specs.filter((s) => s.name.startsWith('bert.')).reduce((a, s) => a + numel(s.shape), 0), 109_482_240);
  t.is(countParams(c), 109_482_240 + 622_650 + 2_307);
  t.is(new Set(specs.map((s) => s.name)).size, specs.length);
});

test('configToHf / configFromHf round trip', (t) => {
  const c = presetConfig('small', { vocabSize: 1234, layerNormEps: 1e-6, numDrpLabels: 3 });
  const j = configToHf(c, { corpus: 'wiki' });
  t.is(j.model_type, 'bert');
  t.deepEqual(j.architectures, ['BertForPreTraining']);
  t.deepEqual(j.linkbert, { corpus: 'wiki', num_drp_labels: 3, drp_head: 'cls.drp' });
  t.deepEqual(configFromHf(JSON.parse(JSON.stringify(j)), 'x.json'), c);
});

test('config validation errors name the file and the field', (t) => {
  const good = JSON.parse(readFileSync(join(TINY, 'config.json'), 'utf8'));
  const bad = (patch: Record<string, unknown>, field: string, re: RegExp) => {
    const j = { ...good, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === undefined) delete j[k];
    const e = t.throws(() => configFromHf(j, '/ckpt/config.json'), { instanceOf: ConfigError });
    t.is(e.file, '/ckpt/config.json');
    t.is(e.field, field);
    t.regex(e.message, re);
    t.true(e.message.startsWith('/ckpt/config.json: field "'));
  };
  bad({ hidden_size: undefined }, 'hidden_size', /missing/);
  bad({ num_attention_heads: '2' }, 'num_attention_heads', /expected a number/);
  bad({ hidden_size: 30, num_attention_heads: 4 }, 'hidden_size', /not divisible/);
  bad({ hidden_act: 'relu' }, 'hidden_act', /gelu/);
  bad({ position_embedding_type: 'relative_key' }, 'position_embedding_type', /absolute/);
  bad({ model_type: 'roberta' }, 'model_type', /bert/);
  bad({ num_hidden_layers: 1.5 }, 'num_hidden_layers', /positive integer/);
  bad({ layer_norm_eps: -1 }, 'layer_norm_eps', /positive/);
  bad({ hidden_dropout_prob: 1.5 }, 'hidden_dropout_prob', /probability/);
  bad({ linkbert: { num_drp_labels: 0 } }, 'linkbert.num_drp_labels', /positive integer/);
  bad({ linkbert: { drp_head: 'cls.seq_relationship' } }, 'linkbert.drp_head', /cls\.drp/);
  t.throws(() => configFromHf([], 'c.json'), { message: /c\.json: field "\(root\)"/ });
});

// ---------------------------------------------------------------- loading

test('.bin and .safetensors load identical tensors', (t) => {
  const bin = loadCheckpoint(join(TINY, 'pytorch_model.bin'));
  t.is(tinyCheckpoint.format, 'safetensors');
  t.is(bin.format, 'pytorch_bin');
  t.true(tinyCheckpoint.files[1].endsWith('model.safetensors'));
  const m = matchParams(bin.config, bin.tensors);
  t.is(m.params.size, paramSpecs(tinyConfig).length);
  t.is(tinyParams.size, m.params.size);
  for (const [name, v] of tinyParams) t.true(bitsEqual(v, m.params.get(name)!), name);
  t.deepEqual(m.missing, []);
  t.deepEqual(m.unexpected, []);
  t.deepEqual(m.initialised, []);
  t.deepEqual(m.ignored.sort(), ['bert.embeddings.position_ids', 'cls.predictions.decoder.bias', 'cls.predictions.decoder.weight']);
  const pos = bin.tensors.get('bert.embeddings.position_ids')!;
  t.is(pos.dtype, 'I64');
  t.deepEqual(pos.shape, [1, 32]);
  t.deepEqual(Array.from(pos.data as BigInt64Array), Array.from({ length: 32 }, (_, i) => BigInt(i)));
  // the tied decoder weight is written once in the archive and referenced twice
  t.true(bitsEqual(toFloat32(bin.tensors.get('cls.predictions.decoder.weight')!), tinyParams.get('bert.embeddings.word_embeddings.weight')!));
});

test('fp16 and bf16 checkpoints hold exactly the rounded float32 weights', (t) => {
  for (const [file, dtype, enc] of [
    ['model_fp16.bin', 'F16', f32ToHalfBits],
    ['model_bf16.bin', 'BF16', f32ToBf16Bits],
  ] as const) {
    const ck = loadCheckpoint(join(TINY, file));
    let n = 0;
    for (const [name, f32] of tinyParams) {
      const h = ck.tensors.get(name)!;
      t.is(h.dtype, dtype, name);
      const bits = h.data as Uint16Array;
      for (let i = 0; i < f32.length; i++) {
        if (bits[i] !== enc(f32[i])) {
          t.fail(`${file} ${name}[${i}]: ${bits[i]} != ${enc(f32[i])}`);
          return;
        }
      }
      n += f32.length;
      // matchParams converts to float32 exactly: converting back gives the same bits
      const back = matchParams(ck.config, new Map([[name, h]])).params.get(name)!;
      for (let i = 0; i < back.length; i++) if (enc(back[i]) !== bits[i]) t.fail(`${file} ${name}[${i}] does not round-trip`);
    }
    t.true(n > 20000);
  }
});

test('F16 / BF16 special values decode exactly', (t) => {
  const s = readTorchBin(join(FORMATS, 'specials.bin')).tensors;
  const f16 = Array.from(toFloat32(s.get('f16')!));
  t.deepEqual(f16, [0, -0, 1, -2.5, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, 0.0999755859375]);
  t.true(Object.is(f16[1], -0));
  const bf16 = Array.from(toFloat32(s.get('bf16')!));
  t.deepEqual(bf16, [0, -0, 1, -2.5, 3.3895313892515355e38, 2 ** -133, Infinity, -Infinity, 0.10009765625]);
  t.true(Object.is(bf16[1], -0));
});

test('toFloat32 / toInt32 on integer tensors', (t) => {
  const i64: HostTensor = { dtype: 'I64', shape: [3], data: new BigInt64Array([-5n, 0n, 16777216n]) };
  t.deepEqual(Array.from(toFloat32(i64)), [-5, 0, 16777216]);
  t.deepEqual(Array.from(toInt32(i64)), [-5, 0, 16777216]);
  t.throws(() => toFloat32({ dtype: 'I32', shape: [1], data: new Int32Array([16777217]) }, 'ids'), { message: /ids: I32 value 16777217 at index 0 is not exactly representable/ });
  t.throws(() => toInt32({ dtype: 'I64', shape: [1], data: new BigInt64Array([1n << 40n]) }, 'ids'), { message: /ids: I64 value 1099511627776 at index 0 does not fit in int32/ });
  t.throws(() => toInt32({ dtype: 'F32', shape: [1], data: new Float32Array(1) }, 'x'), { message: /x: expected an integer tensor/ });
});

test('torch .bin: dtypes, strided views, shared storages, 0-d, empty, Parameter', (t) => {
  const r = readTorchBin(join(FORMATS, 'specials.bin'));
  const s = r.tensors;
  t.is(r.archiveName, 'specials');
  t.deepEqual(r.skipped, []);
  t.deepEqual(
    [...s.keys()],
    ['f16', 'bf16', 'f64', 'i32', 'i64', 'transposed', 'column', 'slice', 'shared_a', 'shared_b', 'scalar', 'empty', 'param'],
  );
  t.deepEqual(Array.from(s.get('f64')!.data as Float64Array), [1 / 3, -1e300, 5e-324, 2]);
  t.deepEqual(Array.from(s.get('i32')!.data as Int32Array), [-(2 ** 31), -1, 0, 2 ** 31 - 1]);
  t.deepEqual(Array.from(s.get('i64')!.data as BigInt64Array), [-(2n ** 63n), -1n, 0n, 2n ** 53n + 1n, 2n ** 63n - 1n]);
  const base = (r: number, c: number) => (r * 6 + c) * 0.5 - 3; // torch.arange(24).reshape(4, 6) * 0.5 - 3
  const tr = s.get('transposed')!;
  t.deepEqual(tr.shape, [6, 4]);
  t.deepEqual(Array.from(tr.data as Float32Array), Array.from({ length: 24 }, (_, i) => base(i % 4, Math.floor(i / 4))));
  t.deepEqual(Array.from(s.get('column')!.data as Float32Array), [0, 1, 2, 3].map((r) => base(r, 2)));
  t.deepEqual(s.get('slice')!.shape, [2, 4]);
  t.deepEqual(Array.from(s.get('slice')!.data as Float32Array), [1, 2].flatMap((r) => [1, 2, 3, 4].map((c) => base(r, c))));
  t.deepEqual(Array.from(s.get('shared_a')!.data as Float64Array), [2, 3, 4, 5].map((i) => i / 8));
  t.deepEqual(s.get('shared_b')!.shape, [2, 5]);
  t.deepEqual(Array.from(s.get('shared_b')!.data as Float64Array), Array.from({ length: 10 }, (_, i) => i / 8));
  t.deepEqual(s.get('scalar')!.shape, []);
  t.deepEqual(Array.from(s.get('scalar')!.data as Float32Array), [7.25]);
  t.deepEqual(s.get('empty')!.shape, [0, 3]);
  t.is(s.get('empty')!.data.length, 0);
  t.deepEqual(Array.from(s.get('param')!.data as Float32Array), [1.5, -1.5]);
});

test('torch .bin: deflated entries, any archive folder name, zip64 records', (t) => {
  const a = readTorchBin(join(FORMATS, 'specials.bin')).tensors;
  for (const [file, dir] of [
    ['specials_deflate.bin', 'renamed_dir'],
    ['specials_zip64.bin', 'specials'],
  ]) {
    const r = readTorchBin(join(FORMATS, file));
    t.is(r.archiveName, dir);
    t.deepEqual([...r.tensors.keys()], [...a.keys()]);
    for (const [k, v] of a) {
      const w = r.tensors.get(k)!;
      t.is(w.dtype, v.dtype);
      t.deepEqual(w.shape, v.shape);
      t.deepEqual(Array.from(w.data as ArrayLike<unknown>), Array.from(v.data as ArrayLike<unknown>), `${file} ${k}`);
    }
  }
});

test('BertModel-style checkpoint without the bert. prefix: heads reported as initialised', (t) => {
  const ck = loadCheckpoint(join(GOLDEN, 'bertmodel'));
  const m = matchParams(ck.config, ck.tensors);
  t.deepEqual(m.missing, []);
  t.deepEqual(m.unexpected, []);
  t.deepEqual(m.ignored, ['embeddings.position_ids']);
  t.deepEqual(m.initialised, [
    'cls.predictions.transform.dense.weight',
    'cls.predictions.transform.dense.bias',
    'cls.predictions.transform.LayerNorm.weight',
    'cls.predictions.transform.LayerNorm.bias',
    'cls.predictions.bias',
    'cls.drp.weight',
    'cls.drp.bias',
  ]);
  t.true(m.notes.some((n) => /initialised.*MLM head, DRP head/.test(n)));
  for (const [name, v] of m.params) {
    t.true(name.startsWith('bert.'));
    t.true(bitsEqual(v, tinyParams.get(name)!), name);
  }
  t.is(m.params.size, paramSpecs(ck.config).length - 7);
});

test('key normalisation: gamma/beta, duplicates, missing, unexpected, strict', (t) => {
  const f = (v: Float32Array): HostTensor => ({ dtype: 'F32', shape: [v.length], data: v });
  const tensors = new Map<string, HostTensor>(tinyCheckpoint.tensors);
  const lnW = tensors.get('bert.embeddings.LayerNorm.weight')!;
  tensors.delete('bert.embeddings.LayerNorm.weight');
  tensors.set('embeddings.LayerNorm.gamma', lnW); // TF-era name, no prefix
  tensors.delete('bert.encoder.layer.1.output.dense.bias');
  tensors.set('encoder.layer.0.output.dense.bias', tensors.get('bert.encoder.layer.0.output.dense.bias')!); // same values twice
  tensors.set('lm_head.extra', f(new Float32Array(3)));
  const m = matchParams(tinyConfig, tensors);
  t.true(bitsEqual(m.params.get('bert.embeddings.LayerNorm.weight')!, tinyParams.get('bert.embeddings.LayerNorm.weight')!));
  t.deepEqual(m.missing, ['bert.encoder.layer.1.output.dense.bias']);
  t.deepEqual(m.unexpected, ['lm_head.extra']);
  t.deepEqual(m.initialised, []);
  t.true(m.ignored.includes('encoder.layer.0.output.dense.bias'));
  t.throws(() => matchParams(tinyConfig, tensors, { strict: true, source: 'ck' }), { message: /ck: checkpoint lacks 1 encoder parameter.*layer\.1\.output\.dense\.bias/ });
  // same canonical name, different values → refused
  tensors.set('encoder.layer.0.output.dense.bias', f(new Float32Array(32).fill(1)));
  t.throws(() => matchParams(tinyConfig, tensors), { message: /"bert\.encoder\.layer\.0\.output\.dense\.bias" and "encoder\.layer\.0\.output\.dense\.bias" both map/ });
});

test('NSP head is reported, ignored and never reshaped into the DRP head', (t) => {
  const tensors = new Map<string, HostTensor>(tinyCheckpoint.tensors);
  tensors.delete('cls.drp.weight');
  tensors.delete('cls.drp.bias');
  tensors.set('cls.seq_relationship.weight', { dtype: 'F32', shape: [2, 32], data: new Float32Array(64).fill(0.5) });
  tensors.set('cls.seq_relationship.bias', { dtype: 'F32', shape: [2], data: new Float32Array(2) });
  const m = matchParams(tinyConfig, tensors);
  t.deepEqual(m.initialised, ['cls.drp.weight', 'cls.drp.bias']);
  t.false(m.params.has('cls.drp.weight'));
  t.true(m.ignored.includes('cls.seq_relationship.weight'));
  t.deepEqual(m.unexpected, []);
  t.true(m.notes.some((n) => n.startsWith('2-way NSP head found (cls.seq_relationship.weight [2, 32]); not used as the 3-way DRP head')));
});

test('tied decoder: fills word embeddings when absent, noted when different', (t) => {
  const bin = loadCheckpoint(join(TINY, 'pytorch_model.bin')).tensors;
  const tensors = new Map(bin);
  tensors.delete('bert.embeddings.word_embeddings.weight');
  tensors.delete('cls.predictions.bias');
  const m = matchParams(tinyConfig, tensors);
  t.deepEqual(m.missing, []);
  t.true(bitsEqual(m.params.get('bert.embeddings.word_embeddings.weight')!, tinyParams.get('bert.embeddings.word_embeddings.weight')!));
  t.true(bitsEqual(m.params.get('cls.predictions.bias')!, tinyParams.get('cls.predictions.bias')!));
  const dec = bin.get('cls.predictions.decoder.weight')!;
  tensors.set('cls.predictions.decoder.weight', { ...dec, data: (dec.data as Float32Array).map((x) => x + 1) });
  tensors.set('bert.embeddings.word_embeddings.weight', dec);
  t.true(matchParams(tinyConfig, tensors).notes.some((n) => /decoder\.weight differs/.test(n)));
});

test('shape mismatch names the tensor and both shapes', (t) => {
  const cfg: BertConfig = { ...tinyConfig, vocabSize: 100 };
  t.throws(() => matchParams(cfg, tinyCheckpoint.tensors, { source: 'tiny' }), {
    message: 'tiny: tensor "bert.embeddings.word_embeddings.weight" has shape [97, 32] but the model config expects [100, 32] for bert.embeddings.word_embeddings.weight',
  });
  const bad = new Map(tinyCheckpoint.tensors);
  bad.set('cls.drp.weight', { dtype: 'F32', shape: [2, 32], data: new Float32Array(64) });
  t.throws(() => matchParams(tinyConfig, bad), { message: /"cls\.drp\.weight" has shape \[2, 32\] but the model config expects \[3, 32\]/ });
  const int = new Map(tinyCheckpoint.tensors);
  int.set('cls.drp.bias', { dtype: 'I32', shape: [3], data: new Int32Array(3) });
  t.throws(() => matchParams(tinyConfig, int), { message: /tensor "cls\.drp\.bias": integer tensor \(I32\)/ });
});

test('loadCheckpoint: missing config.json / weights name the folder and file', (t) => {
  const d = tmp(t);
  t.throws(() => loadCheckpoint(join(d, 'nope')), { message: /nope: checkpoint folder does not exist/ });
  t.throws(() => loadCheckpoint(d), { message: `${d}: checkpoint folder is missing config.json` });
  copyFileSync(join(TINY, 'config.json'), join(d, 'config.json'));
  t.throws(() => loadCheckpoint(d), { message: /has no weights \(missing model\.safetensors or pytorch_model\.bin/ });
  writeFileSync(join(d, 'config.json'), '{"hidden_size": 32');
  copyFileSync(join(TINY, 'model.safetensors'), join(d, 'model.safetensors'));
  t.throws(() => loadCheckpoint(d), { message: new RegExp(`${d}/config.json: invalid JSON`) });
});

test('sharded checkpoints via model.safetensors.index.json', (t) => {
  const d = tmp(t);
  copyFileSync(join(TINY, 'config.json'), join(d, 'config.json'));
  const all = [...tinyCheckpoint.tensors];
  const half = Math.floor(all.length / 2);
  writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), new Map(all.slice(0, half)));
  writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), new Map(all.slice(half)));
  const weightMap = Object.fromEntries(all.map(([k], i) => [k, i < half ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors']));
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const ck = loadCheckpoint(d);
  t.is(ck.files.length, 3);
  const m = matchParams(ck.config, ck.tensors);
  for (const [name, v] of tinyParams) t.true(bitsEqual(v, m.params.get(name)!), name);
  weightMap['cls.drp.bias'] = 'model-00001-of-00002.safetensors';
  writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
  t.throws(() => loadCheckpoint(d), { message: /model-00001-of-00002\.safetensors: tensor "cls\.drp\.bias" listed in model\.safetensors\.index\.json is not in the shard/ });
});

// ---------------------------------------------------------------- saving

test('save → reload is bit-identical; atomic overwrite; tokenizer files copied', (t) => {
  const d = tmp(t);
  const out = join(d, 'run', 'checkpoint-10');
  const files = saveCheckpoint(out, tinyConfig, tinyParams, {
    tokenizerDir: TINY,
    linkbert: { step: 10 },
    files: { 'trainer_state.json': '{"step":10}\n' },
  });
  t.deepEqual(files, ['config.json', 'model.safetensors', 'vocab.txt', 'tokenizer_config.json', 'trainer_state.json']);
  t.deepEqual(readdirSync(join(d, 'run')), ['checkpoint-10']); // no tmp folder left behind
  t.is(readFileSync(join(out, 'vocab.txt'), 'utf8'), readFileSync(join(TINY, 'vocab.txt'), 'utf8'));
  const ck = loadCheckpoint(out);
  t.deepEqual(ck.config, tinyConfig);
  t.deepEqual(ck.configJson.linkbert, { step: 10, num_drp_labels: 3, drp_head: 'cls.drp' });
  t.false(ck.tensors.has('cls.predictions.decoder.weight'));
  const m = matchParams(ck.config, ck.tensors);
  t.deepEqual([m.missing, m.unexpected, m.initialised], [[], [], []]);
  for (const [name, v] of tinyParams) t.true(bitsEqual(v, m.params.get(name)!), name);
  // Our writer and the Python fixture writer produce the same bytes for the same tensors.
  t.deepEqual(readFileSync(join(out, 'model.safetensors')), readFileSync(join(TINY, 'model.safetensors')));

  // Overwrite in place with different values: the old folder is replaced as a whole.
  const changed = new Map(tinyParams);
  changed.set('cls.drp.bias', new Float32Array([1, 2, 3]));
  saveCheckpoint(out, tinyConfig, changed);
  t.false(existsSync(join(out, 'vocab.txt')));
  t.deepEqual(Array.from(matchParams(tinyConfig, loadCheckpoint(out).tensors).params.get('cls.drp.bias')!), [1, 2, 3]);
  t.deepEqual(readdirSync(join(d, 'run')), ['checkpoint-10']);
});

test('saveCheckpoint refuses incomplete or malformed parameters', (t) => {
  const d = tmp(t);
  const p = new Map(tinyParams);
  p.delete('cls.drp.bias');
  t.throws(() => saveCheckpoint(join(d, 'a'), tinyConfig, p), { message: /parameter "cls\.drp\.bias" is missing/ });
  p.set('cls.drp.bias', new Float32Array(2));
  t.throws(() => saveCheckpoint(join(d, 'a'), tinyConfig, p), { message: /"cls\.drp\.bias" has 2 values, shape \[3\] needs 3/ });
  p.set('cls.drp.bias', new Float32Array(3));
  p.set('cls.seq_relationship.weight', new Float32Array(64));
  t.throws(() => saveCheckpoint(join(d, 'a'), tinyConfig, p), { message: /"cls\.seq_relationship\.weight" is not a parameter/ });
  t.throws(() => saveCheckpoint(join(d, 'a'), tinyConfig, tinyParams, { tokenizerDir: d }), { message: /neither vocab\.txt nor tokenizer\.json/ });
  t.false(existsSync(join(d, 'a')));
});

// ---------------------------------------------------------------- corrupt input

test('safetensors: truncated header, bad JSON, bad offsets, unsupported dtype', (t) => {
  const d = tmp(t);
  const src = readFileSync(join(TINY, 'model.safetensors'));
  const f = join(d, 'model.safetensors');
  // header length claims more bytes than the file has
  const hdr = Buffer.alloc(16);
  hdr.writeBigUInt64LE(1000n);
  writeFileSync(f, hdr);
  t.throws(() => readSafetensors(f), { message: `${f}: header length 1000 at offset 0 runs past the end of the file (16 bytes; header would end at offset 1008)` });
  writeFileSync(f, Buffer.alloc(5));
  t.throws(() => readSafetensors(f), { message: /too short for a safetensors header length at offset 0/ });
  // file cut inside the data section
  writeFileSync(f, src.subarray(0, src.length - 100));
  t.throws(() => readSafetensors(f), { message: /tensor ".*": data_offsets \[\d+, \d+\] run past the end of the data section/ });

  const make = (header: unknown, data = Buffer.alloc(16)): void => {
    let j = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    j = Buffer.concat([j, Buffer.alloc((8 - (j.length % 8)) % 8, 0x20)]);
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(j.length));
    writeFileSync(f, Buffer.concat([n, j, data]));
  };
  make('{"a": {');
  t.throws(() => readSafetensors(f), { message: new RegExp(`^${f}: header JSON \\(offset 8, \\d+ bytes\\) is invalid`) });
  make({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } });
  t.throws(() => readSafetensors(f), { message: /tensors "a" \[0, 8\) and "b" \[4, 12\) overlap/ });
  make({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } });
  t.throws(() => readSafetensors(f), { message: /tensor "a" \(file offset \d+\): F32\[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/ });
  make({ a: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } });
  t.throws(() => readSafetensors(f), { message: new RegExp(`${f}: tensor "a" \\(file offset \\d+\\): unsupported dtype "F8_E4M3"`) });
  make({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } });
  t.throws(() => readSafetensors(f), { message: /tensor "a": "shape" must be an array of non-negative integers/ });
  make({ a: { dtype: 'I32', shape: [2, 2], data_offsets: [0, 16] }, __metadata__: { format: 'pt' } }, Buffer.from(new Int32Array([1, -2, 3, -4]).buffer));
  const ok = readSafetensors(f);
  t.deepEqual(Array.from(ok.tensors.get('a')!.data as Int32Array), [1, -2, 3, -4]);
  t.deepEqual(ok.metadata, { format: 'pt' });
});

test('corrupt zip archives: errors name the file and the offset', (t) => {
  const d = tmp(t);
  const src = readFileSync(join(TINY, 'pytorch_model.bin'));
  const f = join(d, 'pytorch_model.bin');
  // truncated: the end-of-central-directory record is gone
  writeFileSync(f, src.subarray(0, 60000));
  t.throws(() => readTorchBin(f), { message: `${f}: corrupt zip archive at offset 60000: no end-of-central-directory record (not a zip file, or truncated)` });
  // central directory offset pointing past the end
  const eocd = src.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const cdOffset = src.readUInt32LE(eocd + 16);
  const b1 = Buffer.from(src);
  b1.writeUInt32LE(src.length + 10, eocd + 16);
  // torch (miniz) always adds a zip64 end record, whose fields are the authoritative ones
  const z64 = src.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
  t.true(z64 > 0);
  t.is(Number(src.readBigUInt64LE(z64 + 48)), cdOffset);
  b1.writeBigUInt64LE(BigInt(src.length + 10), z64 + 48);
  writeFileSync(f, b1);
  t.throws(() => readTorchBin(f), { message: new RegExp(`^${f}: corrupt zip archive at offset ${src.length + 10}: central directory .* runs past the end of the file`) });
  // bad central directory entry signature
  const b2 = Buffer.from(src);
  b2.writeUInt32LE(0xdeadbeef, cdOffset);
  writeFileSync(f, b2);
  t.throws(() => readTorchBin(f), { message: new RegExp(`^${f}: corrupt zip archive at offset ${cdOffset}: bad central directory entry signature 0xdeadbeef`) });
  // a flipped byte in a storage is caught by CRC-32
  const last = src.indexOf(Buffer.from('pytorch_model/data/0'));
  const b3 = Buffer.from(src);
  const dataStart = last + 'pytorch_model/data/0'.length + b3.readUInt16LE(last - 2); // local header: name then extra
  b3[dataStart + 5] ^= 0xff;
  writeFileSync(f, b3);
  t.throws(() => readTorchBin(f), { message: /corrupt zip archive at offset \d+: CRC-32 mismatch for "pytorch_model\/data\/0"/ });
  writeFileSync(f, 'hello world, not a zip');
  t.throws(() => readTorchBin(f), { message: new RegExp(`^${f}: not a PyTorch zip checkpoint \\(offset 0`) });
  t.throws(() => readTorchBin(join(FORMATS, 'legacy.bin')), { message: /legacy \(pre-1\.6, non-zip\) torch\.save format is not supported/ });
});

test('pickle: unknown globals, unsupported storages and corrupt streams are refused with offsets', (t) => {
  t.throws(() => readTorchBin(join(FORMATS, 'unknown_global.bin')), {
    message: /unknown_global\.bin: unknown_global\/data\.pkl at byte offset 16: unsupported pickle global 'argparse\.Namespace'/,
  });
  t.throws(() => readTorchBin(join(FORMATS, 'bool_storage.bin')), {
    message: /bool_storage\/data\.pkl at byte offset \d+: unsupported tensor storage type torch\.BoolStorage/,
  });
  const opts = { source: 'x.pkl', findClass: () => undefined };
  const p = (...b: number[]) => new Uint8Array(b);
  // PROTO 2, GLOBAL 'os\nsystem\n'
  t.throws(() => unpickle(new Uint8Array([0x80, 2, 0x63, ...Buffer.from('os\nsystem\n'), 0x2e]), opts), {
    message: "x.pkl at byte offset 2: unsupported pickle global 'os.system' (only tensor state dicts can be loaded)",
  });
  t.throws(() => unpickle(p(0x80, 2, 0x7d, 0x58, 10, 0, 0, 0, 0x61), opts), { message: /x\.pkl at byte offset 3: truncated pickle/ });
  t.throws(() => unpickle(p(0x80, 2, 0xff), opts), { message: 'x.pkl at byte offset 2: unsupported pickle opcode 0xff' });
  t.throws(() => unpickle(p(0x80, 2, 0x68, 7), opts), { message: /offset 2: memo key 7 was never stored/ });
  t.throws(() => unpickle(p(0x80, 2, 0x74), opts), { message: /offset 2: MARK expected/ });
  t.throws(() => unpickle(p(0x80, 2, 0x7d, 0x7d), opts), { message: /truncated pickle/ });
  // a plain dict with ints, floats, strings, nested list and memo use decodes
  const ok = unpickle(
    p(0x80, 2, 0x7d, 0x71, 0, 0x28, 0x8c, 1, 0x61, 0x4b, 5, 0x8c, 1, 0x62, 0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x8c, 1, 0x63, 0x5d, 0x28, 0x88, 0x4e, 0x8a, 1, 0xff, 0x65, 0x75, 0x2e),
    opts,
  ) as Map<string, unknown>;
  t.deepEqual([...ok], [
    ['a', 5],
    ['b', 1.5],
    ['c', [true, null, -1]],
  ]);
});

// ---------------------------------------------------------------- golden fixture layout

test('golden.safetensors has the documented layout', (t) => {
  const g = readSafetensors(join(TINY, 'golden.safetensors')).tensors;
  const B = 2,
    T = 16,
    P = 4,
    H = 32,
    V = 97;
  const shape = (n: string) => g.get(n)?.shape;
  for (const n of ['input_ids', 'token_type_ids', 'attention_mask']) t.deepEqual(shape(n), [B, T], n);
  t.deepEqual(shape('masked_positions'), [B, P]);
  t.deepEqual(shape('masked_labels'), [B, P]);
  t.deepEqual(shape('drp_labels'), [B]);
  t.is(g.get('input_ids')!.dtype, 'I32');
  for (const pre of ['', 'f32.']) {
    t.deepEqual(shape(`${pre}sequence_output`), [B, T, H]);
    t.deepEqual(shape(`${pre}pooled_output`), [B, H]);
    t.deepEqual(shape(`${pre}mlm_logits`), [B * P, V]);
    t.deepEqual(shape(`${pre}drp_logits`), [B, 3]);
    for (const s of ['loss', 'mlm_loss', 'drp_loss']) t.deepEqual(shape(`${pre}${s}`), []);
  }
  t.is(g.get('loss')!.dtype, 'F64');
  t.is(g.get('f32.loss')!.dtype, 'F32');
  for (let i = 0; i <= 2; i++) t.deepEqual(shape(`hidden.${i}`), [B, T, H]);
  for (const s of paramSpecs(tinyConfig)) {
    t.deepEqual(shape(`grad.${s.name}`), s.shape, s.name);
    t.is(g.get(`grad.${s.name}`)!.dtype, 'F64');
  }
  const loss = (n: string) => (g.get(n)!.data as Float64Array)[0];
  t.true(Math.abs(loss('loss') - loss('mlm_loss') - loss('drp_loss')) < 1e-12);
  // the unused masked slot is marked with label -1
  t.deepEqual(Array.from(g.get('masked_labels')!.data as Int32Array).filter((x) => x === -1).length, 1);
});
