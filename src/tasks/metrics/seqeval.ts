// Entity-level metrics equal to seqeval's DEFAULT mode (no `scheme`/`mode='strict'`), i.e.
// seqeval.metrics.sequence_labeling.get_entities with its end_of_chunk / start_of_chunk rules
// (conlleval-compatible, lenient): an I-/E- tag after O, or after a tag of another type, starts an
// entity; a type change always closes the running entity. Works for IOB1, IOB2, IOE and IOBES input.

export interface Entity {
  type: string;
  start: number; // inclusive, index in the flattened sequence
  end: number; // inclusive
}

interface Split {
  tag: string;
  type: string;
}

// seqeval (suffix=False): tag = chunk[0]; type = chunk[1:].split('-', maxsplit=1)[-1] or '_'.
function splitTag(chunk: string): Split {
  const tag = chunk.length > 0 ? chunk[0]! : '';
  const rest = chunk.slice(1);
  const dash = rest.indexOf('-');
  const type = (dash >= 0 ? rest.slice(dash + 1) : rest) || '_';
  return { tag, type };
}

// seqeval end_of_chunk(prev_tag, tag, prev_type, type_)
function endOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (prevTag === 'E' || prevTag === 'S') return true;
  if (prevTag === 'B' && (tag === 'B' || tag === 'S' || tag === 'O')) return true;
  if (prevTag === 'I' && (tag === 'B' || tag === 'S' || tag === 'O')) return true;
  if (prevTag !== 'O' && prevTag !== '.' && prevType !== type) return true;
  return false;
}

// seqeval start_of_chunk(prev_tag, tag, prev_type, type_)
function startOfChunk(prevTag: string, tag: string, prevType: string, type: string): boolean {
  if (tag === 'B' || tag === 'S') return true;
  if ((prevTag === 'E' || prevTag === 'S' || prevTag === 'O') && (tag === 'E' || tag === 'I')) return true;
  if (tag !== 'O' && tag !== '.' && prevType !== type) return true;
  return false;
}

/**
 * seqeval get_entities. A list of sentences is flattened with an 'O' appended after each sentence
 * (exactly what seqeval does), so offsets index the flattened sequence and entities never cross sentences.
 */
export function getEntities(seq: readonly string[] | readonly (readonly string[])[]): Entity[] {
  const flat: string[] = [];
  if (seq.length > 0 && Array.isArray(seq[0])) {
    for (const s of seq as readonly (readonly string[])[]) flat.push(...s, 'O');
  } else {
    flat.push(...(seq as readonly string[]));
  }
  flat.push('O'); // sentinel that closes a trailing entity
  const out: Entity[] = [];
  let prevTag = 'O';
  let prevType = '';
  let begin = 0;
  for (let i = 0; i < flat.length; i++) {
    const { tag, type } = splitTag(flat[i]!);
    if (endOfChunk(prevTag, tag, prevType, type)) out.push({ type: prevType, start: begin, end: i - 1 });
    if (startOfChunk(prevTag, tag, prevType, type)) begin = i;
    prevTag = tag;
    prevType = type;
  }
  return out;
}

export interface PRF {
  precision: number;
  recall: number;
  f1: number;
  /** number of gold entities ("support") */
  support: number;
  /** number of predicted entities */
  predicted: number;
  truePositives: number;
}

export interface SeqevalResult {
  /** micro-averaged over all entities (seqeval f1_score default average='micro') */
  precision: number;
  recall: number;
  f1: number;
  /** unweighted mean over entity types present in gold ∪ predictions (LinkBERT run_ner --return_macro_metrics, used for PICO) */
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  /** token-level accuracy over all tags (seqeval accuracy_score, reported as overall_accuracy by HF) */
  accuracy: number;
  perType: Record<string, PRF>;
  goldEntities: number;
  predictedEntities: number;
}

// sklearn/seqeval _prf_divide with zero_division='warn' behaves as 0: never NaN.
const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);

function prf(tp: number, nPred: number, nGold: number): PRF {
  const precision = div(tp, nPred);
  const recall = div(tp, nGold);
  const f1 = div(2 * precision * recall, precision + recall);
  return { precision, recall, f1, support: nGold, predicted: nPred, truePositives: tp };
}

const key = (e: Entity): string => `${e.type}\u0000${e.start}\u0000${e.end}`;

/** Entity-level evaluation of sentence-aligned gold/predicted tag sequences (seqeval default mode). */
export function seqevalEvaluate(
  gold: readonly (readonly string[])[],
  pred: readonly (readonly string[])[],
): SeqevalResult {
  if (gold.length !== pred.length) {
    throw new Error(`seqeval: ${gold.length} gold sentences but ${pred.length} predicted sentences`);
  }
  let tokens = 0;
  let correctTokens = 0;
  for (let i = 0; i < gold.length; i++) {
    const g = gold[i]!;
    const p = pred[i]!;
    if (g.length !== p.length) {
      throw new Error(`seqeval: sentence ${i} has ${g.length} gold tags but ${p.length} predicted tags`);
    }
    for (let j = 0; j < g.length; j++) if (g[j] === p[j]) correctTokens++;
    tokens += g.length;
  }
  const goldEnts = gold.length ? getEntities(gold) : [];
  const predEnts = pred.length ? getEntities(pred) : [];
  const goldSet = new Set(goldEnts.map(key));
  const counts = new Map<string, { tp: number; pred: number; gold: number }>();
  const bucket = (t: string) => {
    let c = counts.get(t);
    if (!c) counts.set(t, (c = { tp: 0, pred: 0, gold: 0 }));
    return c;
  };
  for (const e of goldEnts) bucket(e.type).gold++;
  let tp = 0;
  for (const e of predEnts) {
    const c = bucket(e.type);
    c.pred++;
    if (goldSet.has(key(e))) {
      c.tp++;
      tp++;
    }
  }
  const perType: Record<string, PRF> = {};
  const types = [...counts.keys()].sort();
  let sp = 0;
  let sr = 0;
  let sf = 0;
  for (const t of types) {
    const c = counts.get(t)!;
    const r = prf(c.tp, c.pred, c.gold);
    perType[t] = r;
    sp += r.precision;
    sr += r.recall;
    sf += r.f1;
  }
  const micro = prf(tp, predEnts.length, goldEnts.length);
  return {
    precision: micro.precision,
    recall: micro.recall,
    f1: micro.f1,
    macroPrecision: div(sp, types.length),
    macroRecall: div(sr, types.length),
    macroF1: div(sf, types.length),
    accuracy: div(correctTokens, tokens),
    perType,
    goldEntities: goldEnts.length,
    predictedEntities: predEnts.length,
  };
}

/** A seqeval-style text report (per type, then micro and macro averages). */
export function formatSeqevalReport(r: SeqevalResult): string {
  const rows: string[] = [];
  const names = Object.keys(r.perType);
  const w = Math.max(12, ...names.map((n) => n.length));
  const f = (x: number) => x.toFixed(4).padStart(9);
  rows.push(`${''.padEnd(w)} precision    recall        f1   support`);
  for (const n of names) {
    const p = r.perType[n]!;
    rows.push(`${n.padEnd(w)} ${f(p.precision)} ${f(p.recall)} ${f(p.f1)} ${String(p.support).padStart(9)}`);
  }
  rows.push(`${'micro avg'.padEnd(w)} ${f(r.precision)} ${f(r.recall)} ${f(r.f1)} ${String(r.goldEntities).padStart(9)}`);
  rows.push(`${'macro avg'.padEnd(w)} ${f(r.macroPrecision)} ${f(r.macroRecall)} ${f(r.macroF1)} ${String(r.goldEntities).padStart(9)}`);
  return rows.join('\n');
}
