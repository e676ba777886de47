// state.ts: run checkpoints. RUN/checkpoint-<step>/ holds a Hugging Face model folder (config.json,
// model.safetensors, tokenizer files), trainer_state.json (step, tokens, metric history, data position,
// RNG state) and optimizer.safetensors (AdamW moments). Written atomically (temp folder, then rename);
// the last K are kept.
import { existsSync, readdirSync, readFileSync, rmSync, mkdtempSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { saveCheckpoint, loadCheckpoint, matchParams } from '../model/checkpoint/index.js';
import { readSafetensors, writeSafetensors } from '../model/checkpoint/safetensors.js';
import type { HostTensor } from '../model/checkpoint/tensor.js';
import type { BertModel } from '../model/bert.js';
import type { AdamW } from './optim.js';
import type { LoaderPosition } from '../data/batch.js';

export const TRAINER_STATE = 'trainer_state.json';
export const OPTIMIZER_STATE = 'optimizer.safetensors';

export interface TrainerState {
  version: 1;
  step: number; // training steps completed (including skipped non-finite ones)
  optimizer_step: number; // AdamW updates applied (bias correction)
  tokens_seen: number;
  examples_seen: number;
  non_finite_skipped: number;
  loader_position: LoaderPosition;
  /** Everything random besides the data order: dropout masks are a pure function of (seed, step, site). */
  rng: { seed: number; dropout: string };
  eval_history: Record<string, unknown>[];
  best_eval_loss: number | null;
  elapsed_s: number;
  config: Record<string, unknown>;
}

export function checkpointDir(run: string, step: number): string {
  return join(run, `checkpoint-${step}`);
}

/** What a complete run checkpoint holds (written together, then renamed into place). */
export const CHECKPOINT_FILES = [TRAINER_STATE, 'config.json', 'model.safetensors', OPTIMIZER_STATE];

/** Checkpoint folders of a run, oldest first. Only complete ones; each other checkpoint-N entry goes to
 * onSkip with the reason. */
export function listCheckpoints(run: string, onSkip?: (c: { step: number; dir: string; why: string }) => void): { step: number; dir: string }[] {
  if (!existsSync(run)) return [];
  return readdirSync(run)
    .map((n) => /^checkpoint-(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ step: Number(m[1]), dir: join(run, m[0]) }))
    .filter((c) => {
      const why = !statSync(c.dir).isDirectory() ? 'not a folder' : CHECKPOINT_FILES.filter((f) => !existsSync(join(c.dir, f))).map((f) => `no ${f}`).join(', ');
      if (why) onSkip?.({ ...c, why });
      return !why;
    })
    .sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint; onSkip hears of the incomplete checkpoint-N folders newer than it. */
export function latestCheckpoint(run: string, onSkip?: (dir: string, why: string) => void): string | undefined {
  const skipped: { step: number; dir: string; why: string }[] = [];
  const all = listCheckpoints(run, (c) => skipped.push(c));
  const last = all.at(-1);
  for (const c of skipped.sort((a, b) => a.step - b.step)) if (!last || c.step > last.step) onSkip?.(c.dir, c.why);
  return last?.dir;
}

export function saveRunCheckpoint(
  run: string,
  model: BertModel,
  optim: AdamW,
  state: TrainerState,
  tokenizerDir: string | undefined,
  keepLast: number,
): string {
  const dir = checkpointDir(run, state.step);
  // The optimizer moments, one flat tensor per parameter group (the arena order is fixed by the config).
  const tensors = new Map<string, HostTensor>();
  for (const g of model.groups) {
    tensors.set(`${g.name}.m`, { dtype: 'F32', shape: [g.m.numel], data: g.m.toArray() as Float32Array });
    tensors.set(`${g.name}.v`, { dtype: 'F32', shape: [g.v.numel], data: g.v.toArray() as Float32Array });
  }
  const scratch = mkdtempSync(join(tmpdir(), 'linkbert-opt-'));
  let optBytes: Uint8Array;
  try {
    writeSafetensors(join(scratch, OPTIMIZER_STATE), tensors, { format: 'linkbert-adamw', step: String(optim.step) });
    optBytes = readFileSync(join(scratch, OPTIMIZER_STATE));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  saveCheckpoint(dir, model.config, model.exportParams(), {
    tokenizerDir,
    linkbert: { trained_steps: state.step },
    files: { [TRAINER_STATE]: JSON.stringify(state, null, 2) + '\n', [OPTIMIZER_STATE]: optBytes },
  });
  if (keepLast > 0) {
    const all = listCheckpoints(run);
    for (const c of all.slice(0, Math.max(0, all.length - keepLast))) rmSync(c.dir, { recursive: true, force: true });
  }
  return dir;
}

export class CheckpointError extends Error {}

/** Restores parameters, optimizer moments and trainer state from a run checkpoint. */
export function loadRunCheckpoint(dir: string, model: BertModel, optim: AdamW): TrainerState {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw new CheckpointError(`${abs}: checkpoint folder not found`);
  const statePath = join(abs, TRAINER_STATE);
  if (!existsSync(statePath)) throw new CheckpointError(`${abs}: missing ${TRAINER_STATE} (not a run checkpoint, or an interrupted write)`);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainerState;
  } catch (e) {
    throw new CheckpointError(`${statePath}: not valid JSON (${(e as Error).message})`);
  }
  for (const f of ['step', 'tokens_seen', 'loader_position'] as const)
    if (state[f] === undefined) throw new CheckpointError(`${statePath}: field "${f}" is missing`);
  const ck = loadCheckpoint(abs);
  const match = matchParams(model.config, ck.tensors, { source: abs, strict: true });
  if (match.initialised.length) throw new CheckpointError(`${abs}: run checkpoint lacks ${match.initialised.join(', ')}`);
  model.loadParams(match.params);
  const optPath = join(abs, OPTIMIZER_STATE);
  if (!existsSync(optPath)) throw new CheckpointError(`${abs}: missing ${OPTIMIZER_STATE}`);
  const opt = readSafetensors(optPath);
  for (const g of model.groups) {
    for (const [k, t] of [['m', g.m], ['v', g.v]] as const) {
      const h = opt.tensors.get(`${g.name}.${k}`);
      if (!h) throw new CheckpointError(`${optPath}: tensor "${g.name}.${k}" is missing`);
      if (h.dtype !== 'F32' || h.data.length !== t.numel)
        throw new CheckpointError(`${optPath}: tensor "${g.name}.${k}" has ${h.data.length} ${h.dtype} values, the model needs ${t.numel} F32`);
      t.setData(h.data as Float32Array);
    }
  }
  optim.step = state.optimizer_step ?? state.step;
  return state;
}
