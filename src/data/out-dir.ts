// prepare's output directory. A run builds everything in a hidden work folder inside --out (so the moves
// are renames on one file system, and need no rights to --out's parent) and moves it into place only once
// complete: a run that fails or is interrupted leaves the previous dataset in --out as it was. Only the
// entries a run writes are replaced; anything else in --out (a corpus, notes, checkpoints) is left alone.
import fs from 'node:fs';
import path from 'node:path';
import { onAbnormalEnd } from './cleanup.js';

/** What a run puts in --out; manifest.json, which marks a complete dataset, is moved in last. */
export const OUTPUT_ENTRIES = ['train', 'valid', 'graph', 'tokenizer'];
/** Leftovers of older versions, which built in place: removed with the old dataset. */
const STALE_ENTRIES = ['.tokens.tmp', 'manifest.json.tmp'];

/** Fails unless --out is a directory or does not exist yet. */
export function checkOutDir(out: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(out);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`--out: ${out}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw new Error(`--out: ${out} exists and is not a directory`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The temporary folder a run builds in; commit() moves its contents into --out, discard() removes it. */
export class WorkDir {
  readonly dir: string;
  private readonly target: string;
  /** --out did not exist: a failed run removes it again */
  private readonly created: boolean;
  private finished = false;
  private readonly release: () => void;

  constructor(out: string) {
    checkOutDir(out);
    this.target = out;
    this.created = !fs.existsSync(out);
    fs.mkdirSync(out, { recursive: true });
    this.removeStale();
    this.dir = fs.mkdtempSync(path.join(out, `.prepare-${process.pid}-`));
    // Ctrl-C or a kill: remove the work folder, then let the signal do what it would have done
    this.release = onAbnormalEnd(() => this.discard());
  }

  /** Work folders of runs whose process is gone (killed outright, so it could not clean up). */
  private removeStale(): void {
    for (const name of fs.readdirSync(this.target)) {
      const m = /^\.(prepare|old)-(\d+)-/.exec(name);
      if (m && Number(m[2]) !== process.pid && !alive(Number(m[2]))) fs.rmSync(path.join(this.target, name), { recursive: true, force: true });
    }
  }

  /**
   * Moves the finished run into --out: the old manifest aside first (from then on the folder reads as
   * incomplete), then the old entries aside and the new ones in, the new manifest last. If a move fails,
   * the moves so far are undone, so the old dataset stays.
   */
  commit(): void {
    if (this.finished) throw new Error('internal: work folder already committed or discarded');
    const old = fs.mkdtempSync(path.join(this.target, `.old-${process.pid}-`));
    const moved: [string, string][] = [];
    const move = (from: string, to: string): void => {
      fs.renameSync(from, to);
      moved.push([from, to]);
    };
    try {
      for (const e of ['manifest.json', ...OUTPUT_ENTRIES, ...STALE_ENTRIES]) if (fs.existsSync(path.join(this.target, e))) move(path.join(this.target, e), path.join(old, e));
      for (const e of OUTPUT_ENTRIES) if (fs.existsSync(path.join(this.dir, e))) move(path.join(this.dir, e), path.join(this.target, e));
      move(path.join(this.dir, 'manifest.json'), path.join(this.target, 'manifest.json'));
    } catch (e) {
      let restored = true;
      for (const [from, to] of moved.reverse()) {
        try {
          fs.renameSync(to, from);
        } catch {
          restored = false;
        }
      }
      const where = restored ? 'the old one is back in place' : `the old one is in ${old}, the new one in ${this.dir}`;
      if (restored) fs.rmSync(old, { recursive: true, force: true });
      else this.finish(true); // both folders stay, for the user
      throw new Error(`--out ${this.target}: could not move the new dataset in (${(e as Error).message}); ${where}`);
    }
    fs.rmSync(old, { recursive: true, force: true });
    this.finish();
  }

  /** Removes the work folder (a failed run); --out is as it was (and gone again if this run made it). */
  discard(): void {
    if (this.finished) return;
    this.finish();
    if (this.created && fs.readdirSync(this.target).length === 0) fs.rmdirSync(this.target);
  }

  private finish(keep = false): void {
    if (!keep && fs.existsSync(this.dir)) fs.rmSync(this.dir, { recursive: true, force: true });
    this.finished = true;
    this.release();
  }
}
