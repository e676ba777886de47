// PMC JATS/NLM articles (.nxml). One file = one article.
// Text: article title, then abstract paragraphs, then body section titles and paragraphs (one per line).
// Left out on purpose: tables, figures and their captions, formulas (MathML/TeX), supplementary material,
// section labels, footnotes/back matter, sub-articles (e.g. peer-review responses): they are not running prose.
// Links: one per ref-list entry that carries an identifier, preferring pmid > doi > pmcid (one citation = one
// link, so out-of-corpus citations are counted as dangling exactly once).
import { Document, SkipCounter } from '../document.js';
import { runSax } from './xml.js';

export interface JatsOptions {
  file: string;
  skipBad: boolean;
  skips: SkipCounter;
  minChars: number;
  /** Fallback id when the article has no pmid/pmcid/doi (the path relative to the corpus root). */
  fallbackId: string;
}

const SKIP = new Set([
  'table-wrap', 'table-wrap-group', 'fig', 'fig-group', 'supplementary-material', 'disp-formula', 'inline-formula',
  'mml:math', 'math', 'tex-math', 'alternatives', 'label', 'fn-group', 'graphic', 'media', 'table', 'sub-article',
  'response', 'object-id', 'disp-formula-group', 'chem-struct-wrap',
]);
const BLOCK = new Set(['p', 'title', 'sec', 'list-item', 'def-item', 'def', 'term', 'boxed-text', 'disp-quote', 'abstract', 'body', 'article-title', 'list', 'statement']);

export function normDoi(d: string): string {
  return d.trim().replace(/^(https?:\/\/(dx\.)?doi\.org\/|doi:\s*)/i, '').toLowerCase();
}

export function normPmc(p: string): string {
  const t = p.trim().toUpperCase();
  return t.startsWith('PMC') ? t : `PMC${t}`;
}

/** Canonical link/alias key for an article identifier, or undefined for types we do not link by. */
export function idKey(type: string, value: string): string | undefined {
  const v = value.trim();
  if (!v) return undefined;
  switch (type.toLowerCase()) {
    case 'pmid':
    case 'pubmed':
      return /^\d+$/.test(v) ? `pmid:${v}` : undefined;
    case 'pmc':
    case 'pmcid':
      return /^(PMC)?\d+$/i.test(v) ? `pmc:${normPmc(v)}` : undefined;
    case 'doi':
      return normDoi(v).includes('/') ? `doi:${normDoi(v)}` : undefined;
    default:
      return undefined;
  }
}

export async function* readJats(chunks: AsyncIterable<string>, o: JatsOptions): AsyncGenerator<Document> {
  const ids: Record<string, string> = {};
  let title = '';
  const abstract: string[] = [];
  const body: string[] = [];
  const links: string[] = [];
  let refIds: Record<string, string> | undefined;
  let buf = '';
  let region: 'abstract' | 'body' | undefined;
  let inMeta = false;
  let metaDone = false;
  let inTitleGroup = false;
  let inTitle = false;
  let idType: string | undefined;
  let idText = '';
  let pubIdType: string | undefined;
  let pubIdText = '';
  let skipDepth = 0; // depth of the element being skipped, 0 = none
  let regionDepth = 0;
  let subArticles = 0;
  let bad = false;
  const flush = () => {
    // Brackets left empty by dropped citation markers: "[, ]", "(–)".
    const line = buf.replace(/\s*[[(][\s,;\u2013\u2014-]*[\])]/g, '').replace(/\s+([,.;:])/g, '$1').replace(/\s+/g, ' ').trim();
    buf = '';
    if (!line) return;
    if (region === 'abstract') abstract.push(line);
    else if (region === 'body') body.push(line);
  };
  const out = runSax<never>(chunks, o, () => ({
    onopen(name, attrs, depth) {
      if (skipDepth) return;
      if (name === 'sub-article' || name === 'response') subArticles++;
      // Citation markers ("[12]") are noise in prose; the ref-list gives the links.
      if (name === 'xref' && region && (attrs['ref-type'] ?? '') === 'bibr') {
        skipDepth = depth;
        return;
      }
      if (SKIP.has(name) && (region || name === 'sub-article' || name === 'response')) {
        skipDepth = depth;
        return;
      }
      if (name === 'article-meta' && !metaDone) inMeta = true;
      else if (inMeta && name === 'article-id') {
        idType = attrs['pub-id-type'] ?? '';
        idText = '';
      } else if (inMeta && name === 'title-group') inTitleGroup = true;
      else if (inTitleGroup && name === 'article-title' && !title) inTitle = true;
      else if (inMeta && name === 'abstract' && !region) {
        const t = (attrs['abstract-type'] ?? '').toLowerCase();
        // Graphical/teaser abstracts duplicate or stub the main one.
        if (t === 'graphical' || t === 'teaser' || t === 'toc') {
          skipDepth = depth;
          return;
        }
        region = 'abstract';
        regionDepth = depth;
      } else if (name === 'body' && !region) {
        region = 'body';
        regionDepth = depth;
      } else if (name === 'ref') refIds = {};
      else if (refIds && name === 'pub-id') {
        pubIdType = attrs['pub-id-type'] ?? '';
        pubIdText = '';
      }
      if (region && BLOCK.has(name)) flush();
    },
    ontext(t) {
      if (skipDepth) return;
      if (idType !== undefined) idText += t;
      if (pubIdType !== undefined) pubIdText += t;
      if (inTitle) title += t;
      else if (region) buf += t;
    },
    onclose(name, depth) {
      if (skipDepth) {
        if (depth === skipDepth) {
          skipDepth = 0;
          // Keep words on either side of a dropped inline element apart.
          if (region) buf += ' ';
        }
        return;
      }
      if (region && BLOCK.has(name)) flush();
      if (region && depth === regionDepth) region = undefined;
      if (name === 'article-meta' && inMeta) {
        inMeta = false;
        metaDone = true;
      } else if (name === 'article-id' && idType !== undefined) {
        const k = idKey(idType, idText);
        // Keyed by scheme ('pmid' | 'pmc' | 'doi'); the first id of each scheme wins.
        const scheme = k?.slice(0, k.indexOf(':'));
        if (k && scheme && !ids[scheme]) ids[scheme] = k;
        idType = undefined;
      } else if (name === 'title-group') inTitleGroup = false;
      else if (name === 'article-title' && inTitle) inTitle = false;
      else if (name === 'pub-id' && pubIdType !== undefined && refIds) {
        const k = idKey(pubIdType, pubIdText);
        if (k) refIds[k.slice(0, k.indexOf(':'))] ??= k;
        pubIdType = undefined;
      } else if (name === 'ref' && refIds) {
        const l = refIds.pmid ?? refIds.doi ?? refIds.pmc;
        if (l) links.push(l);
        else o.skips.add('citation_without_id');
        refIds = undefined;
      }
    },
    onrecover() {
      bad = true;
    },
  }));
  for await (const _ of out) {
    /* runSax only surfaces errors here; the article is assembled below */
  }
  if (bad) {
    o.skips.add('article_malformed');
    return;
  }
  if (subArticles) o.skips.add('jats_sub_article', subArticles);
  const cleanTitle = title.replace(/\s+/g, ' ').trim();
  const text = [cleanTitle, ...abstract, ...body].filter((l) => l).join('\n');
  if (text.length < o.minChars) {
    o.skips.add('too_short');
    return;
  }
  const aliases = [ids.pmid, ids.pmc, ids.doi].filter((x): x is string => !!x);
  let id = aliases[0];
  if (!id) {
    o.skips.add('article_without_id');
    id = o.fallbackId;
  }
  yield {
    id,
    title: cleanTitle || undefined,
    text,
    links,
    aliases: aliases.length ? aliases : undefined,
    source: o.file,
  };
}
