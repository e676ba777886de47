// Shared document model for every corpus reader, plus skip accounting and input errors.

/** One unit of text with its outgoing links, as produced by a reader. */
export interface Document {
  /** Unique within a corpus. MediaWiki: normalised title; JATS/MEDLINE: `pmid:N` (else `pmc:PMCN`, else `doi:...`);
   *  HTML: path relative to the corpus root; WordNet: `wn:<pos><offset>`. */
  id: string;
  title?: string;
  /** Plain text; paragraphs (or sentences, for line-oriented corpora) separated by '\n'. */
  text: string;
  /** Raw link targets as written by the source (an id, an alias or a title); DocGraph.build resolves them. */
  links: string[];
  /** Other names this document can be linked by, e.g. ['pmid:123', 'pmc:PMC456', 'doi:10.1/x'] or ['pageid:42']. */
  aliases?: string[];
  /** File the document was read from. */
  source: string;
  /**
   * Set only when the reader was asked to defer markup conversion (ReadOptions.deferMarkup): `text` is
   * then the raw markup, `links` is empty, and whoever consumes the document (prepare's workers) runs
   * `convertDeferred` — which also applies `minChars` — off the reading thread.
   */
  deferred?: DeferredMarkup;
}

/**
 * What `convertDeferred` needs to finish a deferred document:
 * - 'wikitext': `text` is a page's raw wikitext (UTF-16 and legacy-encoded dumps);
 * - 'mediawiki-page': `bytes` is a whole `<page>…</page>` record of a UTF-8 dump, not yet parsed: id,
 *   title, links and aliases come from the conversion, which may also drop it (redirect, namespace, …);
 * - 'medline-record': the same for one record of a UTF-8 PubMed XML file;
 * - 'jsonl-line': one line of a UTF-8 JSON-lines file (JSONL or WikiExtractor --json);
 * - 'file': `bytes` is a whole JATS article or HTML page file, parsed (or dropped) by the conversion.
 */
export type DeferredMarkup =
  | {
      kind: 'wikitext';
      /** namespace name (lower case) → number, from the dump's siteinfo; one array shared by a dump's pages */
      namespaces: [string, number][];
      minChars: number;
    }
  | {
      kind: 'mediawiki-page';
      bytes: Uint8Array;
      /** byte offset and line (1-based) of the record in the (decompressed) dump, for error messages */
      offset: number;
      line: number;
      file: string;
      namespaces: [string, number][];
      minChars: number;
      skipBad: boolean;
    }
  | {
      /** one top-level record of a UTF-8 PubMed XML file (PubmedArticle, PubmedBookArticle or DeleteCitation) */
      kind: 'medline-record';
      bytes: Uint8Array;
      offset: number;
      line: number;
      file: string;
      minChars: number;
      skipBad: boolean;
    }
  | {
      /** one line of a UTF-8 JSON-lines file (generic JSONL, or WikiExtractor --json), not yet decoded */
      kind: 'jsonl-line';
      format: 'jsonl' | 'wikiextractor';
      bytes: Uint8Array;
      line: number;
      file: string;
      minChars: number;
      skipBad: boolean;
    }
  | {
      /** a whole file of a one-document-per-file format, not yet decoded or parsed */
      kind: 'file';
      format: 'jats' | 'html';
      bytes: Uint8Array;
      /** the path shown in messages, and the path relative to the corpus root (HTML ids, JATS fallback id) */
      file: string;
      rel: string;
      minChars: number;
      skipBad: boolean;
    };

/** Counts of things a reader (or the graph) left out, keyed by reason. Nothing is dropped without a count. */
export class SkipCounter {
  private readonly counts = new Map<string, number>();

  add(reason: string, n = 1): void {
    if (n === 0) return;
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + n);
  }

  get(reason: string): number {
    return this.counts.get(reason) ?? 0;
  }

  merge(o: SkipCounter): void {
    for (const [k, v] of o.counts) this.add(k, v);
  }

  /** Sorted by reason so that JSON output is stable. */
  toJSON(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of [...this.counts.keys()].sort()) out[k] = this.counts.get(k)!;
    return out;
  }

  total(): number {
    let t = 0;
    for (const v of this.counts.values()) t += v;
    return t;
  }
}

/**
 * What one count of a skip reason stands for. Reasons count different things (a page, a link, an XML
 * error), so totals are only meaningful per unit; 'notes' are counted events that drop nothing by
 * themselves (an XML error's record is counted under its own reason, invalid UTF-8 becomes U+FFFD).
 */
export type SkipUnit = 'documents' | 'files' | 'links' | 'anchors' | 'parts' | 'notes' | 'other';

const SKIP_UNITS: Record<string, SkipUnit> = {
  // a page, record, line, article or file that gave no document
  too_short: 'documents',
  redirect: 'documents',
  missing_title: 'documents',
  page_malformed: 'documents',
  record_malformed: 'documents',
  article_malformed: 'documents',
  article_without_pmid: 'documents',
  no_abstract: 'documents',
  book_article: 'documents',
  malformed_json: 'documents',
  malformed_synset: 'documents',
  duplicate_document_id: 'documents',
  document_without_tokens: 'documents',
  non_document_file: 'files',
  malformed_xml_file_abandoned: 'files',
  link_not_article: 'links',
  citation_without_id: 'links',
  citation_bad_pmid: 'links',
  anchor_without_any_partner: 'anchors',
  jats_sub_article: 'parts',
  malformed_xml: 'notes',
  invalid_utf8: 'notes',
  invalid_utf16: 'notes',
  invalid_legacy_encoding: 'notes',
  article_without_id: 'notes',
  delete_citation_ignored: 'notes',
  brown_untagged_token: 'notes',
};

export function skipUnit(reason: string): SkipUnit {
  const u = SKIP_UNITS[reason];
  if (u) return u;
  if (/^namespace_-?\d+$/.test(reason) || reason.startsWith('bad_field_')) return 'documents';
  if (reason.startsWith('link_')) return 'links';
  return 'other';
}

const UNIT_ORDER: SkipUnit[] = ['documents', 'files', 'links', 'anchors', 'parts', 'notes', 'other'];
const UNIT_LABEL: Record<SkipUnit, [string, string]> = {
  documents: ['document', 'documents'],
  files: ['file', 'files'],
  links: ['link', 'links'],
  anchors: ['anchor', 'anchors'],
  parts: ['part of a document', 'parts of documents'],
  notes: ['', ''],
  other: ['other', 'other'],
};

/** Totals per unit (only units with a count). */
export function skipTotals(skipped: Record<string, number>): Partial<Record<SkipUnit, number>> {
  const t: Partial<Record<SkipUnit, number>> = {};
  for (const [k, v] of Object.entries(skipped)) t[skipUnit(k)] = (t[skipUnit(k)] ?? 0) + v;
  return Object.fromEntries(UNIT_ORDER.filter((u) => t[u] !== undefined).map((u) => [u, t[u]!]));
}

/**
 * One line for people: totals per unit with the reasons as detail, e.g.
 * "1 document (article_malformed 1); also noted (nothing further dropped): malformed_xml 2"; 'nothing' when empty.
 */
export function describeSkips(skipped: Record<string, number>): string {
  const groups = new Map<SkipUnit, [string, number][]>();
  for (const [k, v] of Object.entries(skipped)) {
    const u = skipUnit(k);
    if (!groups.has(u)) groups.set(u, []);
    groups.get(u)!.push([k, v]);
  }
  const parts: string[] = [];
  for (const u of UNIT_ORDER) {
    const g = groups.get(u);
    if (!g) continue;
    const detail = g.map(([k, v]) => `${k} ${v}`).join(', ');
    if (u === 'notes') parts.push(`also noted (nothing further dropped): ${detail}`);
    else {
      const n = g.reduce((a, [, v]) => a + v, 0);
      parts.push(`${n} ${UNIT_LABEL[u][n === 1 ? 0 : 1]} (${detail})`);
    }
  }
  return parts.length ? parts.join('; ') : 'nothing';
}

/** Bad input. The message names the file, the place ('line 12' | 'offset 3456' | 'record 7') and the field. */
export class InputError extends Error {
  readonly file: string;
  readonly where: string;
  readonly field: string;
  readonly detail: string;

  constructor(file: string, where: string, field: string, msg: string) {
    super(`${file}: ${where}: ${field}: ${msg}`);
    this.name = 'InputError';
    this.file = file;
    this.where = where;
    this.field = field;
    this.detail = msg;
  }
}

/**
 * MediaWiki title normalisation: '_' → space, runs of whitespace collapsed, trimmed, first character
 * upper-cased (MediaWiki's default `$wgCapitalLinks`), the rest left case-sensitive.
 * Also used by the graph to match links against titles of non-wiki corpora.
 */
export function normalizeTitle(t: string): string {
  let s = t.replace(/[_\s\u00a0\u200e\u200f]+/g, ' ').trim();
  if (s.length === 0) return s;
  const first = s.codePointAt(0)!;
  const ch = String.fromCodePoint(first);
  const up = ch.toUpperCase();
  // Some letters (e.g. 'ß') upper-case to several characters; MediaWiki keeps those as they are.
  if (up !== ch && [...up].length === 1) s = up + s.slice(ch.length);
  return s;
}
