// worker_threads entry for `prepare`. Two modes:
//  - tokenize: convert deferred markup (MediaWiki), then split, tokenise and pack documents sent by the
//    main thread into segments;
//  - build: make and encode the instances of anchors the main thread has planned (labels decided).
// A worker starts in the mode of its workerData; a BuildInit message switches a tokenize worker to build,
// so stage 3 reuses stage 1's threads instead of paying for new ones (a thread, its module graph).
// Results depend only on the inputs of each job, so any split of work over workers gives the same output.
import { parentPort, workerData } from 'node:worker_threads';
import { InputError } from './document.js';
import { segmentJobs, loadTokenizer, type TokenizerSpec, type TextJob, type SegmentedText } from './segment.js';
import { InstanceBuilder, docsFromShared, tokenReader, type SharedDocs, type InstanceOptions } from './instances.js';
import { Masker, type MaskSpec } from './masking.js';

export interface TokenizeInit {
  mode: 'tokenize';
  tokenizer: TokenizerSpec;
  target: number;
}
export interface TokenizeJob {
  id: number;
  docs: ({ i: number } & TextJob)[];
}
export interface TokenizeResult {
  id: number;
  results: ({ i: number } & SegmentedText)[];
  error?: string;
  /** the error is bad input (its message says where), not a bug */
  inputError?: boolean;
}

export interface BuildInit {
  mode: 'build';
  shared: SharedDocs;
  split: Uint8Array;
  builder: Omit<InstanceOptions, 'masker' | 'tokens'>;
  /** static masking spec, or null for dynamic-mask shards */
  mask: MaskSpec | null;
  width: 2 | 4;
}
export interface BuildJob {
  id: number;
  round: number;
  doc: Int32Array;
  seg: Int32Array;
  copy: Int32Array;
  label: Int8Array;
}
export interface BuildResult {
  id: number;
  /** framed records, concatenated in job order */
  records: Uint8Array;
  lens: Int32Array;
  /** tokens per record */
  ntok: Int32Array;
  error?: string;
}

const port = parentPort!;
const init = workerData as TokenizeInit | BuildInit;

function tokenizeMode(init: TokenizeInit): (job: TokenizeJob) => void {
  const tok = loadTokenizer(init.tokenizer);
  // Deferred conversions are async (they reuse the streaming readers), so jobs are chained to run one
  // at a time, in arrival order.
  let chain = Promise.resolve();
  const run = async (job: TokenizeJob): Promise<void> => {
    try {
      const results: TokenizeResult['results'] = [];
      const segs = await segmentJobs(tok, job.docs, init.target);
      job.docs.forEach((d, k) => results.push({ i: d.i, ...segs[k] }));
      const transfer = results.flatMap((r) => [r.tokens.buffer, r.bounds.buffer]) as ArrayBuffer[];
      port.postMessage({ id: job.id, results } satisfies TokenizeResult, transfer);
    } catch (e) {
      // an input error's message names the file and place; anything else gets its stack
      const msg = e instanceof InputError ? e.message : ((e as Error).stack ?? String(e));
      port.postMessage({ id: job.id, results: [], error: msg, inputError: e instanceof InputError } satisfies TokenizeResult);
    }
  };
  return (job) => {
    chain = chain.then(() => run(job));
  };
}

function buildMode(init: BuildInit): (job: BuildJob) => void {
  const builder = new InstanceBuilder(docsFromShared(init.shared), init.split, {
    ...init.builder,
    masker: init.mask ? new Masker(init.mask) : undefined,
    tokens: tokenReader(init.shared),
  });
  return (job) => {
    try {
      const { records, lens, ntok } = builder.buildRecords(job.round, job, init.width);
      port.postMessage({ id: job.id, records, lens, ntok } satisfies BuildResult, [records.buffer, lens.buffer, ntok.buffer]);
    } catch (e) {
      port.postMessage({ id: job.id, records: new Uint8Array(0), lens: new Int32Array(0), ntok: new Int32Array(0), error: (e as Error).stack ?? String(e) } satisfies BuildResult);
    }
  };
}

// an error while setting up a mode escapes to the pool as the worker's 'error' event
let handle = init.mode === 'tokenize' ? tokenizeMode(init) : buildMode(init);
port.on('message', (m: (TokenizeJob & BuildJob) | BuildInit) => {
  if ('mode' in m) {
    // the switch to build mode: the tokenizer (and its word cache) is dropped with the old handler
    handle = buildMode(m);
    return;
  }
  handle(m);
});
