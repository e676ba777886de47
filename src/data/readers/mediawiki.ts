// MediaWiki XML export dumps (pages-articles.xml[.bz2]), UTF-8 or UTF-16 with a BOM.
// Namespace 0 only; redirect pages emit no document but are recorded in `redirects` (normalised from → to)
// so the graph can resolve links through them regardless of where in the dump they appear.
import { Document, SkipCounter, normalizeTitle } from '../document.js';
import { runSax, splitXmlRecords } from './xml.js';
import { defaultNamespaces, redirectTarget, wikiToText, NamespaceMap } from './wikitext.js';

export interface MediaWikiOptions {
  file: string;
  skipBad: boolean;
  skips: SkipCounter;
  minChars: number;
  redirects?: Map<string, string>;
  /** emit raw wikitext with Document.deferred set (see ReadOptions.deferMarkup) */
  defer?: boolean;
  /** the namespace map to fill from siteinfo (and use); default a fresh one with the standard names */
  nsMap?: NamespaceMap;
}

interface Page {
  title: string;
  ns: string;
  id: string;
  redirect?: string;
  text: string[];
  bad: boolean;
}

export async function* readMediaWiki(chunks: AsyncIterable<string>, o: MediaWikiOptions): AsyncGenerator<Document> {
  const nsMap: NamespaceMap = o.nsMap ?? defaultNamespaces();
  let nsList: [string, number][] | undefined;
  yield* runSax<Document>(chunks, o, (emit) => {
    let page: Page | undefined;
    let field: 'title' | 'ns' | 'id' | 'text' | 'nsname' | undefined;
    let nsKey: number | undefined;
    let nsName = '';
    let pageDepth = 0;
    return {
      onopen(name, attrs, depth) {
        if (name === 'page') {
          page = { title: '', ns: '', id: '', text: [], bad: false };
          pageDepth = depth;
          return;
        }
        if (name === 'namespace' && !page) {
          nsKey = Number(attrs.key);
          nsName = '';
          field = 'nsname';
          return;
        }
        if (!page) return;
        if (depth === pageDepth + 1 && (name === 'title' || name === 'ns' || name === 'id')) field = name;
        else if (depth === pageDepth + 1 && name === 'redirect') page.redirect = attrs.title ?? '';
        else if (name === 'text' && depth === pageDepth + 2) {
          page.text = []; // later revisions replace earlier ones
          field = 'text';
        }
      },
      ontext(t) {
        if (!field) return;
        if (field === 'nsname') nsName += t;
        else if (page) {
          if (field === 'text') page.text.push(t);
          else page[field] += t;
        }
      },
      onclose(name) {
        if (name === 'namespace' && field === 'nsname') {
          const k = nsName.replace(/_/g, ' ').trim().toLowerCase();
          if (k && nsKey !== undefined && Number.isFinite(nsKey)) nsMap.set(k, nsKey);
          field = undefined;
          return;
        }
        if (name !== 'page') {
          if (field && (name === field || (field === 'text' && name === 'text'))) field = undefined;
          return;
        }
        const p = page;
        page = undefined;
        field = undefined;
        if (!p || p.bad) return;
        const ns = p.ns.trim();
        if (ns !== '0' && ns !== '') {
          o.skips.add(`namespace_${ns}`);
          return;
        }
        const title = normalizeTitle(p.title);
        // Dumps before 0.5 lack <ns>: infer it from a namespace prefix.
        if (ns === '') {
          const c = title.indexOf(':');
          const k = c > 0 ? nsMap.get(title.slice(0, c).toLowerCase()) : undefined;
          if (k !== undefined && k !== 0) {
            o.skips.add(`namespace_${k}`);
            return;
          }
        }
        if (!title) {
          o.skips.add('missing_title');
          return;
        }
        const text = p.text.join('');
        const target = p.redirect !== undefined && p.redirect !== '' ? p.redirect : redirectTarget(text);
        if (target !== undefined) {
          const t = normalizeTitle(target.split('#')[0]);
          if (t && o.redirects) o.redirects.set(title, t);
          o.skips.add('redirect');
          return;
        }
        const pageId = p.id.trim();
        const aliases = pageId ? [`pageid:${pageId}`] : undefined;
        if (o.defer) {
          // siteinfo (all namespaces) precedes the first page, so the map is complete here
          if (!nsList || nsList.length !== nsMap.size) nsList = [...nsMap];
          emit({ id: title, title, text, links: [], aliases, source: o.file, deferred: { kind: 'wikitext', namespaces: nsList, minChars: o.minChars } });
          return;
        }
        const w = wikiToText(text, nsMap);
        if (w.otherLinks) o.skips.add('link_not_article', w.otherLinks);
        if (w.text.length < o.minChars) {
          o.skips.add('too_short');
          return;
        }
        emit({ id: title, title, text: w.text, links: w.links, aliases, source: o.file });
      },
      onrecover() {
        if (page) {
          page.bad = true;
          o.skips.add('page_malformed');
        }
      },
    };
  });
}

/**
 * The reading side of a UTF-8 dump for prepare (ReadOptions.deferMarkup): splits the byte stream into
 * `<page>…</page>` records without parsing or decoding them (inside <text>, '<' is always escaped, so a
 * literal </page> closes the page). Each record becomes a Document with `deferred.kind = 'mediawiki-page'`
 * and empty id and text; `convertDeferred` (in a worker) parses, converts and filters it exactly as
 * readMediaWiki would. The header before the first page is parsed here, for the namespace names.
 */
export async function* splitMediaWikiPages(bytes: AsyncIterable<Buffer>, o: MediaWikiOptions): AsyncGenerator<Document> {
  let namespaces: [string, number][] = [...defaultNamespaces()];
  const parseHeader = async (header: string): Promise<void> => {
    const nsMap = defaultNamespaces();
    const one = (async function* () {
      yield header + '</mediawiki>';
    })();
    for await (const _ of readMediaWiki(one, { ...o, nsMap, defer: false, skipBad: true, skips: new SkipCounter() })) {
      /* the header has no pages */
    }
    namespaces = [...nsMap];
  };
  for await (const r of splitXmlRecords(bytes, ['page'], o, parseHeader))
    yield {
      id: '',
      text: '',
      links: [],
      source: o.file,
      deferred: { kind: 'mediawiki-page', bytes: r.bytes, offset: r.offset, line: r.line, file: o.file, namespaces, minChars: o.minChars, skipBad: o.skipBad },
    };
}
