// model-seqlen.test.ts: a batch shorter than the model's arena (ModelInputs.seqLen < seqLen) runs on the
// arena's prefix and gives the same encoder output and pooled [CLS] as the same batch padded to the full
// length with masked positions (fine-tuning pads each batch only to its own longest feature).
import test from 'ava';

import { BertModel } from '../src/model/bert.js';
import { resolveConfig } from '../src/model/config.js';
import { Ops } from '../src/ops.js';

test('a batch padded to 8 of an arena of 16 matches the same batch padded to 16', (t) => {
  const config = resolveConfig('tiny', { vocabSize: 50, hiddenDropout: 0, attentionDropout: 0 });
  const ops = new Ops('cpu');
  const B = 3, T = 16, S = 8, H = config.hiddenSize;
  const model = new BertModel(config, ops, { batchSize: B, seqLen: T, maxPredictions: 0 }, { pretrainingHeads: false });
  try {
    model.initParams(5);
    const lens = [8, 5, 3];
    const run = (L: number) => {
      const ids = new Int32Array(B * L), types = new Int32Array(B * L), mask = new Int32Array(B * L);
      for (let b = 0; b < B; b++)
        for (let i = 0; i < lens[b]!; i++) {
          ids[b * L + i] = 5 + ((b * 7 + i * 3) % 40);
          types[b * L + i] = i >= 4 ? 1 : 0;
          mask[b * L + i] = 1;
        }
      model.setInputs({ batchSize: B, seqLen: L, inputIds: ids, tokenTypeIds: types, attentionMask: mask });
      model.encode(false, 0);
      model.pool();
      t.is(model.seqLen, L);
      return { hidden: model.hidden.toArray() as Float32Array, pooled: (model.pooled.toArray() as Float32Array).slice(0, B * H) };
    };
    const full = run(T), short = run(S);
    let worst = 0;
    for (let b = 0; b < B; b++)
      for (let i = 0; i < lens[b]!; i++)
        for (let c = 0; c < H; c++) worst = Math.max(worst, Math.abs(full.hidden[(b * T + i) * H + c]! - short.hidden[(b * S + i) * H + c]!));
    for (let k = 0; k < B * H; k++) worst = Math.max(worst, Math.abs(full.pooled[k]! - short.pooled[k]!));
    t.true(worst <= 1e-5, `max |full - short| = ${worst}`);
    t.throws(() => model.setInputs({ batchSize: B, seqLen: T + 1, inputIds: new Int32Array(B * (T + 1)), tokenTypeIds: new Int32Array(B * (T + 1)), attentionMask: new Int32Array(B * (T + 1)) }), { instanceOf: RangeError });
  } finally {
    model.dispose();
  }
});
