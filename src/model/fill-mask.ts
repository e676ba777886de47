// fill-mask.ts: what a checkpoint predicts for [MASK] tokens, shaped like Hugging Face's fill-mask
// pipeline: per mask, a list of {score, token, token_str, sequence}.
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { WordPieceTokenizer } from '../data/tokenizer/index.js';
import { loadCheckpoint, matchParams } from './checkpoint/index.js';
import { BertModel } from './bert.js';
import { Ops, type BackendName } from '../ops.js';

export interface FillMaskCandidate {
  score: number;
  token: number;
  token_str: string;
  sequence: string;
}

export class FillMaskError extends Error {}

/** A loaded checkpoint that answers fill-mask queries (one model, reused). */
export class FillMasker {
  readonly tokenizer: WordPieceTokenizer;
  private readonly params: Map<string, Float32Array>;
  readonly notes: string[];
  private readonly config;
  private model?: BertModel;
  private cap = { T: 0, P: 0 };
  constructor(readonly checkpoint: string, private readonly ops: Ops = new Ops('cpu')) {
    const ck = loadCheckpoint(checkpoint);
    // a weights file (model.safetensors) names its folder: the tokenizer files sit beside it
    this.tokenizer = WordPieceTokenizer.fromDir(statSync(checkpoint).isDirectory() ? checkpoint : dirname(checkpoint));
    const m = matchParams(ck.config, ck.tensors, { source: checkpoint, strict: true });
    if (m.initialised.some((n) => n.startsWith('cls.predictions')))
      throw new FillMaskError(`${checkpoint}: no MLM head (cls.predictions.*) in the checkpoint, so it cannot fill masks`);
    this.params = m.params;
    this.notes = m.notes;
    this.config = { ...ck.config, hiddenDropout: 0, attentionDropout: 0 };
  }

  /** Token ids of `text`, with each literal "[MASK]" as the mask token. */
  encode(text: string): Int32Array {
    const parts = text.split('[MASK]');
    const ids: number[] = [];
    parts.forEach((part, i) => {
      if (i > 0) ids.push(this.tokenizer.maskId);
      for (const id of this.tokenizer.encode(part)) ids.push(id);
    });
    return Int32Array.from(ids);
  }

  fill(text: string, topK = 5): FillMaskCandidate[][] {
    if (!text.includes('[MASK]')) throw new FillMaskError(`the text has no [MASK] token: "${text}"`);
    const tok = this.tokenizer;
    const body = this.encode(text);
    const ids = Int32Array.from([tok.clsId, ...body, tok.sepId]);
    const T = ids.length;
    if (T > this.config.maxPositionEmbeddings) throw new FillMaskError(`the text is ${T} tokens long; the model takes at most ${this.config.maxPositionEmbeddings}`);
    const maskPos: number[] = [];
    ids.forEach((id, i) => id === tok.maskId && maskPos.push(i));
    const P = maskPos.length;
    if (!this.model || this.cap.T !== T || this.cap.P < P) {
      this.model?.dispose();
      this.model = new BertModel(this.config, this.ops, { batchSize: 1, seqLen: T, maxPredictions: P });
      this.model.loadParams(this.params);
      this.cap = { T, P };
    }
    const model = this.model;
    const Pm = this.cap.P;
    const positions = new Int32Array(Pm), labels = new Int32Array(Pm).fill(-1);
    maskPos.forEach((p, i) => { positions[i] = p; labels[i] = 0; });
    model.setInputs({
      batchSize: 1, inputIds: ids, tokenTypeIds: new Int32Array(T), attentionMask: new Int32Array(T).fill(1),
      maskedPositions: positions, maskedLabels: labels, drpLabels: new Int32Array(1),
    });
    model.forwardPretrain(false, 0, { withGrad: false });
    const logits = model.readMlmLogits();
    const V = this.config.vocabSize;
    const k = Math.max(1, Math.min(topK, V));
    return maskPos.map((pos, m) => {
      const row = logits.subarray(m * V, (m + 1) * V);
      let max = -Infinity;
      for (const x of row) max = Math.max(max, x);
      let sum = 0;
      for (const x of row) sum += Math.exp(x - max);
      const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => row[b]! - row[a]!).slice(0, k);
      const others = new Set(maskPos.filter((p) => p !== pos));
      return order.map((id) => {
        const filled = ids.slice(1, -1);
        filled[pos - 1] = id;
        // the other masks stay in the text ("a w is [MASK] here"), as in Hugging Face's pipeline; other
        // special tokens are skipped as before
        const kept = Array.from(filled).filter((t, j) => others.has(j + 1) || !tok.isSpecial(t));
        return {
          score: Math.exp(row[id]! - max) / sum,
          token: id,
          token_str: tok.decode([id]),
          sequence: tok.decode(kept),
        };
      });
    });
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}

export function fillMask(checkpoint: string, text: string, topK = 5, backend: BackendName = 'cpu'): FillMaskCandidate[][] {
  const f = new FillMasker(checkpoint, new Ops(backend));
  try {
    return f.fill(text, topK);
  } finally {
    f.dispose();
  }
}
