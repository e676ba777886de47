// `linkbert vocab train`: learn a WordPiece vocab (HF's WordPiece trainer algorithm) with [PAD]=0 [UNK]=1 [CLS]=2
// [SEP]=3 [MASK]=4; `linkbert vocab info`: size, settings and hash of a vocab / tokenizer directory.
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { WordPieceTokenizer, trainWordPieceVocab } from '../data/tokenizer/index.js';
import { loadTokenizer } from './tokenize.js';
import { FORMATS, type Format } from '../data/readers/index.js';

interface TrainOpts {
  input: string[];
  format?: Format;
  skipBad?: boolean;
  size: string;
  out: string;
  saveDir?: string;
  lowercase: boolean;
  minFrequency?: string;
  limitAlphabet?: string;
  workers?: string;
  quiet?: boolean;
}

function int(v: string, flag: string, min: number): number {
  const n = /^\d+$/.test(v) ? parseInt(v, 10) : NaN;
  if (!(n >= min)) throw new Error(`${flag} must be ${min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer >= ${min}`}, got '${v}'`);
  return n;
}

export function register(program: Command): void {
  const vocab = program.command('vocab').description('WordPiece vocabularies: train, info');
  vocab
    .command('train')
    .description(`train a WordPiece vocab of any size (Hugging Face's WordPiece trainer algorithm, deterministic); specials first ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4), no duplicates`)
    .requiredOption('--input <paths...>', 'corpus files, directories or archives, in any format `prepare` reads (plain text, JSONL, MediaWiki dumps, PMC JATS, MEDLINE, HTML); the documents\' text is trained on')
    .addOption(new Option('--format <format>', 'reader format for all inputs (default: detected per input, as in prepare)').choices(FORMATS))
    .option('--skip-bad', 'skip (and count) malformed input records instead of failing')
    .requiredOption('--size <n>', 'vocab size including the 5 special tokens')
    .requiredOption('--out <file>', 'vocab.txt to write')
    .option('--save-dir <dir>', 'also write a tokenizer directory (vocab.txt, tokenizer_config.json, special_tokens_map.json)')
    .option('--lowercase', 'lowercase + strip accents (uncased; default)', true)
    .option('--no-lowercase', 'cased vocab')
    .option('--min-frequency <n>', 'leave out words seen fewer than n times')
    .option('--limit-alphabet <n>', 'keep only the n most frequent characters')
    .option('--workers <n>', 'worker threads that convert markup and count words (default: one per core, none below 16 MB of input; the vocab is the same)')
    .option('--quiet', 'no summary on stderr')
    .action(async (opts: TrainOpts) => {
      const log = opts.quiet ? undefined : (m: string) => process.stderr.write(`vocab: ${m}\n`);
      const t0 = Date.now();
      const tokens = await trainWordPieceVocab(opts.input, {
        vocabSize: int(opts.size, '--size', 0),
        doLowerCase: opts.lowercase,
        minFrequency: opts.minFrequency === undefined ? undefined : int(opts.minFrequency, '--min-frequency', 1),
        limitAlphabet: opts.limitAlphabet === undefined ? undefined : int(opts.limitAlphabet, '--limit-alphabet', 1),
        format: opts.format,
        skipBad: opts.skipBad,
        workers: opts.workers === undefined ? undefined : int(opts.workers, '--workers', 0),
        log,
      });
      fs.mkdirSync(path.dirname(path.resolve(opts.out)), { recursive: true });
      fs.writeFileSync(opts.out, tokens.join('\n') + '\n');
      const tok = WordPieceTokenizer.fromVocab(tokens, { doLowerCase: opts.lowercase });
      if (opts.saveDir) tok.save(opts.saveDir);
      log?.(`wrote ${opts.out}: ${tokens.length} tokens (${opts.lowercase ? 'uncased' : 'cased'}) in ${((Date.now() - t0) / 1000).toFixed(1)}s, hash ${tok.hash().slice(0, 16)}`);
    });
  vocab
    .command('info')
    .description('size, settings, special ids and hash of a vocab.txt / tokenizer.json / tokenizer directory')
    .requiredOption('--vocab <path>', 'vocab.txt, tokenizer.json or directory')
    .option('--json', 'print JSON')
    .action((opts: { vocab: string; json?: boolean }) => {
      const tok = loadTokenizer(opts.vocab);
      const info = {
        path: opts.vocab,
        vocab_size: tok.vocabSize,
        duplicate_tokens: tok.duplicateTokens,
        continuation_tokens: tok.vocab.filter((t) => t.startsWith('##')).length,
        config: tok.config,
        special_ids: { pad: tok.padId, unk: tok.unkId, cls: tok.clsId, sep: tok.sepId, mask: tok.maskId },
        hash: tok.hash(),
      };
      if (opts.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      else for (const [k, v] of Object.entries(info)) console.log(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
    });
}
