import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DocGraph, GraphInput, tsvEscape } from '../src/data/graph.js';

function tmpDir(t: { teardown: (f: () => void) => void }): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'linkbert-graph-test-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const out = (g: DocGraph, id: string) => [...g.outLinks[g.indexOf(id)]].map((k) => g.ids[k]);

const corpus: GraphInput[] = [
  { id: 'c', title: 'Cherry', links: ['a', 'cherry', 'Missing', 'b', 'b', 'Apple pie'] },
  { id: 'a', title: 'Apple pie', links: ['B_anana', 'pmid:9', 'nowhere'] },
  { id: 'b', title: 'B anana', links: ['c', 'Old cherry'], aliases: ['pmid:9', 'doi:10.1/b'] },
  { id: 'd', title: 'Durian', links: [] },
];

test('build: resolution by id, alias, normalised title; dangling/self/duplicate counted', (t) => {
  const g = DocGraph.build(corpus, { redirects: new Map([['Old cherry', 'Cherry']]) });
  t.deepEqual(g.ids, ['a', 'b', 'c', 'd']);
  t.deepEqual(out(g, 'a'), ['b']); // 'B_anana' by title, 'pmid:9' by alias (duplicate)
  t.deepEqual(out(g, 'b'), ['c']); // 'c' by id, 'Old cherry' via redirect (duplicate)
  t.deepEqual(out(g, 'c'), ['a', 'b']); // 'cherry' is itself
  t.deepEqual(out(g, 'd'), []);
  t.deepEqual([...g.inDegree], [1, 2, 1, 0]);
  const s = g.stats();
  t.is(s.nodes, 4);
  t.is(s.edges, 4);
  t.is(s.dangling, 2); // nowhere, Missing
  t.is(s.selfLinks, 1);
  t.is(s.duplicates, 4); // a: pmid:9; b: Old cherry; c: second b, Apple pie
  t.is(s.viaRedirect, 1);
  t.is(s.isolated, 1);
  t.deepEqual(s.outDegree, { min: 0, max: 2, mean: 1, median: 1 });
  t.deepEqual(s.inDegree, { min: 0, max: 2, mean: 1, median: 1 });
  t.is(g.indexOf('zzz'), -1);
});

test('redirects: chains followed, cycles terminate as dangling', (t) => {
  const docs: GraphInput[] = [
    { id: 'X', title: 'X', links: ['R1', 'Loop1'] },
    { id: 'Y', title: 'Y', links: [] },
  ];
  const redirects = new Map([
    ['R1', 'R2'],
    ['R2', 'Y'],
    ['Loop1', 'Loop2'],
    ['Loop2', 'Loop1'],
  ]);
  const g = DocGraph.build(docs, { redirects });
  t.deepEqual(out(g, 'X'), ['Y']);
  t.is(g.stats().dangling, 1);
  t.is(g.stats().viaRedirect, 1);
  // Without the map, redirect titles dangle.
  t.is(DocGraph.build(docs).stats().dangling, 2);
});

test('aliases and titles claimed twice resolve to the smallest id and are counted', (t) => {
  const docs: GraphInput[] = [
    { id: 'z', title: 'Same', links: ['pmid:1', 'Same'], aliases: ['pmid:1'] },
    { id: 'm', title: 'Same', links: [], aliases: ['pmid:1'] },
    { id: 'q', title: 'Other', links: ['pmid:1', 'same'] },
  ];
  const g = DocGraph.build(docs);
  t.deepEqual(out(g, 'q'), ['m']);
  t.deepEqual(out(g, 'z'), ['m']);
  const s = g.stats();
  t.is(s.ambiguousAliases, 1);
  t.is(s.ambiguousTitles, 1);
});

test('custom resolveTitle replaces MediaWiki normalisation', (t) => {
  const docs: GraphInput[] = [
    { id: '1', title: 'Hello World', links: ['hello world'] },
    { id: '2', title: 'Other', links: ['HELLO WORLD'] },
  ];
  t.is(DocGraph.build(docs).stats().edges, 0);
  const g = DocGraph.build(docs, { resolveTitle: (s) => s.toLowerCase() });
  t.deepEqual(out(g, '2'), ['1']);
  t.is(g.stats().selfLinks, 1);
});

test('duplicate ids merge links deterministically', (t) => {
  const a: GraphInput[] = [
    { id: 'p', title: 'Zed', links: ['q'] },
    { id: 'p', title: 'Alpha', links: ['r', 'q'] },
    { id: 'q', links: [] },
    { id: 'r', links: [] },
  ];
  const g1 = DocGraph.build(a);
  const g2 = DocGraph.build([...a].reverse());
  t.deepEqual(out(g1, 'p'), ['q', 'r']);
  t.deepEqual(out(g2, 'p'), ['q', 'r']);
  t.is(g1.titles[0], 'Alpha');
  t.is(g2.titles[0], 'Alpha');
  t.is(g1.stats().duplicateIds, 1);
  t.is(g1.stats().duplicates, 1);
});

function shuffled<T>(xs: T[], seed: number): T[] {
  const a = [...xs];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

test('writeTsv: identical files whatever the input order; escaping; headers', (t) => {
  const docs: GraphInput[] = [];
  for (let i = 0; i < 300; i++) {
    const links: string[] = [];
    for (let k = 1; k <= i % 7; k++) links.push(`doc${(i * 31 + k * 17) % 320}`); // some dangle (>= 300)
    if (i % 11 === 0) links.push(`Title ${(i + 5) % 300}`);
    docs.push({ id: `doc${i}`, title: i === 3 ? 'tab\there\nnew\\line' : `Title ${i}`, links, aliases: [`alias:${i}`] });
  }
  const read = (d: string) => [readFileSync(path.join(d, 'graph/nodes.tsv'), 'utf8'), readFileSync(path.join(d, 'graph/edges.tsv'), 'utf8')];
  const base = tmpDir(t);
  DocGraph.build(docs).writeTsv(base);
  const [nodes, edges] = read(base);
  for (let seed = 1; seed <= 4; seed++) {
    const d = tmpDir(t);
    const g = DocGraph.build(shuffled(docs, seed));
    g.writeTsv(d);
    t.deepEqual(read(d), [nodes, edges], `seed ${seed}`);
  }
  const nodeLines = nodes.trimEnd().split('\n');
  t.is(nodeLines[0], 'id\ttitle\tout_degree\tin_degree');
  t.is(nodeLines.length, 301);
  t.true(nodeLines.includes('doc3\ttab\\there\\nnew\\\\line\t3\t' + DocGraph.build(docs).inDegree[DocGraph.build(docs).indexOf('doc3')]));
  for (const l of nodeLines) t.is(l.split('\t').length, 4);
  const edgeLines = edges.trimEnd().split('\n');
  t.is(edgeLines[0], 'source_id\ttarget_id');
  const g = DocGraph.build(docs);
  t.is(edgeLines.length - 1, g.stats().edges);
  // Edges are grouped by source in node order, targets ascending.
  const pos = (id: string) => g.indexOf(id);
  for (let i = 2; i < edgeLines.length; i++) {
    const [s0, t0] = edgeLines[i - 1].split('\t');
    const [s1, t1] = edgeLines[i].split('\t');
    t.true(pos(s0) < pos(s1) || (s0 === s1 && pos(t0) < pos(t1)), `${edgeLines[i - 1]} / ${edgeLines[i]}`);
  }
});

test('tsvEscape and empty graph', (t) => {
  t.is(tsvEscape('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e');
  t.is(tsvEscape('plain'), 'plain');
  const g = DocGraph.build([]);
  t.deepEqual(g.stats().inDegree, { min: 0, max: 0, mean: 0, median: 0 });
  const d = tmpDir(t);
  g.writeTsv(d);
  t.is(readFileSync(path.join(d, 'graph/edges.tsv'), 'utf8'), 'source_id\ttarget_id\n');
});
