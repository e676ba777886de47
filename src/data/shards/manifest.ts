// manifest.json of a prepared shard directory. Written last by `prepare`; its presence marks a complete run.
import fs from 'node:fs';
import path from 'node:path';
import { SCHEMA_VERSION, type DrpLabelName } from './format.js';

export interface ShardEntry {
  /** path of the .pb file relative to the output directory, e.g. "train/shard-00000.pb" */
  file: string;
  /** path of the .idx file (uint64 LE record offsets) relative to the output directory */
  index: string;
  records: number;
  bytes: number;
}

export type LabelCounts = Record<DrpLabelName, number>;

export interface SplitInfo {
  instances: number;
  documents: number;
  /** real tokens, [CLS]/[SEP] included */
  tokens: number;
  labels: LabelCounts;
  shards: ShardEntry[];
}

export interface InputInfo {
  path: string;
  format: string;
  bytes: number;
  weight: number;
  documents: number;
  /** whether any document of this input has a usable out-link (else labels are contiguous/random only) */
  linked: boolean;
  /** label probabilities used for anchors of this input, [contiguous, random, linked] */
  label_probs: [number, number, number];
  instances: number;
  labels: LabelCounts;
  /** segments of this input's documents (anchors per dupe round) */
  segments: number;
  /** copies per anchor the mix asks for (1 without --mix; < 1 drops anchors, > 1 repeats them) */
  keep_rate: number;
  /** anchor draws: segments × dupe rounds */
  anchors: number;
  /** anchor draws that got no copy (--mix down-sampling) */
  anchors_dropped: number;
  /** what was left out of this input, by reason (their sum over inputs is the manifest's `skipped`) */
  skipped: Record<string, number>;
}

export interface VocabInfo {
  hash: string;
  size: number;
  config: unknown;
  cls_id: number;
  sep_id: number;
  pad_id: number;
  mask_id: number;
  unk_id: number;
  /** ids never used as a random replacement token (all special tokens) */
  special_ids: number[];
  /** base64 bitmap, bit i set when id i starts a word (for whole-word masking at load time) */
  word_start: string;
  /** the tokenizer saved beside the shards (relative dir), for decoding in `inspect` */
  dir: string;
}

export interface Manifest {
  schema_version: number;
  kind: 'linkbert-shards';
  max_seq_len: number;
  max_predictions: number;
  /** bytes per packed token id in input_ids / masked_ids: 2 = uint16 LE, 4 = int32 LE */
  token_width: 2 | 4;
  mask: 'static' | 'dynamic';
  whole_word_mask: boolean;
  mask_prob: number;
  seed: number;
  vocab: VocabInfo;
  /** every option prepare ran with (the worker count excluded: output does not depend on it) */
  config: Record<string, unknown>;
  inputs: InputInfo[];
  counts: { instances: number; tokens: number; documents: number; segments: number; labels: LabelCounts };
  /** label fallbacks: how many anchors got another label than drawn, and how many deficits remained */
  label_fallback: { substituted: number; unresolved: LabelCounts };
  splits: { train: SplitInfo; valid: SplitInfo };
  skipped: Record<string, number>;
  /** things the user should know: an empty valid split, a heavily repeated or dropped --mix input */
  warnings: string[];
  graph: unknown;
}

export class ManifestError extends Error {}

export function readManifest(dir: string): Manifest {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(dir)) throw new ManifestError(`${dir}: no such directory`);
  if (!fs.existsSync(file))
    throw new ManifestError(
      `${dir}: no manifest.json, so this is not a complete prepared shard directory ` +
        `(prepare moves the manifest in last: a run interrupted while moving its output in leaves none — run \`linkbert prepare\` again)`,
    );
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  } catch (e) {
    throw new ManifestError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (m.kind !== 'linkbert-shards') throw new ManifestError(`${file}: field "kind" is ${JSON.stringify(m.kind)}, expected "linkbert-shards"`);
  if (m.schema_version !== SCHEMA_VERSION)
    throw new ManifestError(`${file}: field "schema_version" is ${m.schema_version}, this build reads ${SCHEMA_VERSION}`);
  for (const f of ['max_seq_len', 'max_predictions', 'token_width'] as const)
    if (typeof m[f] !== 'number') throw new ManifestError(`${file}: field "${f}" missing or not a number`);
  if (!m.splits?.train || !m.splits?.valid) throw new ManifestError(`${file}: field "splits" must have "train" and "valid"`);
  return m;
}

/** Write the manifest atomically (temp file + fsync + rename). */
export function writeManifest(dir: string, m: Manifest): void {
  const file = path.join(dir, 'manifest.json');
  const tmp = file + '.tmp';
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(m, null, 2) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
