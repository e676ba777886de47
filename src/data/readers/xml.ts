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

export interface XmlRecord {
  /** the record's own bytes, from '<tag' to its '</tag>' */
  bytes: Uint8Array;
  tag: string;
  /** byte offset and line (1-based) of the record in the stream */
  offset: number;
  line: number;
}

/**
 * Splits a UTF-8 XML byte stream into top-level records `<tag …>…</tag>` (one of `tags`, which must not
 * nest in themselves nor appear literally inside text — true of MediaWiki <page> and PubMed records,
 * where text escapes '<') without parsing or decoding them, so the parsing can happen elsewhere.
 * `onHeader` gets the text before the first record. A stream that ends inside a record is an InputError
 * naming that record's line and offset, or with skipBad a counted `<tag>_malformed` skip.
 */
export async function* splitXmlRecords(
  bytes: AsyncIterable<Buffer>,
  tags: string[],
  o: SaxOptions,
  onHeader: (header: string) => Promise<void> | void = () => {},
): AsyncGenerator<XmlRecord> {
  const opens = tags.map((t) => Buffer.from(`<${t}`));
  const closes = tags.map((t) => Buffer.from(`</${t}>`));
  const longest = Math.max(...opens.map((b) => b.length)) + 1;
  let buf: Buffer = Buffer.alloc(0);
  let base = 0; // stream offset of buf[0]
  let line = 1; // line number at buf[counted]
  let counted = 0;
  const lineAt = (i: number): number => {
    for (let k = buf.indexOf(10, counted); k !== -1 && k < i; k = buf.indexOf(10, k + 1)) line++;
    counted = i;
    return line;
  };
  let headerDone = false;
  // The earliest record start at or after `from`: [index, tag], or [-1, -1] when none is complete yet;
  // an open tag too close to the end to see its next byte counts as a start (more data decides).
  const findStart = (from: number): [number, number] => {
    let best = -1;
    let bestTag = -1;
    for (let t = 0; t < opens.length; t++) {
      for (let i = buf.indexOf(opens[t], from); i !== -1 && (best === -1 || i < best); i = buf.indexOf(opens[t], i + 1)) {
        const c = buf[i + opens[t].length];
        if (i + opens[t].length >= buf.length || c === 0x3e || c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d || c === 0x2f) {
          best = i;
          bestTag = t;
          break;
        }
      }
    }
    return [best, bestTag];
  };
  for await (const chunk of bytes) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    let pos = 0; // buf[pos..] is kept for the next chunk
    for (;;) {
      const [s, t] = findStart(pos);
      if (s === -1) {
        // keep the header whole; after it, only a tail that may be the start of an open tag
        if (headerDone) pos = Math.max(pos, buf.length - longest);
        break;
      }
      if (s + opens[t].length >= buf.length) {
        if (headerDone) pos = s;
        break;
      }
      if (!headerDone) {
        await onHeader(buf.subarray(0, s).toString('utf8'));
        headerDone = true;
      }
      const e = buf.indexOf(closes[t], s);
      if (e === -1) {
        pos = s;
        break;
      }
      const end = e + closes[t].length;
      // own copy: a view would carry (and a worker message would clone) the whole chunk
      yield { bytes: Uint8Array.prototype.slice.call(buf, s, end), tag: tags[t], offset: base + s, line: lineAt(s) };
      pos = end;
    }
    lineAt(pos);
    base += pos;
    counted = 0;
    buf = Buffer.from(buf.subarray(pos));
  }
  if (!headerDone) await onHeader(buf.toString('utf8'));
  const [open, t] = findStart(0);
  if (open !== -1) {
    if (!o.skipBad) throw new InputError(o.file, `line ${lineAt(open)} (offset ${base + open})`, tags[t], 'malformed XML: the file ends inside this record (truncated?)');
    o.skips.add(tags[t] === 'page' ? 'page_malformed' : 'record_malformed');
  }
}
