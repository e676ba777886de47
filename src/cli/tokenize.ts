// `linkbert tokenize`: WordPiece-tokenize stdin, one output line per input line.
import fs from 'node:fs';
import os from 'node:os';
import readline from 'node:readline';
import type { Command } from 'commander';
import { WordPieceTokenizer, type TokenizerConfig } from '../data/tokenizer/index.js';

interface Opts {
  vocab: string;
  json?: boolean;
  special?: boolean;
  offsets?: boolean;
  lowercase?: boolean;
}

/** vocab.txt, tokenizer.json or a tokenizer directory; `lowercase` (when given) overrides the config. */
export function loadTokenizer(spec: string, lowercase?: boolean): WordPieceTokenizer {
  if (!fs.existsSync(spec)) throw new Error(`vocab ${spec} does not exist`);
  const over: Partial<TokenizerConfig> = lowercase === undefined ? {} : { doLowerCase: lowercase };
  let tok: WordPieceTokenizer;
  if (fs.statSync(spec).isDirectory()) tok = WordPieceTokenizer.fromDir(spec);
  else if (spec.endsWith('.json')) tok = WordPieceTokenizer.fromTokenizerJson(spec);
  else return WordPieceTokenizer.fromVocabFile(spec, over);
  return lowercase === undefined || lowercase === tok.config.doLowerCase ? tok : WordPieceTokenizer.fromVocab([...tok.vocab], { ...tok.config, ...over });
}

/** One output line per input line (see the command help for the formats). */
export async function tokenizeStream(
  tok: WordPieceTokenizer,
  input: NodeJS.ReadableStream,
  write: (chunk: string) => void,
  opts: { json?: boolean; special?: boolean; offsets?: boolean },
): Promise<number> {
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  const threads = os.availableParallelism?.() ?? os.cpus().length;
  let out: string[] = [];
  let size = 0;
  let lines = 0;
  const flush = () => {
    if (out.length) write(out.join(''));
    out = [];
    size = 0;
  };
  const emit = (s: string) => {
    out.push(s + '\n');
    size += s.length;
    if (size > 1 << 16) flush();
  };
  const idsLine = (ids: number[]) => {
    if (opts.special) {
      ids.unshift(tok.clsId);
      ids.push(tok.sepId);
    }
    return opts.json ? '[' + ids.join(',') + ']' : ids.map((id) => tok.idToToken(id)).join(' ');
  };
  // lines are tokenised in batches (encodeBatch: in the addon, on every core)
  let pending: string[] = [];
  let pendingChars = 0;
  const run = () => {
    const b = tok.encodeBatch(pending, { threads });
    for (let k = 0; k < pending.length; k++) emit(idsLine(Array.from(b.ids.subarray(b.start[k], b.start[k + 1]))));
    pending = [];
    pendingChars = 0;
  };
  for await (const line of rl) {
    lines++;
    if (opts.json && opts.offsets) {
      const e = tok.encodeWithOffsets(line);
      const ids = Array.from(e.ids);
      const offs: [number, number][] = [];
      for (let k = 0; k < ids.length; k++) offs.push([e.offsets[2 * k], e.offsets[2 * k + 1]]);
      if (opts.special) {
        // HF gives special tokens the empty span (0, 0)
        ids.unshift(tok.clsId);
        ids.push(tok.sepId);
        offs.unshift([0, 0]);
        offs.push([0, 0]);
      }
      emit(JSON.stringify({ ids, offsets: offs }));
      continue;
    }
    pending.push(line);
    pendingChars += line.length + 16;
    if (pendingChars >= 1 << 18) run();
  }
  if (pending.length) run();
  flush();
  return lines;
}

export function register(program: Command): void {
  program
    .command('tokenize')
    .description(
      'WordPiece-tokenize stdin line by line (ids identical to HF BertTokenizerFast). Output, one line per input line: ' +
        'with --json a JSON array of ids (with --offsets: {"ids":[..],"offsets":[[start,end],..]}, UTF-16 offsets into the line); ' +
        'without --json the tokens separated by spaces. No [CLS]/[SEP] unless --special.',
    )
    .requiredOption('--vocab <path>', 'vocab.txt, tokenizer.json, or a tokenizer directory (tokenizer_config.json + vocab.txt/tokenizer.json)')
    .option('--json', 'print ids as JSON arrays')
    .option('--special', 'wrap each line in [CLS] ... [SEP]')
    .option('--offsets', 'with --json: also print [start, end) offsets of each piece')
    .option('--lowercase', 'lowercase and strip accents (default for vocab.txt: on; for a directory: its tokenizer_config.json)')
    .option('--no-lowercase', 'keep case and accents')
    .action(async (opts: Opts) => {
      if (opts.offsets && !opts.json) throw new Error('--offsets needs --json (offsets are printed in the JSON objects)');
      const tok = loadTokenizer(opts.vocab, opts.lowercase);
      await tokenizeStream(tok, process.stdin, (chunk) => process.stdout.write(chunk), opts);
    });
}
