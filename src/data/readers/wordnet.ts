// WordNet 3.x database files (dict/data.noun, data.verb, data.adj, data.adv). One synset = one document:
// id `wn:<pos><offset>` (pos n/v/a/r; adjective satellites live in data.adj and use 'a'),
// text = "lemma, lemma: gloss" (underscores → spaces, adjective markers like "(p)" dropped),
// links = every pointer's target synset (hypernym, hyponym, meronym, holonym, antonym, similar-to, also-see,
// derivation, ...), lexical pointers included. Format: wndb(5WN).
import { Document, InputError, SkipCounter } from '../document.js';
import { LineSplitter } from './io.js';

export interface WordNetOptions {
  file: string;
  skipBad: boolean;
  skips: SkipCounter;
  minChars: number;
  /** 'synset' (default): one document per synset. 'lexfile': one document per lexicographer file
   *  (noun.animal, verb.motion, ...; 45 in all), one synset per line in file order, aliases = its synset ids,
   *  links = every pointer target (the graph maps them to lexfiles; pointers inside a lexfile count as self-links). */
  unit?: 'synset' | 'lexfile';
}

/** Lexicographer file names by lex_filenum (wninput(5WN)). */
export const LEXFILES = [
  'adj.all', 'adj.pert', 'adv.all', 'noun.Tops', 'noun.act', 'noun.animal', 'noun.artifact', 'noun.attribute',
  'noun.body', 'noun.cognition', 'noun.communication', 'noun.event', 'noun.feeling', 'noun.food', 'noun.group',
  'noun.location', 'noun.motive', 'noun.object', 'noun.person', 'noun.phenomenon', 'noun.plant', 'noun.possession',
  'noun.process', 'noun.quantity', 'noun.relation', 'noun.shape', 'noun.state', 'noun.substance', 'noun.time',
  'verb.body', 'verb.change', 'verb.cognition', 'verb.communication', 'verb.competition', 'verb.consumption',
  'verb.contact', 'verb.creation', 'verb.emotion', 'verb.motion', 'verb.perception', 'verb.possession',
  'verb.social', 'verb.stative', 'verb.weather', 'adj.ppl',
];

export function lexfileName(num: number): string {
  return LEXFILES[num] ?? `lexfile.${String(num).padStart(2, '0')}`;
}

export const WORDNET_FILES = ['data.noun', 'data.verb', 'data.adj', 'data.adv'];

const POS_OF_FILE: Record<string, string> = { noun: 'n', verb: 'v', adj: 'a', adv: 'r' };
const POS_OF_PTR: Record<string, string> = { n: 'n', v: 'v', a: 'a', s: 'a', r: 'r' };

export function wordnetPos(file: string): string | undefined {
  const m = /data\.(noun|verb|adj|adv)$/.exec(file);
  return m ? POS_OF_FILE[m[1]] : undefined;
}

/** Parses one data-file line. Throws InputError (field named) on malformed input. */
export function parseSynsetLine(line: string, pos: string, file: string, lineNo: number): Document & { lexfile: number } {
  const bar = line.indexOf(' | ');
  const head = bar === -1 ? line.trimEnd() : line.slice(0, bar);
  const gloss = bar === -1 ? '' : line.slice(bar + 3).trim();
  const f = head.split(' ');
  const where = `line ${lineNo}`;
  const offset = f[0];
  if (!/^\d{8}$/.test(offset)) throw new InputError(file, where, 'synset_offset', `expected 8 digits, got ${JSON.stringify(offset)}`);
  const wCnt = parseInt(f[3], 16);
  if (!Number.isFinite(wCnt) || wCnt < 1) throw new InputError(file, where, 'w_cnt', `bad word count ${JSON.stringify(f[3])}`);
  let i = 4;
  const lemmas: string[] = [];
  for (let k = 0; k < wCnt; k++, i += 2) {
    const w = f[i];
    if (w === undefined) throw new InputError(file, where, `word[${k}]`, 'line ends early');
    lemmas.push(w.replace(/\((a|p|ip)\)$/, '').replace(/_/g, ' '));
  }
  const pCnt = parseInt(f[i++], 10);
  if (!Number.isFinite(pCnt) || pCnt < 0) throw new InputError(file, where, 'p_cnt', `bad pointer count ${JSON.stringify(f[i - 1])}`);
  const links: string[] = [];
  for (let k = 0; k < pCnt; k++, i += 4) {
    const off = f[i + 1];
    const p = POS_OF_PTR[f[i + 2]];
    if (off === undefined || !/^\d{8}$/.test(off) || p === undefined) {
      throw new InputError(file, where, `ptr[${k}]`, `malformed pointer ${JSON.stringify(f.slice(i, i + 4).join(' '))}`);
    }
    links.push(`wn:${p}${off}`);
  }
  const text = gloss ? `${lemmas.join(', ')}: ${gloss}` : lemmas.join(', ');
  const lex = parseInt(f[1], 10);
  if (!/^\d{2}$/.test(f[1] ?? '')) throw new InputError(file, where, 'lex_filenum', `expected 2 digits, got ${JSON.stringify(f[1])}`);
  return { id: `wn:${pos}${offset}`, title: lemmas[0], text, links, source: file, lexfile: lex };
}

export async function* readWordNet(chunks: AsyncIterable<string>, o: WordNetOptions): AsyncGenerator<Document> {
  const pos = wordnetPos(o.file);
  if (!pos) throw new InputError(o.file, 'line 1', 'file', 'not a WordNet data.{noun,verb,adj,adv} file');
  // Lines are split synchronously per chunk (not through an async line iterator): this reader feeds the demo
  // and WordNet has ~118k short lines.
  const sp = new LineSplitter();
  const lines: string[] = [];
  const docs: Document[] = [];
  // lexfile mode: a data file holds whole lexicographer files, so groups are complete at its end.
  const groups = o.unit === 'lexfile' ? new Map<number, { lines: string[]; aliases: string[]; links: string[] }>() : undefined;
  let lineNo = 0;
  const parse = () => {
    for (const line of lines) {
      lineNo++;
      // The license header lines start with two spaces.
      if (line.startsWith('  ') || line.length === 0) continue;
      let d: Document & { lexfile: number };
      try {
        d = parseSynsetLine(line, pos, o.file, lineNo);
      } catch (e) {
        if (!(e instanceof InputError) || !o.skipBad) throw e;
        o.skips.add('malformed_synset');
        continue;
      }
      if (groups) {
        let g = groups.get(d.lexfile);
        if (!g) groups.set(d.lexfile, (g = { lines: [], aliases: [], links: [] }));
        g.lines.push(d.text);
        g.aliases.push(d.id);
        for (const l of d.links) g.links.push(l);
      } else if (d.text.length < o.minChars) o.skips.add('too_short');
      else {
        const { lexfile: _, ...doc } = d;
        docs.push(doc);
      }
    }
    lines.length = 0;
  };
  for await (const c of chunks) {
    sp.push(c, lines);
    parse();
    yield* docs;
    docs.length = 0;
  }
  sp.end(lines);
  parse();
  yield* docs;
  if (groups) {
    for (const num of [...groups.keys()].sort((a, b) => a - b)) {
      const g = groups.get(num)!;
      const name = lexfileName(num);
      const text = g.lines.join('\n');
      if (text.length < o.minChars) {
        o.skips.add('too_short');
        continue;
      }
      yield { id: `wn:lexfile:${name}`, title: name, text, links: g.links, aliases: g.aliases, source: o.file };
    }
  }
}
