// PubMed/MEDLINE XML (PubmedArticleSet, e.g. the pubmed baseline pubmedNNnNNNN.xml.gz).
// One PubmedArticle = one document: ArticleTitle + AbstractText parts (structured abstracts joined, each part
// on its own line as "Label: text"). id = pmid:N; aliases also pmc:/doi: from PubmedData/ArticleIdList.
// Links: CommentsCorrections[RefType=Cites]/PMID and ReferenceList/Reference/ArticleIdList/ArticleId[IdType=pubmed],
// de-duplicated per article because the same citation is often listed in both places.
import { Document, SkipCounter } from '../document.js';
import { runSax } from './xml.js';
import { idKey } from './jats.js';

export interface MedlineOptions {
  file: string;
  skipBad: boolean;
  skips: SkipCounter;
  minChars: number;
}

interface Art {
  pmid: string;
  title: string;
  abs: string[];
  aliases: string[];
  links: Set<string>;
  bad: boolean;
}

export async function* readMedline(chunks: AsyncIterable<string>, o: MedlineOptions): AsyncGenerator<Document> {
  yield* runSax<Document>(chunks, o, (emit) => {
    let a: Art | undefined;
    const stack: string[] = [];
    let cap: 'pmid' | 'title' | 'abs' | 'cites' | 'artid' | 'refid' | undefined;
    let capText: string | null = null; // null: no capture in progress
    let label = '';
    let citesRef = false;
    let artIdType = '';
    const parent0 = () => stack[stack.length - 2];
    return {
      onopen(name, attrs) {
        stack.push(name);
        if (name === 'PubmedArticle') {
          a = { pmid: '', title: '', abs: [], aliases: [], links: new Set(), bad: false };
          return;
        }
        if (name === 'PubmedBookArticle') o.skips.add('book_article');
        // Update files list PMIDs to delete from earlier files; a reader of one file cannot apply them.
        if (name === 'PMID' && parent0() === 'DeleteCitation') o.skips.add('delete_citation_ignored');
        if (!a) return;
        const parent = stack[stack.length - 2];
        if (name === 'PMID' && parent === 'MedlineCitation' && !a.pmid) cap = 'pmid';
        else if (name === 'ArticleTitle' && parent === 'Article') cap = 'title';
        else if (name === 'AbstractText' && parent === 'Abstract') {
          cap = 'abs';
          label = attrs.Label ?? '';
        } else if (name === 'CommentsCorrections') citesRef = attrs.RefType === 'Cites';
        else if (name === 'PMID' && parent === 'CommentsCorrections' && citesRef) cap = 'cites';
        else if (name === 'ArticleId') {
          artIdType = attrs.IdType ?? '';
          const inRef = stack.includes('Reference');
          if (inRef) cap = artIdType === 'pubmed' ? 'refid' : undefined;
          else if (parent === 'ArticleIdList' && stack[stack.length - 3] === 'PubmedData') cap = 'artid';
        }
        if (cap && capText === null) capText = '';
      },
      ontext(t) {
        if (cap && capText !== null) capText += t;
      },
      onclose(name) {
        stack.pop();
        if (!a) return;
        if (cap && (name === 'PMID' || name === 'ArticleTitle' || name === 'AbstractText' || name === 'ArticleId')) {
          const v = (capText ?? '').replace(/\s+/g, ' ').trim();
          capText = null;
          if (cap === 'pmid') a.pmid = v;
          else if (cap === 'title') a.title = v;
          else if (cap === 'abs') {
            if (v) a.abs.push(label ? `${label.charAt(0)}${label.slice(1).toLowerCase()}: ${v}` : v);
          } else if (cap === 'cites' || cap === 'refid') {
            const k = idKey('pmid', v);
            if (k) a.links.add(k);
            else o.skips.add('citation_bad_pmid');
          } else if (cap === 'artid') {
            const k = idKey(artIdType, v);
            if (k && !a.aliases.includes(k)) a.aliases.push(k);
          }
          cap = undefined;
          return;
        }
        if (name !== 'PubmedArticle') return;
        const art = a;
        a = undefined;
        if (art.bad) return;
        if (!/^\d+$/.test(art.pmid)) {
          o.skips.add('article_without_pmid');
          return;
        }
        const id = `pmid:${art.pmid}`;
        const text = [art.title, ...art.abs].filter((x) => x).join('\n');
        if (text.length < o.minChars) {
          o.skips.add(art.abs.length ? 'too_short' : 'no_abstract');
          return;
        }
        const aliases = [id, ...art.aliases.filter((x) => x !== id)];
        emit({ id, title: art.title || undefined, text, links: [...art.links], aliases, source: o.file });
      },
      onrecover() {
        if (a) {
          a.bad = true;
          o.skips.add('article_malformed');
        }
      },
    };
  });
}
