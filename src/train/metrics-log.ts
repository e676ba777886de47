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
    if (parseRecord(tail)) body.push(tail);
    else if (tail.trim()) torn = { offset: end, bytes: buf.length - end };
  }
  const records: MetricsRecord[] = [], lines: string[] = [];
  body.forEach((line, i) => {
    if (!line.trim()) return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch (e) {
      throw new Error(`${path}: line ${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    if (!r || typeof r !== 'object' || typeof (r as MetricsRecord).step !== 'number')
      throw new Error(`${path}: line ${i + 1}: field "step" is missing or not a number`);
    records.push(r as MetricsRecord);
    lines.push(line);
  });
  return { records, lines, torn };
}

function parseRecord(s: string): boolean {
  try {
    const r = JSON.parse(s) as unknown;
    return !!r && typeof r === 'object' && typeof (r as MetricsRecord).step === 'number';
  } catch {
    return false;
  }
}
