import test from 'ava';
import {
  normalizeAnswer,
  exactMatchScore,
  f1Score,
  squadEvaluate,
  getEntities,
  seqevalEvaluate,
  accuracy,
  macroF1,
  relationPRF1,
  multilabelMicroPRF1,
  hocEvaluate,
  hocDocKey,
  pearson,
  pearsonReport,
  meanSquaredError,
} from '../src/tasks/metrics/index.js';

const close = (t: any, a: number, b: number, eps = 1e-12) => t.true(Math.abs(a - b) <= eps, `${a} != ${b}`);

// ---------- SQuAD v1.1 ----------

test('squad normalize: lower, punctuation, articles, whitespace', (t) => {
  t.is(normalizeAnswer('The  Cat!'), 'cat');
  t.is(normalizeAnswer('an apple a day'), 'apple day');
  t.is(normalizeAnswer('U.S.A.'), 'usa');
  t.is(normalizeAnswer("  rock 'n' roll\t"), 'rock n roll');
});

test('squad normalize: articles only as whole words', (t) => {
  t.is(normalizeAnswer('theatre another anthem'), 'theatre another anthem');
  t.is(normalizeAnswer('A-the-an'), 'athean'); // punctuation removed first → one word, no article
  t.is(normalizeAnswer('the_a'), 'thea'); // '_' is punctuation, removed before article matching
});

test('squad normalize: unicode word characters are word characters (Python re semantics)', (t) => {
  // In Python, é is \w, so 'the' inside 'éthe' is not a whole word; JS's ASCII \b would remove it.
  t.is(normalizeAnswer('éthe'), 'éthe');
  t.is(normalizeAnswer('the café'), 'café');
  t.is(normalizeAnswer('theβ the'), 'theβ');
  t.is(normalizeAnswer('2the'), '2the');
});

test('squad normalize: only ASCII punctuation, Python whitespace', (t) => {
  // string.punctuation is ASCII only: curly quotes and en dash survive.
  t.is(normalizeAnswer('“Quoted” – dash'), '“quoted” – dash');
  // NBSP is whitespace for str.split(); U+FEFF is not.
  t.is(normalizeAnswer('a\u00a0b\ufeff'), 'b\ufeff');
  t.is(normalizeAnswer('x\x1cy'), 'x y');
});

test('squad EM/F1 token bags', (t) => {
  t.is(exactMatchScore('The Cat', 'cat.'), 1);
  t.is(exactMatchScore('cat', 'cats'), 0);
  close(t, f1Score('the cat sat', 'a cat sat down'), 0.8);
  // Counter intersection: x:min(2,1)+y:min(1,2) = 2 of 3 each side
  close(t, f1Score('x x y', 'x y y'), 2 / 3);
  t.is(f1Score('dog', 'cat'), 0);
  // both normalise to empty: v1.1 gives F1 0 (no shared tokens) but EM 1
  t.is(f1Score('the', 'a'), 0);
  t.is(exactMatchScore('the', 'a'), 1);
  t.is(f1Score('', ''), 0);
});

test('squad corpus: max over gold answers, unanswered count as 0', (t) => {
  const gold = [
    { id: 'q1', answers: ['Denver Broncos', 'the Broncos'] },
    { id: 'q2', answers: ['Santa Clara'] },
    { id: 'q3', answers: ['1990'] },
  ];
  const r = squadEvaluate(gold, { q1: 'Broncos', q2: 'Santa Clara, California' });
  // q1: EM 1 via 'the Broncos'; q2: F1 = 2*(2/3*1)/(2/3+1) = 0.8; q3: missing → 0
  close(t, r.exactMatch, 100 / 3);
  close(t, r.f1, (100 * (1 + 0.8)) / 3);
  t.is(r.unanswered, 1);
  t.is(r.total, 3);
  const empty = squadEvaluate([], new Map());
  t.is(empty.f1, 0);
  t.is(empty.exactMatch, 0);
  t.throws(() => squadEvaluate([{ id: 'x', answers: [] }], { x: 'y' }), { message: /no gold answers/ });
});

// ---------- seqeval (default mode) ----------

const ents = (s: any) => getEntities(s).map((e) => `${e.type}:${e.start}-${e.end}`);

test('seqeval get_entities: IOB2 basics', (t) => {
  t.deepEqual(ents(['B-PER', 'I-PER', 'O', 'B-LOC']), ['PER:0-1', 'LOC:3-3']);
  t.deepEqual(ents(['B-X', 'B-X']), ['X:0-0', 'X:1-1']);
  t.deepEqual(ents(['O', 'O']), []);
  t.deepEqual(ents([]), []);
});

test('seqeval get_entities: I- after O starts an entity (lenient default mode)', (t) => {
  t.deepEqual(ents(['O', 'I-PER', 'I-PER', 'O']), ['PER:1-2']);
  t.deepEqual(ents(['I-Disease']), ['Disease:0-0']);
});

test('seqeval get_entities: type change mid-span splits the entity', (t) => {
  t.deepEqual(ents(['B-PER', 'I-LOC', 'I-LOC']), ['PER:0-0', 'LOC:1-2']);
  t.deepEqual(ents(['B-PER', 'I-PER', 'I-LOC', 'O']), ['PER:0-1', 'LOC:2-2']);
});

test('seqeval get_entities: IOBES S-/E- handling', (t) => {
  t.deepEqual(ents(['S-PER', 'B-LOC', 'I-LOC', 'E-LOC', 'O', 'E-PER']), ['PER:0-0', 'LOC:1-3', 'PER:5-5']);
  // E- closes; a following I- of the same type starts a new entity
  t.deepEqual(ents(['B-X', 'E-X', 'I-X']), ['X:0-1', 'X:2-2']);
  // S- followed by E-
  t.deepEqual(ents(['S-X', 'E-X']), ['X:0-0', 'X:1-1']);
});

test('seqeval get_entities: sentences are separated by an O, entities never cross', (t) => {
  t.deepEqual(ents([['B-X', 'I-X'], ['I-X']]), ['X:0-1', 'X:3-3']);
});

test('seqeval micro/macro/per-type', (t) => {
  const gold = [['B-PER', 'I-PER', 'O', 'B-LOC']];
  const pred = [['B-PER', 'I-PER', 'O', 'B-PER']];
  const r = seqevalEvaluate(gold, pred);
  close(t, r.precision, 0.5);
  close(t, r.recall, 0.5);
  close(t, r.f1, 0.5);
  close(t, r.perType.PER!.precision, 0.5);
  close(t, r.perType.PER!.recall, 1);
  close(t, r.perType.PER!.f1, 2 / 3);
  t.is(r.perType.LOC!.f1, 0);
  t.is(r.perType.LOC!.support, 1);
  close(t, r.macroF1, 1 / 3);
  close(t, r.accuracy, 0.75);
});

test('seqeval: boundary errors are errors (exact span match)', (t) => {
  const r = seqevalEvaluate([['B-D', 'I-D', 'I-D']], [['B-D', 'I-D', 'O']]);
  t.is(r.f1, 0);
  t.is(r.goldEntities, 1);
  t.is(r.predictedEntities, 1);
});

test('seqeval: empty predictions give 0, not NaN', (t) => {
  const r = seqevalEvaluate([['B-D', 'O']], [['O', 'O']]);
  t.is(r.precision, 0);
  t.is(r.recall, 0);
  t.is(r.f1, 0);
  t.is(r.macroF1, 0);
  const e = seqevalEvaluate([], []);
  t.is(e.f1, 0);
  t.is(e.accuracy, 0);
  t.throws(() => seqevalEvaluate([['O']], [['O', 'O']]), { message: /sentence 0/ });
});

// ---------- classification ----------

test('accuracy and macro-F1', (t) => {
  close(t, accuracy([0, 1, 2, 2], [0, 2, 2, 2]), 0.75);
  t.is(accuracy([], []), 0);
  // class0: P1 R.5 F2/3; class1: P2/3 R1 F.8
  close(t, macroF1([0, 0, 1, 1], [0, 1, 1, 1]), (2 / 3 + 0.8) / 2);
  // a class seen only in predictions counts with F1 0 (sklearn unique_labels)
  close(t, macroF1([0, 0], [0, 1]), 1 / 3);
  t.throws(() => accuracy([1], [1, 2]), { message: /1 gold labels but 2 predictions/ });
});

test('relation P/R/F1 ignores the negative class', (t) => {
  // negative = 2. Correct negatives (index 0) never count as TP.
  const r = relationPRF1([2, 0, 1, 2, 0], [2, 0, 0, 1, 2], 2);
  close(t, r.precision, 1 / 3);
  close(t, r.recall, 1 / 3);
  close(t, r.f1, 1 / 3);
  // all-negative predictions: P 0 (no predictions), R 0, F1 0, never NaN
  const z = relationPRF1([1, 0, 2], [2, 2, 2], 2);
  t.deepEqual(z, { precision: 0, recall: 0, f1: 0 });
  // plain accuracy would reward the negatives; relation F1 does not
  const n = relationPRF1([2, 2, 2, 1], [2, 2, 2, 0], 2);
  t.is(n.f1, 0);
  t.is(accuracy([2, 2, 2, 1], [2, 2, 2, 0]), 0.75);
});

test('multi-label micro F1 and HoC union aggregation per abstract', (t) => {
  const m = multilabelMicroPRF1([[1, 0, 1], [0, 1, 0]], [[1, 1, 0], [0, 1, 0]]);
  close(t, m.precision, 2 / 3);
  close(t, m.recall, 2 / 3);
  t.is(hocDocKey('12345_s3'), '12345');
  t.is(hocDocKey('plain'), 'plain');
  // Sentence-level the label is right in neither sentence; after the union per abstract it is a TP.
  const gold = [[0, 1, 0], [0, 0, 0], [0, 0, 0]];
  const pred = [[0, 0, 0], [0, 1, 0], [0, 0, 1]];
  const sent = multilabelMicroPRF1(gold, pred);
  t.is(sent.f1, 0);
  const doc = hocEvaluate(gold, pred, ['d1', 'd1', 'd2']);
  t.is(doc.documents, 2);
  close(t, doc.precision, 0.5); // d1 {1} correct, d2 {2} spurious
  close(t, doc.recall, 1);
  close(t, doc.f1, 2 / 3);
  t.deepEqual(hocEvaluate([], [], []), { precision: 0, recall: 0, f1: 0, documents: 0 });
});

// ---------- regression ----------

test('pearson on known values', (t) => {
  // dx=[-2,-1,0,1,2], dy=[-2,0,1,0,1]: sxy=6, sxx=10, syy=6 → 6/sqrt(60)
  close(t, pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]), 6 / Math.sqrt(60));
  close(t, pearson([1, 2, 3], [3, 2, 1]), -1);
  close(t, pearson([1, 2, 3], [10, 20, 30]), 1);
  t.true(Number.isNaN(pearson([1, 1, 1], [1, 2, 3])));
  t.true(Number.isNaN(pearson([1], [1])));
  t.deepEqual(pearsonReport([1, 1], [0, 1]), { pearson: 0, undefined: true });
  close(t, meanSquaredError([1, 2], [2, 4]), 2.5);
});
