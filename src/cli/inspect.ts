// `linkbert inspect DIR`: print decoded instances of a prepared shard directory.
import type { Command } from 'commander';
import { Option } from 'commander';
import path from 'node:path';
import { ShardDataset } from '../data/shards/reader.js';
import { DRP_LABELS, tokenTypeIds, type Instance } from '../data/shards/format.js';
import { WordPieceTokenizer } from '../data/tokenizer/index.js';

/** The JSON line of one instance: what the model is fed (static masks applied) and its labels. */
export function instanceJson(inst: Instance): Record<string, unknown> {
  const ids = Array.from(inst.inputIds);
  const labels: number[] = [];
  for (let k = 0; k < inst.maskedPositions.length; k++) {
    labels.push(ids[inst.maskedPositions[k]]);
    ids[inst.maskedPositions[k]] = inst.maskedIds[k];
  }
  return {
    input_ids: ids,
    token_type_ids: Array.from(tokenTypeIds(inst)),
    masked_positions: Array.from(inst.maskedPositions),
    masked_labels: labels,
    drp_label: DRP_LABELS[inst.drpLabel],
    doc_a: inst.docA,
    doc_b: inst.docB,
    seg_a: inst.segA,
    seg_b: inst.segB,
  };
}

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show decoded instances of a prepared shard directory: text with [SEP], label, documents and masks')
    .argument('<dir>', 'output directory of `linkbert prepare`')
    .option('--n <n>', 'number of instances', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--n: expected a non-negative integer, got "${v}"`);
      return n;
    }, 5)
    .option('--start <i>', 'first record index', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--start: expected a non-negative integer, got "${v}"`);
      return n;
    }, 0)
    .addOption(new Option('--split <split>', 'which split').choices(['train', 'valid']).default('train'))
    .option('--json', 'one JSON line per instance (input_ids with masks applied, token_type_ids, masked_positions, masked_labels, drp_label, doc_a, doc_b)')
    .action((dir: string, o: { n: number; start: number; split: 'train' | 'valid'; json?: boolean }) => {
      const ds = ShardDataset.open(dir, o.split);
      try {
        // an empty split starting at 0 shows its header; any other start must name an instance
        if (o.start > 0 && o.start >= ds.size) throw new Error(`--start ${o.start} is past the end (${ds.size} instance${ds.size === 1 ? '' : 's'} in ${o.split})`);
        const end = Math.min(ds.size, o.start + o.n);
        if (o.json) {
          for (let i = o.start; i < end; i++) process.stdout.write(JSON.stringify(instanceJson(ds.get(i))) + '\n');
          return;
        }
        const tok = WordPieceTokenizer.fromDir(path.join(dir, ds.manifest.vocab.dir));
        const m = ds.manifest;
        process.stdout.write(
          `${dir} (${o.split}): ${ds.size} instances, max_seq_len ${m.max_seq_len}, ${m.mask} masking${m.whole_word_mask ? ' (whole word)' : ''}\n`,
        );
        for (let i = o.start; i < end; i++) {
          const inst = ds.get(i);
          const ids = inst.inputIds;
          const a = tok.decode(ids.subarray(1, inst.lenA + 1));
          const b = tok.decode(ids.subarray(inst.lenA + 2, ids.length - 1));
          process.stdout.write(`\n#${i} ${DRP_LABELS[inst.drpLabel]}  A=${inst.docA}#${inst.segA}  B=${inst.docB}#${inst.segB}  ${ids.length} tokens\n`);
          process.stdout.write(`[CLS] ${a} [SEP] ${b} [SEP]\n`);
          if (inst.maskedPositions.length) {
            const shown: string[] = [];
            for (let k = 0; k < inst.maskedPositions.length; k++) {
              const p = inst.maskedPositions[k];
              const orig = tok.idToToken(ids[p]);
              const rep = inst.maskedIds[k];
              shown.push(rep === ids[p] ? `${p}:${orig}(kept)` : `${p}:${orig}→${tok.idToToken(rep)}`);
            }
            process.stdout.write(`masked (${inst.maskedPositions.length}): ${shown.join(' ')}\n`);
          } else if (m.mask === 'dynamic') process.stdout.write('masked: chosen by the loader at training time (dynamic masking)\n');
        }
      } finally {
        ds.close();
      }
    });
}
