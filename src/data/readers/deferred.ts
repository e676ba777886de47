// Markup conversion that a reader left to the document's consumer (ReadOptions.deferMarkup), so that
// prepare runs it in worker threads: it is most of the cost of reading a MediaWiki dump.
import type { DeferredMarkup } from '../document.js';
import { wikiToText, type NamespaceMap } from './wikitext.js';

export interface Converted {
  text: string;
  links: string[];
  /** what the reader would have counted in its SkipCounter */
  skips: [string, number][];
  /** set when the document is dropped (e.g. 'too_short'), as the reader would have dropped it */
  dropped?: string;
}

// One Map per namespace list: a dump's pages share the list (also across a worker message, since
// structured clone keeps shared references shared).
const nsMaps = new WeakMap<[string, number][], NamespaceMap>();

export function convertDeferred(text: string, d: DeferredMarkup): Converted {
  if (d.kind !== 'wikitext') throw new Error(`unknown deferred markup kind ${String(d.kind)}`);
  let ns = nsMaps.get(d.namespaces);
  if (!ns) nsMaps.set(d.namespaces, (ns = new Map(d.namespaces)));
  const w = wikiToText(text, ns);
  const skips: [string, number][] = w.otherLinks ? [['link_not_article', w.otherLinks]] : [];
  if (w.text.length < d.minChars) return { text: '', links: [], skips: [...skips, ['too_short', 1]], dropped: 'too_short' };
  return { text: w.text, links: w.links, skips };
}
