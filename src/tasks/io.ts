// Low-level readers shared by the task loaders: JSONL with line numbers, and typed field accessors
// whose errors name file, line and field.
import { readFileSync } from 'node:fs';
import { TaskDataError, type ReadStats, bump } from './types.js';

export type JsonRecord = Record<string, unknown>;

export function readText(file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text; // tolerate a UTF-8 BOM
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
}

export function newStats(file: string): ReadStats {
  return { file, records: 0, examples: 0, skipped: {}, notes: {} };
}

/** One JSON object per line; blank lines are skipped and counted. */
export function* jsonLines(file: string, stats: ReadStats): Generator<{ rec: JsonRecord; line: number }> {
  const lines = readText(file).split(/\r?\n/);
  // a trailing newline leaves one empty last element: not a record
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    stats.records++;
    if (raw.trim() === '') {
      bump(stats.skipped, 'blank lines');
      continue;
    }
    let rec: unknown;
    try {
      rec = JSON.parse(raw);
    } catch (e) {
      throw new TaskDataError(file, i + 1, undefined, `invalid JSON (expected one object per line): ${(e as Error).message}`);
    }
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      throw new TaskDataError(file, i + 1, undefined, `expected a JSON object, got ${Array.isArray(rec) ? 'an array' : typeof rec}`);
    }
    yield { rec: rec as JsonRecord, line: i + 1 };
  }
}

/** An id the file gives must be unique in it (predictions are written per id); undefined when there is none. */
export function uniqueId(f: Fields, seen: Map<string, number>, field = 'id'): string | undefined {
  const id = f.idLike(field);
  if (id === undefined) return undefined;
  const first = seen.get(id);
  if (first !== undefined) throw f.err(field, `duplicate id ${JSON.stringify(id)} (first at ${f.lineWord} ${first})`);
  seen.set(id, f.line);
  return id;
}

export class Fields {
  constructor(
    readonly rec: JsonRecord,
    readonly file: string,
    readonly line: number,
    readonly lineWord = 'line',
  ) {}

  err(field: string | undefined, detail: string): TaskDataError {
    return new TaskDataError(this.file, this.line, field, detail, this.lineWord);
  }

  has(field: string): boolean {
    return this.rec[field] !== undefined && this.rec[field] !== null;
  }

  /** First present field among `names`. */
  pick(...names: string[]): string | undefined {
    return names.find((n) => this.has(n));
  }

  str(field: string): string {
    const v = this.rec[field];
    if (v === undefined || v === null) throw this.err(field, 'missing');
    if (typeof v !== 'string') throw this.err(field, `expected a string, got ${describe(v)}`);
    return v;
  }

  optStr(field: string): string | undefined {
    return this.has(field) ? this.str(field) : undefined;
  }

  /** String, or a number rendered as a string (ids are often numeric). */
  idLike(field: string): string | undefined {
    if (!this.has(field)) return undefined;
    const v = this.rec[field];
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    throw this.err(field, `expected a string or number id, got ${describe(v)}`);
  }

  num(field: string): number {
    const v = this.rec[field];
    if (v === undefined || v === null) throw this.err(field, 'missing');
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    throw this.err(field, `expected a finite number, got ${describe(v)}`);
  }

  int(field: string): number {
    const v = this.num(field);
    if (!Number.isInteger(v)) throw this.err(field, `expected an integer, got ${v}`);
    return v;
  }

  array(field: string): unknown[] {
    const v = this.rec[field];
    if (v === undefined || v === null) throw this.err(field, 'missing');
    if (!Array.isArray(v)) throw this.err(field, `expected an array, got ${describe(v)}`);
    return v;
  }

  strArray(field: string): string[] {
    const a = this.array(field);
    a.forEach((x, i) => {
      if (typeof x !== 'string') throw this.err(`${field}[${i}]`, `expected a string, got ${describe(x)}`);
    });
    return a as string[];
  }

  /** A class label: strings as-is, finite numbers rendered with String() (1 → "1"). */
  label(field: string): string {
    const v = this.rec[field];
    if (v === undefined || v === null) throw this.err(field, 'missing');
    if (typeof v === 'string') return v;
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    if (typeof v === 'boolean') return String(v);
    throw this.err(field, `expected a string or number label, got ${describe(v)}`);
  }
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/**
 * Sorted label list, as LinkBERT run_seqcls.py does (`label_list.sort()`): numerically when every label
 * is a number (so "10" sorts after "2"), otherwise by code point.
 */
export function sortLabels(labels: Iterable<string>): string[] {
  const u = [...new Set(labels)];
  const numeric = u.length > 0 && u.every((l) => l.trim() !== '' && Number.isFinite(Number(l)));
  return numeric ? u.sort((a, b) => Number(a) - Number(b)) : u.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
