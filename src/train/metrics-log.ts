// metrics-log.ts: reading RUN/metrics.jsonl. Each line is appended whole, so only the last one can be cut
// short (a crash or a full disk mid-write): callers drop or skip it and say so; any other bad line is an
// error naming the file and line.
import { readFileSync } from 'node:fs';

export type MetricsRecord = Record<string, unknown> & { step: number; split?: string };

export interface MetricsLog {
  /** the records of the complete lines, in file order */
  records: MetricsRecord[];
  /** the text of each record's line (no newline), parallel to records */
  lines: string[];
  /** an unterminated last line that is not a whole record: its byte offset and length; null if none */
  torn: { offset: number; bytes: number } | null;
}

export function readMetricsLog(path: string): MetricsLog {
  const buf = readFileSync(path);
  const end = buf.lastIndexOf(0x0a) + 1; // bytes up to and including the last newline
  const body = buf.subarray(0, end).toString('utf8').split('\n');
  body.pop(); // the '' after the last newline
  let torn: MetricsLog['torn'] = null;
  if (end < buf.length) {
    // a last line that only lacks its newline (edited by hand) is still a record
    const tail = buf.subarray(end).toString('utf8');
    if (typeof parseRecord(tail) !== 'string') body.push(tail);
    else if (tail.trim()) torn = { offset: end, bytes: buf.length - end };
  }
  const records: MetricsRecord[] = [], lines: string[] = [];
  body.forEach((line, i) => {
    if (!line.trim()) return;
    const r = parseRecord(line);
    if (typeof r === 'string') throw new Error(`${path}: line ${i + 1}: ${r}`);
    records.push(r);
    lines.push(line);
  });
  return { records, lines, torn };
}

/** A line's record, or what is wrong with it. */
function parseRecord(s: string): MetricsRecord | string {
  let r: unknown;
  try {
    r = JSON.parse(s);
  } catch (e) {
    return `not valid JSON (${(e as Error).message})`;
  }
  if (!r || typeof r !== 'object' || typeof (r as MetricsRecord).step !== 'number') return 'field "step" is missing or not a number';
  return r as MetricsRecord;
}
