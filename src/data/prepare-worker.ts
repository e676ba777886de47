// worker_threads entry for `prepare`: tokenises and segments documents sent by the main thread.
// Results depend only on the document text, so any split of documents over workers gives the same output.
import { parentPort, workerData } from 'node:worker_threads';
import { segmentText, loadTokenizer, type TokenizerSpec } from './segment.js';

export interface WorkerInit {
  tokenizer: TokenizerSpec;
  target: number;
}
export interface WorkerJob {
  id: number;
  docs: { i: number; text: string }[];
}
export interface WorkerResult {
  id: number;
  results: { i: number; tokens: Int32Array; bounds: Int32Array; sentences: number }[];
  error?: string;
}

const init = workerData as WorkerInit;
const port = parentPort!;
const tok = loadTokenizer(init.tokenizer);
port.on('message', (job: WorkerJob) => {
  try {
    const results = job.docs.map((d) => ({ i: d.i, ...segmentText(tok, d.text, init.target) }));
    const transfer = results.flatMap((r) => [r.tokens.buffer, r.bounds.buffer]) as ArrayBuffer[];
    port.postMessage({ id: job.id, results } satisfies WorkerResult, transfer);
  } catch (e) {
    port.postMessage({ id: job.id, results: [], error: (e as Error).stack ?? String(e) } satisfies WorkerResult);
  }
});
