// Line-oriented corpora without links: plain text (BERT's create_pretraining_data convention) and the Brown corpus.
import { Document, SkipCounter } from '../document.js';

export interface PlainOptions {
  file: string;
  /** Name used in ids: path relative to the corpus root (or the file's base name). */
  name: string;
  skips: SkipCounter;
  minChars: number;
}

/**
 * Plain text: one sentence or paragraph per line, documents separated by one or more blank lines
 * (the convention of BERT's create_pretraining_data.py). id = `<name>#<n>` with n counting documents
 * in the file from 1 (empty and too-short documents still take a number, so ids do not shift).
 */
export async function* readPlainText(lines: AsyncIterable<[string, number]>, o: PlainOptions): AsyncGenerator<Document> {
  let cur: string[] = [];
  let n = 0;
  const finish = (): Document | undefined => {
    if (cur.length === 0) return undefined;
    n++;
    const text = cur.join('\n');
    cur = [];
    if (text.length < o.minChars) {
      o.skips.add('too_short');
      return undefined;
    }
    return { id: `${o.name}#${n}`, text, links: [], source: o.file };
  };
  for await (const [line] of lines) {
    const t = line.replace(/\s+/g, ' ').trim();
    if (t === '') {
      const d = finish();
      if (d) yield d;
    } else cur.push(t);
  }
  const d = finish();
  if (d) yield d;
}

const NO_SPACE_BEFORE = new Set([',', '.', ';', ':', '!', '?', ')', ']', '}', "'", "''", '%', "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"]);
const NO_SPACE_AFTER = new Set(['(', '[', '{', '``', '$']);

/** Joins tokens into a sentence: no space before closing punctuation, none after opening brackets/quotes. */
export function detokenize(tokens: string[]): string {
  let out = '';
  let glueNext = true;
  let quoteOpen = false;
  for (const tok of tokens) {
    let t = tok;
    let glue = NO_SPACE_BEFORE.has(t);
    let after = NO_SPACE_AFTER.has(t);
    // "Jr. ." in Brown: the sentence period after an abbreviation's period was written once in the original.
    if (t === '.' && /\.$/.test(out)) continue;
    if (t === '``') t = '"';
    else if (t === "''") t = '"';
    else if (t === '"') {
      // Plain double quotes alternate open/close.
      quoteOpen = !quoteOpen;
      glue = !quoteOpen;
      after = quoteOpen;
    }
    out += glueNext || glue ? t : ` ${t}`;
    glueNext = after;
  }
  return out;
}

/**
 * A Brown corpus file (ca01 ... cr09): tokens `word/tag`, one sentence per indented line, blank lines
 * between sentences. One file = one document (id `brown:<file>`, title = the file name, or "file (category)"
 * when cats.txt is known); one sentence per line, tags dropped.
 */
export async function* readBrown(
  lines: AsyncIterable<[string, number]>,
  o: PlainOptions & { category?: string },
): AsyncGenerator<Document> {
  const sents: string[] = [];
  for await (const [line] of lines) {
    const toks = line.trim().split(/\s+/).filter((x) => x);
    if (toks.length === 0) continue;
    const words: string[] = [];
    for (const tk of toks) {
      const slash = tk.lastIndexOf('/');
      if (slash <= 0) {
        o.skips.add('brown_untagged_token');
        words.push(tk);
      } else words.push(tk.slice(0, slash));
    }
    sents.push(detokenize(words));
  }
  const text = sents.join('\n');
  if (text.length < o.minChars) {
    o.skips.add('too_short');
    return;
  }
  yield {
    id: `brown:${o.name}`,
    title: o.category ? `${o.name} (${o.category})` : o.name,
    text,
    links: [],
    source: o.file,
  };
}
