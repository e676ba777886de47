// A directory of HTML pages (or a .tar/.tar.gz/.tar.xz/.tar.bz2 of one, unpacked with the system `tar` into a
// temporary directory that is removed afterwards). One page = one document, id = path relative to the root.
// Text: visible body text; <head> (except <title>), script/style/noscript/template/svg and navigation
// blocks (<nav>, role=navigation, class navheader/navfooter/navbar as in DocBook/Sphinx output) are left out.
// Links: <a href> to a path inside the corpus root (relative or root-relative to the page), with fragment and
// query removed; external URLs, links leaving the root and same-page anchors are not edges.
import { Parser } from 'htmlparser2';
import { Document, SkipCounter } from '../document.js';

export interface HtmlOptions {
  file: string;
  /** Path of this page relative to the corpus root, '/'-separated. */
  rel: string;
  skips: SkipCounter;
  minChars: number;
}

const SKIP = new Set(['script', 'style', 'noscript', 'template', 'svg', 'nav', 'iframe', 'object', 'canvas', 'select', 'button']);
const BLOCK = new Set([
  'p', 'div', 'br', 'li', 'ul', 'ol', 'dl', 'dt', 'dd', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'tr', 'table', 'pre',
  'blockquote', 'section', 'article', 'header', 'footer', 'aside', 'main', 'hr', 'figure', 'figcaption', 'caption',
  'address', 'form', 'fieldset', 'legend', 'body', 'thead', 'tbody', 'tfoot', 'center', 'details', 'summary',
]);
const CELL = new Set(['td', 'th']);
const NAV_CLASS = /(^|\s)(navheader|navfooter|navbar|navigation|breadcrumbs?|toc-nav|skip-link)(\s|$)/i;
const ROOT = 'file:///__corpus_root__/';

/** Resolves an href found on page `rel` to a corpus-relative path, or a reason it is not an internal link. */
export function resolveHref(href: string, rel: string): { target?: string; reason?: string } {
  const h = href.trim();
  if (!h || h.startsWith('#')) return { reason: 'same_page' };
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(h) || h.startsWith('//')) return { reason: 'external' };
  let u: URL;
  try {
    u = new URL(h, ROOT + rel.split('/').map(encodeURIComponent).join('/'));
  } catch {
    return { reason: 'bad_url' };
  }
  // A root-relative href ('/x.html') resolves against the site root, which for a manual is the corpus root.
  const p = h.startsWith('/') ? new URL(h.replace(/^\/+/, ''), ROOT).pathname : u.pathname;
  const rootPath = new URL(ROOT).pathname;
  if (!p.startsWith(rootPath)) return { reason: 'outside_root' };
  let target: string;
  try {
    target = decodeURIComponent(p.slice(rootPath.length));
  } catch {
    target = p.slice(rootPath.length);
  }
  if (target === '' || target.endsWith('/')) target += 'index.html';
  if (target === rel) return { reason: 'same_page' };
  return { target };
}

export async function* readHtmlPage(chunks: AsyncIterable<string>, o: HtmlOptions): AsyncGenerator<Document> {
  const lines: string[] = [];
  let buf = '';
  let title = '';
  let inTitle = false;
  let inHead = false;
  let depth = 0;
  let skipDepth = 0;
  let preDepth = 0;
  const links: string[] = [];
  const flush = () => {
    if (buf.length === 0) return;
    for (const l of buf.split('\n')) {
      const t = l.replace(/[\s\u00a0]+/g, ' ').trim();
      if (t) lines.push(t);
    }
    buf = '';
  };
  const parser = new Parser(
    {
      onopentag(name, attrs) {
        depth++;
        if (skipDepth) return;
        if (name === 'head') inHead = true;
        if (name === 'title' && !title) inTitle = true;
        const cls = attrs.class ?? '';
        if (SKIP.has(name) || attrs.role === 'navigation' || (cls && NAV_CLASS.test(cls)) || attrs.hidden !== undefined) {
          skipDepth = depth;
          return;
        }
        if (name === 'pre') preDepth++;
        if (BLOCK.has(name)) flush();
        else if (CELL.has(name)) buf += ' ';
        if (name === 'a' && attrs.href !== undefined && !inHead) {
          const r = resolveHref(attrs.href, o.rel);
          if (r.target) links.push(r.target);
          else if (r.reason !== 'same_page') o.skips.add(`link_${r.reason}`);
        }
        if (name === 'img' && attrs.alt) buf += ` ${attrs.alt} `;
      },
      ontext(t) {
        if (skipDepth) return;
        if (inTitle) title += t;
        else if (!inHead) buf += preDepth ? t : t.replace(/\n/g, ' ');
      },
      onclosetag(name) {
        if (skipDepth) {
          if (depth === skipDepth) skipDepth = 0;
          depth--;
          return;
        }
        depth--;
        if (name === 'title') inTitle = false;
        if (name === 'head') inHead = false;
        if (name === 'pre') preDepth = Math.max(0, preDepth - 1);
        if (BLOCK.has(name)) flush();
        else if (CELL.has(name)) buf += ' ';
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true, recognizeSelfClosing: true },
  );
  for await (const c of chunks) parser.write(c);
  parser.end();
  flush();
  const t = title.replace(/\s+/g, ' ').trim();
  const text = lines.join('\n');
  if (text.length < o.minChars) {
    o.skips.add('too_short');
    return;
  }
  yield { id: o.rel, title: t || undefined, text, links, source: o.file };
}

