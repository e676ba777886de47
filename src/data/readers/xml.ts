// Streaming XML driver on top of sax: feeds decoded text chunks, lets a format-specific handler emit
// documents, and turns sax errors into InputErrors (or counted skips with skipBad).
import sax from 'sax';
import { InputError, SkipCounter } from '../document.js';

export interface SaxHandler {
  onopen(name: string, attrs: Record<string, string>, depth: number): void;
  onclose(name: string, depth: number): void;
  ontext(text: string): void;
  /** Called when the parser hit malformed XML and skipBad is on: drop whatever record is half-built. */
  onrecover?(): void;
}

export interface SaxOptions {
  file: string;
  skipBad: boolean;
  skips: SkipCounter;
}

/** Give up on a file after this many recovered errors: the rest of it is not XML any more. */
const MAX_ERRORS_PER_FILE = 100;

export async function* runSax<T>(
  chunks: AsyncIterable<string>,
  opts: SaxOptions,
  make: (emit: (d: T) => void) => SaxHandler,
): AsyncGenerator<T> {
  const parser = sax.parser(true, { position: true });
  const queue: T[] = [];
  const h = make((d) => queue.push(d));
  const stack: string[] = [];
  let errors = 0;
  let fatal: InputError | undefined;
  parser.onopentag = (node) => {
    stack.push(node.name);
    h.onopen(node.name, node.attributes as Record<string, string>, stack.length);
  };
  parser.onclosetag = (name) => {
    h.onclose(name, stack.length);
    stack.pop();
  };
  parser.ontext = (t) => h.ontext(t);
  parser.oncdata = (t) => h.ontext(t);
  parser.onerror = (e) => {
    const where = `line ${parser.line + 1}`;
    const field = stack.length ? stack.join('/') : 'document';
    const msg = `malformed XML: ${String(e.message).split('\n')[0]}`;
    if (!opts.skipBad) {
      fatal = new InputError(opts.file, where, field, msg);
      return;
    }
    errors++;
    opts.skips.add('malformed_xml');
    h.onrecover?.();
    if (errors >= MAX_ERRORS_PER_FILE) fatal = new InputError(opts.file, where, field, `${msg} (giving up after ${errors} errors)`);
    else parser.resume();
  };
  try {
    for await (const c of chunks) {
      parser.write(c);
      if (fatal) break;
      while (queue.length) yield queue.shift()!;
    }
    if (!fatal) parser.close();
  } catch (e) {
    if (fatal) {
      /* reported below */
    } else if (e instanceof InputError) throw e;
    else throw new InputError(opts.file, `line ${parser.line + 1}`, stack.join('/') || 'document', `malformed XML: ${String((e as Error).message).split('\n')[0]}`);
  }
  if (fatal) {
    if (opts.skipBad) {
      opts.skips.add('malformed_xml_file_abandoned');
      return;
    }
    throw fatal;
  }
  while (queue.length) yield queue.shift()!;
}
