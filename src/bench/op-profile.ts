// Per-op time of a training step (`linkbert bench step --profile`): wraps the addon so that every op the
// model, optimizer and heads enqueue is timed. CPU ops are synchronous, so wall time around the call is the
// op's time. On CUDA, events recorded on the stream just before and after each launch give its device time
// (resolved after the step's synchronize); the GPU's idle gaps between ops are left out, and the step time
// minus the ops' sum shows how much they cost.
import type { NativeAddon } from '../native.js';

export interface OpProfileRow {
  op: string;
  pass: string;
  /** matmul: MxNxK and transposes; attention: BxTxNHxD; else empty */
  detail: string;
  calls_per_step: number;
  ms_per_step: number;
  pct_of_step: number;
  /** matmul and attention: GFLOP/s over the op's time (matmul 2MNK; attention 4 B NH T^2 D forward, 2.5x that backward) */
  gflops?: number;
}

interface Acc { op: string; pass: string; detail: string; calls: number; ms: number; flops: number }

function flopsOf(op: string, pass: string, a: Record<string, unknown>): number {
  const n = (k: string) => Number(a[k] ?? 0);
  if (op === 'matmul') return 2 * n('M') * n('N') * n('K') * ((a.batch as number | undefined) ?? 1);
  if (op === 'attention') return (pass === 'backward' ? 2.5 : 1) * 4 * n('B') * n('NH') * n('T') * n('T') * n('D');
  return 0;
}

function detailOf(op: string, a: Record<string, unknown>): string {
  if (op === 'matmul') {
    const batch = (a.batch as number | undefined) ?? 1;
    const ep = a.epilogue ? ` +${String(a.epilogue)}` : '';
    return `${batch > 1 ? batch + 'x' : ''}${String(a.M)}x${String(a.N)}x${String(a.K)} ${a.trans_a ? 'T' : 'N'}${a.trans_b ? 'T' : 'N'}${ep}`;
  }
  if (op === 'attention') return `${String(a.B)}x${String(a.T)}x${String(a.NH)}x${String(a.D)}`;
  return '';
}

export class OpProfiler {
  /** The addon to give `new Ops(backend, profiler.native)`: `run` is timed, everything else passes through. */
  readonly native: NativeAddon;
  /** Only runs while enabled are counted (warm-up steps are not). */
  enabled = false;
  private readonly acc = new Map<string, Acc>();
  private pending: { key: string; a: number; b: number }[] = [];
  private steps = 0;

  constructor(private readonly base: NativeAddon, private readonly device: 'cpu' | 'cuda') {
    const run = (op: string, pass: 'forward' | 'backward', backend: Parameters<NativeAddon['run']>[2], args: Record<string, unknown>): void => {
      if (!this.enabled) return base.run(op, pass, backend, args);
      const detail = detailOf(op, args);
      const key = `${op}|${pass}|${detail}`;
      if (!this.acc.has(key)) this.acc.set(key, { op, pass, detail, calls: 0, ms: 0, flops: 0 });
      const row = this.acc.get(key)!;
      row.calls++;
      row.flops += flopsOf(op, pass, args);
      if (this.device === 'cuda') {
        const a = base.cudaTimerMark();
        base.run(op, pass, backend, args);
        this.pending.push({ key, a, b: base.cudaTimerMark() });
      } else {
        const t0 = performance.now();
        base.run(op, pass, backend, args);
        row.ms += performance.now() - t0;
      }
    };
    const bound = new Map<PropertyKey, unknown>(); // one bound function per addon method, not one per call
    this.native = new Proxy(base, {
      get: (target, prop, receiver) => {
        if (prop === 'run') return run;
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        if (!bound.has(prop)) bound.set(prop, (v as (...x: unknown[]) => unknown).bind(target));
        return bound.get(prop);
      },
    });
  }

  /** Call after each counted step, once its work has been synchronized. */
  endStep(): void {
    if (!this.enabled) return;
    this.steps++;
    if (this.device === 'cuda' && this.pending.length) {
      for (const p of this.pending) this.acc.get(p.key)!.ms += this.base.cudaTimerElapsed(p.a, p.b);
      this.pending = [];
      this.base.cudaTimerClear();
    }
  }

  /** Rows sorted by time, per step, with their share of `stepMs`. */
  rows(stepMs: number): OpProfileRow[] {
    const n = Math.max(1, this.steps);
    return [...this.acc.values()]
      .map((r) => ({
        op: r.op, pass: r.pass, detail: r.detail, calls_per_step: r.calls / n, ms_per_step: r.ms / n, pct_of_step: (100 * r.ms) / n / stepMs,
        ...(r.flops > 0 && r.ms > 0 ? { gflops: r.flops / r.ms / 1e6 } : {}),
      }))
      .sort((x, y) => y.ms_per_step - x.ms_per_step);
  }
}

/** Per op and pass (details summed), sorted by time. */
export function byOp(rows: OpProfileRow[]): OpProfileRow[] {
  const m = new Map<string, OpProfileRow>();
  for (const r of rows) {
    const k = `${r.op}|${r.pass}`;
    const t = m.get(k) ?? { op: r.op, pass: r.pass, detail: '', calls_per_step: 0, ms_per_step: 0, pct_of_step: 0 };
    // GFLOP/s of the sum: flops add up as gflops * ms
    if (r.gflops !== undefined) t.gflops = ((t.gflops ?? 0) * t.ms_per_step + r.gflops * r.ms_per_step) / (t.ms_per_step + r.ms_per_step);
    t.calls_per_step += r.calls_per_step;
    t.ms_per_step += r.ms_per_step;
    t.pct_of_step += r.pct_of_step;
    m.set(k, t);
  }
  return [...m.values()].sort((x, y) => y.ms_per_step - x.ms_per_step);
}
