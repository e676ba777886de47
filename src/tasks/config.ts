// TaskConfig persistence (stored next to a fine-tuned checkpoint, e.g. task_config.json) and helpers for
// gathering per-batch head outputs into the whole-split arrays that decodePredictions expects.
import { readFileSync } from 'node:fs';
import { describe } from './io.js';
import type { TaskConfig, TaskType } from './types.js';

const TYPES: readonly TaskType[] = ['qa', 'seqcls', 'multilabel', 'regression', 'ner', 'mc'];

/** Validates a parsed task config; errors name the file and field. */
export function parseTaskConfig(obj: unknown, file: string): TaskConfig {
  const bad = (field: string, detail: string) => new Error(`${file}: field "${field}": ${detail}`);
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`${file}: expected a JSON object`);
  const o = obj as Record<string, unknown>;
  if (typeof o.type !== 'string' || !TYPES.includes(o.type as TaskType)) throw bad('type', `expected one of ${TYPES.join(', ')}, got ${describe(o.type)}`);
  if (!Array.isArray(o.labels) || !o.labels.every((l) => typeof l === 'string')) throw bad('labels', 'expected an array of strings');
  if (new Set(o.labels).size !== o.labels.length) throw bad('labels', 'duplicate label names');
  const c: TaskConfig = { type: o.type as TaskType, labels: o.labels as string[] };
  if (o.relation !== undefined) {
    if (typeof o.relation !== 'boolean') throw bad('relation', `expected a boolean, got ${describe(o.relation)}`);
    c.relation = o.relation;
  }
  if (o.negativeLabel !== undefined) {
    if (typeof o.negativeLabel !== 'string' || !c.labels.includes(o.negativeLabel)) throw bad('negativeLabel', 'expected one of the labels');
    c.negativeLabel = o.negativeLabel;
  }
  if (c.relation && c.negativeLabel === undefined) throw bad('negativeLabel', 'required when relation is true');
  if (o.macro !== undefined) {
    if (typeof o.macro !== 'boolean') throw bad('macro', `expected a boolean, got ${describe(o.macro)}`);
    c.macro = o.macro;
  }
  if (o.numChoices !== undefined) {
    if (typeof o.numChoices !== 'number' || !Number.isInteger(o.numChoices) || o.numChoices < 2) throw bad('numChoices', 'expected an integer >= 2');
    c.numChoices = o.numChoices;
  }
  if (c.type === 'mc' && c.numChoices === undefined) throw bad('numChoices', 'required for mc');
  if ((c.type === 'seqcls' || c.type === 'ner') && c.labels.length < 2) throw bad('labels', `a ${c.type} task needs at least 2 labels`);
  return c;
}

export function readTaskConfig(file: string): TaskConfig {
  let obj: unknown;
  try {
    obj = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read task config: ${(e as Error).message}`);
  }
  return parseTaskConfig(obj, file);
}

/**
 * Collects per-batch outputs whose rows were padded to different lengths (dynamic padding) into one
 * (N, T, perToken) array with T = the longest batch length, as SpanOutputs / TokenOutputs expect.
 * For per-row outputs (cls, multilabel, regression, mc) use seqLen = 1 and perToken = the row width.
 */
export class PaddedRows {
  private parts: { values: Float32Array; rows: number; seqLen: number }[] = [];
  private rows = 0;
  private maxLen = 0;

  constructor(readonly perToken = 1) {}

  add(values: ArrayLike<number>, rows: number, seqLen: number): void {
    if (values.length !== rows * seqLen * this.perToken) {
      throw new Error(`PaddedRows.add: ${values.length} values for ${rows} rows × ${seqLen} positions × ${this.perToken}`);
    }
    this.parts.push({ values: Float32Array.from(values), rows, seqLen });
    this.rows += rows;
    this.maxLen = Math.max(this.maxLen, seqLen);
  }

  get count(): number {
    return this.rows;
  }

  /** Rows padded with 0 beyond their batch length (decode never reads past a feature's own length). */
  finish(): { values: Float32Array; seqLen: number } {
    const T = this.maxLen;
    const P = this.perToken;
    const out = new Float32Array(this.rows * T * P);
    let r = 0;
    for (const part of this.parts) {
      for (let i = 0; i < part.rows; i++, r++) {
        out.set(part.values.subarray(i * part.seqLen * P, (i + 1) * part.seqLen * P), r * T * P);
      }
    }
    return { values: out, seqLen: T };
  }
}
