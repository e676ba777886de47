// progress.ts: the training progress bar (stderr). On a TTY one line is redrawn in place; otherwise a
// plain line is printed at most every 10 s, so logs stay readable.
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

export class Progress {
  private readonly tty: boolean;
  private readonly start = Date.now();
  private lastPlain = 0;
  private startStep = -1;
  private drawn = false;
  constructor(
    private readonly enabled: boolean,
    private readonly maxSteps: number,
    private readonly showMfu: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = !!out.isTTY;
  }

  update(step: number, r: ProgressRecord): void {
    if (!this.enabled) return;
    if (this.startStep < 0) this.startStep = step - 1;
    const elapsed = (Date.now() - this.start) / 1000;
    const done = step - this.startStep;
    const eta = done > 0 ? ((this.maxSteps - step) * elapsed) / done : 0;
    const width = 24;
    const filled = Math.round((width * step) / Math.max(1, this.maxSteps));
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const fields = [
      `${step}/${this.maxSteps}`,
      `loss ${r.loss.toFixed(4)}`,
      `mlm ${(100 * r.mlm_accuracy).toFixed(1)}%`,
      `drp ${(100 * r.drp_accuracy).toFixed(1)}%`,
      `lr ${r.lr.toExponential(2)}`,
      `${Math.round(r.tokens_per_s)} tok/s`,
      `data wait ${(100 * r.data_wait_share).toFixed(0)}%`,
      ...(this.showMfu && r.mfu !== undefined ? [`MFU ${(100 * r.mfu).toFixed(1)}%`] : []),
      `ETA ${formatDuration(eta)}`,
    ];
    if (this.tty) {
      this.out.write(`\r\x1b[2K${bar} ${fields.join(' | ')}`);
      this.drawn = true;
    } else if (Date.now() - this.lastPlain >= 10000 || step === this.maxSteps) {
      this.lastPlain = Date.now();
      this.out.write(`[train] ${fields.join(' | ')}\n`);
    }
  }

  /** A message on its own line, without breaking the bar. */
  note(msg: string): void {
    if (!this.enabled) return;
    if (this.tty && this.drawn) this.out.write('\r\x1b[2K');
    this.out.write(msg + '\n');
  }

  done(): void {
    if (this.enabled && this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
