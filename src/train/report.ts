// report.ts: RUN/report.html, self-contained (inline SVG and CSS, nothing fetched from the network):
// charts of loss, MLM and DRP accuracy, learning rate and throughput, the last evaluation with its DRP
// confusion matrix, and tables of the config and the environment.
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { readMetricsLog } from './metrics-log.js';

type Rec = Record<string, unknown> & { step: number };

export class ReportError extends Error {}

function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

interface Series { name: string; points: [number, number][]; color: string }

/** A line chart as inline SVG. */
export function lineChart(title: string, series: Series[], opts: { yLabel?: string; percent?: boolean } = {}): string {
  const W = 460, H = 220, L = 56, R = 12, T = 28, B = 34;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!all.length) return `<figure class="chart"><figcaption>${esc(title)}</figcaption><p class="empty">no data</p></figure>`;
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const fmt = (y: number) => (opts.percent ? `${(100 * y).toFixed(0)}%` : Math.abs(y) >= 1000 ? y.toExponential(1) : Math.abs(y) < 0.01 && y !== 0 ? y.toExponential(1) : y.toFixed(2));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => y0 + f * (y1 - y0));
  const xticks = [0, 0.5, 1].map((f) => x0 + f * (x1 - x0));
  const grid = ticks.map((y) => `<line x1="${L}" x2="${W - R}" y1="${sy(y).toFixed(1)}" y2="${sy(y).toFixed(1)}" class="grid"/><text x="${L - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end">${esc(fmt(y))}</text>`).join('');
  const xl = xticks.map((x) => `<text x="${sx(x).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${Math.round(x)}</text>`).join('');
  const lines = series
    .filter((s) => s.points.length)
    .map((s) => {
      const d = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join('');
      const dots = s.points.length <= 40 ? s.points.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`).join('') : '';
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>${dots}`;
    })
    .join('');
  const legend = series.map((s, i) => `<rect x="${L + i * 130}" y="8" width="10" height="10" fill="${s.color}"/><text x="${L + 14 + i * 130}" y="17">${esc(s.name)}</text>`).join('');
  return `<figure class="chart"><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${grid}${xl}<text x="${(W + L) / 2}" y="${H - 4}" text-anchor="middle">step</text>${lines}${legend}</svg></figure>`;
}

function table(rows: [string, unknown][]): string {
  return `<table>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' && v !== null ? JSON.stringify(v) : v)}</td></tr>`).join('')}</table>`;
}

/** DRP accuracy per class ({label: {accuracy, count}}) as a table. */
function perClassTable(v: unknown): string {
  if (!v || typeof v !== 'object') return '';
  const rows = Object.entries(v as Record<string, { accuracy?: unknown; count?: unknown }>)
    .map(([k, c]) => `<tr><th>${esc(k)}</th><td>${typeof c?.accuracy === 'number' ? `${(100 * c.accuracy).toFixed(2)}%` : ''}</td><td>${esc(c?.count ?? '')}</td></tr>`);
  return `<table class="per-class"><tr><th>DRP class</th><th>accuracy</th><th>count</th></tr>${rows.join('')}</table>`;
}

/** Reads RUN/metrics.jsonl and RUN/config.json; writes RUN/report.html (atomically). Returns its path.
 * A cut-off last line of metrics.jsonl (a crash mid-write) is left out with a warning. */
export function writeReport(run: string, warn: (s: string) => void = (s) => process.stderr.write(s + '\n')): string {
  const metricsPath = join(run, 'metrics.jsonl');
  if (!existsSync(metricsPath)) throw new ReportError(`${run}: no metrics.jsonl (is this a run folder made by \`linkbert pretrain\`?)`);
  const train: Rec[] = [], valid: Rec[] = [];
  let log;
  try {
    log = readMetricsLog(metricsPath);
  } catch (e) {
    throw new ReportError((e as Error).message);
  }
  if (log.torn) warn(`warning: ${metricsPath}: left out a partial last line at byte ${log.torn.offset} (${log.torn.bytes} bytes, an interrupted write)`);
  for (const r of log.records) (r.split === 'valid' ? valid : train).push(r);
  let cfg: { train?: Record<string, unknown>; env?: Record<string, unknown> } = {};
  const cfgPath = join(run, 'config.json');
  if (existsSync(cfgPath)) cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as typeof cfg;
  const pts = (rs: Rec[], key: string): [number, number][] => rs.filter((r) => typeof r[key] === 'number').map((r) => [r.step, r[key] as number]);
  const charts = [
    lineChart('Loss (MLM + DRP)', [
      { name: 'train', points: pts(train, 'loss'), color: '#1f77b4' },
      { name: 'validation', points: pts(valid, 'loss'), color: '#d62728' },
    ]),
    lineChart('MLM accuracy', [
      { name: 'train', points: pts(train, 'mlm_accuracy'), color: '#1f77b4' },
      { name: 'validation', points: pts(valid, 'mlm_accuracy'), color: '#d62728' },
    ], { percent: true }),
    lineChart('DRP accuracy (chance = 1/3)', [
      { name: 'train', points: pts(train, 'drp_accuracy'), color: '#1f77b4' },
      { name: 'validation', points: pts(valid, 'drp_accuracy'), color: '#d62728' },
    ], { percent: true }),
    lineChart('Learning rate', [{ name: 'lr', points: pts(train, 'lr'), color: '#2ca02c' }]),
    lineChart('Throughput (tokens/s)', [{ name: 'tokens/s', points: pts(train, 'tokens_per_s'), color: '#9467bd' }]),
    lineChart('Time waiting on data', [{ name: 'share of step time', points: pts(train, 'data_wait_share'), color: '#8c564b' }], { percent: true }),
  ].join('\n');
  const last = valid.at(-1);
  let evalHtml = '<p>No evaluation yet.</p>';
  if (last) {
    const conf = last.drp_confusion as number[][] | undefined;
    const labels = ['contiguous', 'random', 'linked'];
    const confHtml = conf
      ? `<table class="conf"><tr><th>gold \\ predicted</th>${labels.map((l) => `<th>${l}</th>`).join('')}</tr>${conf
          .map((row, i) => `<tr><th>${labels[i] ?? i}</th>${row.map((v) => `<td>${v}</td>`).join('')}</tr>`)
          .join('')}</table>`
      : '';
    evalHtml =
      table([
        ['step', last.step],
        ['MLM loss', last.mlm_loss],
        ['MLM accuracy', last.mlm_accuracy],
        ['MLM perplexity', last.mlm_perplexity],
        ['DRP accuracy', last.drp_accuracy],
        ['DRP balanced accuracy (chance 1/3)', last.drp_balanced_accuracy],
      ]) + perClassTable(last.drp_per_class) + confHtml;
  }
  const lastTrain = train.at(-1);
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>linkbert run report: ${esc(run)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1500px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0;border:1px solid #ddd;border-radius:6px;padding:6px}
figcaption{font-weight:600;margin:2px 6px}svg text{font-size:11px;fill:#444}.grid{stroke:#eee}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6}td{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all;max-width:900px}.empty{color:#888;margin:40px}
</style></head><body>
<h1>linkbert run report</h1>
<p>Run folder: <code>${esc(run)}</code>. ${train.length} training log records, ${valid.length} evaluations${lastTrain ? `; last step ${lastTrain.step}` : ''}. Generated ${esc(new Date().toISOString())}.</p>
<h2>Training curves</h2><div class="charts">${charts}</div>
<h2>Last evaluation (validation split)</h2>${evalHtml}
<h2>Configuration</h2>${table(Object.entries(cfg.train ?? {}))}
<h2>Environment</h2>${table(Object.entries(cfg.env ?? {}).filter(([, v]) => v !== undefined))}
</body></html>
`;
  const out = join(run, 'report.html');
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, html);
  renameSync(tmp, out);
  return out;
}
