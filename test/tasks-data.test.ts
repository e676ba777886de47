import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WordPieceTokenizer } from '../src/data/tokenizer/index.js';
import {
  getTask,
  qaTask,
  seqclsTask,
  multilabelTask,
  regressionTask,
  nerTask,
  mcTask,
  loadQa,
  loadSeqcls,
  loadMultilabel,
  loadRegression,
  loadConll,
  loadNer,
  loadMc,
  longestFirst,
  resolveNegativeLabel,
  IGNORE_INDEX,
  formatReadStats,
  parseTaskConfig,
  PaddedRows,
  type TaskConfig,
} from '../src/tasks/index.js';
import { seqevalEvaluate } from '../src/tasks/metrics/seqeval.js';

const fx = (p: string) => fileURLToPath(new URL(`../../test/fixtures/tasks/${p}`, import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const sharedData = path.resolve(repoRoot, '../shared/data');
const tok = WordPieceTokenizer.fromVocabFile(fileURLToPath(new URL('../../test/fixtures/tokenizer/vocab-uncased.txt', import.meta.url)));

// ---------------------------------------------------------------- QA

test('qa: SQuAD JSON reader, answer_start mismatch is counted and kept for evaluation', (t) => {
  const { examples, stats } = loadQa(fx('qa/squad.json'));
  t.deepEqual(examples.map((e) => e.id), ['q1', 'q2', 'q3']);
  t.deepEqual(examples[0]!.answers.map((a) => a.text), ['chromosome 17', 'on chromosome 17']);
  t.false(examples[0]!.answerMismatch);
  t.true(examples[2]!.answerMismatch); // answer_start 5 points at "in is prod", not "beta cells"
  t.is(stats.notes['examples whose first answer mismatches (skipped for training, still evaluated)'], 1);
  // the stats name the example, so it can be found and fixed
  t.is(stats.notes['answer_start does not match the answer text (answers)'], 1);
  t.deepEqual(stats.where, { 'answer_start does not match the answer text (answers)': ['"q3" at question 3'] });
  const train = qaTask.featurize(examples, tok, qaTask.buildConfig(examples), { train: true });
  t.is(train.stats.skipped['answer_start does not match the answer text (training)'], 1);
  t.false(train.features.some((f) => f.exampleIndex === 2));
  const evalF = qaTask.featurize(examples, tok, qaTask.buildConfig(examples), { train: false });
  t.true(evalF.features.some((f) => f.exampleIndex === 2));
});

test('qa: LinkBERT JSONL and MRQA readers', (t) => {
  const lb = loadQa(fx('qa/linkbert.jsonl'));
  t.deepEqual(lb.examples.map((e) => e.id), ['m1', 'm2']);
  t.is(lb.stats.skipped['blank lines'], 1);
  t.is(lb.stats.skipped['empty question or context'], 1);
  t.deepEqual(lb.examples[0]!.answers, [{ text: 'helicase', start: 20 }]);
  const mrqa = loadQa(fx('qa/mrqa.jsonl'));
  t.is(mrqa.stats.skipped['MRQA header lines'], 1);
  t.deepEqual(
    mrqa.examples.map((e) => [e.id, e.answers[0]!.text, e.answerMismatch]),
    [
      ['r1', 'cyclooxygenase enzymes', false],
      ['r2', 'fever', false],
    ],
  );
});

test('qa: answer_start counts code points (Python) and is converted for non-BMP contexts', (t) => {
  const { examples, stats } = loadQa(fx('qa/astral.jsonl'));
  // e1 gives the Python code-point offset 12; e2 an already-UTF-16 offset 13: both resolve to the same span
  t.deepEqual(examples.map((e) => [e.answers[0]!.start, e.answerMismatch]), [[13, false], [13, false]]);
  t.is(stats.notes['contexts with non-BMP characters (answer_start converted from code points)'], 2);
  const { features } = qaTask.featurize(examples, tok, qaTask.buildConfig(examples), { train: true });
  const T = Math.max(...features.map((f) => f.inputIds.length));
  const preds = qaTask.decodePredictions(examples, features, goldLogits(features, T), qaTask.buildConfig(examples));
  t.deepEqual(preds.map((p) => p.text), ['insulin', 'insulin']);
});

test('qa: reader errors name file, line and field', (t) => {
  t.throws(() => loadQa(fx('qa/bad-start.jsonl')), { message: /bad-start\.jsonl:2: field "answers\.answer_start\[0\]": expected a non-negative integer/ });
  t.throws(() => loadQa(fx('qa/dup-id.jsonl')), { message: /dup-id\.jsonl:2: field "id": duplicate question id "d1" \(first at .*dup-id\.jsonl:1\)/ });
});

/** Logits that point at each feature's gold span (or nowhere useful when the answer is outside). */
function goldLogits(features: { startPosition: number; endPosition: number; inputIds: Int32Array }[], T: number) {
  const s = new Float32Array(features.length * T).fill(-5);
  const e = new Float32Array(features.length * T).fill(-5);
  features.forEach((f, i) => {
    s[i * T + f.startPosition] = 10;
    e[i * T + f.endPosition] = 10;
  });
  return { startLogits: s, endLogits: e, seqLen: T };
}

test('qa: sliding windows overlap by docStride and cover the whole context', (t) => {
  const { examples } = loadQa(fx('qa/squad.json'));
  const opts = { maxSeqLength: 24, docStride: 4, maxQueryLength: 6, train: true };
  const { features, stats } = qaTask.featurize(examples, tok, qaTask.buildConfig(examples), opts);
  t.true(stats.truncated['questions truncated to --max-query-len']! > 0);
  const f0 = features.filter((f) => f.exampleIndex === 0);
  t.true(f0.length > 2, `expected several windows, got ${f0.length}`);
  const ctxTokens = tok.encodeWithOffsets(examples[0]!.context);
  const starts = (f: (typeof f0)[0]) => {
    const out: number[] = [];
    for (let p = 0; p < f.inputIds.length; p++) if (f.offsets[2 * p]! >= 0) out.push(f.offsets[2 * p]!);
    return out;
  };
  const seen = new Set<number>();
  for (let w = 0; w < f0.length; w++) {
    const f = f0[w]!;
    t.true(f.inputIds.length <= 24);
    t.is(f.inputIds[0], tok.clsId);
    t.is(f.inputIds[f.inputIds.length - 1], tok.sepId);
    // token types: 0 up to and including the first [SEP], 1 afterwards
    const firstCtx = f.offsets.findIndex((v, i) => i % 2 === 0 && v >= 0) / 2;
    t.is(f.inputIds[firstCtx - 1], tok.sepId);
    t.is(f.tokenTypeIds[firstCtx - 1], 0);
    t.is(f.tokenTypeIds[firstCtx], 1);
    starts(f).forEach((s) => seen.add(s));
    if (w > 0) {
      const prev = starts(f0[w - 1]!);
      const cur = starts(f);
      t.deepEqual(prev.slice(prev.length - 4), cur.slice(0, 4), 'consecutive windows share docStride tokens');
    }
  }
  t.is(seen.size, ctxTokens.ids.length, 'every context token appears in some window');
  // offsets of context tokens are those of the tokenizer on the raw context
  t.deepEqual(starts(f0[0]!), Array.from(ctxTokens.offsets.filter((_, i) => i % 2 === 0).slice(0, starts(f0[0]!).length)));
});

test('qa: gold answer text is recovered from logits at the gold tokens (round trip)', (t) => {
  let checked = 0;
  for (const file of ['qa/squad.json', 'qa/linkbert.jsonl', 'qa/mrqa.jsonl']) {
    const { examples } = loadQa(fx(file));
    const config = qaTask.buildConfig(examples);
    // 24/10/6: 15 context tokens per window, step 5; any answer of <= 11 tokens lies whole inside some window
    for (const opts of [{ maxSeqLength: 384 }, { maxSeqLength: 24, docStride: 10, maxQueryLength: 6 }]) {
      const { features } = qaTask.featurize(examples, tok, config, { ...opts, train: false });
      const T = Math.max(...features.map((f) => f.inputIds.length));
      const batch = qaTask.collate(features, T);
      t.is(batch.inputIds.length, features.length * T);
      const preds = qaTask.decodePredictions(examples, features, goldLogits(features, T), config);
      examples.forEach((e, i) => {
        // a mismatched example has [CLS] targets only, so its prediction is arbitrary (scored 0 below);
        // with small windows an answer longer than docStride+1 tokens may not fit whole in any window
        const fits = opts.maxSeqLength === 384 || tok.encode(e.answers[0]!.text).length <= 11;
        if (fits && !e.answerMismatch) checked++;
        if (fits && !e.answerMismatch) t.is(preds[i]!.text, e.answers[0]!.text, `${file} ${e.id} ${JSON.stringify(opts)}`);
      });
      if (opts.maxSeqLength === 384) {
        const score = qaTask.score(examples, preds, config);
        const ok = examples.filter((e) => !e.answerMismatch).length;
        t.is(score.main, 'f1');
        t.true(Math.abs(score.metrics.exact_match! - (100 * ok) / examples.length) < 1e-9);
      }
    }
  }
  t.true(checked >= 9, `${checked} answers checked`);
});

test('qa: spans longer than maxAnswerLength or outside the context are never predicted', (t) => {
  const { examples } = loadQa(fx('qa/squad.json'));
  const config = qaTask.buildConfig(examples);
  const { features } = qaTask.featurize(examples.slice(0, 1), tok, config);
  const f = features[0]!;
  const T = f.inputIds.length;
  const s = new Float32Array(T).fill(-100);
  const e = new Float32Array(T).fill(-100);
  s[0] = 100; // [CLS]
  e[1] = 100; // a question token
  const ctx: number[] = [];
  for (let p = 0; p < T; p++) if (f.offsets[2 * p]! >= 0) ctx.push(p);
  s[ctx[0]!] = 50;
  e[ctx[ctx.length - 1]!] = 50; // whole context: longer than maxAnswerLength 3
  s[ctx[2]!] = 10;
  e[ctx[3]!] = 10;
  const [p] = qaTask.decodePredictions(examples.slice(0, 1), features, { startLogits: s, endLogits: e, seqLen: T }, config, { maxAnswerLength: 3 });
  const ctxText = examples[0]!.context;
  t.is(p!.start, f.offsets[2 * ctx[2]!]);
  t.is(p!.end, f.offsets[2 * ctx[3]! + 1]);
  t.is(p!.text, ctxText.slice(p!.start, p!.end));
  t.throws(() => qaTask.decodePredictions(examples.slice(0, 1), features, { startLogits: s, endLogits: e.subarray(1), seqLen: T }, config), {
    message: /expected \d+ values/,
  });
});

// ---------------------------------------------------------------- seqcls

test('seqcls: labels sorted from train, empty text skipped, relation mode', (t) => {
  const { examples, stats } = loadSeqcls(fx('seqcls/train.jsonl'));
  t.is(examples.length, 4);
  t.is(stats.skipped['empty text'], 1);
  t.regex(formatReadStats(stats), /4 examples from 5 records; skipped: 1 empty text/);
  const plain = seqclsTask.buildConfig(examples);
  t.deepEqual(plain.labels, ['CPR:3', 'CPR:9', 'false']);
  t.is(seqclsTask.numLabels(plain), 3);
  const rel = seqclsTask.buildConfig(examples, { relation: true });
  t.is(rel.negativeLabel, 'false');
  const { features } = seqclsTask.featurize(examples, tok, rel, { maxSeqLength: 8 });
  t.deepEqual(features.map((f) => f.label), [1, 2, 0, 1]);
  t.true(features.every((f) => f.inputIds.length <= 8 && f.inputIds[0] === tok.clsId));
  const batch = seqclsTask.collate(features);
  t.deepEqual(Array.from(batch.labels), [1, 2, 0, 1]);
  // predictions: c1 right, c2 predicted CPR:3 (false positive), c3 right, c5 predicted false (miss)
  const logits = new Float32Array([0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1]);
  const preds = seqclsTask.decodePredictions(examples, features, { logits }, rel);
  t.deepEqual(preds.map((p) => p.label), ['CPR:9', 'CPR:3', 'CPR:3', 'false']);
  const m = seqclsTask.score(examples, preds, rel);
  t.is(m.main, 'f1');
  // TP=2, predicted non-negative=3, gold non-negative=3
  t.true(Math.abs(m.metrics.precision! - 2 / 3) < 1e-12);
  t.true(Math.abs(m.metrics.recall! - 2 / 3) < 1e-12);
  t.is(m.metrics.accuracy, 0.5);
  t.is(seqclsTask.score(examples, preds, plain).main, 'accuracy');
  t.deepEqual(seqclsTask.predictionLine(examples[0]!, preds[0]!, rel), { id: 'c1', label: 'CPR:9', prediction: 'CPR:9' });
});

test('seqcls: unknown dev label, bad JSON and missing field are clear errors', (t) => {
  const config = seqclsTask.buildConfig(loadSeqcls(fx('seqcls/train.jsonl')).examples);
  t.throws(() => loadSeqcls(fx('seqcls/dev-unknown-label.jsonl'), config), {
    message: /dev-unknown-label\.jsonl:2: field "label": label "CPR:4" is not in the training label set \[CPR:3, CPR:9, false\]/,
  });
  t.throws(() => loadSeqcls(fx('seqcls/bad-json.jsonl')), { message: /bad-json\.jsonl:2: invalid JSON/ });
  t.throws(() => loadSeqcls(fx('seqcls/missing-field.jsonl')), { message: /missing-field\.jsonl:2: field "sentence\|text": missing/ });
  t.throws(() => resolveNegativeLabel(['yes', 'no', 'maybe']), { message: /cannot tell the negative label/ });
  t.is(resolveNegativeLabel(['DDI-advise', 'DDI-false', 'DDI-int']), 'DDI-false');
  t.throws(() => resolveNegativeLabel(['a', 'b'], 'c'), { message: /"c" is not in the label set/ });
});

test('seqcls: sentence pairs get token types and longest-first truncation', (t) => {
  const { examples } = loadSeqcls(fx('seqcls/pairs.jsonl'));
  const config = seqclsTask.buildConfig(examples);
  t.deepEqual(config.labels, ['maybe', 'no', 'yes']);
  const full = seqclsTask.featurize(examples, tok, config, { maxSeqLength: 512 });
  const f = full.features[0]!;
  const a = tok.encode(examples[0]!.text).length;
  t.is(f.inputIds[a + 1], tok.sepId);
  t.is(f.tokenTypeIds[a + 1], 0);
  t.is(f.tokenTypeIds[a + 2], 1);
  t.is(f.inputIds[f.inputIds.length - 1], tok.sepId);
  const cut = seqclsTask.featurize(examples, tok, config, { maxSeqLength: 10 });
  t.is(cut.stats.truncated['sequences truncated to --max-seq-len'], 3);
  t.true(cut.features.every((x) => x.inputIds.length === 10));
  t.deepEqual(longestFirst(10, 3, 8), [5, 3]);
  t.deepEqual(longestFirst(6, 6, 8), [4, 4]);
  t.deepEqual(longestFirst(5, 4, 8), [4, 4]); // ties remove from the second sequence, as HF does
  t.deepEqual(longestFirst(2, 3, 8), [2, 3]);
});

// ---------------------------------------------------------------- multilabel / regression / mc

test('multilabel: HoC 0/1 vectors, doc ids from id prefix, union scoring', (t) => {
  const { examples, stats } = loadMultilabel(fx('multilabel/hoc.jsonl'));
  t.is(examples.length, 3);
  t.is(stats.skipped['empty text'], 1);
  t.deepEqual(examples.map((e) => e.docId), ['1001', '1001', '1002']);
  const config = multilabelTask.buildConfig(examples);
  t.deepEqual(config.labels, ['0', '1', '2', '3']);
  const { features } = multilabelTask.featurize(examples, tok, config);
  t.deepEqual(Array.from(features[0]!.labels), [0, 0, 1, 0]);
  const batch = multilabelTask.collate(features);
  t.is(batch.labels.length, 12);
  // sentence 1001_s0 predicts label 1 (gold for 1001_s1), 1001_s1 predicts 2 (gold for s0): union is exact
  const logits = new Float32Array([-1, 2, -1, -1, -1, -1, 3, -1, -1, -1, -1, -1]);
  const preds = multilabelTask.decodePredictions(examples, features, { logits }, config);
  t.deepEqual(preds.map((p) => p.labels), [['1'], ['2'], []]);
  const m = multilabelTask.score(examples, preds, config);
  t.is(m.metrics.f1, 1);
  t.is(m.metrics.sentence_f1, 0);
  t.is(m.metrics.documents, 2);
  t.throws(() => loadMultilabel(fx('multilabel/bad-width.jsonl')), { message: /bad-width\.jsonl:2: field "label": 0\/1 vector has 2 entries, earlier lines have 3/ });
});

test('multilabel: label names and explicit doc_id', (t) => {
  const { examples } = loadMultilabel(fx('multilabel/names.jsonl'));
  const config = multilabelTask.buildConfig(examples);
  t.deepEqual(config.labels, ['avoiding immune destruction', 'resisting cell death', 'sustaining proliferative signaling']);
  t.deepEqual(examples.map((e) => e.docId), ['A', 'A', 'B']);
  const { features } = multilabelTask.featurize(examples, tok, config);
  t.deepEqual(Array.from(features[1]!.labels), [0, 1, 1]);
  t.throws(() => loadMultilabel(fx('multilabel/names.jsonl'), { type: 'multilabel', labels: ['resisting cell death'] }), {
    message: /names\.jsonl:1: field "labels": label "avoiding immune destruction" is not in the training label set/,
  });
});

test('regression: BIOSSES reader, numeric strings, Pearson scoring', (t) => {
  const { examples } = loadRegression(fx('regression/biosses.jsonl'));
  t.deepEqual(examples.map((e) => e.label), [3.8, 0.2, 4.0]);
  const config = regressionTask.buildConfig(examples);
  const { features } = regressionTask.featurize(examples, tok, config);
  t.deepEqual(Array.from(regressionTask.collate(features).labels), [Math.fround(3.8), Math.fround(0.2), 4]);
  const preds = regressionTask.decodePredictions(examples, features, { predictions: new Float32Array([3, 1, 4]) }, config);
  const m = regressionTask.score(examples, preds, config);
  t.is(m.main, 'pearson');
  t.true(m.metrics.pearson! > 0.9 && m.metrics.pearson! <= 1);
  const flat = regressionTask.score(examples, [2, 2, 2], config);
  t.is(flat.metrics.pearson, 0);
  t.is(Object.keys(flat.notes).length, 1);
  t.throws(() => loadRegression(fx('regression/bad.jsonl')), { message: /bad\.jsonl:2: field "label": expected a finite number, got string "high"/ });
});

test('mc: MedQA reader, 4 sequences per example, run_swag pairing, accuracy', (t) => {
  const { examples } = loadMc(fx('mc/medqa.jsonl'));
  const config = mcTask.buildConfig(examples);
  t.is(config.numChoices, 4);
  const { features } = mcTask.featurize(examples, tok, config, { maxSeqLength: 64 });
  const f = features[0]!;
  t.is(f.choices.length, 4);
  const a = tok.encode(examples[0]!.context);
  const b = tok.encode(`${examples[0]!.question} ${examples[0]!.endings[2]}`);
  t.deepEqual(Array.from(f.choices[2]!.inputIds), [tok.clsId, ...a, tok.sepId, ...b, tok.sepId]);
  const batch = mcTask.collate(features);
  t.is(batch.batchSize, 8);
  t.is(batch.examples, 2);
  t.is(batch.inputIds.length, 8 * batch.seqLen);
  t.deepEqual(Array.from(batch.labels), [0, 1]);
  const preds = mcTask.decodePredictions(examples, features, { scores: new Float32Array([5, 1, 0, 0, 3, 1, 0, 0]) }, config);
  t.deepEqual(preds.map((p) => p.choice), [0, 0]);
  t.is(mcTask.score(examples, preds, config).metrics.accuracy, 0.5);
  t.throws(() => loadMc(fx('mc/bad-label.jsonl')), { message: /bad-label\.jsonl:1: field "label": label 4 is not a choice index in \[0, 3\]/ });
  t.throws(() => loadMc(fx('mc/bad-endings.jsonl')), { message: /bad-endings\.jsonl:2: field "ending3": this line has 3 endings, expected 4/ });
});

// ---------------------------------------------------------------- NER

test('ner: CoNLL reader (DOCSTART, tab and unambiguous space lines) and errors', (t) => {
  const { examples, stats } = loadConll(fx('ner/train.tsv'));
  t.is(stats.skipped['-DOCSTART- lines'], 1);
  t.deepEqual(examples.map((e) => e.tokens.length), [7, 3, 2]);
  t.deepEqual(examples[2]!.tokens, ['Familial adenomatous', 'polyposis']);
  t.is(examples[1]!.src.line, 12);
  const ds = loadConll(fx('ner/docstart-spaces.txt'));
  t.is(ds.stats.skipped['-DOCSTART- lines'], 1);
  t.deepEqual(ds.examples[0]!.tags, ['B-ORG', 'O']);
  t.throws(() => loadConll(fx('ner/bad-ambiguous.tsv')), { message: /bad-ambiguous\.tsv:4: .*exactly 2 fields, got 3/ });
  t.throws(() => loadConll(fx('ner/bad-tag.tsv')), { message: /bad-tag\.tsv:3: field "tag": tag "X-Disease" is not O or B-\/I-\/E-\/S-<type>/ });
  const config = nerTask.buildConfig(examples);
  t.deepEqual(config.labels, ['B-Disease', 'I-Disease', 'O']);
  t.throws(() => loadConll(fx('ner/bad-tag.tsv'), config), { message: /bad-tag\.tsv:2: field "tag": tag "B-Disese" is not in the training label set/ });
  const j = loadNer(fx('ner/train.jsonl'));
  t.is(j.examples.length, 2);
  t.is(j.stats.skipped['empty sentences'], 1);
  t.throws(() => loadNer(fx('ner/bad-int.jsonl')), { message: /bad-int\.jsonl:1: field "ner_tags\[0\]": expected a tag string/ });
});

test('ner: label on the first subword, -100 elsewhere; decode round trip', (t) => {
  const { examples } = loadConll(fx('ner/train.tsv'));
  const config = nerTask.buildConfig(examples);
  const ids = new Map(config.labels.map((l, i) => [l, i]));
  const { features, stats } = nerTask.featurize(examples, tok, config, { maxSeqLength: 128 });
  t.deepEqual(stats.truncated, {});
  let multiPiece = 0;
  features.forEach((f, i) => {
    const e = examples[i]!;
    t.is(f.labels[0], IGNORE_INDEX);
    t.is(f.labels[f.labels.length - 1], IGNORE_INDEX);
    for (let w = 0; w < e.tokens.length; w++) {
      const pos = [...f.wordIds.keys()].filter((p) => f.wordIds[p] === w);
      t.true(pos.length >= 1);
      if (pos.length > 1) multiPiece++;
      t.is(f.labels[pos[0]!], ids.get(e.tags[w]!)!);
      for (const p of pos.slice(1)) t.is(f.labels[p], IGNORE_INDEX);
    }
  });
  t.true(multiPiece >= 3, 'fixture words split into several subwords');
  const T = 40;
  const batch = nerTask.collate(features, T);
  t.is(batch.labels.length, features.length * T);
  t.is(batch.labels[features[0]!.inputIds.length], IGNORE_INDEX); // padding
  t.is(batch.attentionMask[features[0]!.inputIds.length], 0);
  // logits: gold label on every position (sub-word positions get the word's label too)
  const C = config.labels.length;
  const logits = new Float32Array(features.length * T * C);
  features.forEach((f, i) => {
    for (let p = 0; p < f.inputIds.length; p++) {
      const w = f.wordIds[p]!;
      if (w >= 0) logits[(i * T + p) * C + ids.get(examples[i]!.tags[w]!)!] = 1;
    }
  });
  const preds = nerTask.decodePredictions(examples, features, { logits, seqLen: T }, config);
  t.deepEqual(preds.map((p) => p.tags), examples.map((e) => e.tags));
  const m = nerTask.score(examples, preds, config);
  t.is(m.metrics.f1, 1);
  t.regex(m.report!, /Disease/);
  t.deepEqual(nerTask.predictionLine(examples[1]!, preds[1]!, config), {
    tokens: ['Ovarian', 'cancer', 'risk'],
    labels: ['B-Disease', 'I-Disease', 'O'],
    predictions: ['B-Disease', 'I-Disease', 'O'],
  });
});

test('ner: truncated words are predicted O, counted, and scored against full gold', (t) => {
  const { examples } = loadConll(fx('ner/train.tsv'));
  const config = nerTask.buildConfig(examples);
  // budget 10 pieces: br ##c ##a ##1 mut ##ations cause he ##re ##d | ##it ##ary breast cancer . (cut)
  const { features, stats } = nerTask.featurize(examples, tok, config, { maxSeqLength: 12 });
  t.true(stats.truncated['sentences truncated to --max-seq-len']! >= 1);
  const lost = stats.truncated['words without a subword in the sequence (predicted O)']!;
  t.true(lost >= 1);
  const C = config.labels.length;
  const T = 12;
  const ids = new Map(config.labels.map((l, i) => [l, i]));
  const logits = new Float32Array(features.length * T * C);
  features.forEach((f, i) => {
    for (let p = 0; p < f.inputIds.length; p++) {
      const w = f.wordIds[p]!;
      if (w >= 0) logits[(i * T + p) * C + ids.get(examples[i]!.tags[w]!)!] = 1;
    }
  });
  const preds = nerTask.decodePredictions(examples, features, { logits, seqLen: T }, config);
  t.is(preds.reduce((s, p) => s + p.uncoveredWords, 0), lost);
  // "hereditary breast cancer" is cut after "hereditary": predicted entity is shorter than gold
  t.deepEqual(preds[0]!.tags.slice(3), ['B-Disease', 'O', 'O', 'O']);
  const m = nerTask.score(examples, preds, config);
  t.true(m.metrics.f1! < 1);
  t.is(m.notes['words predicted O (truncated or no subword)'], lost);
});

test('task config round trip and validation; PaddedRows re-pads dynamic batches', (t) => {
  const config = seqclsTask.buildConfig(loadSeqcls(fx('seqcls/train.jsonl')).examples, { relation: true });
  t.deepEqual(parseTaskConfig(JSON.parse(JSON.stringify(config)), 'cfg.json'), config);
  t.throws(() => parseTaskConfig({ type: 'seqcls', labels: ['a', 'b'], relation: true }, 'cfg.json'), { message: /cfg\.json: field "negativeLabel": required/ });
  t.throws(() => parseTaskConfig({ type: 'tagging', labels: [] }, 'cfg.json'), { message: /field "type"/ });
  t.throws(() => parseTaskConfig({ type: 'mc', labels: [] }, 'cfg.json'), { message: /field "numChoices": required for mc/ });
  const rows = new PaddedRows(2);
  rows.add([1, 2, 3, 4], 1, 2); // 1 row, T=2, 2 per token
  rows.add([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 2, 3);
  const { values, seqLen } = rows.finish();
  t.is(seqLen, 3);
  t.is(rows.count, 3);
  t.deepEqual(Array.from(values), [1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  t.throws(() => rows.add([1], 1, 2), { message: /1 values for 1 rows/ });
});

test('registry', (t) => {
  t.is(getTask('ner'), nerTask);
  t.is(getTask('qa').headKind, 'span');
  t.throws(() => getTask('nope'), { message: /unknown task type "nope"/ });
  const c: TaskConfig = { type: 'ner', labels: ['O'] };
  t.is(nerTask.numLabels(c), 1);
});

// ---------------------------------------------------------------- real data

test('ner: NCBI-disease devel gold vs itself scores 1.0 (seqeval) through featurize/decode', (t) => {
  const file = path.join(sharedData, 'ner/ncbi-disease/devel.tsv');
  if (!fs.existsSync(file)) {
    t.log(`skipped: ${file} not found`);
    t.pass();
    return;
  }
  const { examples, stats } = loadConll(file);
  t.true(examples.length > 900, `${examples.length} sentences`);
  t.deepEqual(stats.skipped, {});
  const gold = examples.map((e) => e.tags);
  const self = seqevalEvaluate(gold, gold);
  t.is(self.f1, 1);
  t.true(self.goldEntities > 700);
  const config = nerTask.buildConfig(examples);
  t.deepEqual(config.labels, ['B-Disease', 'I-Disease', 'O']);
  const { features } = nerTask.featurize(examples, tok, config, { maxSeqLength: 512 });
  const T = Math.max(...features.map((f) => f.inputIds.length));
  const C = config.labels.length;
  const ids = new Map(config.labels.map((l, i) => [l, i]));
  const logits = new Float32Array(features.length * T * C);
  features.forEach((f, i) => {
    for (let p = 0; p < f.inputIds.length; p++) {
      const w = f.wordIds[p]!;
      if (w >= 0) logits[(i * T + p) * C + ids.get(examples[i]!.tags[w]!)!] = 1;
    }
  });
  const preds = nerTask.decodePredictions(examples, features, { logits, seqLen: T }, config);
  const m = nerTask.score(examples, preds, config);
  t.is(m.metrics.f1, 1);
  t.is(m.metrics.accuracy, 1);
});

test('qa: answer_start mismatches name the first 3 examples with their line', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-qa-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'mism.jsonl');
  const row = (id: string, start: number) => JSON.stringify({ id, question: 'what', context: 'alpha beta gamma', answers: [{ text: 'beta', answer_start: start }] });
  fs.writeFileSync(f, [row('ok', 6), row('b1', 0), row('b2', 1), row('ok2', 6), row('b3', 2), row('b4', 3)].join('\n') + '\n');
  const { stats } = loadQa(f);
  t.deepEqual(stats.notes, {
    'answer_start does not match the answer text (answers)': 4,
    'examples whose first answer mismatches (skipped for training, still evaluated)': 4,
  });
  t.regex(formatReadStats(stats), /\(answer_start does not match the answer text \(answers\): in "b1" at line 2, "b2" at line 3, "b3" at line 5, …\)/);
});

test('ids given in a file must be unique: every JSONL task names the duplicate and its first line', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-ids-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, rows: object[]): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return f;
  };
  const cases: [string, (f: string) => unknown, object][] = [
    ['seqcls', loadSeqcls, { sentence: 'a b', label: 'x' }],
    ['regression', loadRegression, { sentence1: 'a', sentence2: 'b', label: 1 }],
    ['mc', loadMc, { sent1: 'a', sent2: 'b', ending0: 'c', ending1: 'd', label: 0 }],
    ['ner', loadNer, { tokens: ['a'], ner_tags: ['O'] }],
    ['multilabel', loadMultilabel, { sentence: 'a', label: [0, 1] }],
  ];
  for (const [name, load, row] of cases) {
    const f = write(`${name}.jsonl`, [{ id: 7, ...row }, { id: 'u', ...row }, { id: '7', ...row }]);
    t.throws(() => load(f), { message: new RegExp(`${name}\\.jsonl:3.*id.*duplicate id "7" \\(first at line 1\\)`) }, name);
    // without ids, examples are numbered and nothing is checked
    t.notThrows(() => load(write(`${name}-noid.jsonl`, [row, row])), name);
  }
});
