// A synthetic MediaWiki dump of any size, for `bench prepare --synthetic-pages N`: the shared samples are
// a few hundred KB, so the scale claims (streaming, bounded memory, core scaling) need a bigger input.
//
// Deterministic from the seed. Pages carry what real articles carry and the reader must strip: an
// infobox template, <ref>{{cite …}}</ref>, a table, categories, files, comments; text is drawn from a
// Zipf-distributed pseudo-word vocabulary; links [[Title]] / [[Title|anchor]] / [[Title#Section]] pick
// their target by preferential attachment (Zipf over page rank), so in-degrees are heavy-tailed like
// Wikipedia's; about 5% of titles are redirects, and some links go through them.
import fs from 'node:fs';
import { Rng } from '../data/masking.js';

export interface SyntheticWikiOptions {
  pages: number;
  seed?: number;
  /** mean words of running text per article (default 600) */
  words?: number;
  /** mean links per article (default 25) */
  links?: number;
}

const ONSETS = ['b', 'c', 'd', 'f', 'g', 'h', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'br', 'st', 'tr', 'ch', 'sh', 'pl', 'gr'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ou', 'ea'];
const CODAS = ['', '', 'n', 'r', 's', 'l', 't', 'nd', 'st', 'ng'];

function pseudoWord(rng: Rng): string {
  const syl = 1 + rng.int(3);
  let w = '';
  for (let k = 0; k < syl; k++) w += ONSETS[rng.int(ONSETS.length)] + VOWELS[rng.int(VOWELS.length)] + CODAS[rng.int(CODAS.length)];
  return w;
}

/** Draws ranks 0..n-1 with P(k) ∝ 1/(k+1)^s, by inverting a precomputed CDF. */
class Zipf {
  private cdf: Float64Array;
  constructor(n: number, s: number) {
    this.cdf = new Float64Array(n);
    let acc = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = acc += 1 / Math.pow(k + 1, s);
    for (let k = 0; k < n; k++) this.cdf[k] /= acc;
  }
  draw(rng: Rng): number {
    const u = rng.next();
    let lo = 0, hi = this.cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Writes the dump to `file` (uncompressed XML); returns the number of bytes, articles and redirects. */
export function writeSyntheticWiki(file: string, o: SyntheticWikiOptions): { bytes: number; articles: number; redirects: number } {
  const seed = o.seed ?? 7;
  const meanWords = o.words ?? 600;
  const meanLinks = o.links ?? 25;
  const rng = new Rng(seed, 0, 0);
  const vocab: string[] = [];
  const seenW = new Set<string>();
  while (vocab.length < 30000) {
    const w = pseudoWord(rng);
    if (!seenW.has(w)) {
      seenW.add(w);
      vocab.push(w);
    }
  }
  const words = new Zipf(vocab.length, 1.05);
  const targets = new Zipf(o.pages, 0.9);
  const title = (k: number): string => `${vocab[(k * 7919) % vocab.length]} ${vocab[(k * 104729 + 13) % vocab.length]} ${k}`;
  const cap = (w: string): string => w[0].toUpperCase() + w.slice(1);
  const fd = fs.openSync(file, 'w');
  let bytes = 0;
  const out: string[] = [];
  const flush = (force: boolean): void => {
    if (!force && out.length < 512) return;
    const s = out.join('');
    out.length = 0;
    bytes += fs.writeSync(fd, s);
  };
  out.push('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n<siteinfo><sitename>Synthetic</sitename><namespaces><namespace key="0" case="first-letter" /><namespace key="14" case="first-letter">Category</namespace><namespace key="6" case="first-letter">File</namespace></namespaces></siteinfo>\n');
  let articles = 0;
  let redirects = 0;
  for (let p = 0; p < o.pages; p++) {
    const r = new Rng(seed, p + 1, 1);
    const t = title(p);
    let text: string;
    if (r.next() < 0.05 && p > 0) {
      // a redirect to a popular page
      text = `#REDIRECT [[${title(targets.draw(r))}]]`;
      redirects++;
    } else {
      articles++;
      const parts: string[] = [];
      parts.push(`{{Infobox thing\n| name = ${t}\n| founded = ${1800 + r.int(220)}\n| image = x.png\n}}\n`);
      parts.push(`'''${t}''' is a ${vocab[words.draw(r)]} of the ${vocab[words.draw(r)]}.<!-- hidden comment -->\n`);
      const nWords = Math.max(20, Math.round(meanWords * (0.3 + 1.4 * r.next())));
      const linkProb = meanLinks / nWords;
      let sentence = 0;
      for (let k = 0; k < nWords; k++) {
        if (r.next() < linkProb) {
          const tgt = targets.draw(r);
          const form = r.int(4);
          if (form === 0) parts.push(`[[${title(tgt)}]]`);
          else if (form === 1) parts.push(`[[${title(tgt)}|${vocab[words.draw(r)]}]]`);
          else if (form === 2) parts.push(`[[${title(tgt)}#History|${vocab[words.draw(r)]}]]`);
          else parts.push(`[[${cap(title(tgt).replace(/ /g, '_'))}]]`);
        } else {
          const w = vocab[words.draw(r)];
          parts.push(sentence === 0 ? cap(w) : w);
        }
        sentence++;
        if (sentence > 8 && r.next() < 0.1) {
          parts.push(r.next() < 0.2 ? `.<ref>{{cite web|url=http://example.org/${p}/${k}|title=${vocab[words.draw(r)]}}}</ref>` : '.');
          parts.push(r.next() < 0.15 ? '\n\n' : ' ');
          sentence = 0;
        } else parts.push(r.next() < 0.05 ? ', ' : ' ');
      }
      parts.push('.\n\n{| class="wikitable"\n|-\n! a !! b\n|-\n| 1 || 2\n|}\n');
      parts.push(`[[File:Example ${p}.jpg|thumb|a caption]]\n[[Category:${cap(vocab[words.draw(r)])}]]\n`);
      text = parts.join('');
    }
    out.push(`<page>\n<title>${xmlEscape(t)}</title>\n<ns>0</ns>\n<id>${p + 1}</id>\n<revision><id>${p + 1000000}</id><text xml:space="preserve">${xmlEscape(text)}</text></revision>\n</page>\n`);
    flush(false);
  }
  out.push('</mediawiki>\n');
  flush(true);
  fs.closeSync(fd);
  return { bytes, articles, redirects };
}
