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
