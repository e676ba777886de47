// Work that a reader left to the document's consumer (ReadOptions.deferMarkup), so that prepare runs it
// in worker threads: parsing and converting MediaWiki pages is most of the cost of reading a dump.
import { InputError, SkipCounter, type DeferredMarkup } from '../document.js';
import { wikiToText, type NamespaceMap } from './wikitext.js';
import { decodeText, decodeUtf8 } from './io.js';
import { jsonLineDocument } from './jsonl.js';

// The readers built on XML/HTML parsers load on first use: a worker that converts wiki pages or JSON
// lines never loads the HTML, JATS and MEDLINE readers.
const lazy = <T>(load: () => Promise<T>): (() => Promise<T>) => {
  let p: Promise<T> | undefined;
  return () => (p ??= load());
};
const mediawikiReader = lazy(() => import('./mediawiki.js'));
const medlineReader = lazy(() => import('./medline.js'));
const jatsReader = lazy(() => import('./jats.js'));
const htmlReader = lazy(() => import('./html.js'));

const SET_OPEN = Buffer.from('<PubmedArticleSet>');
const SET_CLOSE = Buffer.from('</PubmedArticleSet>');

export interface Converted {
  /** the finished document; undefined when the conversion dropped it (the reason is in `skips`) */
  doc?: { id: string; title?: string; text: string; links: string[]; aliases?: string[] };
  /** what the reader would have counted in its SkipCounter */
  skips: [string, number][];
  /** MediaWiki redirects found (normalised from → to), for ReadOptions.redirects */
  redirects: [string, string][];
}

// One Map per namespace list: a dump's pages share the list (also across a worker message, since
// structured clone keeps shared references shared). Pages never change it.
const nsMaps = new WeakMap<[string, number][], NamespaceMap>();
function nsMapOf(list: [string, number][]): NamespaceMap {
  let ns = nsMaps.get(list);
  if (!ns) nsMaps.set(list, (ns = new Map(list)));
  return ns;
}

/** Finishes a deferred document exactly as its reader would have (same text, links, drops and counts). */
export async function convertDeferred(doc: { id: string; title?: string; text: string; aliases?: string[] }, d: DeferredMarkup): Promise<Converted> {
  if (d.kind === 'wikitext') {
    const w = wikiToText(doc.text, nsMapOf(d.namespaces));
    const skips: [string, number][] = w.otherLinks ? [['link_not_article', w.otherLinks]] : [];
    if (w.text.length < d.minChars) return { skips: [...skips, ['too_short', 1]], redirects: [] };
    return { doc: { id: doc.id, title: doc.title, text: w.text, links: w.links, aliases: doc.aliases }, skips, redirects: [] };
  }
  if (d.kind === 'mediawiki-page' || d.kind === 'medline-record') {
    const skips = new SkipCounter();
    const redirects = new Map<string, string>();
    const bytes = Buffer.from(d.bytes.buffer, d.bytes.byteOffset, d.bytes.byteLength);
    // a PubMed record is parsed inside its set element, as in the file (no newline: lines stay aligned)
    const one = (async function* () {
      if (d.kind === 'medline-record') yield Buffer.concat([SET_OPEN, bytes, SET_CLOSE]);
      else yield bytes;
    })();
    const text = decodeText(one, skips);
    const it =
      d.kind === 'mediawiki-page'
        ? (await mediawikiReader()).readMediaWiki(text, { file: d.file, skipBad: d.skipBad, skips, minChars: d.minChars, redirects, nsMap: nsMapOf(d.namespaces) })
        : (await medlineReader()).readMedline(text, { file: d.file, skipBad: d.skipBad, skips, minChars: d.minChars });
    const docs = [];
    try {
      for await (const x of it) docs.push(x);
    } catch (e) {
      // place the error in the file: the record's first line plus the line within it
      if (e instanceof InputError) {
        const m = /^line (\d+)$/.exec(e.where);
        const where = m ? `line ${d.line + Number(m[1]) - 1}` : `${e.where} of the record at line ${d.line}`;
        throw new InputError(d.file, `${where} (${d.kind === 'mediawiki-page' ? 'page' : 'record'} at offset ${d.offset})`, e.field, e.detail);
      }
      throw e;
    }
    if (docs.length > 1) throw new Error(`internal: the record of ${d.file} at offset ${d.offset} gave ${docs.length} documents`);
    const x = docs[0];
    return {
      doc: x ? { id: x.id, title: x.title, text: x.text, links: x.links, aliases: x.aliases } : undefined,
      skips: Object.entries(skips.toJSON()),
      redirects: [...redirects],
    };
  }
  if (d.kind === 'jsonl-line') {
    // synchronous: a line is small and there are millions (async generators per line cost more than the work)
    const skips = new SkipCounter();
    const text = decodeUtf8(d.bytes, skips);
    const x = jsonLineDocument(d.format, text, d.line, { file: d.file, skipBad: d.skipBad, skips, minChars: d.minChars });
    return { doc: x ? { id: x.id, title: x.title, text: x.text, links: x.links, aliases: x.aliases } : undefined, skips: Object.entries(skips.toJSON()), redirects: [] };
  }
  if (d.kind === 'file') {
    const skips = new SkipCounter();
    const bytes = Buffer.from(d.bytes.buffer, d.bytes.byteOffset, d.bytes.byteLength);
    const one = (async function* () {
      if (bytes.length) yield bytes;
    })();
    const text = decodeText(one, skips);
    const it = d.format === 'jats' ? (await jatsReader()).readJats(text, { file: d.file, skipBad: d.skipBad, skips, minChars: d.minChars, fallbackId: d.rel }) : (await htmlReader()).readHtmlPage(text, { file: d.file, rel: d.rel, skips, minChars: d.minChars });
    const docs = [];
    for await (const x of it) docs.push(x);
    if (docs.length > 1) throw new Error(`internal: ${d.file} gave ${docs.length} documents`);
    const x = docs[0];
    return { doc: x ? { id: x.id, title: x.title, text: x.text, links: x.links, aliases: x.aliases } : undefined, skips: Object.entries(skips.toJSON()), redirects: [] };
  }
  throw new Error(`unknown deferred markup kind ${String((d as { kind: unknown }).kind)}`);
}
