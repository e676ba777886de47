// Fine-tuned checkpoint folders: the encoder as a regular Hugging Face style checkpoint (config.json,
// model.safetensors, tokenizer files: loadable by every other tool), plus
//   task_head.safetensors  the head's Linear layer under its Hugging Face names (classifier.* / qa_outputs.*)
//   task_config.json       task type, label names, head kind, featurisation settings, and how it was selected.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { BertConfig } from '../model/config.js';
import { loadCheckpoint, matchParams, readSafetensors, saveCheckpoint, toFloat32, type HostTensor, type MatchResult } from '../model/checkpoint/index.js';
import { writeSafetensors } from '../model/checkpoint/index.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseTaskConfig } from './config.js';
import { headParamNames, headWidth } from './heads.js';
import type { HeadKind, TaskConfig } from './types.js';

export const TASK_CONFIG_FILE = 'task_config.json';
export const TASK_HEAD_FILE = 'task_head.safetensors';
export const TASK_FORMAT = 'linkbert-task/1';

const HEAD_OF: Record<TaskConfig['type'], HeadKind> = {
  qa: 'span', seqcls: 'cls', multilabel: 'multilabel', regression: 'regression', ner: 'token', mc: 'mc',
};

export function headKindOf(type: TaskConfig['type']): HeadKind {
  return HEAD_OF[type];
}

/** Featurisation settings that evaluation must repeat exactly. */
export interface FeatureSettings {
  maxSeqLength: number;
  /** qa only */
  docStride?: number;
  maxQueryLength?: number;
}

export interface TaskMeta {
  task: TaskConfig;
  head: HeadKind;
  numLabels: number;
  features: FeatureSettings;
  /** where the encoder came from, and how this checkpoint was chosen */
  source?: Record<string, unknown>;
}

/** task_config.json content: the TaskConfig fields at top level (parseTaskConfig reads them), plus ours. */
export function taskConfigJson(meta: TaskMeta): Record<string, unknown> {
  return {
    format: TASK_FORMAT,
    ...meta.task,
    head: meta.head,
    num_labels: meta.numLabels,
    head_tensors: [headParamNames(meta.head).hfWeight, headParamNames(meta.head).hfBias],
    max_seq_len: meta.features.maxSeqLength,
    ...(meta.features.docStride !== undefined ? { doc_stride: meta.features.docStride } : {}),
    ...(meta.features.maxQueryLength !== undefined ? { max_query_len: meta.features.maxQueryLength } : {}),
    ...(meta.source ? { source: meta.source } : {}),
  };
}

export function parseTaskMeta(obj: unknown, file: string): TaskMeta {
  const task = parseTaskConfig(obj, file);
  const o = obj as Record<string, unknown>;
  const bad = (field: string, detail: string) => new Error(`${file}: field "${field}": ${detail}`);
  if (o.format !== TASK_FORMAT) throw bad('format', `expected ${JSON.stringify(TASK_FORMAT)}, got ${JSON.stringify(o.format)}`);
  const head = headKindOf(task.type);
  if (o.head !== head) throw bad('head', `task type ${task.type} uses a ${head} head, got ${JSON.stringify(o.head)}`);
  const numLabels = o.num_labels;
  const want = task.type === 'qa' ? 2 : task.type === 'regression' || task.type === 'mc' ? 1 : task.labels.length;
  if (numLabels !== want) throw bad('num_labels', `expected ${want} for this task, got ${JSON.stringify(numLabels)}`);
  const posInt = (field: string, v: unknown, min: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw bad(field, `expected an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const features: FeatureSettings = { maxSeqLength: posInt('max_seq_len', o.max_seq_len, 3) };
  if (task.type === 'qa') {
    features.docStride = posInt('doc_stride', o.doc_stride, 1);
    features.maxQueryLength = posInt('max_query_len', o.max_query_len, 1);
  }
  const source = o.source && typeof o.source === 'object' && !Array.isArray(o.source) ? (o.source as Record<string, unknown>) : undefined;
  return { task, head, numLabels, features, ...(source ? { source } : {}) };
}

/** Head tensors (HF names) as safetensors bytes. */
function headBytes(kind: HeadKind, weight: Float32Array, bias: Float32Array, hidden: number): Uint8Array {
  const n = headParamNames(kind);
  const width = bias.length;
  if (weight.length !== width * hidden) throw new Error(`head weight has ${weight.length} values, expected ${width}×${hidden}`);
  const tensors = new Map<string, HostTensor>([
    [n.hfWeight, { dtype: 'F32', shape: [width, hidden], data: weight }],
    [n.hfBias, { dtype: 'F32', shape: [width], data: bias }],
  ]);
  // writeSafetensors writes a file; go through a private temp folder to get the bytes.
  const dir = mkdtempSync(join(tmpdir(), 'linkbert-head-'));
  try {
    const f = join(dir, TASK_HEAD_FILE);
    writeSafetensors(f, tensors, { format: 'pt' });
    return readFileSync(f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Writes a fine-tuned checkpoint atomically. `params` holds the model's own parameters (encoder, pooler,
 * pretraining heads); `head` the head weight and bias.
 */
export function saveTaskCheckpoint(
  dir: string,
  config: BertConfig,
  params: Map<string, Float32Array>,
  head: { weight: Float32Array; bias: Float32Array },
  meta: TaskMeta,
  tokenizerDir: string,
): string[] {
  return saveCheckpoint(dir, config, params, {
    tokenizerDir,
    linkbert: { finetuned_task: meta.task.type },
    files: {
      [TASK_HEAD_FILE]: headBytes(meta.head, head.weight, head.bias, config.hiddenSize),
      [TASK_CONFIG_FILE]: JSON.stringify(taskConfigJson(meta), null, 2) + '\n',
    },
  });
}

export interface LoadedTaskCheckpoint {
  dir: string;
  config: BertConfig;
  meta: TaskMeta;
  match: MatchResult;
  head: { weight: Float32Array; bias: Float32Array };
}

/** Loads a folder written by saveTaskCheckpoint; refuses folders that are not fine-tuned checkpoints. */
export function loadTaskCheckpoint(dir: string): LoadedTaskCheckpoint {
  const cfgFile = join(dir, TASK_CONFIG_FILE);
  const headFile = join(dir, TASK_HEAD_FILE);
  if (!existsSync(dir)) throw new Error(`${dir}: checkpoint folder does not exist`);
  if (!existsSync(cfgFile) || !existsSync(headFile)) {
    const missing = [cfgFile, headFile].filter((f) => !existsSync(f)).map((f) => f.slice(dir.length + 1));
    throw new Error(
      `${dir}: not a fine-tuned task checkpoint (missing ${missing.join(' and ')}); ` +
        'fine-tune it first with `linkbert finetune --task T --train F --dev F --checkpoint DIR --out OUT` and evaluate OUT/best',
    );
  }
  let obj: unknown;
  try {
    obj = JSON.parse(readFileSync(cfgFile, 'utf8'));
  } catch (e) {
    throw new Error(`${cfgFile}: cannot read task config: ${(e as Error).message}`);
  }
  const meta = parseTaskMeta(obj, cfgFile);
  const ck = loadCheckpoint(dir);
  const match = matchParams(ck.config, ck.tensors, { source: dir, strict: true });
  const head = readHead(headFile, meta.head, headWidth(meta.head, meta.numLabels), ck.config.hiddenSize);
  if (!head) throw new Error(`${headFile}: has no ${headParamNames(meta.head).hfWeight} / ${headParamNames(meta.head).hfBias}`);
  return { dir, config: ck.config, meta, match, head };
}

/**
 * Head tensors from a map of checkpoint tensors (e.g. an HF BertForTokenClassification folder) when present
 * under their HF names (optionally `bert.`-less) with the expected shapes; `undefined` when absent; an
 * error when present with another shape (`wrongShape` set instead when `lenient`).
 */
export function headFromTensors(
  tensors: Map<string, HostTensor>,
  kind: HeadKind,
  width: number,
  hidden: number,
  where: string,
  lenient = false,
): { weight: Float32Array; bias: Float32Array } | { wrongShape: string } | undefined {
  const n = headParamNames(kind);
  const w = tensors.get(n.hfWeight);
  const b = tensors.get(n.hfBias);
  if (!w || !b) return undefined;
  const okW = w.shape.length === 2 && w.shape[0] === width && w.shape[1] === hidden;
  const okB = b.shape.length === 1 && b.shape[0] === width;
  if (!okW || !okB) {
    const msg = `${where}: head ${n.hfWeight} [${w.shape.join(',')}] / ${n.hfBias} [${b.shape.join(',')}] does not match the task's [${width},${hidden}] / [${width}]`;
    if (lenient) return { wrongShape: msg };
    throw new Error(msg);
  }
  return { weight: toFloat32(w, `${where}: ${n.hfWeight}`), bias: toFloat32(b, `${where}: ${n.hfBias}`) };
}

function readHead(file: string, kind: HeadKind, width: number, hidden: number): { weight: Float32Array; bias: Float32Array } | undefined {
  const r = headFromTensors(readSafetensors(file).tensors, kind, width, hidden, file);
  return r && 'weight' in r ? r : undefined;
}
