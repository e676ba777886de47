// JSON-lines corpora: the generic {id, title?, text, links?, aliases?} format, and WikiExtractor output made
// with --json --links ({"id","url","title","text"} where text holds <a href="Target%20Name">anchor</a>).
import { Document, InputError, SkipCounter, normalizeTitle } from '../document.js';
import { decodeEntities } from './entities.js';

export interface JsonlOptions {
  file: string;
  skipBad: boolean;
  skips: SkipCounter;
  minChars: number;
}

function parseLine(line: string, file: string, lineNo: number): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new InputError(file, `line ${lineNo}`, 'json', `malformed JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new InputError(file, `line ${lineNo}`, 'json', `expected an object, got ${Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v}`);
  }
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, key: string, file: string, lineNo: number, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new InputError(file, `line ${lineNo}`, key, 'missing');
    return undefined;
  }
  if (typeof v === 'number' && (key === 'id') && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string') throw new InputError(file, `line ${lineNo}`, key, `expected a string, got ${Array.isArray(v) ? 'array' : typeof v}`);
  return v;
}

function strList(o: Record<string, unknown>, key: string, file: string, lineNo: number): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new InputError(file, `line ${lineNo}`, key, `expected an array of strings, got ${typeof v}`);
  return v.map((x, i) => {
    if (typeof x === 'string') return x;
    if (typeof x === 'number' && Number.isFinite(x)) return String(x);
    throw new InputError(file, `line ${lineNo}`, `${key}[${i}]`, `expected a string, got ${x === null ? 'null' : typeof x}`);
  });
}

/**
 * One line's document: `fn` on the parsed record, then the minChars filter; undefined when the line is
 * blank or the record is skipped. InputErrors become counted skips when skipBad is set.
 */
function recordOf(
  line: string,
  lineNo: number,
  o: JsonlOptions,
  fn: (rec: Record<string, unknown>, lineNo: number) => Document | undefined,
): Document | undefined {
  if (line.trim() === '') return undefined;
  let d: Document | undefined;
  try {
    d = fn(parseLine(line, o.file, lineNo), lineNo);
  } catch (e) {
    if (!(e instanceof InputError) || !o.skipBad) throw e;
    o.skips.add(e.field === 'json' ? 'malformed_json' : `bad_field_${e.field.replace(/\[\d+\]$/, '')}`);
    return undefined;
  }
  if (d && d.text.length < o.minChars) {
    o.skips.add('too_short');
    return undefined;
  }
  return d;
}

/** Runs recordOf on each line. */
async function* eachRecord(
  lines: AsyncIterable<[string, number]>,
  o: JsonlOptions,
  fn: (rec: Record<string, unknown>, lineNo: number) => Document | undefined,
): AsyncGenerator<Document> {
  for await (const [line, lineNo] of lines) {
    const d = recordOf(line, lineNo, o, fn);
    if (d) yield d;
  }
}

function jsonlDoc(o: JsonlOptions): (r: Record<string, unknown>, n: number) => Document {
  return (r, n) => {
    const id = str(r, 'id', o.file, n, true)!;
    if (id.trim() === '') throw new InputError(o.file, `line ${n}`, 'id', 'empty');
    const title = str(r, 'title', o.file, n, false);
    const text = str(r, 'text', o.file, n, true)!;
    const links = strList(r, 'links', o.file, n) ?? [];
    const aliases = strList(r, 'aliases', o.file, n);
    return { id, title, text, links, aliases: aliases?.length ? aliases : undefined, source: o.file };
  };
}

function wikiExtractorJsonDoc(o: JsonlOptions): (r: Record<string, unknown>, n: number) => Document {
  return (r, n) => {
    const pageId = str(r, 'id', o.file, n, true)!;
    const rawTitle = str(r, 'title', o.file, n, true)!;
    const raw = str(r, 'text', o.file, n, true)!;
    return wikiExtractorDoc(pageId, rawTitle, raw, o.file, n);
  };
}

export function readJsonl(lines: AsyncIterable<[string, number]>, o: JsonlOptions): AsyncGenerator<Document> {
  return eachRecord(lines, o, jsonlDoc(o));
}

/** One line of a JSONL file, or of a WikiExtractor --json file, exactly as the readers take it (sync). */
export function jsonLineDocument(format: 'jsonl' | 'wikiextractor', line: string, lineNo: number, o: JsonlOptions): Document | undefined {
  return recordOf(line, lineNo, o, format === 'jsonl' ? jsonlDoc(o) : wikiExtractorJsonDoc(o));
}

const ANCHOR_RE = /<a\s+href="([^"]*)"\s*>([\s\S]*?)<\/a>/g;

/** WikiExtractor --links text → plain text with anchors kept, and the decoded link targets. */
export function unlinkWikiExtractor(text: string): { text: string; links: string[] } {
  const links: string[] = [];
  const plain = text.replace(ANCHOR_RE, (_m, href: string, anchor: string) => {
    let t = decodeEntities(href);
    try {
      t = decodeURIComponent(t);
    } catch {
      /* keep the raw target */
    }
    const hash = t.indexOf('#');
    if (hash !== -1) t = t.slice(0, hash);
    if (t.trim()) links.push(t.trim());
    return anchor;
  });
  const lines = plain.split('\n').map((l) => l.trim()).filter((l) => l);
  return { text: lines.join('\n'), links };
}

function wikiExtractorDoc(pageId: string, rawTitle: string, raw: string, file: string, lineNo: number): Document {
  const title = normalizeTitle(rawTitle);
  if (!title) throw new InputError(file, `line ${lineNo}`, 'title', 'empty');
  const { text, links } = unlinkWikiExtractor(raw);
  // Same id scheme as the MediaWiki reader, so both formats of one wiki give the same graph.
  return { id: title, title, text, links, aliases: pageId ? [`pageid:${pageId}`] : undefined, source: file };
}

/**
 * WikiExtractor output, either `--json` lines or the default `<doc id=".." url=".." title="..">text</doc>` blocks
 * (chosen per file from its first non-blank line).
 */
export async function* readWikiExtractor(lines: AsyncIterable<[string, number]>, o: JsonlOptions): AsyncGenerator<Document> {
  const it = lines[Symbol.asyncIterator]();
  const first: [string, number][] = [];
  let mode: 'json' | 'doc' | undefined;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    first.push(r.value);
    if (r.value[0].trim() !== '') {
      mode = r.value[0].trimStart().startsWith('<doc') ? 'doc' : 'json';
      break;
    }
  }
  const rest = (async function* () {
    yield* first;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  if (mode === 'doc') {
    yield* readDocBlocks(rest, o);
    return;
  }
  yield* eachRecord(rest, o, wikiExtractorJsonDoc(o));
}

const DOC_OPEN = /^<doc\b([^>]*)>\s*$/;
const ATTR = /([a-zA-Z_]+)="([^"]*)"/g;

async function* readDocBlocks(lines: AsyncIterable<[string, number]>, o: JsonlOptions): AsyncGenerator<Document> {
  let cur: { id: string; title: string; line: number; body: string[] } | undefined;
  let broken = false; // skipBad: inside a block whose header was bad, skip to its </doc>
  for await (const [line, n] of lines) {
    const open = DOC_OPEN.exec(line.trim());
    try {
      if (open) {
        if (cur) throw new InputError(o.file, `line ${n}`, 'doc', `<doc> opened inside the <doc> of line ${cur.line}`);
        const attrs: Record<string, string> = {};
        for (const m of open[1].matchAll(ATTR)) attrs[m[1]] = decodeEntities(m[2]);
        if (attrs.title === undefined) throw new InputError(o.file, `line ${n}`, 'title', 'missing in <doc>');
        cur = { id: attrs.id ?? '', title: attrs.title, line: n, body: [] };
        broken = false;
      } else if (line.trim() === '</doc>') {
        if (!cur) {
          if (broken) {
            broken = false;
            continue;
          }
          throw new InputError(o.file, `line ${n}`, 'doc', '</doc> without <doc>');
        }
        const d = wikiExtractorDoc(cur.id, cur.title, cur.body.join('\n'), o.file, cur.line);
        cur = undefined;
        if (d.text.length < o.minChars) o.skips.add('too_short');
        else yield d;
      } else if (cur) cur.body.push(line);
      else if (line.trim() !== '' && !broken) throw new InputError(o.file, `line ${n}`, 'doc', 'text outside <doc>...</doc>');
    } catch (e) {
      if (!(e instanceof InputError) || !o.skipBad) throw e;
      o.skips.add(`bad_field_${e.field}`);
      cur = undefined;
      broken = true;
    }
  }
  if (cur) {
    const e = new InputError(o.file, `line ${cur.line}`, 'doc', '<doc> never closed');
    if (!o.skipBad) throw e;
    o.skips.add('bad_field_doc');
  }
}
