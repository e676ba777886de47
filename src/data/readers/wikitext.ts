// Wikitext → plain text plus article links. Not a MediaWiki parser: templates are dropped rather than
// expanded (as WikiExtractor does), tables/refs/files/categories are removed, and only links that survive
// into the visible prose become edges (links inside tables, templates, refs and file captions do not).
import { decodeEntities } from './entities.js';
import { normalizeTitle } from '../document.js';

/** Namespace names (lower-cased, spaces) → namespace number. Built from defaults plus the dump's siteinfo. */
export type NamespaceMap = Map<string, number>;

const DEFAULT_NAMESPACES: [string, number][] = [
  ['media', -2], ['special', -1], ['talk', 1], ['user', 2], ['user talk', 3], ['project', 4], ['wikipedia', 4],
  ['wp', 4], ['project talk', 5], ['wikipedia talk', 5], ['wt', 5], ['file', 6], ['image', 6], ['file talk', 7],
  ['image talk', 7], ['mediawiki', 8], ['mediawiki talk', 9], ['template', 10], ['template talk', 11],
  ['help', 12], ['help talk', 13], ['category', 14], ['category talk', 15], ['portal', 100], ['portal talk', 101],
  ['book', 108], ['book talk', 109], ['draft', 118], ['draft talk', 119], ['timedtext', 710],
  ['timedtext talk', 711], ['module', 828], ['module talk', 829], ['gadget', 2300], ['gadget definition', 2302],
];

export function defaultNamespaces(): NamespaceMap {
  return new Map(DEFAULT_NAMESPACES);
}

// Sister projects and common interwiki prefixes; language prefixes are recognised by shape (see isInterwiki).
const INTERWIKI = new Set([
  'w', 'wikt', 'wiktionary', 'commons', 'c', 'meta', 'm', 's', 'wikisource', 'q', 'wikiquote', 'n', 'wikinews',
  'b', 'wikibooks', 'v', 'wikiversity', 'voy', 'wikivoyage', 'species', 'wikispecies', 'd', 'wikidata', 'mw',
  'mediawikiwiki', 'foundation', 'wmf', 'phab', 'phabricator', 'outreach', 'incubator', 'metawikimedia', 'wikimedia',
  'doi', 'arxiv', 'pmid', 'rfc', 'iso', 'imdbname', 'imdbtitle', 'google', 'wikia', 'fandom',
]);

/** 'lang': interlanguage link (sidebar only, hidden in text); 'project': inline interwiki link; undefined: neither. */
function interwikiKind(prefixAsWritten: string): 'lang' | 'project' | undefined {
  const p = prefixAsWritten.trim();
  if (INTERWIKI.has(p.toLowerCase())) return 'project';
  // Interlanguage links are written in lower case: de:, zh-min-nan:, be-x-old:, simple:.
  return /^[a-z]{2,3}(-[a-z0-9]{1,8})*$/.test(p) || p === 'simple' ? 'lang' : undefined;
}

export interface WikiText {
  text: string;
  /** Article-namespace link targets (fragment stripped, not yet normalised), in order of appearance. */
  links: string[];
  /** Links that are not article edges: other namespaces, interwiki/interlanguage, malformed targets. */
  otherLinks: number;
}

// Tags whose content is not prose.
const DROP_TAGS = 'ref|math|chem|ce|gallery|timeline|score|imagemap|syntaxhighlight|source|graph|mapframe|maplink|templatedata|templatestyles|references|hiero|inputbox|categorytree|includeonly';
const DROP_RE = new RegExp(`<(${DROP_TAGS})\\b[^>]*?(?:/>|>[\\s\\S]*?</\\1\\s*>)`, 'gi');
const LONE_REF_RE = /<(ref|references)\b[^>]*\/?>/gi;
const NOWIKI_RE = /<(nowiki|pre)\b[^>]*>([\s\S]*?)<\/\1\s*>|<nowiki\s*\/>/gi;
const TAG_RE = /<\/?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?\/?>/g;
const EXTLINK_RE = /\[(?:https?:|ftp:|ftps:|mailto:|news:|irc:|\/\/)[^\s\]]*(?:[ \t]+([^\]\n]*))?\]/gi;
const PUA_BASE = 0xe000;
const PROTECT = '[]{}|\'=<>:*#;';

/** Hides markup characters inside <nowiki>/<pre> from the later passes (restored at the end). */
function protect(s: string): string {
  let out = '';
  for (const ch of s) {
    const k = PROTECT.indexOf(ch);
    out += k === -1 ? ch : String.fromCharCode(PUA_BASE + k);
  }
  return out;
}

function unprotect(s: string): string {
  return s.replace(/[\ue000-\ue00c]/g, (c) => PROTECT[c.charCodeAt(0) - PUA_BASE]);
}

/** Removes balanced `{{...}}` / `{{{...}}}` (nested). Brace runs are counted char by char so triple braces balance. */
export function removeTemplates(s: string): string {
  if (s.indexOf('{{') === -1) return s;
  let out = '';
  let i = 0;
  const n = s.length;
  while (i < n) {
    const start = s.indexOf('{{', i);
    if (start === -1) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, start);
    let depth = 0;
    let j = start;
    for (; j < n; j++) {
      const c = s.charCodeAt(j);
      if (c === 123 /* { */) depth++;
      else if (c === 125 /* } */) {
        depth--;
        if (depth === 0) break;
      }
    }
    if (j >= n) {
      // Unbalanced: MediaWiki would print the braces literally; drop just the opener and go on.
      i = start + 2;
      continue;
    }
    i = j + 1;
  }
  return out;
}

/** Removes `{| ... |}` tables (nested); both markers must start a line (after optional indentation). */
export function removeTables(s: string): string {
  if (s.indexOf('{|') === -1) return s;
  const lines = s.split('\n');
  const out: string[] = [];
  let depth = 0;
  for (const line of lines) {
    if (depth === 0 && line.indexOf('{|') === -1) {
      out.push(line);
      continue;
    }
    const t = line.trimStart().replace(/^:+\s*/, '');
    if (t.startsWith('{|')) {
      depth++;
      continue;
    }
    if (depth > 0) {
      if (t.startsWith('|}')) depth--;
      continue;
    }
    out.push(line);
  }
  return out.join('\n');
}

/** Index of the `]]` closing the `[[` at `start`, counting nested `[[`; -1 if unbalanced. */
function matchLink(s: string, start: number): number {
  let depth = 0;
  let i = start;
  const n = s.length;
  while (i < n - 1) {
    const c = s.charCodeAt(i);
    if (c === 91 && s.charCodeAt(i + 1) === 91) {
      depth++;
      i += 2;
    } else if (c === 93 && s.charCodeAt(i + 1) === 93) {
      depth--;
      if (depth === 0) return i;
      i += 2;
    } else i++;
  }
  return -1;
}

function decodeTarget(t: string): string {
  let s = decodeEntities(t);
  if (s.indexOf('%') !== -1) {
    try {
      s = decodeURIComponent(s);
    } catch {
      /* a literal '%' in a title is legal */
    }
  }
  return s;
}

/** `[[Foo (bar)|]]` pipe trick: drop namespace prefix and a trailing parenthetical or comma part. */
function pipeTrick(target: string): string {
  let t = target.replace(/^[^:]*:/, '');
  t = t.replace(/\s*\([^()]*\)\s*$/, '');
  if (t === target.replace(/^[^:]*:/, '')) t = t.replace(/,.*$/, '');
  return t.trim();
}

interface LinkCtx {
  ns: NamespaceMap;
  links: string[];
  other: number;
}

function replaceLinks(s: string, ctx: LinkCtx): string {
  if (s.indexOf('[[') === -1) return s;
  let out = '';
  let i = 0;
  while (i < s.length) {
    const start = s.indexOf('[[', i);
    if (start === -1) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, start);
    const end = matchLink(s, start);
    if (end === -1) {
      // Unclosed: drop the brackets, keep the text.
      i = start + 2;
      continue;
    }
    out += renderLink(s.slice(start + 2, end), ctx);
    i = end + 2;
  }
  return out;
}

function renderLink(inner: string, ctx: LinkCtx): string {
  const bar = inner.indexOf('|');
  const rawTarget = bar === -1 ? inner : inner.slice(0, bar);
  const label = bar === -1 ? undefined : inner.slice(bar + 1);
  let target = decodeTarget(rawTarget).trim();
  const leadingColon = target.startsWith(':');
  if (leadingColon) target = target.slice(1).trim();
  const colon = target.indexOf(':');
  if (colon > 0) {
    const prefix = target.slice(0, colon);
    const nsKey = prefix.replace(/_/g, ' ').trim().toLowerCase();
    const nsNum = ctx.ns.get(nsKey);
    if (nsNum !== undefined && nsNum !== 0) {
      ctx.other++;
      // File/Media embeds and category tags vanish unless escaped with a leading colon.
      if (!leadingColon && (nsNum === 6 || nsNum === -2 || nsNum === 14)) return '';
      return label === undefined ? target.replace(/_/g, ' ') : label === '' ? pipeTrick(target) : replaceLinks(label, ctx);
    }
    const iw = nsNum === undefined ? interwikiKind(prefix) : undefined;
    if (iw) {
      ctx.other++;
      if (iw === 'lang' && !leadingColon) return ''; // interlanguage link: sidebar only
      return label === undefined ? target.slice(colon + 1) : replaceLinks(label, ctx);
    }
  }
  const hash = target.indexOf('#');
  const page = (hash === -1 ? target : target.slice(0, hash)).trim();
  if (page.length > 0 && !/[<>[\]{}|\ufffd]/.test(page)) ctx.links.push(page);
  else if (page.length > 0) ctx.other++;
  if (label === undefined) return target.replace(/_/g, ' ');
  if (label === '') return pipeTrick(target);
  // Nested links in a label are invalid wikitext but occur; render them too.
  return replaceLinks(label, ctx);
}

const HEADING_RE = /^(={1,6})\s*(.*?)\s*\1\s*$/;

/** Converts one page of wikitext to plain prose (one paragraph/list item/heading per line) and its links. */
export function wikiToText(src: string, ns: NamespaceMap): WikiText {
  let s = src.replace(/<!--[\s\S]*?(?:-->|$)/g, '');
  s = s.replace(NOWIKI_RE, (_m, _tag, body: string | undefined) => (body === undefined ? '' : protect(body)));
  s = s.replace(DROP_RE, '');
  s = s.replace(LONE_REF_RE, '');
  s = removeTemplates(s);
  s = removeTables(s);
  const ctx: LinkCtx = { ns, links: [], other: 0 };
  s = replaceLinks(s, ctx);
  s = s.replace(EXTLINK_RE, (_m, label: string | undefined) => label ?? '');
  s = s.replace(/<br\s*\/?>/gi, ' ');
  s = s.replace(TAG_RE, '');
  s = s.replace(/__[A-Z]+__/g, '');
  const lines: string[] = [];
  for (let line of s.split('\n')) {
    const h = HEADING_RE.exec(line);
    if (h) line = h[2];
    else if (/^-{4,}/.test(line)) line = line.replace(/^-{4,}/, '');
    line = line.replace(/^[*#:;]+\s*/, '');
    // '''bold''' / ''italic'' / '''''both'''''; four quotes are an apostrophe then bold, and beyond five the
    // extra quotes are literal.
    line = line.replace(/'{2,}/g, (m) => (m.length === 4 ? "'" : m.length > 5 ? "'".repeat(m.length - 5) : ''));
    line = decodeEntities(line);
    line = unprotect(line);
    line = line.replace(/[\s\u00a0]+/g, ' ').trim();
    // Leftovers of removed inline content, e.g. "( )" or " ," after a dropped template.
    line = line.replace(/\(\s*[,;]?\s*\)/g, '').replace(/\s+([,.;:!?])/g, '$1').replace(/\s{2,}/g, ' ').trim();
    if (line.length > 0 && !/^[|!]/.test(line)) lines.push(line);
  }
  return { text: lines.join('\n'), links: ctx.links, otherLinks: ctx.other };
}

/** Redirect target of a page whose text is `#REDIRECT [[Target]]` (English or a few localised keywords). */
export function redirectTarget(text: string): string | undefined {
  // Cheap test first: this runs on every page.
  let i = 0;
  while (i < text.length && i < 64 && /\s/.test(text[i])) i++;
  if (text[i] !== '#') return undefined;
  const m = /^\s*#\s*(REDIRECT|WEITERLEITUNG|REDIRECTION|REDIRECCIÓN|RINVIA|RIMANDO|DOORVERWIJZING|ПРЕНАСОЧВАНЕ|ПЕРЕНАПРАВЛЕНИЕ|ПЕРЕНАПРАВЛЕННЯ|PRZEKIERUJ|重定向|転送|リダイレクト)\s*:?\s*\[\[([^\]|]+)/iu.exec(text);
  if (!m) return undefined;
  const t = decodeTarget(m[2]).trim().replace(/^:/, '');
  const hash = t.indexOf('#');
  return hash === -1 ? t : t.slice(0, hash);
}

export { normalizeTitle };
