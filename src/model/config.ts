// BERT / LinkBERT model configuration: presets, validation, and the Hugging Face config.json mapping.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  hiddenDropout: number;
  attentionDropout: number;
  initializerRange: number;
  /** Classes of the document-relation-prediction head: contiguous / random / linked. */
  numDrpLabels: number;
}

export type ConfigOverrides = Partial<BertConfig>;

/** Architecture-only part of a preset (layers / hidden / heads / FFN); vocab comes from the tokenizer. */
export interface PresetShape {
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
}

export const PRESETS: Readonly<Record<string, PresetShape>> = Object.freeze({
  tiny: { numLayers: 2, hiddenSize: 128, numHeads: 2, intermediateSize: 512 },
  mini: { numLayers: 4, hiddenSize: 256, numHeads: 4, intermediateSize: 1024 },
  small: { numLayers: 4, hiddenSize: 512, numHeads: 8, intermediateSize: 2048 },
  medium: { numLayers: 8, hiddenSize: 512, numHeads: 8, intermediateSize: 2048 },
  base: { numLayers: 12, hiddenSize: 768, numHeads: 12, intermediateSize: 3072 },
  large: { numLayers: 24, hiddenSize: 1024, numHeads: 16, intermediateSize: 4096 },
});

export const CONFIG_DEFAULTS = Object.freeze({
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
  initializerRange: 0.02,
  numDrpLabels: 3,
});

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${file}: field "${field}": ${detail}`);
    this.name = 'ConfigError';
  }
}

const INT_FIELDS: (keyof BertConfig)[] = [
  'vocabSize',
  'hiddenSize',
  'numLayers',
  'numHeads',
  'intermediateSize',
  'maxPositionEmbeddings',
  'typeVocabSize',
  'numDrpLabels',
];

/** Checks a complete config; `source` names where it came from (a file path or "preset tiny"). */
export function validateConfig(c: BertConfig, source = 'config'): BertConfig {
  for (const f of INT_FIELDS) {
    const v = c[f];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
      throw new ConfigError(source, f, `must be a positive integer, got ${JSON.stringify(v)}`);
    }
  }
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new ConfigError(source, 'hiddenSize', `hidden size ${c.hiddenSize} is not divisible by the number of attention heads ${c.numHeads}`);
  }
  if (typeof c.layerNormEps !== 'number' || !(c.layerNormEps > 0) || !Number.isFinite(c.layerNormEps)) {
    throw new ConfigError(source, 'layerNormEps', `must be a positive number, got ${JSON.stringify(c.layerNormEps)}`);
  }
  for (const f of ['hiddenDropout', 'attentionDropout'] as const) {
    const v = c[f];
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
      throw new ConfigError(source, f, `must be a probability in [0, 1), got ${JSON.stringify(v)}`);
    }
  }
  if (typeof c.initializerRange !== 'number' || !(c.initializerRange > 0) || !Number.isFinite(c.initializerRange)) {
    throw new ConfigError(source, 'initializerRange', `must be a positive number, got ${JSON.stringify(c.initializerRange)}`);
  }
  return c;
}

export function presetConfig(name: string, overrides: ConfigOverrides): BertConfig {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown model preset "${name}" (known: ${Object.keys(PRESETS).join(', ')})`);
  if (overrides.vocabSize === undefined) {
    throw new ConfigError(`preset ${name}`, 'vocabSize', 'a preset needs the vocabulary size (from the tokenizer)');
  }
  const c: BertConfig = { vocabSize: overrides.vocabSize, ...p, ...CONFIG_DEFAULTS, ...stripUndefined(overrides) };
  return validateConfig(c, `preset ${name}`);
}

/**
 * A preset name (tiny … large), a config.json file, or a directory holding config.json.
 * Overrides win over the preset/file values (undefined values are ignored).
 */
export function resolveConfig(nameOrPath: string, overrides: ConfigOverrides = {}): BertConfig {
  if (Object.prototype.hasOwnProperty.call(PRESETS, nameOrPath)) return presetConfig(nameOrPath, overrides);
  if (!existsSync(nameOrPath)) {
    throw new Error(`model config "${nameOrPath}" is neither a preset (${Object.keys(PRESETS).join(', ')}) nor an existing file or folder`);
  }
  const file = statSync(nameOrPath).isDirectory() ? join(nameOrPath, 'config.json') : nameOrPath;
  if (!existsSync(file)) throw new Error(`${nameOrPath}: folder has no config.json`);
  const base = readConfigFile(file);
  return validateConfig({ ...base, ...stripUndefined(overrides) }, file);
}

export function readConfigFile(file: string): BertConfig {
  const text = readFileSync(file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  return configFromHf(json, file);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** The HF config.json → BertConfig mapping (our name → HF name). */
const HF_FIELDS: [keyof BertConfig, string][] = [
  ['vocabSize', 'vocab_size'],
  ['hiddenSize', 'hidden_size'],
  ['numLayers', 'num_hidden_layers'],
  ['numHeads', 'num_attention_heads'],
  ['intermediateSize', 'intermediate_size'],
  ['maxPositionEmbeddings', 'max_position_embeddings'],
  ['typeVocabSize', 'type_vocab_size'],
  ['layerNormEps', 'layer_norm_eps'],
  ['hiddenDropout', 'hidden_dropout_prob'],
  ['attentionDropout', 'attention_probs_dropout_prob'],
  ['initializerRange', 'initializer_range'],
];
const REQUIRED_HF = new Set(['vocab_size', 'hidden_size', 'num_hidden_layers', 'num_attention_heads', 'intermediate_size']);

// Exact-erf GELU under either HF name; the tanh approximations would change the numerics.
const GELU_NAMES = new Set(['gelu', 'gelu_python']);

/** Parses a Hugging Face BERT config.json object; `file` is used in error messages. */
export function configFromHf(json: unknown, file: string): BertConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(file, '(root)', 'expected a JSON object');
  }
  const j = json as Record<string, unknown>;
  if (j.model_type !== undefined && j.model_type !== 'bert') {
    throw new ConfigError(file, 'model_type', `expected "bert", got ${JSON.stringify(j.model_type)}`);
  }
  const act = j.hidden_act ?? 'gelu';
  if (typeof act !== 'string' || !GELU_NAMES.has(act)) {
    throw new ConfigError(file, 'hidden_act', `only exact (erf) "gelu" is supported, got ${JSON.stringify(act)}`);
  }
  const pet = j.position_embedding_type ?? 'absolute';
  if (pet !== 'absolute') {
    throw new ConfigError(file, 'position_embedding_type', `only "absolute" is supported, got ${JSON.stringify(pet)}`);
  }
  if (j.is_decoder === true) throw new ConfigError(file, 'is_decoder', 'decoder (causal) BERT is not supported');
  if (j.add_cross_attention === true) throw new ConfigError(file, 'add_cross_attention', 'cross-attention is not supported');

  const out: Record<string, number> = { ...CONFIG_DEFAULTS };
  for (const [ours, hf] of HF_FIELDS) {
    const v = j[hf];
    if (v === undefined || v === null) {
      if (REQUIRED_HF.has(hf)) throw new ConfigError(file, hf, 'missing');
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new ConfigError(file, hf, `expected a number, got ${JSON.stringify(v)}`);
    }
    out[ours] = v;
  }
  const lb = j.linkbert;
  if (lb !== undefined) {
    if (lb === null || typeof lb !== 'object' || Array.isArray(lb)) throw new ConfigError(file, 'linkbert', 'expected an object');
    const head = (lb as Record<string, unknown>).drp_head;
    if (head !== undefined && head !== 'cls.drp') {
      throw new ConfigError(file, 'linkbert.drp_head', `only "cls.drp" is supported, got ${JSON.stringify(head)}`);
    }
    const n = (lb as Record<string, unknown>).num_drp_labels;
    if (n !== undefined) {
      if (typeof n !== 'number') throw new ConfigError(file, 'linkbert.num_drp_labels', `expected a number, got ${JSON.stringify(n)}`);
      out.numDrpLabels = n;
    }
  }
  const c = out as unknown as BertConfig;
  try {
    validateConfig(c, file);
  } catch (e) {
    // Re-name the field in HF terms so the message points at the key actually in the file.
    if (e instanceof ConfigError) {
      const hf = HF_FIELDS.find(([o]) => o === e.field)?.[1] ?? (e.field === 'numDrpLabels' ? 'linkbert.num_drp_labels' : e.field);
      throw new ConfigError(file, hf, e.detail);
    }
    throw e;
  }
  return c;
}

/** BertConfig → HF config.json object (BertForPreTraining + our `linkbert` block). */
export function configToHf(config: BertConfig, linkbert: Record<string, unknown> = {}): Record<string, unknown> {
  validateConfig(config);
  return {
    architectures: ['BertForPreTraining'],
    model_type: 'bert',
    attention_probs_dropout_prob: config.attentionDropout,
    hidden_act: 'gelu',
    hidden_dropout_prob: config.hiddenDropout,
    hidden_size: config.hiddenSize,
    initializer_range: config.initializerRange,
    intermediate_size: config.intermediateSize,
    layer_norm_eps: config.layerNormEps,
    max_position_embeddings: config.maxPositionEmbeddings,
    num_attention_heads: config.numHeads,
    num_hidden_layers: config.numLayers,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    type_vocab_size: config.typeVocabSize,
    vocab_size: config.vocabSize,
    tie_word_embeddings: true,
    linkbert: { ...linkbert, num_drp_labels: config.numDrpLabels, drp_head: 'cls.drp' },
  };
}
