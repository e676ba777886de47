// progress.ts: progress bars on stderr. On a TTY one line is redrawn in place; otherwise a plain line
// is printed at most every 10 s, so logs stay readable. `Bar` is the generic bar (fine-tuning,
// evaluation); `Progress` shows the pretraining fields on it.
export interface ProgressRecord {
  step: number;
  loss: number;
  mlm_accuracy: number;
  drp_accuracy: number;
  lr: number;
  tokens_per_s: number;
  data_wait_share: number;
  mfu?: number;
}

/** A one-line progress bar: label, bar, done/total, extra fields and ETA. */
export class Bar {
  private readonly tty: boolean;
  private start = Date.now();
  private startDone = 0;
  private lastPlain = 0;
  private drawn = false;
  constructor(
    private readonly enabled: boolean,
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = !!out.isTTY;
  }
  /** ETA counts from here (e.g. a resumed run starts at its checkpoint's step). */
  restartClock(done: number): void {
    this.start = Date.now();
    this.startDone = done;
  }
  update(done: number, fields: string[] = []): void {
    if (!this.enabled) return;
    const elapsed = (Date.now() - this.start) / 1000;
    const progressed = done - this.startDone;
    const eta = progressed > 0 ? ((this.total - done) * elapsed) / progressed : NaN;
    const width = 24;
    const filled = Math.min(width, Math.round((width * done) / Math.max(1, this.total)));
    const line = `${this.label ? this.label + ' ' : ''}${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${done}/${this.total} | ${[...fields, `ETA ${formatDuration(eta)}`].join(' | ')}`;
    if (this.tty) {
      this.out.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (Date.now() - this.lastPlain >= 10000 || done === this.total) {
      this.lastPlain = Date.now();
      this.out.write(line + '\n');
    }
  }
  /** A message on its own line without breaking the bar. */
  note(msg: string): void {
    if (!this.enabled) return;
    if (this.tty && this.drawn) this.out.write('\r\x1b[2K');
    this.drawn = false;
    this.out.write(msg + '\n');
  }
  done(): void {
    if (this.enabled && this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** The pretraining bar: step/max, loss, MLM and DRP accuracy, lr, tokens/s, data wait, MFU (GPU), ETA. */
export class Progress {
  private readonly bar: Bar;
  private started = false;
  constructor(enabled: boolean, maxSteps: number, private readonly showMfu: boolean, out: NodeJS.WriteStream = process.stderr) {
    this.bar = new Bar(enabled, '[train]', maxSteps, out);
  }
  update(step: number, r: ProgressRecord): void {
    if (!this.started) {
      this.bar.restartClock(step - 1);
      this.started = true;
    }
    this.bar.update(step, [
      `loss ${r.loss.toFixed(4)}`,
      `mlm ${(100 * r.mlm_accuracy).toFixed(1)}%`,
      `drp ${(100 * r.drp_accuracy).toFixed(1)}%`,
      `lr ${r.lr.toExponential(2)}`,
      `${Math.round(r.tokens_per_s)} tok/s`,
      `data wait ${(100 * r.data_wait_share).toFixed(0)}%`,
      ...(this.showMfu && r.mfu !== undefined ? [`MFU ${(100 * r.mfu).toFixed(1)}%`] : []),
    ]);
  }
  note(msg: string): void {
    this.bar.note(msg);
  }
  done(): void {
    this.bar.done();
  }
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
