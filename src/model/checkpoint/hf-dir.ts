// Hugging Face style checkpoint folders: config.json + model.safetensors | pytorch_model.bin
// (optionally sharded with *.index.json) + tokenizer files.
import { copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, closeSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { BertConfig, configFromHf, configToHf, validateConfig } from '../config.js';
import {
  KNOWN_BUFFERS,
  MLM_BIAS,
  NSP_BIAS,
  NSP_WEIGHT,
  ParamSpec,
  TIED_ALIASES,
  WORD_EMBEDDINGS,
  canonicalKey,
  paramSpecs,
  shapeStr,
} from '../param-names.js';
import { CheckpointFormatError, readSafetensors, writeSafetensors } from './safetensors.js';
import { HostTensor, numelOf, toFloat32 } from './tensor.js';
import { readTorchBin } from './torch-bin.js';

export type CheckpointFormat = 'safetensors' | 'pytorch_bin';

export interface LoadedCheckpoint {
  config: BertConfig;
  configJson: Record<string, unknown>;
  /** Tensors under the names found in the file(s) (not yet canonicalised: see matchParams). */
  tensors: Map<string, HostTensor>;
  format: CheckpointFormat;
  /** Absolute paths of the files read (config first, then weights). */
  files: string[];
  /** Non-tensor entries of .bin files that were not loaded. */
  skipped: string[];
}

const WEIGHT_FILES: [string, CheckpointFormat, boolean][] = [
  ['model.safetensors', 'safetensors', false],
  ['model.safetensors.index.json', 'safetensors', true],
  ['pytorch_model.bin', 'pytorch_bin', false],
  ['pytorch_model.bin.index.json', 'pytorch_bin', true],
];

export const TOKENIZER_FILES = ['vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`);
  }
}

function readWeightsFile(file: string, format: CheckpointFormat): { tensors: Map<string, HostTensor>; skipped: string[] } {
  if (format === 'safetensors') return { tensors: readSafetensors(file).tensors, skipped: [] };
  const r = readTorchBin(file);
  return { tensors: r.tensors, skipped: r.skipped };
}

/**
 * Loads a checkpoint folder (or a weights file, with config.json next to it). Prefers
 * model.safetensors over pytorch_model.bin; sharded *.index.json checkpoints are supported.
 */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  const p = resolve(path);
  if (!existsSync(p)) throw new Error(`${path}: checkpoint folder does not exist`);
  let dir: string;
  let weights: { file: string; format: CheckpointFormat; sharded: boolean } | undefined;
  if (statSync(p).isDirectory()) {
    dir = p;
    for (const [name, format, sharded] of WEIGHT_FILES) {
      if (existsSync(join(dir, name))) {
        weights = { file: join(dir, name), format, sharded };
        break;
      }
    }
  } else {
    dir = dirname(p);
    const name = basename(p);
    const sharded = name.endsWith('.index.json');
    const format: CheckpointFormat = /\.safetensors(\.index\.json)?$/.test(name) ? 'safetensors' : 'pytorch_bin';
    weights = { file: p, format, sharded };
  }
  const configFile = join(dir, 'config.json');
  if (!existsSync(configFile)) throw new Error(`${dir}: checkpoint folder is missing config.json`);
  if (!weights) {
    throw new Error(`${dir}: checkpoint folder has no weights (missing model.safetensors or pytorch_model.bin; also looked for *.index.json shards)`);
  }
  const configJson = readJson(configFile) as Record<string, unknown>;
  const config = configFromHf(configJson, configFile);
  const files = [configFile];
  const tensors = new Map<string, HostTensor>();
  const skipped: string[] = [];
  if (!weights.sharded) {
    const r = readWeightsFile(weights.file, weights.format);
    files.push(weights.file);
    for (const [k, v] of r.tensors) tensors.set(k, v);
    skipped.push(...r.skipped);
  } else {
    const index = readJson(weights.file) as { weight_map?: unknown };
    const map = index?.weight_map;
    if (!map || typeof map !== 'object' || Array.isArray(map)) throw new Error(`${weights.file}: field "weight_map" is missing or not an object`);
    const byFile = new Map<string, string[]>();
    for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) {
        throw new Error(`${weights.file}: weight_map["${name}"] must be a file name in the same folder, got ${JSON.stringify(shard)}`);
      }
      byFile.set(shard, [...(byFile.get(shard) ?? []), name]);
    }
    for (const [shard, names] of byFile) {
      const shardPath = join(dir, shard);
      if (!existsSync(shardPath)) throw new Error(`${dir}: shard ${shard} listed in ${basename(weights.file)} is missing`);
      const r = readWeightsFile(shardPath, weights.format);
      files.push(shardPath);
      skipped.push(...r.skipped);
      for (const name of names) {
        const t = r.tensors.get(name);
        if (!t) throw new Error(`${shardPath}: tensor "${name}" listed in ${basename(weights.file)} is not in the shard`);
      }
      for (const [k, v] of r.tensors) {
        if (tensors.has(k)) throw new Error(`${shardPath}: tensor "${k}" also appears in another shard`);
        tensors.set(k, v);
      }
    }
  }
  return { config, configJson, tensors, format: weights.format, files, skipped };
}

export interface MatchResult {
  /** Canonical name → float32 values, for every parameter found in the checkpoint. */
  params: Map<string, Float32Array>;
  /** Encoder/embedding parameters absent from the checkpoint (a real problem for fine-tuning). */
  missing: string[];
  /** Checkpoint keys that are not parameters of this model (original key names). */
  unexpected: string[];
  /** Head parameters (pooler, MLM head, DRP head) absent from the checkpoint: the model initialises them. */
  initialised: string[];
  /** Known keys deliberately not loaded: buffers (position_ids), the NSP head, tied duplicates. */
  ignored: string[];
  notes: string[];
}

export interface MatchOptions {
  /** Named in errors (e.g. the checkpoint folder). */
  source?: string;
  /** Throw when encoder/embedding parameters are missing. */
  strict?: boolean;
}

function paramValues(t: HostTensor, what: string): Float32Array {
  // Parameters are floating point; an integer tensor under a parameter name means a broken checkpoint.
  if (t.dtype === 'I32' || t.dtype === 'I64') throw new CheckpointFormatError(`${what}: integer tensor (${t.dtype}) where a float parameter is expected`);
  return toFloat32(t, what);
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/**
 * Maps checkpoint tensors onto the model's parameters: normalises names (bert. prefix, gamma/beta),
 * refuses shape mismatches, resolves the tied decoder, and reports what is missing, unexpected and
 * left for initialisation.
 */
export function matchParams(config: BertConfig, tensors: Map<string, HostTensor>, opts: MatchOptions = {}): MatchResult {
  const src = opts.source ? `${opts.source}: ` : '';
  const specs = new Map<string, ParamSpec>(paramSpecs(config).map((s) => [s.name, s]));
  const params = new Map<string, Float32Array>();
  const from = new Map<string, string>(); // canonical → original key
  const unexpected: string[] = [];
  const ignored: string[] = [];
  const notes: string[] = [];
  const aliases: [string, string, HostTensor][] = [];
  let nsp: HostTensor | undefined;

  const checkShape = (key: string, canonical: string, t: HostTensor, want: number[]): void => {
    const same = t.shape.length === want.length && t.shape.every((d, i) => d === want[i]);
    if (!same) {
      throw new CheckpointFormatError(
        `${src}tensor "${key}" has shape ${shapeStr(t.shape)} but the model config expects ${shapeStr(want)} for ${canonical}`,
      );
    }
  };

  for (const [key, t] of tensors) {
    const k = canonicalKey(key);
    if (KNOWN_BUFFERS.has(k)) {
      ignored.push(key);
      continue;
    }
    if (k === NSP_WEIGHT || k === NSP_BIAS) {
      ignored.push(key);
      if (k === NSP_WEIGHT) nsp = t;
      continue;
    }
    if (Object.prototype.hasOwnProperty.call(TIED_ALIASES, k)) {
      aliases.push([key, k, t]);
      continue;
    }
    const spec = specs.get(k);
    if (!spec) {
      unexpected.push(key);
      continue;
    }
    checkShape(key, k, t, spec.shape);
    const prev = from.get(k);
    const values = paramValues(t, `${src}tensor "${key}"`);
    if (prev !== undefined) {
      if (!sameValues(params.get(k)!, values)) throw new CheckpointFormatError(`${src}tensors "${prev}" and "${key}" both map to ${k} but hold different values`);
      ignored.push(key);
      continue;
    }
    params.set(k, values);
    from.set(k, key);
  }

  // Tied decoder weight / aliased decoder bias: fill the original if absent, otherwise they must agree.
  for (const [key, k, t] of aliases) {
    const target = TIED_ALIASES[k];
    checkShape(key, target, t, specs.get(target)!.shape);
    const values = paramValues(t, `${src}tensor "${key}"`);
    const have = params.get(target);
    ignored.push(key);
    if (!have) {
      params.set(target, values);
      from.set(target, key);
      notes.push(`${target} taken from ${key} (tied)`);
    } else if (!sameValues(have, values)) {
      notes.push(`${key} differs from ${target}; the model ties them, so ${target} is used`);
    }
  }

  if (nsp) {
    notes.push(
      `2-way NSP head found (${NSP_WEIGHT} ${shapeStr(nsp.shape)}); not used as the ${config.numDrpLabels}-way DRP head (cls.drp), which is initialised`,
    );
  }

  const missing: string[] = [];
  const initialised: string[] = [];
  for (const s of specs.values()) {
    if (params.has(s.name)) continue;
    if (s.group === 'embeddings' || s.group === 'encoder') missing.push(s.name);
    else initialised.push(s.name);
  }
  const heads = new Set(initialised.map((n) => (n.startsWith('bert.pooler') ? 'pooler' : n.startsWith('cls.drp') ? 'DRP head' : 'MLM head')));
  if (heads.size) notes.push(`initialised (not in checkpoint): ${[...heads].join(', ')}`);
  if (opts.strict && missing.length) {
    throw new CheckpointFormatError(`${src}checkpoint lacks ${missing.length} encoder parameter(s): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`);
  }
  return { params, missing, unexpected, initialised, ignored, notes };
}

/** loadCheckpoint + matchParams against the checkpoint's own config. */
export function loadModelParams(path: string, opts: { strict?: boolean } = {}): { checkpoint: LoadedCheckpoint; match: MatchResult } {
  const checkpoint = loadCheckpoint(path);
  const match = matchParams(checkpoint.config, checkpoint.tensors, { source: path, strict: opts.strict });
  return { checkpoint, match };
}

export interface SaveExtra {
  /** Copy vocab.txt / tokenizer.json / tokenizer_config.json / special_tokens_map.json from here. */
  tokenizerDir?: string;
  /** Merged into config.json's `linkbert` block. */
  linkbert?: Record<string, unknown>;
  /** More files written into the folder before it is published (e.g. trainer_state.json). */
  files?: Record<string, string | Uint8Array>;
}

function fsyncPath(p: string): void {
  try {
    const fd = openSync(p, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Best effort: some filesystems refuse fsync on directories.
  }
}

/**
 * Writes config.json, model.safetensors (fp32, no tied decoder duplicate) and tokenizer files.
 * Atomic: everything goes to `<dir>.tmp-<pid>` first, which then replaces `dir`.
 * Returns the file names written.
 */
export function saveCheckpoint(dir: string, config: BertConfig, params: Map<string, Float32Array>, extra: SaveExtra = {}): string[] {
  validateConfig(config);
  const specs = paramSpecs(config);
  const known = new Set(specs.map((s) => s.name));
  for (const name of params.keys()) {
    if (!known.has(name)) throw new Error(`saveCheckpoint(${dir}): "${name}" is not a parameter of this model`);
  }
  const tensors = new Map<string, HostTensor>();
  for (const s of specs) {
    const v = params.get(s.name);
    if (!v) throw new Error(`saveCheckpoint(${dir}): parameter "${s.name}" is missing`);
    if (v.length !== numelOf(s.shape)) {
      throw new Error(`saveCheckpoint(${dir}): parameter "${s.name}" has ${v.length} values, shape ${shapeStr(s.shape)} needs ${numelOf(s.shape)}`);
    }
    tensors.set(s.name, { dtype: 'F32', shape: [...s.shape], data: v });
  }
  const tokenizerFiles: string[] = [];
  if (extra.tokenizerDir !== undefined) {
    for (const f of TOKENIZER_FILES) if (existsSync(join(extra.tokenizerDir, f))) tokenizerFiles.push(f);
    if (!tokenizerFiles.some((f) => f === 'vocab.txt' || f === 'tokenizer.json')) {
      throw new Error(`saveCheckpoint(${dir}): tokenizer folder ${extra.tokenizerDir} has neither vocab.txt nor tokenizer.json`);
    }
  }
  for (const name of Object.keys(extra.files ?? {})) {
    if (!name || name.includes('/') || name.includes('\\') || name === '.' || name === '..') {
      throw new Error(`saveCheckpoint(${dir}): extra file name ${JSON.stringify(name)} must be a plain file name`);
    }
  }

  const target = resolve(dir);
  const tmp = `${target}.tmp-${process.pid}`;
  const old = `${target}.old-${process.pid}`;
  mkdirSync(dirname(target), { recursive: true });
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const written: string[] = [];
  try {
    writeFileSync(join(tmp, 'config.json'), JSON.stringify(configToHf(config, extra.linkbert), null, 2) + '\n');
    written.push('config.json');
    writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt' });
    written.push('model.safetensors');
    for (const f of tokenizerFiles) {
      copyFileSync(join(extra.tokenizerDir!, f), join(tmp, f));
      written.push(f);
    }
    for (const [name, content] of Object.entries(extra.files ?? {})) {
      writeFileSync(join(tmp, name), content);
      written.push(name);
    }
    fsyncPath(tmp);
    if (existsSync(target)) {
      rmSync(old, { recursive: true, force: true });
      renameSync(target, old);
      try {
        renameSync(tmp, target);
      } catch (e) {
        renameSync(old, target); // put the previous checkpoint back
        throw e;
      }
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, target);
    }
    fsyncPath(dirname(target));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return written;
}
