// Canonical parameter list of BertForPreTraining + the LinkBERT DRP head, in Hugging Face naming.
// Linear weights are stored PyTorch style: (out_features, in_features).
//
// The DRP (document relation prediction) head is `cls.drp.{weight,bias}`: Linear(H, numDrpLabels) on the
// pooled [CLS] output. It is deliberately NOT `cls.seq_relationship`, which in BERT checkpoints is the
// 2-way NSP head; that one is reported and ignored, never reshaped into the 3-way head.
import type { BertConfig } from './config.js';

export type ParamGroup = 'embeddings' | 'encoder' | 'pooler' | 'mlm_head' | 'drp_head';
export type ParamInit = 'normal' | 'zeros' | 'ones';

export interface ParamSpec {
  name: string;
  shape: number[];
  group: ParamGroup;
  /** HF BertPreTrainedModel._init_weights: Linear/Embedding weights N(0, initializer_range), biases 0, LayerNorm 1/0. */
  init: ParamInit;
}

export const WORD_EMBEDDINGS = 'bert.embeddings.word_embeddings.weight';
export const MLM_BIAS = 'cls.predictions.bias';
export const DRP_WEIGHT = 'cls.drp.weight';
export const DRP_BIAS = 'cls.drp.bias';
export const NSP_WEIGHT = 'cls.seq_relationship.weight';
export const NSP_BIAS = 'cls.seq_relationship.bias';

/** Tied / aliased names: a checkpoint may carry them; they are never separate parameters. */
export const TIED_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  'cls.predictions.decoder.weight': WORD_EMBEDDINGS,
  'cls.predictions.decoder.bias': MLM_BIAS,
});

/** Buffers (not parameters) that checkpoints carry and we recompute. */
export const KNOWN_BUFFERS: ReadonlySet<string> = new Set(['bert.embeddings.position_ids', 'bert.embeddings.token_type_ids']);

function linear(prefix: string, out: number, inp: number, group: ParamGroup): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [out, inp], group, init: 'normal' },
    { name: `${prefix}.bias`, shape: [out], group, init: 'zeros' },
  ];
}
function layerNorm(prefix: string, h: number, group: ParamGroup): ParamSpec[] {
  return [
    { name: `${prefix}.weight`, shape: [h], group, init: 'ones' },
    { name: `${prefix}.bias`, shape: [h], group, init: 'zeros' },
  ];
}

/** Every parameter of the model, in a fixed order (embeddings, layers 0..L-1, pooler, MLM head, DRP head). */
export function paramSpecs(config: BertConfig): ParamSpec[] {
  const H = config.hiddenSize;
  const I = config.intermediateSize;
  const out: ParamSpec[] = [
    { name: WORD_EMBEDDINGS, shape: [config.vocabSize, H], group: 'embeddings', init: 'normal' },
    { name: 'bert.embeddings.position_embeddings.weight', shape: [config.maxPositionEmbeddings, H], group: 'embeddings', init: 'normal' },
    { name: 'bert.embeddings.token_type_embeddings.weight', shape: [config.typeVocabSize, H], group: 'embeddings', init: 'normal' },
    ...layerNorm('bert.embeddings.LayerNorm', H, 'embeddings'),
  ];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `bert.encoder.layer.${i}`;
    out.push(
      ...linear(`${p}.attention.self.query`, H, H, 'encoder'),
      ...linear(`${p}.attention.self.key`, H, H, 'encoder'),
      ...linear(`${p}.attention.self.value`, H, H, 'encoder'),
      ...linear(`${p}.attention.output.dense`, H, H, 'encoder'),
      ...layerNorm(`${p}.attention.output.LayerNorm`, H, 'encoder'),
      ...linear(`${p}.intermediate.dense`, I, H, 'encoder'),
      ...linear(`${p}.output.dense`, H, I, 'encoder'),
      ...layerNorm(`${p}.output.LayerNorm`, H, 'encoder'),
    );
  }
  out.push(
    ...linear('bert.pooler.dense', H, H, 'pooler'),
    ...linear('cls.predictions.transform.dense', H, H, 'mlm_head'),
    ...layerNorm('cls.predictions.transform.LayerNorm', H, 'mlm_head'),
    { name: MLM_BIAS, shape: [config.vocabSize], group: 'mlm_head', init: 'zeros' },
    ...linear('cls.drp', config.numDrpLabels, H, 'drp_head'),
  );
  return out;
}

export function paramNames(config: BertConfig): string[] {
  return paramSpecs(config).map((s) => s.name);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Total number of scalar parameters (the tied decoder counted once). */
export function countParams(config: BertConfig): number {
  return paramSpecs(config).reduce((a, s) => a + numel(s.shape), 0);
}

const ENCODER_ROOTS = ['embeddings.', 'encoder.', 'pooler.'];

/**
 * Maps a checkpoint key to our canonical naming: adds the `bert.` prefix to bare BertModel keys
 * (the official LinkBERT release has none) and renames TF-era LayerNorm `gamma`/`beta`.
 */
export function canonicalKey(key: string): string {
  let k = key;
  if (ENCODER_ROOTS.some((r) => k.startsWith(r))) k = `bert.${k}`;
  if (/LayerNorm\.gamma$/.test(k)) k = k.replace(/gamma$/, 'weight');
  else if (/LayerNorm\.beta$/.test(k)) k = k.replace(/beta$/, 'bias');
  return k;
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
