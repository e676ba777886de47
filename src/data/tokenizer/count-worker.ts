// worker_threads entry for `vocab train`: converts the deferred markup of the documents the main thread
// reads (ReadOptions.deferMarkup: MediaWiki pages, JATS/HTML files, JSON lines, PubMed records) and counts
// their words with the BERT basic tokenizer, as the inline path does. The counts go back with a reply once
// they hold FLUSH_WORDS distinct words, and with the reply to `flush`: a worker never holds more than that,
// and the main thread, which holds the whole table, merges far fewer entries than there are words (on a
// 54 MB dump, sending each 1 MB job's counts made the merging most of the main thread's work).
// Counts are sums: any split of the documents over workers gives the same vocab.
import { parentPort, workerData } from 'node:worker_threads';
import { InputError, type DeferredMarkup } from '../document.js';
import { convertDeferred } from '../readers/deferred.js';
import { WordPieceTokenizer } from './wordpiece.js';

export interface CountInit {
  doLowerCase: boolean;
  stripAccents: boolean | null;
  tokenizeChineseChars: boolean;
  specials: string[];
}
export interface CountJob {
  id: number;
  docs: { text: string; deferred?: DeferredMarkup; id?: string; title?: string; aliases?: string[] }[];
  /** send the counts held so far with this reply */
  flush?: boolean;
}
export interface CountReply {
  id: number;
  /** documents counted (a conversion may drop one: its reason is in skips) */
  docs: number;
  lines: number;
  skips: [string, number][];
  /** counts since the last ones sent (often none): distinct words and their counts */
  words: string[];
  counts: Float64Array;
  error?: string;
  /** the error is bad input (its message says where), not a bug */
  inputError?: boolean;
}

const port = parentPort!;
const init = workerData as CountInit;
const basic = WordPieceTokenizer.fromVocab(init.specials, {
  doLowerCase: init.doLowerCase,
  stripAccents: init.stripAccents,
  tokenizeChineseChars: init.tokenizeChineseChars,
});
const FLUSH_WORDS = 1 << 18;
const counts = new Map<string, number>();

async function run(job: CountJob): Promise<CountReply> {
  let docs = 0, lines = 0;
  const skips = new Map<string, number>();
  for (const d of job.docs) {
    let text = d.text;
    if (d.deferred) {
      const c = await convertDeferred({ id: d.id ?? '', title: d.title, text: d.text, aliases: d.aliases }, d.deferred);
      for (const [k, v] of c.skips) skips.set(k, (skips.get(k) ?? 0) + v);
      if (!c.doc) continue;
      text = c.doc.text;
    }
    docs++;
    for (const line of text.split('\n')) {
      lines++;
      for (const w of basic.basicTokenize(line)) counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  if (!job.flush && counts.size < FLUSH_WORDS) return { id: job.id, docs, lines, skips: [...skips], words: [], counts: new Float64Array(0) };
  const words = [...counts.keys()];
  const c = Float64Array.from(words, (w) => counts.get(w)!);
  counts.clear();
  return { id: job.id, docs, lines, skips: [...skips], words, counts: c };
}

// deferred conversions are async: jobs run one at a time, in arrival order
let chain = Promise.resolve();
port.on('message', (m: CountJob) => {
  chain = chain.then(async () => {
    try {
      const r = await run(m);
      port.postMessage(r, [r.counts.buffer as ArrayBuffer]);
    } catch (e) {
      const msg = e instanceof InputError ? e.message : ((e as Error).stack ?? String(e));
      port.postMessage({ id: m.id, docs: 0, lines: 0, skips: [], words: [], counts: new Float64Array(0), error: msg, inputError: e instanceof InputError } satisfies CountReply);
    }
  });
});
