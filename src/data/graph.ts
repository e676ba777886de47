// Document link graph. Canonical form: nodes sorted by id (UTF-16 code unit order), out-links sorted by target
// index, so the same set of documents gives byte-identical nodes.tsv/edges.tsv whatever order (or worker
// count) they arrived in.
//
// Link resolution, in order: exact document id; alias (Document.aliases, e.g. pmid:/doi:/pageid:); title after
// `resolveTitle` (default: MediaWiki normalisation), following `redirects` (normalised from → to, chains
// up to 16 hops). Unresolved links are dangling, links to the source itself are self-links, repeated targets
// are duplicates: all three are dropped and counted.
import { mkdirSync, openSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { normalizeTitle } from './document.js';

export interface DegreeStats {
  min: number;
  max: number;
  mean: number;
  median: number;
}

export interface GraphStats {
  nodes: number;
  edges: number;
  /** Links whose target is not in the corpus. */
  dangling: number;
  selfLinks: number;
  /** Repeated links from one document to the same target (counted beyond the first). */
  duplicates: number;
  inDegree: DegreeStats;
  outDegree: DegreeStats;
  /** Nodes with neither in- nor out-edges. */
  isolated: number;
  /** Links resolved through at least one redirect. */
  viaRedirect: number;
  /** Documents whose id repeated an earlier one; their links were merged into the first. */
  duplicateIds: number;
  /** Aliases claimed by several documents (links resolve to the one with the smallest id). */
  ambiguousAliases: number;
  /** Normalised titles shared by several documents (same rule); common and harmless where links use ids. */
  ambiguousTitles: number;
}

export interface GraphInput {
  id: string;
  title?: string;
  links: string[];
  aliases?: string[];
}

export interface BuildOptions {
  /** Normalises a title or link text for title matching. Default: normalizeTitle (MediaWiki rules). */
  resolveTitle?: (t: string) => string;
  /** MediaWiki redirects, normalised title → normalised target title (ReadOptions.redirects). */
  redirects?: Map<string, string>;
}

const MAX_REDIRECT_HOPS = 16;

function degreeStats(d: Int32Array): DegreeStats {
  if (d.length === 0) return { min: 0, max: 0, mean: 0, median: 0 };
  const s = Int32Array.from(d).sort();
  let sum = 0;
  for (let i = 0; i < s.length; i++) sum += s[i];
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { min: s[0], max: s[s.length - 1], mean: sum / s.length, median };
}

/** TSV cell escaping: backslash, tab, newline and carriage return become \\, \t, \n, \r. */
export function tsvEscape(s: string): string {
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')) : s;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class DocGraph {
  readonly ids: string[];
  readonly titles: (string | undefined)[];
  readonly outLinks: Int32Array[];
  readonly inDegree: Int32Array;
  private readonly index: Map<string, number>;
  private readonly counts: { dangling: number; selfLinks: number; duplicates: number; viaRedirect: number; duplicateIds: number; ambiguousAliases: number; ambiguousTitles: number };

  private constructor(
    ids: string[],
    titles: (string | undefined)[],
    outLinks: Int32Array[],
    index: Map<string, number>,
    counts: DocGraph['counts'],
  ) {
    this.ids = ids;
    this.titles = titles;
    this.outLinks = outLinks;
    this.index = index;
    this.counts = counts;
    this.inDegree = new Int32Array(ids.length);
    for (const out of outLinks) for (let k = 0; k < out.length; k++) this.inDegree[out[k]]++;
  }

  static build(docs: GraphInput[], opts: BuildOptions = {}): DocGraph {
    const norm = opts.resolveTitle ?? normalizeTitle;
    const redirects = opts.redirects;
    // Canonical node order: by id. Duplicate ids merge (links unioned, smallest title kept) so the result
    // does not depend on which copy came first.
    const order = docs.map((_, i) => i).sort((a, b) => cmp(docs[a].id, docs[b].id));
    const ids: string[] = [];
    const titles: (string | undefined)[] = [];
    const members: number[][] = [];
    let duplicateIds = 0;
    for (const i of order) {
      const d = docs[i];
      if (ids.length && ids[ids.length - 1] === d.id) {
        duplicateIds++;
        members[members.length - 1].push(i);
        const t = titles[titles.length - 1];
        if (d.title !== undefined && (t === undefined || cmp(d.title, t) < 0)) titles[titles.length - 1] = d.title;
      } else {
        ids.push(d.id);
        titles.push(d.title);
        members.push([i]);
      }
    }
    const index = new Map<string, number>();
    ids.forEach((id, k) => index.set(id, k));
    // Aliases and titles: on a clash the smallest node index wins (nodes are visited in id order).
    const ambiguous = { alias: 0, title: 0 };
    const aliasIdx = new Map<string, number>();
    const titleIdx = new Map<string, number>();
    const claim = (m: Map<string, number>, key: string, k: number, kind: 'alias' | 'title') => {
      const prev = m.get(key);
      if (prev === undefined) m.set(key, k);
      else if (prev !== k) ambiguous[kind]++;
    };
    for (let k = 0; k < ids.length; k++) {
      for (const i of members[k]) {
        for (const a of docs[i].aliases ?? []) if (a !== ids[k]) claim(aliasIdx, a, k, 'alias');
        const t = docs[i].title;
        if (t !== undefined) {
          const nt = norm(t);
          if (nt) claim(titleIdx, nt, k, 'title');
        }
      }
    }
    let dangling = 0;
    let selfLinks = 0;
    let duplicates = 0;
    let viaRedirect = 0;
    const resolve = (link: string): number => {
      const byId = index.get(link);
      if (byId !== undefined) return byId;
      const byAlias = aliasIdx.get(link);
      if (byAlias !== undefined) return byAlias;
      let t = norm(link);
      const direct = titleIdx.get(t);
      if (direct !== undefined) return direct;
      if (redirects) {
        for (let hop = 0; hop < MAX_REDIRECT_HOPS; hop++) {
          const next = redirects.get(t);
          if (next === undefined || next === t) break;
          t = next;
          const k = titleIdx.get(t) ?? index.get(t);
          if (k !== undefined) {
            viaRedirect++;
            return k;
          }
        }
      }
      return -1;
    };
    const outLinks: Int32Array[] = new Array(ids.length);
    const seen = new Set<number>();
    for (let k = 0; k < ids.length; k++) {
      seen.clear();
      const targets: number[] = [];
      for (const i of members[k]) {
        for (const link of docs[i].links) {
          const t = resolve(link);
          if (t < 0) dangling++;
          else if (t === k) selfLinks++;
          else if (seen.has(t)) duplicates++;
          else {
            seen.add(t);
            targets.push(t);
          }
        }
      }
      outLinks[k] = Int32Array.from(targets).sort();
    }
    return new DocGraph(ids, titles, outLinks, index, { dangling, selfLinks, duplicates, viaRedirect, duplicateIds, ambiguousAliases: ambiguous.alias, ambiguousTitles: ambiguous.title });
  }

  /** Node index of a document id, or -1. */
  indexOf(id: string): number {
    return this.index.get(id) ?? -1;
  }

  get size(): number {
    return this.ids.length;
  }

  outDegree(k: number): number {
    return this.outLinks[k].length;
  }

  stats(): GraphStats {
    const n = this.ids.length;
    const outDeg = new Int32Array(n);
    let edges = 0;
    let isolated = 0;
    for (let k = 0; k < n; k++) {
      outDeg[k] = this.outLinks[k].length;
      edges += outDeg[k];
      if (outDeg[k] === 0 && this.inDegree[k] === 0) isolated++;
    }
    return {
      nodes: n,
      edges,
      dangling: this.counts.dangling,
      selfLinks: this.counts.selfLinks,
      duplicates: this.counts.duplicates,
      inDegree: degreeStats(this.inDegree),
      outDegree: degreeStats(outDeg),
      isolated,
      viaRedirect: this.counts.viaRedirect,
      duplicateIds: this.counts.duplicateIds,
      ambiguousAliases: this.counts.ambiguousAliases,
      ambiguousTitles: this.counts.ambiguousTitles,
    };
  }

  /**
   * Writes DIR/graph/nodes.tsv (id, title, out_degree, in_degree) and DIR/graph/edges.tsv (source_id, target_id),
   * each with a header line, in canonical order. Cells are TSV-escaped (see tsvEscape); a missing title is empty.
   */
  writeTsv(dir: string): void {
    const g = path.join(dir, 'graph');
    mkdirSync(g, { recursive: true });
    const write = (file: string, header: string, rows: (emit: (line: string) => void) => void) => {
      const fd = openSync(path.join(g, file), 'w');
      try {
        let buf = header + '\n';
        rows((line) => {
          buf += line + '\n';
          if (buf.length > 1 << 20) {
            writeSync(fd, buf);
            buf = '';
          }
        });
        if (buf) writeSync(fd, buf);
      } finally {
        closeSync(fd);
      }
    };
    const esc = this.ids.map(tsvEscape);
    write('nodes.tsv', 'id\ttitle\tout_degree\tin_degree', (emit) => {
      for (let k = 0; k < this.ids.length; k++) {
        emit(`${esc[k]}\t${tsvEscape(this.titles[k] ?? '')}\t${this.outLinks[k].length}\t${this.inDegree[k]}`);
      }
    });
    write('edges.tsv', 'source_id\ttarget_id', (emit) => {
      for (let k = 0; k < this.ids.length; k++) {
        const out = this.outLinks[k];
        for (let j = 0; j < out.length; j++) emit(`${esc[k]}\t${esc[out[j]]}`);
      }
    });
  }
}
